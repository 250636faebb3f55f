// The merge-or-reject decision for a versioned document: pure, shared by the Redis versioning worker and the memory engine.
//
// Rules (ARCHITECTURE.md "Documents: merge or reject"; validation of the request is in doc_ops.ts):
// - A document is `{version, state, writes, floor}`: `state` is a JSON object; a new document is version 0,
//   state {}. Every accepted update makes exactly one new version (version + 1), even one that only tests.
// - `update.base > version` is a DocError (the client cannot have seen that version).
//   `base == version`: apply → "applied".
//   `base < version`, mode "strict": conflict.
//   `base < version`, mode "merge": conflict when a path of one of the update's `set`, `del` or `test` ops
//   "was written after base"; otherwise apply to the current state → "merged". `incr`, `add` and `remove`
//   commute, so versions never make them conflict; applied to the current state, a wrong type there is a
//   DocError like any other.
// - "p was written after base": some accepted update with version > base wrote p, an ancestor of p or a
//   descendant of p. Writes are recorded per path: every `set`, `del`, `incr`, `add` and `remove` records
//   its path at the new version, whether or not it changed the value (a `del` of an absent member, an `add`
//   of a present element: comparing would cost more than the rare spurious conflict). `test` records nothing.
// - The conflict paths are the update's own paths (canonical, deduplicated, sorted by code unit) that were
//   written after base: in merge mode those of set/del/test ops, in strict mode those of every op (so strict
//   mode may report a conflict with an empty list when the overlapping writes were elsewhere). A failing
//   `test` is a conflict whose paths are that test's path. A conflict carries the current version and state.
// - All-or-nothing: ops apply in order to a draft; a DocError or a failing test abandons the draft. The input
//   snapshot and the update are never mutated, and the new state shares every untouched subtree with the old
//   one (objects on a written path are copied once per update). Callers must treat snapshots, states and op
//   values as immutable: they are shared, not cloned.
// - A DecideScope is the one exception, for a caller that decides a chain of updates and keeps only the last
//   document (a worker's group commit): objects and writes lists an update of the chain made are changed in
//   place by the next one rather than copied again, and an abandoned update puts back what it changed (member
//   order included). The chain's first update copies as above, so the snapshot it started from stays intact.
// - Applying: `set` creates missing intermediate objects. An intermediate that exists but is not an object
//   (a number, an array, null, ...) is a DocError for every op but `test`: paths name object members only,
//   never array elements. `del` and `remove` on a missing member (or below a missing intermediate) are
//   no-ops that create nothing. `incr` treats a missing member as 0 and refuses a result JSON cannot carry
//   (overflow to Infinity). `add` appends the value unless an element deep-equals it, creating [value] when
//   the member is missing; `remove` drops every element deep-equal to the value. `test` reads the draft
//   (it sees the update's earlier ops); without a value it passes when the member is absent, and a path
//   through a non-object reads as absent.
// - Size: when the new state encodes to more than maxDocBytes of UTF-8 JSON and is larger than the old
//   one, the update is a DocError (a document over a lowered limit may still shrink). A caller that knows
//   (a bound on) the length of the old state's encoding passes it, and the new state is then encoded only when
//   that bound plus what the ops can add (stepGrowth) could reach the limit; otherwise decide encodes it.
// - Bounded memory: `writes` lists [path, version] pairs oldest first, at most maxTrackedPaths of them, one
//   per path. Writing p drops the entries of p and of its descendants (p's newer entry answers every
//   question they could). When the list is still too long the oldest entries go, and `floor` becomes the
//   newest dropped version (entries sharing that version go too). Writes at versions <= floor may be
//   forgotten, so an update with base < floor is treated as if every one of its paths had been written
//   after base: in merge mode it conflicts unless all its ops commute; strict mode is unaffected (a stale
//   base conflicts anyway) except that it then lists all its paths. Answers for base >= floor are exact,
//   because a forgotten write is never newer than base.
// - Cost per update: a scan of the newest writes (stopping at base), a copy of the writes list, a shallow
//   copy of each object on a written path (the root included, so documents with very many top-level
//   members pay for them), and one JSON encoding of the new state for the size limit unless the caller's
//   length bound rules the limit out.
import type { Json } from './types';
import { DocError, formatPath, parsePath, resolveLimits, type DocLimits, type DocOp, type DocUpdate } from './doc_ops';

