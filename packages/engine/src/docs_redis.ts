// RedisDocStore: the gateway side of documents — reads them from Redis, queues updates for the versioning workers.
//
// An update is XADDed to its partition's request stream and answered by whichever worker owns the partition,
// over this node's reply channel. The updates of one event-loop turn for one partition go as one stream entry
// (a batch, up to MAX_BATCH_REQUESTS or MAX_BATCH_BYTES), with one timer for the batch. No answer within the
// timeout is a DocUnavailableError: the outcome is then unknown, and a retry with the same idempotency key gets
// the first outcome if there was one.
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { closeConnection, clusterConnection, redisConnection } from './redis_connection';
import { parseShardAddress, type ClusterAddress } from './redis_url';
import { DEFAULT_META_TTL_SECONDS } from './defaults';
import { DocError, type DocUpdate } from '@switchboard/protocol';
import { DocUnavailableError, type DocChannelOptions, type DocResult, type DocState, type DocStore } from './docs';
import { withDocScripts, type DocScriptedRedis } from './docs_scripts';
import {
  DEFAULT_DOC_PARTITIONS,
  decodeDocReplies,
  docHistorySize,
  docHistoryTtlSeconds,
  docKeys,
  docPartitionOf,
  docReplyChannel,
  docRequestStream,
  encodeDocRequestBatch,
  encodeDocUpdate,
  type DocRequestBatch,
  partitionShard,
} from './docs_wire';
import { newEpoch } from './epoch';
import { clusterDocReplyChannel, DEFAULT_PREFIX, shardOf } from './redis_keys';
import { ClusterTopology } from './redis_cluster_topology';

export interface RedisDocStoreOptions {
  /** The same shard URLs, in the same order, as the broker and the workers. */
  urls: string[];
  /** A Redis Cluster instead of `urls`: every key is routed by its slot, replies come over classic pub/sub. */
  cluster?: ClusterAddress;
  /** This node's id; replies come on `<prefix>:docs:reply:<node>`, so it must be unique among live gateways. */
  node: string;
  prefix?: string;
  /** Request partitions; must equal the workers'. Default 16. */
  partitions?: number;
  /** How long an update waits for its worker's answer; default 5000 ms. */
  timeoutMs?: number;
  /** How long `start()` waits for every shard; default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Request streams are trimmed to about this many entries. Entries are kept after they are answered (the
   * workers never delete), so this bounds their memory; it must exceed any backlog worth keeping. Default 10000.
   */
  maxStreamLength?: number;
  /** Connection losses and replies that cannot be parsed. */
  onError?: (err: Error) => void;
}

/** Requests in one batch entry at most; a turn with more for one partition writes several entries. */
const MAX_BATCH_REQUESTS = 128;
/** Encoded updates in one batch entry at most (a single larger update still goes, alone). */
const MAX_BATCH_BYTES = 256 * 1024;

interface Waiting {
  resolve(result: DocResult): void;
  reject(err: Error): void;
  sent: SentBatch;
}

/** The timer of a batch's requests, cleared when the last of them is settled. */
interface SentBatch {
  timer: NodeJS.Timeout | undefined;
  unsettled: number;
}

/** A partition's requests of this turn, not written yet. */
interface QueuedBatch {
  conn: DocScriptedRedis;
  stream: string;
  batch: DocRequestBatch;
  sent: SentBatch;
  bytes: number;
}

export class RedisDocStore implements DocStore {
  private readonly commands: DocScriptedRedis[];
  /** Replies on a classic channel of shard 0; undefined on a cluster. */
  private readonly subscriber: Redis | undefined;
  /** On a cluster: the sharded reply channel, placed on its slot's primary and followed through moves. */
  private readonly sharded: ClusterTopology | undefined;
  private readonly prefix: string;
  private readonly partitions: number;
  private readonly timeoutMs: number;
  private readonly replyChannel: string;
  private readonly waiting = new Map<string, Waiting>();
  /** Per partition, the batch this turn is filling; written by flush() at the end of the turn. */
  private readonly queued = new Map<number, QueuedBatch>();
  private flushScheduled = false;
  /** Request ids are `<boot id>.<counter>`: unique across restarts of a node that keeps its id. */
  private readonly bootId = randomBytes(6).toString('base64url');
  private counter = 0;
  private started = false;

