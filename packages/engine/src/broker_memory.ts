// MemoryBroker: the single-process engine — per-channel epoch, offsets and bounded history held in memory.
import { encodePublication } from '@switchboard/protocol';
import type {
  Broker,
  ControlHandler,
  HistoryOptions,
  HistoryResult,
  JoinLeaveHandler,
  JoinLeaveScope,
  Publication,
  PublicationHandler,
  PublishOptions,
  PublishResult,
} from './broker';
import { historyMetaTtlSeconds, resolvePublishOptions } from './defaults';
import { newEpoch } from './epoch';
import { selectOffsets } from './history_range';
import { PublicationRing } from './publication_ring';

export interface MemoryBrokerOptions {
  /**
   * This node's id. A MemoryBroker is a whole cluster of one node (one process): with an id it receives control
   * messages sent to every node or to this id, and a message to any other id reaches nobody. Without one it
   * receives no control messages, as a Redis broker without a node id.
   */
  node?: string;
  /**
   * How often expired channels and idempotency keys (and the entries of the engine's presence, see createPresence)
   * are dropped; default 10 s. Reads expire lazily as well.
   */
  sweepIntervalMs?: number;
  /** Receives errors thrown by the handlers; without it they are rethrown (and crash loudly). */
  onError?: (err: Error) => void;
}

/** The same lifetimes as the Redis keys: meta (epoch, top) and history expire separately. */
interface ChannelState {
  epoch: string;
  top: number;
  metaExpiresAt: number;
  /** Absent when the channel has no history: never published with one, expired, or removed. */
  history?: PublicationRing;
  historyExpiresAt: number;
}

interface IdempotentResult {
  offset: number;
  epoch: string;
  expiresAt: number;
}

export class MemoryBroker implements Broker {
  readonly kind = 'memory' as const;
  private readonly channels = new Map<string, ChannelState>();
  private readonly idempotency = new Map<string, IdempotentResult>();
  private readonly subscribed = new Set<string>();
  private handler: PublicationHandler | undefined;
  private joinLeaveHandler: JoinLeaveHandler | undefined;
  private controlHandler: ControlHandler | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /** The engine's presence on this broker sweeps as often (see createPresence). */
  readonly sweepIntervalMs: number;

  constructor(private readonly options: MemoryBrokerOptions = {}) {
    this.sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
  }

