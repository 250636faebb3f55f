// Starts a private Redis Sentinel set (a primary, its replicas, the sentinels) on free loopback ports for a test.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis, { type RedisOptions } from 'ioredis';
import { onFreePort, redisServerArgs, spawnRedisServer, stopRedisProcess, waitUntilSettled } from './redis';

export interface RedisSentinelProcess {
  readonly port: number;
  /** The pid of the latest process (still the dead one's after a kill). */
  readonly pid: number;
}

export interface RedisSentinelSet {
  readonly masterName: string;
  readonly sentinels: readonly RedisSentinelProcess[];
  /** The primary and the replicas, in start order, whatever their role now. */
  readonly nodes: readonly RedisSentinelProcess[];
  /** `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,...?sentinel_master_name=<name>` */
  readonly url: string;
  /** The primary's port as the sentinels report it (SENTINEL GET-MASTER-ADDR-BY-NAME). */
  primaryPort(): Promise<number>;
  /**
   * Waits for the set to settle (see `settled`), sends SENTINEL FAILOVER, and resolves with the new primary's port once
   * every sentinel reports it, the failover has ended and the new primary says role:master. The old primary is still a
   * primary then: sentinel demotes it 8-10 s later; `settled()` waits for that.
   */
  failover(): Promise<number>;
  /**
   * Waits for the set to settle, SIGKILLs the primary (it stays down until `restartNode`), and resolves with the promoted
   * port once the set has settled around it.
   */
  killPrimary(): Promise<number>;
  /** Starts a killed node again as a replica of the current primary, and waits until the set has settled. */
  restartNode(port: number): Promise<void>;
  /**
   * Resolves once every sentinel names the same healthy primary and knows the other sentinels, and every live data node
   * other than the primary is its synced replica and known to every sentinel as healthy.
   */
  settled(): Promise<void>;
  /**
   * An ioredis client through the sentinels; the test must `quit()` it. Pass `{ failoverDetector: true }` to follow a
   * failover at once rather than when sentinel demotes the old primary; end such a client with `disconnect()`, since
   * `quit()` leaves the detector's sentinel connections open (ioredis#1362).
   */
  client(options?: RedisOptions): Redis;
  /** Stops the sentinels, then the data nodes, and removes the temp dirs. A second call does nothing. */
  stop(): Promise<void>;
}

export interface StartRedisSentinelOptions {
  /** Default `mymaster`. */
  masterName?: string;
  /** Default 1. */
  replicas?: number;
  /** Default 3; the quorum is a majority of them. */
  sentinels?: number;
  /** sentinel down-after-milliseconds; default 1000. */
  downAfterMs?: number;
  /** sentinel failover-timeout; default 5000 ms (a failed election is retried after twice that). */
  failoverTimeoutMs?: number;
  /** How long startup, a failover or a rejoin may take to settle; default 25000 ms. */
  settleTimeoutMs?: number;
}

interface ServerProcess {
  readonly port: number;
  readonly dir: string;
  child: ChildProcess;
  running: boolean;
  admin?: Redis;
}

