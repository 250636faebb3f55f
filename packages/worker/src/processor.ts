// Carries out update requests: deadline check, load (or cache), decide, CAS commit; returns the replies to send.
//
// Group commit: the reader hands over the requests of one document from one read, in stream order. They are
// decided one after another in memory (each on the result of the one before) and committed by ONE script call
// (doc_commit_batch.lua) guarded by the version the group started from: the final state once, and per accepted
// update its history entry and publication (consecutive offsets), per accepted or conflicting update its
// idempotency record. A stale guard reloads and decides the whole group again.
//
// Rules:
// - Exactly once: every request has an idempotency record, under the client's key or, without one, under its
//   request id. The commit script answers a recorded request from its record, so a redelivered request that
//   was committed but not acknowledged is never written twice. Conflicts are recorded the same way.
// - Deadline: a request whose deadline (stream entry time + the caller's timeout, on the Redis clock) passed
//   before processing began is not carried out: the caller has already been told "unavailable" and will
//   retry. It is answered with a timeout error, unless its idempotency record exists: then it was carried
//   out before (a redelivery) and the record is the answer.
// - A DocError (malformed update, wrong type met while applying, base ahead of the document) is the caller's
//   fault and is answered as such; one decided against a cached document is decided again on a fresh load
//   first, since the cache may lag behind another owner's writes. Stale guards reload and decide again, a
//   bounded number of times.
// - Anything else (a corrupt document, a bug) is thrown: the request stays pending and is retried by
//   redelivery, then dead-lettered.
import {
  decodeDocOutcome,
  docIdempotencyKey,
  docKeys,
  encodeDocErrorReply,
  encodeDocOutcome,
  encodeDocPublicationData,
  encodeDocResultReply,
  newEpoch,
  DEFAULT_META_TTL_SECONDS,
  type DocKeyNames,
  type ReceivedDocRequest,
  type DocCommitReply,
  type DocScriptedRedis,
  waitForReplicas,
} from '@switchboard/engine';
import {
  DecideScope,
  DocError,
  decide,
  emptyDoc,
  parseUpdate,
  type DocLimits,
  type DocSnapshot,
  type DocUpdate,
  type DocWrite,
  type JsonObject,
} from '@switchboard/protocol';
import type { CachedDoc, DocCache } from './doc_cache';
import type { StatsRecorder } from './stats';

/** Stale guards in a row before giving up; one owner per partition makes more than one or two rare. */
const MAX_ATTEMPTS = 8;

export interface ProcessorContext {
  prefix: string;
  limits: DocLimits;
  idempotencyTtlSeconds: number;
  cache: DocCache;
  stats: StatsRecorder;
  /** The command connection of the shard that holds this channel's keys. */
  commandsFor(channel: string): DocScriptedRedis;
  /**
   * Replicas that must have a group's commit before it is acknowledged (WAIT); 0 acknowledges once the primary has
   * it. A failover can then lose only what was never acknowledged.
   */
  waitReplicas: number;
  waitTimeoutMs: number;
  /** `spublish` on Redis Cluster, where subscribers hold sharded subscriptions. */
  publishCommand: 'publish' | 'spublish';
}

/** Thrown for a request that cannot be carried out because stored data is broken; retried, then dead-lettered. */
export class CorruptDocumentError extends Error {
  override readonly name = 'CorruptDocumentError';
}

/** A request of a group with the time its entry was added (its deadline starts there). */
export interface GroupItem {
  req: ReceivedDocRequest;
  enqueuedAtMs: number;
}

/** Per request of a group: its reply, or the error that leaves it pending for a retry. */
export type GroupResult = { reply: string } | { error: Error };

/** A request of a group being decided, with what is known about it across attempts. */
interface Pending {
  item: GroupItem;
  /** Undefined when the request failed before deciding (then `result` is set). */
  update?: DocUpdate;
  idemKey: string;
  expired: boolean;
  /** Its record found in Redis (by the load or a refused commit): the answer, whatever the group decides. */
  record?: string;
  result?: GroupResult;
}

/** What decideGroup made of a group's requests in one round. */
interface DecidedRound {
  answers: GroupResult[];
  records: Array<{ pending: Pending; publicationJson: string; outcomeJson: string }>;
  /** The document after the last accepted update (the start when none was). */
  last: CachedDoc;
  counts: Record<'applied' | 'merged' | 'conflict' | 'duplicate' | 'rejected' | 'expired', number>;
}

