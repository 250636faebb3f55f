// Tags filters: the examples of Centrifugo's documentation, the refusals, and the compiled filter against a
// plain interpreter of Centrifugo's rules.
import fc from 'fast-check';
import { TAG_FILTER_LIMITS, compileTagFilter, type TagFilter, type TagFilterNode } from './tag_filter';

function compile(node: unknown): TagFilter {
  const r = compileTagFilter(node);
  if (!r.ok) throw new Error(`refused: ${r.error}`);
  return r.filter;
}

function refusal(node: unknown): string {
  const r = compileTagFilter(node);
  if (r.ok) throw new Error('accepted');
  return r.error;
}

// The publication of https://centrifugal.dev/docs/server/publication_filtering: every example there matches it.
const DOC_TAGS = { ticker: 'AAPL', source: 'NASDAQ', price: '150.25', category: 'tech', volume: '1000' };

describe('the documentation examples', () => {
  const examples: [string, TagFilterNode][] = [
    ['eq', { key: 'ticker', cmp: 'eq', val: 'AAPL' }],
    ['neq', { key: 'source', cmp: 'neq', val: 'TEST' }],
    ['in', { key: 'category', cmp: 'in', vals: ['tech', 'finance'] }],
    ['nin', { key: 'ticker', cmp: 'nin', vals: ['MSFT', 'GOOGL'] }],
    ['ex', { key: 'price', cmp: 'ex' }],
    ['nex', { key: 'internal_id', cmp: 'nex' }],
    ['sw', { key: 'ticker', cmp: 'sw', val: 'AA' }],
    ['ew', { key: 'source', cmp: 'ew', val: 'DAQ' }],
    ['ct', { key: 'category', cmp: 'ct', val: 'ec' }],
    ['gt', { key: 'price', cmp: 'gt', val: '100' }],
    ['gte', { key: 'volume', cmp: 'gte', val: '1000' }],
    ['lt', { key: 'price', cmp: 'lt', val: '200' }],
    ['lte', { key: 'volume', cmp: 'lte', val: '1000' }],
    ['and', { op: 'and', nodes: [{ key: 'ticker', cmp: 'eq', val: 'AAPL' }, { key: 'category', cmp: 'eq', val: 'tech' }] }],
    ['or', { op: 'or', nodes: [{ key: 'ticker', cmp: 'eq', val: 'MSFT' }, { key: 'category', cmp: 'eq', val: 'tech' }] }],
    ['not', { op: 'not', nodes: [{ key: 'source', cmp: 'eq', val: 'NYSE' }] }],
  ];
  test.each(examples)('%s matches the example publication, and its negation does not', (_, node) => {
    expect(compile(node)(DOC_TAGS)).toBe(true);
    expect(compile({ op: 'not', nodes: [node] })(DOC_TAGS)).toBe(false);
  });
});

