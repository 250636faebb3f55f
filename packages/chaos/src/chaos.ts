// `npm run chaos -- [--seconds N]`: faults injected into a loaded cluster, then every delivery and document update judged.
import { parseNumberFlags } from './args';
import { Cluster, sleep, type Topology } from './cluster';
import { judge, judgeFailover, settle, type FailoverVerdict, type Verdict } from './judge';
import { Load, type RunShape } from './load';
import { FEED_NAMESPACE } from './cluster';

export interface ChaosOptions extends RunShape {
  /** Time under load, faults included (default 60 s). */
  seconds: number;
  /** Seconds between faults; 0 spreads one of each evenly over the run. */
  faultEvery: number;
  topology: Topology;
}

export const defaultChaos: ChaosOptions = { seconds: 60, gateways: 3, workers: 2, subscribers: 60, channels: 20, publishRate: 200, docWriters: 8, faultEvery: 0, topology: 'redis' };

/** On one Redis with AOF nothing acknowledged may be lost; through failovers what Redis lost is counted instead. */
export type ChaosReport = (({ topology: 'redis' } & Verdict) | ({ topology: 'sentinel' | 'cluster' } & FailoverVerdict)) & {
  faults: string[];
  unplannedExits: string[];
};

type Fault = { name: string; inject(c: Cluster): Promise<void> };

const processFaults: Fault[] = [
  { name: 'gateway SIGKILL', inject: (c) => c.killAndReplace(c.gateways[0], 1000) },
  { name: 'pub/sub connections killed', inject: async (c) => void (await c.killPubSubConnections()) },
  { name: 'gateway SIGSTOP 3 s', inject: (c) => c.freeze(c.gateways[1], 3000) },
  { name: 'worker SIGKILL', inject: (c) => c.killAndReplace(c.workers[0], 1000) },
];

/** One of each, in this order, again and again while the run lasts. */
const faultsOf: Record<Topology, Fault[]> = {
  redis: [...processFaults, { name: 'Redis restart (AOF)', inject: (c) => c.restartRedis() }],
  sentinel: [
    ...processFaults.slice(0, 2),
    { name: 'Sentinel failover', inject: (c) => c.sentinelFailover() },
    ...processFaults.slice(2),
    { name: 'primary SIGKILL', inject: (c) => c.killPrimary() },
  ],
  // Channels c0 and c1 carry load; their slots' primaries are the ones hit.
  cluster: [
    ...processFaults.slice(0, 2),
    { name: 'slot of a live channel moved', inject: (c) => c.moveSlotOf(`sb:{${FEED_NAMESPACE}:c0}`) },
    ...processFaults.slice(2),
    { name: 'cluster primary SIGKILL', inject: (c) => c.killClusterPrimary(`sb:{${FEED_NAMESPACE}:c1}`) },
  ],
};

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => undefined);
  const faults = faultsOf[opts.topology];
  const cluster = await Cluster.start({ gateways: opts.gateways, workers: opts.workers, topology: opts.topology });
  const load = Load.on(cluster, opts);
  const injected: string[] = [];
  try {
    await load.start();
    log(`load running on ${opts.topology}: ${opts.subscribers} subscribers, ${opts.publishRate} publications/s over ${opts.channels} channels, ${opts.docWriters} document writers`);
    const started = Date.now();
    const end = started + opts.seconds * 1000;
    // Faults at even spacing, one of each in turn; the last one leaves a gap before the end for the cluster to heal.
    const gap = opts.faultEvery > 0 ? Math.max(4000, opts.faultEvery * 1000) : Math.max(4000, (opts.seconds * 1000) / (faults.length + 1));
    for (let i = 0; started + (i + 1) * gap < end; i++) {
      await sleep(Math.max(0, started + (i + 1) * gap - Date.now()));
      const fault = faults[i % faults.length];
      const at = Date.now();
      await fault.inject(cluster);
      injected.push(fault.name);
      log(`fault: ${fault.name} (${Date.now() - at} ms)`);
    }
    await sleep(Math.max(0, end - Date.now()));
    log('load stopping: waiting for requests in flight');
    await load.stop();
    log(`load stopped; ${load.failures.length} requests not acknowledged; waiting for subscribers to catch up`);
    await settle(load, cluster.balancer.url, 20000);
    log('judging');
    const extra = { faults: injected, unplannedExits: [...cluster.unplannedExits] };
    try {
      if (opts.topology === 'redis') return { topology: 'redis', ...(await judge(load, cluster.balancer.url)), ...extra };
      // Workers run with --doc-wait-replicas 1 there (see Cluster.start): no acknowledged update may be lost.
      return { topology: opts.topology, ...(await judgeFailover(load, cluster.balancer.url, true)), ...extra };
    } catch (err) {
      log(`judging failed: ${(err as Error).message}`);
      throw err;
    }
  } finally {
    load.disconnect();
    await cluster.stop();
  }
}

