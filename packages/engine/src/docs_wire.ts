// Redis names and payloads shared by the gateway side (RedisDocStore) and the versioning worker.
//
// - Requests: stream `<prefix>:docs:req:<p>` on shard `p % shards`, p = FNV-1a(channel) % partitions. A gateway
//   appends the requests of one event-loop turn for one partition as ONE entry (a batch): fields `n` the node to
//   reply to, `t` the callers' timeout in ms, `q` a JSON array of `{"r":id,"c":channel,"hs":…,"ht":…,"u":update}`
//   (`hs`/`ht` the channel's history size and TTL, `u` the parsed update as JSON, embedded). Earlier gateways
//   wrote one request per entry with fields `r`, `c`, `u` (the update as a JSON string), `n`, `t`, `hs`, `ht`;
//   workers read both. The deadline is the entry id's time plus `t`, both on the Redis clock of that shard, so
//   gateway and worker clocks need not agree.
// - Replies: PUBLISH on `<prefix>:docs:reply:<node>` on shard 0, `{"id":…,"result":<outcome>}` or
//   `{"id":…,"error":{"kind":"doc"|"timeout"|"internal","message":…}}`; to a gateway that writes batches, the
//   replies of one worker read in one message (a JSON array when there are several).
// - Outcomes (also the idempotency record): `{"status":"applied"|"merged","version":V}` or
//   `{"status":"conflict","version":V,"paths":[…],"state":{…}}`; a reply adds `"duplicate":true` to a repeat.
// - Document keys share the channel's hash tag: `<prefix>:{<channel>}:doc` (hash) and the idempotency
//   records `<prefix>:{<channel>}:di:k:<key>` (client keys) and `…:di:r:<request id>` (requests without one).
import type { DocUpdate } from '@switchboard/protocol';
import type { DocResult } from './docs';
import { DEFAULT_PREFIX, channelKeys, clusterDocReplyChannel, redisPubSubChannel, shardOf } from './redis_keys';

export const DEFAULT_DOC_PARTITIONS = 16;
/** The consumer group of every request stream. */
export const DOC_CONSUMER_GROUP = 'workers';

/** The request partition of a document: the same FNV-1a as `shardOf`, so any language can reproduce it. */
export function docPartitionOf(channel: string, partitions: number): number {
  return shardOf(channel, partitions);
}

/** The Redis shard (index into the URL list) that holds partition `p`'s request stream. */
export function partitionShard(partition: number, shards: number): number {
  return partition % shards;
}

export interface DocKeyNames {
  /** Hash: s = state JSON, w = writes JSON, f = floor, v = version last written. */
  doc: string;
  meta: string;
  history: string;
  pubsub: string;
}

export function docKeys(channel: string, prefix: string = DEFAULT_PREFIX): DocKeyNames {
  const keys = channelKeys(channel, prefix);
  return { doc: `${keys.pubsub}:doc`, meta: keys.meta, history: keys.history, pubsub: keys.pubsub };
}

/**
 * Where the outcome of an update is remembered. Client keys and request ids live apart so that a client
 * cannot pick a key that reads another request's outcome.
 */
export function docIdempotencyKey(channel: string, prefix: string, key: string | undefined, requestId: string): string {
  const base = redisPubSubChannel(channel, prefix);
  return key === undefined ? `${base}:di:r:${requestId}` : `${base}:di:k:${key}`;
}

export function docRequestStream(prefix: string, partition: number): string {
  return `${prefix}:docs:req:${partition}`;
}

/** The pub/sub channel of a gateway's document replies: classic, or sharded on a Redis Cluster (SPUBLISH to it). */
export function docReplyChannel(prefix: string, node: string, sharded = false): string {
  return sharded ? redisPubSubChannel(clusterDocReplyChannel(node), prefix) : `${prefix}:docs:reply:${node}`;
}

export function docLeaseKey(prefix: string, partition: number): string {
  return `${prefix}:docs:lease:${partition}`;
}

/** Sorted set of live workers: member = worker id, score = heartbeat expiry (ms, Redis clock). */
export function docWorkersKey(prefix: string): string {
  return `${prefix}:docs:workers`;
}

