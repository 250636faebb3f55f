// RedisBroker: the cluster engine — channels spread over client-side shards, history and publish in Lua scripts.
import type {
  Broker,
  HistoryOptions,
  HistoryResult,
  Publication,
  PublicationHandler,
  PublishOptions,
  PublishResult,
} from './broker';
import { historyMetaTtlSeconds, resolvePublishOptions } from './defaults';
import { newEpoch } from './epoch';
import { DEFAULT_PREFIX, channelKeys, idempotencyKey, shardOf } from './redis_keys';
import { RedisShard } from './redis_shard';

export { redisPubSubChannel } from './redis_keys';

export interface RedisBrokerOptions {
  /** One URL per shard; a channel lives on shard `fnv1a(channel) % urls.length`, so keep the order stable. */
  urls: string[];
  /** Prefix of every key and pub/sub channel; default 'sb'. */
  prefix?: string;
  /**
   * Connection losses (once per outage), malformed pub/sub messages and errors thrown by the publication
   * handler. Without it nothing is logged, and handler errors are rethrown asynchronously.
   */
  onError?: (err: Error) => void;
  /** How long `start()` waits for every shard; default 5000 ms. */
  connectTimeoutMs?: number;
}

export class RedisBroker implements Broker {
  readonly kind = 'redis' as const;
  private readonly shards: RedisShard[];
  private readonly prefix: string;
  private readonly connectTimeoutMs: number;
  private handler: PublicationHandler | undefined;
  private resubscribedHandler: (() => void) | undefined;
  /** A shard restored its subscriptions; tell the caller once every shard is ready. */
  private restoredPending = false;
  private started = false;

  constructor(private readonly options: RedisBrokerOptions) {
    if (options.urls.length === 0) throw new Error('RedisBroker needs at least one Redis URL');
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.shards = options.urls.map(
      (url) =>
        new RedisShard(url, this.prefix, this.connectTimeoutMs, {
          message: (channel, payload) => this.receive(channel, payload),
          restored: () => {
            this.restoredPending = true;
            this.notifyIfRestored();
          },
          commandReady: () => this.notifyIfRestored(),
          error: (err) => this.reportError(err),
        }),
    );
  }

  async start(): Promise<void> {
    const results = await Promise.allSettled(this.shards.map((shard) => shard.connect(this.connectTimeoutMs)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(this.shards.map((shard) => shard.close()));
      throw failed.reason;
    }
    this.started = true;
  }

  async close(): Promise<void> {
    this.started = false;
    this.handler = undefined;
    this.resubscribedHandler = undefined;
    await Promise.all(this.shards.map((shard) => shard.close()));
  }

  isReady(): boolean {
    return this.started && this.shards.every((shard) => shard.isReady());
  }

  onPublication(handler: PublicationHandler): void {
    this.handler = handler;
  }

  onResubscribed(handler: () => void): void {
    this.resubscribedHandler = handler;
  }

  async publish(channel: string, body: string, opts: PublishOptions): Promise<PublishResult> {
    const o = resolvePublishOptions(opts);
    const shard = this.shardFor(channel);
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
        );
      return { offset, epoch, duplicate: duplicate === 1 };
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  subscribe(channels: string[]): Promise<void> {
    return this.perShard(channels, (shard, part) => shard.subscriber.subscribe(part));
  }

  unsubscribe(channels: string[]): Promise<void> {
    return this.perShard(channels, (shard, part) => shard.subscriber.unsubscribe(part));
  }

  /** `since.epoch` is not compared here: the result carries the current epoch and the caller decides. */
  async history(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const shard = this.shardFor(channel);
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
    const shard = this.shardFor(channel);
    try {
      await shard.commands().del(channelKeys(channel, this.prefix).history);
    } catch (err) {
      throw shard.commandError(err);
    }
  }

  private shardFor(channel: string): RedisShard {
    return this.shards[shardOf(channel, this.shards.length)];
  }

  private async perShard(channels: string[], run: (shard: RedisShard, part: string[]) => Promise<void>): Promise<void> {
    if (this.shards.length === 1) return run(this.shards[0], channels);
    const parts = new Map<RedisShard, string[]>();
    for (const channel of channels) {
      const shard = this.shardFor(channel);
      const part = parts.get(shard);
      if (part) part.push(channel);
      else parts.set(shard, [channel]);
    }
    await Promise.all([...parts].map(([shard, part]) => run(shard, part)));
  }

  // Hot path: `<offset> <epoch> <json>` split on the first two spaces; the publication JSON is passed on untouched.
  private receive(channel: string, payload: string): void {
    const first = payload.indexOf(' ');
    const second = first === -1 ? -1 : payload.indexOf(' ', first + 1);
    if (second === -1) {
      this.reportError(new Error(`redis: malformed message on channel ${JSON.stringify(channel)} (another publisher on prefix ${this.prefix}?)`));
      return;
    }
    const offset = Number(payload.slice(0, first));
    const epoch = payload.slice(first + 1, second);
    if (!this.handler) return;
    try {
      this.handler(channel, { offset, json: payload.slice(second + 1) }, epoch);
    } catch (err) {
      // Thrown back into ioredis it would break the reply parser of the connection: report it, or rethrow
      // outside ioredis's call stack so a bug stays loud without a logger.
      const error = err instanceof Error ? err : new Error(String(err));
      if (this.options.onError) this.options.onError(error);
      else
        queueMicrotask(() => {
          throw error;
        });
    }
  }

  private notifyIfRestored(): void {
    if (!this.restoredPending || !this.isReady()) return;
    this.restoredPending = false;
    this.resubscribedHandler?.();
  }

  private reportError(err: Error): void {
    this.options.onError?.(err);
  }
}
