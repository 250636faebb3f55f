// The scenarios of the benchmark: (a) fan-out, (b) many channels, (c) idle connections, (d) documents, (e) many
// channels on one Redis and on a Redis Cluster, (f) the HTTP publish API alone. Each returns one row per step or
// configuration; the orchestrator (main.ts) runs them per system and prints the tables.
import { channelPlacement, spreadOf, type PrimaryPlacement, type Spread } from './cluster_spread';
import { mergeEncoded, type LatencySummary } from './latency';
import { cpuWindow, othersWindow, rssBytes, type ProcUsage } from './procstat';
import { redisCounters, type NodeCounters } from './redis_stats';
import { LoadGen, runClosedLoop, runStep, stepPassed, stepVerdict, type ClientPlan, type ClosedLoopStep, type StepResult, type StepSpec } from './runner';
import type { Cluster, RedisNode, RedisTopologyName, SystemName } from './systems';
import type { DocResult, DocRun } from './doc_proc';

export interface Profile {
  name: 'quick' | 'full';
  stepMs: number;
  maxDrainMs: number;
  fanout: { subscribers: number; size: number }[];
  /** First offered deliveries/s of the fan-out ladder; doubled each step. */
  fanoutStart: number;
  fanoutMax: number;
  /** Steps between the last passing and the first failing rate (each halves the gap on a log scale). */
  refine: number;
  /** A step lasts longer than stepMs when needed to hold at least this many publications (at most 10 s). */
  minPublications: number;
  manyChannels: number;
  manySubscribersPerChannel: number;
  /** First offered publications/s of the many-channels ladder. */
  manyStart: number;
  manyMax: number;
  idleConnections: number;
  idleSettleMs: number;
  docWriters: number;
  docDocs: number;
  docFields: number;
  docMs: number;
  connectConcurrency: number;
  /** (f) Channels published to, a random one per request; measured and warm-up time of each configuration. */
  apiChannels: number;
  apiMs: number;
  apiWarmUpMs: number;
}

export const PROFILES: Record<'quick' | 'full', Profile> = {
  quick: {
    name: 'quick',
    stepMs: 1000,
    maxDrainMs: 3000,
    fanout: [
      { subscribers: 1000, size: 64 },
      { subscribers: 5000, size: 1024 },
    ],
    fanoutStart: 20000,
    fanoutMax: 2_560_000,
    refine: 0,
    minPublications: 4,
    manyChannels: 1000,
    manySubscribersPerChannel: 5,
    manyStart: 1000,
    manyMax: 32000,
    idleConnections: 10000,
    idleSettleMs: 1000,
    docWriters: 100,
    docDocs: 1000,
    docFields: 8,
    docMs: 2000,
    connectConcurrency: 100,
    apiChannels: 1000,
    apiMs: 3000,
    apiWarmUpMs: 1000,
  },
  full: {
    name: 'full',
    stepMs: 3000,
    maxDrainMs: 5000,
    fanout: [
      { subscribers: 1000, size: 64 },
      { subscribers: 1000, size: 1024 },
      { subscribers: 5000, size: 64 },
      { subscribers: 5000, size: 1024 },
    ],
    fanoutStart: 10000,
    fanoutMax: 2_560_000,
    refine: 2,
    minPublications: 10,
    manyChannels: 1000,
    manySubscribersPerChannel: 5,
    manyStart: 500,
    manyMax: 64000,
    idleConnections: 20000,
    idleSettleMs: 3000,
    docWriters: 100,
    docDocs: 1000,
    docFields: 8,
    docMs: 8000,
    connectConcurrency: 100,
    apiChannels: 1000,
    apiMs: 5000,
    apiWarmUpMs: 1000,
  },
};

export interface FanoutRow {
  system: SystemName;
  subscribers: number;
  channels: number;
  size: number;
  /** Offered publications/s and the deliveries/s they imply. */
  rate: number;
  offered: number;
  result: StepResult;
  passed: boolean;
  verdict: string;
  /** Scenario e: socket reads and commands each Redis node counted from the step's start to the end of its drain. */
  redis?: NodeCounters[];
}