describe('each comparison', () => {
  const cases: [TagFilterNode, Record<string, string> | undefined, boolean][] = [
    [{ key: 'a', cmp: 'eq', val: 'x' }, { a: 'x' }, true],
    [{ key: 'a', cmp: 'eq', val: 'x' }, { a: 'X' }, false],
    [{ key: 'a', cmp: 'eq', val: 'x' }, {}, false],
    [{ key: 'a', cmp: 'neq', val: 'x' }, {}, true],
    [{ key: 'a', cmp: 'neq', val: 'x' }, { a: 'x' }, false],
    [{ key: 'a', cmp: 'in', vals: ['x', 'y'] }, { a: 'y' }, true],
    [{ key: 'a', cmp: 'in', vals: ['x', 'y'] }, {}, false],
    // A missing tag compares as "" for in/nin, as in Centrifugo.
    [{ key: 'a', cmp: 'in', vals: ['x', ''] }, {}, true],
    [{ key: 'a', cmp: 'nin', vals: ['x'] }, {}, true],
    [{ key: 'a', cmp: 'nin', vals: ['x', ''] }, {}, false],
    [{ key: 'a', cmp: 'ex' }, { a: '' }, true],
    [{ key: 'a', cmp: 'nex' }, { a: '' }, false],
    [{ cmp: 'ex' }, { '': 'v' }, true],
    [{ key: 'a', cmp: 'sw', val: 'ab' }, { a: 'abc' }, true],
    [{ key: 'a', cmp: 'sw', val: 'ab' }, { a: 'cab' }, false],
    [{ key: 'a', cmp: 'ew', val: 'ab' }, { a: 'cab' }, true],
    [{ key: 'a', cmp: 'ew', val: 'ab' }, {}, false],
    [{ key: 'a', cmp: 'ct', val: 'aab' }, { a: 'aaab' }, true],
    [{ key: 'a', cmp: 'ct', val: 'abab' }, { a: 'ababa' }, true],
    [{ key: 'a', cmp: 'ct', val: 'abc' }, { a: 'ababd' }, false],
    [{ key: 'a', cmp: 'ct', val: '😀' }, { a: 'x😀y' }, true],
    [{ key: 'n', cmp: 'gt', val: '9' }, { n: '10' }, true],
    [{ key: 'n', cmp: 'gt', val: '0.45' }, { n: '0.5' }, true],
    [{ key: 'n', cmp: 'lt', val: '0.51' }, { n: '0.5' }, true],
    [{ key: 'n', cmp: 'gte', val: '-0' }, { n: '0.000' }, true],
    [{ key: 'n', cmp: 'lte', val: '0' }, { n: '-0' }, true],
    [{ key: 'n', cmp: 'lt', val: '-1.5' }, { n: '-2' }, true],
    [{ key: 'n', cmp: 'gt', val: '+007' }, { n: '7.0000000000000000001' }, true],
    [{ key: 'n', cmp: 'gt', val: '99999999999999999999999999999999999999' }, { n: '100000000000000000000000000000000000000' }, true],
    // Not numbers for Centrifugo: the comparison is false, whichever way it goes.
    [{ key: 'n', cmp: 'gt', val: '1' }, { n: '1e5' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: '1e5' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: '.5' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: '0.' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: '0.00000000000000000001' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: ' 0' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, { n: '' }, false],
    [{ key: 'n', cmp: 'lt', val: '1' }, {}, false],
    [{ key: 'constructor', cmp: 'ex' }, {}, false],
    [{ key: 'toString', cmp: 'nex' }, {}, true],
    [{ key: 'a', cmp: 'neq', val: 'x' }, undefined, true],
  ];
  test.each(cases)('%j on %j is %s', (node, tags, expected) => {
    expect(compile(node)(tags)).toBe(expected);
  });

  test('empty strings and lists count as not set (the Protobuf form)', () => {
    expect(compile({ op: '', key: 'a', cmp: 'eq', val: 'x', vals: [], nodes: [] })({ a: 'x' })).toBe(true);
    expect(compile({ op: 'not', key: '', cmp: '', val: '', vals: [], nodes: [{ key: 'a', cmp: 'ex' }] })({})).toBe(true);
  });
});

describe('refusals name the problem', () => {
  const cases: [unknown, string][] = [
    [null, 'tf must be an object'],
    [[], 'tf must be an object'],
    ['eq', 'tf must be an object'],
    [{}, 'tf.cmp is required'],
    [{ key: 'a', cmp: 'like', val: 'x' }, 'tf.cmp "like" is unknown'],
    [{ key: 'a', cmp: 'starts', val: 'x' }, 'tf.cmp "starts" is unknown'],
    [{ op: 'xor', nodes: [] }, 'tf.op "xor" is unknown'],
    [{ cmp: 'eq', val: 'x' }, 'tf.key is required for "eq"'],
    [{ key: 'a', cmp: 'eq' }, 'tf.val is required for "eq"'],
    [{ key: 'a', cmp: 'eq', val: 'x', vals: ['y'] }, 'takes one value in val, not vals'],
    [{ key: 'a', cmp: 'in', val: 'x' }, 'takes its values in vals, not val'],
    [{ key: 'a', cmp: 'in' }, 'tf.vals must hold at least one value'],
    [{ key: 'a', cmp: 'in', vals: ['x', 1] }, 'tf.vals[1] must be a string'],
    [{ key: 'a', cmp: 'in', vals: 'x' }, 'tf.vals must be an array'],
    [{ key: 'a', cmp: 'ex', val: 'x' }, '"ex" takes no val or vals'],
    [{ key: 'a', cmp: 'gt', val: 'ten' }, 'tf.val "ten" is not a decimal number'],
    [{ key: 1, cmp: 'eq', val: 'x' }, 'tf.key must be a string'],
    [{ key: 'a', cmp: 'eq', val: 'x', nodes: [{ key: 'a', cmp: 'ex' }] }, 'a comparison takes no nodes'],
    [{ op: 'and', nodes: [] }, 'an "and" node takes at least one node'],
    [{ op: 'or' }, 'an "or" node takes at least one node'],
    [{ op: 'not', nodes: [] }, 'a "not" node takes exactly one node'],
    [{ op: 'not', nodes: [{ key: 'a', cmp: 'ex' }, { key: 'b', cmp: 'ex' }] }, 'a "not" node takes exactly one node'],
    [{ op: 'and', key: 'a', nodes: [{ key: 'a', cmp: 'ex' }] }, 'a "and" node takes no key'],
    [{ op: 'and', nodes: [{ key: 'a', cmp: 'ex' }, 'x'] }, 'tf.nodes[1] must be an object'],
    [{ op: 'or', nodes: [{ op: 'and', nodes: [{ cmp: 'eq' }] }] }, 'tf.nodes[0].nodes[0].key is required'],
  ];
  test.each(cases)('%j', (node, message) => {
    expect(refusal(node)).toContain(message);
  });
});

describe('limits', () => {
  const leafNode = { key: 'a', cmp: 'ex' };
  function nested(depth: number): TagFilterNode {
    let node: TagFilterNode = leafNode;
    for (let i = 1; i < depth; i++) node = { op: 'not', nodes: [node] };
    return node;
  }

  test('depth', () => {
    expect(compileTagFilter(nested(TAG_FILTER_LIMITS.maxDepth)).ok).toBe(true);
    expect(refusal(nested(TAG_FILTER_LIMITS.maxDepth + 1))).toContain('deeper than 16 levels');
  });

  test('node count, checked before the nodes are walked', () => {
    const wide = (n: number) => ({ op: 'or', nodes: Array.from({ length: n }, () => leafNode) });
    expect(compileTagFilter(wide(TAG_FILTER_LIMITS.maxNodes - 1)).ok).toBe(true);
    expect(refusal(wide(TAG_FILTER_LIMITS.maxNodes))).toContain('more than 100 nodes');
    expect(refusal(wide(1_000_000))).toContain('tf.nodes has more than 100 entries');
  });

  test('value counts and string lengths', () => {
    const vals = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
    expect(compileTagFilter({ key: 'a', cmp: 'in', vals: vals(100) }).ok).toBe(true);
    expect(refusal({ key: 'a', cmp: 'in', vals: vals(101) })).toContain('tf.vals has more than 100 entries');
    const many = { op: 'or', nodes: Array.from({ length: 11 }, () => ({ key: 'a', cmp: 'in', vals: vals(100) })) };
    expect(refusal(many)).toContain('more than 1000 values');
    expect(compileTagFilter({ key: 'k'.repeat(256), cmp: 'ex' }).ok).toBe(true);
    expect(refusal({ key: 'k'.repeat(257), cmp: 'ex' })).toContain('tf.key is longer than 256 characters');
    expect(refusal({ key: 'a', cmp: 'in', vals: ['x', 'v'.repeat(257)] })).toContain('tf.vals[1] is longer');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Property tests against a plain interpreter of Centrifugo's Match (internal/filter/filter.go).

/** A decimal scaled by 10^19 as a BigInt, or null when udecimal would refuse it. */
function scaled(s: string): bigint | null {
  const m = /^([+-]?)(\d+)(?:\.(\d{1,19}))?$/.exec(s);
  if (m === null || s.length > 200) return null;
  const v = BigInt(m[2] + (m[3] ?? '').padEnd(19, '0'));
  return m[1] === '-' ? -v : v;
}

function reference(node: TagFilterNode, tags: Record<string, string>): boolean {
  const has = Object.hasOwn(tags, node.key ?? '');
  const value = has ? tags[node.key ?? ''] : '';
  switch (node.op ?? '') {
    case 'and':
      return (node.nodes ?? []).every((c) => reference(c, tags));
    case 'or':
      return (node.nodes ?? []).some((c) => reference(c, tags));
    case 'not':
      return !reference((node.nodes ?? [])[0], tags);
  }
  const val = node.val ?? '';
  switch (node.cmp) {
    case 'eq':
      return has && value === val;
    case 'neq':
      return !has || value !== val;
    case 'in':
      return (node.vals ?? []).includes(value);
    case 'nin':
      return !(node.vals ?? []).includes(value);
    case 'ex':
      return has;
    case 'nex':
      return !has;
    case 'sw':
      return has && value.startsWith(val);
    case 'ew':
      return has && value.endsWith(val);
    case 'ct':
      return has && value.includes(val);
  }
  const x = has ? scaled(value) : null;
  const y = scaled(val);
  if (x === null || y === null) return false;
  return { gt: x > y, gte: x >= y, lt: x < y, lte: x <= y }[node.cmp as 'gt'];
}

const KEYS = ['a', 'b', 'c', ''];
const STRINGS = ['', 'x', 'xy', 'yx', 'xyx', 'é', '😀', '0', '1', '-1', '1.5', '01.50', '+2', '1e3', '.5', '10'];
const keyArb = fc.constantFrom(...KEYS);
const strArb = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ unit: 'binary', maxLength: 4 }));
const numArb = fc.oneof(
  fc.constantFrom('0', '-0', '1', '-1', '0.5', '10', '99999999999999999999999999', '0.0000000000000000001'),
  fc.tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 25n }), fc.nat({ max: 19 })).map(([neg, v, point]) => {
    const digits = v.toString().padStart(point + 1, '0');
    const s = point === 0 ? digits : `${digits.slice(0, -point)}.${digits.slice(-point)}`;
    return neg ? `-${s}` : s;
  }),
);
const tagsArb = fc.dictionary(keyArb, fc.oneof(strArb, numArb), { maxKeys: 4 });

