// The versioning worker against a real redis-server: the DocStore contract, partition ownership, takeover, poison requests.
import {
  DOC_CONSUMER_GROUP,
  RedisBroker,
  RedisDocStore,
  docDeadLetterStream,
  docKeys,
  docLeaseKey,
  docPartitionOf,
  docReplyChannel,
  docRequestStream,
  encodeDocRequest,
  withDocScripts,
  type DocResult,
} from '@switchboard/engine';
import { DocError, decide, emptyDoc, parseUpdate, type DocOp, type DocSnapshot } from '@switchboard/protocol';
import type Redis from 'ioredis';
import { docStoreContract } from '../../engine/src/docs.contract';
import { Cleanups, commitOther, eventually, testLogger, redisForFile } from './testing.fixture';
import { startWorker, type Worker } from './worker';
import type { WorkerOptions } from './options';

const LEASE_MS = 1000;
const opts = { historySize: 1000, historyTtlSeconds: 60 };

const privateRedis = redisForFile();
const { cleanups } = privateRedis;

let prefixes = 0;
const nextPrefix = (): string => `wk${process.pid}x${++prefixes}`;

function worker(prefix: string, extra: Partial<WorkerOptions> = {}): Promise<Worker> {
  return startWorker({ redis: [privateRedis.server.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: LEASE_MS, ...extra }).then((w) =>
    cleanups.add(w, (x) => x.stop()),
  );
}
async function store(prefix: string, node = 'gw', timeoutMs = 5000): Promise<RedisDocStore> {
  const s = cleanups.add(new RedisDocStore({ urls: [privateRedis.server.url], prefix, node, timeoutMs }), (x) => x.close());
  await s.start();
  return s;
}
async function broker(prefix: string): Promise<RedisBroker> {
  const b = cleanups.add(new RedisBroker({ urls: [privateRedis.server.url], prefix }), (x) => x.close());
  await b.start();
  return b;
}
function client(): Redis {
  return cleanups.add(privateRedis.server.client(), (c) => c.quit().catch(() => c.disconnect()));
}
const all16 = Array.from({ length: 16 }, (_, i) => i);

describe('with one worker', () => {
  // The contract's own hooks run in its describe; its subject lives as long as that describe.
  const own = new Cleanups();
  afterAll(() => own.run());
  docStoreContract('redis (RedisDocStore + worker)', async () => {
    const prefix = nextPrefix();
    const w = own.add(await startWorker({ redis: [privateRedis.server.url], prefix, logger: testLogger(), nodeId: 'c', leaseMs: LEASE_MS }), (x) => x.stop());
    const s = own.add(new RedisDocStore({ urls: [privateRedis.server.url], prefix, node: 'gw-contract' }), (x) => x.close());
    await s.start();
    const b = own.add(new RedisBroker({ urls: [privateRedis.server.url], prefix }), (x) => x.close());
    await b.start();
    expect(w.ownedPartitions()).toEqual(all16);
    return { store: s, broker: b, cleanup: () => own.run() };
  });
});

describe('versioning worker', () => {
  it('owns every partition alone, splits them with a second worker, and takes them back when it stops', async () => {
    const prefix = nextPrefix();
    const first = await worker(prefix);
    expect(first.ownedPartitions()).toEqual(all16);
    expect(first.isReady()).toBe(true);

    const second = await worker(prefix);
    await eventually(() => first.ownedPartitions().length === 8 && second.ownedPartitions().length === 8, 'an even split');
    expect([...first.ownedPartitions(), ...second.ownedPartitions()].sort((a, b) => a - b)).toEqual(all16);

    // Still serving while split: an update on each worker's partitions.
    const s = await store(prefix);
    for (const ch of ['doc:a', 'doc:b', 'doc:c', 'doc:d']) expect(await s.update(ch, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/x', value: 1 }] }), opts)).toMatchObject({ status: 'applied' });

    await second.stop();
    expect(second.isReady()).toBe(false);
    await eventually(() => first.ownedPartitions().length === 16, 'the first worker to own all partitions again', 3 * LEASE_MS);
  });

  it("takes over a dead worker's partitions and answers the requests it left pending", async () => {
    const prefix = nextPrefix();
    const redis = client();
    const channel = 'doc:orphan';
    const p = docPartitionOf(channel, 16);
    const stream = docRequestStream(prefix, p);
    // A worker that died holding partition p, after reading one request and before answering it.
    await redis.set(docLeaseKey(prefix, p), 'dead.1', 'PX', LEASE_MS);
    await redis.xgroup('CREATE', stream, DOC_CONSUMER_GROUP, '0', 'MKSTREAM');
    const s = await store(prefix);
    const answer = s.update(channel, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
    await eventually(async () => (await redis.xlen(stream)) === 1, 'the request to be queued');
    const read = await redis.xreadgroup('GROUP', DOC_CONSUMER_GROUP, 'dead.1', 'COUNT', 10, 'STREAMS', stream, '>');
    expect(read).not.toBeNull();

    const started = Date.now();
    const w = await worker(prefix);
    expect(w.ownedPartitions()).not.toContain(p);
    expect(await answer).toEqual({ status: 'applied', version: 1 });
    expect(Date.now() - started).toBeLessThan(2.5 * LEASE_MS);
    expect(w.ownedPartitions()).toContain(p);
    await eventually(async () => ((await redis.xpending(stream, DOC_CONSUMER_GROUP)) as [number])[0] === 0, 'the request to be acknowledged');
  });

  it('answers a redelivered request that was already committed from its record, without writing again', async () => {
    const prefix = nextPrefix();
    const w = await worker(prefix);
    const s = await store(prefix);
    const redis = client();
    const replies = client();
    const update = parseUpdate({ base: 0, ops: [{ op: 'incr', path: '/n', value: 1 }] }); // no idempotency key
    const request = { id: 'req-1', channel: 'doc:redeliver', update: JSON.stringify(update), node: 'watcher', timeoutMs: 5000, ...opts };
    const stream = docRequestStream(prefix, docPartitionOf(request.channel, 16));
    const received: string[] = [];
    await replies.subscribe(docReplyChannel(prefix, 'watcher'));
    replies.on('message', (_ch: string, payload: string) => received.push(payload));

    await redis.xadd(stream, '*', ...encodeDocRequest(request));
    await eventually(() => received.length === 1, 'the first answer');
    // The same request again, as after a crash between commit and acknowledgement.
    await redis.xadd(stream, '*', ...encodeDocRequest(request));
    await eventually(() => received.length === 2, 'the second answer');
    expect(received.map((r) => JSON.parse(r) as unknown)).toEqual([
      { id: 'req-1', duplicate: false, result: { status: 'applied', version: 1 } },
      { id: 'req-1', duplicate: true, result: { status: 'applied', version: 1 } },
    ]);
    expect(await s.get(request.channel)).toMatchObject({ version: 1, state: '{"n":1}' });
    expect(w.stats()).toMatchObject({ applied: 1, duplicate: 1 });
  });

  it('answers a request whose deadline passed before processing with a timeout, and carries nothing out', async () => {
    const prefix = nextPrefix();
    const redis = client();
    const replies = client();
    const received: string[] = [];
    await replies.subscribe(docReplyChannel(prefix, 'late'));
    replies.on('message', (_ch: string, payload: string) => received.push(payload));
    const update = JSON.stringify(parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }));
    const channel = 'doc:late';
    // Queued (entry time 1 ms after 1970) long before any worker ran.
    await redis.xadd(docRequestStream(prefix, docPartitionOf(channel, 16)), '1-1', ...encodeDocRequest({ id: 'old', channel, update, node: 'late', timeoutMs: 5000, ...opts }));
    const w = await worker(prefix);
    await eventually(() => received.length === 1, 'an answer');
    expect(JSON.parse(received[0])).toEqual({ id: 'old', error: { kind: 'timeout', message: expect.stringContaining('5000 ms') } });
    expect(await redis.exists(docKeys(channel, prefix).doc)).toBe(0);
    expect(w.stats()).toMatchObject({ expired: 1, applied: 0 });
  });

  it('moves a request that keeps failing to the dead-letter stream after maxDeliveries and answers its caller with an error', async () => {
    const prefix = nextPrefix();
    const redis = client();
    const channel = 'doc:corrupt';
    // A document whose stored state is not JSON: loading it throws, which is no fault of the caller.
    await redis.hset(docKeys(channel, prefix).meta, 'e', 'E', 'o', '1');
    await redis.hset(docKeys(channel, prefix).doc, 's', '{not json', 'w', '[]', 'f', '0', 'v', '1');
    const w = await worker(prefix, { maxDeliveries: 3 });
    const s = await store(prefix);
    const update = s.update(channel, parseUpdate({ base: 1, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
    await expect(update).rejects.toThrow(/failed 3 times and was set aside.*not valid JSON/);
    await expect(update).rejects.not.toThrow(/DocError/);

    const dead = (await redis.xrange(docDeadLetterStream(prefix), '-', '+')) as Array<[string, string[]]>;
    expect(dead).toHaveLength(1);
    const fields = Object.fromEntries(dead[0][1].flatMap((v, i, a) => (i % 2 === 0 ? [[v, a[i + 1]]] : [])));
    expect(fields).toMatchObject({ stream: docRequestStream(prefix, docPartitionOf(channel, 16)), deliveries: '3', n: 'gw', error: expect.stringContaining('not valid JSON') });
    expect(JSON.parse(fields.q)).toEqual([expect.objectContaining({ c: channel })]);
    expect(w.stats()).toMatchObject({ failed: 3, deadLettered: 1 });
    // Acknowledged alongside the reply, not necessarily before the caller saw it.
    const stream = docRequestStream(prefix, docPartitionOf(channel, 16));
    await eventually(async () => ((await redis.xpending(stream, DOC_CONSUMER_GROUP)) as [number])[0] === 0, 'the dead request to be acknowledged');
    // The worker carries on with other documents.
    expect(await s.update('doc:fine', parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts)).toMatchObject({ status: 'applied' });
  });

  it('checks updates against its own limits, answering DocError', async () => {
    const prefix = nextPrefix();
    await worker(prefix, { limits: { maxOps: 1 } });
    const s = await store(prefix);
    const ops = [
      { op: 'set', path: '/a', value: 1 },
      { op: 'set', path: '/b', value: 1 },
    ];
    await expect(s.update('doc:limits', parseUpdate({ base: 0, ops }), opts)).rejects.toThrow(DocError);
    await expect(s.update('doc:limits', parseUpdate({ base: 0, ops }), opts)).rejects.toThrow('"ops" holds 2 ops; the limit is 1');
  });

  it('decides again on the stored document when its cached copy is behind another writer', async () => {
    const prefix = nextPrefix();
    const w = await worker(prefix);
    const s = await store(prefix);
    const channel = 'doc:behind';
    await s.update(channel, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/s', value: 'text' }] }), opts);
    // Another owner (say, before a lease moved) commits version 2, which the worker's cache has not seen.
    const keys = docKeys(channel, prefix);
    const redis = withDocScripts(client());
    const v2 = '{"s":1}';
    expect(
      await commitOther(redis, keys, {
        idempotencyKey: `${keys.pubsub}:di:r:other`, expected: 1, state: v2, writes: '[["/s",2]]',
        publication: '{"offset":2,"data":{}}', outcome: '{"status":"applied","version":2}', historySize: 10,
      }),
    ).toEqual(['ok', expect.any(String)]);
    // Against the cache this is "base ahead" and "incr of a string"; against the stored document it applies.
    expect(await s.update(channel, parseUpdate({ base: 2, ops: [{ op: 'incr', path: '/s', value: 1 }] }), opts)).toEqual({ status: 'applied', version: 3 });
    // A stale cache on a plain write is caught by the commit's version guard instead.
    expect(
      await commitOther(redis, keys, {
        idempotencyKey: `${keys.pubsub}:di:r:other2`, expected: 3, state: '{"s":2,"t":1}', writes: '[["/s",3],["/t",4]]',
        publication: '{"offset":4,"data":{}}', outcome: '{"status":"applied","version":4}', historySize: 10,
      }),
    ).toEqual(['ok', expect.any(String)]);
    expect(await s.update(channel, parseUpdate({ base: 3, ops: [{ op: 'set', path: '/u', value: 1 }] }), opts)).toEqual({ status: 'merged', version: 5 });
    expect(JSON.parse((await s.get(channel)).state)).toEqual({ s: 2, t: 1, u: 1 });
    expect(w.stats()).toMatchObject({ applied: 2, merged: 1, rejected: 0 });
  });

  it('keeps versions 1..N gap-free under many concurrent clients, and replaying the published ops gives the final state', async () => {
    const prefix = nextPrefix();
    await worker(prefix);
    await worker(prefix);
    const stores = await Promise.all([store(prefix, 'gw1'), store(prefix, 'gw2'), store(prefix, 'gw3')]);
    const b = await broker(prefix);
    const channel = 'doc:hot';
    const n = 150;
    // Every client writes its own member at the base it last saw; counters and sets commute.
    const results: DocResult[] = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const s = stores[i % stores.length];
        const { version } = await s.get(channel);
        const ops = [
          { op: 'incr', path: '/count', value: 1 },
          { op: 'set', path: `/by/c${i}`, value: i },
          { op: 'add', path: '/seen', value: i % 7 },
        ];
        return s.update(channel, parseUpdate({ base: version, key: `u${i}`, ops }), opts);
      }),
    );
    expect(results.every((r) => r.status === 'applied' || r.status === 'merged')).toBe(true);
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));

    const history = await b.history(channel, { limit: -1 });
    expect(history.publications.map((p) => p.offset)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    let replayed: DocSnapshot = emptyDoc();
    for (const pub of history.publications) {
      const data = (JSON.parse(pub.json) as { data: { version: number; ops: DocOp[] } }).data;
      const decision = decide(replayed, { base: replayed.version, ops: data.ops, mode: 'merge' });
      if (decision.status === 'conflict') throw new Error('replay cannot conflict');
      expect(decision.doc.version).toBe(data.version);
      replayed = decision.doc;
    }
    const final = await stores[0].get(channel);
    expect(final.version).toBe(n);
    expect(JSON.parse(final.state)).toEqual(replayed.state);
    expect((replayed.state as { count: number }).count).toBe(n);
  });
});
