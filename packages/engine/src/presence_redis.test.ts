// The Redis engine's presence beyond the contract (run in broker_redis.test.ts): where its keys live and how long,
// and what is left of the entries of a node that died.
import { startRedis, type RedisServer } from '../../testkit/src/redis';
import { eventually } from './broker.contract';
import { RedisBroker, type RedisBrokerOptions } from './broker_redis';
import { createPresence } from './engine';
import { EXPIRED_KEY_GRACE_MS } from './presence';
import { RedisPresence } from './presence_redis';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** Closes what a test opened even when it fails halfway, so stray connections do not keep jest alive. */
const cleanups: Array<() => Promise<unknown>> = [];
function open(options: RedisBrokerOptions): RedisBroker {
  const created = new RedisBroker(options);
  cleanups.push(() => created.close());
  return created;
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('RedisPresence', () => {
  it('keeps presence in two hashes and a sorted set under the channel\'s hash tag, read as gone after the TTL when its node dies', async () => {
    const prefix = 'died';
    const dying = open({ urls: [server.url], prefix, node: 'dying' });
    const reader = open({ urls: [server.url], prefix, node: 'reader' });
    await Promise.all([dying.start(), reader.start()]);
    const [dyingPresence, readerPresence] = [createPresence(dying), createPresence(reader)];
    const admin = server.client();
    cleanups.push(() => admin.quit().catch(() => admin.disconnect()));
    const infos = { c1: '{"user":"u1","client":"c1"}', c2: '{"user":"u2","client":"c2"}' };
    await dyingPresence.addPresence('room', Object.entries(infos), 1);

    const [hash, zset, users] = ['died:{room}:p', 'died:{room}:pz', 'died:{room}:pu'];
    expect(await admin.hgetall(hash)).toEqual(infos);
    expect(await admin.hgetall(users)).toEqual({ u1: '1', u2: '1' });
    const [seconds, micros] = await admin.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const scores = await admin.zrange(zset, 0, -1, 'WITHSCORES');
    expect(scores.filter((_, i) => i % 2 === 0).sort()).toEqual(['c1', 'c2']);
    for (const score of scores.filter((_, i) => i % 2 === 1)) {
      expect(Number(score) - now).toBeGreaterThan(0);
      expect(Number(score) - now).toBeLessThanOrEqual(1000);
    }
    // The keys outlive the entries by a grace, for a sweeper to find and announce them; then they vanish by themselves.
    for (const key of [hash, zset, users]) {
      const ttl = await admin.pttl(key);
      expect(ttl).toBeGreaterThan(EXPIRED_KEY_GRACE_MS);
      expect(ttl).toBeLessThanOrEqual(EXPIRED_KEY_GRACE_MS + 1000);
    }

    await dying.close(); // killed: nobody refreshes or removes its entries
    expect(await readerPresence.presenceStats('room')).toEqual({ numClients: 2, numUsers: 2 });
    await eventually(async () => (await readerPresence.presence('room')).size === 0, 'the entries to expire', 3000);
    expect(await readerPresence.presenceStats('room')).toEqual({ numClients: 0, numUsers: 0 });
    // The sweep drops them, with the keys once empty.
    expect((await readerPresence.expirePresence('room')).left.map(([client]) => client).sort()).toEqual(['c1', 'c2']);
    expect(await admin.exists(hash, zset, users)).toBe(0);
  });

  it('is made from a RedisBroker by createPresence', () => {
    expect(createPresence(open({ urls: [server.url] }))).toBeInstanceOf(RedisPresence);
  });
});
