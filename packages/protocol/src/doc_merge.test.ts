import type { Json } from './types';
import { DecideScope, decide, emptyDoc, jsonEqual, type Decision, type DocSnapshot, type DocWrite } from './doc_merge';
import { DocError, parseUpdate, type DocLimits, type DocUpdate } from './doc_ops';

/** Frozen all the way down: a decide that mutates its input throws instead of passing quietly. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function run(doc: DocSnapshot, raw: object, limits?: Partial<DocLimits>): Decision {
  return decide(deepFreeze(doc), deepFreeze(parseUpdate(raw, limits)), limits);
}

function accepted(d: Decision): DocSnapshot {
  if (d.status === 'conflict') throw new Error(`expected the update to be accepted, got a conflict on ${d.paths.join(', ')}`);
  expect(d.encoded).toBeDefined(); // no length bound passed: always encoded
  expect(JSON.parse(d.encoded as string)).toEqual(d.doc.state);
  expect(d.length).toBe(d.encoded?.length);
  return d.doc;
}

/** Applies each list of ops at the current version; the document after all of them. */
function history(...updates: object[][]): DocSnapshot {
  let doc = emptyDoc();
  for (const ops of updates) doc = accepted(run(doc, { base: doc.version, ops }));
  return doc;
}

const set = (path: string, value: Json) => ({ op: 'set', path, value });
const del = (path: string) => ({ op: 'del', path });
const incr = (path: string, value: number) => ({ op: 'incr', path, value });
const add = (path: string, value: Json) => ({ op: 'add', path, value });
const remove = (path: string, value: Json) => ({ op: 'remove', path, value });
const test_ = (path: string, value?: Json) => (value === undefined ? { op: 'test', path } : { op: 'test', path, value });

/** A document at version 1 holding `state` (version 0 when `state` is empty). */
function withState(state: Record<string, Json>): DocSnapshot {
  const sets = Object.entries(state).map(([k, v]) => set(`/${k}`, v));
  return sets.length === 0 ? emptyDoc() : history(sets);
}

/** The state after applying `ops` to a document holding `state`. */
function apply(state: Record<string, Json>, ops: object[]): Json {
  const doc = withState(state);
  return accepted(run(doc, { base: doc.version, ops })).state;
}