export function formatReport(r: ChaosReport): string {
  const faults = r.faults.length ? `${r.faults.length} (${[...new Set(r.faults)].join(', ')})` : '0';
  const counts = r.topology === 'redis' ? formatCounts(r) : formatFailoverCounts(r);
  return [`${'topology'.padEnd(38)} ${r.topology}`, `${'faults injected'.padEnd(38)} ${faults}`, counts, `${'unplanned exits'.padEnd(38)} ${r.unplannedExits.length}`].join('\n');
}

function rows(list: [string, number | string][]): string {
  return list.map(([k, v]) => `${k.padEnd(38)} ${v}`).join('\n');
}

export function formatFailoverCounts(r: FailoverVerdict): string {
  return rows([
    ['publications acknowledged', r.publications],
    ['delivered', r.delivered],
    ['breaks in a continuous stretch', r.breaks],
    ['not acknowledged / not what history holds', r.wrongData],
    ['subscribers not at the top at the end', r.behind],
    ['resubscribes that recovered', r.recoveries],
    ['resubscribes told unrecoverable', r.told],
    ['acknowledged, then lost by Redis', r.lostByRedis],
    ['republished after Redis lost the first', r.republished],
    ['document updates acknowledged', r.docUpdates],
    ['document updates lost by Redis', r.docLost],
  ]);
}

/** The verdict's counts, one per line. */
export function formatCounts(r: Verdict): string {
  return rows([
    ['publications acknowledged', r.publications],
    ['deliveries owed', r.owed],
    ['delivered', r.delivered],
    ['missing', r.missing],
    ['duplicates', r.duplicates],
    ['out of order', r.outOfOrder],
    ['carrying the wrong publication', r.wrongData],
    ['told unrecoverable (excused)', r.excused],
    ['resubscribes that recovered', r.recoveries],
    ['publications stored twice / misplaced', r.publishMismatches],
    ['document updates acknowledged', r.docUpdates],
    ['document fields wrong', r.docMismatches],
    ['epoch changes (stream lost)', r.epochChanges],
  ]);
}

export function passed(r: ChaosReport): boolean {
  return r.problems.length === 0 && r.unplannedExits.length === 0;
}

export async function main(argv: string[]): Promise<number> {
  const opts = { ...defaultChaos, log: (l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`) };
  const flags = { '--seconds': 'seconds', '--subscribers': 'subscribers', '--rate': 'publishRate', '--channels': 'channels', '--doc-writers': 'docWriters', '--fault-every': 'faultEvery' } as const;
  const topologyAt = argv.findIndex((a) => a === '--sentinel' || a === '--cluster');
  if (topologyAt >= 0) opts.topology = argv[topologyAt] === '--sentinel' ? 'sentinel' : 'cluster';
  const bad = parseNumberFlags(
    argv.filter((_, i) => i !== topologyAt),
    flags,
    opts,
  );
  if (bad) {
    process.stderr.write(`chaos: ${bad}\nusage: npm run chaos -- [--sentinel | --cluster] [--seconds N] [--fault-every N] [--subscribers N] [--rate N] [--channels N] [--doc-writers N]\n`);
    return 2;
  }
  const report = await runChaos(opts);
  process.stdout.write(formatReport(report) + '\n');
  for (const p of [...report.problems, ...report.unplannedExits]) process.stdout.write(`PROBLEM: ${p}\n`);
  process.stdout.write(passed(report) ? 'chaos: passed\n' : 'chaos: FAILED\n');
  return passed(report) ? 0 : 1;
}
