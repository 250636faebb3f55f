// RedisBroker: the Redis engine — history and publish in Lua scripts, on client-side shards or a Redis Cluster.
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
import { DEFAULT_PREFIX, channelKeys, idempotencyKey, redisPubSubChannel } from './redis_keys';
import { ShardsTopology, type ChannelConnection, type RedisTopology, type TopologyEvents } from './redis_topology';
import { ClusterTopology } from './redis_cluster_topology';
import type { ClusterAddress } from './redis_url';

/**
 * Join and leave share the channel's pub/sub with publications (`<offset> <epoch> <json>`, a digit first): a
 * letter for the kind and scope (the presence script writes them too, lua/presence_update.lua), a space, the info.
 */
const JOIN_LEAVE_PREFIX: Readonly<Record<'join' | 'leave', Readonly<Record<JoinLeaveScope, string>>>> = {
  join: { client: 'j ', user: 'J ', 'user-only': 'a ' },
  leave: { client: 'l ', user: 'L ', 'user-only': 'r ' },
};
/** Character code → [kind, scope] of a join/leave message. */
const JOIN_LEAVE_OF = new Map<number, ['join' | 'leave', JoinLeaveScope]>();
for (const kind of ['join', 'leave'] as const) {
  for (const [scope, prefix] of Object.entries(JOIN_LEAVE_PREFIX[kind])) JOIN_LEAVE_OF.set(prefix.charCodeAt(0), [kind, scope as JoinLeaveScope]);
}
const CHAR_SPACE = 32;
const CHAR_0 = 48;
const CHAR_9 = 57;

export { redisPubSubChannel } from './redis_keys';

export interface RedisBrokerOptions {
  /**
   * One URL per shard (`redis://`, `rediss://`, or `redis+sentinel://` for a primary Sentinel names); a channel
   * lives on shard `fnv1a(channel) % urls.length`, so keep the order stable.
   */
  urls: string[];
  /** A Redis Cluster instead of `urls`: channels live on their slot's primary, publications use sharded pub/sub. */
  cluster?: ClusterAddress;
  /** Prefix of every key and pub/sub channel; default 'sb'. */
  prefix?: string;
  /**
   * This node's id: control messages to every node and to this id are delivered to it. Without one, no control
   * channel is subscribed (the broker can still send control messages).
   */
  node?: string;
  /**
   * Connection losses (once per outage), malformed pub/sub messages and errors thrown by the publication,
   * join/leave and control handlers. Without it nothing is logged, and handler errors are rethrown asynchronously.
   */
  onError?: (err: Error) => void;
  /** How long `start()` waits for every shard; default 5000 ms. */
  connectTimeoutMs?: number;
}

export class RedisBroker implements Broker {
  readonly kind = 'redis' as const;
  private readonly topology: RedisTopology;
  private readonly prefix: string;
  private handler: PublicationHandler | undefined;
  private joinLeaveHandler: JoinLeaveHandler | undefined;
  private controlHandler: ControlHandler | undefined;
  private resubscribedHandler: ((movedSlots: number) => void) | undefined;
  private started = false;

