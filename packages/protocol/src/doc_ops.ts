// Document update requests: the op and update types, their limits, JSON Pointer paths, and validation of untrusted input.
//
// Rules settled here (the merge itself is in doc_merge.ts):
// - An update is `{base, ops, mode?, key?}`. `base` is required (a non-negative integer); `mode` is "merge"
//   (the default) or "strict"; `key` is an optional idempotency key (1..maxKeyLength characters) that the
//   merge ignores. Other top-level members are ignored, because the RPC and HTTP bodies carry `channel` in
//   the same object. `null` counts as absent for `mode` and `key`, as everywhere else in the protocol.
// - `ops` holds 1..maxOps ops. An op is an object with exactly the members its kind takes: unknown members
//   are refused, because a misspelt `value` on `test` would otherwise silently mean "must be absent".
//   `set`, `add`, `remove` need `value` (`null` is a value); `incr` needs a finite number; `del` takes no
//   value; `test` without `value` means "the member must be absent".
// - Paths are RFC 6901 JSON Pointers to object members: "/a/b" is member "b" of member "a"; "~1" is "/"
//   and "~0" is "~" inside a key; any other "~" is invalid. The root ("") is refused (a document is always
//   an object; write its members). "/" is the member whose key is the empty string, as in RFC 6901.
//   Segments are always member keys, never array indices: "/tags/0" is member "0" of an object.
//   The RFC 6901 encoding is one-to-one, so a valid pointer is already canonical; parsing and re-encoding
//   (`formatPath(parsePath(p))`) is the identity and callers may use the string as the member's key.
// - Values must be JSON (plain objects, arrays, strings, finite numbers, booleans, null), nested at most
//   maxValueDepth containers deep (so paths plus values stay far from the stack limit) and at most
//   maxValueBytes long once encoded as UTF-8 JSON.
// - Every problem a caller can cause is a DocError whose message names it, prefixed with the op's index
//   (`ops[2]: incr needs a finite number value`); the gateway answers it with protocol error 107.
import type { Json } from './types';

export type DocMode = 'merge' | 'strict';

export type DocOp =
  | { op: 'set'; path: string; value: Json }
  | { op: 'del'; path: string }
  | { op: 'incr'; path: string; value: number }
  | { op: 'add'; path: string; value: Json }
  | { op: 'remove'; path: string; value: Json }
  /** `value` absent: the member must be absent. */
  | { op: 'test'; path: string; value?: Json };

export type DocOpName = DocOp['op'];

/** A validated update; paths are canonical JSON Pointers. */
export interface DocUpdate {
  base: number;
  ops: DocOp[];
  mode: DocMode;
  key?: string;
}

export interface DocLimits {
  /** Ops in one update. */
  maxOps: number;
  /** Segments in one path. */
  maxPathDepth: number;
  /** Characters in one path (as sent, escapes included). */
  maxPathLength: number;
  /** UTF-8 bytes of the whole document state encoded as JSON; an update that would exceed it is refused. */
  maxDocBytes: number;
  /** UTF-8 bytes of one op's value encoded as JSON. */
  maxValueBytes: number;
  /** Nested arrays/objects inside one op's value. */
  maxValueDepth: number;
  /** Characters in an idempotency key. */
  maxKeyLength: number;
  /** Per-path versions a document remembers; older ones are folded into its floor (see doc_merge.ts). */
  maxTrackedPaths: number;
}

export const DEFAULT_DOC_LIMITS: Readonly<DocLimits> = Object.freeze({
  maxOps: 100,
  maxPathDepth: 32,
  maxPathLength: 1024,
  maxDocBytes: 1024 * 1024,
  maxValueBytes: 64 * 1024,
  maxValueDepth: 64,
  maxKeyLength: 256,
  maxTrackedPaths: 1024,
});

/** A problem with the request the caller sent (protocol error 107); nothing was written. */
export class DocError extends Error {
  override readonly name = 'DocError';
}

/** Limits objects resolveLimits made (frozen): passed again, they are returned as they are. */
const RESOLVED = new WeakSet<object>([DEFAULT_DOC_LIMITS]);

export function resolveLimits(limits?: Partial<DocLimits>): DocLimits {
  if (limits === undefined) return DEFAULT_DOC_LIMITS;
  if (RESOLVED.has(limits)) return limits as DocLimits;
  const out: DocLimits = { ...DEFAULT_DOC_LIMITS };
  for (const k of Object.keys(DEFAULT_DOC_LIMITS) as (keyof DocLimits)[]) {
    const v = limits[k];
    if (v === undefined) continue;
    // A bad limit is a bug in our configuration code, not a bad request.
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`doc limit ${k} must be a positive integer, got ${v}`);
    out[k] = v;
  }
  Object.freeze(out);
  RESOLVED.add(out);
  return out;
}

/** The member keys a JSON Pointer names, outermost first. Throws DocError on an invalid or root pointer. */
export function parsePath(path: string, limits: Partial<DocLimits> = DEFAULT_DOC_LIMITS): string[] {
  const maxLength = limits.maxPathLength ?? DEFAULT_DOC_LIMITS.maxPathLength;
  const maxDepth = limits.maxPathDepth ?? DEFAULT_DOC_LIMITS.maxPathDepth;
  if (path.length > maxLength) {
    throw new DocError(`path is ${path.length} characters long; the limit is ${maxLength}`);
  }
  if (path === '') throw new DocError('path "" is the whole document; ops address its members, e.g. "/name"');
  if (path.charCodeAt(0) !== 0x2f /* / */ || /~(?![01])/.test(path)) {
    throw new DocError(`path ${JSON.stringify(path)} is not a valid JSON Pointer`);
  }
  const keys = path.slice(1).split('/');
  if (keys.length > maxDepth) {
    throw new DocError(`path ${JSON.stringify(path)} is ${keys.length} levels deep; the limit is ${maxDepth}`);
  }
  if (path.indexOf('~') !== -1) {
    for (let i = 0; i < keys.length; i++) keys[i] = keys[i].replace(/~1/g, '/').replace(/~0/g, '~');
  }
  return keys;
}

