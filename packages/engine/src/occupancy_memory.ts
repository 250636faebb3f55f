// Occupancy held in memory for the memory engine: per channel, node id → expiry; shared by every Occupancy made on
// one MemoryBroker, which is a whole cluster.
import type { DueChannel, Occupancy, OccupancyOutcome } from './occupancy';
import { occupancyTtlMs } from './occupancy';

/** channel → node → expiry (ms) */
export type OccupancyRecords = Map<string, Map<string, number>>;

export class MemoryOccupancy implements Occupancy {
  constructor(
    private readonly records: OccupancyRecords,
    private readonly node: string,
  ) {}

  async occupy(channels: string[], ttlSeconds: number): Promise<OccupancyOutcome[]> {
    const ttlMs = occupancyTtlMs(ttlSeconds);
    const now = Date.now();
    return channels.map((channel) => {
      let nodes = this.records.get(channel);
      const had = nodes !== undefined && nodes.size > 0;
      if (!nodes) this.records.set(channel, (nodes = new Map()));
      nodes.set(this.node, now + ttlMs);
      dropExpired(nodes, now);
      return had ? { channel } : { channel, change: 'occupied' };
    });
  }

  async vacate(channels: string[]): Promise<OccupancyOutcome[]> {
    const now = Date.now();
    return channels.map((channel) => this.drop(channel, now, this.node));
  }

  async due(limit: number): Promise<DueChannel[]> {
    const now = Date.now();
    const due: DueChannel[] = [];
    for (const [channel, nodes] of this.records) {
      const expiry = Math.max(...nodes.values());
      if (expiry <= now) due.push({ channel, expiry });
    }
    return due.sort((a, b) => a.expiry - b.expiry).slice(0, limit);
  }

  async sweep(due: DueChannel): Promise<OccupancyOutcome> {
    return this.drop(due.channel, Date.now());
  }

  private drop(channel: string, now: number, node?: string): OccupancyOutcome {
    const nodes = this.records.get(channel);
    if (!nodes) return { channel };
    if (node !== undefined) nodes.delete(node);
    dropExpired(nodes, now);
    if (nodes.size > 0) return { channel };
    this.records.delete(channel);
    return { channel, change: 'vacated' };
  }
}

/** A record expiring exactly now is gone, as in Redis. */
function dropExpired(nodes: Map<string, number>, now: number): void {
  for (const [node, expiry] of nodes) if (expiry <= now) nodes.delete(node);
}
