// Group commit: the processor's per-document groups and the reader's mixed batches, against a real redis-privateRedis.server.
import {
  DOC_CONSUMER_GROUP,
  RedisDocStore,
  docKeys,
  docPartitionOf,
  docReplyChannel,
  docRequestStream,
  encodeDocRequest,
  encodeDocRequestBatch,
  withDocScripts,
  type DocRequest,
  type ReceivedDocRequest,
  type DocScriptedRedis,
} from '@switchboard/engine';
import { resolveLimits, parseUpdate } from '@switchboard/protocol';
import type Redis from 'ioredis';
import { DocCache } from './doc_cache';
import { Processor, type GroupItem, type GroupResult } from './processor';
import { StatsRecorder } from './stats';
import { commitOther, eventually, testLogger, redisForFile } from './testing.fixture';
import { startWorker } from './worker';

const privateRedis = redisForFile();
const { cleanups } = privateRedis;

let prefixes = 0;
const nextPrefix = (): string => `gc${process.pid}x${++prefixes}`;
function client(): Redis {
  return cleanups.add(privateRedis.server.client(), (c) => c.quit().catch(() => c.disconnect()));
}

let ids = 0;
function item(channel: string, update: object, timeoutMs = 60_000): GroupItem {
  const req: ReceivedDocRequest = {
    id: `r${++ids}`, channel, update, node: 'gw', timeoutMs, historySize: 100, historyTtlSeconds: 60, batched: true,
  };
  return { req, enqueuedAtMs: Date.now() };
}
function reply(result: GroupResult): Record<string, unknown> {
  if ('error' in result) throw result.error;
  return JSON.parse(result.reply) as Record<string, unknown>;
}
const set = (path: string, value: unknown) => ({ op: 'set', path, value });

