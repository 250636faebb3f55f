// Local channel registry: one engine subscription per channel however many local subscribers, and fan-out.
import type { Broker, Publication } from '@switchboard/engine';
import { encodePublicationPush } from '@switchboard/protocol';
import type { Logger } from 'pino';

/** A subscriber whose subscribe is in progress: it collects publications until its reply is sent. */
export interface PendingSubscriber {
  buffer: { offset: number; frame: string }[];
}

interface ChannelEntry {
  subscribers: number;
  /** Resolves once the engine delivers this channel to us. */
  ready: Promise<void>;
  pending: Set<PendingSubscriber>;
}

/** Sends one encoded frame to every active local subscriber of a channel. */
export type Fanout = (channel: string, frame: string) => void;

export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();

  constructor(
    private readonly broker: Broker,
    private readonly fanout: Fanout,
    private readonly logger: Logger,
  ) {
    broker.onPublication((channel, pub) => this.deliver(channel, pub));
  }

  /** Number of channels with at least one local subscriber. */
  get channelCount(): number {
    return this.channels.size;
  }

  /**
   * Registers a subscriber that will collect publications in `pending` until `activate`; resolves when the
   * engine subscription is in place. On rejection the caller must still call `remove`.
   */
  add(channel: string, pending: PendingSubscriber): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { subscribers: 0, ready: this.broker.subscribe([channel]), pending: new Set() };
      // The rejection is delivered to every waiting subscriber; this only keeps it from being unhandled.
      entry.ready.catch(() => undefined);
      this.channels.set(channel, entry);
    }
    entry.subscribers++;
    entry.pending.add(pending);
    return entry.ready;
  }

  /** The subscriber now receives through the fan-out; it stops collecting. */
  activate(channel: string, pending: PendingSubscriber): void {
    this.channels.get(channel)?.pending.delete(pending);
  }

  remove(channel: string, pending?: PendingSubscriber): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    if (pending) entry.pending.delete(pending);
    entry.subscribers--;
    if (entry.subscribers > 0) return;
    this.channels.delete(channel);
    this.broker.unsubscribe([channel]).catch((err: Error) => {
      this.logger.warn({ channel, err: err.message }, 'engine unsubscribe failed');
    });
  }

  // Hot path: the push frame is encoded once and the same bytes go to every local subscriber.
  private deliver(channel: string, pub: Publication): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    const frame = encodePublicationPush(channel, pub.json);
    this.fanout(channel, frame);
    for (const p of entry.pending) p.buffer.push({ offset: pub.offset, frame });
  }
}
