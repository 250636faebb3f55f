// The load generator as the orchestrator drives it: subscriber, publisher and writer processes, connecting
// subscribers, one measured step (offered rate for a while, drain, count, merge histograms, CPU per process), and
// one closed-loop run of the publish API alone.
import { ChildLink } from './ipc';
import { mergeEncoded, type LatencySummary } from './latency';
import { nowMicros } from './payload';
import { cpuWindow, othersWindow, pin, type NamedProcess, type ProcUsage } from './procstat';
import type { Cluster } from './systems';
import type { ConnectArgs, ConnectResult, StepReport } from './sub_proc';
import type { ClosedLoopResult, ClosedLoopRun, PublisherInit, PublishResult, PublishRun } from './pub_proc';

/** Sockets one subscriber process holds at most (each process may open ~20k files here). */
export const MAX_SOCKETS_PER_PROCESS = 15000;

export interface LoadGenOptions {
  subscriberProcesses: number;
  /** CPU list for the load generator (taskset -c), or undefined not to pin. */
  cpus?: string;
}

export interface ConnectSummary {
  ok: number;
  failed: number;
  errors: string[];
  /** Connections set up per second over the whole connect phase (all processes). */
  rate: number;
  seconds: number;
  setup: LatencySummary;
}

export interface ClientPlan {
  port: number;
  channels: string[];
}

export class LoadGen {
  readonly processes: NamedProcess[];
  private planned: ClientPlan[] = [];

  private constructor(
    readonly subs: ChildLink[],
    readonly pub: ChildLink,
    readonly docs: ChildLink,
  ) {
    this.processes = [
      ...subs.map((s) => ({ name: s.name, pid: s.pid, side: 'load' as const })),
      { name: 'pub', pid: pub.pid, side: 'load' },
      { name: 'docs', pid: docs.pid, side: 'load' },
      { name: 'orchestrator', pid: process.pid, side: 'load' },
    ];
  }

  static start(opts: LoadGenOptions): LoadGen {
    // A larger heap: 15k sockets with their buffers and histograms outgrow the default on a busy step.
    const heap = ['--max-old-space-size=4096'];
    const subs = Array.from({ length: opts.subscriberProcesses }, (_, i) => ChildLink.start('sub_proc', `sub${i + 1}`, heap));
    const gen = new LoadGen(subs, ChildLink.start('pub_proc', 'pub', heap), ChildLink.start('doc_proc', 'docs', heap));
    if (opts.cpus !== undefined) for (const p of gen.processes) pin(p.pid, opts.cpus);
    return gen;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.subs, this.pub, this.docs].map((c) => c.stop()));
  }

  /** Connects one client per plan entry, spread evenly over the subscriber processes. */
  async connect(cluster: Cluster, plans: ClientPlan[], concurrencyPerProcess: number): Promise<ConnectSummary> {
    const n = this.subs.length;
    if (plans.length > n * MAX_SOCKETS_PER_PROCESS) throw new Error(`${plans.length} sockets need more than ${n} subscriber processes`);
    this.planned = plans;
    const results = await Promise.all(
      this.subs.map((sub, i) => {
        const args: ConnectArgs = {
          proto: cluster.proto,
          host: cluster.host,
          clients: plans.filter((_, j) => j % n === i),
          secret: cluster.secret,
          appKey: cluster.pusherApp?.key,
          userPrefix: `${sub.name}-u`,
          concurrency: concurrencyPerProcess,
        };
        return sub.call<ConnectResult>('connect', args);
      }),
    );
    const ok = results.reduce((s, r) => s + r.ok, 0);
    const start = Math.min(...results.map((r) => r.startUs));
    const end = Math.max(...results.map((r) => r.endUs));
    const seconds = (end - start) / 1e6;
    return {
      ok,
      failed: results.reduce((s, r) => s + r.failed, 0),
      errors: results.flatMap((r) => r.errors).slice(0, 5),
      rate: seconds > 0 ? ok / seconds : 0,
      seconds,
      setup: mergeEncoded(results.map((r) => r.setupHist)),
    };
  }

  /**
   * Points the publisher at a system's nodes and publish API, with `poolPerPort` keep-alive connections per node and
   * `depth` requests in flight on each; `ports` (one per node) replaces the nodes' main ports, e.g. with their
   * internal ports.
   */
  async initPublisher(cluster: Cluster, poolPerPort: number, opts: { depth?: number; ports?: number[] } = {}): Promise<void> {
    const init: PublisherInit = {
      host: cluster.host,
      ports: opts.ports ?? cluster.ports,
      poolPerPort,
      depth: opts.depth ?? 1,
      headers: cluster.apiHeaders,
      api: cluster.publishApi,
    };
    await this.pub.call('init', init);
  }

  async openCount(): Promise<number> {
    const counts = await Promise.all(this.subs.map((s) => s.call<number>('open')));
    return counts.reduce((a, b) => a + b, 0);
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.call('disconnect')));
  }

  /** Reconnects every planned client when any of them was closed (after an overloaded step). */
  async ensureConnected(cluster: Cluster, concurrencyPerProcess: number): Promise<void> {
    if ((await this.openCount()) === this.planned.length) return;
    const plans = this.planned;
    await this.disconnect();
    const again = await this.connect(cluster, plans, concurrencyPerProcess);
    if (again.failed > 0) throw new Error(`reconnecting subscribers failed: ${again.errors.join('; ')}`);
  }
}

