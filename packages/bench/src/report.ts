// Markdown tables of a run: one row per step, the sustained figures side by side, and the targets of issues 6, 10, 11 and 13
import { SPREAD_TARGET } from './cluster_spread';
import { P99_BUDGET_MS } from './runner';
import { docServerMicros, type ApiRow, type DocRow, type FanoutRow, type IdleRow, type TopologyRun } from './scenarios';
import { REDIS_TOPOLOGY_LABELS, SYSTEM_LABELS, type SystemName } from './systems';
import type { ProcUsage } from './procstat';

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  redis: string;
  loadBefore: string;
  loadAfter?: string;
  layout: string;
  started: string;
  command: string;
  /** `git describe --always --dirty` of the checkout, when it is one. */
  commit?: string;
  /** NODE_OPTIONS of the Switchboard processes. */
  nodeOptions?: string;
  seconds?: number;
}

export interface Results {
  profile: string;
  machine: Machine;
  /** Switchboard's bench channels kept history (offsets, recovery) in this run; absent in older results: on. */
  history?: boolean;
  fanout: FanoutRow[];
  many: FanoutRow[];
  idle: IdleRow[];
  docs: DocRow[];
  /** (e) The many-channels ladder per Redis topology. */
  topologies: TopologyRun[];
  /** (f) The publish API alone, one row per system and configuration. */
  api: ApiRow[];
  /** Systems asked for that could not run here, and why (soketi when it does not install or start). */
  skipped: { system: SystemName; reason: string }[];
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const ms = (n: number): string => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) : '–');
const kb = (bytes: number): string => (Number.isFinite(bytes) ? (bytes / 1024).toFixed(2) : '–');

function cpu(usage: ProcUsage[], side: 'sut' | 'load'): string {
  const mine = usage.filter((u) => u.side === side && (side === 'sut' || u.cpu >= 0.5));
  const total = mine.reduce((s, u) => s + u.cpu, 0);
  return `${total.toFixed(0)} (${mine.map((u) => `${u.name} ${u.cpu.toFixed(0)}`).join(', ')})`;
}

/**
 * Server CPU (all server processes) per delivery of a step, µs: the cost figure least moved by other load on the
 * machine. CPU is measured over the publishing time only, so a step whose deliveries trailed on after it (an
 * overloaded one: throughput to the last delivery under 95 % of the rate over the publishing time) gets none.
 */
function cpuPerDelivery(row: FanoutRow): number {
  const r = row.result;
  if (!(r.received > 0) || r.throughput < 0.95 * r.deliveredPerSec) return NaN;
  const seconds = r.usage.filter((u) => u.side === 'sut').reduce((s, u) => s + u.cpuSeconds, 0);
  return (1e6 * seconds) / r.received;
}

function stepRows(rows: FanoutRow[]): string[][] {
  return rows.map((r) => [
    SYSTEM_LABELS[r.system],
    int(r.subscribers),
    String(r.size),
    r.rate >= 100 ? int(r.rate) : r.rate.toFixed(1),
    int(r.offered),
    int(r.result.deliveredPerSec),
    int(r.result.throughput),
    ms(r.result.latency.p50),
    ms(r.result.latency.p99),
    ms(r.result.latency.p999),
    ms(r.result.latency.max),
    int(r.result.missing),
    ms(r.result.publishLatency.p99),
    cpu(r.result.usage, 'sut'),
    ms(cpuPerDelivery(r)),
    cpu(r.result.usage, 'load'),
    Number.isFinite(r.result.otherCpu) ? r.result.otherCpu.toFixed(0) : '–',
    r.verdict,
  ]);
}

const STEP_HEADER = [
  'system',
  'subs',
  'payload B',
  'pub/s',
  'offered deliveries/s',
  'delivered/s',
  'throughput/s (to last delivery)',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  'max ms',
  'lost',
  'publish p99 ms',
  'server CPU % (per process)',
  'server CPU µs per delivery',
  'load-gen CPU %',
  'other processes CPU %',
  'verdict',
];