export interface IdleRow {
  system: SystemName;
  connections: number;
  failed: number;
  errors: string[];
  connectRate: number;
  connectSeconds: number;
  setup: LatencySummary;
  /** Per node: RSS before and after, connections it holds, bytes per connection. */
  nodes: { name: string; before: number; after: number; connections: number; perConnection: number }[];
  usage: ProcUsage[];
}

/** (e) One Redis topology's run of the many-channels ladder. */
export interface TopologyRun {
  redis: RedisTopologyName;
  /** Names of its Redis processes in the per-process CPU columns. */
  redisNodes: string[];
  rows: FanoutRow[];
  /** Redis Cluster only: each primary's slots and channels, taken once the subscribers were in. */
  placement?: PrimaryPlacement[];
  /** Redis Cluster only: the placement with each primary's CPU over every step of the ladder. */
  spread?: Spread;
}

export interface DocRow {
  system: 'switchboard' | 'naive';
  workload: 'hot' | 'many';
  writers: number;
  docs: number;
  commitsPerSec: number;
  result: DocResult;
  latency: LatencySummary;
  usage: ProcUsage[];
  /** What the machine's other processes used meanwhile, percent of one core (see othersWindow). */
  otherCpu: number;
}

/** (f) Which of a node's ports the publisher talks to: the main one, or a Switchboard gateway's `--internal-port`. */
export type ApiPort = 'main' | 'internal';

/** (f) One closed-loop configuration: `connections` keep-alive connections per node, `depth` requests in flight on each. */
export interface ApiConfig {
  port: ApiPort;
  depth: number;
  connections: number;
}

/** (f) One configuration's measured run. */
export interface ApiRow {
  system: SystemName;
  port: ApiPort;
  /** The HTTP server behind that port (uWS closes a connection on a pipelined request; node:http answers in order). */
  server: 'uWS' | 'node:http';
  depth: number;
  /** Per node. */
  connections: number;
  nodes: number;
  channels: number;
  size: number;
  /** Measured time (after the warm-up). */
  durationMs: number;
  result: ClosedLoopStep;
  /** Publishes answered OK per CPU-second of all server processes: publishes/s per server core. */
  perServerCpuSecond: number;
}

/**
 * Systems measured in some of the scenarios a, b, c and f only: the Protobuf subscribers where they receive
 * publications. Connecting idle (c) and the publish API (f) are the same gateways' figures under `switchboard`.
 */
const ONLY_IN: Partial<Record<SystemName, readonly string[]>> = { 'switchboard-protobuf': ['a', 'b'] };

/** Whether `system` is run in `scenario` (d and e are Switchboard's alone, decided by the orchestrator). */
export function takesPart(system: SystemName, scenario: string): boolean {
  return ONLY_IN[system]?.includes(scenario) ?? true;
}

let stepIds = 0;

type Log = (line: string) => void;

function fanoutPlans(cluster: Cluster, subscribers: number, channelOf: (i: number) => string): ClientPlan[] {
  return Array.from({ length: subscribers }, (_, i) => ({ port: cluster.ports[i % cluster.ports.length], channels: [channelOf(i)] }));
}

/** A ladder of offered rates: double until a step fails, then (optionally) one step between. */
async function ladder(
  profile: Profile,
  start: number,
  max: number,
  run: (level: number) => Promise<FanoutRow>,
  recover: () => Promise<void>,
): Promise<FanoutRow[]> {
  const rows: FanoutRow[] = [];
  let lastPass = 0;
  let firstFail = 0;
  for (let level = start; level <= max; level *= 2) {
    const row = await run(level);
    rows.push(row);
    if (!row.passed) {
      firstFail = level;
      break;
    }
    lastPass = level;
  }
  // Nothing passed: one look below the start so the system may still get a sustained figure.
  if (lastPass === 0) {
    await recover();
    const level = start / 4;
    const row = await run(level);
    rows.push(row);
    if (row.passed) lastPass = level;
    else firstFail = level;
  }
  for (let i = 0; i < profile.refine && lastPass > 0 && firstFail > lastPass; i++) {
    await recover();
    const level = Math.round(Math.sqrt(lastPass * firstFail));
    const row = await run(level);
    rows.push(row);
    if (row.passed) lastPass = level;
    else firstFail = level;
  }
  return rows;
}

