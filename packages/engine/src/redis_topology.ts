// Where the Redis broker sends a channel's commands and subscriptions: client-side shards, or a Redis Cluster.
import type { ChannelCommands } from './redis_scripts';
import { RedisShard } from './redis_shard';
import { controlChannel, nodeChannel, shardOf } from './redis_keys';
import { parseShardAddress } from './redis_url';

/** What a topology reports to the broker. */
export interface TopologyEvents {
  message(channel: string, payload: string): void;
  control(payload: string): void;
  /**
   * Every subscription is in place again after a loss (a reconnect, a failover, a moved slot); `movedSlots`
   * counts the cluster slots whose channels are now subscribed on another node than before (0 off a cluster).
   */
  restored(movedSlots: number): void;
  error(err: Error): void;
}

/** A channel's command connection, and how its failures read. */
export interface ChannelConnection {
  /** Throws BrokerUnavailableError at once while the connection is down. */
  commands(): ChannelCommands;
  /** A failed command as the broker's callers see it: BrokerUnavailableError unless Redis itself answered. */
  commandError(err: unknown): Error;
}

export interface RedisTopology {
  /** `publish` on classic pub/sub, `spublish` on Redis Cluster (a publication reaches only its slot's nodes). */
  readonly publishCommand: 'publish' | 'spublish';
  /** Connects; with `node`, also subscribes the control channels for every node and for this one. */
  start(node: string | undefined): Promise<void>;
  close(): Promise<void>;
  isReady(): boolean;
  connectionFor(channel: string): ChannelConnection;
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  /** PUBLISHes a control message on `<prefix>:control`, or on one node's channel. */
  publishControl(message: string, toNode: string | undefined, orderKey?: string): Promise<void>;
}

/** Client-side shards: a channel lives on shard `fnv1a(channel) % n`; control messages on shard 0. */
export class ShardsTopology implements RedisTopology {
  readonly publishCommand = 'publish' as const;
  private readonly shards: RedisShard[];
  /** A shard restored its subscriptions; tell the broker once every shard is ready. */
  private restoredPending = false;
  private started = false;

  constructor(
    urls: string[],
    private readonly prefix: string,
    private readonly connectTimeoutMs: number,
    private readonly events: TopologyEvents,
  ) {
    if (urls.length === 0) throw new Error('RedisBroker needs at least one Redis URL');
    this.shards = urls.map(
      (url) =>
        new RedisShard(parseShardAddress(url), prefix, connectTimeoutMs, {
          message: (channel, payload) => events.message(channel, payload),
          control: (payload) => events.control(payload),
          restored: () => {
            this.restoredPending = true;
            this.notifyIfRestored();
          },
          commandReady: () => this.notifyIfRestored(),
          error: (err) => events.error(err),
        }),
    );
  }

  async start(node: string | undefined): Promise<void> {
    const results = await Promise.allSettled(this.shards.map((shard) => shard.connect(this.connectTimeoutMs)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (failed) throw failed.reason;
      // Control messages are not about any channel, so no hash picks their shard: shard 0 is the one every
      // node agrees on, as they must list the shards in one order anyway.
      if (node !== undefined) await this.shards[0].subscriber.subscribeFixed([controlChannel(this.prefix), nodeChannel(this.prefix, node)]);
    } catch (err) {
      await Promise.all(this.shards.map((shard) => shard.close()));
      throw err;
    }
    this.started = true;
  }

  async close(): Promise<void> {
    this.started = false;
    await Promise.all(this.shards.map((shard) => shard.close()));
  }

  isReady(): boolean {
    return this.started && this.shards.every((shard) => shard.isReady());
  }

  connectionFor(channel: string): ChannelConnection {
    return this.shards[shardOf(channel, this.shards.length)];
  }

  subscribe(channels: string[]): Promise<void> {
    return this.perShard(channels, (shard, part) => shard.subscriber.subscribe(part));
  }

  unsubscribe(channels: string[]): Promise<void> {
    return this.perShard(channels, (shard, part) => shard.subscriber.unsubscribe(part));
  }

  async publishControl(message: string, toNode: string | undefined): Promise<void> {
    const shard = this.shards[0];
    const target = toNode === undefined ? controlChannel(this.prefix) : nodeChannel(this.prefix, toNode);
    try {
      await shard.commands().publish(target, message);
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  private async perShard(channels: string[], run: (shard: RedisShard, part: string[]) => Promise<void>): Promise<void> {
    if (this.shards.length === 1) return run(this.shards[0], channels);
    const parts = new Map<RedisShard, string[]>();
    for (const channel of channels) {
      const shard = this.shards[shardOf(channel, this.shards.length)];
      const part = parts.get(shard);
      if (part) part.push(channel);
      else parts.set(shard, [channel]);
    }
    await Promise.all([...parts].map(([shard, part]) => run(shard, part)));
  }

  private notifyIfRestored(): void {
    if (!this.restoredPending || !this.isReady()) return;
    this.restoredPending = false;
    this.events.restored(0);
  }
}
