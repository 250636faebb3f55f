// Partition ownership: a heartbeat in the registry of live workers, and one lease per partition held, renewed, shared out.
//
// - Every leaseMs/3 the worker renews its heartbeat (sorted set, expiry on the Redis clock) and its leases
//   (compare-and-renew), then aims at ceil(partitions / live workers): it gives up partitions above that
//   (after its reader finished their in-flight requests) and takes free ones below it (SET NX PX). So a new
//   worker gets its share within a tick or two, and a dead one's partitions go to the others once its
//   heartbeat and leases expire, about leaseMs later.
// - A lease that could not be renewed (taken by another worker, or expired while Redis was unreachable) is
//   lost: its partition stops being read at once. Writes already under way stay safe: commits are guarded
//   by the document's version and recorded by idempotency key.
// - Each worker walks the partitions from its own starting point, so workers starting together do not all
//   reach for the same ones.
import { docLeaseKey, docPartitionOf, docWorkersKey } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { WorkerRedis } from './connections';

export interface OwnershipEvents {
  /** Start reading the partition. */
  acquired(partition: number): void;
  /** The lease is gone: stop reading the partition now. */
  lost(partition: number): void;
  /** Stop reading the partitions and resolve once none of their requests is being processed. */
  release(partitions: number[]): Promise<void>;
}

export interface OwnershipOptions {
  prefix: string;
  partitions: number;
  leaseMs: number;
  workerId: string;
  logger: Logger;
}

export class Ownership {
  private readonly owned = new Set<number>();
  /** Partitions in this worker's order of preference. */
  private readonly order: number[];
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** Local time of the last heartbeat and lease renewal that succeeded. */
  private lastRenewedAt = 0;
  private stopped = false;

  constructor(
    private readonly redis: WorkerRedis,
    private readonly o: OwnershipOptions,
    private readonly events: OwnershipEvents,
  ) {
    const first = docPartitionOf(o.workerId, o.partitions);
    this.order = Array.from({ length: o.partitions }, (_, i) => (first + i) % o.partitions);
  }

  /** Registers, takes a first share of partitions, then keeps ticking. */
  async start(): Promise<void> {
    await this.tick();
    if (this.lastRenewedAt === 0) throw new Error('cannot register the worker in Redis');
    this.timer = setInterval(() => void this.tick(), Math.floor(this.o.leaseMs / 3));
  }

  partitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** Registered and renewed recently enough that its leases are still its own. */
  isAlive(): boolean {
    return !this.stopped && Date.now() - this.lastRenewedAt < this.o.leaseMs;
  }

  /** Hands every partition back (after its in-flight requests) and leaves the registry. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    await this.release(this.partitions());
    await this.redis.zrem(docWorkersKey(this.o.prefix), this.o.workerId).catch(() => undefined);
  }

  private tick(): Promise<void> {
    // A slow tick (Redis lagging) is not stacked on: the next interval tries again.
    this.ticking ??= this.renewAndBalance()
      .catch((err: Error) => {
        this.o.logger.warn({ err: err.message }, 'cannot renew partition leases');
        if (Date.now() - this.lastRenewedAt >= this.o.leaseMs) this.loseAll('leases expired while Redis was unreachable');
      })
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async renewAndBalance(): Promise<void> {
    if (this.stopped) return;
    const { prefix, leaseMs, workerId } = this.o;
    const startedAt = Date.now();
    const [live] = await this.redis.sbHeartbeat(docWorkersKey(prefix), workerId, leaseMs);

    const held = this.partitions();
    if (held.length > 0) {
      // Sent together, so they share one round trip.
      const renewed = await Promise.all(held.map((p) => this.redis.sbLeaseRenew(docLeaseKey(prefix, p), workerId, leaseMs)));
      held.forEach((p, i) => {
        if (renewed[i] !== 1 && this.owned.delete(p)) {
          this.o.logger.warn({ partition: p }, 'partition lease lost');
          this.events.lost(p);
        }
      });
    }
    this.lastRenewedAt = startedAt;
    if (this.stopped) return;

    const target = Math.ceil(this.o.partitions / Math.max(1, live));
    // Give back the least preferred first, so each worker keeps a stable share.
    const extra: number[] = [];
    for (let i = this.order.length - 1; i >= 0 && this.owned.size - extra.length > target; i--) {
      if (this.owned.has(this.order[i])) extra.push(this.order[i]);
    }
    if (extra.length > 0) await this.release(extra);
    for (const p of this.order) {
      if (this.owned.size >= target || this.stopped) break;
      if (this.owned.has(p)) continue;
      if ((await this.redis.set(docLeaseKey(prefix, p), workerId, 'PX', leaseMs, 'NX')) === 'OK') {
        this.owned.add(p);
        this.o.logger.info({ partition: p }, 'partition acquired');
        this.events.acquired(p);
      }
    }
  }

  private async release(partitions: number[]): Promise<void> {
    const mine = partitions.filter((p) => this.owned.delete(p));
    if (mine.length === 0) return;
    await this.events.release(mine);
    await Promise.all(
      mine.map((p) =>
        this.redis.sbLeaseRelease(docLeaseKey(this.o.prefix, p), this.o.workerId).catch((err: Error) => {
          this.o.logger.warn({ partition: p, err: err.message }, 'cannot release partition lease; it will expire');
        }),
      ),
    );
    this.o.logger.info({ partitions: mine }, 'partitions released');
  }

  private loseAll(reason: string): void {
    for (const p of this.partitions()) {
      this.owned.delete(p);
      this.o.logger.warn({ partition: p, reason }, 'partition lease lost');
      this.events.lost(p);
    }
  }
}
