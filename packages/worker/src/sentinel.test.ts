// Documents through Sentinel: the DocStore contract with a worker and the gateway's store on a Sentinel-named
// primary, and commits acknowledged only once a replica has them.
import Redis from 'ioredis';
import { docKeys, RedisBroker, RedisDocStore } from '@switchboard/engine';
import { parseUpdate } from '@switchboard/protocol';
import { startRedis } from '../../testkit/src/redis';
import { startRedisSentinel, type RedisSentinelSet } from '../../testkit/src/redis_sentinel';
import { docStoreContract } from '../../engine/src/docs.contract';
import { Cleanups, testLogger } from './testing.fixture';
import { startWorker } from './worker';

let set: RedisSentinelSet;
beforeAll(async () => {
  set = await startRedisSentinel();
}, 30000);
afterAll(async () => {
  await set?.stop();
});

const own = new Cleanups();
afterAll(() => own.run());

docStoreContract('redis through sentinel (RedisDocStore + worker)', async () => {
  const prefix = `sentinel${process.pid}`;
  const worker = own.add(await startWorker({ redis: [set.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000 }), (w) => w.stop());
  const store = own.add(new RedisDocStore({ urls: [set.url], prefix, node: 'gw' }), (s) => s.close());
  await store.start();
  const broker = own.add(new RedisBroker({ urls: [set.url], prefix }), (b) => b.close());
  await broker.start();
  expect(worker.ownedPartitions()).toHaveLength(16);
  return { store, broker, cleanup: () => own.run() };
});

describe('--doc-wait-replicas', () => {
  const opts = { historySize: 100, historyTtlSeconds: 60 };
  const local = new Cleanups();
  afterEach(() => local.run());

  async function setup(url: string, prefix: string, timeoutMs: number): Promise<RedisDocStore> {
    local.add(await startWorker({ redis: [url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000, waitReplicas: 1, waitTimeoutMs: 300 }), (w) => w.stop());
    const store = local.add(new RedisDocStore({ urls: [url], prefix, node: 'gw', timeoutMs }), (s) => s.close());
    await store.start();
    return store;
  }

  it('acknowledges an update once the replica has it', async () => {
    const store = await setup(set.url, `wait${process.pid}`, 5000);
    const result = await store.update('doc:replicated', parseUpdate({ base: 0, ops: [{ op: 'set', path: '/x', value: 1 }], key: 'k1' }), opts);
    expect(result).toMatchObject({ status: 'applied', version: 1 });
    const primary = await set.primaryPort();
    const replica = set.nodes.find((n) => n.port !== primary);
    const conn = new Redis({ host: '127.0.0.1', port: replica?.port });
    try {
      // A replica that answers WAIT has the write: no polling needed.
      expect(await conn.exists(docKeys('doc:replicated', `wait${process.pid}`).doc)).toBe(1);
    } finally {
      conn.disconnect();
    }
  });

  it('never acknowledges an update that no replica took', async () => {
    const lonely = await startRedis();
    local.add(lonely, (r) => r.stop());
    const store = await setup(lonely.url, 'lonely', 2500);
    await expect(store.update('doc:unreplicated', parseUpdate({ base: 0, ops: [{ op: 'set', path: '/x', value: 1 }], key: 'k2' }), opts)).rejects.toThrow(/replicas/);
  });
});