  constructor(private readonly options: RedisDocStoreOptions) {
    if (options.urls.length === 0 && !options.cluster) throw new Error('RedisDocStore needs at least one Redis URL');
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.partitions = options.partitions ?? DEFAULT_DOC_PARTITIONS;
    if (!Number.isSafeInteger(this.partitions) || this.partitions < 1) throw new Error(`partitions must be a positive integer, got ${this.partitions}`);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.replyChannel = docReplyChannel(this.prefix, options.node, options.cluster !== undefined);
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const commands = { name: 'switchboard-docs', autoPipelining: true, connectTimeoutMs };
    const replies = { name: 'switchboard-docs-replies', autoResubscribe: true, connectTimeoutMs };
    if (options.cluster) {
      // The Cluster client answers every command this store sends, routed by key (one "shard" holds them all).
      // Not auto-pipelined on a cluster (see the worker's connections): each request is awaited on its own.
      this.commands = [withDocScripts(clusterConnection(options.cluster, { ...commands, autoPipelining: false }) as unknown as Redis)];
      // Replies are SPUBLISHed to a channel of this node: only the primary of its slot carries them.
      this.sharded = new ClusterTopology(options.cluster, this.prefix, connectTimeoutMs, {
        message: () => undefined,
        // The reply channel is one of the topology's internal (control-marked) channels.
        control: (payload) => this.receive(payload),
        restored: () => undefined,
        error: (err) => this.report(new Error(`document replies: ${err.message}`)),
      });
    } else {
      const shards = options.urls.map(parseShardAddress);
      // Requests issued in one tick (many callers' XADDs) leave in one write.
      this.commands = shards.map((shard) => withDocScripts(redisConnection(shard, commands)));
      // Replies always come on shard 0, like control messages.
      this.subscriber = redisConnection(shards[0], replies);
      this.subscriber.on('message', (_channel: string, payload: string) => this.receive(payload));
    }
    for (const conn of this.connections()) this.watchErrors(conn);
  }

  private connections(): Redis[] {
    return this.subscriber ? [...this.commands, this.subscriber] : this.commands;
  }

