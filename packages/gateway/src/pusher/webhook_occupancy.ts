// Cluster-wide occupancy of the channels webhooks care about: this gateway records the channels it has local
// subscribers of (and keeps refreshing them) in the engine, which tells exactly one gateway that a channel became
// occupied or vacated; the delivery lease holder also sweeps the channels of gateways that died.
import type { DueChannel, Occupancy, OccupancyOutcome } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { Hub } from '../hub';
import type { PresenceTracker } from '../presence';
import { pusherName } from './channel_map';
import { PRESENCE_PREFIX } from './names';
import type { WebhookEmitter } from './webhook_events';

/** Channels per refresh call (each is one script on its own shard or slot, issued together). */
const REFRESH_CHUNK = 500;
/** Due channels looked at per sweep. */
const SWEEP_BATCH = 200;

export class OccupancyTracker {
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlSeconds: number;
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly occupancy: Occupancy,
    private readonly hub: Hub,
    private readonly presence: PresenceTracker,
    private readonly emitter: WebhookEmitter,
    private readonly logger: Logger,
    /** Records live this long unless refreshed (the presence TTL: a dead gateway's channels and members go together). */
    ttlMs: number,
  ) {
    this.ttlSeconds = ttlMs / 1000;
    hub.onLocalChannel((channel, present) => {
      if (!emitter.tracksOccupancy(channel)) return;
      this.track(present ? this.occupancy.occupy([channel], this.ttlSeconds) : this.occupancy.vacate([channel]));
    });
    // Refreshed three times per TTL, like presence, so one late refresh does not vacate anything.
    this.timer = setInterval(() => void this.refresh(), Math.max(200, ttlMs / 3));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves once every write sent so far was answered and its events handed to the emitter. */
  async settled(): Promise<void> {
    await Promise.all([...this.writing]);
  }

  /**
   * The lease holder's duty: vacates the channels whose every record expired (their gateways died), after
   * announcing their members' leaves. A presence channel whose members have not all expired yet waits for the next sweep.
   */
  async sweep(): Promise<void> {
    let due: DueChannel[];
    try {
      due = await this.occupancy.due(SWEEP_BATCH);
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'occupancy sweep failed');
      return;
    }
    for (const d of due) {
      try {
        if (pusherName(d.channel).startsWith(PRESENCE_PREFIX)) {
          await this.presence.expire(d.channel);
          // Left by the same dead gateway, refreshed a little later than its channel record: not expired yet.
          if ((await this.presence.live(d.channel)) > 0) continue;
        }
        this.report(await this.occupancy.sweep(d));
      } catch (err) {
        this.logger.debug({ channel: d.channel, err: (err as Error).message }, 'occupancy sweep failed');
      }
    }
  }

  private async refresh(): Promise<void> {
    const channels = [...this.hub.localChannels()].filter((channel) => this.emitter.tracksOccupancy(channel));
    for (let i = 0; i < channels.length; i += REFRESH_CHUNK) {
      // Channels that lost their last local subscriber while earlier chunks were written are vacated already.
      const chunk = channels.slice(i, i + REFRESH_CHUNK).filter((channel) => this.hub.hasLocal(channel));
      const write = this.occupancy.occupy(chunk, this.ttlSeconds);
      this.track(write);
      await write.catch(() => undefined);
    }
  }

  private track(write: Promise<OccupancyOutcome[]>): void {
    const done = write.then(
      (outcomes) => {
        for (const outcome of outcomes) this.report(outcome);
      },
      (err: Error) => this.logger.debug({ err: err.message }, 'occupancy write failed'),
    );
    this.writing.add(done);
    void done.finally(() => this.writing.delete(done));
  }

  private report(outcome: OccupancyOutcome): void {
    // A failed write is repaired by the next refresh (occupy) or by the records expiring (vacate).
    if (outcome.error) this.logger.debug({ channel: outcome.channel, err: outcome.error.message }, 'occupancy write failed');
    if (outcome.change) this.emitter.occupancy(outcome.channel, outcome.change);
  }
}
