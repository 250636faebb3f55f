// How a run's channels, and the Redis CPU their publications cost, spread over the primaries of a Redis Cluster.
import Redis from 'ioredis';
import type { ProcUsage } from './procstat';
import type { Cluster } from './systems';

/**
 * The hash-tagged name every Redis key and the sharded pub/sub channel of a channel start with: `<prefix>:{<channel>}`
 * (packages/engine/src/redis_keys.ts, `redisPubSubChannel`), under the default prefix the bench's gateways run with.
 * Its slot is the channel's slot; the PUBSUB SHARDCHANNELS count beside it checks that the gateways agree.
 */
export function channelSlotKey(channel: string): string {
  return `sb:{${channel}}`;
}

/** Where the channels live on one primary, as the cluster says before the ladder starts. */
export interface PrimaryPlacement {
  /** As in the per-process CPU columns: redis1, redis2, … */
  name: string;
  port: number;
  /** Hash slots it serves (of 16384). */
  slots: number;
  /** Channels whose slot it serves (CLUSTER KEYSLOT of the channel's hash-tagged key). */
  channels: number;
  /** Of these channels, those it holds sharded subscriptions for (PUBSUB SHARDCHANNELS): the gateways' own placement. */
  subscribed: number;
}

export interface PrimaryShare extends PrimaryPlacement {
  /** CPU-seconds this primary used over the steps' publishing time. */
  cpuSeconds: number;
  /** Its CPU-seconds per 1,000 publications of those steps. */
  cpuPer1000: number;
  /** Its part of the primaries' CPU, 0–1. */
  cpuShare: number;
}

export interface Spread {
  /** Steps and publications the CPU figures add up. */
  steps: number;
  published: number;
  primaries: PrimaryShare[];
  /** Largest over smallest channel count, and the same for CPU (Infinity when one primary got none). */
  channelsMaxMin: number;
  cpuMaxMin: number;
}

/** Issue 10: the primaries share 1,000 channels' load within this factor. */
export const SPREAD_TARGET = 1.5;

export function maxOverMin(values: number[]): number {
  if (values.length === 0) return NaN;
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min > 0 ? max / min : max > 0 ? Infinity : NaN;
}

/** The primary (index into `primaries`) whose inclusive slot ranges hold `slot`, or -1. */
export function ownerIndex(slot: number, primaries: { slots: [number, number][] }[]): number {
  return primaries.findIndex((p) => p.slots.some(([from, to]) => slot >= from && slot <= to));
}

/**
 * Each primary's placement joined with the CPU it used over all `steps` (their sum: one 3 s step holds only tens of
 * 10 ms /proc ticks per primary, too coarse alone for a ratio between them).
 */
export function spreadOf(placement: PrimaryPlacement[], steps: { usage: ProcUsage[]; published: number }[]): Spread {
  const published = steps.reduce((n, s) => n + s.published, 0);
  const cpu = placement.map((p) => steps.reduce((sum, s) => sum + (s.usage.find((u) => u.name === p.name)?.cpuSeconds ?? NaN), 0));
  const total = cpu.reduce((a, b) => a + b, 0);
  const primaries = placement.map((p, i) => ({
    ...p,
    cpuSeconds: cpu[i],
    cpuPer1000: published > 0 ? (1000 * cpu[i]) / published : NaN,
    cpuShare: total > 0 ? cpu[i] / total : NaN,
  }));
  return { steps: steps.length, published, primaries, channelsMaxMin: maxOverMin(placement.map((p) => p.channels)), cpuMaxMin: maxOverMin(cpu) };
}

/** Asks the cluster which primary serves each channel's slot, and each primary which channels it holds subscriptions for. */
export async function channelPlacement(cluster: Cluster, channels: string[]): Promise<PrimaryPlacement[]> {
  const redisCluster = cluster.redisCluster;
  if (!redisCluster) throw new Error('channel placement needs a Redis Cluster');
  const primaries = await redisCluster.primaries();
  const counts = primaries.map(() => 0);
  for (const channel of channels) {
    const owner = ownerIndex(await redisCluster.slotOfKey(channelSlotKey(channel)), primaries);
    if (owner < 0) throw new Error(`no primary serves the slot of ${channel}`);
    counts[owner]++;
  }
  // The gateways hold sharded subscriptions of their own too (control messages): count only these channels.
  const ours = new Set(channels.map(channelSlotKey));
  return Promise.all(
    primaries.map(async (p, i) => {
      const node = cluster.redisNodes.find((n) => n.port === p.port);
      return {
        name: node?.name ?? `port ${p.port}`,
        port: p.port,
        slots: p.slots.reduce((n, [from, to]) => n + to - from + 1, 0),
        channels: counts[i],
        subscribed: (await shardChannels(p.port)).filter((name) => ours.has(name)).length,
      };
    }),
  );
}

async function shardChannels(port: number): Promise<string[]> {
  const conn = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await conn.connect();
    return (await conn.call('PUBSUB', 'SHARDCHANNELS')) as string[];
  } finally {
    conn.disconnect();
  }
}