/** The canonical JSON Pointer of member keys (the inverse of parsePath). */
export function formatPath(keys: readonly string[]): string {
  let out = '';
  for (const k of keys) out += '/' + (k.indexOf('~') === -1 && k.indexOf('/') === -1 ? k : k.replace(/~/g, '~0').replace(/\//g, '~1'));
  return out;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (v === undefined) return 'undefined';
  return `a ${typeof v}`;
}

/** Throws unless `v` is JSON nested at most `maxDepth` containers deep. */
function checkJson(v: unknown, depth: number, maxDepth: number): void {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new DocError(`value holds ${v}, which JSON cannot carry`);
      return;
    case 'object': {
      if (v === null) return;
      if (depth >= maxDepth) throw new DocError(`value is nested more than ${maxDepth} levels deep`);
      if (Array.isArray(v)) {
        // Indexed loop, not for-of over entries: a hole reads as undefined and is refused.
        for (let i = 0; i < v.length; i++) checkJson(v[i], depth + 1, maxDepth);
        return;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new DocError('value holds an object that is not plain JSON');
      for (const k of Object.keys(v)) checkJson((v as Obj)[k], depth + 1, maxDepth);
      return;
    }
    default:
      throw new DocError(`value holds ${typeName(v)}, which is not JSON`);
  }
}

function checkValue(v: unknown, limits: DocLimits): Json {
  checkJson(v, 0, limits.maxValueDepth);
  const bytes = Buffer.byteLength(JSON.stringify(v));
  if (bytes > limits.maxValueBytes) {
    throw new DocError(`value is ${bytes} bytes encoded; the limit is ${limits.maxValueBytes}`);
  }
  return v as Json;
}

const OP_NAMES: readonly DocOpName[] = ['set', 'del', 'incr', 'add', 'remove', 'test'];

function parseOp(raw: unknown, limits: DocLimits): DocOp {
  if (!isObject(raw)) throw new DocError(`must be an object, got ${typeName(raw)}`);
  const name = raw.op;
  if (typeof name !== 'string' || !(OP_NAMES as readonly string[]).includes(name)) {
    throw new DocError(`"op" must be one of ${OP_NAMES.join(', ')}`);
  }
  for (const k of Object.keys(raw)) {
    if (k !== 'op' && k !== 'path' && k !== 'value') throw new DocError(`unknown member ${JSON.stringify(k)} in a ${name} op`);
  }
  if (typeof raw.path !== 'string') throw new DocError(`"path" must be a string`);
  const path = formatPath(parsePath(raw.path, limits));
  const hasValue = raw.value !== undefined;
  switch (name as DocOpName) {
    case 'del':
      if (hasValue) throw new DocError('del takes no value');
      return { op: 'del', path };
    case 'incr':
      if (typeof raw.value !== 'number' || !Number.isFinite(raw.value)) throw new DocError('incr needs a finite number value');
      return { op: 'incr', path, value: raw.value };
    case 'test':
      return hasValue ? { op: 'test', path, value: checkValue(raw.value, limits) } : { op: 'test', path };
    case 'set':
    case 'add':
    case 'remove':
      if (!hasValue) throw new DocError(`${name} needs a value`);
      return { op: name as 'set' | 'add' | 'remove', path, value: checkValue(raw.value, limits) };
  }
}

/** Validates an update from a client RPC or the HTTP API. Throws DocError naming the first problem found. */
export function parseUpdate(raw: unknown, limits?: Partial<DocLimits>): DocUpdate {
  const lim = resolveLimits(limits);
  if (!isObject(raw)) throw new DocError(`an update must be an object, got ${typeName(raw)}`);
  const base = raw.base;
  if (base === undefined || base === null) throw new DocError('"base" is required: the version the update was made against (0 for a new document)');
  if (typeof base !== 'number' || !Number.isSafeInteger(base) || base < 0) throw new DocError('"base" must be a non-negative integer');

  let mode: DocMode = 'merge';
  if (raw.mode !== undefined && raw.mode !== null) {
    if (raw.mode !== 'merge' && raw.mode !== 'strict') throw new DocError('"mode" must be "merge" or "strict"');
    mode = raw.mode;
  }

  let key: string | undefined;
  if (raw.key !== undefined && raw.key !== null) {
    if (typeof raw.key !== 'string') throw new DocError('"key" must be a string');
    if (raw.key === '') throw new DocError('"key" must not be empty');
    if (raw.key.length > lim.maxKeyLength) throw new DocError(`"key" is ${raw.key.length} characters long; the limit is ${lim.maxKeyLength}`);
    key = raw.key;
  }

  if (!Array.isArray(raw.ops)) throw new DocError('"ops" must be an array of ops');
  if (raw.ops.length === 0) throw new DocError('"ops" must hold at least one op');
  if (raw.ops.length > lim.maxOps) throw new DocError(`"ops" holds ${raw.ops.length} ops; the limit is ${lim.maxOps}`);
  const ops: DocOp[] = [];
  for (let i = 0; i < raw.ops.length; i++) {
    try {
      ops.push(parseOp(raw.ops[i], lim));
    } catch (err) {
      if (err instanceof DocError) throw new DocError(`ops[${i}]: ${err.message}`);
      throw err;
    }
  }

  const update: DocUpdate = { base, ops, mode };
  if (key !== undefined) update.key = key;
  return update;
}