/** Requests that failed `maxDeliveries` times, on the shard of their partition. */
export function docDeadLetterStream(prefix: string): string {
  return `${prefix}:docs:dead`;
}

/** A document's channel keeps at least one publication of history: a version needs an offset. */
export function docHistorySize(historySize: number): number {
  return Math.max(1, Math.floor(historySize));
}

export function docHistoryTtlSeconds(historyTtlSeconds: number): number {
  return Math.max(1, Math.ceil(historyTtlSeconds));
}

/** A request as a gateway writes it: the update already validated and encoded as JSON. */
export interface DocRequest {
  id: string;
  channel: string;
  /** The parsed update, encoded as JSON (the worker validates it again). */
  update: string;
  node: string;
  timeoutMs: number;
  historySize: number;
  historyTtlSeconds: number;
}

/** A request as a worker reads it. */
export interface ReceivedDocRequest extends Omit<DocRequest, 'update'> {
  /** The update as parsed JSON, not validated yet. */
  update: unknown;
  /** It came in a batch entry: its gateway reads replies in batches too (encodeDocReplies). */
  batched: boolean;
}

/** The requests of one batch entry, all from one gateway (`node`, `timeoutMs`). */
export interface DocRequestBatch {
  node: string;
  timeoutMs: number;
  requests: Array<Omit<DocRequest, 'node' | 'timeoutMs'>>;
}

/** Field/value pairs for XADD: one entry holding every request of `batch`. */
export function encodeDocRequestBatch(batch: DocRequestBatch): string[] {
  let q = '';
  for (const r of batch.requests) {
    q += `${q === '' ? '[' : ','}{"r":${JSON.stringify(r.id)},"c":${JSON.stringify(r.channel)},"hs":${r.historySize},"ht":${r.historyTtlSeconds},"u":${r.update}}`;
  }
  return ['n', batch.node, 't', String(batch.timeoutMs), 'q', `${q}]`];
}

/** Field/value pairs for XADD: one request per entry, as gateways before batches wrote them (tests play those). */
export function encodeDocRequest(req: DocRequest): string[] {
  return [
    'r', req.id,
    'c', req.channel,
    'u', req.update,
    'n', req.node,
    't', String(req.timeoutMs),
    'hs', String(req.historySize),
    'ht', String(req.historyTtlSeconds),
  ];
}

/** The requests of a stream entry, batch or single, in order; throws on an entry no gateway wrote. */
export function decodeDocRequests(fields: string[]): ReceivedDocRequest[] {
  let node: string | undefined;
  let timeout: string | undefined;
  let batch: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'n') node = fields[i + 1];
    else if (fields[i] === 't') timeout = fields[i + 1];
    else if (fields[i] === 'q') batch = fields[i + 1];
  }
  if (batch === undefined) return [decodeSingle(fields)];
  if (node === undefined) throw new Error('document request batch lacks field n');
  const timeoutMs = nonNegativeInt('t', timeout);
  let parsed: unknown;
  try {
    parsed = JSON.parse(batch);
  } catch {
    throw new Error('document request batch is not JSON');
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new Error('document request batch is not a non-empty array');
  return parsed.map((value: unknown, i) => {
    const r = value as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r.r !== 'string' || typeof r.c !== 'string' || !('u' in r)) {
      throw new Error(`document request ${i} of the batch lacks r, c or u`);
    }
    return {
      id: r.r,
      channel: r.c,
      update: r.u,
      node: node as string,
      timeoutMs,
      historySize: nonNegativeInt('hs', r.hs),
      historyTtlSeconds: nonNegativeInt('ht', r.ht),
      batched: true,
    };
  });
}

function nonNegativeInt(name: string, value: unknown): number {
  const v = typeof value === 'number' ? value : Number(value);
  if (value === undefined || value === '' || !Number.isSafeInteger(v) || v < 0) throw new Error(`document request field ${name} is not a non-negative integer`);
  return v;
}