const leafArb: fc.Arbitrary<TagFilterNode> = fc.oneof(
  fc.record({ key: keyArb.filter((k) => k !== ''), cmp: fc.constantFrom('eq', 'neq', 'sw', 'ew', 'ct'), val: strArb.filter((s) => s !== '') }),
  fc.record({ key: keyArb.filter((k) => k !== ''), cmp: fc.constantFrom('in', 'nin'), vals: fc.array(strArb, { minLength: 1, maxLength: 4 }) }),
  fc.record({ key: keyArb, cmp: fc.constantFrom('ex', 'nex') }),
  fc.record({ key: keyArb.filter((k) => k !== ''), cmp: fc.constantFrom('gt', 'gte', 'lt', 'lte'), val: numArb }),
);
const { node: filterArb } = fc.letrec<{ node: TagFilterNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({ op: fc.constantFrom('and', 'or'), nodes: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ op: fc.constant('not'), nodes: tie('node').map((n) => [n]) }),
  ),
}));

describe('properties', () => {
  test('a compiled filter agrees with the reference interpreter', () => {
    fc.assert(
      fc.property(filterArb, tagsArb, (node, tags) => {
        const r = compileTagFilter(node);
        if (!r.ok) return; // only too large trees
        expect(r.filter(tags)).toBe(reference(node, tags));
      }),
      { numRuns: 2000 },
    );
  });

  test('not(x) is the negation of x', () => {
    fc.assert(
      fc.property(filterArb, tagsArb, (node, tags) => {
        const x = compileTagFilter(node);
        const notX = compileTagFilter({ op: 'not', nodes: [node] });
        if (!x.ok || !notX.ok) return;
        expect(notX.filter(tags)).toBe(!x.filter(tags));
      }),
      { numRuns: 1000 },
    );
  });

  test('numeric comparisons order decimals exactly', () => {
    fc.assert(
      fc.property(numArb, numArb, fc.constantFrom('gt', 'gte', 'lt', 'lte'), (a, b, cmp) => {
        const node = { key: 'n', cmp, val: b };
        expect(compile(node)({ n: a })).toBe(reference(node, { n: a }));
      }),
      { numRuns: 2000 },
    );
  });

  test('ct finds exactly the substrings', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b'), maxLength: 12 }), fc.string({ unit: fc.constantFrom('a', 'b'), minLength: 1, maxLength: 5 }), (text, pattern) => {
        expect(compile({ key: 'k', cmp: 'ct', val: pattern })({ k: text })).toBe(text.includes(pattern));
      }),
      { numRuns: 2000 },
    );
  });

  test('untrusted input: compiling never throws, and neither does a compiled filter on any tags', () => {
    const { node: loose } = fc.letrec<{ node: unknown }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue(),
        fc.record(
          {
            op: fc.oneof(fc.constantFrom('and', 'or', 'not', ''), fc.jsonValue()),
            key: fc.oneof(keyArb, fc.jsonValue()),
            cmp: fc.oneof(fc.constantFrom(...['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte']), fc.jsonValue()),
            val: fc.oneof(strArb, numArb, fc.jsonValue()),
            vals: fc.oneof(fc.array(strArb), fc.jsonValue()),
            nodes: fc.array(tie('node'), { maxLength: 3 }),
          },
          { requiredKeys: [] },
        ),
      ),
    }));
    // Tags of any shape, values of any type: a broken map must not make a filter throw either.
    const oddTags = fc.dictionary(fc.string(), fc.jsonValue()).map((t) => t as unknown as Record<string, string>);
    const anyTags = fc.oneof(tagsArb, fc.constant(undefined), oddTags);
    fc.assert(
      fc.property(loose, anyTags, (input, tags) => {
        const r = compileTagFilter(input);
        if (r.ok) expect(typeof r.filter(tags)).toBe('boolean');
        else expect(r.error).toMatch(/^(tf|filter)/);
      }),
      { numRuns: 2000 },
    );
  });
});
