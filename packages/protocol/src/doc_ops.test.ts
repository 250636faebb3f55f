import { DEFAULT_DOC_LIMITS, DocError, formatPath, parsePath, parseUpdate, resolveLimits } from './doc_ops';

describe('parsePath / formatPath', () => {
  test.each([
    ['/a', ['a']],
    ['/a/b/c', ['a', 'b', 'c']],
    ['/', ['']],
    ['//x', ['', 'x']],
    ['/a~1b', ['a/b']],
    ['/m~0n', ['m~n']],
    ['/~01', ['~1']],
    ['/~10', ['/0']],
    ['/tags/0', ['tags', '0']],
    ['/ä/€', ['ä', '€']],
  ])('%s → %j and back', (path, keys) => {
    expect(parsePath(path)).toEqual(keys);
    expect(formatPath(keys)).toBe(path);
  });

  test.each([
    ['', 'path "" is the whole document; ops address its members, e.g. "/name"'],
    ['a/b', 'path "a/b" is not a valid JSON Pointer'],
    ['#/a', 'path "#/a" is not a valid JSON Pointer'],
    ['/a/~2', 'path "/a/~2" is not a valid JSON Pointer'],
    ['/a~', 'path "/a~" is not a valid JSON Pointer'],
    ['/~a', 'path "/~a" is not a valid JSON Pointer'],
  ])('refuses %j', (path, message) => {
    expect(() => parsePath(path)).toThrow(new DocError(message));
  });

  test('depth and length limits', () => {
    const deep = '/x'.repeat(32);
    expect(parsePath(deep)).toHaveLength(32);
    expect(() => parsePath(deep + '/x')).toThrow(`path "${deep}/x" is 33 levels deep; the limit is 32`);
    const long = '/' + 'k'.repeat(1023);
    expect(parsePath(long)).toEqual(['k'.repeat(1023)]);
    expect(() => parsePath(long + 'k')).toThrow('path is 1025 characters long; the limit is 1024');
    expect(() => parsePath('/a/b/c', { maxPathDepth: 2 })).toThrow('is 3 levels deep; the limit is 2');
  });

  test('keys with every special character round-trip', () => {
    const keys = ['~', '/', '~/', '/~', '~0', '~1', '', ' ', '__proto__'];
    expect(parsePath(formatPath(keys))).toEqual(keys);
  });
});

