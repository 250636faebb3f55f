// `npm run soak -- --minutes N`: steady mixed load on a cluster with no faults; samples every process and prints slopes.
import { Cluster, sleep, type Member } from './cluster';
import { judge, settle, type Verdict } from './judge';
import { Load, type RunShape } from './load';
import { parseNumberFlags } from './args';
import { formatCounts } from './chaos';

export interface SoakOptions extends RunShape {
  minutes: number;
  /** Seconds between samples. */
  sampleSeconds: number;
  /** The first part of the run that the slopes leave out (caches filling, JIT, pools growing). */
  warmupFraction: number;
  /** Short-lived clients per second: connect, subscribe, get a publication, disconnect. */
  churnPerSecond: number;
}

export const defaultSoak: SoakOptions = {
  minutes: 10,
  sampleSeconds: 10,
  warmupFraction: 0.2,
  gateways: 2,
  workers: 1,
  subscribers: 100,
  channels: 20,
  publishRate: 200,
  docWriters: 4,
  churnPerSecond: 5,
};

/**
 * The figures sampled from each member's own /metrics: prom-client's process metrics, and on gateways the open
 * sockets and subscriptions (uWS sockets are not Node handles, so a leaked socket shows there, not in `handles`).
 * `floor`: the slope is fitted to each window's minimum, so garbage collection's sawtooth does not read as growth.
 */
export const SAMPLED = {
  rss: { metric: 'switchboard_process_resident_memory_bytes', unit: 'MB', scale: 1 / 1048576, floor: true, required: true },
  heap: { metric: 'switchboard_nodejs_heap_size_used_bytes', unit: 'MB', scale: 1 / 1048576, floor: true, required: true },
  lagP99: { metric: 'switchboard_nodejs_eventloop_lag_p99_seconds', unit: 'ms', scale: 1000, floor: false, required: true },
  handles: { metric: 'switchboard_nodejs_active_handles_total', unit: '', scale: 1, floor: true, required: true },
  sockets: { metric: 'switchboard_connections', unit: '', scale: 1, floor: true, required: false },
  subscriptions: { metric: 'switchboard_subscriptions', unit: '', scale: 1, floor: true, required: false },
} as const;
export type Figure = keyof typeof SAMPLED;
const FIGURES = Object.keys(SAMPLED) as Figure[];

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  values: Partial<Record<Figure, number>>;
}

/** Reads one unlabelled sample of each figure from Prometheus text; undefined when a required one is missing. */
export function parseFigures(text: string): Partial<Record<Figure, number>> | undefined {
  const byMetric = new Map<string, Figure>(FIGURES.map((f) => [SAMPLED[f].metric, f]));
  const out: Partial<Record<Figure, number>> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const fig = byMetric.get(line.slice(0, space));
    if (fig) out[fig] = Number(line.slice(space + 1)) * SAMPLED[fig].scale;
  }
  return FIGURES.every((f) => !SAMPLED[f].required || Number.isFinite(out[f])) ? out : undefined;
}

/** Least-squares slope of y over x; 0 for fewer than two points. */
export function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface SeriesSummary {
  member: string;
  figure: Figure;
  first: number;
  last: number;
  max: number;
  /** Per hour, over the samples after the warm-up. */
  slopePerHour: number;
}

/** Points (hour, value) for the slope: each window's minimum for a `floor` figure, every sample otherwise. */
function slopePoints(samples: readonly Sample[], figure: Figure, windowSeconds: number): [number, number][] {
  const points = samples.map((s) => [s.t, s.values[figure] as number] as [number, number]);
  if (!SAMPLED[figure].floor) return points.map(([t, y]) => [t / 3600, y]);
  const windows = new Map<number, [number, number]>();
  for (const [t, y] of points) {
    const w = Math.floor(t / windowSeconds);
    const cur = windows.get(w);
    if (!cur || y < cur[1]) windows.set(w, [t, y]);
  }
  return [...windows.values()].map(([t, y]) => [t / 3600, y]);
}

export function summarise(member: string, samples: readonly Sample[], warmupFraction: number, windowSeconds = 60): SeriesSummary[] {
  if (samples.length === 0) return [];
  const end = samples[samples.length - 1].t;
  return FIGURES.filter((f) => samples.every((s) => s.values[f] !== undefined)).map((figure) => {
    const values = samples.map((s) => s.values[figure] as number);
    const steady = samples.filter((s) => s.t >= end * warmupFraction);
    return {
      member,
      figure,
      first: values[0],
      last: values[values.length - 1],
      max: Math.max(...values),
      slopePerHour: slope(slopePoints(steady, figure, windowSeconds)),
    };
  });
}

export interface SoakReport {
  minutes: number;
  series: SeriesSummary[];
  verdict: Verdict;
  churned: number;
  churnFailures: number;
  unplannedExits: string[];
}