  async start(): Promise<void> {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(Date.now()), this.sweepIntervalMs);
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.subscribed.clear();
    this.handler = undefined;
    this.joinLeaveHandler = undefined;
    this.controlHandler = undefined;
  }

  isReady(): boolean {
    return true;
  }

  onPublication(handler: PublicationHandler): void {
    this.handler = handler;
  }

  onResubscribed(): void {
    // Nothing to lose: there is no connection.
  }

  async publish(channel: string, body: string, opts: PublishOptions): Promise<PublishResult> {
    const o = resolvePublishOptions(opts);
    const now = Date.now();
    // The length prefix keeps (channel, key) pairs apart whatever characters either holds.
    const idemKey = o.idempotencyKey === '' ? '' : `${channel.length}:${channel}${o.idempotencyKey}`;
    if (idemKey !== '') {
      const seen = this.idempotency.get(idemKey);
      if (seen && seen.expiresAt > now) return { offset: seen.offset, epoch: seen.epoch, duplicate: true };
    }

    const state = this.channelState(channel, now, o.metaTtlSeconds);
    let offset = 0;
    if (o.historySize > 0) {
      offset = ++state.top;
      if (state.history) state.history.resize(o.historySize);
      else state.history = new PublicationRing(o.historySize);
      state.historyExpiresAt = now + o.historyTtlSeconds * 1000;
    }
    state.metaExpiresAt = now + o.metaTtlSeconds * 1000;
    const pub: Publication = { offset, json: encodePublication(offset, body) };
    // One without an offset (no history, or the server API's skip_history) is delivered, never stored: history
    // reads index the ring by offset.
    if (offset > 0) state.history?.push(pub);
    if (idemKey !== '') {
      this.idempotency.set(idemKey, { offset, epoch: state.epoch, expiresAt: now + o.idempotencyTtlSeconds * 1000 });
    }
    if (this.subscribed.has(channel)) this.deliverPublication(channel, pub, state.epoch);
    return { offset, epoch: state.epoch, duplicate: false };
  }

  async subscribe(channels: string[]): Promise<void> {
    for (const channel of channels) this.subscribed.add(channel);
  }

  async unsubscribe(channels: string[]): Promise<void> {
    for (const channel of channels) this.subscribed.delete(channel);
  }

  async history(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const state = this.channelState(channel, Date.now(), historyMetaTtlSeconds(opts.metaTtlSeconds));
    if (opts.seen && opts.seen.epoch === state.epoch && opts.seen.offset > state.top) state.epoch = newEpoch();
    const result: HistoryResult = { offset: state.top, epoch: state.epoch, publications: [] };
    const ring = state.history;
    if (!ring || ring.size === 0) return result;
    const first = ring.at(0).offset;
    const range = selectOffsets(first, state.top, opts);
    for (let i = 0, offset = range.from; i < range.count; i++, offset += range.step) {
      result.publications.push(ring.at(offset - first));
    }
    return result;
  }

  async removeHistory(channel: string): Promise<void> {
    const state = this.channels.get(channel);
    if (state) state.history = undefined;
  }

  onJoinLeave(handler: JoinLeaveHandler): void {
    this.joinLeaveHandler = handler;
  }

  async publishJoinLeave(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope = 'client'): Promise<void> {
    this.deliverJoinLeave(channel, kind, info, scope);
  }

  onControl(handler: ControlHandler): void {
    this.controlHandler = handler;
  }

  /** This process is the only node: a message reaches it when broadcast or addressed to its id, else nobody. */
  async publishControl(message: string, toNode?: string): Promise<void> {
    const node = this.options.node;
    if (node === undefined || (toNode !== undefined && toNode !== node)) return;
    this.later(() => this.controlHandler?.(message));
  }

  /** The live state of a channel, created (new epoch) when absent or expired; drops expired history. */
  private channelState(channel: string, now: number, metaTtlSeconds: number): ChannelState {
    let state = this.channels.get(channel);
    if (state && state.metaExpiresAt <= now) state = undefined;
    if (!state) {
      state = { epoch: newEpoch(), top: 0, metaExpiresAt: now + metaTtlSeconds * 1000, historyExpiresAt: 0 };
      this.channels.set(channel, state);
    } else if (state.history && state.historyExpiresAt <= now) {
      state.history = undefined;
    }
    return state;
  }

  /** publishJoinLeave, synchronously: the engine's presence (presence_memory.ts) announces through it. */
  deliverJoinLeave(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope): void {
    if (!this.subscribed.has(channel)) return;
    // Queued like publications, so both keep the order they were sent in.
    this.later(() => {
      if (this.subscribed.has(channel)) this.joinLeaveHandler?.(channel, kind, info, scope);
    });
  }

  private deliverPublication(channel: string, pub: Publication, epoch: string): void {
    this.later(() => {
      if (this.subscribed.has(channel)) this.handler?.(channel, pub, epoch);
    });
  }

  // Never synchronously inside publish: the Redis engine cannot either, and callers must not depend on it.
  private later(deliver: () => void): void {
    queueMicrotask(() => {
      try {
        deliver();
      } catch (err) {
        if (!this.options.onError) throw err;
        this.options.onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Drops what expired so dead channels do not hold memory until someone reads them again. */
  private sweep(now: number): void {
    for (const [channel, state] of this.channels) {
      if (state.metaExpiresAt <= now) this.channels.delete(channel);
      else if (state.history && state.historyExpiresAt <= now) state.history = undefined;
    }
    for (const [key, seen] of this.idempotency) {
      if (seen.expiresAt <= now) this.idempotency.delete(key);
    }
  }
}