/** A group being carried out: its requests, where its document lives, when it began. */
interface GroupState {
  items: GroupItem[];
  channel: string;
  redis: DocScriptedRedis;
  keys: DocKeyNames;
  pending: Pending[];
  started: bigint;
}

/** A group's first round in processGroups, to be committed with the others of its server. */
interface FirstAttempt {
  group: GroupState & { index: number };
  start: CachedDoc;
  round: DecidedRound;
}

export class Processor {
  constructor(private readonly ctx: ProcessorContext) {}

  /**
   * Carries out requests for ONE document, in order, with one commit (group commit): each is decided on the
   * result of the one before, in memory; the accepted updates and the conflicts are then written by one CAS
   * script call guarded by the version the group started from. A stale guard reloads and decides the whole
   * group again. A key used twice in the group answers the second use with the first outcome, as a record
   * in Redis would. Results are in the order of `items`.
   */
  async processGroup(items: GroupItem[], redisNowMs: number): Promise<GroupResult[]> {
    if (items.length === 0) return [];
    const group = await this.begin(items, redisNowMs);
    const { channel, redis, keys, pending } = group;
    let cached = this.ctx.cache.get(channel);
    let fresh = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (cached === undefined) {
        cached = await this.load(group);
        fresh = true;
      }
      const start = cached;
      const round = this.decideGroup(pending, start, fresh);
      if (round === 'recheck') {
        if (fresh) throw new Error('unreachable: a DocError against a fresh load is answered, not rechecked');
        cached = undefined; // decided against a cached copy: make sure with the stored one
        continue;
      }
      if (round.records.length > 0) {
        const block = this.commitBlock(keys, items[0].req, start.doc.version, round.last, round.records);
        const reply = await redis.sbDocCommitBatch(block.keys.length, ...block.keys, ...block.args);
        if (reply[0] === 'dup') {
          // Recorded meanwhile (a redelivery racing its first delivery, or a repeat of an earlier batch): those
          // answer from their records; decide the rest again on the same start, nothing was written.
          this.takeRecords(round, reply[1]);
          cached = start;
          attempt--; // not a stale guard: each round settles at least one request
          continue;
        }
        if (reply[0] === 'stale') {
          this.ctx.cache.delete(channel);
          cached = undefined;
          fresh = false;
          continue;
        }
      }
      if (this.ctx.waitReplicas > 0) {
        // WAIT covers every write this connection made, so also the commits that answers from records stand on.
        const missing = await this.waitForReplicas(redis, keys);
        if (missing) return pending.map((p) => p.result ?? { error: missing });
      }
      return this.settle(group, start, round);
    }
    const error = new Error(`document ${channel} changed under the worker ${MAX_ATTEMPTS} times in a row; is a second owner writing it?`);
    return pending.map((p) => p.result ?? { error });
  }

  /**
   * processGroup for several documents' groups (one stream read), results in the order of `groups`: the first
   * attempt of every group side by side and ONE commit script call per Redis server for all of them (group commit
   * across documents). A group that needs more — a stale guard, a record written meanwhile, a recheck, or nothing to
   * commit — goes on alone through processGroup. On Redis Cluster every group commits alone (its keys live in its
   * channel's slot).
   */
  async processGroups(groups: GroupItem[][], redisNowMs: number): Promise<GroupResult[][]> {
    // A group that throws fails alone: its requests get the error, the other groups go on.
    const alone = async (items: GroupItem[]): Promise<GroupResult[]> => {
      try {
        return await this.processGroup(items, redisNowMs);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        return items.map(() => ({ error }));
      }
    };
    if (groups.length < 2 || this.ctx.publishCommand === 'spublish') return Promise.all(groups.map(alone));
    const results: Array<GroupResult[] | undefined> = new Array(groups.length);
    const firsts = await Promise.all(
      groups.map(async (items, index) => {
        try {
          return await this.firstAttempt(items, index, redisNowMs);
        } catch (err) {
          results[index] = items.map(() => ({ error: err instanceof Error ? err : new Error(String(err)) }));
          return undefined;
        }
      }),
    );
    const byServer = new Map<DocScriptedRedis, FirstAttempt[]>();
    for (const first of firsts) {
      if (first === undefined) continue;
      const list = byServer.get(first.group.redis);
      if (list) list.push(first);
      else byServer.set(first.group.redis, [first]);
    }
    await Promise.all(
      [...byServer].map(async ([redis, list]) => {
        const keys: string[] = [];
        const args: Array<string | number> = [];
        for (const { group, start, round } of list) {
          const block = this.commitBlock(group.keys, group.items[0].req, start.doc.version, round.last, round.records);
          keys.push(...block.keys);
          args.push(...block.args);
        }
        let replies: DocCommitReply[];
        try {
          replies = await redis.sbDocCommitGroups(keys.length, ...keys, ...args);
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          for (const { group } of list) results[group.index] = group.pending.map((p) => p.result ?? { error });
          return;
        }
        const committed: FirstAttempt[] = [];
        list.forEach((first, i) => {
          const reply = replies[i];
          if (reply[0] === 'ok') committed.push(first);
          else if (reply[0] === 'stale') this.ctx.cache.delete(first.group.channel);
          // Not written: left to processGroup, which decides again knowing the records or the stored document.
        });
        if (committed.length === 0) return;
        if (this.ctx.waitReplicas > 0) {
          const missing = await this.waitForReplicas(redis, committed[0].group.keys);
          if (missing) {
            for (const { group } of committed) results[group.index] = group.pending.map((p) => p.result ?? { error: missing });
            return;
          }
        }
        for (const { group, start, round } of committed) results[group.index] = this.settle(group, start, round);
      }),
    );
    return Promise.all(groups.map(async (items, i) => results[i] ?? alone(items)));
  }

  /** A group's first round for processGroups; undefined when it must go through processGroup instead. */
  private async firstAttempt(items: GroupItem[], index: number, redisNowMs: number): Promise<FirstAttempt | undefined> {
    const group = { ...(await this.begin(items, redisNowMs)), index };
    let start = this.ctx.cache.get(group.channel);
    let fresh = false;
    if (start === undefined) {
      start = await this.load(group);
      fresh = true;
    }
    const round = this.decideGroup(group.pending, start, fresh);
    if (round === 'recheck' || round.records.length === 0) return undefined;
    return { group, start, round };
  }

  /** Parses a group's requests and reads the records of the expired ones. */
  private async begin(items: GroupItem[], redisNowMs: number): Promise<GroupState> {
    const channel = items[0].req.channel;
    const redis = this.ctx.commandsFor(channel);
    const keys = docKeys(channel, this.ctx.prefix);
    const pending: Pending[] = items.map((item) => this.prepare(item, redisNowMs));
    // Expired requests are answered from their record when there is one (a redelivery), else with a timeout.
    const expired = pending.filter((p) => p.result === undefined && p.expired);
    if (expired.length > 0) {
      const records = await redis.mget(...expired.map((p) => p.idemKey));
      expired.forEach((p, i) => {
        const record = records[i];
        if (record !== null) p.record = record;
      });
    }
    return { items, channel, redis, keys, pending, started: process.hrtime.bigint() };
  }

  /** Loads the stored document (and the record of the first request still to decide) into the cache. */
  private async load(group: GroupState): Promise<CachedDoc> {
    const { redis, keys, pending, channel } = group;
    const first = pending.find((p) => p.result === undefined && !p.expired && p.record === undefined);
    const [top, , state, writes, floor, version, record] = await redis.sbDocGet(
      keys.doc, keys.meta, first?.idemKey ?? `${keys.pubsub}:di:none`, newEpoch(), DEFAULT_META_TTL_SECONDS, '1',
    );
    if (first && record !== null) first.record = record;
    const cached = toCachedDoc(channel, top, state, writes, floor, version);
    this.ctx.cache.set(channel, cached);
    return cached;
  }

  /** The records a refused commit found (`[i, record, ...]`, i from 1) become those requests' answers. */
  private takeRecords(round: DecidedRound, found: Array<number | string>): void {
    for (let i = 0; i + 1 < found.length; i += 2) round.records[Number(found[i]) - 1].pending.record = String(found[i + 1]);
  }

  /** An error when fewer replicas than asked have this connection's writes; undefined when they all do. */
  private async waitForReplicas(redis: DocScriptedRedis, keys: DocKeyNames): Promise<Error | undefined> {
    const replicas = await waitForReplicas(redis, keys.doc, this.ctx.waitReplicas, this.ctx.waitTimeoutMs);
    // Not acknowledged: the retry answers from the record if the commit survives, or decides anew if not.
    if (replicas < this.ctx.waitReplicas) return new Error(`the commit reached ${replicas} of ${this.ctx.waitReplicas} replicas within ${this.ctx.waitTimeoutMs} ms`);
    return undefined;
  }

  /** After a group's round is written (or had nothing to write): the cache, the counts, the answers. */
  private settle(group: GroupState, start: CachedDoc, round: DecidedRound): GroupResult[] {
    const { answers, records, last, counts } = round;
    if (last !== start) this.ctx.cache.set(group.channel, last);
    const latency = Number(process.hrtime.bigint() - group.started) / 1e9;
    for (const [counter, count] of Object.entries(counts) as Array<[keyof typeof counts, number]>) {
      for (let i = 0; i < count; i++) this.ctx.stats.inc(counter);
    }
    for (let i = 0; i < records.length; i++) this.ctx.stats.observeCommit(latency);
    return group.pending.map((p, i) => p.result ?? answers[i]);
  }

  /** Parses a request; a malformed one gets its final result here. */
  private prepare(item: GroupItem, redisNowMs: number): Pending {
    const { req } = item;
    const fallbackKey = docIdempotencyKey(req.channel, this.ctx.prefix, undefined, req.id);
    let update: DocUpdate;
    try {
      update = parseUpdate(req.update, this.ctx.limits);
    } catch (err) {
      if (err instanceof DocError) return { item, idemKey: fallbackKey, expired: false, result: { reply: this.rejected(req, err) } };
      return { item, idemKey: fallbackKey, expired: false, result: { error: err instanceof Error ? err : new Error(String(err)) } };
    }
    return {
      item,
      update,
      idemKey: docIdempotencyKey(req.channel, this.ctx.prefix, update.key, req.id),
      expired: redisNowMs > item.enqueuedAtMs + req.timeoutMs,
    };
  }

  /**
   * Decides the group's requests in order on `start`, in memory. 'recheck' when a DocError was met on a cached
   * document (it must be decided again on a fresh load); otherwise the answers (for requests without a final
   * result yet), the records to commit and the document after the last accepted update.
   */
  private decideGroup(pending: Pending[], start: CachedDoc, fresh: boolean): 'recheck' | DecidedRound {
    const answers: GroupResult[] = [];
    const records: Array<{ pending: Pending; publicationJson: string; outcomeJson: string }> = [];
    const counts = { applied: 0, merged: 0, conflict: 0, duplicate: 0, rejected: 0, expired: 0 };
    /** The outcome each key got earlier in this group (recorded when the group commits). */
    const outcomes = new Map<string, string>();
    // The document after each accepted update; its state is encoded once, for the commit, unless a conflict's
    // answer or the size limit needs it earlier (decide is told a bound on its length instead). Only the last one
    // is kept, so each update changes the objects the previous ones of this round made in place (the scope); the
    // start, which the cache holds, is copied by the first.
    let current: { doc: DocSnapshot; encoded: string | undefined; length: number } = { ...start, length: start.encoded.length };
    const scope = new DecideScope();
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i];
      if (p.result !== undefined || p.update === undefined) continue;
      const { req } = p.item;
      // A record in Redis is older than anything in this group; otherwise the first use in the group answers.
      const earlier = p.record ?? outcomes.get(p.idemKey);
      if (earlier !== undefined) {
        outcomes.set(p.idemKey, earlier);
        try {
          answers[i] = { reply: this.duplicateReply(req, earlier) };
          counts.duplicate++;
        } catch (err) {
          answers[i] = { error: err as Error };
        }
        continue;
      }
      if (p.expired) {
        counts.expired++;
        answers[i] = {
          reply: encodeDocErrorReply(req.id, { kind: 'timeout', message: `the request waited more than ${req.timeoutMs} ms for a worker; retry with the same idempotency key` }),
        };
        continue;
      }
      const { doc } = current;
      let decision;
      try {
        decision = decide(doc, p.update, this.ctx.limits, current.length, scope);
      } catch (err) {
        if (!(err instanceof DocError)) {
          answers[i] = { error: err instanceof Error ? err : new Error(String(err)) };
          continue;
        }
        // On a fresh load the answer stands (the group's own earlier updates are what Redis will hold once it
        // commits); on a cached copy it may lag behind another owner's writes: decide again on the stored one.
        if (!fresh) return 'recheck';
        counts.rejected++;
        answers[i] = { reply: encodeDocErrorReply(req.id, { kind: 'doc', message: err.message }) };
        continue;
      }
      let outcomeJson: string;
      let publicationJson = '';
      if (decision.status === 'conflict') {
        current.encoded ??= JSON.stringify(doc.state);
        outcomeJson = encodeDocOutcome({ status: 'conflict', version: doc.version, paths: decision.paths, state: current.encoded });
      } else {
        outcomeJson = encodeDocOutcome({ status: decision.status, version: decision.doc.version });
        publicationJson = `{"offset":${decision.doc.version},"data":${encodeDocPublicationData(decision.doc.version, p.update, decision.status)}}`;
        current = { doc: decision.doc, encoded: decision.encoded, length: decision.length };
      }
      counts[decision.status]++;
      outcomes.set(p.idemKey, outcomeJson);
      records.push({ pending: p, publicationJson, outcomeJson });
      answers[i] = { reply: encodeDocResultReply(req.id, outcomeJson, false) };
    }
    const last: CachedDoc = current.doc === start.doc ? start : { doc: current.doc, encoded: current.encoded ?? JSON.stringify(current.doc.state) };
    return { answers, records, last, counts };
  }

  /** A group's block of the commit script (doc_commit_batch.lua): all its records, guarded by the version it started from. */
  private commitBlock(keys: DocKeyNames, req: ReceivedDocRequest, expected: number, last: CachedDoc, records: DecidedRound['records']): { keys: string[]; args: Array<string | number> } {
    const committed = last.doc.version !== expected;
    const keyList: string[] = [keys.doc, keys.meta, keys.history];
    const args: Array<string | number> = [
      expected,
      committed ? last.encoded : '',
      committed ? JSON.stringify(last.doc.writes) : '',
      committed ? last.doc.floor : 0,
      req.historySize,
      req.historyTtlSeconds,
      newEpoch(),
      keys.pubsub,
      this.ctx.idempotencyTtlSeconds,
      records.length,
    ];
    for (const r of records) {
      keyList.push(r.pending.idemKey);
      args.push(r.publicationJson, r.outcomeJson);
    }
    args.push(this.ctx.publishCommand);
    return { keys: keyList, args };
  }

  private duplicateReply(req: ReceivedDocRequest, record: string): string {
    // Parsed to check it, so a corrupt record fails here (and is retried) rather than at the caller.
    decodeDocOutcome(JSON.parse(record) as unknown, true);
    return encodeDocResultReply(req.id, record, true);
  }

  private rejected(req: ReceivedDocRequest, err: DocError): string {
    this.ctx.stats.inc('rejected');
    return encodeDocErrorReply(req.id, { kind: 'doc', message: err.message });
  }
}