export async function startRedisSentinel(opts: StartRedisSentinelOptions = {}): Promise<RedisSentinelSet> {
  const masterName = opts.masterName ?? 'mymaster';
  const replicaCount = opts.replicas ?? 1;
  const sentinelCount = opts.sentinels ?? 3;
  const settleTimeoutMs = opts.settleTimeoutMs ?? 25000;
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redis-sentinel-'));
  const nodes: ServerProcess[] = [];
  const sentinels: ServerProcess[] = [];

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Sentinels first, so that they do not start a failover while the data nodes go down.
    await Promise.all(sentinels.map((sentinel) => shutDown(sentinel, 'SIGTERM')));
    await Promise.all(nodes.map((node) => shutDown(node, 'SIGTERM')));
    await fs.promises.rm(root, { recursive: true, force: true });
  };

  const byPort = (port: number): ServerProcess => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no data node of this sentinel set listens on port ${port}`);
    return node;
  };
  const primaryPort = async (): Promise<number> => primaryPortOf(sentinels[0] as ServerProcess, masterName);
  /** `primary` vets the port the sentinels report; `ignored` is a live data node left out (a primary not demoted yet). */
  const settle = (what: string, primary?: (port: number) => string | undefined, ignored?: number): Promise<void> =>
    waitUntilSettled(() => unsettled(masterName, nodes.filter((node) => node.port !== ignored), sentinels, primary), {
      timeoutMs: settleTimeoutMs,
      message: `${what}: the sentinel set did not settle within ${settleTimeoutMs} ms`,
    });
  /** Waits for the sentinels to promote someone other than `old`, and returns who. */
  const promotedFrom = async (old: number, what: string): Promise<number> => {
    const moved = (port: number): string | undefined =>
      port === old ? `the sentinels still report ${old} as the primary` : undefined;
    await settle(what, moved, old);
    return primaryPort();
  };

  try {
    const primary = await startDataNode(root, []);
    nodes.push(primary);
    for (let i = 0; i < replicaCount; i++) {
      nodes.push(await startDataNode(root, ['--replicaof', '127.0.0.1', String(primary.port)]));
    }
    // The sentinels learn the replicas from the primary's INFO, which they read at once and then only every 10 s.
    await waitUntilSettled(() => replicasUnsynced(nodes.slice(1)), {
      timeoutMs: settleTimeoutMs,
      message: `the replicas did not sync with the primary within ${settleTimeoutMs} ms`,
    });
    for (let i = 0; i < sentinelCount; i++) {
      sentinels.push(await startSentinel(root, masterName, primary.port, sentinelCount, opts));
    }
    await settle('starting the sentinel set', (port) => (port === primary.port ? undefined : `the primary moved to ${port}`));
  } catch (err) {
    await stop();
    throw err;
  }

  const processes = (list: ServerProcess[]): RedisSentinelProcess[] =>
    list.map((server) => ({ port: server.port, pid: server.child.pid ?? 0 }));

  return {
    masterName,
    get sentinels() {
      return processes(sentinels);
    },
    get nodes() {
      return processes(nodes);
    },
    url:
      `redis+sentinel://${sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',')}` +
      `?sentinel_master_name=${encodeURIComponent(masterName)}`,
    primaryPort,

    settled: () => settle('waiting for the sentinel set'),

    async failover() {
      // A failover needs a synced replica the sentinels trust; right after another failover there may be none yet.
      await settle('before a failover');
      const old = await primaryPort();
      await admin(sentinels[0] as ServerProcess).call('SENTINEL', 'FAILOVER', masterName);
      return promotedFrom(old, `failover from ${old}`);
    },

    async killPrimary() {
      await settle('before killing the primary');
      const old = await primaryPort();
      await shutDown(byPort(old), 'SIGKILL');
      return promotedFrom(old, `failover after killing primary ${old}`);
    },

    async restartNode(port) {
      const node = byPort(port);
      if (node.running) throw new Error(`node ${port} is running; only a killed node can be restarted`);
      const primary = await primaryPort();
      node.child = await spawnRedisServer(dataNodeArgs(port, node.dir, ['--replicaof', '127.0.0.1', String(primary)]), port, {
        cwd: node.dir,
      });
      node.running = true;
      await settle(`node ${port} rejoining`);
    },

    client(options = {}) {
      const client = new Redis({
        sentinels: sentinels.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port })),
        name: masterName,
        ...options,
      });
      // Tests fail primaries over under live clients; the reconnect errors are expected, not worth printing.
      client.on('error', () => undefined);
      return client;
    },

    stop,
  };
}

function dataNodeArgs(port: number, dir: string, extra: string[]): string[] {
  // A new replica's full sync would otherwise wait 5 s for other replicas to share it.
  return redisServerArgs(port, ['--dir', dir, '--repl-diskless-sync-delay', '0', ...extra]);
}

async function startDataNode(root: string, extra: string[]): Promise<ServerProcess> {
  const { value } = await onFreePort(async (port) => {
    const dir = path.join(root, `node-${port}`);
    await fs.promises.mkdir(dir, { recursive: true });
    const child = await spawnRedisServer(dataNodeArgs(port, dir, extra), port, { cwd: dir });
    return { port, dir, child, running: true };
  });
  return value;
}

async function startSentinel(
  root: string,
  masterName: string,
  primaryPort: number,
  sentinelCount: number,
  opts: StartRedisSentinelOptions,
): Promise<ServerProcess> {
  const { value } = await onFreePort(async (port) => {
    const dir = path.join(root, `sentinel-${port}`);
    await fs.promises.mkdir(dir, { recursive: true });
    // Sentinel rewrites this file with what it learns, so it lives in the sentinel's own writable dir.
    const config = path.join(dir, `sentinel-${port}.conf`);
    await fs.promises.writeFile(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        'sentinel resolve-hostnames no',
        `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} ${Math.floor(sentinelCount / 2) + 1}`,
        `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${masterName} ${opts.failoverTimeoutMs ?? 5000}`,
        '',
      ].join('\n'),
    );
    const child = await spawnRedisServer([config, '--sentinel'], port, { cwd: dir });
    return { port, dir, child, running: true };
  });
  return value;
}

