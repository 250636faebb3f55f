// Mutations of a seed corpus: byte-level edits that keep most of a real input's shape, so decoders get past their first check.
import fc from 'fast-check';

/** Characters that matter to JSON, YAML, JSON Pointers, channel names and UTF-16. */
const interesting = [
  '{', '}', '[', ']', '"', ':', ',', '\\', ' ', '\n', '\t', '#', '*', '/', '~', '-', '.', '0', '1', '9', 'e', 'a', 'z',
  '\u0000', '\u001f', '\u007f', '\ud800', '\udc00', '\ufffd', '\u2028', '\u{1F600}', 'null', 'true', '-0', '1e999',
  '9007199254740993', '__proto__', 'constructor', '\\u0000', '\\ud800', '%00', '..', '&', '!', '|', '>', "'",
];

export const interestingText = fc.array(fc.constantFrom(...interesting), { minLength: 1, maxLength: 6 }).map((parts) => parts.join(''));

type Edit =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'replace'; at: number; length: number; text: string }
  | { kind: 'duplicate'; at: number; length: number; times: number }
  | { kind: 'truncate'; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: interestingText }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }), text: interestingText }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }), times: fc.integer({ min: 2, max: 200 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function apply(text: string, e: Edit): string {
  const at = text.length === 0 ? 0 : e.at % (text.length + 1);
  switch (e.kind) {
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.length);
    case 'replace':
      return text.slice(0, at) + e.text + text.slice(at + e.length);
    case 'duplicate':
      return text.slice(0, at) + text.slice(at, at + e.length).repeat(e.times) + text.slice(at);
    case 'truncate':
      return text.slice(0, at);
  }
}

/** A seed as it is, or with up to eight edits, or two seeds joined by a newline. */
export function mutated(seeds: readonly string[]): fc.Arbitrary<string> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    { weight: 1, arbitrary: seed },
    { weight: 6, arbitrary: fc.tuple(seed, fc.array(edit, { minLength: 1, maxLength: 8 })).map(([s, edits]) => edits.reduce(apply, s)) },
    { weight: 1, arbitrary: fc.tuple(seed, seed).map(([a, b]) => `${a}\n${b}`) },
  );
}

/** Strings of arbitrary UTF-16 code units (lone surrogates included) mixed with the characters channel names use. */
export const anyCodeUnits = fc.string({
  unit: fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.constantFrom(':', '#', ',', '{', '}', '*', 'a', 'b', '\ud83d\ude00')),
  maxLength: 300,
});
