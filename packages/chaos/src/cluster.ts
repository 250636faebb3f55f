// A whole Switchboard cluster on one machine: Redis with AOF, gateways and workers as processes, a balancer in front.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import {
  startRedis,
  startRedisCluster,
  startRedisSentinel,
  startSwitchboard,
  TcpBalancer,
  type RedisCluster,
  type RedisSentinelSet,
  type RedisServer,
  type SwitchboardProcess,
} from '@switchboard/testkit';

export const SECRET = 'chaos-secret';
export const API_KEY = 'chaos-key';
/** Recoverable channels: history long enough that nothing is trimmed during a run. */
export const FEED_NAMESPACE = 'feed';
export const DOC_NAMESPACE = 'doc';

/**
 * `redis`: one server with AOF on every write, which loses nothing it acknowledged. `sentinel`: a primary, a
 * replica and three sentinels; a failover may lose what the replica had not received yet. `cluster`: a Redis
 * Cluster of 3 primaries with a replica each, where the same holds for each primary.
 */
export type Topology = 'redis' | 'sentinel' | 'cluster';

export interface ClusterOptions {
  gateways: number;
  workers: number;
  topology?: Topology;
}

/** One process of the cluster; `planned` is set while a fault the run injected has it down. */
export interface Member {
  role: 'gateway' | 'worker';
  proc: SwitchboardProcess;
  planned: boolean;
}

export class Cluster {
  /** Exits nobody asked for: a crash is a failed run. */
  readonly unplannedExits: string[] = [];