  constructor(private readonly options: RedisBrokerOptions) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const events: TopologyEvents = {
      message: (channel, payload) => this.receive(channel, payload),
      control: (payload) => this.receiveControl(payload),
      restored: (movedSlots) => this.resubscribedHandler?.(movedSlots),
      error: (err) => this.reportError(err),
    };
    this.topology = options.cluster
      ? new ClusterTopology(options.cluster, this.prefix, connectTimeoutMs, events)
      : new ShardsTopology(options.urls, this.prefix, connectTimeoutMs, events);
  }

  async start(): Promise<void> {
    await this.topology.start(this.options.node);
    this.started = true;
  }

  async close(): Promise<void> {
    this.started = false;
    this.handler = undefined;
    this.joinLeaveHandler = undefined;
    this.controlHandler = undefined;
    this.resubscribedHandler = undefined;
    await this.topology.close();
  }

  isReady(): boolean {
    return this.started && this.topology.isReady();
  }

  /** The prefix of every key and pub/sub channel, for the engine's other Redis parts (presence, occupancy, outboxes). */
  get keyPrefix(): string {
    return this.prefix;
  }

  /** The command connection of a channel (or of a pseudo-channel, see OCCUPANCY_INDEX), for the same parts. */
  connectionFor(channel: string): ChannelConnection {
    return this.topology.connectionFor(channel);
  }

  /** `publish`, or `spublish` on Redis Cluster. */
  get publishCommand(): 'publish' | 'spublish' {
    return this.topology.publishCommand;
  }

  onPublication(handler: PublicationHandler): void {
    this.handler = handler;
  }

  onResubscribed(handler: (movedSlots: number) => void): void {
    this.resubscribedHandler = handler;
  }

  async publish(channel: string, body: string, opts: PublishOptions): Promise<PublishResult> {
    const o = resolvePublishOptions(opts);
    const shard = this.topology.connectionFor(channel);
    const keys = channelKeys(channel, this.prefix);
    try {
      const [offset, epoch, duplicate] = await shard
        .commands()
        .sbPublish(
          keys.meta,
          keys.history,
          idempotencyKey(channel, this.prefix, o.idempotencyKey),
          body,
          o.historySize,
          o.historyTtlSeconds,
          o.metaTtlSeconds,
          newEpoch(),
          keys.pubsub,
          o.idempotencyKey === '' ? 0 : o.idempotencyTtlSeconds,
          this.topology.publishCommand,
        );
      return { offset, epoch, duplicate: duplicate === 1 };
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  subscribe(channels: string[]): Promise<void> {
    return this.topology.subscribe(channels);
  }

  unsubscribe(channels: string[]): Promise<void> {
    return this.topology.unsubscribe(channels);
  }

  /** `since.epoch` is not compared here: the result carries the current epoch and the caller decides. */
  async history(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const shard = this.topology.connectionFor(channel);
    const keys = channelKeys(channel, this.prefix);
    try {
      const [offset, epoch, entries] = await shard
        .commands()
        .sbHistory(
          keys.meta,
          keys.history,
          newEpoch(),
          historyMetaTtlSeconds(opts.metaTtlSeconds),
          opts.limit,
          opts.since ? opts.since.offset : '',
          opts.reverse ? '1' : '0',
          opts.seen ? opts.seen.epoch : '',
          opts.seen ? opts.seen.offset : 0,
        );
      const publications: Publication[] = new Array(entries.length);
      // Entry ids are `<offset>-0`: parseInt stops at the dash. Fields are ['d', json].
      for (let i = 0; i < entries.length; i++) {
        publications[i] = { offset: parseInt(entries[i][0], 10), json: entries[i][1][1] };
      }
      return { offset, epoch, publications };
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  async removeHistory(channel: string): Promise<void> {
    const shard = this.topology.connectionFor(channel);
    try {
      await shard.commands().del(channelKeys(channel, this.prefix).history);
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  onJoinLeave(handler: JoinLeaveHandler): void {
    this.joinLeaveHandler = handler;
  }

  /**
   * PUBLISHes `j <info>` or `l <info>` on the channel's pub/sub, nothing stored. The same command connection
   * carries the channel's publish scripts, so both reach subscribers in the order they were sent.
   */
  async publishJoinLeave(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope = 'client'): Promise<void> {
    const shard = this.topology.connectionFor(channel);
    try {
      const message = JOIN_LEAVE_PREFIX[kind][scope] + info;
      const pubsub = redisPubSubChannel(channel, this.prefix);
      const commands = shard.commands();
      await (this.topology.publishCommand === 'spublish' ? commands.spublish(pubsub, message) : commands.publish(pubsub, message));
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  onControl(handler: ControlHandler): void {
    this.controlHandler = handler;
  }

  /** `<prefix>:control` reaches every node, `<prefix>:node:<id>` one. */
  publishControl(message: string, toNode?: string, orderKey?: string): Promise<void> {
    return this.topology.publishControl(message, toNode, orderKey);
  }

  /**
   * Hot path: the first character tells a publication (a digit) from a join or leave (a letter and a space).
   * `<offset> <epoch> <json>` is split on the first two spaces; the publication JSON is passed on untouched.
   */
  private receive(channel: string, payload: string): void {
    const c = payload.charCodeAt(0);
    if (c >= CHAR_0 && c <= CHAR_9) {
      const first = payload.indexOf(' ');
      const second = first === -1 ? -1 : payload.indexOf(' ', first + 1);
      if (second !== -1) {
        if (!this.handler) return;
        const offset = Number(payload.slice(0, first));
        const epoch = payload.slice(first + 1, second);
        try {
          this.handler(channel, { offset, json: payload.slice(second + 1) }, epoch);
        } catch (err) {
          this.handlerFailed(err);
        }
        return;
      }
    } else if (payload.charCodeAt(1) === CHAR_SPACE && JOIN_LEAVE_OF.has(c)) {
      if (!this.joinLeaveHandler) return;
      const [kind, scope] = JOIN_LEAVE_OF.get(c) as ['join' | 'leave', JoinLeaveScope];
      try {
        this.joinLeaveHandler(channel, kind, payload.slice(2), scope);
      } catch (err) {
        this.handlerFailed(err);
      }
      return;
    }
    this.reportError(new Error(`redis: malformed message on channel ${JSON.stringify(channel)} (another publisher on prefix ${this.prefix}?)`));
  }

  private receiveControl(payload: string): void {
    if (!this.controlHandler) return;
    try {
      this.controlHandler(payload);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  /**
   * Thrown back into ioredis a handler's error would break the reply parser of the connection: report it, or
   * rethrow outside ioredis's call stack so a bug stays loud without a logger.
   */
  private handlerFailed(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.options.onError) this.options.onError(error);
    else
      queueMicrotask(() => {
        throw error;
      });
  }

  private reportError(err: Error): void {
    this.options.onError?.(err);
  }
}