export type JsonObject = { [key: string]: Json };

export type DocWrite = [path: string, version: number];

export interface DocSnapshot {
  version: number;
  state: JsonObject;
  /** [canonical path, version of the last update that wrote it], oldest first (pruned: see the file header). */
  writes: DocWrite[];
  /** Writes at or below this version may be missing from `writes`. */
  floor: number;
}

export type Decision =
  | {
      status: 'applied' | 'merged';
      /** The new document, version + 1. */
      doc: DocSnapshot;
      /**
       * `doc.state` encoded as JSON when decide encoded it for the size limit (store it rather than encoding
       * again); always when the caller passed no length bound.
       */
      encoded: string | undefined;
      /** The length of `encoded` (UTF-16 units), or an upper bound on it when it was not encoded. */
      length: number;
    }
  | {
      status: 'conflict';
      /** The update's paths that changed since its base, sorted. */
      paths: string[];
      /** The current document, unchanged. */
      version: number;
      state: JsonObject;
    };

export function emptyDoc(): DocSnapshot {
  return { version: 0, state: {}, writes: [], floor: 0 };
}

const hasOwn = Object.prototype.hasOwnProperty;
const SLASH = 0x2f;

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function member(o: JsonObject, key: string): Json | undefined {
  return hasOwn.call(o, key) ? o[key] : undefined;
}

/** Plain assignment would set the prototype for "__proto__", a key JSON.parse happily produces. */
function put(o: JsonObject, key: string, value: Json): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  else o[key] = value;
}

/** Deep equality of JSON values; member order does not matter. */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (!hasOwn.call(b, k) || !jsonEqual(a[k], b[k])) return false;
  return true;
}

/** p and q are the same member or one contains the other (canonical pointers: "/" only separates). */
function overlaps(p: string, q: string): boolean {
  if (p.length === q.length) return p === q;
  const [short, long] = p.length < q.length ? [p, q] : [q, p];
  return long.charCodeAt(short.length) === SLASH && long.startsWith(short);
}

/** The candidates that were written after `base` (see the header), sorted. */
function changedSince(doc: DocSnapshot, base: number, candidates: string[]): string[] {
  if (candidates.length === 0) return [];
  if (base < doc.floor) return [...new Set(candidates)].sort();
  const hit = new Set<string>();
  // Newest first: a slightly stale base only looks at the last few writes.
  for (let i = doc.writes.length - 1; i >= 0 && doc.writes[i][1] > base; i--) {
    const q = doc.writes[i][0];
    for (const p of candidates) if (overlaps(p, q)) hit.add(p);
  }
  return [...hit].sort();
}

interface Step {
  op: DocOp;
  keys: string[];
  /** Canonical. */
  path: string;
  index: number;
}

/**
 * Objects and writes lists that a chain of decide calls made and that nobody but the caller holds: a call given
 * the scope changes them in place instead of copying them (see the file header). One scope per chain; the caller
 * must keep no document of the chain but the last.
 */
export class DecideScope {
  /** State objects made by decisions of this chain. */
  readonly objects = new Set<JsonObject>();
  /** Writes lists made by decisions of this chain. */
  readonly writes = new WeakSet<DocWrite[]>();
}

/**
 * Copy-on-write view of the state: objects on a written path are copied once, everything else is shared. With a
 * scope, objects an earlier update of the chain made are changed in place, each change logged so that an
 * abandoned update can be undone.
 */
