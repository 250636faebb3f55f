// Starts a private Redis Cluster (primaries with replicas) on free loopback ports for a test, breaks it on purpose, stops it.
import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis, { Cluster, type ClusterOptions } from 'ioredis';
import { freePort } from './children';
import { onFreePort, redisServerArgs, spawnRedisServer, stopRedisProcess, waitUntilSettled } from './redis';

export interface RedisClusterNode {
  readonly port: number;
  /** The pid of the node's latest process (still the dead one's after `killNode`). */
  readonly pid: number;
}

export interface RedisClusterPrimary {
  port: number;
  /** Inclusive slot ranges. */
  slots: [number, number][];
}

export interface RedisCluster {
  readonly nodes: readonly RedisClusterNode[];
  /** `127.0.0.1:<port>` of every node. */
  readonly seeds: readonly string[];
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...` listing every node. */
  readonly url: string;
  /** The live primaries and their slots, as a live node sees them. */
  primaries(): Promise<RedisClusterPrimary[]>;
  /** The ports of the live replicas of the primary on `port`. */
  replicasOf(port: number): Promise<number[]>;
  /** The port of the primary serving `slot`. */
  ownerOfSlot(slot: number): Promise<number>;
  /** CLUSTER KEYSLOT, asked of a live node. */
  slotOfKey(key: string): Promise<number>;
  /** SIGKILL; nothing waits for the cluster to react. */
  killNode(port: number): Promise<void>;
  /** Starts a killed node again with its old nodes.conf, and waits until it has rejoined and the cluster agrees. */
  restartNode(port: number): Promise<void>;
  /** SIGKILLs a primary and resolves with the port of its replica once that one serves the slots and the cluster is ok. */
  failoverKill(primaryPort: number): Promise<number>;
  /** CLUSTER FAILOVER on a replica; resolves once it is the primary everywhere and the cluster is ok. */
  manualFailover(replicaPort: number): Promise<void>;
  /** Migrates one slot and its keys to another primary (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), until all agree. */
  moveSlot(slot: number, toPort: number): Promise<void>;
  /** An ioredis Cluster on the seeds; the test must `quit()` it. */
  client(options?: ClusterOptions): Cluster;
  /** SIGTERM to every node, waits for the exits, removes the temp dirs. A second call does nothing. */
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Default 3, the fewest redis-cli accepts. */
  primaries?: number;
  /** Default 1. */
  replicasPerPrimary?: number;
  /** cluster-node-timeout; default 3000 ms: a killed primary is replaced within seconds, a busy one is not. */
  nodeTimeoutMs?: number;
  /** Extra redis-server arguments for every node. */
  args?: string[];
  /** How long creation, a failover, a slot move or a rejoin may take to settle; default 20000 ms. */
  settleTimeoutMs?: number;
}

const SLOTS = 16384;
const MIGRATE_BATCH = 100;
const MIGRATE_TIMEOUT_MS = 5000;

interface ClusterNodeProcess {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  readonly args: string[];
  child: ChildProcess;
  running: boolean;
  admin?: Redis;
}

/** One line of CLUSTER NODES. */
interface NodeEntry {
  id: string;
  port: number;
  flags: Set<string>;
  /** The primary's id for a replica. */
  primaryId?: string;
  slots: [number, number][];
  /** A slot is being imported or migrated (a `[slot->-id]` or `[slot-<-id]` entry). */
  migrating: boolean;
}

export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const primaryCount = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  // Long enough that a node starved of CPU on a busy 2-core machine is not failed over by mistake (which moves
  // slots under tests that do not expect it), short enough that a killed primary is replaced within seconds.
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 3000;
  const settleTimeoutMs = opts.settleTimeoutMs ?? 20000;
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redis-cluster-'));
  const nodes: ClusterNodeProcess[] = [];

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((node) => shutDown(node, 'SIGTERM')));
    await fs.promises.rm(root, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < primaryCount * (1 + replicas); i++) {
      nodes.push(await startNode(root, nodeTimeoutMs, opts.args ?? []));
    }
    await redisCli(['--cluster', 'create', ...nodes.map(seedOf), '--cluster-replicas', String(replicas), '--cluster-yes']);
  } catch (err) {
    await stop();
    throw err;
  }

  const seeds = nodes.map(seedOf);
  const byPort = (port: number): ClusterNodeProcess => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no node of this cluster listens on port ${port}`);
    return node;
  };
  const live = (): ClusterNodeProcess[] => nodes.filter((node) => node.running);
  /** The cluster as the first live node sees it. */
  const view = async (): Promise<NodeEntry[]> => {
    const node = live()[0];
    if (!node) throw new Error('every node of the cluster is down');
    return clusterNodes(node);
  };
  const entryOf = (entries: NodeEntry[], port: number): NodeEntry => {
    const entry = entries.find((candidate) => candidate.port === port);
    if (!entry) throw new Error(`the cluster does not know a node on port ${port}`);
    return entry;
  };
  const settle = (what: string, expect?: (entries: NodeEntry[]) => string | undefined): Promise<void> =>
    waitUntilSettled(() => unsettled(live(), expect), {
      timeoutMs: settleTimeoutMs,
      message: `${what}: the cluster did not settle within ${settleTimeoutMs} ms`,
    });

  try {
    await settle('creating the cluster', (entries) => {
      const primaries = entries.filter((entry) => isPrimary(entry) && entry.slots.length > 0).length;
      if (primaries !== primaryCount) return `${primaries} of ${primaryCount} primaries serve slots`;
      const attached = entries.filter((entry) => entry.flags.has('slave')).length;
      return attached === primaryCount * replicas ? undefined : `${attached} of ${primaryCount * replicas} replicas attached`;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const ownerIn = (entries: NodeEntry[], slot: number): NodeEntry | undefined =>
    entries.find((entry) => isPrimary(entry) && entry.slots.some(([from, to]) => slot >= from && slot <= to));

  return {
    get nodes() {
      return nodes.map((node) => ({ port: node.port, pid: node.child.pid ?? 0 }));
    },
    seeds,
    url: `redis+cluster://${seeds.join(',')}`,

    async primaries() {
      const entries = await view();
      return entries
        .filter((entry) => isPrimary(entry) && !isDown(entry))
        .map((entry) => ({ port: entry.port, slots: entry.slots }))
        .sort((a, b) => (a.slots[0]?.[0] ?? SLOTS) - (b.slots[0]?.[0] ?? SLOTS));
    },

    async replicasOf(port) {
      const entries = await view();
      const primary = entryOf(entries, port);
      return entries.filter((entry) => entry.primaryId === primary.id && !isDown(entry)).map((entry) => entry.port);
    },

    async ownerOfSlot(slot) {
      const owner = ownerIn(await view(), slot);
      if (!owner) throw new Error(`no primary serves slot ${slot}`);
      return owner.port;
    },

    async slotOfKey(key) {
      const node = live()[0];
      if (!node) throw new Error('every node of the cluster is down');
      return Number(await admin(node).call('CLUSTER', 'KEYSLOT', key));
    },

    async killNode(port) {
      await shutDown(byPort(port), 'SIGKILL');
    },

    async restartNode(port) {
      const node = byPort(port);
      if (node.running) throw new Error(`node ${port} is running; killNode(${port}) first`);
      node.child = await spawnRedisServer(node.args, node.port, { cwd: node.dir });
      node.running = true;
      await settle(`node ${port} rejoining`);
    },

    async failoverKill(primaryPort) {
      const entries = await view();
      const primary = entryOf(entries, primaryPort);
      const firstSlot = primary.slots[0]?.[0];
      if (!isPrimary(primary) || firstSlot === undefined) throw new Error(`node ${primaryPort} is not a primary serving slots`);
      const candidates = entries.filter((entry) => entry.primaryId === primary.id && !isDown(entry)).map((entry) => entry.port);
      if (candidates.length === 0) throw new Error(`primary ${primaryPort} has no live replica to promote`);

      await shutDown(byPort(primaryPort), 'SIGKILL');
      // The dead primary no longer counts, so the cluster settles only once every slot has a live owner again.
      await settle(`failover of primary ${primaryPort}`, (agreed) => {
        const owner = ownerIn(agreed, firstSlot);
        return owner && candidates.includes(owner.port) ? undefined : `slot ${firstSlot} is not served by a replica of ${primaryPort} yet`;
      });
      return (ownerIn(await view(), firstSlot) as NodeEntry).port;
    },

    async manualFailover(replicaPort) {
      const replica = byPort(replicaPort);
      if (!entryOf(await view(), replicaPort).flags.has('slave')) throw new Error(`node ${replicaPort} is not a replica`);
      await admin(replica).call('CLUSTER', 'FAILOVER');
      await settle(`manual failover to ${replicaPort}`, (agreed) =>
        isPrimary(entryOf(agreed, replicaPort)) ? undefined : `node ${replicaPort} is not a primary yet`,
      );
    },

    async moveSlot(slot, toPort) {
      const entries = await view();
      const source = ownerIn(entries, slot);
      const target = entryOf(entries, toPort);
      if (!source) throw new Error(`no primary serves slot ${slot}`);
      if (!isPrimary(target)) throw new Error(`node ${toPort} is not a primary; slots move only between primaries`);
      if (source.port === toPort) return;
      const from = admin(byPort(source.port));
      const to = admin(byPort(toPort));

      // The order redis-cli uses: the target accepts the slot before the source starts redirecting clients to it.
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
      for (;;) {
        const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, MIGRATE_BATCH)) as string[];
        if (keys.length === 0) break;
        await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, MIGRATE_TIMEOUT_MS, 'KEYS', ...keys);
      }
      // The target first, so it owns the slot (and bumps its epoch) before the source stops answering for it.
      await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      for (const entry of entries) {
        if (!isPrimary(entry) || isDown(entry) || entry.port === toPort || entry.port === source.port) continue;
        await admin(byPort(entry.port)).call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      }
      await settle(`moving slot ${slot} to ${toPort}`, (agreed) =>
        ownerIn(agreed, slot)?.port === toPort ? undefined : `slot ${slot} is not served by ${toPort} yet`,
      );
    },

    client(options = {}) {
      const client = new Cluster(
        nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
        options,
      );
      // Tests kill nodes under live clients; the reconnect errors are expected, not worth printing.
      client.on('error', () => undefined);
      return client;
    },

    stop,
  };
}

