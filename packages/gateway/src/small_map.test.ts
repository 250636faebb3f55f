import fc from 'fast-check';
import { SmallMap } from './small_map';

type Op = { op: 'set'; key: string; value: number } | { op: 'delete'; key: string } | { op: 'get'; key: string };

const key = fc.constantFrom('a', 'b', 'c', 'd', '', 'chat:1');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ op: fc.constant('delete' as const), key }),
  fc.record({ op: fc.constant('get' as const), key }),
);

it('answers every sequence of operations as a Map does, in the same order', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const small = new SmallMap<number>();
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.op === 'set') {
          small.set(o.key, o.value);
          model.set(o.key, o.value);
        } else if (o.op === 'delete') {
          expect(small.delete(o.key)).toBe(model.delete(o.key));
        } else {
          expect(small.get(o.key)).toBe(model.get(o.key));
          expect(small.has(o.key)).toBe(model.has(o.key));
        }
        expect(small.size).toBe(model.size);
        expect(small.values()).toEqual([...model.values()]);
      }
    }),
    { numRuns: 2000 },
  );
});

it('keeps one entry without a Map, and the empty key is a key like any other', () => {
  const small = new SmallMap<string>();
  small.set('', 'empty');
  expect(small.has('')).toBe(true);
  expect(small.get('')).toBe('empty');
  small.set('x', 'x');
  expect(small.values()).toEqual(['empty', 'x']);
  expect(small.delete('')).toBe(true);
  expect(small.values()).toEqual(['x']);
});

it('values() is a snapshot: deleting while walking it visits every entry once', () => {
  const small = new SmallMap<number>();
  for (const [i, k] of ['a', 'b', 'c'].entries()) small.set(k, i);
  const seen: number[] = [];
  for (const v of small.values()) {
    seen.push(v);
    small.delete(['a', 'b', 'c'][v]);
  }
  expect(seen).toEqual([0, 1, 2]);
  expect(small.size).toBe(0);
});
