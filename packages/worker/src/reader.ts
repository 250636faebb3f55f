// Reads the request streams of the partitions this worker owns on one shard, answers and acknowledges each request.
//
// - One loop per shard with one blocking XREADGROUP over all its owned streams, so a worker holds two
//   connections per shard however many partitions it owns. Each partition's requests run in stream order;
//   different partitions run side by side.
// - A partition's pending entries (read but never acknowledged) are swept with XPENDING + XCLAIM: all of
//   them, whoever holds them, when the partition is taken over; afterwards those idle for the retry delay
//   (failed ones, or ones a previous owner read after losing its lease), before new entries are read.
// - An entry holds one request, or a gateway's batch of requests for the partition (docs_wire.ts). It is
//   acknowledged once every request in it is answered; one that failed leaves the whole entry pending, and its
//   redelivery answers the others from their idempotency records.
// - Delivery counts are Redis's: a read or a claim counts one. An entry that has already been delivered
//   maxDeliveries times is not tried again but moved to the dead-letter stream, acknowledged, and its callers
//   get an internal error.
import {
  DOC_CONSUMER_GROUP,
  decodeDocRequests,
  docDeadLetterStream,
  docReplyChannel,
  docRequestStream,
  encodeDocErrorReply,
  encodeDocReplies,
} from '@switchboard/engine';
import type { Logger } from 'pino';
import type { Shard, WorkerRedis } from './connections';
import type { GroupItem, GroupResult, Processor } from './processor';
import type { StatsRecorder } from './stats';

export interface ReaderContext {
  shard: Shard;
  /** Shard 0's command connection: replies are published there. */
  replies: WorkerRedis;
  /** On a Redis Cluster replies go over sharded pub/sub (SPUBLISH to the gateway's own channel). */
  sharded: boolean;
  prefix: string;
  /** This worker's consumer name. */
  consumer: string;
  batchSize: number;
  blockMs: number;
  retryDelayMs: number;
  /** How often each owned partition is swept for stragglers when nothing failed. */
  sweepIntervalMs: number;
  maxDeliveries: number;
  processor: Processor;
  stats: StatsRecorder;
  logger: Logger;
}

interface PartitionState {
  stream: string;
  /** The consumer group may not exist yet (new stream, or the stream was lost with a Redis restart). */
  needsGroup: boolean;
  sweepDueAt: number;
  /** 0 right after a takeover: claim everything pending, whoever holds it. */
  sweepMinIdleMs: number;
}

type StreamEntry = [id: string, fields: string[]];

/** A reply, its gateway, and whether that gateway reads replies in batches. */
type Reply = [node: string, payload: string, batched: boolean];

/** A stream entry being handled: acknowledged when none of its requests failed. */
interface EntryState {
  id: string;
  failed: boolean;
}

/**
 * Requests of one document committed by one script call at most; a read that holds more commits them in
 * chunks, in order (bounds the script's run time, during which Redis answers nobody else).
 */
const MAX_GROUP = 256;

/** Dead letters kept; the stream is for inspection, not a queue of its own. */
const DEAD_LETTER_MAX_LENGTH = 10_000;
const PENDING_PAGE = 100;

export class ShardReader {
  private readonly owned = new Map<number, PartitionState>();
  /** `<stream> <id>` of entries being processed now, which a sweep must not claim from ourselves. */
  private readonly inFlight = new Set<string>();
  /** The last failure of entries still pending here, for the dead letter. */
  private readonly lastErrors = new Map<string, string>();
  private current: Promise<void> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private failing = false;

  constructor(private readonly ctx: ReaderContext) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Starts reading a partition just taken over: its pending entries first, whoever read them. */
  add(partition: number): void {
    this.owned.set(partition, { stream: docRequestStream(this.ctx.prefix, partition), needsGroup: true, sweepDueAt: 0, sweepMinIdleMs: 0 });
    this.wake?.();
  }