async function startNode(root: string, nodeTimeoutMs: number, extra: string[]): Promise<ClusterNodeProcess> {
  const { value: node } = await onFreePort(async (port) => {
    // Fixed rather than port + 10000, which can run past 65535 for an ephemeral port.
    let busPort = await freePort();
    while (busPort === port) busPort = await freePort();
    const dir = path.join(root, String(port));
    await fs.promises.mkdir(dir, { recursive: true });
    const args = redisServerArgs(port, [
      '--dir', dir,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', String(nodeTimeoutMs),
      '--cluster-port', String(busPort),
      // A replica's full sync would otherwise wait 5 s for other replicas to share it: at creation and at every rejoin.
      '--repl-diskless-sync-delay', '0',
      ...extra,
    ]);
    const child = await spawnRedisServer(args, port, { cwd: dir });
    return { port, busPort, dir, args, child, running: true };
  });
  return node;
}

function seedOf(node: ClusterNodeProcess): string {
  return `127.0.0.1:${node.port}`;
}

/** Sends the signal, waits for the exit, and drops the admin connection (a restart opens a new one). */
async function shutDown(node: ClusterNodeProcess, signal: NodeJS.Signals): Promise<void> {
  node.running = false;
  node.admin?.disconnect();
  node.admin = undefined;
  await stopRedisProcess(node.child, signal);
}

