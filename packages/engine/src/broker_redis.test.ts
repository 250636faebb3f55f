import net from 'node:net';
import type Redis from 'ioredis';
import { startRedis, type RedisServer } from '../../testkit/src/redis';
import { type BrokerUnderTest, ControlInbox, Inbox, brokerContract, eventually } from './broker.contract';
import { RedisBroker, redisPubSubChannel, type RedisBrokerOptions } from './broker_redis';
import { createPresence } from './engine';
import { BrokerUnavailableError } from './errors';
import { presenceContract } from './presence.contract';
import { shardOf } from './redis_keys';

const withHistory = { historySize: 10, historyTtlSeconds: 60 };

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
  // After a large reply (the contract's 1 MB payload) redis-parser shrinks its shared buffer pool on a 50 ms
  // interval for a second or two; let it finish so the jest worker exits on its own. Jest's hook timer is the one left.
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await eventually(async () => timers() <= 1, 'redis-parser to release its buffer pool', 4000).catch(() => undefined);
});

/** Closes what a test opened even when it fails halfway, so stray connections do not keep jest alive. */
const cleanups: Array<() => Promise<unknown>> = [];
function newBroker(options: RedisBrokerOptions): RedisBroker {
  const created = new RedisBroker(options);
  cleanups.push(() => created.close());
  return created;
}
async function newRedis(): Promise<RedisServer> {
  const started = await startRedis();
  cleanups.push(() => started.stop());
  return started;
}
function newClient(of: RedisServer): Redis {
  const created = of.client();
  cleanups.push(() => created.quit().catch(() => created.disconnect()));
  return created;
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let prefixes = 0;
async function redisBroker(): Promise<BrokerUnderTest> {
  // Every broker on one prefix is a node of one cluster; a fresh prefix per test keeps tests apart.
  const prefix = `contract${++prefixes}`;
  const opened: RedisBroker[] = [];
  const open = async (node?: string): Promise<RedisBroker> => {
    const broker = new RedisBroker({ urls: [server.url], prefix, node });
    opened.push(broker);
    await broker.start();
    return broker;
  };
  const node = 'node 1';
  const broker = await open(node);
  return {
    broker,
    node,
    peer: open,
    cleanup: async () => {
      await Promise.all(opened.map((b) => b.close()));
    },
  };
}
brokerContract('redis', redisBroker, { multiNode: true });
presenceContract('redis', redisBroker, { multiNode: true });

async function commandCalls(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

async function numsub(admin: Redis, channels: string[], prefix: string): Promise<number[]> {
  const reply = (await admin.pubsub('NUMSUB', ...channels.map((ch) => redisPubSubChannel(ch, prefix)))) as unknown[];
  return reply.filter((_, i) => i % 2 === 1).map(Number);
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

describe('RedisBroker', () => {
  it('batches many subscribes of one tick into few SUBSCRIBE commands, and unsubscribes all', async () => {
    const broker = newBroker({ urls: [server.url], prefix: 'batch' });
    await broker.start();
    const admin = newClient(server);
    const channels = Array.from({ length: 1000 }, (_, i) => `ch${i}`);
    await admin.config('RESETSTAT');

    await Promise.all(channels.map((ch) => broker.subscribe([ch])));
    const subscribes = await commandCalls(admin, 'subscribe');
    expect(subscribes).toBeGreaterThanOrEqual(1);
    expect(subscribes).toBeLessThanOrEqual(4);
    expect(new Set(await numsub(admin, channels, 'batch'))).toEqual(new Set([1]));

    await Promise.all(channels.map((ch) => broker.unsubscribe([ch])));
    const unsubscribes = await commandCalls(admin, 'unsubscribe');
    expect(unsubscribes).toBeGreaterThanOrEqual(1);
    expect(unsubscribes).toBeLessThanOrEqual(4);
    expect(new Set(await numsub(admin, channels, 'batch'))).toEqual(new Set([0]));
  });

  it('fails fast while Redis is down, then restores subscriptions and delivers again', async () => {
    const own = await newRedis();
    const errors: Error[] = [];
    const broker = newBroker({ urls: [own.url], prefix: 'restart', onError: (err) => errors.push(err) });
    await broker.start();
    let resubscribed = 0;
    const restored = new Promise<void>((resolve) =>
      broker.onResubscribed(() => {
        resubscribed++;
        resolve();
      }),
    );
    const inbox = new Inbox(broker);
    await broker.subscribe(['r1', 'r2']);
    await broker.publish('r1', '"data":"before"', withHistory);
    await inbox.waitFor(() => inbox.of('r1').length === 1, 'the publication before the restart');
    expect(broker.isReady()).toBe(true);

    await own.stop();
    await eventually(async () => !broker.isReady(), 'isReady() to turn false');
    const started = Date.now();
    await expect(broker.publish('r1', '"data":"down"', withHistory)).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(broker.history('r1', { limit: -1 })).rejects.toBeInstanceOf(BrokerUnavailableError);
    await expect(broker.subscribe(['r3'])).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(Date.now() - started).toBeLessThan(1000);

    await own.restart();
    await restored;
    expect(broker.isReady()).toBe(true);
    expect(resubscribed).toBe(1);
    const admin = newClient(own);
    expect(await numsub(admin, ['r1', 'r2', 'r3'], 'restart')).toEqual([1, 1, 0]);

    // The restarted server lost its data and its script cache; publish reloads the script.
    const after = await broker.publish('r2', '"data":"after"', withHistory);
    expect(after.offset).toBe(1);
    await inbox.waitFor(() => inbox.of('r2').length === 1, 'the publication after the restart');
    expect(inbox.of('r2')[0].pub.json).toBe('{"offset":1,"data":"after"}');
    // One report per connection per outage, not one per retry.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThanOrEqual(2);
    expect(errors[0].message).toContain(own.url);
  });

  it('rejects a publish in flight when its connection drops, and does not resend it', async () => {
    const broker = newBroker({ urls: [server.url], prefix: 'inflight' });
    await broker.start();
    const admin = newClient(server);
    // Writes wait while paused, so the publish is surely in flight when its connection is killed.
    await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
    try {
      const started = Date.now();
      const pending = broker.publish('p', '"data":1', withHistory);
      await eventually(async () => / flags=b .*cmd=eval/.test(String(await admin.call('CLIENT', 'LIST'))), 'the script to be waiting');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await expect(pending).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
    }
    await eventually(async () => broker.isReady(), 'the broker to reconnect');
    expect((await broker.history('p', { limit: -1 })).publications).toEqual([]);
    expect((await broker.publish('p', '"data":2', withHistory)).offset).toBe(1);
  });

  it('spreads channels over two shards, each with its own keys and subscriptions', async () => {
    const [a, b] = await Promise.all([newRedis(), newRedis()]);
    const broker = newBroker({ urls: [a.url, b.url], prefix: 'two' });
    await broker.start();
    const clients = [newClient(a), newClient(b)];
    const channels = Array.from({ length: 40 }, (_, i) => `room:${i}`);
    const onShard = (shard: number): string[] => channels.filter((ch) => shardOf(ch, 2) === shard);
    expect(onShard(0).length).toBeGreaterThan(0);
    expect(onShard(1).length).toBeGreaterThan(0);

    const inbox = new Inbox(broker);
    await broker.subscribe(channels);
    for (const shard of [0, 1]) {
      expect(new Set(await numsub(clients[shard], onShard(shard), 'two'))).toEqual(new Set([1]));
      expect(new Set(await numsub(clients[shard], onShard(1 - shard), 'two'))).toEqual(new Set([0]));
    }
    for (const ch of channels) expect((await broker.publish(ch, `"data":${JSON.stringify(ch)}`, withHistory)).offset).toBe(1);
    await inbox.waitFor(() => channels.every((ch) => inbox.of(ch).length === 1), 'a publication on every channel');
    for (const ch of channels) {
      const shard = shardOf(ch, 2);
      expect(await clients[shard].exists(`two:{${ch}}:m`)).toBe(1);
      expect(await clients[1 - shard].exists(`two:{${ch}}:m`)).toBe(0);
      expect((await broker.history(ch, { limit: -1 })).publications).toEqual([inbox.of(ch)[0].pub]);
    }

    await broker.unsubscribe(channels);
    for (const shard of [0, 1]) expect(new Set(await numsub(clients[shard], channels, 'two'))).toEqual(new Set([0]));
  });

  it('rejects start() quickly, naming the URL, when Redis is unreachable', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const broker = new RedisBroker({ urls: [url] });
    const started = Date.now();
    await expect(broker.start()).rejects.toThrow(`cannot connect to Redis at ${url}`);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(broker.isReady()).toBe(false);
  });

  it('reports publication handler errors and malformed messages to onError', async () => {
    const errors: Error[] = [];
    const broker = newBroker({ urls: [server.url], prefix: 'errors', onError: (err) => errors.push(err) });
    await broker.start();
    broker.onPublication(() => {
      throw new Error('handler bug');
    });
    await broker.subscribe(['e']);
    const admin = newClient(server);
    await admin.publish(redisPubSubChannel('e', 'errors'), 'garbage');
    await broker.publish('e', '"data":1', withHistory);
    await eventually(async () => errors.length === 2, 'two errors');
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('malformed message'), 'handler bug']);
  });

  it('restores the control channels after a Redis restart and fails fast while it is down', async () => {
    const own = await newRedis();
    const broker = newBroker({ urls: [own.url], prefix: 'ctl', node: 'n1', onError: () => undefined });
    await broker.start();
    const restored = new Promise<void>((resolve) => broker.onResubscribed(() => resolve()));
    const inbox = new ControlInbox(broker);
    const presence = createPresence(broker);
    const controlSubscribers = async (): Promise<unknown[]> => {
      const admin = newClient(own);
      return (await admin.pubsub('NUMSUB', 'ctl:control', 'ctl:node:n1')) as unknown[];
    };
    expect(await controlSubscribers()).toEqual(['ctl:control', 1, 'ctl:node:n1', 1]);

    await own.stop();
    await eventually(async () => !broker.isReady(), 'isReady() to turn false');
    const started = Date.now();
    const down = [
      broker.publishControl('down'),
      broker.publishControl('down', 'n1'),
      broker.publishJoinLeave('room', 'join', '{"user":"u","client":"c"}'),
      presence.addPresence('room', [['c', '{"user":"u","client":"c"}']], 60),
      presence.removePresence('room', ['c']),
      presence.expirePresence('room'),
      presence.presence('room'),
      presence.presenceStats('room'),
    ];
    for (const call of down) await expect(call).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(Date.now() - started).toBeLessThan(1000);

    await own.restart();
    await restored;
    expect(broker.isReady()).toBe(true);
    expect(await controlSubscribers()).toEqual(['ctl:control', 1, 'ctl:node:n1', 1]);
    await broker.publishControl('after, to n1', 'n1');
    await broker.publishControl('after, to all');
    await inbox.waitFor(() => inbox.messages.length === 2, 'both control messages after the restart');
    expect(inbox.messages).toEqual(['after, to n1', 'after, to all']);
  });

  it('subscribes the control channels on shard 0 only, and none without a node id', async () => {
    const [a, b] = await Promise.all([newRedis(), newRedis()]);
    const named = newBroker({ urls: [a.url, b.url], prefix: 'ctl2', node: 'n' });
    const nodeless = newBroker({ urls: [a.url, b.url], prefix: 'ctl2' });
    await Promise.all([named.start(), nodeless.start()]);
    const names = ['ctl2:control', 'ctl2:node:n'];
    expect(await newClient(a).pubsub('NUMSUB', ...names)).toEqual([names[0], 1, names[1], 1]);
    expect(await newClient(b).pubsub('NUMSUB', ...names)).toEqual([names[0], 0, names[1], 0]);
    const inbox = new ControlInbox(named);
    await nodeless.publishControl('to n', 'n');
    await inbox.waitFor(() => inbox.messages.length === 1, 'the message from the broker without a node id');
    expect(inbox.messages).toEqual(['to n']);
  });

  it('reports malformed messages and join/leave and control handler errors to onError', async () => {
    const errors: Error[] = [];
    const broker = newBroker({ urls: [server.url], prefix: 'errors2', node: 'n', onError: (err) => errors.push(err) });
    await broker.start();
    const joins: string[] = [];
    broker.onJoinLeave((_, kind, info) => {
      joins.push(`${kind} ${info}`);
      if (kind === 'leave') throw new Error('join/leave handler bug');
    });
    broker.onControl(() => {
      throw new Error('control handler bug');
    });
    await broker.subscribe(['e']);
    const admin = newClient(server);
    for (const garbage of ['x 1 2', 'j', 'jx {}', 'l', '']) await admin.publish(redisPubSubChannel('e', 'errors2'), garbage);
    await broker.publishJoinLeave('e', 'join', '{"user":"u","client":"c"}');
    await broker.publishJoinLeave('e', 'leave', '');
    await broker.publishControl('x');
    await eventually(async () => errors.length === 7, 'seven errors');
    expect(errors.map((e) => e.message)).toEqual([
      ...Array<unknown>(5).fill(expect.stringContaining('malformed message')),
      'join/leave handler bug',
      'control handler bug',
    ]);
    expect(joins).toEqual(['join {"user":"u","client":"c"}', 'leave ']);
  });
});
