// Drives a real 3+3 Redis Cluster through a slot move, a primary's death, its return and a manual failover.
import type { Cluster } from 'ioredis';
import { startRedisCluster, type RedisCluster } from './redis_cluster';

jest.setTimeout(30000);

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startRedisCluster', () => {
  let cluster: RedisCluster;
  let client: Cluster;
  /** key -> value, everything written so far. */
  const written = new Map<string, string>();

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = cluster.client();
  });

  afterAll(async () => {
    // Only when a test failed before quitting: ending an ended client leaves a 2 s timer behind.
    if (client && client.status !== 'end') client.disconnect();
    await cluster?.stop();
  });

  async function readAll(): Promise<void> {
    for (const [key, value] of written) expect(await client.get(key)).toBe(value);
  }

  it('starts three primaries with one replica each and serves keys on all of them', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.seeds).toEqual(cluster.nodes.map((node) => `127.0.0.1:${node.port}`));
    expect(cluster.url).toBe(`redis+cluster://${cluster.seeds.join(',')}`);

    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);
    expect(primaries.flatMap((primary) => primary.slots).reduce((n, [a, b]) => n + b - a + 1, 0)).toBe(16384);
    for (const primary of primaries) expect(await cluster.replicasOf(primary.port)).toHaveLength(1);
    const [replica] = await cluster.replicasOf(primaries[0]!.port);
    await expect(cluster.failoverKill(replica!)).rejects.toThrow(/not a primary/);
    await expect(cluster.moveSlot(0, replica!)).rejects.toThrow(/not a primary/);

    const keysOn = new Map<number, number>(primaries.map((primary) => [primary.port, 0]));
    for (let i = 0; [...keysOn.values()].some((n) => n < 3); i++) {
      const key = `key:${i}`;
      await client.set(key, `value:${i}`);
      written.set(key, `value:${i}`);
      const owner = await cluster.ownerOfSlot(await cluster.slotOfKey(key));
      keysOn.set(owner, (keysOn.get(owner) ?? 0) + 1);
    }
    await readAll();
  });

  it('moves a slot with its keys to another primary', async () => {
    // More keys than one MIGRATE batch, all in one slot through the hash tag.
    const keys = Array.from({ length: 250 }, (_, i) => `{moving}:${i}`);
    for (const key of keys) {
      await client.set(key, `v-${key}`);
      written.set(key, `v-${key}`);
    }
    const slot = await cluster.slotOfKey('{moving}');
    const from = await cluster.ownerOfSlot(slot);
    const to = (await cluster.primaries()).find((primary) => primary.port !== from)!.port;

    await cluster.moveSlot(slot, to);
    expect(await cluster.ownerOfSlot(slot)).toBe(to);
    await readAll();
  });

  let oldPrimary = 0;
  let promoted = 0;

  it('promotes the replica of a killed primary without losing acknowledged writes', async () => {
    oldPrimary = await cluster.ownerOfSlot(await cluster.slotOfKey('key:0'));
    const [replica] = await cluster.replicasOf(oldPrimary);
    // Replication is asynchronous: make sure the replica has every write before its primary dies.
    for (const node of client.nodes('master')) expect(await node.wait(1, 2000)).toBeGreaterThanOrEqual(1);

    promoted = await cluster.failoverKill(oldPrimary);
    expect(promoted).toBe(replica);
    expect((await cluster.primaries()).map((primary) => primary.port)).toContain(promoted);
    expect(await client.cluster('INFO')).toMatch(/cluster_state:ok/);
    await readAll();
  });

  it('brings the killed primary back as a replica, and makes it primary again by manual failover', async () => {
    const deadPid = cluster.nodes.find((node) => node.port === oldPrimary)!.pid;
    await cluster.restartNode(oldPrimary);
    expect(cluster.nodes.find((node) => node.port === oldPrimary)!.pid).not.toBe(deadPid);
    expect(await cluster.replicasOf(promoted)).toEqual([oldPrimary]);
    await expect(cluster.restartNode(oldPrimary)).rejects.toThrow(/is running/);

    await cluster.manualFailover(oldPrimary);
    expect(await cluster.replicasOf(oldPrimary)).toEqual([promoted]);
    await readAll();
  });

  it('stops every node', async () => {
    const pids = cluster.nodes.map((node) => node.pid);
    await client.quit();
    await cluster.stop();
    expect(pids.filter(isRunning)).toEqual([]);
  });
});