function admin(node: ClusterNodeProcess): Redis {
  if (!node.admin) {
    node.admin = new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    // A node killed between polls refuses connections; the command fails and the poll says so.
    node.admin.on('error', () => undefined);
  }
  return node.admin;
}

async function clusterNodes(node: ClusterNodeProcess): Promise<NodeEntry[]> {
  return parseClusterNodes(String(await admin(node).call('CLUSTER', 'NODES')));
}

/** CLUSTER NODES lines: `<id> <ip:port@cport[,hostname]> <flags> <primary-id|-> <ping> <pong> <epoch> <link> <slots...>`. */
function parseClusterNodes(text: string): NodeEntry[] {
  const entries: NodeEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const [id, address, flags, primaryId] = fields as [string, string, string, string];
    const slots: [number, number][] = [];
    let migrating = false;
    for (const token of fields.slice(8)) {
      if (token.startsWith('[')) {
        migrating = true;
        continue;
      }
      const [from, to] = token.split('-');
      slots.push([Number(from), Number(to ?? from)]);
    }
    entries.push({
      id,
      port: Number(/:(\d+)@/.exec(address)?.[1] ?? 0),
      flags: new Set(flags.split(',')),
      primaryId: primaryId === '-' ? undefined : primaryId,
      slots,
      migrating,
    });
  }
  return entries;
}

