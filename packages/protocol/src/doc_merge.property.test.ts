// decide() against a deliberately simple model: full log, full states, brute-force overlap checks, no pruning.
import fc from 'fast-check';
import type { Json } from './types';
import { DecideScope, decide, emptyDoc, type DocSnapshot, type JsonObject } from './doc_merge';
import { DocError, type DocOp, type DocUpdate } from './doc_ops';

/** Small enough that pruning and the floor come into play within a few updates. */
const MAX_TRACKED = 8;
const LIMITS = { maxTrackedPaths: MAX_TRACKED };

/** The paths the histories use, with the member keys the model works with (no pointer parsing in the model). */
const PATHS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['/a', ['a']],
  ['/a/b', ['a', 'b']],
  ['/a/c', ['a', 'c']],
  ['/a/b/d', ['a', 'b', 'd']],
  ['/b', ['b']],
  ['/b/a', ['b', 'a']],
  ['/ab', ['ab']],
  ['/a~1b', ['a/b']],
  ['/~0', ['~']],
  ['/', ['']],
  ['//a', ['', 'a']],
  ['/c', ['c']],
  ['/d', ['d']],
  ['/e/f', ['e', 'f']],
  ['/e/g', ['e', 'g']],
];
const KEYS = new Map(PATHS.map(([p, k]) => [p, k]));

// ---------------------------------------------------------------------------------------------------------
// The model

type Outcome = { kind: 'applied' | 'merged'; state: JsonObject } | { kind: 'conflict'; paths: string[] } | { kind: 'error' };

class ModelError extends Error {}

