// The Redis broker on a real Redis Cluster (3 primaries + 3 replicas): the broker and presence contracts, sharded
// pub/sub on the owning primary only, and subscriptions that follow a moved slot and a failover.
import Redis, { type Cluster } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../../testkit/src/redis_cluster';
import { type BrokerUnderTest, brokerContract, eventually } from './broker.contract';
import { RedisBroker } from './broker_redis';
import { presenceContract } from './presence.contract';
import { CLUSTER_CONTROL_SHARDS, clusterControlChannel, clusterNodeChannel, redisPubSubChannel } from './redis_keys';
import { parseRedisAddress, type ClusterAddress } from './redis_url';

let cluster: RedisCluster;
let address: ClusterAddress;
let admin: Cluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
  const parsed = parseRedisAddress(cluster.url);
  if (parsed.kind !== 'cluster') throw new Error('not a cluster address');
  address = parsed.cluster;
  admin = cluster.client();
}, 30000);
afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
});

let prefixes = 0;
const opened: RedisBroker[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});
async function open(prefix: string, node?: string, onError?: (err: Error) => void): Promise<RedisBroker> {
  const broker = new RedisBroker({ urls: [], cluster: address, prefix, node, onError });
  opened.push(broker);
  await broker.start();
  return broker;
}

async function clusterBroker(): Promise<BrokerUnderTest> {
  const prefix = `cl${++prefixes}`;
  const node = 'node 1';
  return { broker: await open(prefix, node), node, peer: (n?: string) => open(prefix, n), cleanup: async () => undefined };
}
brokerContract('redis cluster', clusterBroker, { multiNode: true });
presenceContract('redis cluster', clusterBroker, { multiNode: true });

const withHistory = { historySize: 100, historyTtlSeconds: 60 };

/** SHARDNUMSUB of each channel's pub/sub name on every primary: [channel, port, count] where count > 0. */
async function shardSubscriptions(prefix: string, channels: string[]): Promise<[string, number, number][]> {
  const out: [string, number, number][] = [];
  for (const { port } of await cluster.primaries()) {
    const conn = new Redis({ host: '127.0.0.1', port });
    try {
      const reply = (await conn.call('PUBSUB', 'SHARDNUMSUB', ...channels.map((c) => redisPubSubChannel(c, prefix)))) as (string | number)[];
      for (let i = 0; i < reply.length; i += 2) if (Number(reply[i + 1]) > 0) out.push([channels[i / 2], port, Number(reply[i + 1])]);
    } finally {
      conn.disconnect();
    }
  }
  return out;
}

