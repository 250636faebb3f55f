// Occupancy: which channels have subscribers anywhere in the cluster, with every change seen exactly once. Each node
// records the channels it has local subscribers of and keeps refreshing the records; a node that dies stops, and
// a sweeper vacates its channels once their records expire.

export type OccupancyChange = 'occupied' | 'vacated';

/** What one channel's write did: `change` when the channel became occupied or vacated by it, `error` when it failed. */
export interface OccupancyOutcome {
  channel: string;
  change?: OccupancyChange;
  error?: Error;
}

/** A channel whose every record has expired, and the expiry the index knew it by. */
export interface DueChannel {
  channel: string;
  expiry: number;
}

export interface Occupancy {
  /**
   * This node has local subscribers of these channels: records them for `ttlSeconds`, or refreshes the records.
   * A channel no node had a record of becomes occupied. Each channel succeeds or fails on its own.
   */
  occupy(channels: string[], ttlSeconds: number): Promise<OccupancyOutcome[]>;
  /** This node's last local subscriber of these channels left; a channel with no record left is vacated. */
  vacate(channels: string[]): Promise<OccupancyOutcome[]>;
  /** Channels whose records have all expired (their nodes stopped refreshing them), oldest first, at most `limit`. */
  due(limit: number): Promise<DueChannel[]>;
  /** Drops a due channel's expired records: 'vacated' when none is left (a live record keeps it occupied). */
  sweep(due: DueChannel): Promise<OccupancyOutcome>;
}

/** A TTL in whole milliseconds; throws on one that can only come from a bug in the caller. */
export function occupancyTtlMs(ttlSeconds: number): number {
  const ms = Math.ceil(ttlSeconds * 1000);
  if (!(ms > 0) || !Number.isSafeInteger(ms)) throw new Error(`occupancy ttlSeconds must be > 0, got ${ttlSeconds}`);
  return ms;
}
