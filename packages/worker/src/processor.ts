// Carries out one update request: deadline check, load (or cache), decide, CAS commit; returns the reply to send.
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
  type DocCommitReply,
  type DocKeyNames,
  type DocRequest,
  type DocScriptedRedis,
} from '@switchboard/engine';
import {
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
}

interface Accepted {
  status: 'applied' | 'merged';
  doc: DocSnapshot;
  encoded: string;
}

/** Thrown for a request that cannot be carried out because stored data is broken; retried, then dead-lettered. */
export class CorruptDocumentError extends Error {
  override readonly name = 'CorruptDocumentError';
}

export class Processor {
  constructor(private readonly ctx: ProcessorContext) {}

  /** The reply payload for `req`. `redisNowMs` is the current time on the clock of the request's shard. */
  async process(req: DocRequest, enqueuedAtMs: number, redisNowMs: number): Promise<string> {
    let raw: unknown;
    try {
      raw = JSON.parse(req.update);
    } catch {
      throw new Error(`request ${req.id}: its update is not JSON`);
    }
    let update: DocUpdate;
    try {
      update = parseUpdate(raw, this.ctx.limits);
    } catch (err) {
      if (err instanceof DocError) return this.rejected(req, err);
      throw err;
    }
    const redis = this.ctx.commandsFor(req.channel);
    const keys = docKeys(req.channel, this.ctx.prefix);
    const idemKey = docIdempotencyKey(req.channel, this.ctx.prefix, update.key, req.id);

    if (redisNowMs > enqueuedAtMs + req.timeoutMs) {
      const record = await redis.get(idemKey);
      if (record !== null) return this.duplicate(req, record);
      this.ctx.stats.inc('expired');
      return encodeDocErrorReply(req.id, { kind: 'timeout', message: `the request waited more than ${req.timeoutMs} ms for a worker; retry with the same idempotency key` });
    }

    const started = process.hrtime.bigint();
    let cached = this.ctx.cache.get(req.channel);
    let fresh = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (cached === undefined) {
        const [top, , state, writes, floor, version, record] = await redis.sbDocGet(keys.doc, keys.meta, idemKey, newEpoch(), DEFAULT_META_TTL_SECONDS, '1');
        if (record !== null) return this.duplicate(req, record);
        cached = toCachedDoc(req.channel, top, state, writes, floor, version);
        this.ctx.cache.set(req.channel, cached);
        fresh = true;
      }
      const { doc, encoded } = cached;
      let decision;
      try {
        decision = decide(doc, update, this.ctx.limits);
      } catch (err) {
        if (!(err instanceof DocError)) throw err;
        if (fresh) return this.rejected(req, err);
        cached = undefined; // decided against a cached copy: make sure with the stored one
        continue;
      }

      let accepted: Accepted | undefined;
      let outcome: string;
      if (decision.status === 'conflict') {
        outcome = encodeDocOutcome({ status: 'conflict', version: doc.version, paths: decision.paths, state: encoded });
      } else {
        accepted = { status: decision.status, doc: decision.doc, encoded: decision.encoded };
        outcome = encodeDocOutcome({ status: decision.status, version: decision.doc.version });
      }
      const reply = await this.commit(redis, keys, idemKey, req, doc.version, update, outcome, accepted);
      if (reply[0] === 'dup') return this.duplicate(req, reply[1]);
      if (reply[0] === 'stale') {
        this.ctx.cache.delete(req.channel);
        cached = undefined;
        continue;
      }
      if (accepted) this.ctx.cache.set(req.channel, { doc: accepted.doc, encoded: accepted.encoded });
      this.ctx.stats.inc(decision.status);
      this.ctx.stats.observeCommit(Number(process.hrtime.bigint() - started) / 1e9);
      return encodeDocResultReply(req.id, outcome, false);
    }
    throw new Error(`document ${req.channel} changed under the worker ${MAX_ATTEMPTS} times in a row; is a second owner writing it?`);
  }

  /** Runs the CAS script: commits an accepted update, or records a conflict, if the document is still at `expected`. */
  private commit(
    redis: DocScriptedRedis,
    keys: DocKeyNames,
    idemKey: string,
    req: DocRequest,
    expected: number,
    update: DocUpdate,
    outcome: string,
    accepted: Accepted | undefined,
  ): Promise<DocCommitReply> {
    const publication = accepted
      ? `{"offset":${accepted.doc.version},"data":${encodeDocPublicationData(accepted.doc.version, update, accepted.status)}}`
      : '';
    return redis.sbDocCommit(
      keys.doc,
      keys.meta,
      keys.history,
      idemKey,
      expected,
      accepted ? 'commit' : 'conflict',
      accepted ? accepted.encoded : '',
      accepted ? JSON.stringify(accepted.doc.writes) : '',
      accepted ? accepted.doc.floor : 0,
      publication,
      req.historySize,
      req.historyTtlSeconds,
      newEpoch(),
      keys.pubsub,
      outcome,
      this.ctx.idempotencyTtlSeconds,
    );
  }

  private duplicate(req: DocRequest, record: string): string {
    // Parsed to check it, so a corrupt record fails here (and is retried) rather than at the caller.
    decodeDocOutcome(JSON.parse(record) as unknown, true);
    this.ctx.stats.inc('duplicate');
    return encodeDocResultReply(req.id, record, true);
  }

  private rejected(req: DocRequest, err: DocError): string {
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