async function sampleMember(m: Member): Promise<Sample['values'] | undefined> {
  try {
    const res = await fetch(`${m.proc.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    return parseFigures(await res.text());
  } catch {
    return undefined;
  }
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => undefined);
  const cluster = await Cluster.start({ gateways: opts.gateways, workers: opts.workers });
  const load = Load.on(cluster, opts, { churnPerSecond: opts.churnPerSecond });
  const members = [...cluster.gateways.map((m, i) => ({ name: `gateway ${i + 1}`, m })), ...cluster.workers.map((m, i) => ({ name: `worker ${i + 1}`, m }))];
  const samples = new Map<string, Sample[]>(members.map(({ name }) => [name, []]));
  try {
    await load.start();
    log(`load running for ${opts.minutes} min: ${opts.subscribers} subscribers, ${opts.publishRate} publications/s over ${opts.channels} channels, ${opts.docWriters} document writers, ${opts.churnPerSecond} short-lived clients/s`);
    const started = Date.now();
    const end = started + opts.minutes * 60000;
    let nextReport = started + 60000;
    while (Date.now() < end) {
      const t = (Date.now() - started) / 1000;
      await Promise.all(
        members.map(async ({ name, m }) => {
          const values = await sampleMember(m);
          if (values) samples.get(name)?.push({ t, values });
        }),
      );
      if (Date.now() >= nextReport) {
        nextReport += 60000;
        const line = members.map(({ name }) => {
          const v = samples.get(name)?.at(-1)?.values;
          return v ? `${name} rss ${v.rss?.toFixed(1)} MB heap ${v.heap?.toFixed(1)} MB lag p99 ${v.lagP99?.toFixed(1)} ms` : `${name} (no sample)`;
        });
        log(`${Math.round(t / 60)} min: ${load.published.length} publications, ${load.churned} short-lived clients; ${line.join('; ')}`);
      }
      await sleep(Math.min(opts.sampleSeconds * 1000, Math.max(0, end - Date.now())));
    }
    log('load stopping: waiting for requests in flight');
    await load.stop();
    await settle(load, cluster.balancer.url, 20000);
    log('judging');
    const verdict = await judge(load, cluster.balancer.url);
    return {
      minutes: opts.minutes,
      series: members.flatMap(({ name }) => summarise(name, samples.get(name) ?? [], opts.warmupFraction, Math.max(60, 6 * opts.sampleSeconds))),
      verdict,
      churned: load.churned,
      churnFailures: load.churnFailures,
      unplannedExits: [...cluster.unplannedExits],
    };
  } finally {
    load.disconnect();
    await cluster.stop();
  }
}

const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3));

export function formatSoak(r: SoakReport): string {
  const head = `${'process'.padEnd(12)} ${'figure'.padEnd(14)} ${'first'.padStart(9)} ${'last'.padStart(9)} ${'max'.padStart(9)} ${'slope/hour'.padStart(11)}`;
  const rows = r.series.map((s) => {
    const unit = SAMPLED[s.figure].unit;
    const label = unit ? `${s.figure} (${unit})` : s.figure;
    return `${s.member.padEnd(12)} ${label.padEnd(14)} ${fmt(s.first).padStart(9)} ${fmt(s.last).padStart(9)} ${fmt(s.max).padStart(9)} ${fmt(s.slopePerHour).padStart(11)}`;
  });
  const extra = [`short-lived clients ${r.churned} (failed: ${r.churnFailures})`, `unplanned exits ${r.unplannedExits.length}`];
  return [head, ...rows, '', formatCounts(r.verdict), ...extra].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const opts: SoakOptions = { ...defaultSoak, log: (l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`) };
  const flags = {
    '--minutes': 'minutes',
    '--sample-seconds': 'sampleSeconds',
    '--subscribers': 'subscribers',
    '--rate': 'publishRate',
    '--channels': 'channels',
    '--doc-writers': 'docWriters',
    '--churn': 'churnPerSecond',
  } as const;
  const bad = parseNumberFlags(argv, flags, opts) ?? (opts.minutes > 0 && opts.sampleSeconds > 0 ? undefined : '--minutes and --sample-seconds must be above 0');
  if (bad) {
    process.stderr.write(`soak: ${bad}\nusage: npm run soak -- [--minutes N] [--sample-seconds N] [--subscribers N] [--rate N] [--channels N] [--doc-writers N] [--churn N]\n`);
    return 2;
  }
  const report = await runSoak(opts);
  process.stdout.write(formatSoak(report) + '\n');
  const problems = [...report.verdict.problems, ...report.unplannedExits];
  if (report.churnFailures > 0) problems.push(`${report.churnFailures} short-lived clients did not get their publication`);
  for (const p of problems) process.stdout.write(`PROBLEM: ${p}\n`);
  process.stdout.write(problems.length === 0 ? 'soak: passed\n' : 'soak: FAILED\n');
  return problems.length === 0 ? 0 : 1;
}