/** The stored document as a snapshot; its version must be its channel's offset. */
function toCachedDoc(channel: string, top: number, state: string | null, writes: string | null, floor: string | null, version: string | null): CachedDoc {
  if (state === null) {
    // Never written as a document: empty at the channel's offset. Earlier plain publications count as
    // versions whose writes are unknown, so the floor makes updates based before them conservative.
    const doc: DocSnapshot = top === 0 ? emptyDoc() : { ...emptyDoc(), version: top, floor: top };
    return { doc, encoded: '{}' };
  }
  if (Number(version) !== top) {
    throw new CorruptDocumentError(`document ${channel} is at version ${version} but its channel at offset ${top}; something else publishes on the channel, or its meta was lost`);
  }
  let parsedState: unknown;
  let parsedWrites: unknown;
  try {
    parsedState = JSON.parse(state);
    parsedWrites = JSON.parse(writes ?? '[]');
  } catch (err) {
    throw new CorruptDocumentError(`document ${channel} is not valid JSON in Redis: ${(err as Error).message}`);
  }
  const f = Number(floor ?? 0);
  if (typeof parsedState !== 'object' || parsedState === null || Array.isArray(parsedState) || !Array.isArray(parsedWrites) || !Number.isSafeInteger(f)) {
    throw new CorruptDocumentError(`document ${channel} has an unexpected shape in Redis`);
  }
  return { doc: { version: top, state: parsedState as JsonObject, writes: parsedWrites as DocWrite[], floor: f }, encoded: state };
}