/** The highest delivered/s among passing steps of each (system, subscribers, size). */
export function sustained(rows: FanoutRow[]): Map<string, number> {
  const best = new Map<string, number>();
  for (const [key, row] of bestRows(rows)) best.set(key, row ? row.result.deliveredPerSec : 0);
  return best;
}

function bestRows(rows: FanoutRow[]): Map<string, FanoutRow | undefined> {
  const best = new Map<string, FanoutRow | undefined>();
  for (const r of rows) {
    const key = `${r.system}|${r.subscribers}|${r.size}`;
    const current = best.get(key);
    if (!best.has(key)) best.set(key, undefined);
    if (r.passed && (!current || r.result.deliveredPerSec > current.result.deliveredPerSec)) best.set(key, r);
  }
  return best;
}

/** The highest throughput among steps without loss, publish errors or disconnects, whatever their latency. */
export function capacity(rows: FanoutRow[]): Map<string, number> {
  const best = new Map<string, number>();
  for (const r of rows) {
    const key = `${r.system}|${r.subscribers}|${r.size}`;
    const clean = r.result.missing === 0 && r.result.publishFailed === 0 && r.result.closed === 0;
    best.set(key, Math.max(best.get(key) ?? 0, clean ? r.result.throughput : 0));
  }
  return best;
}

/** Deliveries per second of server CPU (all server processes) at the best passing step. */
function efficiency(row: FanoutRow | undefined): number {
  if (!row) return NaN;
  const cpu = row.result.usage.filter((u) => u.side === 'sut').reduce((s, u) => s + u.cpu, 0) / 100;
  return cpu > 0 ? row.result.deliveredPerSec / cpu : NaN;
}

function configs(rows: FanoutRow[]): { subscribers: number; size: number }[] {
  const seen = new Map<string, { subscribers: number; size: number }>();
  for (const r of rows) seen.set(`${r.subscribers}|${r.size}`, { subscribers: r.subscribers, size: r.size });
  return [...seen.values()];
}

function ratio(a: number, b: number): string {
  if (!(b > 0)) return a > 0 ? '∞' : '–';
  return `${(a / b).toFixed(2)}×`;
}

/** The ratios the issues ask for, as columns where both systems ran: numerator, denominator, label. */
const COMPARISONS: [SystemName, SystemName, string][] = [
  ['switchboard', 'uws-relay', 'Switchboard ÷ relay'],
  ['switchboard', 'socketio', 'Switchboard ÷ Socket.IO'],
  ['switchboard-pusher', 'soketi', 'Pusher edge ÷ soketi'],
  ['switchboard-pusher', 'uws-relay', 'Pusher edge ÷ relay'],
  ['switchboard-pusher', 'switchboard', 'Pusher edge ÷ Centrifugo edge'],
];

function sustainedTable(rows: FanoutRow[], what: string): string {
  const best = sustained(rows);
  const cap = capacity(rows);
  const rowsOf = bestRows(rows);
  const systems = [...new Set(rows.map((r) => r.system))];
  const comparisons = COMPARISONS.filter(([a, b]) => systems.includes(a) && systems.includes(b));
  const get = (s: SystemName, c: { subscribers: number; size: number }): number => best.get(`${s}|${c.subscribers}|${c.size}`) ?? NaN;
  const getCap = (s: SystemName, c: { subscribers: number; size: number }): number => cap.get(`${s}|${c.subscribers}|${c.size}`) ?? NaN;
  const eff = (s: SystemName, c: { subscribers: number; size: number }): number => efficiency(rowsOf.get(`${s}|${c.subscribers}|${c.size}`));
  return table(
    [
      what,
      'payload B',
      ...systems.map((s) => `${SYSTEM_LABELS[s]} deliveries/s`),
      ...comparisons.map(([, , label]) => label),
      ...systems.map((s) => `${SYSTEM_LABELS[s]} zero-loss capacity/s (any latency)`),
      ...comparisons.map(([, , label]) => `capacity: ${label}`),
      ...systems.map((s) => `${SYSTEM_LABELS[s]} deliveries per server CPU-second`),
    ],
    configs(rows).map((c) => [
      int(c.subscribers),
      String(c.size),
      ...systems.map((s) => int(get(s, c))),
      ...comparisons.map(([a, b]) => ratio(get(a, c), get(b, c))),
      ...systems.map((s) => int(getCap(s, c))),
      ...comparisons.map(([a, b]) => ratio(getCap(a, c), getCap(b, c))),
      ...systems.map((s) => int(eff(s, c))),
    ]),
  );
}

