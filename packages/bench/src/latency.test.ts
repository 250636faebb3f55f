import { HIGHEST_US, LatencyRecorder, mergeEncoded } from './latency';

describe('LatencyRecorder', () => {
  it('counts every value and reports percentiles in milliseconds', () => {
    const r = new LatencyRecorder();
    for (let us = 1; us <= 10000; us++) r.record(us); // 1 µs … 10 ms, uniform
    expect(r.count).toBe(10000);
    const s = r.summary();
    expect(s.count).toBe(10000);
    expect(s.p50).toBeCloseTo(5, 1);
    expect(s.p99).toBeCloseTo(9.9, 1);
    expect(s.p999).toBeCloseTo(9.99, 1);
    expect(s.max).toBeCloseTo(10, 1);
  });

  it('clamps values past ten minutes and counts them', () => {
    const r = new LatencyRecorder();
    r.record(HIGHEST_US * 2);
    r.record(-5);
    expect(r.count).toBe(2);
    expect(r.clamped).toBe(1);
    expect(r.summary().max).toBeCloseTo(HIGHEST_US / 1000, -2);
  });

  it('starts over on reset', () => {
    const r = new LatencyRecorder();
    r.record(100);
    r.reset();
    expect(r.count).toBe(0);
    expect(r.summary().count).toBe(0);
    expect(Number.isNaN(r.summary().p99)).toBe(true);
  });
});

describe('mergeEncoded', () => {
  it('adds histograms from several processes without losing a count', () => {
    const fast = new LatencyRecorder();
    const slow = new LatencyRecorder();
    for (let i = 0; i < 990; i++) fast.record(1000); // 1 ms
    for (let i = 0; i < 10; i++) slow.record(80_000); // 80 ms
    const merged = mergeEncoded([fast.encode(), slow.encode(), new LatencyRecorder().encode()]);
    expect(merged.count).toBe(fast.count + slow.count);
    expect(merged.p50).toBeCloseTo(1, 1);
    // 1% of the deliveries were slow: p99 sits at the boundary, p99.9 and max among the slow ones.
    expect(merged.p999).toBeCloseTo(80, 0);
    expect(merged.max).toBeCloseTo(80, 0);
  });

  it('summarises nothing as an empty count', () => {
    expect(mergeEncoded([]).count).toBe(0);
  });
});
