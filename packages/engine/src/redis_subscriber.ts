// One shard's pub/sub connection: batches SUBSCRIBE/UNSUBSCRIBE per tick and restores subscriptions after a reconnect.
import type Redis from 'ioredis';
import { BrokerUnavailableError } from './errors';
import { channelOfPubSub, redisPubSubChannel } from './redis_keys';

/** Most channels in one SUBSCRIBE/UNSUBSCRIBE, and the queue length that flushes without waiting for the tick. */
export const SUBSCRIBE_BATCH = 512;

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  /** Subscribe requests only: the token their channels carry in `desired`, so a failure undoes only itself. */
  token?: object;
  channels?: string[];
}

/** The waiters of one flush; settled once, by its commands or by the connection closing under them. */
interface Batch {
  waiters: Waiter[];
  settled: boolean;
}

export interface SubscriberEvents {
  /** A message on a channel that is subscribed (wanted) right now. */
  message(channel: string, payload: string): void;
  /** A message on one of the fixed pub/sub channels (the control channels). */
  control(payload: string): void;
  /** Every wanted channel is subscribed again after the connection was lost. */
  restored(): void;
}

export class ShardSubscriber {
  /** Channels the caller wants, each with the token of the subscribe request that last asked for it. */
  private readonly desired = new Map<string, object>();
  /** Raw pub/sub names (not channels) kept for the subscriber's whole life: the control channels. */
  private readonly fixed = new Set<string>();
  /** Channels SUBSCRIBEd on the current connection as of the last command sent: the base of the next diff. */
  private active = new Set<string>();
  /** Channels touched since the last flush; the flush sends only the difference between desired and active. */
  private dirty = new Set<string>();
  private queued: Waiter[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private readonly inFlight = new Set<Batch>();
  /** Settles after the last command sent: a batch needing no command is in place once earlier ones are. */
  private tail: Promise<unknown> = Promise.resolve();
  private connectedOnce = false;
  private needsRestore = false;
  /** Bumped on every connection loss; a restore that started on an older connection does not count. */
  private generation = 0;
  private restoreStartedFor = -1;

  constructor(
    private readonly conn: Redis,
    private readonly prefix: string,
    private readonly label: string,
    private readonly events: SubscriberEvents,
  ) {
    // Hot path: a channel's pub/sub name has `{` right after `<prefix>:`, a fixed one never does.
    const brace = prefix.length + 1;
    conn.on('message', (pubsub: string, payload: string) => {
      if (pubsub.charCodeAt(brace) !== 123 /* { */) {
        if (this.fixed.has(pubsub)) events.control(payload);
        return;
      }
      const channel = channelOfPubSub(pubsub, prefix);
      // Messages still arrive between sending UNSUBSCRIBE and its confirmation; the caller asked for none.
      if (this.desired.has(channel)) events.message(channel, payload);
    });
    conn.on('ready', () => {
      if (!this.connectedOnce) this.connectedOnce = true;
      else this.restoreIfNeeded();
    });
    conn.on('close', () => this.connectionLost());
  }

  /** Connected and every wanted channel subscribed on this connection (or on its way, in order). */
  isReady(): boolean {
    return this.conn.status === 'ready' && !this.needsRestore;
  }

  /** Rejects at once while the connection is down rather than waiting for it. */
  subscribe(channels: string[]): Promise<void> {
    if (this.conn.status !== 'ready') return Promise.reject(this.unavailable('is not connected'));
    const token = {};
    for (const channel of channels) {
      this.desired.set(channel, token);
      this.dirty.add(channel);
    }
    return this.enqueue({ token, channels });
  }

  /**
   * Subscribes raw pub/sub names that stay subscribed until close and are restored after a reconnect together
   * with the channels, so `isReady()` and `restored` cover them. Rejects at once while disconnected.
   */
  subscribeFixed(pubsubNames: string[]): Promise<void> {
    if (this.conn.status !== 'ready') return Promise.reject(this.unavailable('is not connected'));
    if (pubsubNames.length === 0) return Promise.resolve();
    for (const name of pubsubNames) this.fixed.add(name);
    const done = Promise.all([this.tail, this.conn.subscribe(...pubsubNames)]);
    this.tail = done.catch(() => undefined);
    return done.then(
      () => undefined,
      (err: Error) => {
        throw this.unavailable(`failed: ${err.message}`);
      },
    );
  }

  /** Never rejects: a lost connection has dropped its subscriptions anyway. */
  unsubscribe(channels: string[]): Promise<void> {
    for (const channel of channels) {
      this.desired.delete(channel);
      this.dirty.add(channel);
    }
    return this.enqueue({});
  }

  /** Fails whatever is pending; the connection itself is closed by the owner. */
  close(): void {
    clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    this.desired.clear();
    this.fixed.clear();
    this.dirty.clear();
    const err = this.unavailable('was closed');
    for (const batch of this.inFlight) this.settle(batch, err);
    this.settle({ waiters: this.queued, settled: false }, err);
    this.queued = [];
  }

  private enqueue(waiter: Omit<Waiter, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ ...waiter, resolve, reject });
      if (this.dirty.size >= SUBSCRIBE_BATCH) this.flush();
      else this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    // setImmediate rather than a microtask: requests from every socket read in this I/O phase share one command.
    this.flushTimer ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    const batch: Batch = { waiters: this.queued, settled: false };
    const dirty = this.dirty;
    this.queued = [];
    this.dirty = new Set();
    if (this.conn.status !== 'ready') {
      this.settle(batch, this.unavailable('is not connected'));
      return;
    }
    // 'ready' is emitted a tick after the status changes: restore first so `active` is right for the diff.
    this.restoreIfNeeded();