function decodeSingle(fields: string[]): ReceivedDocRequest {
  const get = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) get.set(fields[i], fields[i + 1]);
  const text = (name: string): string => {
    const v = get.get(name);
    if (v === undefined) throw new Error(`document request lacks field ${name}`);
    return v;
  };
  const raw = text('u');
  let update: unknown;
  try {
    update = JSON.parse(raw);
  } catch {
    throw new Error('document request: its update is not JSON');
  }
  return {
    id: text('r'),
    channel: text('c'),
    update,
    node: text('n'),
    timeoutMs: nonNegativeInt('t', text('t')),
    historySize: nonNegativeInt('hs', text('hs')),
    historyTtlSeconds: nonNegativeInt('ht', text('ht')),
    batched: false,
  };
}

export function encodeDocUpdate(update: DocUpdate): string {
  return JSON.stringify(update);
}

/**
 * The outcome as recorded and replied. `stateJson` is the conflict's state, already encoded, embedded as is
 * rather than as a string so that a large state is not escaped twice.
 */
export function encodeDocOutcome(result: DocResult): string {
  if (result.status === 'conflict') {
    return `{"status":"conflict","version":${result.version},"paths":${JSON.stringify(result.paths)},"state":${result.state}}`;
  }
  return `{"status":"${result.status}","version":${result.version}}`;
}

export type DocReplyError = { kind: 'doc' | 'timeout' | 'internal'; message: string };

/** A reply carrying an outcome (`outcomeJson` from encodeDocOutcome or an idempotency record). */
export function encodeDocResultReply(id: string, outcomeJson: string, duplicate: boolean): string {
  return `{"id":${JSON.stringify(id)},"duplicate":${duplicate},"result":${outcomeJson}}`;
}

export function encodeDocErrorReply(id: string, error: DocReplyError): string {
  return JSON.stringify({ id, error });
}

export type DocReply = { id: string; result: DocResult } | { id: string; error: DocReplyError };

/** Parses an outcome (a reply's or an idempotency record's); throws on anything else. */
export function decodeDocOutcome(value: unknown, duplicate: boolean): DocResult {
  if (typeof value !== 'object' || value === null) throw new Error('document outcome is not an object');
  const o = value as Record<string, unknown>;
  if (typeof o.version !== 'number') throw new Error('document outcome lacks a version');
  if (o.status === 'applied' || o.status === 'merged') {
    return duplicate ? { status: o.status, version: o.version, duplicate } : { status: o.status, version: o.version };
  }
  if (o.status === 'conflict' && Array.isArray(o.paths) && typeof o.state === 'object' && o.state !== null) {
    const result: DocResult = { status: 'conflict', version: o.version, paths: o.paths.map(String), state: JSON.stringify(o.state) };
    if (duplicate) result.duplicate = true;
    return result;
  }
  throw new Error(`document outcome has an unknown status ${JSON.stringify(o.status)}`);
}

/**
 * The replies of one worker batch to one gateway in one pub/sub message: a single reply as it is, several as a
 * JSON array of them; only to gateways that write batches (ReceivedDocRequest.batched), which read both forms.
 */
export function encodeDocReplies(payloads: string[]): string {
  return payloads.length === 1 ? payloads[0] : `[${payloads.join(',')}]`;
}

/** Parses one reply message (a reply or an array of them); throws on a payload no worker sent. */
export function decodeDocReplies(payload: string): DocReply[] {
  const parsed = JSON.parse(payload) as unknown;
  if (!Array.isArray(parsed)) return [docReplyOf(parsed)];
  if (parsed.length === 0) throw new Error('empty array of document replies');
  return parsed.map(docReplyOf);
}

function docReplyOf(value: unknown): DocReply {
  const parsed = value as Record<string, unknown>;
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.id !== 'string') throw new Error('document reply lacks an id');
  const err = parsed.error as Record<string, unknown> | undefined;
  if (err !== undefined) {
    const kind = err.kind === 'doc' || err.kind === 'timeout' ? err.kind : 'internal';
    return { id: parsed.id, error: { kind, message: String(err.message) } };
  }
  return { id: parsed.id, result: decodeDocOutcome(parsed.result, parsed.duplicate === true) };
}

/** The `data` of the publication an accepted update makes on its channel (PROTOCOL.md "Documents"). */
export function encodeDocPublicationData(version: number, update: DocUpdate, status: 'applied' | 'merged'): string {
  return `{"version":${version},"base":${update.base},"ops":${JSON.stringify(update.ops)},"status":"${status}"}`;
}
