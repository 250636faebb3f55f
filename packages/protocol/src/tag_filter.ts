// Publication tags filters (`tf` on subscribe): Centrifugo v6's filter tree, checked once and compiled to a predicate.
//
// Grammar and semantics as https://centrifugal.dev/docs/server/publication_filtering documents them and
// centrifugal/centrifuge (internal/filter) evaluates them. A node is a comparison (`op` absent or empty) or a
// logical node (`op`: and | or | not, with `nodes`). Evaluation is linear in the sizes of the tags it reads and the
// values it compares with: set membership by hash, `ct` by a precomputed KMP table, numbers compared as decimal
// strings digit by digit, no regular expressions.

/** A filter node as clients send it (JSON object, or the FilterNode message of the Protobuf protocol). */
export interface TagFilterNode {
  op?: string;
  key?: string;
  cmp?: string;
  val?: string;
  vals?: string[];
  nodes?: TagFilterNode[];
}

/** Tests a publication's tags (absent tags are an empty map); never throws. */
export type TagFilter = (tags: Readonly<Record<string, string>> | undefined) => boolean;

export type TagFilterResult = { ok: true; filter: TagFilter } | { ok: false; error: string };

/** Bounds on a filter a client may send (Centrifugo sets none; these keep its cost per publication small). */
export const TAG_FILTER_LIMITS = {
  /** Levels of nesting, the root being level 1. */
  maxDepth: 16,
  /** Nodes in the whole tree, comparisons and logical nodes alike. */
  maxNodes: 100,
  /** Entries of one `vals` list. */
  maxVals: 100,
  /** Values in the whole tree (`val`s and `vals` entries). */
  maxValues: 1000,
  /** Characters of a key or a value. */
  maxStringLength: 256,
} as const;

const LOGICAL_OPS = ['and', 'or', 'not'] as const;
const COMPARISONS = ['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte'] as const;
type Comparison = (typeof COMPARISONS)[number];

const SET_CMP: ReadonlySet<string> = new Set(['in', 'nin']);
const EXISTENCE: ReadonlySet<string> = new Set(['ex', 'nex']);

class Refusal extends Error {}

type Node = Record<string, unknown>;