const isObj = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON with sorted members: equal strings ⇔ equal values. */
function canon(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

const same = (a: Json, b: Json): boolean => canon(a) === canon(b);

/** a is b, or one lies inside the other. */
function overlap(a: readonly string[], b: readonly string[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function modelGet(state: JsonObject, keys: readonly string[]): Json | undefined {
  let v: Json | undefined = state;
  for (const k of keys) {
    if (!isObj(v) || !Object.keys(v).includes(k)) return undefined;
    v = v[k];
  }
  return v;
}

/** The object holding the last key (created on the way when `create`); null when missing and not `create`. */
function modelParent(state: JsonObject, keys: readonly string[], create: boolean): JsonObject | null {
  let o = state;
  for (const k of keys.slice(0, -1)) {
    if (!(k in o)) {
      if (!create) return null;
      o[k] = {};
    }
    const next = o[k];
    if (!isObj(next)) throw new ModelError();
    o = next;
  }
  return o;
}

const copy = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;

/** Applies the ops to a copy; a failing test gives its path instead. */
function modelApply(state: JsonObject, ops: DocOp[]): { state: JsonObject } | { failedTest: string } {
  const s = copy(state) as JsonObject;
  for (const op of ops) {
    const keys = KEYS.get(op.path) as readonly string[];
    const last = keys[keys.length - 1];
    switch (op.op) {
      case 'set':
        (modelParent(s, keys, true) as JsonObject)[last] = copy(op.value);
        break;
      case 'del': {
        const p = modelParent(s, keys, false);
        if (p) delete p[last];
        break;
      }
      case 'incr': {
        const p = modelParent(s, keys, true) as JsonObject;
        const cur = last in p ? p[last] : 0;
        if (typeof cur !== 'number') throw new ModelError();
        p[last] = cur + op.value;
        break;
      }
      case 'add': {
        const p = modelParent(s, keys, true) as JsonObject;
        if (!(last in p)) p[last] = [copy(op.value)];
        else {
          const cur = p[last];
          if (!Array.isArray(cur)) throw new ModelError();
          if (!cur.some((e) => same(e, op.value))) p[last] = [...cur, copy(op.value)];
        }
        break;
      }
      case 'remove': {
        const p = modelParent(s, keys, false);
        if (!p || !(last in p)) break;
        const cur = p[last];
        if (!Array.isArray(cur)) throw new ModelError();
        p[last] = cur.filter((e) => !same(e, op.value));
        break;
      }
      case 'test': {
        const cur = modelGet(s, keys);
        const ok = op.value === undefined ? cur === undefined : cur !== undefined && same(cur, op.value);
        if (!ok) return { failedTest: op.path };
        break;
      }
    }
  }
  return { state: s };
}

class Model {
  /** states[v] is the state at version v. */
  readonly states: JsonObject[] = [{}];
  /** log[v - 1]: the paths version v wrote. */
  readonly log: string[][] = [];

  get version(): number {
    return this.states.length - 1;
  }

  decide(u: DocUpdate): Outcome {
    if (u.base < this.version) {
      const checked = u.mode === 'strict' ? u.ops : u.ops.filter((o) => o.op === 'set' || o.op === 'del' || o.op === 'test');
      const hit = new Set<string>();
      for (const op of checked) {
        for (let v = u.base + 1; v <= this.version; v++) {
          if (this.log[v - 1].some((w) => overlap(KEYS.get(w) as readonly string[], KEYS.get(op.path) as readonly string[]))) hit.add(op.path);
        }
      }
      if (u.mode === 'strict' || hit.size > 0) return { kind: 'conflict', paths: [...hit].sort() };
    }
    let next: ReturnType<typeof modelApply>;
    try {
      next = modelApply(this.states[this.version], u.ops);
    } catch (err) {
      if (err instanceof ModelError) return { kind: 'error' };
      throw err;
    }
    if ('failedTest' in next) return { kind: 'conflict', paths: [next.failedTest] };
    return { kind: u.base === this.version ? 'applied' : 'merged', state: next.state };
  }

  commit(u: DocUpdate, state: JsonObject): void {
    this.states.push(state);
    this.log.push(u.ops.filter((o) => o.op !== 'test').map((o) => o.path));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Generators

const scalar = fc.oneof(fc.integer({ min: -2, max: 2 }), fc.constantFrom('x', 'y'), fc.constant(null), fc.boolean());
const value: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 2, arbitrary: fc.dictionary(fc.constantFrom('b', 'c', 'd', 'a'), scalar, { maxKeys: 2 }) as fc.Arbitrary<Json> },
);
const path = fc.constantFrom(...PATHS.map(([p]) => p));
const op: fc.Arbitrary<DocOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), path, value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), path }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('incr' as const), path, value: fc.integer({ min: -3, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('add' as const), path, value: scalar }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), path, value: scalar }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('test' as const), path, value: fc.option(value, { nil: undefined }) }, { requiredKeys: ['op', 'path'] }) },
);
/** One update; its base is `behind` versions behind the current one. */
const step = fc.record({
  behind: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.integer({ min: 7, max: 30 }) }),
  mode: fc.oneof({ weight: 3, arbitrary: fc.constant('merge' as const) }, { weight: 1, arbitrary: fc.constant('strict' as const) }),
  ops: fc.array(op, { minLength: 1, maxLength: 4 }),
});
const seed = fc.array(fc.record({ op: fc.constant('set' as const), path, value }), { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------------------------------------------------

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function implOutcome(doc: DocSnapshot, u: DocUpdate): { outcome: Outcome; next?: DocSnapshot } {
  try {
    const d = decide(doc, u, LIMITS);
    if (d.status === 'conflict') {
      expect(d.version).toBe(doc.version);
      expect(d.state).toBe(doc.state);
      return { outcome: { kind: 'conflict', paths: d.paths } };
    }
    return { outcome: { kind: d.status, state: d.doc.state }, next: d.doc };
  } catch (err) {
    if (err instanceof DocError) return { outcome: { kind: 'error' } };
    throw err;
  }
}

const seen = { floor: 0, floorStricter: 0, applied: 0, merged: 0, conflict: 0, error: 0 };

test('decide agrees with the brute-force model; never laxer when the floor is involved', () => {
  fc.assert(
    fc.property(seed, fc.array(step, { minLength: 15, maxLength: 40, size: 'max' }), (seedOps, steps) => {
      const model = new Model();
      let doc = emptyDoc();
      const accepted: DocUpdate[] = [];
      for (const { behind, mode, ops } of [{ behind: 0, mode: 'merge' as const, ops: seedOps as DocOp[] }, ...steps]) {
        const u: DocUpdate = deepFreeze({ base: Math.max(0, doc.version - behind), mode, ops });
        deepFreeze(doc);
        const expected = model.decide(u);
        const { outcome, next } = implOutcome(doc, u);
        seen[outcome.kind]++;

        if (u.base >= doc.floor) {
          expect(outcome).toEqual(expected);
        } else {
          seen.floor++;
          if (outcome.kind === 'conflict') {
            if (expected.kind === 'conflict') expect(outcome.paths).toEqual(expect.arrayContaining(expected.paths));
            else seen.floorStricter++;
          } else {
            expect(outcome).toEqual(expected);
          }
        }

        if (next !== undefined) {
          expect(next.version).toBe(doc.version + 1);
          expect(next.writes.length).toBeLessThanOrEqual(MAX_TRACKED);
          expect(next.floor).toBeGreaterThanOrEqual(doc.floor);
          expect(next.floor).toBeLessThanOrEqual(next.version);
          model.commit(u, (expected as { state: JsonObject }).state);
          accepted.push(u);
          doc = next;
        }
      }

      expect(model.version).toBe(doc.version);
      expect(canon(doc.state)).toBe(canon(model.states[model.version]));

      // Replaying the accepted updates in version order, each at the current version, gives the same state.
      let replay = emptyDoc();
      for (const u of accepted) {
        const d = decide(replay, { base: replay.version, mode: 'strict', ops: u.ops }, LIMITS);
        if (d.status === 'conflict') throw new Error(`replay of version ${replay.version + 1} conflicts on ${d.paths.join(', ')}`);
        replay = d.doc;
      }
      expect(replay.version).toBe(doc.version);
      expect(canon(replay.state)).toBe(canon(doc.state));
    }),
    { numRuns: 400 },
  );
  if (process.env.DOC_PROPERTY_STATS) console.log(seen);
  // The histories must reach every branch, or the property proves little.
  expect(seen.applied).toBeGreaterThan(100);
  expect(seen.merged).toBeGreaterThan(100);
  expect(seen.conflict).toBeGreaterThan(100);
  expect(seen.error).toBeGreaterThan(10);
  expect(seen.floor).toBeGreaterThan(100);
  expect(seen.floorStricter).toBeGreaterThan(0);
});

test('a length bound passed to decide only skips encodings: same outcomes, and the bound covers the encoding', () => {
  const keyed = fc.record({ op: fc.constantFrom('set' as const, 'incr' as const, 'add' as const), path: fc.constantFrom('/"q"', '/\u0001', '/é/x', '/a/\ud83d\ude00'), value: fc.integer() });
  const counts = { skipped: 0, encoded: 0, tooLarge: 0 };
  fc.assert(
    fc.property(fc.array(fc.array(fc.oneof(op, keyed), { minLength: 1, maxLength: 4 }), { minLength: 5, maxLength: 30 }), fc.constantFrom(120, 400, 1024 * 1024), (updates, maxDocBytes) => {
      const limits = { ...LIMITS, maxDocBytes };
      let doc = emptyDoc();
      let length = 2; // "{}"
      for (const ops of updates) {
        const u: DocUpdate = deepFreeze({ base: doc.version, mode: 'merge', ops: ops as DocOp[] });
        let plain: ReturnType<typeof decide> | Error;
        let bounded: ReturnType<typeof decide> | Error;
        try {
          plain = decide(doc, u, limits);
        } catch (err) {
          plain = err as Error;
        }
        try {
          bounded = decide(doc, u, limits, length);
        } catch (err) {
          bounded = err as Error;
        }
        if (plain instanceof Error || bounded instanceof Error) {
          expect(bounded instanceof Error && plain instanceof Error && bounded.message === plain.message).toBe(true);
          if ((plain as Error).message.includes('bytes encoded')) counts.tooLarge++;
          continue;
        }
        expect(bounded.status).toBe(plain.status);
        if (bounded.status === 'conflict' || plain.status === 'conflict') continue;
        const actual = JSON.stringify(bounded.doc.state);
        expect(actual).toBe(plain.encoded);
        expect(bounded.length).toBeGreaterThanOrEqual(actual.length);
        if (bounded.encoded === undefined) counts.skipped++;
        else {
          counts.encoded++;
          expect(bounded.encoded).toBe(actual);
          expect(bounded.length).toBe(actual.length);
        }
        doc = bounded.doc;
        length = bounded.length;
      }
    }),
    { numRuns: 300 },
  );
  // Both paths, and the limit itself, must be reached.
  expect(counts.skipped).toBeGreaterThan(100);
  expect(counts.encoded).toBeGreaterThan(100);
  expect(counts.tooLarge).toBeGreaterThan(10);
});

test('a DecideScope changes only what its chain made: the same outcomes and encodings as copying, the start untouched', () => {
  type Summary = { error: string } | { conflict: string[]; state: string } | { status: string; version: number; state: string; writes: string; floor: number };
  const summary = (run: () => ReturnType<typeof decide>): Summary => {
    try {
      const d = run();
      if (d.status === 'conflict') return { conflict: d.paths, state: JSON.stringify(d.state) };
      return { status: d.status, version: d.doc.version, state: JSON.stringify(d.doc.state), writes: JSON.stringify(d.doc.writes), floor: d.doc.floor };
    } catch (err) {
      if (!(err instanceof DocError)) throw err;
      return { error: err.message };
    }
  };
  const counts = { accepted: 0, conflict: 0, error: 0 };
  fc.assert(
    fc.property(seed, fc.array(step, { minLength: 5, maxLength: 30 }), fc.constantFrom(150, 1024 * 1024), (seedOps, steps, maxDocBytes) => {
      const limits = { ...LIMITS, maxDocBytes };
      let first: ReturnType<typeof decide> | undefined;
      try {
        first = decide(emptyDoc(), { base: 0, mode: 'merge', ops: seedOps as DocOp[] }, limits);
      } catch {
        first = undefined; // seed ops that refuse themselves: start empty
      }
      // The chain starts from a frozen document (as a cached one): changing it in place would throw.
      const start = deepFreeze(first === undefined || first.status === 'conflict' ? emptyDoc() : first.doc);
      const startJson = JSON.stringify(start);
      const scope = new DecideScope();
      let plain: DocSnapshot = start;
      let scoped: DocSnapshot = start;
      let length = JSON.stringify(start.state).length;
      for (const { behind, mode, ops } of steps) {
        const u: DocUpdate = deepFreeze({ base: Math.max(0, plain.version - behind), mode, ops });
        const expected = summary(() => decide(plain, u, limits));
        let next: ReturnType<typeof decide> | undefined;
        const got = summary(() => (next = decide(scoped, u, limits, length, scope)));
        expect(got).toEqual(expected);
        if ('status' in got && next !== undefined && next.status !== 'conflict') {
          counts.accepted++;
          const d = decide(plain, u, limits);
          if (d.status !== 'conflict') plain = d.doc;
          scoped = next.doc;
          length = next.length;
        } else if ('conflict' in got) counts.conflict++;
        else counts.error++;
      }
      expect(JSON.stringify(start)).toBe(startJson);
    }),
    { numRuns: 300 },
  );
  expect(counts.accepted).toBeGreaterThan(500);
  expect(counts.conflict).toBeGreaterThan(100);
  expect(counts.error).toBeGreaterThan(50);
});