/** (a) One channel, N subscribers spread over the nodes, stepped publish rates until p99 > 50 ms or loss. */
export async function fanoutScenario(gen: LoadGen, cluster: Cluster, profile: Profile, log: Log): Promise<FanoutRow[]> {
  const rows: FanoutRow[] = [];
  for (const { subscribers, size } of profile.fanout) {
    const channel = `${cluster.channelPrefix}fan`;
    const plans = fanoutPlans(cluster, subscribers, () => channel);
    const connected = await gen.connect(cluster, plans, profile.connectConcurrency);
    if (connected.failed > 0) throw new Error(`${cluster.system}: ${connected.failed} of ${subscribers} subscribers failed: ${connected.errors.join('; ')}`);
    const spec = (rate: number): StepSpec => ({
      step: ++stepIds,
      rate,
      durationMs: stepDuration(profile, rate),
      channels: [channel],
      pick: 'cycle',
      size,
      subscribersPerChannel: [subscribers],
      maxDrainMs: profile.maxDrainMs,
    });
    await warmUp(gen, cluster, spec(profile.fanoutStart / subscribers), log);
    const run = async (offered: number): Promise<FanoutRow> => {
      const rate = offered / subscribers;
      const result = await runStep(gen, cluster, spec(rate));
      const row: FanoutRow = { system: cluster.system, subscribers, channels: 1, size, rate, offered, result, passed: stepPassed(result), verdict: stepVerdict(result) };
      log(progressLine('a', row));
      if (!row.passed) await settle(gen);
      return row;
    };
    rows.push(...(await ladder(profile, profile.fanoutStart, profile.fanoutMax, run, () => gen.ensureConnected(cluster, profile.connectConcurrency))));
    await gen.disconnect();
  }
  return rows;
}

/**
 * (b) Many channels with a few subscribers each; each publication goes to a random channel. `afterConnect` runs
 * once every subscriber is in, before the first step; with `countRedis`, each step also counts what those Redis
 * nodes did.
 */
export async function manyChannelsScenario(
  gen: LoadGen,
  cluster: Cluster,
  profile: Profile,
  log: Log,
  opts: { scenario?: string; afterConnect?: (channels: string[]) => Promise<void>; countRedis?: RedisNode[] } = {},
): Promise<FanoutRow[]> {
  const per = profile.manySubscribersPerChannel;
  const channels = Array.from({ length: profile.manyChannels }, (_, c) => `${cluster.channelPrefix}m${c}`);
  const plans = fanoutPlans(cluster, channels.length * per, (i) => channels[Math.floor(i / per)]);
  const connected = await gen.connect(cluster, plans, profile.connectConcurrency);
  if (connected.failed > 0) throw new Error(`${cluster.system}: ${connected.failed} subscribers failed: ${connected.errors.join('; ')}`);
  await opts.afterConnect?.(channels);
  const size = 64;
  const spec = (rate: number): StepSpec => ({
    step: ++stepIds,
    rate,
    durationMs: stepDuration(profile, rate),
    channels,
    pick: 'random',
    size,
    subscribersPerChannel: channels.map(() => per),
    maxDrainMs: profile.maxDrainMs,
  });
  await warmUp(gen, cluster, spec(profile.manyStart), log);
  const run = async (rate: number): Promise<FanoutRow> => {
    const counting = opts.countRedis && (await redisCounters(opts.countRedis));
    const result = await runStep(gen, cluster, spec(rate));
    const redis = await counting?.stop();
    const row: FanoutRow = {
      system: cluster.system,
      subscribers: plans.length,
      channels: channels.length,
      size,
      rate,
      offered: rate * per,
      result,
      passed: stepPassed(result),
      verdict: stepVerdict(result),
      redis,
    };
    log(progressLine(opts.scenario ?? 'b', row));
    if (!row.passed) await settle(gen);
    return row;
  };
  const rows = await ladder(profile, profile.manyStart, profile.manyMax, run, () => gen.ensureConnected(cluster, profile.connectConcurrency));
  await gen.disconnect();
  return rows;
}