  private constructor(
    readonly topology: Topology,
    private readonly redis: RedisServer | undefined,
    private readonly sentinel: RedisSentinelSet | undefined,
    private readonly redisCluster: RedisCluster | undefined,
    readonly balancer: TcpBalancer,
    readonly gateways: Member[],
    readonly workers: Member[],
    private readonly gatewayArgs: string[],
    private readonly workerArgs: string[],
  ) {}

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-chaos-'));
    const topology = opts.topology ?? 'redis';
    // AOF with fsync on every write: a Redis restart keeps every acknowledged publication and document version.
    const redis = topology === 'redis' ? await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] }) : undefined;
    const sentinel = topology === 'sentinel' ? await startRedisSentinel() : undefined;
    const redisCluster = topology === 'cluster' ? await startRedisCluster() : undefined;
    const redisUrl = redis?.url ?? sentinel?.url ?? redisCluster?.url ?? '';
    const config = path.join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'channel:',
        '  namespaces:',
        `    - name: ${FEED_NAMESPACE}`,
        '      allow_subscribe_for_client: true',
        '      history_size: 100000',
        '      history_ttl: 3600s',
        '      force_recovery: true',
        `    - name: ${DOC_NAMESPACE}`,
        '      documents: true',
        '      allow_subscribe_for_client: true',
        '      history_size: 100000',
        '      history_ttl: 3600s',
        '      force_recovery: true',
      ].join('\n'),
    );
    const common = ['--redis', redisUrl, '--config', config, '--log-level', 'warn'];
    const gatewayArgs = [...common, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--position-check-interval', '1', '--shutdown-grace', '2'];
    // With replicas a commit is acknowledged only once one has it, as production should run it.
    const workerArgs = [...common, '--doc-lease', '2', ...(topology === 'redis' ? [] : ['--doc-wait-replicas', '1'])];
    const [gateways, workers] = await Promise.all([
      Promise.all(Array.from({ length: opts.gateways }, () => startSwitchboard('gateway', gatewayArgs))),
      Promise.all(Array.from({ length: opts.workers }, () => startSwitchboard('worker', workerArgs))),
    ]);
    const balancer = await TcpBalancer.start(gateways.map((g) => g.port));
    const cluster = new Cluster(
      topology,
      redis,
      sentinel,
      redisCluster,
      balancer,
      gateways.map((proc) => ({ role: 'gateway' as const, proc, planned: false })),
      workers.map((proc) => ({ role: 'worker' as const, proc, planned: false })),
      gatewayArgs,
      workerArgs,
    );
    for (const m of [...cluster.gateways, ...cluster.workers]) cluster.watch(m);
    return cluster;
  }

  private watch(m: Member): void {
    const proc = m.proc;
    void proc.waitForExit().then((code) => {
      if (!m.planned && m.proc === proc && !this.stopping) this.unplannedExits.push(`${m.role} pid ${proc.pid} exited with ${code}:\n${proc.output()}`);
    });
  }

  private stopping = false;
  /** The testkit unrefs its children (for jest); outside jest something must keep the process alive while they run. */
  private readonly keepAlive = setInterval(() => undefined, 1000);

  /** SIGKILL, then a new process in its place once `downMs` has passed (the balancer learns the new port). */
  async killAndReplace(m: Member, downMs: number): Promise<void> {
    m.planned = true;
    m.proc.kill();
    await m.proc.waitForExit();
    this.updateBalancer();
    await sleep(downMs);
    m.proc = await startSwitchboard(m.role, m.role === 'gateway' ? this.gatewayArgs : this.workerArgs);
    m.planned = false;
    this.watch(m);
    this.updateBalancer();
  }

  /** SIGSTOP for `ms`, then SIGCONT: a process that hangs (GC pause, overloaded node) and comes back. */
  async freeze(m: Member, ms: number): Promise<void> {
    process.kill(m.proc.pid, 'SIGSTOP');
    await sleep(ms);
    process.kill(m.proc.pid, 'SIGCONT');
  }

  /** Kills every pub/sub connection on Redis (on every primary): gateways must resubscribe and repair what they missed. */
  async killPubSubConnections(): Promise<number> {
    const ports = this.redisCluster
      ? (await this.redisCluster.primaries()).map((p) => p.port)
      : [this.redis?.port ?? (await this.need(this.sentinel, 'a pub/sub kill').primaryPort())];
    let killed = 0;
    for (const port of ports) {
      const conn = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: true });
      conn.on('error', () => undefined);
      try {
        await conn.connect();
        killed += Number(await conn.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
      } finally {
        conn.disconnect();
      }
    }
    return killed;
  }

  /** Stops Redis and starts it again on the same port; AOF brings the data back. */
  async restartRedis(): Promise<void> {
    await this.need(this.redis, 'a Redis restart').restart();
  }

  /** `SENTINEL FAILOVER`: the replica is promoted while the old primary is still up. */
  async sentinelFailover(): Promise<void> {
    await this.need(this.sentinel, 'a Sentinel failover').failover();
  }

  /** SIGKILLs the primary; once the replica is promoted, the old primary comes back as its replica. */
  async killPrimary(): Promise<void> {
    const set = this.need(this.sentinel, 'a primary kill');
    const old = await set.primaryPort();
    await set.killPrimary();
    await set.restartNode(old);
  }

  /** SIGKILLs the primary that owns the slot of `key`; once its replica is promoted, it comes back as a replica. */
  async killClusterPrimary(key: string): Promise<void> {
    const c = this.need(this.redisCluster, 'a cluster primary kill');
    const owner = await c.ownerOfSlot(await c.slotOfKey(key));
    await c.failoverKill(owner);
    await c.restartNode(owner);
  }

  /** Moves the slot of `key`, with its keys, to another primary while the load goes on. */
  async moveSlotOf(key: string): Promise<void> {
    const c = this.need(this.redisCluster, 'a slot move');
    const slot = await c.slotOfKey(key);
    const owner = await c.ownerOfSlot(slot);
    const target = (await c.primaries()).find((p) => p.port !== owner);
    if (target) await c.moveSlot(slot, target.port);
  }

  private need<T>(part: T | undefined, what: string): T {
    if (part === undefined) throw new Error(`${what} needs another topology than ${this.topology}`);
    return part;
  }

  private updateBalancer(): void {
    this.balancer.setBackends(this.gateways.filter((g) => !g.planned).map((g) => g.proc.port));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.balancer.stop();
    await Promise.all([...this.gateways, ...this.workers].map((m) => m.proc.stop().catch(() => null)));
    await this.redis?.stop();
    await this.sentinel?.stop();
    await this.redisCluster?.stop();
    clearInterval(this.keepAlive);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