export interface StepSpec {
  step: number;
  /** Publications per second. */
  rate: number;
  durationMs: number;
  channels: string[];
  pick: 'cycle' | 'random';
  size: number;
  /** Subscribers of each channel (same order as `channels`). */
  subscribersPerChannel: number[];
  /** Longest wait for deliveries after the last publish was answered. */
  maxDrainMs: number;
}

export interface StepResult {
  published: number;
  publishFailed: number;
  publishErrors: string[];
  /** The publisher's worst lag behind its schedule, ms (large: the load generator could not offer the rate). */
  publisherLagMs: number;
  expected: number;
  received: number;
  /** expected - received after the drain: deliveries that never came. */
  missing: number;
  stray: number;
  malformed: number;
  /** Server-side closes of subscriber connections during the step. */
  closed: number;
  latency: LatencySummary;
  /** Publish API request latency as the publisher saw it (includes waiting for a free connection). */
  publishLatency: LatencySummary;
  /** Deliveries per second over the publishing time. */
  deliveredPerSec: number;
  /** Deliveries per second from the first scheduled publish to the last delivery: what the system carried, however late. */
  throughput: number;
  usage: ProcUsage[];
  /** CPU % (of one core) that processes outside the benchmark used during the step, steal included. */
  otherCpu: number;
}

/** Latency budget and zero loss: what a step must meet to count as sustained. */
export const P99_BUDGET_MS = 50;

export function stepPassed(r: StepResult): boolean {
  return r.missing === 0 && r.publishFailed === 0 && r.closed === 0 && r.latency.count > 0 && r.latency.p99 <= P99_BUDGET_MS;
}

export function stepVerdict(r: StepResult): string {
  const reasons: string[] = [];
  if (r.missing > 0) reasons.push('loss');
  if (r.publishFailed > 0) reasons.push('publish errors');
  if (r.closed > 0) reasons.push('disconnects');
  if (!(r.latency.p99 <= P99_BUDGET_MS)) reasons.push(`p99>${P99_BUDGET_MS}ms`);
  return reasons.length === 0 ? 'ok' : reasons.join(', ');
}

async function sumCounts(gen: LoadGen): Promise<number> {
  const counts = await Promise.all(gen.subs.map((s) => s.call<{ received: number }>('count')));
  return counts.reduce((a, c) => a + c.received, 0);
}

async function totalCloses(gen: LoadGen): Promise<number> {
  const reports = await Promise.all(gen.subs.map((s) => s.call<StepReport>('report')));
  return reports.reduce((n, r) => n + Object.values(r.closes).reduce((a, b) => a + b, 0), 0);
}