/** A string member; absent, null and "" are all "not set" (Protobuf cannot tell them apart). */
function optionalString(node: Node, field: string, path: string): string {
  const v = node[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new Refusal(`${path}.${field} must be a string`);
  if (v.length > TAG_FILTER_LIMITS.maxStringLength) {
    throw new Refusal(`${path}.${field} is longer than ${TAG_FILTER_LIMITS.maxStringLength} characters`);
  }
  return v;
}

/** An array member; absent, null and [] are all "not set". */
function optionalArray(node: Node, field: string, path: string, max: number): unknown[] {
  const v = node[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Refusal(`${path}.${field} must be an array`);
  if (v.length > max) throw new Refusal(`${path}.${field} has more than ${max} entries`);
  return v;
}

class Compiler {
  private nodes = 0;
  private values = 0;

  compile(input: unknown, path: string, depth: number): TagFilter {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new Refusal(`${path} must be an object`);
    }
    if (depth > TAG_FILTER_LIMITS.maxDepth) {
      throw new Refusal(`${path}: filter nested deeper than ${TAG_FILTER_LIMITS.maxDepth} levels`);
    }
    if (++this.nodes > TAG_FILTER_LIMITS.maxNodes) {
      throw new Refusal(`filter has more than ${TAG_FILTER_LIMITS.maxNodes} nodes`);
    }
    const node = input as Node;
    const op = optionalString(node, 'op', path);
    return op === '' ? this.comparison(node, path) : this.logical(node, op, path, depth);
  }

  private logical(node: Node, op: string, path: string, depth: number): TagFilter {
    if (!(LOGICAL_OPS as readonly string[]).includes(op)) {
      throw new Refusal(`${path}.op "${op}" is unknown: use and, or, not, or leave op out for a comparison`);
    }
    for (const field of ['key', 'cmp', 'val'] as const) {
      if (optionalString(node, field, path) !== '') throw new Refusal(`${path}: a "${op}" node takes no ${field}`);
    }
    if (optionalArray(node, 'vals', path, Infinity).length > 0) throw new Refusal(`${path}: a "${op}" node takes no vals`);
    const children = optionalArray(node, 'nodes', path, TAG_FILTER_LIMITS.maxNodes);
    if (op === 'not') {
      if (children.length !== 1) throw new Refusal(`${path}: a "not" node takes exactly one node in nodes`);
      const child = this.compile(children[0], `${path}.nodes[0]`, depth + 1);
      return (tags) => !child(tags);
    }
    if (children.length === 0) throw new Refusal(`${path}: an "${op}" node takes at least one node in nodes`);
    const compiled = children.map((c, i) => this.compile(c, `${path}.nodes[${i}]`, depth + 1));
    if (compiled.length === 1) return compiled[0];
    if (op === 'and') {
      return (tags) => {
        for (const f of compiled) if (!f(tags)) return false;
        return true;
      };
    }
    return (tags) => {
      for (const f of compiled) if (f(tags)) return true;
      return false;
    };
  }

  private comparison(node: Node, path: string): TagFilter {
    if (optionalArray(node, 'nodes', path, Infinity).length > 0) {
      throw new Refusal(`${path}: a comparison takes no nodes (set op to and, or, not to combine nodes)`);
    }
    const cmp = optionalString(node, 'cmp', path);
    if (cmp === '') throw new Refusal(`${path}.cmp is required: one of ${COMPARISONS.join(', ')} (or set op)`);
    if (!(COMPARISONS as readonly string[]).includes(cmp)) {
      throw new Refusal(`${path}.cmp "${cmp}" is unknown: use one of ${COMPARISONS.join(', ')}`);
    }
    const key = optionalString(node, 'key', path);
    const val = optionalString(node, 'val', path);
    const vals = optionalArray(node, 'vals', path, TAG_FILTER_LIMITS.maxVals);
    // As Centrifugo: every comparison but ex/nex needs a key.
    if (key === '' && !EXISTENCE.has(cmp)) throw new Refusal(`${path}.key is required for "${cmp}"`);
    if (EXISTENCE.has(cmp)) {
      if (val !== '' || vals.length > 0) throw new Refusal(`${path}: "${cmp}" takes no val or vals`);
    } else if (SET_CMP.has(cmp)) {
      if (val !== '') throw new Refusal(`${path}: "${cmp}" takes its values in vals, not val`);
      if (vals.length === 0) throw new Refusal(`${path}.vals must hold at least one value for "${cmp}"`);
      vals.forEach((v, i) => {
        if (typeof v !== 'string') throw new Refusal(`${path}.vals[${i}] must be a string`);
        if (v.length > TAG_FILTER_LIMITS.maxStringLength) {
          throw new Refusal(`${path}.vals[${i}] is longer than ${TAG_FILTER_LIMITS.maxStringLength} characters`);
        }
      });
    } else {
      if (vals.length > 0) throw new Refusal(`${path}: "${cmp}" takes one value in val, not vals`);
      if (val === '') throw new Refusal(`${path}.val is required for "${cmp}"`);
    }
    this.values += SET_CMP.has(cmp) ? vals.length : EXISTENCE.has(cmp) ? 0 : 1;
    if (this.values > TAG_FILTER_LIMITS.maxValues) {
      throw new Refusal(`filter has more than ${TAG_FILTER_LIMITS.maxValues} values`);
    }
    return leaf(cmp as Comparison, key, val, vals as string[], path);
  }
}

/** The tag's value, or undefined: own members only (a tag named "constructor" is not Object's). */
function tagValue(tags: Readonly<Record<string, string>> | undefined, key: string): string | undefined {
  if (tags === undefined || tags === null || !Object.hasOwn(tags, key)) return undefined;
  const v = tags[key];
  return typeof v === 'string' ? v : undefined;
}

function leaf(cmp: Comparison, key: string, val: string, vals: string[], path: string): TagFilter {
  switch (cmp) {
    case 'eq':
      return (tags) => tagValue(tags, key) === val;
    case 'neq':
      return (tags) => tagValue(tags, key) !== val;
    case 'in':
    case 'nin': {
      // As Centrifugo: a missing tag is compared as "", so it is "in" a list that holds "".
      const set = new Set(vals);
      const want = cmp === 'in';
      return (tags) => set.has(tagValue(tags, key) ?? '') === want;
    }
    case 'ex':
      return (tags) => tagValue(tags, key) !== undefined;
    case 'nex':
      return (tags) => tagValue(tags, key) === undefined;
    case 'sw':
      return (tags) => tagValue(tags, key)?.startsWith(val) ?? false;
    case 'ew':
      return (tags) => tagValue(tags, key)?.endsWith(val) ?? false;
    case 'ct': {
      const table = kmpTable(val);
      return (tags) => {
        const v = tagValue(tags, key);
        return v !== undefined && kmpContains(v, val, table);
      };
    }
    default: {
      const bound = parseDecimal(val);
      // Centrifugo accepts a non-numeric bound and then matches nothing; a refusal tells the client what to change.
      if (bound === null) throw new Refusal(`${path}.val "${val}" is not a decimal number (as 12, -3.5, +0.25)`);
      const accept = acceptsOrder(cmp);
      return (tags) => {
        const v = tagValue(tags, key);
        if (v === undefined) return false;
        const d = parseDecimal(v);
        return d !== null && accept(compareDecimals(d, bound));
      };
    }
  }
}

function acceptsOrder(cmp: Comparison): (order: number) => boolean {
  switch (cmp) {
    case 'gt':
      return (o) => o > 0;
    case 'gte':
      return (o) => o >= 0;
    case 'lt':
      return (o) => o < 0;
    default:
      return (o) => o <= 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Substring search in linear time.

/** KMP failure table: fail[i] is the length of the longest proper border of pattern[0..i]. */
function kmpTable(pattern: string): Int32Array {
  const fail = new Int32Array(pattern.length);
  let k = 0;
  for (let i = 1; i < pattern.length; i++) {
    while (k > 0 && pattern.charCodeAt(i) !== pattern.charCodeAt(k)) k = fail[k - 1];
    if (pattern.charCodeAt(i) === pattern.charCodeAt(k)) k++;
    fail[i] = k;
  }
  return fail;
}

function kmpContains(text: string, pattern: string, fail: Int32Array): boolean {
  const m = pattern.length;
  let k = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    while (k > 0 && c !== pattern.charCodeAt(k)) k = fail[k - 1];
    if (c === pattern.charCodeAt(k) && ++k === m) return true;
  }
  return m === 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Decimal numbers, as Centrifugo parses them (udecimal): [+-]digits[.digits], at most 19 digits after the point, at
// most 200 characters; no exponent, no leading or trailing point. Compared exactly, never through a float.

/** Sign, integer digits without leading zeros, fraction digits without trailing zeros; zero is never negative. */
interface Decimal {
  neg: boolean;
  int: string;
  frac: string;
}

const MAX_DECIMAL_LENGTH = 200;
const MAX_FRACTION_DIGITS = 19;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function parseDecimal(s: string): Decimal | null {
  const n = s.length;
  if (n === 0 || n > MAX_DECIMAL_LENGTH) return null;
  let i = 0;
  const sign = s.charCodeAt(0);
  if (sign === 0x2b /* + */ || sign === 0x2d /* - */) i++;
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intEnd = i;
  if (intEnd === intStart) return null;
  let fracStart = i;
  let fracEnd = i;
  if (i < n) {
    if (s.charCodeAt(i) !== 0x2e /* . */) return null;
    fracStart = ++i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    fracEnd = i;
    if (i < n || fracEnd === fracStart || fracEnd - fracStart > MAX_FRACTION_DIGITS) return null;
  }
  let a = intStart;
  while (a < intEnd && s.charCodeAt(a) === 0x30) a++;
  let b = fracEnd;
  while (b > fracStart && s.charCodeAt(b - 1) === 0x30) b--;
  const int = s.slice(a, intEnd);
  const frac = s.slice(fracStart, b);
  return { neg: sign === 0x2d && (int !== '' || frac !== ''), int, frac };
}

/** -1, 0 or 1 as x is less than, equal to or greater than y. */
function compareDecimals(x: Decimal, y: Decimal): number {
  if (x.neg !== y.neg) return x.neg ? -1 : 1;
  const magnitude = compareMagnitudes(x, y);
  return x.neg ? -magnitude : magnitude;
}

function compareMagnitudes(x: Decimal, y: Decimal): number {
  if (x.int.length !== y.int.length) return x.int.length < y.int.length ? -1 : 1;
  if (x.int !== y.int) return x.int < y.int ? -1 : 1;
  // Fractions without trailing zeros compare as strings: "5" > "45", "5" < "51".
  if (x.frac === y.frac) return 0;
  return x.frac < y.frac ? -1 : 1;
}

/**
 * Checks an untrusted filter and compiles it, or says what is wrong with it (for a 107 Bad Request). `input` is the
 * `tf` member as decoded from JSON or Protobuf; paths in messages start at `tf`.
 */
export function compileTagFilter(input: unknown): TagFilterResult {
  try {
    return { ok: true, filter: new Compiler().compile(input, 'tf', 1) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: e.message };
    throw e;
  }
}