function idleTable(rows: IdleRow[]): string {
  return table(
    ['system', 'connections', 'failed', 'connects/s', 'setup p50 ms', 'setup p99 ms', 'RSS per connection (per node)', 'RSS after (per node)', 'server CPU % while connecting', 'load-gen CPU %'],
    rows.map((r) => [
      SYSTEM_LABELS[r.system],
      int(r.connections),
      int(r.failed),
      int(r.connectRate),
      ms(r.setup.p50),
      ms(r.setup.p99),
      r.nodes.filter((n) => n.connections > 0).map((n) => `${n.name} ${kb(n.perConnection)} KB`).join(', '),
      r.nodes.map((n) => `${n.name} ${(n.after / 1048576).toFixed(0)} MiB`).join(', '),
      cpu(r.usage, 'sut'),
      cpu(r.usage, 'load'),
    ]),
  );
}

function docTable(rows: DocRow[]): string {
  return table(
    ['system', 'workload', 'writers', 'docs', 'commits/s', 'applied', 'merged', 'conflicts', 'errors', 'attempts', 'wasted attempts', 'p50 ms', 'p99 ms', 'max ms', 'server CPU %', 'server CPU µs per commit', 'load-gen CPU %', 'other processes CPU %'],
    rows.map((r) => [
      r.system === 'switchboard' ? 'Switchboard (doc_update, merge)' : 'naive optimistic locking (Redis CAS)',
      r.workload === 'hot' ? 'one hot doc, disjoint fields' : `random writers, ${r.docs} docs`,
      int(r.writers),
      int(r.docs),
      int(r.commitsPerSec),
      int(r.result.applied),
      int(r.result.merged),
      int(r.result.conflicts),
      int(r.result.errors),
      int(r.result.attempts),
      r.system === 'naive' ? `${int(r.result.attempts - r.result.commits)} (${((100 * (r.result.attempts - r.result.commits)) / Math.max(1, r.result.attempts)).toFixed(0)}%)` : '–',
      ms(r.latency.p50),
      ms(r.latency.p99),
      ms(r.latency.max),
      cpu(r.usage, 'sut'),
      Number.isFinite(docServerMicros(r)) ? docServerMicros(r).toFixed(1) : '–',
      cpu(r.usage, 'load'),
      Number.isFinite(r.otherCpu) ? r.otherCpu.toFixed(0) : '–',
    ]),
  );
}

/** Per Redis process (and their sum, for several): `amount` per 1,000 successful publications of the step. */
function perThousand(row: FanoutRow, redisNodes: string[], amount: (name: string) => number): { name: string; value: number }[] {
  const per = (x: number): number => (row.result.published > 0 ? (1000 * x) / row.result.published : NaN);
  const nodes = redisNodes.map((name) => ({ name, value: per(amount(name)) }));
  if (nodes.length > 1) nodes.push({ name: 'all', value: nodes.reduce((sum, n) => sum + n.value, 0) });
  return nodes;
}

/** Redis CPU-seconds per 1,000 publications of a step, per node. */
function redisCpuPer1000(row: FanoutRow, redisNodes: string[]): { name: string; value: number }[] {
  return perThousand(row, redisNodes, (name) => row.result.usage.find((u) => u.name === name)?.cpuSeconds ?? NaN);
}

/** Socket reads Redis processed per 1,000 publications of a step, per node: how many publications a write carried. */
function redisReadsPer1000(row: FanoutRow, redisNodes: string[]): { name: string; value: number }[] {
  return perThousand(row, redisNodes, (name) => row.redis?.find((c) => c.name === name)?.reads ?? NaN);
}

