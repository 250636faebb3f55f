// Drives a real Redis Sentinel set (a primary, one replica, three sentinels) through a forced failover and a primary's death.
import type Redis from 'ioredis';
import { waitFor } from './process';
import { startRedisSentinel, type RedisSentinelSet } from './redis_sentinel';

jest.setTimeout(30000);

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The port of the server the client's connection ended up on. */
async function connectedPort(client: Redis): Promise<number> {
  return Number(((await client.config('GET', 'port')) as string[])[1]);
}

describe('startRedisSentinel', () => {
  let set: RedisSentinelSet;
  let client: Redis;

  beforeAll(async () => {
    set = await startRedisSentinel();
    client = set.client();
  });

  afterAll(async () => {
    // Only when a test failed before quitting: disconnect() on an ended client leaves a 2 s timer behind.
    if (client && client.status !== 'end') client.disconnect();
    await set?.stop();
  });

  it('starts a primary, a replica and three sentinels that agree on them', async () => {
    expect(set.masterName).toBe('mymaster');
    expect(set.sentinels).toHaveLength(3);
    expect(set.nodes).toHaveLength(2);
    expect(set.url).toBe(
      `redis+sentinel://${set.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}?sentinel_master_name=mymaster`,
    );
    expect(await set.primaryPort()).toBe(set.nodes[0]!.port);

    await client.set('k', 'v1');
    expect(await client.get('k')).toBe('v1');
  });

  it('moves the primary with SENTINEL FAILOVER, and the client follows once the old primary is demoted', async () => {
    const old = await set.primaryPort();
    // Replication is asynchronous: the replica must have the write before it is promoted.
    expect(await client.wait(1, 2000)).toBe(1);

    const promoted = await set.failover();
    expect(promoted).not.toBe(old);
    expect(await set.primaryPort()).toBe(promoted);

    // Until sentinel demotes the old primary (and drops its clients), the client keeps reading from it.
    expect(await client.get('k')).toBe('v1');
    await set.settled();
    await waitFor(async () => (await connectedPort(client)) === promoted, { message: 'the client did not move to the new primary' });
    expect(await client.get('k')).toBe('v1');
    await client.set('k', 'v2');
  });

  it('promotes the replica when the primary is killed, and takes the old one back as a replica', async () => {
    const old = await set.primaryPort();
    expect(await client.wait(1, 2000)).toBe(1);

    const promoted = await set.killPrimary();
    expect(promoted).not.toBe(old);
    expect(await client.get('k')).toBe('v2');
    expect(await connectedPort(client)).toBe(promoted);

    await expect(set.restartNode(promoted)).rejects.toThrow(/is running/);
    await set.restartNode(old);
    expect(await set.primaryPort()).toBe(promoted);
  });

  it('stops every process', async () => {
    const pids = [...set.sentinels, ...set.nodes].map((server) => server.pid);
    await client.quit();
    await set.stop();
    expect(pids.filter(isRunning)).toEqual([]);
  });
});