/** (e) The many-channels ladder on the Redis topology `cluster` runs on; on a Redis Cluster, where its channels live. */
export async function redisTopologyScenario(gen: LoadGen, cluster: Cluster, profile: Profile, log: Log): Promise<TopologyRun> {
  let placement: PrimaryPlacement[] | undefined;
  const afterConnect = async (channels: string[]): Promise<void> => {
    if (!cluster.redisCluster) return;
    placement = await channelPlacement(cluster, channels);
    log(`[e] channels per primary: ${placement.map((p) => `${p.name} ${p.channels} (subscribed ${p.subscribed})`).join(', ')}`);
  };
  const rows = await manyChannelsScenario(gen, cluster, profile, log, { scenario: `e ${cluster.redis}`, afterConnect, countRedis: cluster.redisNodes });
  const spread = placement && spreadOf(placement, rows.map((r) => ({ usage: r.result.usage, published: r.result.published })));
  return { redis: cluster.redis, redisNodes: cluster.redisNodes.map((n) => n.name), rows, placement, spread };
}

/** (c) Idle connections: connect rate (with a JWT each, where the system takes one) and RSS per connection. */
export async function idleScenario(gen: LoadGen, cluster: Cluster, profile: Profile, log: Log): Promise<IdleRow> {
  const n = profile.idleConnections;
  const plans = fanoutPlans(cluster, n, () => `${cluster.channelPrefix}idle`);
  const nodes = cluster.processes.filter((p) => p.side === 'sut');
  await sleep(500);
  const before = nodes.map((p) => rssBytes(p.pid));
  const window = cpuWindow([...cluster.processes, ...gen.processes]);
  const connected = await gen.connect(cluster, plans, profile.connectConcurrency);
  const usage = window.stop();
  await sleep(profile.idleSettleMs);
  const after = nodes.map((p) => rssBytes(p.pid));
  const open = await gen.openCount();
  const perNode = (i: number): number => {
    const node = nodes[i];
    if (node.name.startsWith('redis')) return 0;
    const index = Number(/\d+$/.exec(node.name)?.[0] ?? 1) - 1;
    return plans.filter((p) => p.port === cluster.ports[index]).length;
  };
  const row: IdleRow = {
    system: cluster.system,
    connections: open,
    failed: connected.failed,
    errors: connected.errors,
    connectRate: connected.rate,
    connectSeconds: connected.seconds,
    setup: connected.setup,
    nodes: nodes.map((p, i) => {
      const conns = perNode(i);
      return { name: p.name, before: before[i], after: after[i], connections: conns, perConnection: conns > 0 ? (after[i] - before[i]) / conns : NaN };
    }),
    usage,
  };
  log(
    `[c] ${cluster.system}: ${open}/${n} open, ${connected.rate.toFixed(0)} connects/s, ` +
      row.nodes
        .filter((x) => x.connections > 0)
        .map((x) => `${x.name} ${(x.perConnection / 1024).toFixed(2)} KB/conn`)
        .join(', '),
  );
  await gen.disconnect();
  await sleep(500);
  return row;
}