const cpuS = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '–');
const factor = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}` : n === Infinity ? '∞' : '–');

function perNode(values: { name: string; value: number }[], format: (n: number) => string = cpuS): string {
  return values.length === 1 ? format(values[0].value) : values.map((v) => `${v.name} ${format(v.value)}`).join(', ');
}

/** The best passing step of one ladder (one system, subscriber count and size). */
function bestStep(rows: FanoutRow[]): FanoutRow | undefined {
  return rows.filter((r) => r.passed).sort((a, b) => b.result.deliveredPerSec - a.result.deliveredPerSec)[0];
}


function topologySteps(runs: TopologyRun[]): string {
  return table(
    [
      'Redis',
      'pub/s',
      'offered deliveries/s',
      'delivered/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'lost',
      'publish p99 ms',
      'server CPU % (per process)',
      'Redis CPU-s per 1,000 publications (per node)',
      'Redis socket reads per 1,000 publications (per node)',
      'load-gen CPU %',
      'verdict',
    ],
    runs.flatMap((run) =>
      run.rows.map((r) => [
        REDIS_TOPOLOGY_LABELS[run.redis],
        int(r.rate),
        int(r.offered),
        int(r.result.deliveredPerSec),
        ms(r.result.latency.p50),
        ms(r.result.latency.p99),
        ms(r.result.latency.max),
        int(r.result.missing),
        ms(r.result.publishLatency.p99),
        cpu(r.result.usage, 'sut'),
        perNode(redisCpuPer1000(r, run.redisNodes)),
        perNode(redisReadsPer1000(r, run.redisNodes), int),
        cpu(r.result.usage, 'load'),
        r.verdict,
      ]),
    ),
  );
}

function topologySummary(runs: TopologyRun[]): string {
  return table(
    [
      'Redis',
      'sustained deliveries/s (best passing step)',
      'at pub/s',
      'zero-loss capacity/s (any latency)',
      'deliveries per server CPU-second',
      'Redis CPU-s per 1,000 publications at that step (per node)',
      'Redis socket reads per 1,000 publications at that step (per node)',
      'server CPU % at that step (per process)',
    ],
    runs.map((run) => {
      const best = bestStep(run.rows);
      return [
        REDIS_TOPOLOGY_LABELS[run.redis],
        int(best?.result.deliveredPerSec ?? 0),
        best ? int(best.rate) : '–',
        int([...capacity(run.rows).values()][0] ?? 0),
        int(efficiency(best)),
        best ? perNode(redisCpuPer1000(best, run.redisNodes)) : '–',
        best ? perNode(redisReadsPer1000(best, run.redisNodes), int) : '–',
        best ? cpu(best.result.usage, 'sut') : '–',
      ];
    }),
  );
}

function spreadSection(run: TopologyRun): string[] {
  const spread = run.spread;
  if (!spread) return [];
  const met = (x: number): string => (x <= SPREAD_TARGET ? 'yes' : '**no**');
  return [
    '',
    `How ${int(spread.primaries.reduce((n, p) => n + p.channels, 0))} channels and their Redis CPU spread over the primaries ` +
      `(CPU summed over the publishing time of all ${spread.steps} steps of its ladder, ${int(spread.published)} publications):`,
    '',
    table(
      [
        'primary',
        'port',
        'slots',
        'channels (CLUSTER KEYSLOT)',
        'sharded subscriptions held (PUBSUB SHARDCHANNELS)',
        'Redis CPU-s',
        'Redis CPU-s per 1,000 publications',
        'CPU share',
      ],
      [
        ...spread.primaries.map((p) => [
          p.name,
          String(p.port),
          int(p.slots),
          int(p.channels),
          int(p.subscribed),
          p.cpuSeconds.toFixed(2),
          cpuS(p.cpuPer1000),
          `${(100 * p.cpuShare).toFixed(1)} %`,
        ]),
        ['max/min', '', '', factor(spread.channelsMaxMin), '', '', '', factor(spread.cpuMaxMin)],
      ],
    ),
    '',
    `Issue 10 wants max/min ≤ ${SPREAD_TARGET} over the primaries: channels ${factor(spread.channelsMaxMin)} (${met(spread.channelsMaxMin)}), ` +
      `Redis CPU ${factor(spread.cpuMaxMin)} (${met(spread.cpuMaxMin)}).`,
  ];
}

function apiTable(rows: ApiRow[]): string {
  return table(
    [
      'system',
      'port',
      'depth',
      'connections per node',
      'publishes/s answered OK',
      'failed',
      'p50 ms',
      'p99 ms',
      'server CPU % (per process)',
      'publishes per server CPU-second',
      'load-gen CPU %',
      'other processes CPU %',
      'first error',
    ],
    rows.map((r) => [
      SYSTEM_LABELS[r.system],
      `${r.port} (${r.server})`,
      String(r.depth),
      `${r.connections} × ${r.nodes} nodes`,
      int(r.result.okPerSec),
      `${int(r.result.failed)} of ${int(r.result.sent)}`,
      ms(r.result.latency.p50),
      ms(r.result.latency.p99),
      cpu(r.result.usage, 'sut'),
      int(r.perServerCpuSecond),
      cpu(r.result.usage, 'load'),
      Number.isFinite(r.result.otherCpu) ? r.result.otherCpu.toFixed(0) : '–',
      r.result.errors.length ? r.result.errors[0].replace(/\|/g, '/').slice(0, 120) : '',
    ]),
  );
}

export interface Target {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

/** Issue 13's ratios to the relay: (a) fan-out, (b) many channels with history on and with none. */
const FANOUT_VS_RELAY = 0.8;
const MANY_VS_RELAY_HISTORY = 0.6;
const MANY_VS_RELAY_NO_HISTORY = 0.8;
const IDLE_KB_PER_CONNECTION = 2.5;
const CONNECTS_VS_RELAY = 0.9;

/** The Switchboard systems held to the relay targets: each client edge (issue 13 "the targets hold for each"). */
const SWITCHBOARD_EDGES: Array<[system: string, label: string]> = [
  ['switchboard', 'Switchboard (JSON)'],
  ['switchboard-protobuf', 'Switchboard (Protobuf)'],
  ['switchboard-pusher', 'Switchboard (Pusher edge)'],
];

export function targets(res: Results): Target[] {
  const out: Target[] = [];
  const best = sustained(res.fanout);
  const cap = capacity(res.fanout);
  const both = (key: (s: string) => string, a: string, b: string): string =>
    `${ratio(best.get(key(a)) ?? NaN, best.get(key(b)) ?? NaN)} (zero-loss capacity: ${ratio(cap.get(key(a)) ?? NaN, cap.get(key(b)) ?? NaN)})`;
  for (const c of configs(res.fanout)) {
    const key = (s: string): string => `${s}|${c.subscribers}|${c.size}`;
    const relay = best.get(key('uws-relay'));
    for (const [system, label] of SWITCHBOARD_EDGES) {
      const sb = best.get(key(system));
      if (sb === undefined || relay === undefined) continue;
      out.push({
        what: `(a) ${c.subscribers} subs, ${c.size} B: ${label} vs relay (issue 13)`,
        target: `≥ ${FANOUT_VS_RELAY}×`,
        measured: both(key, system, 'uws-relay'),
        met: relay > 0 ? sb / relay >= FANOUT_VS_RELAY : undefined,
      });
    }
    const sb = best.get(key('switchboard'));
    const sio = best.get(key('socketio'));
    if (sb !== undefined && sio !== undefined) {
      out.push({ what: `(a) ${c.subscribers} subs, ${c.size} B vs Socket.IO (issue 6)`, target: '≥ 10×', measured: both(key, 'switchboard', 'socketio'), met: sio > 0 ? sb / sio >= 10 : sb > 0 ? true : undefined });
    }
  }
  // Issue 11: the Pusher edge at ≥ 3× soketi, fan-out and many channels.
  const pusherVsSoketi = (what: string, best: Map<string, number>, cap: Map<string, number>, c: { subscribers: number; size: number }): void => {
    const key = (s: string): string => `${s}|${c.subscribers}|${c.size}`;
    const edge = best.get(key('switchboard-pusher'));
    const soketi = best.get(key('soketi'));
    if (edge === undefined || soketi === undefined) return;
    out.push({
      what: `${what}: Pusher edge vs soketi (issue 11)`,
      target: '≥ 3×',
      measured: `${ratio(edge, soketi)} (zero-loss capacity: ${ratio(cap.get(key('switchboard-pusher')) ?? NaN, cap.get(key('soketi')) ?? NaN)})`,
      met: soketi > 0 ? edge / soketi >= 3 : edge > 0 ? true : undefined,
    });
  };
  for (const c of configs(res.fanout)) pusherVsSoketi(`(a) ${c.subscribers} subs, ${c.size} B`, best, cap, c);
  const many = sustained(res.many);
  const manyCap = capacity(res.many);
  for (const c of configs(res.many)) pusherVsSoketi('(b) 1000 channels × 5', many, manyCap, c);
  const history = res.history !== false;
  const manyTarget = history ? MANY_VS_RELAY_HISTORY : MANY_VS_RELAY_NO_HISTORY;
  for (const c of configs(res.many)) {
    const key = (s: string): string => `${s}|${c.subscribers}|${c.size}`;
    const relay = many.get(key('uws-relay'));
    for (const [system, label] of SWITCHBOARD_EDGES) {
      const sb = many.get(key(system));
      if (sb === undefined || relay === undefined) continue;
      out.push({
        what: `(b) 1000 channels × 5, history ${history ? 'on' : 'off'}: ${label} vs relay (issue 13)`,
        target: `≥ ${manyTarget}×`,
        measured: `${ratio(sb, relay)} (zero-loss capacity: ${ratio(manyCap.get(key(system)) ?? NaN, manyCap.get(key('uws-relay')) ?? NaN)})`,
        met: relay > 0 ? sb / relay >= manyTarget : undefined,
      });
    }
  }
  const idle = res.idle.find((r) => r.system === 'switchboard');
  const relayIdle = res.idle.find((r) => r.system === 'uws-relay');
  if (idle) {
    const worst = Math.max(...idle.nodes.filter((n) => n.connections > 0).map((n) => n.perConnection));
    out.push({
      what: `(c) gateway RSS per idle connection (${int(idle.connections)} conns)`,
      target: `≤ ${IDLE_KB_PER_CONNECTION} KB`,
      measured: `${kb(worst)} KB (worst gateway)`,
      met: worst <= IDLE_KB_PER_CONNECTION * 1024,
    });
    if (relayIdle) {
      out.push({
        what: "(c) JWT-authenticated connects/s vs the relay's plain connects/s",
        target: `≥ ${CONNECTS_VS_RELAY}×`,
        measured: `${int(idle.connectRate)}/s vs ${int(relayIdle.connectRate)}/s: ${ratio(idle.connectRate, relayIdle.connectRate)}`,
        met: relayIdle.connectRate > 0 ? idle.connectRate / relayIdle.connectRate >= CONNECTS_VS_RELAY : undefined,
      });
    }
  }
  const hot = res.docs.find((r) => r.system === 'switchboard' && r.workload === 'hot');
  const naiveHot = res.docs.find((r) => r.system === 'naive' && r.workload === 'hot');
  if (hot) {
    out.push({
      what: '(d) hot document, 100 disjoint writers',
      target: '≥ 10,000 commits/s, 0 conflicts',
      measured: `${int(hot.commitsPerSec)}/s, ${int(hot.result.conflicts)} conflicts, p99 ${ms(hot.latency.p99)} ms${naiveHot ? ` (naive: ${int(naiveHot.commitsPerSec)}/s, p99 ${ms(naiveHot.latency.p99)} ms)` : ''}`,
      met: hot.commitsPerSec >= 10000 && hot.result.conflicts === 0,
    });
  }
  const many1000 = res.docs.find((r) => r.system === 'switchboard' && r.workload === 'many');
  const naiveMany = res.docs.find((r) => r.system === 'naive' && r.workload === 'many');
  if (many1000) {
    out.push({
      what: `(d) ${many1000.docs} documents, random writers`,
      target: '≥ 20,000 commits/s',
      measured: `${int(many1000.commitsPerSec)}/s, p99 ${ms(many1000.latency.p99)} ms${naiveMany ? ` (naive: ${int(naiveMany.commitsPerSec)}/s, p99 ${ms(naiveMany.latency.p99)} ms)` : ''}`,
      met: many1000.commitsPerSec >= 20000,
    });
  }
  return out;
}

export function renderReport(res: Results): string {
  const m = res.machine;
  const parts: string[] = [
    `# Switchboard benchmark (${res.profile})`,
    '',
    `- command: \`${m.command}\`${m.commit ? ` at commit ${m.commit}` : ''}; Switchboard processes' NODE_OPTIONS: ${m.nodeOptions ? `\`${m.nodeOptions}\`` : "none (Node's defaults)"}`,
    `- started: ${m.started}${m.seconds !== undefined ? `, took ${m.seconds.toFixed(0)} s` : ''}`,
    `- machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}; node ${m.node}; ${m.redis}`,
    `- /proc/loadavg before: ${m.loadBefore}${m.loadAfter ? `; after: ${m.loadAfter}` : ''}`,
    `- CPU layout: ${m.layout}`,
    `- a step passes when p99 ≤ ${P99_BUDGET_MS} ms with no loss, no publish error and no disconnect; latency is from the intended send time`,
    ...(res.skipped ?? []).map((s) => `- skipped ${SYSTEM_LABELS[s.system]}: ${s.reason}`),
  ];
  if (res.fanout.length) {
    parts.push('', '## (a) Fan-out: 1 channel, subscribers on 2 nodes through Redis', '', table(STEP_HEADER, stepRows(res.fanout)));
    parts.push('', 'Sustained deliveries/s (best passing step):', '', sustainedTable(res.fanout, 'subscribers'));
  }
  if (res.many.length) {
    parts.push('', '## (b) Many channels: 1000 channels × 5 subscribers, random channel per publication', '', table(STEP_HEADER, stepRows(res.many)));
    parts.push('', 'Sustained deliveries/s (best passing step):', '', sustainedTable(res.many, 'subscribers'));
  }
  if (res.idle.length) parts.push('', '## (c) Idle connections (each subscribed to one channel)', '', idleTable(res.idle));
  if (res.docs.length) parts.push('', '## (d) Documents', '', docTable(res.docs));
  if (res.topologies.length) {
    parts.push(
      '',
      '## (e) Many channels on 1 Redis and on a 3-primary Redis Cluster: Switchboard, 2 gateways, 1000 channels × 5 subscribers',
      '',
      topologySteps(res.topologies),
      '',
      'Sustained deliveries/s and Redis CPU per 1,000 publications:',
      '',
      topologySummary(res.topologies),
      ...res.topologies.flatMap(spreadSection),
    );
  }
  if (res.api?.length) {
    const r0 = res.api[0];
    parts.push(
      '',
      `## (f) HTTP API publish throughput alone: ${int(r0.channels)} channels, no subscribers, ${r0.size} B, a random channel per publish`,
      '',
      `Closed loop: each of the connections keeps \`depth\` requests in flight (HTTP/1.1 pipelining above 1) for ` +
        `${r0.durationMs / 1000} s after a warm-up whose result is thrown away. "failed": answered otherwise, cut off with ` +
        'their connection (not retried; a request slot pauses 10 ms after such a failure) or unanswered; latency is of the ' +
        'requests answered OK.',
      '',
      apiTable(res.api),
    );
  }
  const t = targets(res);
  if (t.length) {
    parts.push(
      '',
      '## Targets',
      '',
      table(
        ['target', 'wanted', 'measured', 'met'],
        t.map((x) => [x.what, x.target, x.measured, x.met === undefined ? 'n/a' : x.met ? 'yes' : '**no**']),
      ),
    );
  }
  return parts.join('\n') + '\n';
}