async function shutDown(server: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  server.running = false;
  server.admin?.disconnect();
  server.admin = undefined;
  await stopRedisProcess(server.child, signal);
}

function admin(server: ServerProcess): Redis {
  if (!server.admin) {
    server.admin = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    // A node killed between polls refuses connections; the command fails and the poll says so.
    server.admin.on('error', () => undefined);
  }
  return server.admin;
}

async function primaryPortOf(sentinel: ServerProcess, masterName: string): Promise<number> {
  const address = (await admin(sentinel).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string] | null;
  if (!address) throw new Error(`sentinel ${sentinel.port} does not monitor ${masterName}`);
  return Number(address[1]);
}

async function replicationInfo(server: ServerProcess): Promise<Record<string, string>> {
  return fields(String(await admin(server).call('INFO', 'replication')).split('\r\n'), ':');
}

/** `key<sep>value` lines, or the flat `[key, value, key, value...]` arrays SENTINEL commands reply with, as a record. */
function fields(items: string[], separator?: string): Record<string, string> {
  const record: Record<string, string> = {};
  if (separator) {
    for (const line of items) {
      const at = line.indexOf(separator);
      if (at > 0) record[line.slice(0, at)] = line.slice(at + 1);
    }
  } else {
    for (let i = 0; i + 1 < items.length; i += 2) record[items[i] as string] = items[i + 1] as string;
  }
  return record;
}

async function replicasUnsynced(replicas: ServerProcess[]): Promise<string | undefined> {
  for (const replica of replicas) {
    if ((await replicationInfo(replica)).master_link_status !== 'up') return `replica ${replica.port} has no link to its primary yet`;
  }
  return undefined;
}

/**
 * Why the set is not settled yet, or undefined once it is: every sentinel names the same primary (and `primary` accepts
 * it), sees it healthy with no failover running, knows every other sentinel and every live replica as healthy; the
 * primary says role:master; every other live data node in `nodes` is its replica with the link up.
 */
async function unsettled(
  masterName: string,
  nodes: ServerProcess[],
  sentinels: ServerProcess[],
  primary?: (port: number) => string | undefined,
): Promise<string | undefined> {
  const primaryPort = await primaryPortOf(sentinels[0] as ServerProcess, masterName);
  const wrong = primary?.(primaryPort);
  if (wrong) return wrong;
  const live = nodes.filter((node) => node.running);
  const primaryNode = live.find((node) => node.port === primaryPort);
  if (!primaryNode) return `the sentinels report ${primaryPort}, which is down, as the primary`;
  if ((await replicationInfo(primaryNode)).role !== 'master') return `primary ${primaryPort} does not say role:master yet`;
  const replicas = live.filter((node) => node !== primaryNode);
  for (const replica of replicas) {
    const info = await replicationInfo(replica);
    if (info.role !== 'slave' || Number(info.master_port) !== primaryPort || info.master_link_status !== 'up') {
      return `node ${replica.port} is not a synced replica of ${primaryPort} yet (role:${info.role}, master_port:${info.master_port})`;
    }
  }

  for (const sentinel of sentinels) {
    const seen = await primaryPortOf(sentinel, masterName);
    if (seen !== primaryPort) return `sentinel ${sentinel.port} reports ${seen} as the primary, not ${primaryPort}`;
    const master = fields((await admin(sentinel).call('SENTINEL', 'MASTER', masterName)) as string[]);
    if (master.flags !== 'master') return `sentinel ${sentinel.port} flags the primary ${master.flags}`;
    if (Number(master['num-other-sentinels']) !== sentinels.length - 1) {
      return `sentinel ${sentinel.port} knows ${master['num-other-sentinels']} of ${sentinels.length - 1} other sentinels`;
    }
    const known = ((await admin(sentinel).call('SENTINEL', 'REPLICAS', masterName)) as string[][]).map((entry) => fields(entry));
    for (const replica of replicas) {
      const entry = known.find((candidate) => Number(candidate.port) === replica.port);
      if (entry?.flags !== 'slave') return `sentinel ${sentinel.port} sees replica ${replica.port} as ${entry?.flags ?? 'unknown'}`;
    }
  }
  return undefined;
}