describe('ops', () => {
  test.each<[string, Record<string, Json>, object[], Json]>([
    ['set a new member', {}, [set('/a', 1)], { a: 1 }],
    ['set replaces', { a: { b: 1 } }, [set('/a', [1])], { a: [1] }],
    ['set null', { a: 1 }, [set('/a', null)], { a: null }],
    ['set creates missing intermediates', { a: {} }, [set('/a/b/c', true)], { a: { b: { c: true } } }],
    ['set the empty key', {}, [set('//x', 2), set('/y', 1), set('/', 1)], { '': 1, y: 1 }],
    ['set below the empty key', {}, [set('//x', 2)], { '': { x: 2 } }],
    ['set keeps siblings', { a: { b: 1, c: 2 } }, [set('/a/b', 3)], { a: { b: 3, c: 2 } }],
    ['set escaped keys', {}, [set('/a~1b', 1), set('/m~0n', 2)], { 'a/b': 1, 'm~n': 2 }],
    ['del removes', { a: 1, b: 2 }, [del('/a')], { b: 2 }],
    ['del removes a subtree', { a: { b: { c: 1 } } }, [del('/a/b')], { a: {} }],
    ['del of an absent member is a no-op', { a: 1 }, [del('/b')], { a: 1 }],
    ['del below a missing intermediate creates nothing', { a: 1 }, [del('/x/y/z')], { a: 1 }],
    ['incr a number', { n: 1.5 }, [incr('/n', 2)], { n: 3.5 }],
    ['incr a missing member starts at 0', {}, [incr('/a/n', -3)], { a: { n: -3 } }],
    ['incr twice in one update', {}, [incr('/n', 1), incr('/n', 1)], { n: 2 }],
    ['add to a missing member', {}, [add('/tags', 'x')], { tags: ['x'] }],
    ['add appends', { tags: ['x'] }, [add('/tags', 'y')], { tags: ['x', 'y'] }],
    ['add of a present element is a no-op', { tags: ['x', { a: 1, b: 2 }] }, [add('/tags', { b: 2, a: 1 }), add('/tags', 'x')], { tags: ['x', { a: 1, b: 2 }] }],
    ['add a number is not add its string', { tags: [1] }, [add('/tags', '1')], { tags: [1, '1'] }],
    ['remove drops every equal element', { tags: ['x', 'y', 'x', [1]] }, [remove('/tags', 'x'), remove('/tags', [1])], { tags: ['y'] }],
    ['remove of an absent element is a no-op', { tags: ['x'] }, [remove('/tags', 'y')], { tags: ['x'] }],
    ['remove from a missing member creates nothing', {}, [remove('/a/tags', 'x')], {}],
    ['remove the last element leaves []', { tags: ['x'] }, [remove('/tags', 'x')], { tags: [] }],
    ['test a value then set', { a: { b: 1 } }, [test_('/a', { b: 1 }), set('/a/b', 2)], { a: { b: 2 } }],
    ['test absence', { a: 1 }, [test_('/b'), test_('/a/x'), set('/b', 1)], { a: 1, b: 1 }],
    ['test sees the update\'s earlier ops', {}, [set('/a', 1), test_('/a', 1), del('/a'), test_('/a')], {}],
    ['test null is not absence', { a: null }, [test_('/a', null)], { a: null }],
    ['test a number equal to an incr result', { n: 1 }, [incr('/n', 1), test_('/n', 2)], { n: 2 }],
  ])('%s', (_name, state, ops, expected) => {
    expect(apply(state, ops)).toEqual(expected);
  });

  test.each<[string, Record<string, Json>, object[], string]>([
    ['test of a different value', { a: 1 }, [test_('/a', 2)], '/a'],
    ['test of a value that is absent', {}, [test_('/a', null)], '/a'],
    ['test absence of a present member', { a: { b: 0 } }, [set('/c', 1), test_('/a/b')], '/a/b'],
    ['test deep value differs', { a: { b: [1, 2] } }, [test_('/a', { b: [2, 1] })], '/a'],
    ['test after an earlier op changed it', { a: 1 }, [incr('/a', 1), test_('/a', 1)], '/a'],
  ])('a failing test is a conflict on its path: %s', (_name, state, ops, path) => {
    const doc = withState(state);
    expect(run(doc, { base: doc.version, ops })).toEqual({ status: 'conflict', paths: [path], version: doc.version, state: doc.state });
  });

  test('a test-only update is a new version that changes nothing', () => {
    const doc = history([set('/a', 1)]);
    const d = run(doc, { base: 1, ops: [test_('/a', 1)] });
    expect(d.status).toBe('applied');
    const next = accepted(d);
    expect(next.version).toBe(2);
    expect(next.state).toEqual({ a: 1 });
    expect(next.writes).toEqual([['/a', 1]]);
  });

  test('untouched subtrees are shared, written ones copied', () => {
    const doc = history([set('/big/x', 1), set('/other', { deep: [1, 2] }), set('/big/y/z', 2)]);
    const next = accepted(run(doc, { base: doc.version, ops: [set('/big/y/w', 3)] }));
    expect(next.state.other).toBe(doc.state.other);
    expect(next.state.big).not.toBe(doc.state.big);
    expect(next.state).toEqual({ big: { x: 1, y: { z: 2, w: 3 } }, other: { deep: [1, 2] } });
    expect(doc.state).toEqual({ big: { x: 1, y: { z: 2 } }, other: { deep: [1, 2] } });
  });

  test('"__proto__" is an ordinary member key', () => {
    const raw = JSON.parse('{"base":0,"ops":[{"op":"set","path":"/__proto__/polluted","value":true},{"op":"add","path":"/x/__proto__","value":1}]}') as object;
    const d = run(emptyDoc(), raw);
    const next = accepted(d);
    expect(d.status === 'applied' && d.encoded).toBe('{"__proto__":{"polluted":true},"x":{"__proto__":[1]}}');
    expect(Object.getPrototypeOf(next.state)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const again = accepted(run(next, { base: 1, ops: [test_('/__proto__', { polluted: true }), test_('/constructor'), test_('/toString'), del('/__proto__')] }));
    expect(JSON.stringify(again.state)).toBe('{"x":{"__proto__":[1]}}');
  });
});

describe('errors', () => {
  const base = (): DocSnapshot => history([set('/n', 'five'), set('/tags', 'red'), set('/obj', { k: 1 }), set('/num', 7), set('/arr', [1]), set('/nul', null), set('/big', 1e308)]);
  test.each<[string, object[], string]>([
    ['incr a string', [incr('/num', 1), incr('/n', 1)], 'ops[1]: cannot incr /n: it holds a string'],
    ['incr an object', [incr('/obj', 1)], 'ops[0]: cannot incr /obj: it holds an object'],
    ['incr null', [incr('/nul', 1)], 'ops[0]: cannot incr /nul: it holds null'],
    ['incr overflows', [incr('/big', 1e308)], 'ops[0]: incr of /big overflows: 1e+308 + 1e+308 is not a finite number'],
    ['add to a string', [set('/x', 1), add('/tags', 'x')], 'ops[1]: cannot add to /tags: it holds a string'],
    ['add to an object', [add('/obj', 1)], 'ops[0]: cannot add to /obj: it holds an object'],
    ['remove from a number', [remove('/num', 1)], 'ops[0]: cannot remove from /num: it holds a number'],
    ['set below a number', [set('/num/x', 1)], 'ops[0]: cannot set /num/x: /num holds a number'],
    ['set below an array', [set('/arr/0', 1)], 'ops[0]: cannot set /arr/0: /arr holds an array (paths name object members, not array elements)'],
    ['del below null', [del('/nul/x')], 'ops[0]: cannot del /nul/x: /nul holds null'],
    ['incr deep below a string', [incr('/obj/k/z', 1)], 'ops[0]: cannot incr /obj/k/z: /obj/k holds a number'],
    ['add below a string', [add('/n/x', 1)], 'ops[0]: cannot add to /n/x: /n holds a string'],
    ['remove below a number', [remove('/num/x', 1)], 'ops[0]: cannot remove from /num/x: /num holds a number'],
  ])('%s', (_name, ops, message) => {
    const doc = base();
    const before = JSON.stringify(doc);
    expect(() => run(doc, { base: doc.version, ops })).toThrow(new DocError(message));
    expect(JSON.stringify(doc)).toBe(before);
  });

  test('a base ahead of the document', () => {
    const doc = history([set('/a', 1)]);
    expect(() => run(doc, { base: 2, ops: [set('/a', 2)] })).toThrow(new DocError('"base" 2 is ahead of the document\'s version 1'));
  });

  test('a hand-built update with a bad path', () => {
    const update: DocUpdate = { base: 0, mode: 'merge', ops: [{ op: 'set', path: '/ok', value: 1 }, { op: 'del', path: 'nope' }] };
    expect(() => decide(emptyDoc(), update)).toThrow(new DocError('ops[1]: path "nope" is not a valid JSON Pointer'));
  });

  test('test through a non-object reads as absent, not an error', () => {
    const doc = base();
    expect(run(doc, { base: doc.version, ops: [test_('/num/x')] }).status).toBe('applied');
    expect(run(doc, { base: doc.version, ops: [test_('/arr/0', 1)] })).toMatchObject({ status: 'conflict', paths: ['/arr/0'] });
  });
});

describe('merge or reject', () => {
  // v1: a, b/c, tags; v2: a; v3: b/c/d; v4: n.
  const doc = (): DocSnapshot =>
    history([set('/a', 1), set('/b/c', { x: 1 }), set('/tags', ['t']), set('/ab', 0)], [set('/a', 2)], [set('/b/c/d', 3)], [incr('/n', 1)]);

  test('base == version applies', () => {
    const d = doc();
    const r = run(d, { base: 4, ops: [set('/a', 3), set('/b/c', null)] });
    expect(r.status).toBe('applied');
    expect(accepted(r)).toMatchObject({ version: 5, state: { a: 3, b: { c: null } } });
  });

  test('a stale base touching nothing written since merges into the current state', () => {
    const d = doc();
    const r = run(d, { base: 1, ops: [set('/ab', 1), set('/new/x', 1), del('/gone'), set('/b/e', 5)] });
    expect(r.status).toBe('merged');
    expect(accepted(r)).toMatchObject({ version: 5, state: { a: 2, ab: 1, new: { x: 1 }, b: { c: { x: 1, d: 3 }, e: 5 }, n: 1 } });
  });

  test('only writes after base count', () => {
    expect(run(doc(), { base: 2, ops: [set('/a', 9)] }).status).toBe('merged');
    expect(run(doc(), { base: 1, ops: [set('/a', 9)] })).toMatchObject({ status: 'conflict', paths: ['/a'] });
    expect(run(doc(), { base: 3, ops: [del('/b/c/d')] }).status).toBe('merged');
  });

  test.each<[string, number, object[], string[]]>([
    ['the same path', 1, [set('/a', 3)], ['/a']],
    ['a descendant was written (del an ancestor)', 2, [del('/b')], ['/b']],
    ['a descendant was written (set an ancestor)', 2, [set('/b/c', 0)], ['/b/c']],
    ['an ancestor was written', 2, [set('/b/c/d/e', 0)], ['/b/c/d/e']],
    ['a test of a path written since', 1, [test_('/a', 2)], ['/a']],
    ['a test of a path an incr wrote since', 3, [test_('/n', 1)], ['/n']],
    ['a test below a path written since', 2, [test_('/b/c/d/q')], ['/b/c/d/q']],
    ['several, sorted and deduplicated', 1, [set('/n', 0), set('/a', 0), test_('/a', 2), del('/b'), set('/ok', 1)], ['/a', '/b', '/n']],
  ])('conflict: %s', (_name, base, ops, paths) => {
    const d = doc();
    expect(run(d, { base, ops })).toEqual({ status: 'conflict', paths, version: 4, state: d.state });
  });

  test('siblings and look-alike prefixes do not overlap', () => {
    const d = history([set('/a~1b', 1), set('/ab', 1), set('/a/b', 1)], [set('/a~1b', 2), set('/ab', 2), set('/a/c', 2)]);
    // "/a~1b" is key "a/b" and "/ab" is key "ab": neither is inside "/a" (but "/a/c" is).
    expect(run(d, { base: 1, ops: [set('/a/b', 0)] }).status).toBe('merged');
    expect(run(d, { base: 1, ops: [set('/a~1', 0), set('/a~0b', 0), set('/a~1b~1c', 0)] }).status).toBe('merged');
    expect(run(d, { base: 1, ops: [set('/a', 0)] })).toMatchObject({ status: 'conflict', paths: ['/a'] });
  });

  test('incr, add and remove commute with anything', () => {
    const d = doc();
    const r = run(d, { base: 0, ops: [incr('/n', 5), add('/tags', 'u'), remove('/tags', 't'), incr('/b/c/d', 1), add('/b/c/list', 1)] });
    expect(r.status).toBe('merged');
    expect(accepted(r).state).toMatchObject({ n: 6, tags: ['u'], b: { c: { x: 1, d: 4, list: [1] } } });
  });

  test('a commuting op meeting a wrong type in the current state is an error', () => {
    const d = doc();
    expect(() => run(d, { base: 0, ops: [incr('/b/c', 1)] })).toThrow(new DocError('ops[0]: cannot incr /b/c: it holds an object'));
    expect(() => run(d, { base: 1, ops: [add('/a', 1)] })).toThrow(new DocError('ops[0]: cannot add to /a: it holds a number'));
  });

  test('version conflicts are decided before applying, so they win over type errors', () => {
    expect(run(doc(), { base: 1, ops: [set('/a', 0), incr('/tags', 1)] })).toMatchObject({ status: 'conflict', paths: ['/a'] });
  });

  test('strict mode rejects any stale base and lists every overlapping path', () => {
    const d = doc();
    expect(run(d, { base: 4, mode: 'strict', ops: [set('/a', 0)] }).status).toBe('applied');
    expect(run(d, { base: 3, mode: 'strict', ops: [set('/zzz', 0)] })).toEqual({ status: 'conflict', paths: [], version: 4, state: d.state });
    expect(run(d, { base: 1, mode: 'strict', ops: [incr('/n', 1), add('/b/c/d/e', 1), set('/ab', 1), test_('/a', 2)] })).toEqual({
      status: 'conflict',
      paths: ['/a', '/b/c/d/e', '/n'],
      version: 4,
      state: d.state,
    });
  });

  test('stale merges record their writes like any other', () => {
    const d = doc();
    const merged = accepted(run(d, { base: 1, ops: [set('/x', 1), incr('/n', 1)] }));
    expect(merged.writes).toEqual([['/b/c', 1], ['/tags', 1], ['/ab', 1], ['/a', 2], ['/b/c/d', 3], ['/x', 5], ['/n', 5]]);
    expect(run(merged, { base: 4, ops: [del('/x')] })).toMatchObject({ status: 'conflict', paths: ['/x'] });
  });
});

describe('per-path versions and the floor', () => {
  test('every op but test records its path, even when nothing changed', () => {
    const d = history([set('/a', 1), del('/gone'), add('/t', 1), remove('/u', 1), incr('/n', 0), test_('/q')]);
    expect(d.writes).toEqual([['/a', 1], ['/gone', 1], ['/t', 1], ['/u', 1], ['/n', 1]]);
  });

  test('writing a path folds the entries below it', () => {
    const d = history([set('/a/b', 1), set('/a/c/d', 1), set('/ab', 1)], [set('/a', {})]);
    expect(d.writes).toEqual([['/ab', 1], ['/a', 2]]);
    const same = history([set('/x/y', 1), set('/x', {}), set('/x/z', 1)]);
    expect(same.writes).toEqual([['/x', 1]]);
  });

  test('the oldest entries give way and raise the floor', () => {
    const lim = { maxTrackedPaths: 2 };
    let d = emptyDoc();
    for (const p of ['/a', '/b', '/c']) d = accepted(run(d, { base: d.version, ops: [set(p, 1)] }, lim));
    expect(d).toMatchObject({ version: 3, writes: [['/b', 2], ['/c', 3]], floor: 1 });

    // base >= floor: still exact.
    expect(run(d, { base: 1, ops: [set('/z', 0)] }, lim).status).toBe('merged');
    expect(run(d, { base: 1, ops: [set('/a', 0)] }, lim).status).toBe('merged');
    expect(run(d, { base: 1, ops: [set('/b', 0)] }, lim)).toMatchObject({ status: 'conflict', paths: ['/b'] });
    // base < floor: every set/del/test path counts as changed; commuting ops still merge.
    expect(run(d, { base: 0, ops: [set('/z', 0), del('/y'), incr('/n', 1), test_('/w')] }, lim)).toEqual({
      status: 'conflict',
      paths: ['/w', '/y', '/z'],
      version: 3,
      state: d.state,
    });
    expect(run(d, { base: 0, ops: [incr('/n', 1), add('/t', 1), remove('/u', 1)] }, lim).status).toBe('merged');
    expect(run(d, { base: 0, mode: 'strict', ops: [incr('/n', 1)] }, lim)).toMatchObject({ status: 'conflict', paths: ['/n'] });
  });

  test('ties at the cut are dropped together', () => {
    const lim = { maxTrackedPaths: 3 };
    let d = accepted(run(emptyDoc(), { base: 0, ops: [set('/a', 1), set('/b', 1)] }, lim));
    d = accepted(run(d, { base: 1, ops: [set('/c', 1), set('/d', 1)] }, lim));
    expect(d).toMatchObject({ writes: [['/c', 2], ['/d', 2]], floor: 1 });
  });

  test('an update writing more paths than are kept raises the floor to its own version', () => {
    const lim = { maxTrackedPaths: 2 };
    let d = accepted(run(emptyDoc(), { base: 0, ops: [set('/a', 1)] }, lim));
    d = accepted(run(d, { base: 1, ops: [set('/x', 1), set('/y', 1), set('/z', 1)] }, lim));
    expect(d).toMatchObject({ version: 2, writes: [], floor: 2 });
    expect(run(d, { base: 1, ops: [set('/q', 1)] }, lim)).toMatchObject({ status: 'conflict', paths: ['/q'] });
    expect(run(d, { base: 2, ops: [set('/q', 1)] }, lim).status).toBe('applied');
  });

  test('the floor never goes down; writes stay bounded, distinct, above the floor and in version order', () => {
    const lim = { maxTrackedPaths: 4 };
    let d = emptyDoc();
    let floor = 0;
    for (let i = 0; i < 50; i++) {
      d = accepted(run(d, { base: d.version, ops: [set(`/k${i % 7}`, i), set(`/o${(i * 3) % 11}/x`, i)] }, lim));
      expect(d.writes.length).toBeLessThanOrEqual(4);
      expect(new Set(d.writes.map(([p]) => p)).size).toBe(d.writes.length);
      expect(d.writes.every(([, v], j) => v > d.floor && (j === 0 || v >= d.writes[j - 1][1]))).toBe(true);
      expect(d.floor).toBeGreaterThanOrEqual(floor);
      floor = d.floor;
    }
    expect(floor).toBeGreaterThan(0);
  });
});

describe('all or nothing', () => {
  test('a failing later op leaves the input untouched', () => {
    const doc = history([set('/a', { b: 1 })], [set('/s', 'str')]);
    const before = JSON.stringify(doc);
    expect(() => run(doc, { base: 2, ops: [set('/a/b', 2), del('/a'), set('/new', 1), incr('/s', 1)] })).toThrow(new DocError('ops[3]: cannot incr /s: it holds a string'));
    expect(JSON.stringify(doc)).toBe(before);
    // The same document still accepts a correct update, from the same snapshot.
    expect(accepted(run(doc, { base: 2, ops: [set('/a/b', 2)] })).state).toEqual({ a: { b: 2 }, s: 'str' });
  });

  test('a failing test after writes leaves the input untouched', () => {
    const doc = history([set('/a', 1)]);
    const before = JSON.stringify(doc);
    expect(run(doc, { base: 1, ops: [set('/a', 2), set('/b', 1), test_('/a', 1)] })).toEqual({ status: 'conflict', paths: ['/a'], version: 1, state: doc.state });
    expect(JSON.stringify(doc)).toBe(before);
  });
});

describe('limits', () => {
  test('a document may not grow past maxDocBytes', () => {
    const lim = { maxDocBytes: 24 };
    const doc = accepted(run(emptyDoc(), { base: 0, ops: [set('/a', 'x'.repeat(10))] }, lim)); // {"a":"xxxxxxxxxx"}: 18 bytes
    const full = accepted(run(doc, { base: 1, ops: [set('/b', 1)] }, lim)); // 24 bytes: at the limit
    const before = JSON.stringify(full);
    expect(() => run(full, { base: 2, ops: [set('/b', 12)] }, lim)).toThrow(new DocError('the update would make the document 25 bytes encoded; the limit is 24'));
    expect(() => run(full, { base: 1, ops: [incr('/b', 11)] }, lim)).toThrow('25 bytes');
    expect(JSON.stringify(full)).toBe(before);
  });

  test('bytes are counted in UTF-8', () => {
    expect(() => run(emptyDoc(), { base: 0, ops: [set('/a', 'éééé')] }, { maxDocBytes: 15 })).toThrow('the update would make the document 16 bytes encoded; the limit is 15');
    expect(run(emptyDoc(), { base: 0, ops: [set('/a', 'éééé')] }, { maxDocBytes: 16 }).status).toBe('applied');
  });

  test('a document over a lowered limit may shrink or stay the same size, not grow', () => {
    const doc = history([set('/a', 'x'.repeat(10)), set('/b', 1)]); // 24 bytes
    const lim = { maxDocBytes: 10 };
    expect(accepted(run(doc, { base: 1, ops: [del('/b')] }, lim)).state).toEqual({ a: 'xxxxxxxxxx' });
    expect(run(doc, { base: 1, ops: [set('/a', 'y'.repeat(10))] }, lim).status).toBe('applied');
    expect(() => run(doc, { base: 1, ops: [set('/a', 'y'.repeat(11))] }, lim)).toThrow('the update would make the document 25 bytes encoded; the limit is 10');
  });

  test('paths in a hand-built update obey the path limits', () => {
    const update: DocUpdate = { base: 0, mode: 'merge', ops: [{ op: 'set', path: '/a/b/c', value: 1 }] };
    expect(() => decide(emptyDoc(), update, { maxPathDepth: 2 })).toThrow(new DocError('ops[0]: path "/a/b/c" is 3 levels deep; the limit is 2'));
  });
});

test('jsonEqual ignores member order and nothing else', () => {
  expect(jsonEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
  expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  expect(jsonEqual({ a: 1 }, { a: 1, b: 1 })).toBe(false);
  expect(jsonEqual({ a: undefined as unknown as Json }, { b: 1 })).toBe(false);
  expect(jsonEqual([], {})).toBe(false);
  expect(jsonEqual(null, {})).toBe(false);
  expect(jsonEqual(1, '1')).toBe(false);
});

describe('decide within a DecideScope (a chain of updates that keeps only its last document)', () => {
  const start = (): DocSnapshot => deepFreeze({ version: 1, state: { a: 1, b: { x: 1 }, c: 3 }, writes: [['/a', 1]] as DocWrite[], floor: 0 });

  test('the first update copies the start; the next ones change what the chain made, in place', () => {
    const s = start();
    const scope = new DecideScope();
    const first = accepted(decide(s, parseUpdate({ base: 1, ops: [set('/d', 4)] }), undefined, undefined, scope));
    expect(first.state).not.toBe(s.state);
    const second = accepted(decide(first, parseUpdate({ base: 2, ops: [set('/e', 5)] }), undefined, undefined, scope));
    expect(second.state).toBe(first.state);
    expect(second.writes).toBe(first.writes);
    expect(JSON.stringify(second.state)).toBe('{"a":1,"b":{"x":1},"c":3,"d":4,"e":5}');
    expect(second.writes).toEqual([['/a', 1], ['/d', 2], ['/e', 3]]);
    expect(JSON.stringify(s.state)).toBe('{"a":1,"b":{"x":1},"c":3}');
  });

  test('an update abandoned after it changed things puts them back, member order included', () => {
    const scope = new DecideScope();
    const first = accepted(decide(start(), parseUpdate({ base: 1, ops: [set('/b/y', 2)] }), undefined, undefined, scope));
    const before = JSON.stringify(first.state);
    // Deletes, replaces, adds members, nested and not, then a test fails: a conflict on the untouched document.
    const failing = decide(
      first,
      parseUpdate({ base: 2, ops: [{ op: 'del', path: '/a' }, set('/c', 'x'), set('/b/x', 9), { op: 'del', path: '/b/y' }, set('/new/deep', 1), { op: 'test', path: '/zz', value: 1 }] }),
      undefined,
      undefined,
      scope,
    );
    expect(failing).toMatchObject({ status: 'conflict', paths: ['/zz'], version: 2 });
    expect(JSON.stringify(first.state)).toBe(before);
    // The same after a DocError half way (incr of a string).
    expect(() => decide(first, parseUpdate({ base: 2, ops: [{ op: 'del', path: '/c' }, set('/a', 7), { op: 'incr', path: '/b/y', value: 1 }, { op: 'incr', path: '/d', value: 1 }, { op: 'incr', path: '/c', value: 1 }, { op: 'incr', path: '/b', value: 1 }] }), undefined, undefined, scope)).toThrow(DocError);
    expect(JSON.stringify(first.state)).toBe(before);
    // And the chain goes on from it.
    expect(JSON.stringify(accepted(decide(first, parseUpdate({ base: 2, ops: [{ op: 'del', path: '/a' }] }), undefined, undefined, scope)).state)).toBe('{"b":{"x":1,"y":2},"c":3}');
  });

  test('an update over the size limit is refused and leaves the chain as it was', () => {
    const scope = new DecideScope();
    const lim = { maxDocBytes: 40 };
    const first = accepted(decide(start(), parseUpdate({ base: 1, ops: [set('/d', 4)] }, lim), lim, 28, scope));
    const before = JSON.stringify(first.state);
    expect(() => decide(first, parseUpdate({ base: 2, ops: [set('/e', 'long enough to pass the limit')] }, lim), lim, before.length, scope)).toThrow('bytes encoded; the limit is 40');
    expect(JSON.stringify(first.state)).toBe(before);
  });
});