class Draft {
  readonly root: JsonObject;
  /** Objects that may be changed: made by this update, or by an earlier one of the scope. */
  private readonly owned: Set<JsonObject>;
  /** Objects this update made: changed without logging. */
  private readonly made: Set<JsonObject>;
  private readonly undo: Array<() => void> = [];

  constructor(state: JsonObject, scope?: DecideScope) {
    this.owned = scope?.objects ?? new Set<JsonObject>();
    this.made = scope ? new Set<JsonObject>() : this.owned;
    if (scope?.objects.has(state)) {
      this.root = state;
    } else {
      this.root = { ...state };
      this.adopt(this.root);
    }
  }

  /** The value at `keys`, undefined when absent (a path through a non-object is absent). */
  get(keys: string[]): Json | undefined {
    let v: Json | undefined = this.root;
    for (const k of keys) {
      if (!isObject(v)) return undefined;
      v = member(v, k);
    }
    return v;
  }

  /**
   * The writable object that holds the last key of `step`; missing intermediates are created when `create`,
   * otherwise their absence gives undefined. An intermediate that is not an object is a DocError.
   */
  parent(step: Step, create: boolean, verb: string): JsonObject | undefined {
    const { keys } = step;
    let parent = this.root;
    for (let i = 0; i < keys.length - 1; i++) {
      const child = member(parent, keys[i]);
      let next: JsonObject;
      if (child === undefined) {
        if (!create) return undefined;
        next = {};
        this.adopt(next);
        this.set(parent, keys[i], next);
      } else if (!isObject(child)) {
        const at = formatPath(keys.slice(0, i + 1));
        const hint = Array.isArray(child) ? ' (paths name object members, not array elements)' : '';
        throw opError(step, `cannot ${verb} ${step.path}: ${at} holds ${typeName(child)}${hint}`);
      } else if (this.owned.has(child)) {
        next = child;
      } else {
        next = { ...child };
        this.adopt(next);
        this.set(parent, keys[i], next);
      }
      parent = next;
    }
    return parent;
  }

  /** Sets a member of a writable object. */
  set(o: JsonObject, key: string, value: Json): void {
    if (!this.made.has(o)) {
      if (hasOwn.call(o, key)) {
        const old = o[key];
        this.undo.push(() => put(o, key, old));
      } else {
        // A new member goes last; removing it restores the order.
        this.undo.push(() => delete o[key]);
      }
    }
    put(o, key, value);
  }

  /** Deletes a member of a writable object. */
  delete(o: JsonObject, key: string): void {
    if (!this.made.has(o)) {
      // Put back in its place: the members as they were, in their order.
      const before = Object.entries(o);
      this.undo.push(() => {
        for (const k of Object.keys(o)) delete o[k];
        for (const [k, v] of before) put(o, k, v);
      });
    }
    delete o[key];
  }

  /** Undoes this update's changes to objects it did not make (only a scope's objects have any). */
  abandon(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]();
    this.undo.length = 0;
  }

  private adopt(o: JsonObject): void {
    this.owned.add(o);
    if (this.made !== this.owned) this.made.add(o);
  }
}

function opError(step: Step, message: string): DocError {
  return new DocError(`ops[${step.index}]: ${message}`);
}

