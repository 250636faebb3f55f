// A whole Switchboard cluster on one machine: Redis with AOF, gateways and workers as processes, a balancer in front.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedis, startSwitchboard, TcpBalancer, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

export const SECRET = 'chaos-secret';
export const API_KEY = 'chaos-key';
/** Recoverable channels: history long enough that nothing is trimmed during a run. */
export const FEED_NAMESPACE = 'feed';
export const DOC_NAMESPACE = 'doc';

export interface ClusterOptions {
  gateways: number;
  workers: number;
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
    readonly redis: RedisServer,
    readonly balancer: TcpBalancer,
    readonly gateways: Member[],
    readonly workers: Member[],
    private readonly gatewayArgs: string[],
    private readonly workerArgs: string[],
  ) {}

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-chaos-'));
    // AOF with fsync on every write: a Redis restart keeps every acknowledged publication and document version.
    const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
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
    const common = ['--redis', redis.url, '--config', config, '--log-level', 'warn'];
    const gatewayArgs = [...common, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--position-check-interval', '1', '--shutdown-grace', '2'];
    const workerArgs = [...common, '--doc-lease', '2'];
    const [gateways, workers] = await Promise.all([
      Promise.all(Array.from({ length: opts.gateways }, () => startSwitchboard('gateway', gatewayArgs))),
      Promise.all(Array.from({ length: opts.workers }, () => startSwitchboard('worker', workerArgs))),
    ]);
    const balancer = await TcpBalancer.start(gateways.map((g) => g.port));
    const cluster = new Cluster(
      redis,
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

  /** Kills every pub/sub connection on Redis: gateways must resubscribe and repair what they missed. */
  async killPubSubConnections(): Promise<number> {
    const conn = this.redis.client();
    try {
      return Number(await conn.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    } finally {
      conn.disconnect();
    }
  }

  /** Stops Redis and starts it again on the same port; AOF brings the data back. */
  async restartRedis(): Promise<void> {
    await this.redis.restart();
  }

  private updateBalancer(): void {
    this.balancer.setBackends(this.gateways.filter((g) => !g.planned).map((g) => g.proc.port));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.balancer.stop();
    await Promise.all([...this.gateways, ...this.workers].map((m) => m.proc.stop().catch(() => null)));
    await this.redis.stop();
    clearInterval(this.keepAlive);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