describe('RedisBroker on Redis Cluster', () => {
  it('subscribes each of 60 channels once, on the primary that owns its slot, and delivers their publications', async () => {
    const prefix = `spread${++prefixes}`;
    const channels = Array.from({ length: 60 }, (_, i) => `room:${i}`);
    const sub = await open(prefix);
    const got = new Map<string, number[]>();
    sub.onPublication((channel, pub) => got.set(channel, [...(got.get(channel) ?? []), pub.offset]));
    await sub.subscribe(channels);
    const placed = await shardSubscriptions(prefix, channels);
    expect(placed.map(([c]) => c).sort()).toEqual([...channels].sort());
    for (const [channel, port, count] of placed) {
      expect(count).toBe(1);
      expect(port).toBe(await cluster.ownerOfSlot(await cluster.slotOfKey(redisPubSubChannel(channel, prefix))));
    }
    expect(new Set(placed.map(([, port]) => port)).size).toBe(3);

    const pub = await open(prefix);
    for (let round = 1; round <= 2; round++) for (const channel of channels) await pub.publish(channel, '"data":1', withHistory);
    await eventually(async () => channels.every((c) => got.get(c)?.length === 2), 'two publications on every channel');
    expect(channels.every((c) => got.get(c)?.join() === '1,2')).toBe(true);

    await sub.unsubscribe(channels);
    expect(await shardSubscriptions(prefix, channels)).toEqual([]);
  });

  it('spreads control messages over sharded channels on every primary, keeping one user\'s messages in order', async () => {
    const prefix = `control${++prefixes}`;
    const [a, b] = [await open(prefix, 'gw-a'), await open(prefix, 'gw-b')];
    const control = Array.from({ length: CLUSTER_CONTROL_SHARDS }, (_, i) => clusterControlChannel(i));
    const placed = await shardSubscriptions(prefix, [...control, clusterNodeChannel('gw-a'), clusterNodeChannel('gw-b')]);
    // Each node subscribes every control shard and its own node channel, each on the primary owning its slot.
    expect(placed.filter(([c]) => control.includes(c)).map(([, , n]) => n)).toEqual(control.map(() => 2));
    expect(new Set(placed.filter(([c]) => control.includes(c)).map(([, port]) => port)).size).toBe(3);
    expect(placed.filter(([c]) => !control.includes(c)).map(([c, , n]) => [c, n]).sort()).toEqual([
      [clusterNodeChannel('gw-a'), 1],
      [clusterNodeChannel('gw-b'), 1],
    ]);
    const got: string[] = [];
    b.onControl((m) => got.push(m));
    const sent = Array.from({ length: 50 }, (_, i) => `alice ${i}`);
    await Promise.all(sent.map((m) => a.publishControl(m, undefined, 'alice')));
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.publishControl(`anyone ${i}`)));
    await a.publishControl('to b', 'gw-b');
    await eventually(async () => got.length === 71, 'every control message at the other node');
    expect(got.filter((m) => m.startsWith('alice'))).toEqual(sent);
  });

  it('follows a moved slot: subscribed again on the new owner, told to check positions, delivering', async () => {
    const prefix = `moved${++prefixes}`;
    const sub = await open(prefix);
    const got: number[] = [];
    sub.onPublication((_c, pub) => got.push(pub.offset));
    let restored = 0;
    let movedSlots = 0;
    sub.onResubscribed((moved) => {
      restored++;
      movedSlots += moved;
    });
    await sub.subscribe(['ch']);
    const pub = await open(prefix);
    await pub.publish('ch', '"data":1', withHistory);
    await eventually(async () => got.length === 1, 'the first publication');

    const slot = await cluster.slotOfKey(redisPubSubChannel('ch', prefix));
    const from = await cluster.ownerOfSlot(slot);
    const to = (await cluster.primaries()).find((p) => p.port !== from)?.port ?? 0;
    await cluster.moveSlot(slot, to);
    await eventually(async () => restored > 0 && sub.isReady(), 'the subscription placed again', 10000);
    expect(await shardSubscriptions(prefix, ['ch'])).toEqual([['ch', to, 1]]);
    expect(movedSlots).toBe(1);
    // The first publish may meet the slot still migrating (TRYAGAIN/ASK); retry until one is acknowledged.
    const acknowledged: number[] = [];
    await eventually(async () => {
      const r = await pub.publish('ch', '"data":2', withHistory).catch(() => undefined);
      if (r) acknowledged.push(r.offset);
      return r !== undefined;
    }, 'a publish after the move', 10000);
    await eventually(async () => got.length === 1 + acknowledged.length, 'the publication after the move');
    expect(got).toEqual([1, ...acknowledged]);
  }, 30000);

  it('follows a failover of the primary that holds its subscription', async () => {
    const prefix = `failover${++prefixes}`;
    const sub = await open(prefix, undefined, () => undefined);
    const got: number[] = [];
    sub.onPublication((_c, pub) => got.push(pub.offset));
    let restored = 0;
    let movedSlots = 0;
    sub.onResubscribed((moved) => {
      restored++;
      movedSlots += moved;
    });
    await sub.subscribe(['ch']);
    const owner = await cluster.ownerOfSlot(await cluster.slotOfKey(redisPubSubChannel('ch', prefix)));
    const promotedAt = Date.now();
    const promoted = await cluster.failoverKill(owner);
    await eventually(async () => restored > 0 && sub.isReady(), 'ready again on the promoted replica', 10000);
    expect(Date.now() - promotedAt).toBeLessThan(15000);
    expect(await shardSubscriptions(prefix, ['ch'])).toEqual([['ch', promoted, 1]]);
    expect(movedSlots).toBe(1);
    const pub = await open(prefix, undefined, () => undefined);
    await eventually(async () => {
      await pub.publish('ch', '"data":1', withHistory).catch(() => undefined);
      return got.length > 0;
    }, 'a publication after the failover', 10000);
    await cluster.restartNode(owner);
  }, 45000);
});
