// Documents on a real Redis Cluster (3 primaries + 3 replicas): the DocStore contract with two workers and the
// gateway's store, request partitions spread over the primaries, and every version gap-free as a worker leaves.
import { parseUpdate } from '@switchboard/protocol';
import Redis from 'ioredis';
import { docKeys, docReplyChannel, docRequestStream, parseRedisAddress, RedisBroker, RedisDocStore, type ClusterAddress } from '@switchboard/engine';
import { startRedisCluster, type RedisCluster } from '../../testkit/src/redis_cluster';
import { docStoreContract } from '../../engine/src/docs.contract';
import { Cleanups, eventually, testLogger } from './testing.fixture';
import { startWorker } from './worker';

let cluster: RedisCluster;
let address: ClusterAddress;
beforeAll(async () => {
  cluster = await startRedisCluster();
  const parsed = parseRedisAddress(cluster.url);
  if (parsed.kind !== 'cluster') throw new Error('not a cluster address');
  address = parsed.cluster;
}, 30000);
afterAll(async () => {
  await cluster?.stop();
});

const own = new Cleanups();
afterAll(() => own.run());

docStoreContract('redis cluster (RedisDocStore + worker)', async () => {
  const prefix = `cl${process.pid}`;
  const worker = own.add(await startWorker({ redis: [cluster.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000 }), (w) => w.stop());
  const store = own.add(new RedisDocStore({ urls: [], cluster: address, prefix, node: 'gw' }), (s) => s.close());
  await store.start();
  const broker = own.add(new RedisBroker({ urls: [], cluster: address, prefix }), (b) => b.close());
  await broker.start();
  expect(worker.ownedPartitions()).toHaveLength(16);
  return { store, broker, cleanup: () => own.run() };
});

describe('documents on Redis Cluster', () => {
  const local = new Cleanups();
  afterEach(() => local.run());

  it('spreads the request partitions over the primaries, and keeps versions gap-free when a worker leaves mid-run', async () => {
    const prefix = `spread${process.pid}`;
    const owners = new Set<number>();
    for (let p = 0; p < 16; p++) owners.add(await cluster.ownerOfSlot(await cluster.slotOfKey(docRequestStream(prefix, p))));
    expect(owners.size).toBe(3);

    const first = await startWorker({ redis: [cluster.url], prefix, logger: testLogger(), nodeId: 'w1', leaseMs: 1000 });
    local.add(first, (w) => w.stop());
    const second = local.add(await startWorker({ redis: [cluster.url], prefix, logger: testLogger(), nodeId: 'w2', leaseMs: 1000 }), (w) => w.stop());
    await eventually(() => first.ownedPartitions().length + second.ownedPartitions().length === 16 && second.ownedPartitions().length > 0, 'two workers sharing the partitions');
    const store = local.add(new RedisDocStore({ urls: [], cluster: address, prefix, node: 'gw', timeoutMs: 10000 }), (s) => s.close());
    await store.start();
    // The store's replies come over sharded pub/sub, subscribed on the primary of the reply channel's slot only.
    const replyChannel = docReplyChannel(prefix, 'gw', true);
    const replyOwner = await cluster.ownerOfSlot(await cluster.slotOfKey(replyChannel));
    for (const { port } of await cluster.primaries()) {
      const conn = new Redis({ host: '127.0.0.1', port });
      const [, count] = (await conn.call('PUBSUB', 'SHARDNUMSUB', replyChannel)) as [string, number];
      conn.disconnect();
      expect([port, Number(count)]).toEqual([port, port === replyOwner ? 1 : 0]);
    }

    const opts = { historySize: 1000, historyTtlSeconds: 60 };
    const docs = Array.from({ length: 6 }, (_, i) => `doc:d${i}`);
    const writes = docs.flatMap((doc) => Array.from({ length: 10 }, (_, k) => ({ doc, k })));
    let stopped = false;
    const results = await Promise.all(
      writes.map(async ({ doc, k }, i) => {
        if (i === 20 && !stopped) {
          stopped = true;
          await first.stop(); // its partitions move to the second worker
        }
        return store.update(doc, parseUpdate({ base: 0, ops: [{ op: 'incr', path: `/n`, value: 1 }], key: `${doc}-${k}` }), opts);
      }),
    );
    expect(results.every((r) => r.status !== 'conflict')).toBe(true);
    for (const doc of docs) {
      const state = await store.get(doc);
      expect([doc, state.version, JSON.parse(state.state)]).toEqual([doc, 10, { n: 10 }]);
    }
    await eventually(() => second.ownedPartitions().length === 16, 'the second worker owning every partition');
  }, 60000);
});

describe('--doc-wait-replicas on Redis Cluster', () => {
  const local = new Cleanups();
  afterEach(() => local.run());

  it('waits for the replica of the primary that holds the document, not of any node', async () => {
    const prefix = `wait${process.pid}`;
    local.add(await startWorker({ redis: [cluster.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000, waitReplicas: 1, waitTimeoutMs: 300 }), (w) => w.stop());
    const store = local.add(new RedisDocStore({ urls: [], cluster: address, prefix, node: 'gw', timeoutMs: 2500 }), (s) => s.close());
    await store.start();
    const opts = { historySize: 100, historyTtlSeconds: 60 };
    const channel = 'doc:waited';
    const owner = await cluster.ownerOfSlot(await cluster.slotOfKey(docKeys(channel, prefix).doc));
    const [replicaPort] = await cluster.replicasOf(owner);
    const replica = cluster.nodes.find((n) => n.port === replicaPort);
    if (!replica) throw new Error('no replica of the owning primary');

    // With that replica frozen the commit cannot be acknowledged, though every other primary's replica is fine.
    process.kill(replica.pid, 'SIGSTOP');
    try {
      await expect(store.update(channel, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/x', value: 1 }], key: 'frozen' }), opts)).rejects.toThrow();
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    const result = await store.update(channel, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/y', value: 2 }], key: 'thawed' }), opts);
    expect(result.status === 'applied' || result.status === 'merged').toBe(true);
  }, 30000);
});
