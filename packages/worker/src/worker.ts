// startWorker: wires the connections, the partition ownership, the stream readers and the processor of one worker.
import { randomBytes } from 'node:crypto';
import { DOC_CONSUMER_GROUP, docRequestStream, parseRedisAddress, shardOf, partitionShard } from '@switchboard/engine';
import { DocCache } from './doc_cache';
import { closeShard, connectClusterShards, connectShard, createClusterShards, createShard, isShardReady, measureClock, quitShard, type Shard } from './connections';
import { resolveWorkerOptions, type WorkerOptions } from './options';
import { Ownership } from './ownership';
import { Processor } from './processor';
import { ShardReader } from './reader';
import { StatsRecorder, type WorkerStats } from './stats';

export interface Worker {
  /** `<nodeId>.<random>`: its consumer name, lease value and registry member. */
  readonly id: string;
  /** Redis reachable, registered with live leases, and its readers running (for /readyz). */
  isReady(): boolean;
  /** The partitions it owns now, ascending. */
  ownedPartitions(): number[];
  /** Counters and commit latency since start (for /metrics). */
  stats(): WorkerStats;
  /** Requests waiting in its partitions: not yet read plus read but not yet acknowledged. */
  queueLag(): Promise<number>;
  /** Finishes what it is processing, hands its partitions back, leaves the registry and disconnects. */
  stop(): Promise<void>;
}

/** How often each shard's clock is compared with ours (request deadlines are on the Redis clock). */
const CLOCK_CHECK_MS = 10_000;

export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const o = resolveWorkerOptions(options);
  const id = `${o.nodeId}.${randomBytes(4).toString('hex')}`;
  const logger = o.logger.child({ worker: id });
  const address = parseRedisAddress(o.redis.join(','));
  const onCluster = address.kind === 'cluster';
  const shards: Shard[] = onCluster
    ? createClusterShards(address.cluster, o.partitions, 'switchboard-worker', o.connectTimeoutMs, logger)
    : o.redis.map((url, i) => createShard(i, url, `switchboard-worker-${i}`, o.connectTimeoutMs, logger));
  const connected = onCluster
    ? await Promise.allSettled([connectClusterShards(shards, o.connectTimeoutMs)])
    : await Promise.allSettled(shards.map((shard) => connectShard(shard, o.connectTimeoutMs)));
  const failed = connected.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    shards.forEach(closeShard);
    throw failed.reason;
  }

  const stats = new StatsRecorder();
  const cache = new DocCache(o.cacheBytes);
  const processor = new Processor({
    prefix: o.prefix,
    limits: o.limits,
    idempotencyTtlSeconds: o.idempotencyTtlSeconds,
    cache,
    stats,
    commandsFor: (channel) => shards[shardOf(channel, shards.length)].commands,
    waitReplicas: o.waitReplicas,
    waitTimeoutMs: o.waitTimeoutMs,
    publishCommand: onCluster ? 'spublish' : 'publish',
  });
  const readers = shards.map(
    (shard) =>
      new ShardReader({
        shard,
        replies: shards[0].commands,
        sharded: onCluster,
        prefix: o.prefix,
        consumer: id,
        batchSize: o.batchSize,
        blockMs: o.blockMs,
        retryDelayMs: o.retryDelayMs,
        sweepIntervalMs: o.leaseMs,
        maxDeliveries: o.maxDeliveries,
        processor,
        stats,
        logger,
      }),
  );
  const readerOf = (partition: number): ShardReader => readers[partitionShard(partition, shards.length)];
  // Leases, the registry and replies live on shard 0, like the broker's control messages.
  const ownership = new Ownership(
    shards[0].commands,
    { prefix: o.prefix, partitions: o.partitions, leaseMs: o.leaseMs, workerId: id, logger },
    {
      acquired: (p) => readerOf(p).add(p),
      lost: (p) => {
        readerOf(p).drop(p);
        cache.dropPartition(p, o.partitions);
      },
      release: async (ps) => {
        await Promise.all(readers.map((reader) => reader.remove(ps.filter((p) => readerOf(p) === reader))));
        for (const p of ps) cache.dropPartition(p, o.partitions);
      },
    },
  );

  readers.forEach((reader) => reader.start());
  try {
    await ownership.start();
  } catch (err) {
    await Promise.all(readers.map((reader) => reader.stop()));
    shards.forEach(closeShard);
    throw err;
  }
  const clock = setInterval(() => {
    for (const shard of shards) measureClock(shard).catch(() => undefined);
  }, CLOCK_CHECK_MS);
  clock.unref();
  logger.info({ partitions: ownership.partitions(), leaseMs: o.leaseMs }, 'versioning worker started');

  let stopping: Promise<void> | undefined;
  return {
    id,
    isReady: () => stopping === undefined && ownership.isAlive() && shards.every(isShardReady) && readers.every((r) => r.isRunning()),
    ownedPartitions: () => ownership.partitions(),
    stats: () => stats.snapshot(),
    async queueLag() {
      const lags = await Promise.all(
        ownership.partitions().map(async (p) => {
          const groups = (await shards[partitionShard(p, shards.length)].commands.call('XINFO', 'GROUPS', docRequestStream(o.prefix, p))) as unknown[][];
          const group = groups.map(pairs).find((g) => g.name === DOC_CONSUMER_GROUP);
          return Number(group?.lag ?? 0) + Number(group?.pending ?? 0);
        }),
      );
      return lags.reduce((a, b) => a + b, 0);
    },
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(clock);
        await ownership.stop();
        await Promise.all(readers.map((reader) => reader.stop()));
        await Promise.all(shards.map(quitShard));
        logger.info('versioning worker stopped');
      })()),
  };
}

/** XINFO replies are flat [name, value, name, value, ...] lists. */
function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
