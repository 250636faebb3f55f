// The Broker interface: publish with history (epoch + offset), read history, subscribe to channels.
import type { StreamPosition } from '@switchboard/protocol';

/** A publication as stored and delivered: its offset and its whole encoded JSON object. */
export interface Publication {
  /** Position in the channel; 0 when the channel keeps no history. */
  offset: number;
  /** The encoded publication object (`{"offset":N,"data":…,"info":…}`), sent to clients as is. */
  json: string;
}

export interface PublishOptions {
  /** Publications kept in history; 0 keeps none (no offset is assigned then). */
  historySize: number;
  /** Seconds the history lives after the last publication. */
  historyTtlSeconds: number;
  /** When set, a second publish with the same key within `idempotencyTtlSeconds` publishes nothing and returns the first result. */
  idempotencyKey?: string;
  idempotencyTtlSeconds?: number;
  /** Seconds the channel's meta (epoch, top offset) lives after this publication; default 30 days, never less than `historyTtlSeconds`. */
  metaTtlSeconds?: number;
}

export interface PublishResult extends StreamPosition {
  /** True when the idempotency key had been used: nothing was published this time. */
  duplicate: boolean;
}

export interface HistoryOptions {
  /** Most publications to return: 0 returns only the position, a negative number means no limit. */
  limit: number;
  /**
   * Return only publications after this offset (forward), or before it when `reverse`. Only the offset is used:
   * when `since.epoch` differs from the channel's epoch the result still carries the current epoch, and the
   * caller decides (a recovering subscriber gets `recovered: false`).
   */
  since?: StreamPosition;
  reverse?: boolean;
  /** Seconds the channel's meta (epoch, top offset) lives; it is created on first read too. */
  metaTtlSeconds?: number;
  /**
   * A position the caller saw on this channel. When the channel is still in that epoch but its top is below the
   * offset, the backend lost acknowledged publications (a failover before replication caught up): offsets would
   * be reused for other publications. The channel then gets a new epoch, atomically and once, so every position
   * of the old epoch is refused as unrecoverable instead of silently skipping what was published since.
   */
  seen?: StreamPosition;
}

export interface HistoryResult extends StreamPosition {
  publications: Publication[];
}

/** Called for each publication on a channel this process subscribed to. */
export type PublicationHandler = (channel: string, pub: Publication, epoch: string) => void;

/**
 * What a join or leave is about. Centrifugo announces connections, Pusher announces users (a user connected twice
 * is one member), so one message says both:
 * - 'client': one connection joined or left; its user had (or keeps) another connection on the channel;
 * - 'user': one connection joined or left, and it was its user's first (or last) on the channel, cluster-wide: the
 *   user joined or left with it;
 * - 'user-only': the user joined or left, with no connection's join or leave to announce (a connection counted as
 *   its user's first went away before its join was announced while the user stays, or the reverse).
 */
export type JoinLeaveScope = 'client' | 'user' | 'user-only';

/** Called for each join or leave on a channel this process subscribed to; `info` is an encoded ClientInfo. */
export type JoinLeaveHandler = (channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope) => void;

/** Called for each control message sent to every node or to this node. */
export type ControlHandler = (message: string) => void;

export interface Broker {
  readonly kind: 'memory' | 'redis';
  /** Connects; rejects with a clear message when the backend is unreachable. */
  start(): Promise<void>;
  close(): Promise<void>;
  /** Backend reachable and every subscription in place. */
  isReady(): boolean;
  /** Sets the single receiver of publications for subscribed channels. */
  onPublication(handler: PublicationHandler): void;
  /**
   * Called after a lost backend connection came back and all subscriptions were restored; `movedSlots` counts
   * Redis Cluster slots whose channels are now subscribed on another node (0 elsewhere).
   */
  onResubscribed(handler: (movedSlots: number) => void): void;

  /** Publishes atomically: next offset, append to history, deliver to subscribers. */
  publish(channel: string, body: string, opts: PublishOptions): Promise<PublishResult>;
  /** Starts delivery of these channels to this process; batched, resolves when in place. */
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  history(channel: string, opts: HistoryOptions): Promise<HistoryResult>;
  removeHistory(channel: string): Promise<void>;

  /** Sets the single receiver of join/leave messages for subscribed channels, those the engine's Presence sends too. */
  onJoinLeave(handler: JoinLeaveHandler): void;
  /** Delivers a join or leave to the channel's subscribers on every node, like a publication but not stored. */
  publishJoinLeave(channel: string, kind: 'join' | 'leave', info: string, scope?: JoinLeaveScope): Promise<void>;

  /** Sets the single receiver of control messages (those to every node, and those to this node). */
  onControl(handler: ControlHandler): void;
  /**
   * Sends a control message to every node, or to the node with this id. Messages with the same `orderKey` (a user
   * id) arrive in the order sent; on Redis Cluster the key also spreads them over the shards.
   */
  publishControl(message: string, toNode?: string, orderKey?: string): Promise<void>;
}
