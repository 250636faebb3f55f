// RedisDocStore and the document scripts without a worker: the request and reply wire, timeouts, the CAS commit.
import type Redis from 'ioredis';
import { waitFor } from '../../testkit/src/process';
import { startRedis, type RedisServer } from '../../testkit/src/redis';
import { RedisBroker } from './broker_redis';
import { DocError, parseUpdate } from '@switchboard/protocol';
import { DocUnavailableError } from './docs';
import { RedisDocStore, type RedisDocStoreOptions } from './docs_redis';
import { withDocScripts } from './docs_scripts';
import {
  decodeDocRequests,
  docKeys,
  docPartitionOf,
  docRequestStream,
  encodeDocErrorReply,
  encodeDocOutcome,
  encodeDocReplies,
  encodeDocResultReply,
  docReplyChannel,
} from './docs_wire';
import { shardOf } from './redis_keys';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
function client(of: RedisServer = server): Redis {
  const c = of.client();
  cleanups.push(() => c.quit().catch(() => c.disconnect()));
  return c;
}
async function newStore(options: Partial<RedisDocStoreOptions> & { prefix: string }): Promise<RedisDocStore> {
  const store = new RedisDocStore({ urls: [server.url], node: 'gw1', timeoutMs: 2000, ...options });
  cleanups.push(() => store.close());
  await store.start();
  return store;
}
async function newBroker(prefix: string): Promise<RedisBroker> {
  const broker = new RedisBroker({ urls: [server.url], prefix });
  cleanups.push(() => broker.close());
  await broker.start();
  return broker;
}

let prefixes = 0;
const nextPrefix = (): string => `dr${process.pid}x${++prefixes}`;
const opts = { historySize: 10, historyTtlSeconds: 60 };
const update = parseUpdate({ base: 0, key: 'k', ops: [{ op: 'set', path: '/a', value: 1 }] });

/** Plays the worker: waits for the next request on a partition stream and answers it with `answer(requestId)`. */
async function answerNext(redis: Redis, prefix: string, channel: string, answer: (id: string) => string): Promise<Record<string, string>> {
  const stream = docRequestStream(prefix, docPartitionOf(channel, 16));
  const read = (await redis.xread('BLOCK', 2000, 'STREAMS', stream, '0')) as Array<[string, Array<[string, string[]]>]> | null;
  if (!read) throw new Error('no request arrived');
  const [, fields] = read[0][1][0];
  const [req] = decodeDocRequests(fields);
  await redis.publish(docReplyChannel(prefix, req.node), answer(req.id));
  return Object.fromEntries(fields.map((v, i) => (i % 2 === 0 ? [v, fields[i + 1]] : undefined)).filter((e): e is [string, string] => e !== undefined));
}

