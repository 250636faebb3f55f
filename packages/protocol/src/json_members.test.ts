import fc from 'fast-check';
import { forEachMember } from './json_members';

function members(text: string): [string, string][] {
  const out: [string, string][] = [];
  forEachMember(text, (key, start, end) => out.push([key, text.slice(start, end)]));
  return out;
}

it('finds each member and the raw text of its value', () => {
  expect(members('{"offset":7,"data":{"a":"}]\\"{","b":[1,[2]]},"info":{"user":"u"},"tags":{"k":"v"}}')).toEqual([
    ['offset', '7'],
    ['data', '{"a":"}]\\"{","b":[1,[2]]}'],
    ['info', '{"user":"u"}'],
    ['tags', '{"k":"v"}'],
  ]);
  expect(members(' { "a" : true , "b":"x\\\\" ,"c": null } ')).toEqual([
    ['a', 'true'],
    ['b', '"x\\\\"'],
    ['c', 'null'],
  ]);
  expect(members('{}')).toEqual([]);
});

it('gives the text JSON.parse reads the same values from, for any object', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.boolean(), (object, pretty) => {
      const text = JSON.stringify(object, null, pretty ? 2 : undefined);
      const found = members(text);
      expect(found.map(([key]) => key)).toEqual(Object.keys(object).map((k) => JSON.stringify(k).slice(1, -1)));
      for (const [, raw] of found) JSON.parse(raw);
      expect(found.map(([, raw]) => JSON.parse(raw))).toEqual(Object.values(JSON.parse(text)));
    }),
    { numRuns: 500 },
  );
});

it('throws on text that is not an object', () => {
  expect(() => members('[1]')).toThrow('not an object');
  expect(() => members('{"a":1')).toThrow('cut short');
  expect(() => members('{"a')).toThrow('unterminated');
});
