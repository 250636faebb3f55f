import { startRedis, type RedisServer } from '../../testkit/src/redis';
import { eventually } from './broker.contract';
import { closeConnection, redisConnection } from './redis_connection';
import { parseShardAddress } from './redis_url';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

const role = { name: 'switchboard-test', connectTimeoutMs: 2000 };

describe('redisConnection', () => {
  it('connects again after ioredis ends it because a reconnect was asked for while it was connecting', async () => {
    // What the Sentinel failover detector (+switch-master) or a READONLY reply can do mid-reconnect: ioredis fails the
    // connect attempt with "Connection is closed." and sets the status to 'end' for good.
    const conn = redisConnection(parseShardAddress(server.url), role);
    conn.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => conn.once('end', () => resolve()));
    conn.connect().catch(() => undefined);
    conn.disconnect(true);
    await ended;
    await eventually(async () => conn.status === 'ready', 'the connection is ready again', 5000);
    expect(await conn.ping()).toBe('PONG');
    await closeConnection(conn);
  });

  it('stays closed when closed on purpose', async () => {
    const conn = redisConnection(parseShardAddress(server.url), role);
    await conn.connect();
    await closeConnection(conn);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(conn.status).toBe('end');

    const other = redisConnection(parseShardAddress(server.url), role);
    await other.connect();
    other.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(other.status).toBe('end');
  });
});