/** (d) Documents: Switchboard's merge path, then the naive optimistic-locking baseline on the same Redis. */
export async function documentsScenario(gen: LoadGen, cluster: Cluster, profile: Profile, log: Log): Promise<DocRow[]> {
  const rows: DocRow[] = [];
  for (const system of ['switchboard', 'naive'] as const) {
    for (const workload of ['hot', 'many'] as const) {
      const run: DocRun = {
        system,
        workload,
        writers: profile.docWriters,
        durationMs: profile.docMs,
        docs: profile.docDocs,
        fields: profile.docFields,
        host: cluster.host,
        ports: cluster.ports,
        apiKey: cluster.apiKey,
        prefix: `docs:${workload}${stepIds++}-`,
        redisUrl: cluster.redisUrl,
      };
      const window = cpuWindow([...cluster.processes, ...gen.processes]);
      const others = othersWindow();
      const result = await gen.docs.call<DocResult>('run', run);
      const usage = window.stop();
      const otherCpu = others.stop(usage.reduce((sum, u) => sum + (Number.isFinite(u.cpuSeconds) ? u.cpuSeconds : 0), 0));
      const row: DocRow = {
        system,
        workload,
        writers: run.writers,
        docs: workload === 'hot' ? 1 : run.docs,
        commitsPerSec: result.commits / (result.elapsedUs / 1e6),
        result,
        latency: mergeEncoded([result.hist]),
        usage,
        otherCpu,
      };
      log(
        `[d] ${system} ${workload}: ${row.commitsPerSec.toFixed(0)} commits/s, merged ${result.merged}, conflicts ${result.conflicts}, ` +
          `errors ${result.errors}, attempts ${result.attempts}, p99 ${row.latency.p99.toFixed(1)} ms, ` +
          `server CPU ${docServerMicros(row).toFixed(1)} µs per commit, others:${otherCpu.toFixed(0)}` +
          (result.errorSamples.length ? ` (${result.errorSamples[0]})` : ''),
      );
      rows.push(row);
    }
  }
  return rows;
}

/** Server-side CPU (every `sut` process) per commit of a documents run, µs; NaN without commits. */
export function docServerMicros(row: DocRow): number {
  const seconds = row.usage.filter((u) => u.side === 'sut').reduce((sum, u) => sum + (Number.isFinite(u.cpuSeconds) ? u.cpuSeconds : 0), 0);
  return row.result.commits > 0 ? (1e6 * seconds) / row.result.commits : NaN;
}

/** Connections per node without pipelining, and with it (as many requests in flight as 32 × 4 at depth 32). */
const API_CONNECTIONS_UNPIPELINED = 32;
const API_CONNECTIONS_PIPELINED = 4;

/**
 * (f) The configurations a system is measured in: depth 1 with 32 connections per node, and, where pipelining is
 * tried, depth 32 (and `extraDepth`, when not 1 or 32) with 4. Switchboard's main port is uWS, which cannot answer
 * pipelined asynchronous requests, so its pipelined runs go to the internal port (node:http), and depth 1 runs on
 * both for comparison. The relay is tried pipelined on its uWS port as it is (what uWS does then is the result);
 * Socket.IO's endpoint is node:http. The Pusher edge and soketi run at depth 1 only (soketi closes every connection).
 */
export function apiConfigs(system: SystemName, extraDepth: number): ApiConfig[] {
  const depths = [32, ...(extraDepth !== 1 && extraDepth !== 32 ? [extraDepth] : [])];
  const pipelined = (port: ApiPort): ApiConfig[] => depths.map((depth) => ({ port, depth, connections: API_CONNECTIONS_PIPELINED }));
  const unpipelined = (port: ApiPort): ApiConfig => ({ port, depth: 1, connections: API_CONNECTIONS_UNPIPELINED });
  switch (system) {
    case 'switchboard':
      return [unpipelined('main'), unpipelined('internal'), ...pipelined('internal')];
    case 'uws-relay':
    case 'socketio':
      return [unpipelined('main'), ...pipelined('main')];
    case 'switchboard-pusher':
    case 'soketi':
      return [unpipelined('main')];
    case 'switchboard-protobuf':
      return []; // not in f (see takesPart): its publish API is `switchboard`'s
  }
}

function apiServer(system: SystemName, port: ApiPort): 'uWS' | 'node:http' {
  return port === 'internal' || system === 'socketio' ? 'node:http' : 'uWS';
}

/**
 * (f) The HTTP publish API alone: no subscribers, a random one of 1,000 channels per publish, 64 B payloads. Closed
 * loop: every request slot sends its next publish when the previous one is answered, for a fixed time after a
 * warm-up whose result is thrown away. Switchboard's cluster must have been started with internal ports.
 */
