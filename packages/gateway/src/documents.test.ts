// Versioned documents end to end: many clients on two gateways through two workers (and standalone), a worker
// killed under load, idempotent retries, malformed updates. No update is lost, doubled or wrongly rejected.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { docLeaseKey, docPartitionOf, docRequestStream } from '@switchboard/engine';
import { decide, emptyDoc, type DocOp, type DocSnapshot } from '@switchboard/protocol';
import { hmacToken, RawClient, startRedis, startRedisCluster, startSwitchboard, type RedisCluster, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'doc-secret';
const API_KEY = 'doc-key';

interface Setup {
  gateways: SwitchboardProcess[];
  workers: SwitchboardProcess[];
  redis?: RedisServer;
}

function writeConfig(): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-docs-')), 'config.yaml');
  writeFileSync(
    file,
    [
      'channel:',
      '  namespaces:',
      '    - name: doc',
      '      documents: true',
      '      allow_subscribe_for_client: true',
      '      allow_publish_for_client: true',
      '      history_size: 20000',
      '      history_ttl: 600s',
      '      force_recovery: true',
    ].join('\n'),
  );
  return file;
}

async function startCluster(): Promise<Setup> {
  const redis = await startRedis();
  return { ...(await startRoles(redis.url)), redis };
}

/** Two gateways and two workers (1 s leases) on the Redis at `redisUrl`. */
async function startRoles(redisUrl: string): Promise<Setup> {
  const common = ['--redis', redisUrl, '--log-level', 'warn'];
  const gatewayArgs = [...common, '--config', writeConfig(), '--token-hmac-secret', SECRET, '--api-key', API_KEY];
  const workerArgs = [...common, '--log-level', 'info', '--doc-lease', '1'];
  const [gateways, workers] = await Promise.all([
    Promise.all([startSwitchboard('gateway', gatewayArgs), startSwitchboard('gateway', gatewayArgs)]),
    Promise.all([startSwitchboard('worker', workerArgs), startSwitchboard('worker', workerArgs)]),
  ]);
  return { gateways, workers };
}

async function startStandalone(): Promise<Setup> {
  const gateway = await startSwitchboard('standalone', ['--config', writeConfig(), '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn']);
  return { gateways: [gateway], workers: [] };
}

async function stop(setup: Setup | undefined): Promise<void> {
  if (!setup) return;
  await Promise.all([...setup.gateways, ...setup.workers].map((p) => p.stop()));
  await setup.redis?.stop();
}

type Result = { status: 'applied' | 'merged' | 'conflict'; version: number; paths?: string[]; state?: Record<string, unknown> };

class DocClient {
  private constructor(readonly raw: RawClient) {}

  static async open(gateway: SwitchboardProcess, user: string): Promise<DocClient> {
    const raw = await RawClient.open(gateway.wsUrl);
    const reply = await raw.command('connect', { token: await hmacToken(SECRET, { sub: user }) });
    if (reply.error) throw new Error(`connect: ${reply.error.message}`);
    return new DocClient(raw);
  }

  async rpc(method: string, data: unknown, timeoutMs = 15000): Promise<{ data?: any; error?: { code: number; message: string; temporary?: boolean } }> {
    const reply = await this.raw.command('rpc', { method, data }, timeoutMs);
    return reply.error ? { error: reply.error } : { data: (reply.rpc as { data: unknown }).data };
  }

  /** Sends an update and retries temporary failures with the same idempotency key, as a client should. */
  async update(data: Record<string, unknown>): Promise<Result> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.rpc('doc.update', data);
      if (!r.error) return r.data as Result;
      if (!r.error.temporary || attempt >= 10) throw new Error(`doc.update failed: ${JSON.stringify(r.error)}`);
    }
  }

  close(): void {
    this.raw.close();
  }
}

