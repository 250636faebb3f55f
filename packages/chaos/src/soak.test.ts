import { parseNumberFlags } from './args';
import { parseFigures, slope, summarise, type Sample } from './soak';

describe('soak figures', () => {
  it('reads the sampled figures from Prometheus text, ignoring labelled and other series', () => {
    const text = [
      '# HELP switchboard_process_resident_memory_bytes Resident memory size in bytes.',
      'switchboard_process_resident_memory_bytes 104857600',
      'switchboard_nodejs_heap_size_used_bytes 52428800',
      'switchboard_nodejs_eventloop_lag_p99_seconds 0.0125',
      'switchboard_nodejs_active_handles_total 42',
      'switchboard_nodejs_active_handles{type="Socket"} 40',
      'switchboard_connections 7',
    ].join('\n');
    expect(parseFigures(text)).toEqual({ rss: 100, heap: 50, lagP99: 12.5, handles: 42, sockets: 7 });
    expect(parseFigures('switchboard_connections 7')).toBeUndefined();
  });

  it('fits a least-squares slope', () => {
    expect(slope([[0, 1], [1, 3], [2, 5]])).toBeCloseTo(2);
    expect(slope([[0, 5], [1, 4], [2, 6], [3, 5]])).toBeCloseTo(0.2);
    expect(slope([[1, 1]])).toBe(0);
  });

  it('leaves the warm-up out of the slope, per hour', () => {
    const samples: Sample[] = Array.from({ length: 11 }, (_, i) => ({ t: i * 360, values: { rss: i < 3 ? i * 100 : 200 + (i - 2), heap: 1, lagP99: 1, handles: 10 } }));
    const rss = summarise('g', samples, 0.3).find((s) => s.figure === 'rss');
    // From t = 1080 s on, RSS grows 1 MB per 360 s: 10 MB an hour.
    expect(rss?.slopePerHour).toBeCloseTo(10);
    expect(rss).toMatchObject({ first: 0, last: 208, max: 208 });
    // Figures a member does not report (a worker has no sockets) are left out, not zero.
    expect(summarise('w', samples, 0.3).map((s) => s.figure)).toEqual(['rss', 'heap', 'lagP99', 'handles']);
  });

  it('fits memory to the floor of each window, so a garbage-collection sawtooth is flat', () => {
    // Heap climbs 10 MB within each minute and drops back: no growth at all.
    const samples: Sample[] = Array.from({ length: 60 }, (_, i) => ({ t: i * 10, values: { rss: 1, heap: 50 + (i % 6) * 2, lagP99: 1, handles: 1 } }));
    expect(summarise('g', samples, 0).find((s) => s.figure === 'heap')?.slopePerHour).toBeCloseTo(0);
    // The same sawtooth on a rising floor: the floor's rise is what is reported (1 MB a minute, 60 MB an hour).
    const rising: Sample[] = samples.map((s, i) => ({ t: s.t, values: { ...s.values, heap: (s.values.heap as number) + Math.floor(i / 6) } }));
    expect(summarise('g', rising, 0).find((s) => s.figure === 'heap')?.slopePerHour).toBeCloseTo(60);
  });
});

describe('command arguments', () => {
  const flags = { '--seconds': 'seconds', '--rate': 'rate' } as const;
  it('takes --flag N and --flag=N', () => {
    const into = { seconds: 1, rate: 2 };
    expect(parseNumberFlags(['--seconds', '30', '--rate=50'], flags, into)).toBeUndefined();
    expect(into).toEqual({ seconds: 30, rate: 50 });
  });
  it.each([[['--nope', '1']], [['--seconds']], [['--seconds', 'x']], [['--rate=-1']], [['--seconds=']], [['--toString', '1']]])('refuses %j', (argv) => {
    expect(parseNumberFlags(argv, flags, { seconds: 1, rate: 2 })).toEqual(expect.any(String));
  });
});