/** Applies one op to the draft; false when it is a `test` that fails. */
function applyStep(draft: Draft, step: Step): boolean {
  const { op } = step;
  const last = step.keys[step.keys.length - 1];
  switch (op.op) {
    case 'set': {
      draft.set(draft.parent(step, true, 'set') as JsonObject, last, op.value);
      return true;
    }
    case 'del': {
      const parent = draft.parent(step, false, 'del');
      if (parent !== undefined && hasOwn.call(parent, last)) draft.delete(parent, last);
      return true;
    }
    case 'incr': {
      const parent = draft.parent(step, true, 'incr') as JsonObject;
      const found = member(parent, last);
      const cur = found === undefined ? 0 : found;
      if (typeof cur !== 'number') throw opError(step, `cannot incr ${step.path}: it holds ${typeName(cur)}`);
      const sum = cur + op.value;
      if (!Number.isFinite(sum)) throw opError(step, `incr of ${step.path} overflows: ${cur} + ${op.value} is not a finite number`);
      draft.set(parent, last, sum);
      return true;
    }
    case 'add': {
      const parent = draft.parent(step, true, 'add to') as JsonObject;
      const cur = member(parent, last);
      if (cur === undefined) {
        draft.set(parent, last, [op.value]);
      } else if (!Array.isArray(cur)) {
        throw opError(step, `cannot add to ${step.path}: it holds ${typeName(cur)}`);
      } else if (!cur.some((e) => jsonEqual(e, op.value))) {
        draft.set(parent, last, [...cur, op.value]);
      }
      return true;
    }
    case 'remove': {
      const parent = draft.parent(step, false, 'remove from');
      const cur = parent === undefined ? undefined : member(parent, last);
      if (cur === undefined) return true;
      if (!Array.isArray(cur)) throw opError(step, `cannot remove from ${step.path}: it holds ${typeName(cur)}`);
      const kept = cur.filter((e) => !jsonEqual(e, op.value));
      if (kept.length !== cur.length) draft.set(parent as JsonObject, last, kept);
      return true;
    }
    case 'test': {
      const cur = draft.get(step.keys);
      return op.value === undefined ? cur === undefined : cur !== undefined && jsonEqual(cur, op.value);
    }
  }
}

/** Longest JSON encoding of a JS number ("-0.0000012345678901234567" is 25 characters). */
const MAX_NUMBER_LENGTH = 25;

/** An upper bound on the JSON encoding of a member name: every UTF-16 unit escapes to at most 6 characters. */
function keyBound(key: string): number {
  return 6 * key.length + 2;
}

/**
 * An upper bound on how much one op can lengthen the state's JSON encoding (UTF-16 units): a new member
 * `,"key":value` per intermediate it may create (`{}` as the value) and for its own member, or a new element.
 */
function stepGrowth(step: Step): number {
  const { op, keys } = step;
  if (op.op === 'del' || op.op === 'remove' || op.op === 'test') return 0;
  let growth = 0;
  for (let i = 0; i < keys.length - 1; i++) growth += keyBound(keys[i]) + 4;
  const last = keyBound(keys[keys.length - 1]) + 2;
  if (op.op === 'incr') return growth + last + MAX_NUMBER_LENGTH;
  const value = JSON.stringify(op.value).length;
  // `add` appends `,value` to an array or creates `"key":[value]`.
  return growth + last + value + (op.op === 'add' ? 2 : 0);
}

/** `w` is `q` or lies inside it (canonical pointers). */
function within(w: string, q: string): boolean {
  return w.length === q.length ? w === q : w.length > q.length && w.charCodeAt(q.length) === SLASH && w.startsWith(q);
}

/** The writes list after an update at `version` wrote `written`: covered entries folded, oldest pruned past `max`. */
function recordWrites(doc: DocSnapshot, written: string[], version: number, max: number, scope?: DecideScope): { writes: DocWrite[]; floor: number } {
  // Distinct written paths not inside another one: an entry for /a at this version answers for /a/b too.
  const fresh: string[] = [];
  for (const w of new Set(written)) if (!written.some((a) => a !== w && within(w, a))) fresh.push(w);
  let writes: DocWrite[];
  if (scope?.writes.has(doc.writes)) {
    // The chain's own list: drop the covered entries in place.
    writes = doc.writes;
    if (fresh.length > 0) {
      let kept = 0;
      for (let i = 0; i < writes.length; i++) {
        const entry = writes[i];
        if (!fresh.some((w) => within(entry[0], w))) writes[kept++] = entry;
      }
      writes.length = kept;
    }
  } else {
    writes = fresh.length === 0 ? doc.writes.slice() : doc.writes.filter(([q]) => !fresh.some((w) => within(q, w)));
    scope?.writes.add(writes);
  }
  for (const w of fresh) writes.push([w, version]);
  let floor = doc.floor;
  if (writes.length > max) {
    let cut = writes.length - max;
    floor = Math.max(floor, writes[cut - 1][1]);
    while (cut < writes.length && writes[cut][1] <= floor) cut++;
    writes.splice(0, cut);
  }
  return { writes, floor };
}

