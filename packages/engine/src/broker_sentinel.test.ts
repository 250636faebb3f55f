// The Redis broker through Sentinel: the broker and presence contracts on a primary that Sentinel names, and a
// failover under it.
import { startRedisSentinel, type RedisSentinelSet } from '../../testkit/src/redis_sentinel';
import { type BrokerUnderTest, brokerContract, eventually } from './broker.contract';
import { RedisBroker } from './broker_redis';
import { presenceContract } from './presence.contract';

let set: RedisSentinelSet;
beforeAll(async () => {
  set = await startRedisSentinel();
}, 30000);
afterAll(async () => {
  await set?.stop();
});

let prefixes = 0;
async function sentinelBroker(): Promise<BrokerUnderTest> {
  const prefix = `sentinel${++prefixes}`;
  const opened: RedisBroker[] = [];
  const open = async (node?: string): Promise<RedisBroker> => {
    const broker = new RedisBroker({ urls: [set.url], prefix, node });
    opened.push(broker);
    await broker.start();
    return broker;
  };
  const node = 'node 1';
  return { broker: await open(node), node, peer: open, cleanup: async () => void (await Promise.all(opened.map((b) => b.close()))) };
}
brokerContract('redis through sentinel', sentinelBroker, { multiNode: true });
presenceContract('redis through sentinel', sentinelBroker, { multiNode: true });

describe('RedisBroker through Sentinel', () => {
  it('follows a failover: ready again on the new primary, subscriptions restored, publishing goes on', async () => {
    const prefix = `failover${++prefixes}`;
    const errors: Error[] = [];
    const broker = new RedisBroker({ urls: [set.url], prefix, onError: (err) => errors.push(err) });
    const observer = new RedisBroker({ urls: [set.url], prefix });
    try {
      await broker.start();
      await observer.start();
      const got: number[] = [];
      observer.onPublication((_channel, pub) => got.push(pub.offset));
      let restored = 0;
      observer.onResubscribed(() => restored++);
      await observer.subscribe(['ch']);
      const opts = { historySize: 100, historyTtlSeconds: 60 };
      for (let i = 0; i < 5; i++) await broker.publish('ch', '"data":1', opts);
      await eventually(async () => got.length === 5, 'publications before the failover');

      const before = await set.primaryPort();
      const after = await set.failover();
      expect(after).not.toBe(before);
      const promotedAt = Date.now();
      await eventually(async () => broker.isReady() && observer.isReady() && restored > 0, 'both brokers ready on the new primary', 15000);
      const readyAfterMs = Date.now() - promotedAt;
      expect(readyAfterMs).toBeLessThan(10000);

      // Publishing goes on where it stopped: a graceful failover waits for the replica, so nothing was lost.
      let published: { offset: number } | undefined;
      await eventually(async () => {
        published = await broker.publish('ch', '"data":2', opts).catch(() => undefined);
        return published !== undefined;
      }, 'a publish on the new primary', 10000);
      expect(published?.offset).toBe(6);
      await eventually(async () => got.includes(6), 'the publication reached the resubscribed observer');
      expect((await observer.history('ch', { limit: -1 })).publications.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await Promise.all([broker.close(), observer.close()]);
    }
  }, 60000);
});