  /** Connects every shard and subscribes to this node's reply channel; rejects naming the failure. */
  async start(): Promise<void> {
    const timeoutMs = this.options.connectTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${timeoutMs} ms`)), timeoutMs);
    });
    const connected = (async () => {
      await Promise.all(this.connections().map((conn) => conn.connect()));
      if (this.subscriber) await this.subscriber.subscribe(this.replyChannel);
      if (this.sharded) {
        await this.sharded.start(undefined);
        await this.sharded.subscribe([clusterDocReplyChannel(this.options.node)]);
      }
    })();
    connected.catch(() => undefined); // the timeout may win the race
    try {
      await Promise.race([connected, timeout]);
      this.started = true;
    } catch (err) {
      this.disconnect();
      throw new Error(`document store cannot connect to Redis: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every connection up and the reply channel subscribed. */
  isReady(): boolean {
    const replies = this.sharded ? this.sharded.isReady() : this.subscriber?.status === 'ready';
    return this.started && replies && this.commands.every((c) => c.status === 'ready');
  }

  async get(channel: string): Promise<DocState> {
    const conn = this.ready(this.commands[shardOf(channel, this.commands.length)]);
    const keys = docKeys(channel, this.prefix);
    try {
      // The third key is unused here but must share the channel's hash tag.
      const [version, epoch, state] = await conn.sbDocGet(keys.doc, keys.meta, keys.doc, newEpoch(), DEFAULT_META_TTL_SECONDS, '0');
      return { version, epoch, state: state ?? '{}' };
    } catch (err) {
      throw unavailable(err);
    }
  }

  async update(channel: string, update: DocUpdate, opts: DocChannelOptions): Promise<DocResult> {
    const partition = docPartitionOf(channel, this.partitions);
    const conn = this.ready(this.commands[partitionShard(partition, this.commands.length)]);
    const id = `${this.bootId}.${(++this.counter).toString(36)}`;
    const encoded = encodeDocUpdate(update);
    let queued = this.queued.get(partition);
    if (queued !== undefined && (queued.batch.requests.length >= MAX_BATCH_REQUESTS || queued.bytes + encoded.length > MAX_BATCH_BYTES)) {
      this.queued.delete(partition);
      this.send(queued);
      queued = undefined;
    }
    if (queued === undefined) {
      queued = {
        conn,
        stream: docRequestStream(this.prefix, partition),
        batch: { node: this.options.node, timeoutMs: this.timeoutMs, requests: [] },
        sent: { timer: undefined, unsettled: 0 },
        bytes: 0,
      };
      this.queued.set(partition, queued);
    }
    queued.batch.requests.push({
      id,
      channel,
      update: encoded,
      historySize: docHistorySize(opts.historySize),
      historyTtlSeconds: docHistoryTtlSeconds(opts.historyTtlSeconds),
    });
    queued.bytes += encoded.length + channel.length;
    const sent = queued.sent;
    sent.unsettled++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    // Waiting before the XADD: a fast worker may answer before the XADD's own reply arrives.
    return new Promise<DocResult>((resolve, reject) => this.waiting.set(id, { resolve, reject, sent }));
  }

  /** Writes every batch of this turn. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const queued of this.queued.values()) this.send(queued);
    this.queued.clear();
  };

  /** One XADD for a batch, and one timer for its requests. */
  private send(queued: QueuedBatch): void {
    const { batch, sent } = queued;
    const ids = batch.requests.map((r) => r.id);
    sent.timer = setTimeout(() => {
      const error = new DocUnavailableError(`no versioning worker answered within ${this.timeoutMs} ms; retry with the same idempotency key`);
      for (const id of ids) this.settle(id)?.reject(error);
    }, this.timeoutMs);
    queued.conn
      .xadd(queued.stream, 'MAXLEN', '~', this.options.maxStreamLength ?? 10000, '*', ...encodeDocRequestBatch(batch))
      .catch((err: unknown) => {
        const error = unavailable(err);
        for (const id of ids) this.settle(id)?.reject(error);
      });
  }

  async close(): Promise<void> {
    this.started = false;
    this.queued.clear();
    for (const id of [...this.waiting.keys()]) this.settle(id)?.reject(new DocUnavailableError('the document store is closing'));
    await Promise.all([...this.connections().map(closeConnection), this.sharded?.close()]);
  }

  private ready(conn: DocScriptedRedis): DocScriptedRedis {
    if (!this.started) throw new DocUnavailableError('the document store is not started');
    if (conn.status !== 'ready') throw new DocUnavailableError(`redis is unavailable (${conn.status})`);
    return conn;
  }

  private receive(payload: string): void {
    let replies;
    try {
      replies = decodeDocReplies(payload);
    } catch (err) {
      this.report(new Error(`malformed document reply on ${this.replyChannel}: ${(err as Error).message}`));
      return;
    }
    for (const reply of replies) {
      // Unknown ids are answers to requests that already timed out: nobody waits for them any more.
      const waiting = this.settle(reply.id);
      if (!waiting) continue;
      if ('result' in reply) waiting.resolve(reply.result);
      else if (reply.error.kind === 'doc') waiting.reject(new DocError(reply.error.message));
      else if (reply.error.kind === 'timeout') waiting.reject(new DocUnavailableError(reply.error.message));
      else waiting.reject(new Error(`versioning worker: ${reply.error.message}`));
    }
  }

  private settle(id: string): Waiting | undefined {
    const waiting = this.waiting.get(id);
    if (!waiting) return undefined;
    this.waiting.delete(id);
    const { sent } = waiting;
    if (--sent.unsettled === 0 && sent.timer !== undefined) clearTimeout(sent.timer);
    return waiting;
  }

  private disconnect(): void {
    for (const conn of this.connections()) conn.disconnect();
    void this.sharded?.close();
  }

  /** Reports each outage once, by its first error, rather than every reconnect attempt's. */
  private watchErrors(conn: Redis): void {
    let reported = false;
    conn.on('ready', () => (reported = false));
    conn.on('error', (err: Error) => {
      if (!this.started || reported) return;
      reported = true;
      this.report(new Error(`document store redis connection: ${err.message}`));
    });
  }

  private report(err: Error): void {
    this.options.onError?.(err);
  }
}

/** Redis's own error replies are bugs (a script error); anything else means Redis could not be reached. */
function unavailable(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  if (err.name === 'ReplyError' || err instanceof DocUnavailableError) return err;
  return new DocUnavailableError(`redis: ${err.message}`);
}