interface Setup {
  processor: Processor;
  redis: DocScriptedRedis;
  stats: StatsRecorder;
  prefix: string;
  /** Called before each group commit script runs (to simulate another writer). */
  beforeCommit?: () => Promise<void>;
  /** Each commit script call: 'one' (one document's group) or 'several' (processGroups' call for several). */
  commits: Array<'one' | 'several'>;
}
function setup(): Setup {
  const prefix = nextPrefix();
  const redis = withDocScripts(client());
  const stats = new StatsRecorder();
  const s: Setup = { processor: undefined as unknown as Processor, redis, stats, prefix, commits: [] };
  const wrapped = new Proxy(redis, {
    get(target, prop, receiver) {
      if (prop === 'sbDocCommitBatch') {
        return async (...args: Parameters<DocScriptedRedis['sbDocCommitBatch']>) => {
          s.commits.push('one');
          await s.beforeCommit?.();
          return target.sbDocCommitBatch(...args);
        };
      }
      if (prop === 'sbDocCommitGroups') {
        return async (...args: Parameters<DocScriptedRedis['sbDocCommitGroups']>) => {
          s.commits.push('several');
          await s.beforeCommit?.();
          return target.sbDocCommitGroups(...args);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  s.processor = new Processor({
    prefix, limits: resolveLimits(), idempotencyTtlSeconds: 60, cache: new DocCache(1 << 20), stats, commandsFor: () => wrapped, waitReplicas: 0, waitTimeoutMs: 1000, publishCommand: 'publish',
  });
  return s;
}

/** Offsets and data of the channel's history; asserts it is 1..N. */
async function history(redis: Redis, channel: string, prefix: string): Promise<Array<{ version: number; ops: unknown[]; status: string }>> {
  const entries = await redis.xrange(docKeys(channel, prefix).history, '-', '+');
  const pubs = entries.map(([id, fields]) => ({ id, pub: JSON.parse(fields[1]) as { offset: number; data: { version: number; ops: unknown[]; status: string } } }));
  pubs.forEach(({ id, pub }, i) => {
    expect(id).toBe(`${i + 1}-0`);
    expect(pub.offset).toBe(i + 1);
    expect(pub.data.version).toBe(i + 1);
  });
  return pubs.map(({ pub }) => pub.data);
}

describe('group commit (processor)', () => {
  it('commits the groups of several documents in one script call', async () => {
    const s = setup();
    const results = await s.processor.processGroups(
      [
        [item('doc:ga', { base: 0, ops: [set('/x', 1)] }), item('doc:ga', { base: 0, ops: [set('/y', 2)] })],
        [item('doc:gb', { base: 0, ops: [set('/x', 1)] })],
        [item('doc:gc', { base: 0, ops: [{ op: 'incr', path: '/n', value: 1 }] }), item('doc:gc', { base: 0, mode: 'strict', ops: [set('/n', 0)] })],
      ],
      Date.now(),
    );
    expect(s.commits).toEqual(['several']);
    expect(results.map((group) => group.map((r) => reply(r).result))).toEqual([
      [{ status: 'applied', version: 1 }, { status: 'merged', version: 2 }],
      [{ status: 'applied', version: 1 }],
      [{ status: 'applied', version: 1 }, { status: 'conflict', version: 1, paths: ['/n'], state: { n: 1 } }],
    ]);
    const redis = client();
    expect((await history(redis, 'doc:ga', s.prefix)).length).toBe(2);
    expect((await history(redis, 'doc:gb', s.prefix)).length).toBe(1);
    expect((await history(redis, 'doc:gc', s.prefix)).length).toBe(1);
    expect(JSON.parse((await redis.hget(docKeys('doc:ga', s.prefix).doc, 's')) as string)).toEqual({ x: 1, y: 2 });
    expect(s.stats.snapshot()).toMatchObject({ applied: 3, merged: 1, conflict: 1 });
  });

  it('decides a document that changed meanwhile again on its own, and commits the others of the call once', async () => {
    const s = setup();
    const redis = client();
    // doc:sb is cached at version 1; another owner then commits version 2 before the call's commit runs.
    await s.processor.processGroup([item('doc:sb', { base: 0, ops: [set('/a', 1)] })], Date.now());
    const keys = docKeys('doc:sb', s.prefix);
    s.beforeCommit = async () => {
      s.beforeCommit = undefined;
      expect(
        await commitOther(s.redis, keys, {
          idempotencyKey: `${keys.pubsub}:di:r:other`, expected: 1, state: '{"a":1,"o":1}', writes: '[["/a",1],["/o",2]]',
          publication: '{"offset":2,"data":{"version":2}}', outcome: '{"status":"applied","version":2}', historySize: 100,
        }),
      ).toEqual(['ok', expect.any(String)]);
    };
    s.commits.length = 0;
    const results = await s.processor.processGroups(
      [[item('doc:sa', { base: 0, ops: [set('/a', 1)] })], [item('doc:sb', { base: 1, ops: [set('/q', 1)] })]],
      Date.now(),
    );
    expect(s.commits).toEqual(['several', 'one']);
    expect(results.map((group) => reply(group[0]).result)).toEqual([{ status: 'applied', version: 1 }, { status: 'merged', version: 3 }]);
    expect((await history(redis, 'doc:sa', s.prefix)).length).toBe(1);
    expect((await history(redis, 'doc:sb', s.prefix)).length).toBe(3);
    expect(JSON.parse((await redis.hget(keys.doc, 's')) as string)).toEqual({ a: 1, o: 1, q: 1 });
  });

  it('commits a group with applies, merges, conflicts and DocErrors in one script call, one publication per version', async () => {
    const s = setup();
    const channel = 'doc:mixed';
    const sub = client();
    const published: string[] = [];
    sub.on('message', (_c: string, payload: string) => published.push(payload));
    await sub.subscribe(docKeys(channel, s.prefix).pubsub);
    let calls = 0;
    s.beforeCommit = async () => void calls++;
    const results = await s.processor.processGroup(
      [
        item(channel, { base: 0, key: 'a', ops: [set('/a', 1)] }), // applied v1
        item(channel, { base: 0, key: 'b', ops: [set('/a', 2)] }), // conflict at v1: /a written after 0
        item(channel, { base: 7, ops: [set('/x', 1)] }), // DocError: base ahead
        item(channel, { base: 1, ops: [{ op: 'incr', path: '/a', value: 1 }, { op: 'incr', path: '/s', value: 1 }] }), // applied v2
        item(channel, { base: 2, ops: [{ op: 'incr', path: '/a', value: 'x' }] }), // malformed: DocError before deciding
        item(channel, { base: 0, key: 'c', ops: [set('/b', 3)] }), // merged v3
        item(channel, { base: 3, ops: [set('/a/deep', 1)] }), // DocError: /a is a number
        item(channel, { base: 1, mode: 'strict', ops: [set('/z', 1)] }), // strict conflict at v3
      ],
      Date.now(),
    );
    expect(calls).toBe(1);
    const r = results.map(reply);
    expect(r[0].result).toEqual({ status: 'applied', version: 1 });
    expect(r[1].result).toEqual({ status: 'conflict', version: 1, paths: ['/a'], state: { a: 1 } });
    expect(r[2].error).toMatchObject({ kind: 'doc' });
    expect(r[3].result).toEqual({ status: 'applied', version: 2 });
    expect(r[4].error).toMatchObject({ kind: 'doc' });
    expect(r[5].result).toEqual({ status: 'merged', version: 3 });
    expect(r[6].error).toMatchObject({ kind: 'doc' });
    expect(r[7].result).toMatchObject({ status: 'conflict', version: 3, state: { a: 2, s: 1, b: 3 } });
    expect(r.every((x) => x.duplicate !== true)).toBe(true);

    const keys = docKeys(channel, s.prefix);
    expect(await s.redis.hgetall(keys.doc)).toMatchObject({ s: '{"a":2,"s":1,"b":3}', v: '3' });
    expect(await s.redis.hget(keys.meta, 'o')).toBe('3');
    expect((await history(s.redis, channel, s.prefix)).map((d) => d.status)).toEqual(['applied', 'applied', 'merged']);
    expect(JSON.parse((await s.redis.get(`${keys.pubsub}:di:k:b`)) as string)).toMatchObject({ status: 'conflict', version: 1 });
    await eventually(() => published.length === 3, 'three publications');
    expect(published.map((p) => Number(p.split(' ')[0]))).toEqual([1, 2, 3]);
    expect(s.stats.snapshot()).toMatchObject({ applied: 2, merged: 1, conflict: 2, rejected: 3, duplicate: 0 });
  });

  it('answers a key used twice in one group, or again in a later group, with the first outcome', async () => {
    const s = setup();
    const channel = 'doc:dups';
    const first = await s.processor.processGroup(
      [
        item(channel, { base: 0, key: 'k1', ops: [set('/a', 1)] }),
        item(channel, { base: 0, key: 'k1', ops: [set('/a', 99)] }), // a retry of k1 in the same read
        item(channel, { base: 0, key: 'k2', ops: [set('/a', 2)] }), // conflict
        item(channel, { base: 0, key: 'k2', ops: [set('/b', 2)] }), // would merge, but k2 is taken: the conflict
      ],
      Date.now(),
    );
    expect(first.map(reply).map((r) => [r.duplicate, r.result])).toEqual([
      [false, { status: 'applied', version: 1 }],
      [true, { status: 'applied', version: 1 }],
      [false, { status: 'conflict', version: 1, paths: ['/a'], state: { a: 1 } }],
      [true, { status: 'conflict', version: 1, paths: ['/a'], state: { a: 1 } }],
    ]);
    // A later read: k1 and k2 are in Redis (found by the commit script against the cached document).
    const second = await s.processor.processGroup(
      [
        item(channel, { base: 1, key: 'k3', ops: [set('/c', 3)] }),
        item(channel, { base: 0, key: 'k1', ops: [set('/a', 5)] }),
        item(channel, { base: 1, key: 'k4', ops: [set('/d', 4)] }),
        item(channel, { base: 0, key: 'k2', ops: [set('/e', 5)] }),
        item(channel, { base: 1, key: 'k3', ops: [set('/f', 6)] }),
      ],
      Date.now(),
    );
    expect(second.map(reply).map((r) => [r.duplicate, (r.result as { version: number }).version])).toEqual([
      [false, 2],
      [true, 1],
      [false, 3],
      [true, 1],
      [true, 2],
    ]);
    expect((await history(s.redis, channel, s.prefix)).length).toBe(3);
    expect(JSON.parse((await s.redis.hget(docKeys(channel, s.prefix).doc, 's')) as string)).toEqual({ a: 1, c: 3, d: 4 });
    // An expired request is answered from the record of its key, or with a timeout.
    const expired = await s.processor.processGroup(
      [item(channel, { base: 0, key: 'k1', ops: [set('/a', 7)] }, 1), item(channel, { base: 0, key: 'k9', ops: [set('/a', 7)] }, 1)],
      Date.now() + 1000,
    );
    expect(expired.map(reply).map((r) => r.error ?? r.result)).toEqual([{ status: 'applied', version: 1 }, expect.objectContaining({ kind: 'timeout' })]);
    expect(s.stats.snapshot()).toMatchObject({ applied: 2, merged: 1, conflict: 1, duplicate: 6, expired: 1 });
  });

  it('redoes the whole group when another writer commits between decide and commit', async () => {
    const s = setup();
    const channel = 'doc:stale';
    const keys = docKeys(channel, s.prefix);
    await s.processor.processGroup([item(channel, { base: 0, ops: [set('/n', 0)] })], Date.now()); // v1, cached
    // Another owner commits v2 while the group is being decided (after its decisions, before its script).
    let interfered = 0;
    s.beforeCommit = async () => {
      if (interfered++ > 0) return;
      expect(
        await commitOther(s.redis, keys, {
          idempotencyKey: `${keys.pubsub}:di:r:other`, expected: 1, state: '{"n":0,"o":1}', writes: '[["/n",1],["/o",2]]',
          publication: '{"offset":2,"data":{"version":2,"base":1,"ops":[],"status":"applied"}}',
          outcome: '{"status":"applied","version":2}', historySize: 100,
        }),
      ).toEqual(['ok', expect.any(String)]);
    };
    const results = await s.processor.processGroup(
      [
        item(channel, { base: 1, key: 'x', ops: [set('/x', 1)] }),
        item(channel, { base: 1, key: 'o', ops: [set('/o', 5)] }), // against the cache it applies; against v2 /o conflicts
        item(channel, { base: 1, ops: [{ op: 'incr', path: '/n', value: 1 }] }),
      ],
      Date.now(),
    );
    expect(interfered).toBe(2); // the first script call was refused as stale, the second committed
    expect(results.map(reply).map((r) => r.result)).toEqual([
      { status: 'merged', version: 3 },
      { status: 'conflict', version: 3, paths: ['/o'], state: { n: 0, o: 1, x: 1 } },
      { status: 'merged', version: 4 },
    ]);
    const data = await history(s.redis, channel, s.prefix);
    expect(data.map((d) => d.version)).toEqual([1, 2, 3, 4]);
    expect(JSON.parse((await s.redis.hget(keys.doc, 's')) as string)).toEqual({ n: 1, o: 1, x: 1 });
    expect(s.stats.snapshot()).toMatchObject({ applied: 1, merged: 2, conflict: 1 });
  });

  it('decides again on the stored document when a cached copy gives a DocError in the middle of a group', async () => {
    const s = setup();
    const channel = 'doc:recheck';
    const keys = docKeys(channel, s.prefix);
    await s.processor.processGroup([item(channel, { base: 0, ops: [set('/s', 'text')] })], Date.now());
    expect(
      await commitOther(s.redis, keys, {
        idempotencyKey: `${keys.pubsub}:di:r:o`, expected: 1, state: '{"s":1}', writes: '[["/s",2]]',
        publication: '{"offset":2,"data":{"version":2}}', outcome: '{"status":"applied","version":2}', historySize: 100,
      }),
    ).toEqual(['ok', expect.any(String)]);
    const results = await s.processor.processGroup(
      [item(channel, { base: 1, ops: [set('/a', 1)] }), item(channel, { base: 2, ops: [{ op: 'incr', path: '/s', value: 1 }] })],
      Date.now(),
    );
    expect(results.map(reply).map((r) => r.result)).toEqual([{ status: 'merged', version: 3 }, { status: 'merged', version: 4 }]);
    expect(JSON.parse((await s.redis.hget(keys.doc, 's')) as string)).toEqual({ s: 2, a: 1 });
  });
});

describe('group commit (worker)', () => {
  it('answers one read mixing several documents, batch and single entries, duplicates and malformed entries, each version published once', async () => {
    const prefix = nextPrefix();
    const redis = client();
    const channels = ['doc:m1', 'doc:m2', 'doc:m3'];
    const partition = docPartitionOf(channels[0], 1);
    const stream = docRequestStream(prefix, partition);
    const replies: Array<Record<string, unknown>> = [];
    let arrays = 0;
    let singles = 0;
    const sub = client();
    sub.on('message', (_c: string, payload: string) => {
      // The replies of one read to a gateway that writes batches travel in one message, as an array when there are
      // several; a gateway that writes single entries (an earlier version) gets one message per reply.
      const parsed = JSON.parse(payload) as Record<string, unknown> | Array<Record<string, unknown>>;
      if (Array.isArray(parsed)) arrays++;
      else singles++;
      replies.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    });
    await sub.subscribe(docReplyChannel(prefix, 'gw'));
    // Queued before the worker starts, so that its first read takes them all at once: the first 24 in batch
    // entries of 1 to 4 requests, the last 6 one per entry as earlier gateways wrote them.
    const n = 30;
    const sent: string[] = [];
    let batch: DocRequest[] = [];
    for (let i = 0; i < n; i++) {
      const channel = channels[i % 3];
      const key = i % 10 === 9 ? `k${i - 3}` : `k${i}`; // every tenth repeats the key of its document's previous update
      const req: DocRequest = {
        id: `q${i}`, channel, update: JSON.stringify({ base: 0, key, ops: [{ op: 'incr', path: '/n', value: 1 }, set(`/f${i}`, i)] }),
        node: 'gw', timeoutMs: 60_000, historySize: 100, historyTtlSeconds: 60,
      };
      sent.push(req.id);
      if (i >= 24) {
        await redis.xadd(stream, '*', ...encodeDocRequest(req));
        continue;
      }
      batch.push(req);
      if (batch.length === (i % 4) + 1 || i === 23) {
        await redis.xadd(stream, '*', ...encodeDocRequestBatch({ node: 'gw', timeoutMs: 60_000, requests: batch }));
        batch = [];
      }
    }
    await redis.xadd(stream, '*', 'junk', '1');
    const w = cleanups.add(
      // The junk entry is retried after retryDelayMs: long enough here that the counts below see its first attempt only.
      await startWorker({ redis: [privateRedis.server.url], prefix, partitions: 1, logger: testLogger(), nodeId: 'w', leaseMs: 1000, batchSize: 100, retryDelayMs: 60_000 }),
      (x) => x.stop(),
    );
    await eventually(() => replies.length === n, 'every reply');
    expect([arrays, singles]).toEqual([1, 6]); // one read: all the batch entries' replies in one message
    const byId = new Map(replies.map((r) => [r.id as string, r]));
    expect([...byId.keys()].sort()).toEqual([...sent].sort());
    for (const [c, channel] of channels.entries()) {
      const mine = sent.map((id, i) => ({ id, i })).filter(({ i }) => i % 3 === c);
      const fresh = mine.filter(({ i }) => i % 10 !== 9);
      // Versions 1..N in stream order for the distinct keys; repeats answer their first outcome.
      expect(fresh.map(({ id }) => (byId.get(id)?.result as { version: number }).version)).toEqual(fresh.map((_, v) => v + 1));
      for (const { id, i } of mine.filter(({ i }) => i % 10 === 9)) {
        expect(byId.get(id)).toMatchObject({ duplicate: true, result: byId.get(`q${i - 3}`)?.result });
      }
      const data = await history(redis, channel, prefix);
      expect(data.length).toBe(fresh.length);
      expect(JSON.parse((await redis.hget(docKeys(channel, prefix).doc, 's')) as string)).toMatchObject({ n: fresh.length });
    }
    // Everything but the junk entry is acknowledged; the junk stays pending for retries and the dead letter.
    const pending = (await redis.xpending(stream, DOC_CONSUMER_GROUP)) as [number, ...unknown[]];
    expect(pending[0]).toBe(1);
    expect(w.stats()).toMatchObject({ duplicate: 3, failed: 1 });
  });

  it('answers the rest of a batch entry when one of its documents fails, and acknowledges the entry only once that one is answered too', async () => {
    const prefix = nextPrefix();
    const redis = client();
    const [ok, bad] = ['doc:ok', 'doc:bad'];
    const stream = docRequestStream(prefix, 0);
    // A stored state that is not JSON: loading it throws, and the request stays pending for a retry.
    await redis.hset(docKeys(bad, prefix).meta, 'e', 'E', 'o', '1');
    await redis.hset(docKeys(bad, prefix).doc, 's', '{not json', 'w', '[]', 'f', '0', 'v', '1');
    const replies: Array<Record<string, unknown>> = [];
    const sub = client();
    sub.on('message', (_c: string, payload: string) => {
      const parsed = JSON.parse(payload) as Record<string, unknown> | Array<Record<string, unknown>>;
      replies.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    });
    await sub.subscribe(docReplyChannel(prefix, 'gw'));
    const request = (id: string, channel: string, base: number): DocRequest => ({
      id, channel, update: JSON.stringify({ base, ops: [set('/a', id)] }), node: 'gw', timeoutMs: 60_000, historySize: 100, historyTtlSeconds: 60,
    });
    await redis.xadd(stream, '*', ...encodeDocRequestBatch({ node: 'gw', timeoutMs: 60_000, requests: [request('first', ok, 0), request('second', bad, 1)] }));
    cleanups.add(
      await startWorker({ redis: [privateRedis.server.url], prefix, partitions: 1, logger: testLogger(), nodeId: 'w', leaseMs: 1000, retryDelayMs: 200 }),
      (x) => x.stop(),
    );
    await eventually(() => replies.length === 1, "the healthy document's reply");
    expect(replies[0]).toEqual({ id: 'first', duplicate: false, result: { status: 'applied', version: 1 } });
    expect(((await redis.xpending(stream, DOC_CONSUMER_GROUP)) as [number])[0]).toBe(1);
    // Repaired: the redelivered entry answers the first request from its record and carries out the second.
    await redis.hset(docKeys(bad, prefix).doc, 's', '{}');
    await eventually(() => replies.some((r) => r.id === 'second'), 'the repaired document to be answered', 10_000);
    expect(replies.find((r) => r.id === 'second')).toEqual({ id: 'second', duplicate: false, result: { status: 'applied', version: 2 } });
    expect(replies.filter((r) => r.id === 'first').slice(1)).toEqual([{ id: 'first', duplicate: true, result: { status: 'applied', version: 1 } }]);
    await eventually(async () => ((await redis.xpending(stream, DOC_CONSUMER_GROUP)) as [number])[0] === 0, 'the entry to be acknowledged');
    expect(await history(redis, ok, prefix)).toHaveLength(1);
  });

  it('keeps versions 1..N, each update exactly once, under concurrent stores across documents', async () => {
    const prefix = nextPrefix();
    const w = cleanups.add(await startWorker({ redis: [privateRedis.server.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000 }), (x) => x.stop());
    const stores = await Promise.all(
      ['g1', 'g2'].map(async (node) => {
        const st = cleanups.add(new RedisDocStore({ urls: [privateRedis.server.url], prefix, node }), (x) => x.close());
        await st.start();
        return st;
      }),
    );
    const docs = 5;
    const n = 200;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        stores[i % 2].update(`doc:c${i % docs}`, parseUpdate({ base: 0, key: `u${i}`, ops: [{ op: 'incr', path: '/n', value: 1 }, set(`/w${i}`, i)] }), {
          historySize: 1000, historyTtlSeconds: 60,
        }),
      ),
    );
    const redis = client();
    for (let d = 0; d < docs; d++) {
      const versions = results.filter((_, i) => i % docs === d).map((r) => r.version).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: n / docs }, (_, v) => v + 1));
      expect((await history(redis, `doc:c${d}`, prefix)).length).toBe(n / docs);
    }
    expect(w.stats()).toMatchObject({ failed: 0, merged: expect.any(Number) });
  });
});