function isPrimary(entry: NodeEntry): boolean {
  return entry.flags.has('master');
}

/** Failed, suspected, or not yet (or no longer) a proper member. */
function isDown(entry: NodeEntry): boolean {
  return ['fail', 'fail?', 'handshake', 'noaddr'].some((flag) => entry.flags.has(flag));
}

/**
 * Why the live nodes are not settled yet, or undefined once they are: each says cluster_state:ok, each sees every live
 * node up with the same roles and slots (dead nodes aside), live primaries serve all slots with no migration half-done,
 * every live replica's link is up, and `expect` holds for that agreed picture.
 */
async function unsettled(
  live: ClusterNodeProcess[],
  expect?: (entries: NodeEntry[]) => string | undefined,
): Promise<string | undefined> {
  const livePorts = new Set(live.map((node) => node.port));
  let agreed: { port: number; picture: string; entries: NodeEntry[] } | undefined;
  for (const node of live) {
    const info = String(await admin(node).call('CLUSTER', 'INFO'));
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') return `node ${node.port} reports cluster_state:${state}`;

    const entries = (await clusterNodes(node)).filter((entry) => livePorts.has(entry.port));
    if (entries.length !== livePorts.size) return `node ${node.port} knows ${entries.length} of ${livePorts.size} live nodes`;
    const down = entries.find(isDown);
    if (down) return `node ${node.port} sees node ${down.port} as ${[...down.flags].join(',')}`;
    const halfMoved = entries.find((entry) => entry.migrating);
    if (halfMoved) return `node ${node.port} sees a slot migration in progress on ${halfMoved.port}`;
    const served = entries.filter(isPrimary).reduce((sum, entry) => sum + entry.slots.reduce((n, [a, b]) => n + b - a + 1, 0), 0);
    if (served !== SLOTS) return `node ${node.port} sees ${served} of ${SLOTS} slots served by live primaries`;

    const picture = pictureOf(entries);
    if (agreed === undefined) agreed = { port: node.port, picture, entries };
    else if (picture !== agreed.picture) return `nodes ${agreed.port} and ${node.port} disagree: ${agreed.picture} vs ${picture}`;

    if (entries.find((entry) => entry.port === node.port)?.flags.has('slave')) {
      const replication = String(await admin(node).call('INFO', 'replication'));
      if (!/master_link_status:up/.test(replication)) return `replica ${node.port} has no link to its primary yet`;
    }
  }
  if (!agreed) return 'every node of the cluster is down';
  return expect?.(agreed.entries);
}

/** Roles and slots by port, in a form two nodes' views can be compared in. */
function pictureOf(entries: NodeEntry[]): string {
  const portOf = new Map(entries.map((entry) => [entry.id, entry.port]));
  return [...entries]
    .sort((a, b) => a.port - b.port)
    .map((entry) =>
      isPrimary(entry)
        ? `${entry.port}:primary[${entry.slots.map(([a, b]) => `${a}-${b}`).join(' ')}]`
        : `${entry.port}:replica-of-${entry.primaryId ? portOf.get(entry.primaryId) ?? entry.primaryId : '?'}`,
    )
    .join(', ');
}

function redisCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}