    const subscribe: string[] = [];
    const unsubscribe: string[] = [];
    for (const channel of dirty) {
      const wanted = this.desired.has(channel);
      if (wanted === this.active.has(channel)) continue;
      if (wanted) {
        this.active.add(channel);
        subscribe.push(redisPubSubChannel(channel, this.prefix));
      } else {
        this.active.delete(channel);
        unsubscribe.push(redisPubSubChannel(channel, this.prefix));
      }
    }
    // One connection runs commands in order, so subscribe→unsubscribe→subscribe across flushes ends subscribed.
    const sent: Promise<unknown>[] = [this.tail];
    for (let i = 0; i < subscribe.length; i += SUBSCRIBE_BATCH) {
      sent.push(this.conn.subscribe(...subscribe.slice(i, i + SUBSCRIBE_BATCH)));
    }
    for (let i = 0; i < unsubscribe.length; i += SUBSCRIBE_BATCH) {
      sent.push(this.conn.unsubscribe(...unsubscribe.slice(i, i + SUBSCRIBE_BATCH)));
    }
    const done = Promise.all(sent);
    this.tail = done.catch(() => undefined);
    if (batch.waiters.length === 0) return;
    this.inFlight.add(batch);
    done.then(
      () => this.settle(batch),
      (err: Error) => this.settle(batch, this.unavailable(`failed: ${err.message}`)),
    );
  }

  private settle(batch: Batch, err?: Error): void {
    if (batch.settled) return;
    batch.settled = true;
    this.inFlight.delete(batch);
    for (const waiter of batch.waiters) {
      if (!err || !waiter.token) {
        waiter.resolve();
        continue;
      }
      // The caller hears "not subscribed"; forget the channels unless a newer request wants them again.
      for (const channel of waiter.channels ?? []) {
        if (this.desired.get(channel) !== waiter.token) continue;
        this.desired.delete(channel);
        this.dirty.add(channel);
      }
      waiter.reject(err);
    }
    if (this.dirty.size > 0) this.scheduleFlush();
  }

  private connectionLost(): void {
    this.generation++;
    this.active.clear();
    if (this.connectedOnce) this.needsRestore = true;
    const err = this.unavailable('was lost');
    for (const batch of this.inFlight) this.settle(batch, err);
  }

  /** After a reconnect: SUBSCRIBE every wanted channel and every fixed name again, in batches, then report. */
  private restoreIfNeeded(): void {
    if (!this.needsRestore || this.conn.status !== 'ready' || this.restoreStartedFor === this.generation) return;
    const generation = this.generation;
    this.restoreStartedFor = generation;
    const channels = [...this.desired.keys()];
    this.active = new Set(channels);
    const names = [...this.fixed];
    for (const channel of channels) names.push(redisPubSubChannel(channel, this.prefix));
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) {
      sent.push(this.conn.subscribe(...names.slice(i, i + SUBSCRIBE_BATCH)));
    }
    const done = Promise.all(sent);
    this.tail = done.catch(() => undefined);
    done.then(
      () => {
        if (generation !== this.generation) return;
        this.needsRestore = false;
        this.events.restored();
      },
      // Lost again before finishing: the next 'ready' starts over.
      () => undefined,
    );
  }

  private unavailable(what: string): BrokerUnavailableError {
    return new BrokerUnavailableError(`redis ${this.label}: pub/sub connection ${what}`);
  }
}