describe('parseUpdate', () => {
  test('accepts every op and fills in the default mode', () => {
    const raw = {
      channel: 'doc:x',
      base: 3,
      ops: [
        { op: 'set', path: '/a/b', value: { deep: [1, null] } },
        { op: 'set', path: '/n', value: null },
        { op: 'del', path: '/c' },
        { op: 'incr', path: '/n', value: -2.5 },
        { op: 'add', path: '/tags', value: 'x' },
        { op: 'remove', path: '/tags', value: { id: 1 } },
        { op: 'test', path: '/a', value: false },
        { op: 'test', path: '/gone' },
      ],
    };
    expect(parseUpdate(raw)).toEqual({
      base: 3,
      mode: 'merge',
      ops: [
        { op: 'set', path: '/a/b', value: { deep: [1, null] } },
        { op: 'set', path: '/n', value: null },
        { op: 'del', path: '/c' },
        { op: 'incr', path: '/n', value: -2.5 },
        { op: 'add', path: '/tags', value: 'x' },
        { op: 'remove', path: '/tags', value: { id: 1 } },
        { op: 'test', path: '/a', value: false },
        { op: 'test', path: '/gone' },
      ],
    });
  });

  test('keeps mode and key; null counts as absent', () => {
    expect(parseUpdate({ base: 0, ops: [{ op: 'del', path: '/a' }], mode: 'strict', key: 'k1' })).toEqual({
      base: 0,
      ops: [{ op: 'del', path: '/a' }],
      mode: 'strict',
      key: 'k1',
    });
    const u = parseUpdate({ base: 0, ops: [{ op: 'del', path: '/a' }], mode: null, key: null });
    expect(u).toEqual({ base: 0, ops: [{ op: 'del', path: '/a' }], mode: 'merge' });
    expect('key' in u).toBe(false);
  });

  test('a "test" with value null tests for null, not for absence', () => {
    expect(parseUpdate({ base: 0, ops: [{ op: 'test', path: '/a', value: null }] }).ops[0]).toEqual({ op: 'test', path: '/a', value: null });
  });

  test('keeps "__proto__" as a member key, not a prototype', () => {
    const raw = JSON.parse('{"base":0,"ops":[{"op":"set","path":"/__proto__","value":{"__proto__":{"x":1}}}]}') as unknown;
    const u = parseUpdate(raw);
    expect(JSON.stringify(u.ops[0])).toBe('{"op":"set","path":"/__proto__","value":{"__proto__":{"x":1}}}');
  });

  const op = (o: object) => ({ base: 0, ops: [o] });
  const deepValue = (levels: number): unknown => (levels === 0 ? 1 : [deepValue(levels - 1)]);
  test.each<[string, unknown, string]>([
    ['not an object', [], 'an update must be an object, got an array'],
    ['no base', { ops: [] }, '"base" is required: the version the update was made against (0 for a new document)'],
    ['null base', { base: null, ops: [] }, '"base" is required'],
    ['string base', { base: '1', ops: [] }, '"base" must be a non-negative integer'],
    ['negative base', { base: -1, ops: [] }, '"base" must be a non-negative integer'],
    ['fractional base', { base: 1.5, ops: [] }, '"base" must be a non-negative integer'],
    ['unsafe base', { base: 2 ** 53, ops: [] }, '"base" must be a non-negative integer'],
    ['bad mode', { base: 0, ops: [], mode: 'lww' }, '"mode" must be "merge" or "strict"'],
    ['numeric key', { base: 0, ops: [], key: 7 }, '"key" must be a string'],
    ['empty key', { base: 0, ops: [], key: '' }, '"key" must not be empty'],
    ['long key', { base: 0, ops: [], key: 'k'.repeat(257) }, '"key" is 257 characters long; the limit is 256'],
    ['no ops', { base: 0 }, '"ops" must be an array of ops'],
    ['ops not an array', { base: 0, ops: { op: 'set' } }, '"ops" must be an array of ops'],
    ['empty ops', { base: 0, ops: [] }, '"ops" must hold at least one op'],
    ['too many ops', { base: 0, ops: Array(101).fill({ op: 'del', path: '/a' }) }, '"ops" holds 101 ops; the limit is 100'],
    ['op not an object', { base: 0, ops: [{ op: 'del', path: '/a' }, 'set'] }, 'ops[1]: must be an object, got a string'],
    ['op null', { base: 0, ops: [{ op: 'del', path: '/a' }, null] }, 'ops[1]: must be an object, got null'],
    ['unknown op', op({ op: 'move', path: '/a' }), 'ops[0]: "op" must be one of set, del, incr, add, remove, test'],
    ['missing op', op({ path: '/a' }), 'ops[0]: "op" must be one of set, del, incr, add, remove, test'],
    ['unknown member', op({ op: 'test', path: '/a', vale: 1 }), 'ops[0]: unknown member "vale" in a test op'],
    ['missing path', op({ op: 'del' }), 'ops[0]: "path" must be a string'],
    ['numeric path', op({ op: 'del', path: 3 }), 'ops[0]: "path" must be a string'],
    ['root path', op({ op: 'set', path: '', value: {} }), 'ops[0]: path "" is the whole document; ops address its members, e.g. "/name"'],
    ['bad escape', op({ op: 'set', path: '/a/~2', value: 1 }), 'ops[0]: path "/a/~2" is not a valid JSON Pointer'],
    ['no leading slash', op({ op: 'set', path: 'a', value: 1 }), 'ops[0]: path "a" is not a valid JSON Pointer'],
    ['too deep', op({ op: 'del', path: '/a'.repeat(33) }), `ops[0]: path "${'/a'.repeat(33)}" is 33 levels deep; the limit is 32`],
    ['too long', op({ op: 'del', path: '/' + 'a'.repeat(1024) }), 'ops[0]: path is 1025 characters long; the limit is 1024'],
    ['set without value', op({ op: 'set', path: '/a' }), 'ops[0]: set needs a value'],
    ['add without value', op({ op: 'add', path: '/a' }), 'ops[0]: add needs a value'],
    ['remove without value', op({ op: 'remove', path: '/a' }), 'ops[0]: remove needs a value'],
    ['del with value', op({ op: 'del', path: '/a', value: 1 }), 'ops[0]: del takes no value'],
    ['incr without value', op({ op: 'incr', path: '/a' }), 'ops[0]: incr needs a finite number value'],
    ['incr by a string', op({ op: 'incr', path: '/a', value: '1' }), 'ops[0]: incr needs a finite number value'],
    ['incr by NaN', op({ op: 'incr', path: '/a', value: NaN }), 'ops[0]: incr needs a finite number value'],
    ['incr by Infinity', op({ op: 'incr', path: '/a', value: Infinity }), 'ops[0]: incr needs a finite number value'],
    ['value holds undefined', op({ op: 'set', path: '/a', value: [undefined] }), 'ops[0]: value holds undefined, which is not JSON'],
    ['value holds a function', op({ op: 'set', path: '/a', value: { f: () => 1 } }), 'ops[0]: value holds a function, which is not JSON'],
    ['value holds NaN', op({ op: 'add', path: '/a', value: { n: NaN } }), 'ops[0]: value holds NaN, which JSON cannot carry'],
    ['value holds a Date', op({ op: 'set', path: '/a', value: new Date(0) }), 'ops[0]: value holds an object that is not plain JSON'],
    ['value holds a hole', op({ op: 'set', path: '/a', value: [1, , 3] }), 'ops[0]: value holds undefined, which is not JSON'],
    ['value nested too deep', op({ op: 'set', path: '/a', value: deepValue(65) }), 'ops[0]: value is nested more than 64 levels deep'],
    ['test value too big', op({ op: 'test', path: '/a', value: 'x'.repeat(65535) }), 'ops[0]: value is 65537 bytes encoded; the limit is 65536'],
  ])('%s', (_name, raw, message) => {
    expect(() => parseUpdate(raw)).toThrow(DocError);
    expect(() => parseUpdate(raw)).toThrow(message);
  });

  test('value limits are exact', () => {
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: deepValue(64) }))).not.toThrow();
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: 'x'.repeat(65534) }))).not.toThrow();
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: 'é'.repeat(32767) }))).not.toThrow();
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: 'é'.repeat(32768) }))).toThrow('ops[0]: value is 65538 bytes encoded; the limit is 65536');
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: [1, 2] }), { maxValueBytes: 4 })).toThrow('ops[0]: value is 5 bytes encoded; the limit is 4');
  });

  test('a cyclic value is refused, not a stack overflow', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => parseUpdate(op({ op: 'set', path: '/a', value: cyclic }))).toThrow('ops[0]: value is nested more than 64 levels deep');
  });

  test('limits can be overridden', () => {
    const three = { base: 0, ops: [1, 2, 3].map((i) => ({ op: 'set', path: `/k${i}`, value: i })) };
    expect(() => parseUpdate(three, { maxOps: 2 })).toThrow('"ops" holds 3 ops; the limit is 2');
    expect(parseUpdate(three, { maxOps: 3 }).ops).toHaveLength(3);
    expect(() => parseUpdate({ base: 0, ops: [{ op: 'del', path: '/a' }], key: 'abc' }, { maxKeyLength: 2 })).toThrow('"key" is 3 characters long; the limit is 2');
  });

  test('bad limits are a programming error', () => {
    expect(() => resolveLimits({ maxOps: 0 })).toThrow('doc limit maxOps must be a positive integer, got 0');
    expect(() => resolveLimits({ maxOps: 0 })).not.toThrow(DocError);
    expect(resolveLimits()).toBe(DEFAULT_DOC_LIMITS);
    expect(resolveLimits({ maxOps: 5 })).toEqual({ ...DEFAULT_DOC_LIMITS, maxOps: 5 });
  });
});