export async function apiScenario(gen: LoadGen, cluster: Cluster, profile: Profile, extraDepth: number, log: Log): Promise<ApiRow[]> {
  const rows: ApiRow[] = [];
  const channels = Array.from({ length: profile.apiChannels }, (_, c) => `${cluster.channelPrefix}api${c}`);
  const size = 64;
  for (const config of apiConfigs(cluster.system, extraDepth)) {
    const ports = config.port === 'internal' ? cluster.internalPorts : cluster.ports;
    if (!ports) throw new Error(`${cluster.system} was started without internal ports`);
    await gen.initPublisher(cluster, config.connections, { depth: config.depth, ports });
    const name = `${cluster.system} ${config.port} port depth ${config.depth} × ${config.connections} conns/node`;
    const warm = await runClosedLoop(gen, cluster, { step: ++stepIds, durationMs: profile.apiWarmUpMs, channels, size });
    log(`warm-up [f] ${name}: ${warm.okPerSec.toFixed(0)} ok/s, ${warm.failed} failed (not counted)`);
    const result = await runClosedLoop(gen, cluster, { step: ++stepIds, durationMs: profile.apiMs, channels, size });
    const serverSeconds = result.usage.filter((u) => u.side === 'sut').reduce((sum, u) => sum + u.cpuSeconds, 0);
    const row: ApiRow = {
      system: cluster.system,
      port: config.port,
      server: apiServer(cluster.system, config.port),
      depth: config.depth,
      connections: config.connections,
      nodes: ports.length,
      channels: channels.length,
      size,
      durationMs: profile.apiMs,
      result,
      perServerCpuSecond: serverSeconds > 0 ? result.ok / serverSeconds : NaN,
    };
    log(
      `[f] ${name}: ${result.okPerSec.toFixed(0)} ok/s, failed ${result.failed} of ${result.sent}, p50=${result.latency.p50.toFixed(2)} ` +
        `p99=${result.latency.p99.toFixed(2)} ms, ${row.perServerCpuSecond.toFixed(0)} per server CPU-s, ` +
        `cpu ${result.usage.map((u) => `${u.name}:${u.cpu.toFixed(0)}`).join(' ')} others:${result.otherCpu.toFixed(0)}` +
        (result.errors.length ? ` (${result.errors[0]})` : ''),
    );
    rows.push(row);
  }
  return rows;
}

/**
 * One step at the ladder's first rate whose result is thrown away: the first seconds of a freshly started server
 * (JIT, heap growth, first publications on a channel) are not what a ladder step should measure, and they would
 * land on whichever configuration happens to come first.
 */
async function warmUp(gen: LoadGen, cluster: Cluster, spec: StepSpec, log: Log): Promise<void> {
  const r = await runStep(gen, cluster, spec);
  log(`warm-up ${cluster.system}: ${spec.rate.toFixed(1)} pub/s, p99 ${r.latency.p99.toFixed(1)} ms, missing ${r.missing} (not counted)`);
  await settle(gen);
}

/** stepMs, or longer at low rates so that a step has enough publications to say something about p99. */
function stepDuration(profile: Profile, rate: number): number {
  return Math.round(Math.min(10000, Math.max(profile.stepMs, (1000 * profile.minPublications) / rate)));
}

function progressLine(scenario: string, row: FanoutRow): string {
  const r = row.result;
  return (
    `[${scenario}] ${row.system} subs=${row.subscribers} ch=${row.channels} ${row.size}B rate=${row.rate.toFixed(1)}/s ` +
    `offered=${row.offered.toFixed(0)}/s delivered=${r.deliveredPerSec.toFixed(0)}/s p50=${r.latency.p50.toFixed(1)} ` +
    `p99=${r.latency.p99.toFixed(1)} max=${r.latency.max.toFixed(1)} ms missing=${r.missing} ` +
    `cpu ${r.usage.map((u) => `${u.name}:${u.cpu.toFixed(0)}`).join(' ')} others:${r.otherCpu.toFixed(0)} → ${row.verdict}`
  );
}

/** After a failed step, give the servers a moment to flush or drop what they still hold. */
async function settle(gen: LoadGen): Promise<void> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const counts = await Promise.all(gen.subs.map((s) => s.call<{ received: number; stray: number }>('count')));
    const total = counts.reduce((n, c) => n + c.received + c.stray, 0);
    if (total === last) return;
    last = total;
    await sleep(250);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