/**
 * Decides `update` against `doc`: the new document, or a conflict. Throws DocError for problems the
 * caller caused (a base ahead of the document, a wrong type met while applying, an oversize result).
 * `encodedLength`: the length of `doc.state`'s JSON encoding, or an upper bound on it (see the file header).
 * Never mutates `doc` or `update`, unless `scope` holds `doc`'s state or writes list (then it changes them in
 * place, and puts them back as they were when it throws or answers a conflict).
 */
export function decide(doc: DocSnapshot, update: DocUpdate, limits?: Partial<DocLimits>, encodedLength?: number, scope?: DecideScope): Decision {
  const lim = resolveLimits(limits);
  if (update.base > doc.version) {
    throw new DocError(`"base" ${update.base} is ahead of the document's version ${doc.version}`);
  }
  const steps: Step[] = update.ops.map((op, index) => {
    let keys: string[];
    try {
      keys = parsePath(op.path, lim);
    } catch (err) {
      if (err instanceof DocError) throw new DocError(`ops[${index}]: ${err.message}`);
      throw err;
    }
    return { op, keys, path: formatPath(keys), index };
  });

  const stale = update.base < doc.version;
  if (stale) {
    const checked = update.mode === 'strict' ? steps : steps.filter((s) => s.op.op === 'set' || s.op.op === 'del' || s.op.op === 'test');
    const paths = changedSince(doc, update.base, checked.map((s) => s.path));
    if (update.mode === 'strict' || paths.length > 0) return { status: 'conflict', paths, version: doc.version, state: doc.state };
  }

  // UTF-8 takes at most 3 bytes per UTF-16 unit: no encoding, or no exact count, when the limit cannot be reached.
  let length = Infinity;
  if (encodedLength !== undefined) {
    length = encodedLength;
    for (const step of steps) length += stepGrowth(step);
  }
  const mayExceed = length * 3 > lim.maxDocBytes;
  // Changed in place, the old state is gone once applied: measure it first when the limit may matter.
  const oldBytes = scope?.objects.has(doc.state) && mayExceed ? Buffer.byteLength(JSON.stringify(doc.state)) : undefined;

  const draft = new Draft(doc.state, scope);
  const written: string[] = [];
  try {
    for (const step of steps) {
      if (!applyStep(draft, step)) {
        draft.abandon();
        return { status: 'conflict', paths: [step.path], version: doc.version, state: doc.state };
      }
      if (step.op.op !== 'test') written.push(step.path);
    }
  } catch (err) {
    draft.abandon();
    throw err;
  }

  let encoded: string | undefined;
  if (mayExceed) {
    encoded = JSON.stringify(draft.root);
    length = encoded.length;
    if (length * 3 > lim.maxDocBytes) {
      const bytes = Buffer.byteLength(encoded);
      if (bytes > lim.maxDocBytes && bytes > (oldBytes ?? Buffer.byteLength(JSON.stringify(doc.state)))) {
        draft.abandon();
        throw new DocError(`the update would make the document ${bytes} bytes encoded; the limit is ${lim.maxDocBytes}`);
      }
    }
  }

  const version = doc.version + 1;
  const { writes, floor } = recordWrites(doc, written, version, lim.maxTrackedPaths, scope);
  return { status: stale ? 'merged' : 'applied', doc: { version, state: draft.root, writes, floor }, encoded, length };
}