  /** Stops reading these partitions; resolves once no request of theirs is being processed any more. */
  async remove(partitions: number[]): Promise<void> {
    if (!partitions.map((p) => this.forget(p)).some(Boolean)) return;
    this.interrupt();
    await this.current;
  }

  /** Stops reading a lost partition at once; what is being processed finishes (the CAS guard keeps it safe). */
  drop(partition: number): void {
    this.forget(partition);
  }

  private forget(partition: number): boolean {
    const state = this.owned.get(partition);
    if (!state) return false;
    this.owned.delete(partition);
    // The next owner claims what is pending here and keeps its own failure counts.
    for (const key of this.lastErrors.keys()) if (key.startsWith(`${state.stream} `)) this.lastErrors.delete(key);
    return true;
  }

  isRunning(): boolean {
    return this.loop !== undefined && !this.stopped;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.interrupt();
    await this.loop;
  }

  /** Ends a blocking read now rather than when its timeout runs out (it returns as if nothing came). */
  private interrupt(): void {
    const id = this.ctx.shard.readerId;
    if (id === undefined) return;
    this.ctx.shard.commands.client('UNBLOCK', id).catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.owned.size === 0) {
        await this.sleep(this.ctx.blockMs);
        continue;
      }
      this.current = this.iterate();
      try {
        await this.current;
        if (this.failing) this.ctx.logger.info({ redis: this.ctx.shard.label }, 'reading requests again');
        this.failing = false;
      } catch (err) {
        if (isNoGroup(err)) {
          for (const state of this.owned.values()) state.needsGroup = true;
          continue;
        }
        // Redis down, most likely: say so once per outage and try again shortly.
        if (!this.failing) this.ctx.logger.warn({ redis: this.ctx.shard.label, err: (err as Error).message }, 'cannot read document requests');
        this.failing = true;
        await this.sleep(this.ctx.retryDelayMs);
      }
    }
  }

  private async iterate(): Promise<void> {
    const redis = this.ctx.shard.commands;
    for (const [partition, state] of [...this.owned]) {
      if (state.needsGroup) {
        await ensureGroup(redis, state.stream);
        state.needsGroup = false;
      }
      if (state.sweepDueAt <= Date.now()) {
        const minIdle = state.sweepMinIdleMs;
        state.sweepDueAt = Date.now() + this.ctx.sweepIntervalMs;
        state.sweepMinIdleMs = this.ctx.retryDelayMs;
        await this.sweep(partition, state.stream, minIdle);
      }
    }
    if (this.owned.size === 0 || this.stopped) return;

    const streams = [...this.owned.values()].map((s) => s.stream);
    const nextSweep = Math.min(...[...this.owned.values()].map((s) => s.sweepDueAt));
    const block = Math.max(10, Math.min(this.ctx.blockMs, nextSweep - Date.now()));
    const read = (await this.ctx.shard.reader.xreadgroup(
      'GROUP', DOC_CONSUMER_GROUP, this.ctx.consumer,
      'COUNT', this.ctx.batchSize,
      'BLOCK', block,
      'STREAMS', ...streams, ...streams.map(() => '>'),
    )) as Array<[stream: string, entries: StreamEntry[]]> | null;
    if (!read) return;
    await Promise.all(read.map(([stream, entries]) => this.handleBatch(partitionOfStream(stream), stream, entries)));
  }

  /** Claims and handles the partition's pending entries idle for at least `minIdleMs`, oldest first. */
  private async sweep(partition: number, stream: string, minIdleMs: number): Promise<void> {
    const redis = this.ctx.shard.commands;
    let start = '-';
    for (;;) {
      const pending = (await redis.xpending(stream, DOC_CONSUMER_GROUP, 'IDLE', minIdleMs, start, '+', PENDING_PAGE)) as Array<
        [id: string, consumer: string, idleMs: number, deliveries: number]
      >;
      const ids = pending.filter(([id]) => !this.inFlight.has(`${stream} ${id}`)).map(([id]) => id);
      if (ids.length > 0) {
        const deliveries = new Map(pending.map(([id, , , count]) => [id, count]));
        // Claiming counts a delivery; an entry deleted by trimming comes back absent and leaves the PEL.
        const claimed = (await redis.xclaim(stream, DOC_CONSUMER_GROUP, this.ctx.consumer, minIdleMs, ...ids)) as StreamEntry[];
        const retry: StreamEntry[] = [];
        for (const [id, fields] of claimed) {
          const before = deliveries.get(id) ?? 0;
          if (before >= this.ctx.maxDeliveries) await this.deadLetter(stream, id, fields, before);
          else retry.push([id, fields]);
        }
        await this.handleBatch(partition, stream, retry);
      }
      if (pending.length < PENDING_PAGE || this.stopped) return;
      start = `(${pending[pending.length - 1][0]}`;
    }
  }

  /**
   * Processes a partition's entries from one read: the requests of each document as one group (in stream
   * order, MAX_GROUP at a time), the documents together (processGroups: one commit call per Redis server); then
   * every reply in one pipeline and one XACK for the entries answered. A failure leaves its entry pending for a retry; the document's later
   * requests in this read are not tried either, so a document's requests commit in stream order.
   */
  private async handleBatch(partition: number, stream: string, entries: StreamEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const now = Date.now() + this.ctx.shard.clockSkewMs;
    const groups = new Map<string, Array<{ entry: EntryState; item: GroupItem }>>();
    const replies: Reply[] = [];
    const states: EntryState[] = [];
    const failed = (id: string, err: unknown): void => {
      const message = err instanceof Error ? err.message : String(err);
      this.lastErrors.set(`${stream} ${id}`, message);
      this.ctx.stats.inc('failed');
      this.ctx.logger.warn({ stream, id, err: message }, 'document request failed; it will be retried');
      const state = this.owned.get(partition);
      if (state) state.sweepDueAt = Math.min(state.sweepDueAt, Date.now() + this.ctx.retryDelayMs);
    };
    const fail = (entry: EntryState, err: unknown): void => {
      entry.failed = true;
      failed(entry.id, err);
    };
    for (const [id] of entries) this.inFlight.add(`${stream} ${id}`);
    try {
      for (const [id, fields] of entries) {
        let requests;
        try {
          requests = decodeDocRequests(fields);
        } catch (err) {
          failed(id, err);
          continue;
        }
        const entry: EntryState = { id, failed: false };
        states.push(entry);
        // Entry ids are `<ms>-<seq>` on the shard's clock; so is the estimate of "now".
        const enqueuedAtMs = parseInt(id, 10);
        for (const req of requests) {
          const queued = { entry, item: { req, enqueuedAtMs } };
          const group = groups.get(req.channel);
          if (group) group.push(queued);
          else groups.set(req.channel, [queued]);
        }
      }
      // The documents' first MAX_GROUP requests together (one commit call per Redis server), then the next ones.
      const live = [...groups.values()];
      for (let start = 0; live.length > 0; start += MAX_GROUP) {
        const chunks = live.map((group) => group.slice(start, start + MAX_GROUP));
        let results: GroupResult[][];
        try {
          results = await this.ctx.processor.processGroups(chunks.map((chunk) => chunk.map((g) => g.item)), now);
        } catch (err) {
          for (const group of live) for (const { entry } of group.slice(start)) fail(entry, err);
          break;
        }
        const next: typeof live = [];
        live.forEach((group, d) => {
          const chunk = chunks[d];
          let stop = false;
          results[d].forEach((result, i) => {
            const { entry, item } = chunk[i];
            if ('error' in result) {
              fail(entry, result.error);
              stop = true;
            } else {
              replies.push([item.req.node, result.reply, item.req.batched]);
            }
          });
          const rest = group.slice(start + MAX_GROUP);
          if (stop) for (const { entry } of rest) fail(entry, new Error('an earlier request of its document failed'));
          else if (rest.length > 0) next.push(group);
        });
        live.length = 0;
        live.push(...next);
      }
      if (replies.length === 0) return;
      const acked = states.filter((e) => !e.failed).map((e) => e.id);
      try {
        await Promise.all([this.publishReplies(replies), acked.length > 0 ? this.ctx.shard.commands.xack(stream, DOC_CONSUMER_GROUP, ...acked) : undefined]);
        for (const id of acked) this.lastErrors.delete(`${stream} ${id}`);
      } catch (err) {
        // Committed but perhaps neither answered nor acknowledged: redelivery answers from the records.
        for (const id of acked) failed(id, err);
      }
    } finally {
      for (const [id] of entries) this.inFlight.delete(`${stream} ${id}`);
    }
  }

  /** Sets a request aside for good and tells its caller, rather than leaving it to time out in silence. */
  private async deadLetter(stream: string, id: string, fields: string[], deliveries: number): Promise<void> {
    const key = `${stream} ${id}`;
    const error = this.lastErrors.get(key) ?? 'failed while a previous owner held the partition';
    const redis = this.ctx.shard.commands;
    await redis.xadd(
      docDeadLetterStream(this.ctx.prefix), 'MAXLEN', '~', DEAD_LETTER_MAX_LENGTH, '*',
      'stream', stream, 'id', id, 'deliveries', String(deliveries), 'error', error, ...fields,
    );
    let callers: Array<{ id: string; node: string; batched: boolean }>;
    try {
      callers = decodeDocRequests(fields);
    } catch {
      callers = []; // not a request any gateway wrote: nobody to tell
    }
    const message = `the request failed ${deliveries} times and was set aside (${error})`;
    this.lastErrors.delete(key);
    this.ctx.stats.inc('deadLettered');
    this.ctx.logger.error({ stream, id, deliveries, requests: callers.length, err: error }, 'document request moved to the dead-letter stream');
    await Promise.all([
      callers.length > 0 ? this.publishReplies(callers.map((c) => [c.node, encodeDocErrorReply(c.id, { kind: 'internal', message }), c.batched])) : undefined,
      redis.xack(stream, DOC_CONSUMER_GROUP, id),
    ]);
  }

  /**
   * One message per gateway holding all its replies (encodeDocReplies) for gateways that write batches, one per
   * reply for earlier gateways; the messages in one pipeline of PUBLISHes; on a cluster one SPUBLISH per message,
   * routed to the primary of its reply channel (a Cluster pipeline must stay on one node).
   */
  private async publishReplies(replies: Reply[]): Promise<void> {
    const { prefix, sharded } = this.ctx;
    const messages: Array<[node: string, payload: string]> = [];
    const byNode = new Map<string, string[]>();
    for (const [node, payload, batched] of replies) {
      if (!batched) {
        messages.push([node, payload]);
        continue;
      }
      const payloads = byNode.get(node);
      if (payloads) payloads.push(payload);
      else byNode.set(node, [payload]);
    }
    for (const [node, payloads] of byNode) messages.push([node, encodeDocReplies(payloads)]);
    if (sharded) {
      await Promise.all(messages.map(([node, message]) => this.ctx.replies.spublish(docReplyChannel(prefix, node, true), message)));
      return;
    }
    const pipeline = this.ctx.replies.pipeline();
    for (const [node, message] of messages) pipeline.publish(docReplyChannel(prefix, node), message);
    const published = await pipeline.exec();
    const publishError = published?.find(([err]) => err)?.[0];
    if (publishError) throw publishError;
  }

  /** Waits `ms`, or less when woken by a new partition or stop(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

async function ensureGroup(redis: WorkerRedis, stream: string): Promise<void> {
  try {
    // From 0: requests queued before any worker ran are served too (those past their deadline get a timeout).
    await redis.xgroup('CREATE', stream, DOC_CONSUMER_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
  }
}

function isNoGroup(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}

function partitionOfStream(stream: string): number {
  return Number(stream.slice(stream.lastIndexOf(':') + 1));
}