async function apiCall(gateway: SwitchboardProcess, method: string, body: unknown): Promise<any> {
  const r = await fetch(`${gateway.url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(body) });
  return r.json();
}

/** Every publication of the document's channel, in offset order. */
async function published(gateway: SwitchboardProcess, channel: string): Promise<{ offset: number; data: { version: number; base: number; ops: DocOp[]; status: string } }[]> {
  return (await apiCall(gateway, 'history', { channel, limit: -1 })).result.publications;
}

/** Replays the published updates from an empty document, each on top of the version it follows. */
function replay(pubs: { data: { ops: DocOp[] } }[]): DocSnapshot {
  let doc = emptyDoc();
  for (const p of pubs) {
    const d = decide({ ...doc, writes: [], floor: 0 }, { base: doc.version, ops: p.data.ops, mode: 'merge' });
    if (d.status === 'conflict') throw new Error(`published update ${doc.version + 1} does not replay`);
    doc = d.doc;
  }
  return doc;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * `clients` writers, each on its own field, send `perClient` merge updates with the base they last knew.
 * `during` runs once a third of the updates are in (the worker kill).
 */
async function concurrentWriters(setup: Setup, channel: string, clients: number, perClient: number, during?: () => Promise<void>): Promise<void> {
  const writers = await Promise.all(range(0, clients - 1).map((i) => DocClient.open(setup.gateways[i % setup.gateways.length], `w${i}`)));
  let done = 0;
  let triggered: Promise<void> | undefined;
  const results: Result[][] = writers.map(() => []);
  await Promise.all(
    writers.map(async (w, i) => {
      let base = 0;
      for (let k = 0; k < perClient; k++) {
        const r = await w.update({ channel, base, ops: [{ op: 'set', path: `/c${i}/n`, value: k }], key: `w${i}-${k}` });
        results[i].push(r);
        base = r.version;
        if (++done === Math.floor((clients * perClient) / 3) && during) triggered = during();
      }
    }),
  );
  await triggered;
  for (const w of writers) w.close();

  const total = clients * perClient;
  // Disjoint fields never conflict in merge mode, however stale the base.
  expect(results.flat().filter((r) => r.status === 'conflict')).toEqual([]);
  const doc = (await apiCall(setup.gateways[0], 'doc_get', { channel })).result;
  expect(doc.version).toBe(total);
  const pubs = await published(setup.gateways[0], channel);
  // Versions 1..N without a gap, each the offset of its publication.
  expect(pubs.map((p) => p.offset)).toEqual(range(1, total));
  expect(pubs.map((p) => p.data.version)).toEqual(range(1, total));
  // Every update is in the log exactly once.
  const written = pubs.map((p) => JSON.stringify(p.data.ops));
  expect(new Set(written).size).toBe(total);
  for (let i = 0; i < clients; i++) {
    for (let k = 0; k < perClient; k++) expect(written).toContain(JSON.stringify([{ op: 'set', path: `/c${i}/n`, value: k }]));
  }
  // Replaying the log from an empty document gives the state doc.get returns.
  expect(replay(pubs).state).toEqual(doc.state);
  expect(doc.state).toEqual(Object.fromEntries(range(0, clients - 1).map((i) => [`c${i}`, { n: perClient - 1 }])));
}

async function strictMode(setup: Setup, channel: string): Promise<void> {
  const c = await DocClient.open(setup.gateways[setup.gateways.length - 1], 'strict');
  const { version } = (await c.rpc('doc.get', { channel })).data;
  for (let base = Math.max(0, version - 3); base < version; base++) {
    const r = await c.update({ channel, base, ops: [{ op: 'set', path: '/elsewhere', value: base }], mode: 'strict' });
    expect(r).toMatchObject({ status: 'conflict', version });
  }
  expect(await c.update({ channel, base: version, ops: [{ op: 'set', path: '/elsewhere', value: 'ok' }], mode: 'strict' })).toEqual({ status: 'applied', version: version + 1 });
  c.close();
}

async function idempotentRetries(setup: Setup, channel: string): Promise<void> {
  const [a, b] = [await DocClient.open(setup.gateways[0], 'i1'), await DocClient.open(setup.gateways[setup.gateways.length - 1], 'i2')];
  const before = (await a.rpc('doc.get', { channel })).data.version;
  const update = { channel, base: before, ops: [{ op: 'incr', path: '/count', value: 1 }], key: 'once' };
  const first = await a.update(update);
  // The same key again, through any gateway: the first outcome, no second write.
  expect(await b.update(update)).toEqual(first);
  expect(await a.update({ ...update, base: 0 })).toEqual(first);

  // A reply lost on the way: the client drops its connection right after sending, reconnects and retries.
  const lost = { channel, base: first.version, ops: [{ op: 'incr', path: '/count', value: 1 }], key: 'lost-reply' };
  a.raw.sendRaw(JSON.stringify({ id: 999, rpc: { method: 'doc.update', data: lost } }));
  a.close();
  const again = await DocClient.open(setup.gateways[0], 'i1');
  const retried = await again.update(lost);
  expect(retried.status).toBe('applied');
  const after = (await again.rpc('doc.get', { channel })).data;
  expect(after.version).toBe(before + 2);
  expect(after.state.count).toBe(2);
  const pubs = await published(setup.gateways[0], channel);
  expect(pubs.filter((p) => JSON.stringify(p.data.ops).includes('/count'))).toHaveLength(2);
  again.close();
  b.close();
}

async function malformed(setup: Setup, channel: string): Promise<void> {
  const c = await DocClient.open(setup.gateways[0], 'bad');
  await c.update({ channel, base: 0, ops: [{ op: 'set', path: '/text', value: 'a string' }] });
  const { version } = (await c.rpc('doc.get', { channel })).data;
  const cases: [string, unknown, string][] = [
    ['an unknown op', { base: version, ops: [{ op: 'frobnicate', path: '/a' }] }, 'ops[0]: "op" must be one of'],
    ['a bad path', { base: version, ops: [{ op: 'set', path: 'no-slash', value: 1 }] }, 'no-slash'],
    ['a non-number incr', { base: version, ops: [{ op: 'incr', path: '/n', value: 'x' }] }, 'incr needs a finite number'],
    ['incr on a string', { base: version, ops: [{ op: 'incr', path: '/text', value: 1 }] }, '/text'],
    ['a missing base', { ops: [{ op: 'set', path: '/a', value: 1 }] }, '"base" is required'],
    ['no ops', { base: version, ops: [] }, '"ops"'],
    ['a bad mode', { base: version, mode: 'yolo', ops: [{ op: 'set', path: '/a', value: 1 }] }, '"mode"'],
    ['a base from the future', { base: version + 5, ops: [{ op: 'set', path: '/a', value: 1 }] }, 'base'],
  ];
  for (const [name, update, message] of cases) {
    const r = await c.rpc('doc.update', { channel, ...(update as object) });
    expect([name, r.error?.code]).toEqual([name, 107]);
    expect(r.error?.message).toContain(message);
  }
  // Too large for a WebSocket frame here, so through the HTTP API: 107 as well.
  const big = await apiCall(setup.gateways[0], 'doc_update', { channel, base: version, ops: [{ op: 'set', path: '/big', value: 'x'.repeat(70 * 1024) }] });
  expect(big.error.code).toBe(107);
  expect(big.error.message).toMatch(/limit/);
  // A channel that is not a document, and one of no namespace at all.
  expect((await c.rpc('doc.get', { channel: 'plain' })).error).toMatchObject({ code: 107, message: expect.stringContaining('not a document') });
  expect((await c.rpc('doc.get', { channel: 'nope:x' })).error?.code).toBe(102);
  expect((await c.rpc('doc.frobnicate', { channel })).error?.code).toBe(108);
  // Nothing was written by any of them.
  const after = (await c.rpc('doc.get', { channel })).data;
  expect(after.version).toBe(version);
  expect(after.state).toEqual({ text: 'a string' });
  c.close();
}

describe('documents on Redis: two gateways, two workers', () => {
  let setup: Setup | undefined;
  beforeAll(async () => {
    setup = await startCluster();
  });
  afterAll(() => stop(setup));

  it('50 writers x 200 updates on one document: versions 1..N, each update once, replay gives the state', async () => {
    await concurrentWriters(setup as Setup, 'doc:hot', 50, 200);
  });

  it('a worker killed with SIGKILL under that load: the other takes over, and nothing is lost or doubled', async () => {
    const s = setup as Setup;
    const channel = 'doc:killed';
    const killOwner = async () => {
      const conn = (s.redis as RedisServer).client();
      const owner = await conn.get(docLeaseKey('sb', docPartitionOf(channel, 16)));
      conn.disconnect();
      killWorker(s, owner);
    };
    await concurrentWriters(s, channel, 20, 100, killOwner);
    await expectSurvivorOwnsAll(s);
  });

  it('strict mode rejects every stale base', () => strictMode(setup as Setup, 'doc:hot'));
  it('retries with the same idempotency key never write twice', () => idempotentRetries(setup as Setup, 'doc:idem'));
  it('malformed updates get 107 naming the problem, and change nothing', () => malformed(setup as Setup, 'doc:bad'));
});

/** SIGKILLs the worker whose node id is `owner` (any worker if unknown) and drops it from the setup. */
function killWorker(s: Setup, owner: string | null): void {
  const victim = s.workers.find((w) => owner !== null && w.output().includes(owner)) ?? s.workers[0];
  victim.kill();
  s.workers = s.workers.filter((w) => w !== victim);
}

async function expectSurvivorOwnsAll(s: Setup): Promise<void> {
  const metrics = await (await fetch(`${s.workers[0].url}/metrics`)).text();
  expect(metrics).toMatch(/switchboard_worker_partitions_owned 16/);
  expect(metrics).toMatch(/^switchboard_worker_queue_lag 0$/m);
  expect(metrics).toMatch(/^switchboard_doc_commits_total\{outcome="merged"\} [1-9]/m);
}

describe('documents on Redis Cluster (3 primaries): two gateways, two workers', () => {
  let setup: Setup | undefined;
  let cluster: RedisCluster | undefined;
  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerPrimary: 0 });
    setup = await startRoles(cluster.url);
  }, 60000);
  afterAll(async () => {
    await stop(setup);
    await cluster?.stop();
  });

  it('50 writers on 3 documents whose partitions live on the 3 primaries, a worker SIGKILLed mid-run: gap-free, nothing lost or doubled', async () => {
    const s = setup as Setup;
    const c = cluster as RedisCluster;
    // One document per primary: the primary that holds the stream of its request partition.
    const byPrimary = new Map<number, string>();
    for (let i = 0; byPrimary.size < 3 && i < 200; i++) {
      const channel = `doc:spread${i}`;
      const primary = await c.ownerOfSlot(await c.slotOfKey(docRequestStream('sb', docPartitionOf(channel, 16))));
      if (!byPrimary.has(primary)) byPrimary.set(primary, channel);
    }
    const channels = [...byPrimary.values()];
    expect(channels).toHaveLength(3);
    const killOwner = async () => {
      const conn = c.client();
      const owner = await conn.get(docLeaseKey('sb', docPartitionOf(channels[0], 16)));
      await conn.quit();
      killWorker(s, owner);
    };
    await Promise.all([
      concurrentWriters(s, channels[0], 17, 100, killOwner),
      concurrentWriters(s, channels[1], 17, 100),
      concurrentWriters(s, channels[2], 16, 100),
    ]);
    await expectSurvivorOwnsAll(s);
  }, 120000);
});

describe('documents in standalone (memory engine, no Redis)', () => {
  let setup: Setup | undefined;
  beforeAll(async () => {
    setup = await startStandalone();
  });
  afterAll(() => stop(setup));

  it('concurrent writers on disjoint fields: versions 1..N, each update once, replay gives the state', () => concurrentWriters(setup as Setup, 'doc:hot', 20, 50));
  it('strict mode rejects every stale base', () => strictMode(setup as Setup, 'doc:hot'));
  it('retries with the same idempotency key never write twice', () => idempotentRetries(setup as Setup, 'doc:idem'));
  it('malformed updates get 107 naming the problem, and change nothing', () => malformed(setup as Setup, 'doc:bad'));
});
