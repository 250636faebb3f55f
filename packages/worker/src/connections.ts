// The worker's Redis connections: per shard one for commands and scripts and one for blocking stream reads.
import fs from 'node:fs';
import path from 'node:path';
import { closeConnection, clusterConnection, parseShardAddress, redisConnection, type ClusterAddress, withDocScripts, type DocScriptedRedis } from '@switchboard/engine';
import type Redis from 'ioredis';
import type { Logger } from 'pino';

export interface WorkerScriptCommands {
  /** `[live workers, Redis time in ms]` */
  sbHeartbeat(workersKey: string, workerId: string, lifetimeMs: number): Promise<[number, number]>;
  sbLeaseRenew(leaseKey: string, workerId: string, lifetimeMs: number): Promise<number>;
  sbLeaseRelease(leaseKey: string, workerId: string): Promise<number>;
}

export type WorkerRedis = DocScriptedRedis & WorkerScriptCommands;

// From src/ (jest) and from dist/ alike, the scripts are one level up.
const LUA_DIR = path.join(__dirname, '..', 'lua');
const SCRIPTS = {
  sbHeartbeat: 'heartbeat.lua',
  sbLeaseRenew: 'lease_renew.lua',
  sbLeaseRelease: 'lease_release.lua',
} satisfies Record<keyof WorkerScriptCommands, string>;

let sources: Map<string, string> | undefined;

function withWorkerScripts(redis: Redis): WorkerRedis {
  const lua = (sources ??= new Map(Object.values(SCRIPTS).map((file) => [file, fs.readFileSync(path.join(LUA_DIR, file), 'utf8')])));
  for (const [name, file] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: 1, lua: lua.get(file) as string });
  return withDocScripts(redis) as WorkerRedis;
}

export interface Shard {
  index: number;
  /** The URL without its password. */
  label: string;
  commands: WorkerRedis;
  /** Only for XREADGROUP BLOCK, which holds its connection while it waits. */
  reader: Redis;
  /** Redis clock minus the local clock (ms), measured with TIME; request deadlines are on the Redis clock. */
  clockSkewMs: number;
  /** The reader connection's CLIENT ID, so a blocking read can be cut short with CLIENT UNBLOCK. */
  readerId: number | undefined;
}

export function createShard(index: number, url: string, name: string, connectTimeoutMs: number, logger: Logger): Shard {
  const address = parseShardAddress(url);
  const label = address.label;
  // Commands issued in one tick (a batch's scripts, replies, XACK) leave in one write.
  const commands = withWorkerScripts(redisConnection(address, { name, autoPipelining: true, connectTimeoutMs }));
  const reader = redisConnection(address, { name: `${name}-reader`, connectTimeoutMs });
  watchConnection(commands, label, 'command', logger);
  watchConnection(reader, label, 'reader', logger);
  const shard: Shard = { index, label, commands, reader, clockSkewMs: 0, readerId: undefined };
  // A reconnected connection has a new id.
  reader.on('ready', () => {
    shard.readerId = undefined;
    reader.client('ID').then(
      (id) => (shard.readerId = id as number),
      () => undefined,
    );
  });
  return shard;
}

/**
 * On a Redis Cluster: one shard per request partition, all sharing one Cluster client for commands (routed by key),
 * each with its own Cluster client for its blocking reads, since a read of several partitions' streams would
 * span slots. Partition p then lives on "shard" p, as `partitionShard` has it. A read is never cut short with
 * CLIENT UNBLOCK here (the reader's node is the driver's choice), so `readerId` stays undefined and a partition
 * handed back waits out the short block instead.
 */
export function createClusterShards(address: ClusterAddress, partitions: number, name: string, connectTimeoutMs: number, logger: Logger): Shard[] {
  // The Cluster client answers every command the worker sends it; CLIENT ID and UNBLOCK are the exceptions, never sent.
  // Not auto-pipelined on a cluster: a batch mixing slots hands MOVED to its callers during topology changes, and
  // the worker orders its commands by awaiting them anyway (commit, then replies, then XACK).
  const commands = withWorkerScripts(clusterConnection(address, { name, connectTimeoutMs }) as unknown as Redis);
  watchConnection(commands, address.label, 'command', logger);
  return Array.from({ length: partitions }, (_, index) => {
    const reader = clusterConnection(address, { name: `${name}-reader-${index}`, connectTimeoutMs }) as unknown as Redis;
    watchConnection(reader, address.label, 'reader', logger);
    return { index, label: address.label, commands, reader, clockSkewMs: 0, readerId: undefined };
  });
}

/** Connects the cluster shards: the shared command client once, then every reader. */
export async function connectClusterShards(shards: Shard[], timeoutMs: number): Promise<void> {
  const all = [shards[0].commands, ...shards.map((s) => s.reader)];
  await withTimeout(all, timeoutMs, shards[0].label);
  await measureClock(shards[0]);
  for (const shard of shards) shard.clockSkewMs = shards[0].clockSkewMs;
}

/** Connects every connection; a failure names the address and the first connection error (e.g. ECONNREFUSED). */
async function withTimeout(conns: Redis[], timeoutMs: number, label: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let firstError: Error | undefined;
  const remember = (err: Error): void => {
    firstError ??= err;
  };
  for (const conn of conns) conn.on('error', remember);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const work = Promise.all(conns.map((c) => c.connect()));
  work.catch(() => undefined); // the timeout may win the race
  try {
    await Promise.race([work, timeout]);
  } catch (err) {
    // ioredis rejects connect() with "Connection is closed"; the connection's own error says why.
    throw new Error(`cannot connect to Redis at ${label}: ${(firstError ?? (err as Error)).message}`);
  } finally {
    clearTimeout(timer);
    for (const conn of conns) conn.off('error', remember);
  }
}

/** Logs each outage once, not every reconnect attempt; listening also keeps ioredis from printing it. */
function watchConnection(conn: Redis, label: string, role: string, logger: Logger): void {
  let reported = false;
  // Errors before the first connection are the start's failure, reported once by it.
  let connected = false;
  conn.on('ready', () => {
    if (reported) logger.info({ redis: label, role }, 'redis connection restored');
    reported = false;
    connected = true;
  });
  conn.on('error', (err: Error) => {
    if (reported || !connected) return;
    reported = true;
    logger.warn({ redis: label, role, err: err.message }, 'redis connection lost');
  });
}

export async function connectShard(shard: Shard, timeoutMs: number): Promise<void> {
  try {
    await withTimeout([shard.commands, shard.reader], timeoutMs, shard.label);
    await measureClock(shard);
  } catch (err) {
    closeShard(shard);
    throw err;
  }
}

/** Estimates the shard's clock against ours, halfway through the TIME round trip. */
export async function measureClock(shard: Shard): Promise<void> {
  const before = Date.now();
  const [seconds, micros] = await shard.commands.time();
  const after = Date.now();
  shard.clockSkewMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (before + after) / 2;
}

export function isShardReady(shard: Shard): boolean {
  return shard.commands.status === 'ready' && shard.reader.status === 'ready';
}

export async function quitShard(shard: Shard): Promise<void> {
  await Promise.all(
    [shard.commands, shard.reader].map(closeConnection),
  );
}

export function closeShard(shard: Shard): void {
  shard.commands.disconnect();
  shard.reader.disconnect();
}

