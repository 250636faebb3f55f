// Occupancy in Redis: one sorted set per channel under its hash tag (lua/occupancy.lua), and an index of occupied
// channels by expiry (lua/occupancy_index.lua) that lets a sweeper find the channels of nodes that died.
import type { RedisBroker } from './broker_redis';
import type { DueChannel, Occupancy, OccupancyOutcome } from './occupancy';
import { occupancyTtlMs } from './occupancy';
import { EXPIRED_KEY_GRACE_MS } from './presence';
import { OCCUPANCY_INDEX, occupancyIndexKey, occupancyKey } from './redis_keys';
import type { OccupancyReply } from './redis_scripts';

export class RedisOccupancy implements Occupancy {
  private readonly indexKey: string;

  constructor(
    private readonly broker: RedisBroker,
    private readonly node: string,
  ) {
    this.indexKey = occupancyIndexKey(broker.keyPrefix);
  }

  async occupy(channels: string[], ttlSeconds: number): Promise<OccupancyOutcome[]> {
    const ttlMs = occupancyTtlMs(ttlSeconds);
    const replies = await Promise.all(channels.map((channel) => this.write(channel, 'add', this.node, ttlMs)));
    // The index learns each channel's latest expiry, so a sweeper finds it once nobody refreshes it.
    const touch: (string | number)[] = [];
    for (const r of replies) if (r.expiry > 0) touch.push(r.expiry, r.outcome.channel);
    // Not awaited, so a vacate sent after this occupy never resolves before it. A failure costs nothing yet: the
    // records are written, and the next refresh touches the index again.
    if (touch.length > 0) void this.index('touch', ...touch);
    return replies.map((r) => r.outcome);
  }

  async vacate(channels: string[]): Promise<OccupancyOutcome[]> {
    const replies = await Promise.all(channels.map((channel) => this.write(channel, 'remove', this.node, 1)));
    return replies.map((r) => r.outcome);
  }

  async due(limit: number): Promise<DueChannel[]> {
    const conn = this.broker.connectionFor(OCCUPANCY_INDEX);
    let flat: string[];
    try {
      flat = await conn.commands().sbOccupancyIndex(this.indexKey, 'due', limit);
    } catch (err) {
      throw conn.commandError(err);
    }
    const due: DueChannel[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) due.push({ channel: flat[i], expiry: Number(flat[i + 1]) });
    return due;
  }

  async sweep(due: DueChannel): Promise<OccupancyOutcome> {
    const { outcome, expiry } = await this.write(due.channel, 'sweep', '', 1);
    if (outcome.error) return outcome;
    // A live record left: the index waits for it. None: the channel leaves the index unless a node touched it since
    // it was read. A failure leaves the channel in the index, to be swept again.
    if (expiry > 0) await this.index('touch', expiry, due.channel);
    else await this.index('drop', due.channel, due.expiry);
    return outcome;
  }

  /** An index write; failures are left to the next write (see the callers). */
  private async index(op: 'touch' | 'drop', ...args: (string | number)[]): Promise<void> {
    try {
      const commands = this.broker.connectionFor(OCCUPANCY_INDEX).commands();
      if (op === 'touch') await commands.sbOccupancyIndex(this.indexKey, 'touch', ...args);
      else await commands.sbOccupancyIndex(this.indexKey, 'drop', String(args[0]), Number(args[1]));
    } catch {
      // see above
    }
  }

  private async write(channel: string, op: 'add' | 'remove' | 'sweep', node: string, ttlMs: number): Promise<{ outcome: OccupancyOutcome; expiry: number }> {
    const conn = this.broker.connectionFor(channel);
    let reply: OccupancyReply;
    try {
      reply = await conn.commands().sbOccupancy(occupancyKey(channel, this.broker.keyPrefix), op, node, ttlMs, EXPIRED_KEY_GRACE_MS);
    } catch (err) {
      return { outcome: { channel, error: conn.commandError(err) }, expiry: 0 };
    }
    const [change, expiry] = reply;
    return { outcome: change === '' ? { channel } : { channel, change }, expiry: Number(expiry) };
  }
}
