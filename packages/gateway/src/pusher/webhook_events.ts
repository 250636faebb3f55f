// The webhook events of what the cluster observed once — a channel occupied or vacated, a user joining or leaving a
// presence channel, a client event — for every app that asked for them, queued in the outbox in the order observed.
import { userOfInfo, type Outbox } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { PublishOptions } from '../core';
import type { WebhookEventType } from './apps';
import { appChannelName, TAG_EVENT, TAG_SOCKET_ID, TAG_USER_ID } from './channel_map';
import type { PusherEdgeApp } from './edge_apps';
import { PRESENCE_PREFIX } from './names';
import type { WebhookMetrics } from './webhook_metrics';
import type { WebhookEvent } from './webhooks';

/** An outbox entry: the app it is for, when it was observed, and the event. */
export interface QueuedWebhookEvent {
  app: string;
  time_ms: number;
  event: WebhookEvent;
}

/** Events held on this gateway while the outbox cannot take them; beyond it the oldest are dropped. */
export const MAX_BUFFERED_EVENTS = 10_000;
/** Events per outbox append. */
const APPEND_BATCH = 500;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5000;

const OCCUPANCY_TYPES: readonly WebhookEventType[] = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'];

interface HookedApp {
  edge: PusherEdgeApp;
  /** Every event type any of its webhooks asked for. */
  types: ReadonlySet<WebhookEventType>;
}

export class WebhookEmitter {
  private readonly apps: HookedApp[];
  private buffer: string[] = [];
  /** The first `inFlight` entries of the buffer are being appended. */
  private inFlight = 0;
  private flushing: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    apps: readonly PusherEdgeApp[],
    private readonly outbox: Outbox,
    private readonly logger: Logger,
    private readonly metrics: WebhookMetrics,
    private readonly maxBuffered = MAX_BUFFERED_EVENTS,
  ) {
    this.apps = apps
      .filter((edge) => edge.app.webhooks.length > 0)
      .map((edge) => ({ edge, types: new Set(edge.app.webhooks.flatMap((hook) => hook.event_types)) }));
  }

  /** Whether some app wants a type of events in `types`. */
  wants(types: readonly WebhookEventType[]): boolean {
    return this.apps.some((a) => types.some((t) => a.types.has(t)));
  }

  /** Whether the channel's occupancy (or members) concern an app: only then is it tracked cluster-wide. */
  tracksOccupancy(channel: string): boolean {
    return this.apps.some((a) => OCCUPANCY_TYPES.some((t) => a.types.has(t)) && appChannelName(a.edge, channel) !== undefined);
  }

  occupancy(channel: string, change: 'occupied' | 'vacated'): void {
    const name = change === 'occupied' ? 'channel_occupied' : 'channel_vacated';
    this.emit(channel, name, (pusherChannel) => ({ name, channel: pusherChannel }));
  }

  /** A user's first connection joined (`member_added`) or its last left (`member_removed`) a presence channel. */
  member(channel: string, name: 'member_added' | 'member_removed', info: string): void {
    const user = userOfInfo(info);
    // Anonymous connections are no Pusher members.
    if (user === '') return;
    this.emit(channel, name, (pusherChannel) => (pusherChannel.startsWith(PRESENCE_PREFIX) ? { name, channel: pusherChannel, user_id: user } : undefined));
  }

  /** An accepted publication: a client event (a `client-` event a connection sent) becomes `client_event`. */
  published(channel: string, data: string, opts: PublishOptions): void {
    const event = opts.tags?.[TAG_EVENT];
    const socketId = opts.tags?.[TAG_SOCKET_ID];
    if (opts.source !== 'client' || event === undefined || !event.startsWith('client-') || socketId === undefined) return;
    const userId = opts.tags?.[TAG_USER_ID];
    const eventData = eventDataOf(data);
    this.emit(channel, 'client_event', (pusherChannel) => ({
      name: 'client_event',
      channel: pusherChannel,
      event,
      data: eventData,
      socket_id: socketId,
      ...(userId !== undefined ? { user_id: userId } : {}),
    }));
  }

  /** Appends what is buffered; resolves when the buffer is empty or the outbox refused it once more. */
  async flush(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await (this.flushing ??= this.drain());
  }

  stop(): Promise<void> {
    return this.flush();
  }

  private emit(channel: string, type: WebhookEventType, build: (pusherChannel: string) => WebhookEvent | undefined): void {
    const now = Date.now();
    for (const { edge, types } of this.apps) {
      if (!types.has(type)) continue;
      const pusherChannel = appChannelName(edge, channel);
      if (pusherChannel === undefined) continue;
      const event = build(pusherChannel);
      if (event === undefined) continue;
      const queued: QueuedWebhookEvent = { app: edge.app.id, time_ms: now, event };
      this.push(JSON.stringify(queued));
    }
  }

  private push(body: string): void {
    this.buffer.push(body);
    if (this.buffer.length > this.maxBuffered) {
      // The oldest not yet on its way go.
      const over = this.buffer.length - this.maxBuffered;
      this.buffer.splice(this.inFlight, over);
      this.metrics.events.labels('dropped').inc(over);
      this.logger.warn({ dropped: over, limit: this.maxBuffered }, 'webhook events dropped: the outbox is unreachable and the local queue is full');
    }
    if (!this.flushing && !this.retryTimer) this.flushing = this.drain();
  }

  /** One append at a time keeps the outbox in the order observed. */
  private async drain(): Promise<void> {
    // After the current call stack: events observed together go in one append.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.buffer.length > 0) {
        const batch = this.buffer.slice(0, APPEND_BATCH);
        this.inFlight = batch.length;
        try {
          await this.outbox.append(batch);
        } catch (err) {
          this.failures++;
          if (this.failures === 1) this.logger.warn({ err: (err as Error).message, queued: this.buffer.length }, 'webhook events wait: the outbox is unreachable');
          const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.failures - 1));
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            if (!this.flushing) this.flushing = this.drain();
          }, delay);
          this.retryTimer.unref();
          return;
        } finally {
          this.inFlight = 0;
        }
        this.buffer.splice(0, batch.length);
        this.failures = 0;
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

/** A client event's data as the client sent it: the string itself, or the JSON text of any other value. */
function eventDataOf(data: string): string {
  try {
    const parsed: unknown = JSON.parse(data);
    return typeof parsed === 'string' ? parsed : data;
  } catch {
    return data;
  }
}
