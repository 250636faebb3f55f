// The sharded pub/sub connection against a real 3-primary Redis Cluster: messages, MOVED, and a slot moved away.
import type { Cluster } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../../testkit/src/redis_cluster';
import { eventually } from './broker.contract';
import { ShardedSubscriber, type ShardedSubscriberEvents } from './sharded_subscriber';

let cluster: RedisCluster;
let client: Cluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
  client = cluster.client();
}, 30000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

interface Seen {
  messages: [string, string][];
  dropped: string[];
  moved: [string[], string][];
  closed: string[];
}

async function subscriberFor(port: number): Promise<{ sub: ShardedSubscriber; seen: Seen }> {
  const seen: Seen = { messages: [], dropped: [], moved: [], closed: [] };
  const events: ShardedSubscriberEvents = {
    message: (name, payload) => seen.messages.push([name, payload]),
    dropped: (names) => seen.dropped.push(...names),
    moved: (names, to) => seen.moved.push([names, to]),
    closed: (reason) => seen.closed.push(reason),
  };
  const sub = await ShardedSubscriber.connect({ host: '127.0.0.1', port }, 'test-sharded', 2000, events);
  return { sub, seen };
}

/** Channels whose slots the node at `port` owns, found by trying names. */
async function channelsOwnedBy(port: number, count: number, label: string): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    const name = `sb:{${label}-${i}}`;
    if ((await cluster.ownerOfSlot(await cluster.slotOfKey(name))) === port) names.push(name);
  }
  return names;
}

it('subscribes many channels of many slots on their owner in one call, and gets their SPUBLISHed messages', async () => {
  const [primary] = await cluster.primaries();
  const names = await channelsOwnedBy(primary.port, 20, 'many');
  const { sub, seen } = await subscriberFor(primary.port);
  try {
    await sub.ssubscribe(names);
    for (const name of names) await client.spublish(name, `to ${name}`);
    await eventually(async () => seen.messages.length === names.length, 'every message');
    expect(seen.messages).toEqual(names.map((n) => [n, `to ${n}`]));
    await sub.sunsubscribe(names.slice(0, 10));
    for (const name of names) await client.spublish(name, 'again');
    await eventually(async () => seen.messages.length === names.length + 10, 'the ten still subscribed');
    expect(seen.dropped).toEqual([]);
  } finally {
    sub.close();
  }
});

it('reports MOVED for a channel whose slot another node owns', async () => {
  const [a, b] = await cluster.primaries();
  const [name] = await channelsOwnedBy(b.port, 1, 'elsewhere');
  const { sub, seen } = await subscriberFor(a.port);
  try {
    await expect(sub.ssubscribe([name])).rejects.toThrow(/MOVED/);
    expect(seen.moved).toEqual([[[name], `127.0.0.1:${b.port}`]]);
    // The connection stays usable.
    const [own] = await channelsOwnedBy(a.port, 1, 'stays');
    await sub.ssubscribe([own]);
  } finally {
    sub.close();
  }
});

it('reports the channels the node drops when their slot moves away, and nothing else', async () => {
  const [a, b] = await cluster.primaries();
  const [moving, staying] = await channelsOwnedBy(a.port, 2, 'reshard');
  const { sub, seen } = await subscriberFor(a.port);
  try {
    await sub.ssubscribe([moving, staying]);
    await cluster.moveSlot(await cluster.slotOfKey(moving), b.port);
    await eventually(async () => seen.dropped.length > 0, 'the node to drop the moved channel');
    expect(seen.dropped).toEqual([moving]);
    await client.spublish(staying, 'still here');
    await eventually(async () => seen.messages.some(([n]) => n === staying), 'the other channel keeps working');
  } finally {
    sub.close();
  }
}, 20000);

it('reports a closed connection when the node dies', async () => {
  const replicaOwner = (await cluster.primaries())[2];
  const { sub, seen } = await subscriberFor(replicaOwner.port);
  await cluster.failoverKill(replicaOwner.port);
  await eventually(async () => seen.closed.length === 1, 'the close');
  expect(sub.isOpen).toBe(false);
  await expect(sub.ssubscribe(['sb:{x}'])).rejects.toThrow(/closed/);
}, 30000);