describe('RedisDocStore', () => {
  it('reads a new document as version 0 in the epoch the channel keeps', async () => {
    const prefix = nextPrefix();
    const store = await newStore({ prefix });
    const broker = await newBroker(prefix);
    const doc = await store.get('doc:a');
    expect(doc).toEqual({ version: 0, epoch: expect.any(String), state: '{}' });
    expect(await broker.history('doc:a', { limit: 0 })).toMatchObject({ offset: 0, epoch: doc.epoch });
  });

  it('queues an update on its partition stream and resolves with the reply', async () => {
    const prefix = nextPrefix();
    const store = await newStore({ prefix });
    const pending = store.update('doc:b', update, opts);
    const fields = await answerNext(client(), prefix, 'doc:b', (id) => encodeDocResultReply(id, encodeDocOutcome({ status: 'applied', version: 1 }), false));
    expect(await pending).toEqual({ status: 'applied', version: 1 });
    expect(fields).toEqual({ n: 'gw1', t: '2000', q: expect.any(String) });
    expect(JSON.parse(fields.q)).toEqual([{ r: expect.any(String), c: 'doc:b', hs: 10, ht: 60, u: JSON.parse(JSON.stringify(update)) }]);
  });

  it('writes the updates of one turn for one partition as one stream entry, and answers each from a batch reply', async () => {
    const prefix = nextPrefix();
    const store = await newStore({ prefix });
    const redis = client();
    const channels = ['doc:x1', 'doc:x2', 'doc:x3', 'doc:x4', 'doc:x5', 'doc:x6'];
    const updates = channels.flatMap((channel) =>
      [0, 1, 2].map((n) => ({ channel, n, pending: store.update(channel, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/n', value: n }] }), opts) })),
    );
    const partitions = new Set(channels.map((c) => docPartitionOf(c, 16)));
    const entries: Array<[id: string, fields: string[]]> = [];
    await waitFor(
      async () => {
        entries.length = 0;
        for (const p of partitions) entries.push(...((await redis.xrange(docRequestStream(prefix, p), '-', '+')) as Array<[string, string[]]>));
        return entries.reduce((n, [, fields]) => n + decodeDocRequests(fields).length, 0) === updates.length;
      },
      { message: 'every request in the streams' },
    );
    expect(entries).toHaveLength(partitions.size); // one entry per partition
    const requests = entries.flatMap(([, fields]) => decodeDocRequests(fields));
    expect(requests.every((r) => r.batched && r.node === 'gw1' && r.timeoutMs === 2000 && r.historySize === 10)).toBe(true);
    const valueIn = (r: (typeof requests)[number]): number => (r.update as { ops: Array<{ value: number }> }).ops[0].value;
    // Per document in call order.
    for (const channel of channels) expect(requests.filter((r) => r.channel === channel).map(valueIn)).toEqual([0, 1, 2]);
    // One reply message for all of them, in another order than asked: each caller gets its own.
    const versionOf = new Map(requests.map((r, i) => [`${r.channel}/${valueIn(r)}`, i + 1]));
    const payloads = requests.map((r) => encodeDocResultReply(r.id, encodeDocOutcome({ status: 'applied', version: versionOf.get(`${r.channel}/${valueIn(r)}`) ?? 0 }), false));
    await redis.publish(docReplyChannel(prefix, 'gw1'), encodeDocReplies(payloads.reverse()));
    for (const u of updates) expect(await u.pending).toEqual({ status: 'applied', version: versionOf.get(`${u.channel}/${u.n}`) });
  });

  it('turns replies into results and errors by kind', async () => {
    const prefix = nextPrefix();
    const store = await newStore({ prefix });
    const redis = client();
    const conflict = { status: 'conflict' as const, version: 3, paths: ['/a'], state: '{"a":{"b":[1,"x"]}}' };
    let pending = store.update('doc:c', update, opts);
    await answerNext(redis, prefix, 'doc:c', (id) => encodeDocResultReply(id, encodeDocOutcome(conflict), true));
    expect(await pending).toEqual({ ...conflict, duplicate: true });

    const kinds = [
      ['doc', DocError],
      ['timeout', DocUnavailableError],
      ['internal', Error],
    ] as const;
    for (const [kind, type] of kinds) {
      await redis.del(docRequestStream(prefix, docPartitionOf('doc:c', 16)));
      pending = store.update('doc:c', update, opts);
      await answerNext(redis, prefix, 'doc:c', (id) => encodeDocErrorReply(id, { kind, message: `failed as ${kind}` }));
      await expect(pending).rejects.toThrow(type);
      await expect(pending).rejects.toThrow(`failed as ${kind}`);
    }
  });

  it('gives up with DocUnavailableError when no worker answers in time', async () => {
    const prefix = nextPrefix();
    const store = await newStore({ prefix, timeoutMs: 100 });
    await expect(store.update('doc:d', update, opts)).rejects.toThrow(DocUnavailableError);
    await expect(store.get('doc:d')).resolves.toMatchObject({ version: 0 });
  });

  it('puts request streams on shard p % shards and reads documents from their channel shard', async () => {
    const second = await startRedis();
    cleanups.push(() => second.stop());
    const prefix = nextPrefix();
    const store = await newStore({ prefix, urls: [server.url, second.url], timeoutMs: 100 });
    const shards = [client(server), client(second)];
    for (const channel of ['doc:s1', 'doc:s2', 'doc:s3', 'doc:s4']) {
      await store.update(channel, update, opts).catch(() => undefined);
      const p = docPartitionOf(channel, 16);
      expect(await shards[p % 2].xlen(docRequestStream(prefix, p))).toBe(1);
      expect(await shards[1 - (p % 2)].exists(docRequestStream(prefix, p))).toBe(0);
      await store.get(channel);
      expect(await shards[shardOf(channel, 2)].exists(docKeys(channel, prefix).meta)).toBe(1);
      expect(await shards[1 - shardOf(channel, 2)].exists(docKeys(channel, prefix).meta)).toBe(0);
    }
  });

  it('rejects with DocUnavailableError while Redis is down', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const store = await newStore({ prefix: nextPrefix(), urls: [own.url], timeoutMs: 100 });
    await own.stop();
    await expect(store.get('doc:e')).rejects.toThrow(DocUnavailableError);
    await expect(store.update('doc:e', update, opts)).rejects.toThrow(DocUnavailableError);
    // Back again: it reconnects by itself (and then closes cleanly, leaving no socket to time out).
    await own.restart();
    const deadline = Date.now() + 5000;
    while (!store.isReady() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    await expect(store.get('doc:e')).resolves.toMatchObject({ version: 0 });
  });
});

describe('doc_commit_batch.lua', () => {
  /** A record of the group: its idempotency key (short form), publication JSON ('' for a conflict) and outcome JSON. */
  interface BatchRecord {
    key: string;
    publication: string;
    outcome: string;
  }
  async function setup() {
    const prefix = nextPrefix();
    const redis = withDocScripts(client());
    const broker = await newBroker(prefix);
    const keys = docKeys('doc:cas', prefix);
    const idem = (k: string): string => `${keys.pubsub}:di:k:${k}`;
    /** Runs the script as its header lists keys and arguments (history size 10, TTLs 60 s and 300 s). */
    const batch = (expected: number, [state, writes, floor]: [string, string, number], records: BatchRecord[]) =>
      redis.sbDocCommitBatch(3 + records.length, keys.doc, keys.meta, keys.history, ...records.map((r) => idem(r.key)),
        expected, state, writes, floor, 10, 60, 'EPOCH' + expected, keys.pubsub, 300, records.length,
        ...records.flatMap((r) => [r.publication, r.outcome]), 'publish');
    /**
     * Commits updates decided in turn against `expected` as one group: a key commits the next version, `{ conflict: key }`
     * records a conflict at the current one. The final state is `{"v":<last version>}`.
     */
    const commit = (expected: number, ...updates: Array<string | { conflict: string }>) => {
      let v = expected;
      const records = updates.map((u): BatchRecord => {
        if (typeof u !== 'string') return { key: u.conflict, publication: '', outcome: `{"status":"conflict","version":${v}}` };
        v++;
        return { key: u, publication: `{"offset":${v},"data":{"version":${v}}}`, outcome: `{"status":"applied","version":${v}}` };
      });
      return batch(expected, [`{"v":${v}}`, '[["/v",' + v + ']]', 0], records);
    };
    return { prefix, redis, broker, keys, idem, batch, commit };
  }

  it('writes, bumps the offset, appends and publishes like publish.lua, and never lets the document expire', async () => {
    const { redis, broker, keys, commit } = await setup();
    const got: Array<[number, string, string]> = [];
    let gotFour: () => void = () => undefined;
    const four = new Promise<void>((resolve) => (gotFour = resolve));
    broker.onPublication((_ch, pub, epoch) => {
      if (got.push([pub.offset, epoch, pub.json]) === 4) gotFour();
    });
    await broker.subscribe(['doc:cas']);
    await broker.history('doc:cas', { limit: 0 }); // creates the meta with a TTL, as a subscriber's read does
    const { epoch } = await broker.history('doc:cas', { limit: 0 });
    expect(await redis.ttl(keys.meta)).toBeGreaterThan(0);

    // Groups of one.
    expect(await commit(0, 'a')).toEqual(['ok', epoch]);
    expect(await commit(1, 'b')).toEqual(['ok', epoch]);
    expect(await redis.hgetall(keys.doc)).toEqual({ s: '{"v":2}', w: '[["/v",2]]', f: '0', v: '2' });
    expect(await redis.ttl(keys.meta)).toBe(-1);
    expect(await redis.ttl(keys.doc)).toBe(-1);
    expect(await redis.ttl(keys.history)).toBeGreaterThan(0);
    let history = await broker.history('doc:cas', { limit: -1 });
    expect(history.offset).toBe(2);
    expect(history.publications).toEqual([
      { offset: 1, json: '{"offset":1,"data":{"version":1}}' },
      { offset: 2, json: '{"offset":2,"data":{"version":2}}' },
    ]);

    // A group of two: one write of the final state, an offset, history entry and publication per update, and
    // the document and meta made persistent again even if something had given them a TTL.
    await redis.expire(keys.meta, 100);
    await redis.expire(keys.doc, 100);
    expect(await commit(2, 'c', 'd')).toEqual(['ok', epoch]);
    expect(await redis.hgetall(keys.doc)).toEqual({ s: '{"v":4}', w: '[["/v",4]]', f: '0', v: '4' });
    expect(await redis.ttl(keys.meta)).toBe(-1);
    expect(await redis.ttl(keys.doc)).toBe(-1);
    expect(await redis.ttl(keys.history)).toBeGreaterThan(0);
    history = await broker.history('doc:cas', { limit: -1 });
    expect(history.offset).toBe(4);
    expect(history.publications).toEqual([
      { offset: 1, json: '{"offset":1,"data":{"version":1}}' },
      { offset: 2, json: '{"offset":2,"data":{"version":2}}' },
      { offset: 3, json: '{"offset":3,"data":{"version":3}}' },
      { offset: 4, json: '{"offset":4,"data":{"version":4}}' },
    ]);
    await four;
    expect(got).toEqual([
      [1, epoch, '{"offset":1,"data":{"version":1}}'],
      [2, epoch, '{"offset":2,"data":{"version":2}}'],
      [3, epoch, '{"offset":3,"data":{"version":3}}'],
      [4, epoch, '{"offset":4,"data":{"version":4}}'],
    ]);
  });

  it('answers a seen key from its record, a moved version with stale, and records conflicts without writing', async () => {
    const { redis, keys, idem, batch, commit } = await setup();
    expect(await commit(0, 'a')).toEqual(['ok', expect.any(String)]);
    const doc = await redis.hgetall(keys.doc);
    const meta = await redis.hgetall(keys.meta);
    expect(doc).toEqual({ s: '{"v":1}', w: '[["/v",1]]', f: '0', v: '1' });
    const unchanged = async (): Promise<void> => {
      expect(await redis.hgetall(keys.doc)).toEqual(doc);
      expect(await redis.hgetall(keys.meta)).toEqual(meta);
      expect(await redis.xlen(keys.history)).toBe(1);
    };

    // A recorded key is answered from its record (before the version guard), and nothing of the group is written.
    expect(await commit(0, 'a')).toEqual(['dup', [1, '{"status":"applied","version":1}']]);
    expect(await commit(1, 'b', 'a')).toEqual(['dup', [2, '{"status":"applied","version":1}']]);
    expect(await redis.exists(idem('b'))).toBe(0);
    await unchanged();

    // A moved version: stale with the current offset, nothing written.
    expect(await commit(0, 'b')).toEqual(['stale', 1]);
    expect(await commit(5, 'b')).toEqual(['stale', 1]);
    expect(await commit(0, 'b', 'c')).toEqual(['stale', 1]);
    expect(await redis.exists(idem('b'), idem('c'))).toBe(0);
    await unchanged();

    // A conflict alone is recorded, guarded the same way, without writing the document (whatever final state came along).
    expect(await batch(1, ['{"v":"not written"}', '[["/v",9]]', 9], [{ key: 'c', publication: '', outcome: '{"status":"conflict","version":1}' }])).toEqual([
      'ok',
      expect.any(String),
    ]);
    expect(await redis.get(idem('c'))).toBe('{"status":"conflict","version":1}');
    expect(await redis.ttl(idem('c'))).toBeGreaterThan(200);
    expect(await commit(0, { conflict: 'x' })).toEqual(['stale', 1]);
    expect(await redis.exists(idem('x'))).toBe(0);
    await unchanged();
    expect(await redis.hget(keys.meta, 'o')).toBe('1');

    // Within a group a conflict takes no version: the commits around it get 2 and 3.
    expect(await commit(1, 'd', { conflict: 'e' }, 'f')).toEqual(['ok', expect.any(String)]);
    expect(await redis.hget(keys.meta, 'o')).toBe('3');
    expect(await redis.hgetall(keys.doc)).toEqual({ s: '{"v":3}', w: '[["/v",3]]', f: '0', v: '3' });
    expect(await redis.mget(idem('d'), idem('e'), idem('f'))).toEqual([
      '{"status":"applied","version":2}',
      '{"status":"conflict","version":2}',
      '{"status":"applied","version":3}',
    ]);
    for (const k of ['d', 'e', 'f']) expect(await redis.ttl(idem(k))).toBeGreaterThan(200);
    expect(await redis.xrange(keys.history, '-', '+')).toEqual([
      ['1-0', ['d', '{"offset":1,"data":{"version":1}}']],
      ['2-0', ['d', '{"offset":2,"data":{"version":2}}']],
      ['3-0', ['d', '{"offset":3,"data":{"version":3}}']],
    ]);
  });

  it('creates the epoch of a new channel and drops history an old epoch left', async () => {
    const { redis, keys, commit } = await setup();
    await redis.xadd(keys.history, '7', 'd', '{"offset":7}');
    expect(await commit(0, 'a')).toEqual(['ok', 'EPOCH0']);
    expect(await redis.hgetall(keys.meta)).toEqual({ e: 'EPOCH0', o: '1', s: '10' });
    expect(await redis.xrange(keys.history, '-', '+')).toEqual([['1-0', ['d', '{"offset":1,"data":{"version":1}}']]]);

    // A group of two on a new channel: one epoch, the old history dropped once, both entries kept.
    const other = await setup();
    await other.redis.xadd(other.keys.history, '7', 'd', '{"offset":7}');
    expect(await other.commit(0, 'a', 'b')).toEqual(['ok', 'EPOCH0']);
    expect(await other.redis.hgetall(other.keys.meta)).toEqual({ e: 'EPOCH0', o: '2', s: '10' });
    expect(await other.redis.xrange(other.keys.history, '-', '+')).toEqual([
      ['1-0', ['d', '{"offset":1,"data":{"version":1}}']],
      ['2-0', ['d', '{"offset":2,"data":{"version":2}}']],
    ]);
  });
});