/** One step: publish at the offered rate, wait for the deliveries, and account for every one of them. */
export async function runStep(gen: LoadGen, cluster: Cluster, spec: StepSpec): Promise<StepResult> {
  await Promise.all(gen.subs.map((s) => s.call('step', { step: spec.step })));
  const closedBefore = await totalCloses(gen);
  const window = cpuWindow([...cluster.processes, ...gen.processes]);
  const others = othersWindow();
  const run: PublishRun = {
    step: spec.step,
    rate: spec.rate,
    durationMs: spec.durationMs,
    channels: spec.channels,
    pick: spec.pick,
    size: spec.size,
    settleMs: 10000,
  };
  const pub = await gen.pub.call<PublishResult>('run', run);
  const usage = window.stop();
  const otherCpu = others.stop(usage.reduce((sum, u) => sum + (Number.isFinite(u.cpuSeconds) ? u.cpuSeconds : 0), 0));
  const expected = pub.perChannel.reduce((sum, ok, c) => sum + ok * spec.subscribersPerChannel[c], 0);

  // Drain: until everything expected arrived, nothing arrived for a while, or the drain limit.
  const drainStart = Date.now();
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const received = await sumCounts(gen);
    if (received >= expected) break;
    if (received !== last) {
      last = received;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > 1000 || Date.now() - drainStart > spec.maxDrainMs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const reports = await Promise.all(gen.subs.map((s) => s.call<StepReport>('report')));
  const received = reports.reduce((n, r) => n + r.received, 0);
  const closedAfter = reports.reduce((n, r) => n + Object.values(r.closes).reduce((a, b) => a + b, 0), 0);
  const latency = mergeEncoded(reports.map((r) => r.hist));
  const seconds = Math.max(1e-3, (pub.endUs - pub.startUs) / 1e6);
  return {
    published: pub.ok,
    publishFailed: pub.failed,
    publishErrors: pub.errors,
    publisherLagMs: pub.maxLagUs / 1000,
    expected,
    received,
    missing: Math.max(0, expected - received),
    stray: reports.reduce((n, r) => n + r.stray, 0),
    malformed: reports.reduce((n, r) => n + r.malformed, 0),
    closed: closedAfter - closedBefore,
    latency,
    publishLatency: mergeEncoded([pub.responseHist]),
    deliveredPerSec: received / Math.max(seconds, spec.durationMs / 1000),
    throughput: received / Math.max(seconds, spec.durationMs / 1000, (Math.max(...reports.map((r) => r.lastUs)) - pub.startUs) / 1e6),
    usage,
    otherCpu,
  };
}

export interface ClosedLoopSpec {
  step: number;
  durationMs: number;
  channels: string[];
  size: number;
}

export interface ClosedLoopStep {
  /** Requests written, answered OK, and failed (answered otherwise, cut off, or unanswered). */
  sent: number;
  ok: number;
  failed: number;
  errors: string[];
  seconds: number;
  /** Publishes answered OK per second. */
  okPerSec: number;
  /** Latency of the requests answered OK. */
  latency: LatencySummary;
  usage: ProcUsage[];
  otherCpu: number;
}

/** One closed-loop run of the publish API as the publisher was set up (initPublisher), with CPU per process. */
export async function runClosedLoop(gen: LoadGen, cluster: Cluster, spec: ClosedLoopSpec): Promise<ClosedLoopStep> {
  const window = cpuWindow([...cluster.processes, ...gen.processes]);
  const others = othersWindow();
  const run: ClosedLoopRun = { step: spec.step, durationMs: spec.durationMs, channels: spec.channels, size: spec.size, settleMs: 10000 };
  const r = await gen.pub.call<ClosedLoopResult>('closedLoop', run);
  const usage = window.stop();
  const otherCpu = others.stop(usage.reduce((sum, u) => sum + (Number.isFinite(u.cpuSeconds) ? u.cpuSeconds : 0), 0));
  const seconds = Math.max(1e-3, (r.endUs - r.startUs) / 1e6);
  return {
    sent: r.sent,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
    seconds,
    okPerSec: r.ok / seconds,
    latency: mergeEncoded([r.responseHist]),
    usage,
    otherCpu,
  };
}

/** Microseconds since an arbitrary origin: for wall-clock spans of the orchestrator. */
export function elapsedSince(startUs: number): number {
  return (nowMicros() - startUs) / 1e6;
}
