// The encoder against the centrifuge SDK's own decoder, taken from its build: the JSON path (delta carried as a
// JSON string) and the Protobuf path (delta as bytes).
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { createFossilDelta, fossilChecksum, fossilDeltaIfSmaller } from './fossil_delta';

interface DecodedPub {
  newData: unknown;
  newPrevValue: Uint8Array;
  isDelta: boolean;
  wireBytes: number;
  fullBytes: number;
}
interface SdkDelta {
  applyDelta(source: Uint8Array, delta: Uint8Array): Uint8Array;
  JsonCodec: new () => { applyDeltaIfNeeded(pub: { data: string; delta?: boolean }, prev: Uint8Array | undefined): DecodedPub };
}

/**
 * The SDK does not export its decoder: its build is cut from the Fossil decoder's first line to the end of the
 * JSON codec, and evaluated as it is.
 */
function loadSdk(module: string): SdkDelta {
  const source = readFileSync(require.resolve(module), 'utf8');
  const from = source.indexOf('const zValue = [');
  const to = source.indexOf('const defaults = {', from);
  if (from < 0 || to < 0 || !source.slice(from, to).includes('applyDeltaIfNeeded')) {
    throw new Error(`the Fossil decoder of ${module} moved: update loadSdk`);
  }
  return new Function(`${source.slice(from, to)}\nreturn { applyDelta, JsonCodec };`)() as SdkDelta;
}

const sdk = loadSdk('centrifuge');
const sdkProtobuf = loadSdk('centrifuge/build/protobuf');
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * What a JSON subscriber sees: the previous data (JSON text) as the SDK kept it, then this publication's `data`, a
 * JSON string holding the delta.
 */
function decodeJson(prevText: string, delta: Uint8Array): DecodedPub {
  const wire = JSON.stringify({ data: strictUtf8.decode(delta), delta: true });
  const pub = JSON.parse(wire) as { data: string; delta: boolean };
  return new sdk.JsonCodec().applyDeltaIfNeeded(pub, utf8.encode(prevText));
}

function roundTripText(prev: string, next: string): Uint8Array {
  const delta = createFossilDelta(utf8.encode(prev), utf8.encode(next));
  const decoded = decodeJson(prev, delta);
  expect(Buffer.from(decoded.newPrevValue).equals(Buffer.from(utf8.encode(next)))).toBe(true);
  expect(decoded.isDelta).toBe(true);
  return delta;
}

function roundTripBytes(prev: Uint8Array, next: Uint8Array): Uint8Array {
  const delta = createFossilDelta(prev, next);
  expect(Buffer.from(sdkProtobuf.applyDelta(prev, delta)).equals(Buffer.from(next))).toBe(true);
  return delta;
}

type Edit = { at: number; remove: number; insert: string };

/** Applies edits at relative positions (0..1) of the current text: small changes to a larger text. */
function edit(text: string, edits: Edit[]): string {
  let out = text;
  for (const e of edits) {
    const at = Math.floor(e.at * out.length);
    out = out.slice(0, at) + e.insert + out.slice(at + e.remove);
  }
  return out;
}

const editArb = (unit: 'binary' | 'grapheme-ascii') =>
  fc.record({
    at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    remove: fc.nat({ max: 40 }),
    insert: fc.string({ unit, maxLength: 40 }),
  });

/** Unicode text with repetition in it, as documents have. */
const textArb = fc
  .tuple(fc.string({ unit: 'binary', maxLength: 200 }), fc.nat({ max: 30 }), fc.string({ unit: 'binary', maxLength: 200 }))
  .map(([a, n, b]) => a + `${a}|${b}`.repeat(n) + b);

describe('createFossilDelta', () => {
  test('edge cases decode with the SDK', () => {
    const long = 'x'.repeat(100);
    for (const [prev, next] of [
      ['', ''],
      ['', 'hello'],
      ['hello', ''],
      ['short', 'shorter text than sixteen? no, longer'],
      [long, long],
      [long, ''],
      [long, `${long}y`],
      [`y${long}`, long],
      ['{"a":1}', '{"a":1}'],
    ]) {
      roundTripText(JSON.stringify(prev), JSON.stringify(next));
      roundTripBytes(utf8.encode(prev), utf8.encode(next));
    }
  });

  test('a literal never splits a UTF-8 character, so the delta survives the JSON string', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(4);
    const prev = JSON.stringify({ text: `${text}café au lait 😀 ${text}` });
    const next = JSON.stringify({ text: `${text}cafè au lait 😁 ${text}` });
    const delta = roundTripText(prev, next);
    expect(() => strictUtf8.decode(delta)).not.toThrow();
    expect(delta.length).toBeLessThan(40);
  });

  test('random similar unicode texts: the SDK JSON codec gives the target back, byte for byte', () => {
    fc.assert(
      fc.property(textArb, fc.array(editArb('binary'), { maxLength: 6 }), (prev, edits) => {
        const delta = roundTripText(JSON.stringify([prev]), JSON.stringify([edit(prev, edits)]));
        expect(() => strictUtf8.decode(delta)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  test('unrelated texts and JSON documents decode too', () => {
    fc.assert(
      fc.property(fc.json({ stringUnit: 'binary' }), fc.json({ stringUnit: 'binary' }), (prev, next) => {
        roundTripText(prev, next);
      }),
      { numRuns: 200 },
    );
  });

  test('random bytes (Protobuf data): the SDK decoder gives the target back', () => {
    const bytesEdit = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      remove: fc.nat({ max: 40 }),
      insert: fc.uint8Array({ maxLength: 40 }),
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat({ max: 4 }), fc.array(bytesEdit, { maxLength: 6 }), (seed, n, edits) => {
        const prev = Buffer.concat(Array.from({ length: n + 1 }, () => seed));
        let next: Buffer = prev;
        for (const e of edits) {
          const at = Math.floor(e.at * next.length);
          next = Buffer.concat([next.subarray(0, at), e.insert, next.subarray(at + e.remove)]);
        }
        roundTripBytes(new Uint8Array(prev), new Uint8Array(next));
      }),
      { numRuns: 300 },
    );
  });

  test('a small change to a 10 KB document gives a delta of a few dozen bytes', () => {
    const { prev, next } = documentPair();
    expect(prev.length).toBeGreaterThan(10_000);
    const delta = roundTripText(prev, next);
    expect(delta.length).toBeLessThan(64);
    expect(fossilDeltaIfSmaller(utf8.encode(prev), utf8.encode(next))).toEqual(delta);
  });

  test('fossilDeltaIfSmaller gives null when the delta would not be smaller', () => {
    expect(fossilDeltaIfSmaller(utf8.encode('abc'), utf8.encode('xyz'))).toBeNull();
    expect(fossilDeltaIfSmaller(utf8.encode('a'.repeat(100)), utf8.encode(''))).toBeNull();
  });

  test('fossilChecksum agrees with the SDK (a wrong one makes its decoder throw)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        // A hand-made delta: one literal of the whole target, then its checksum.
        const parts = [utf8.encode(`${base64Int(bytes.length)}\n`)];
        if (bytes.length > 0) parts.push(utf8.encode(`${base64Int(bytes.length)}:`), bytes);
        parts.push(utf8.encode(`${base64Int(fossilChecksum(bytes))};`));
        const delta = new Uint8Array(Buffer.concat(parts));
        expect(Buffer.from(sdkProtobuf.applyDelta(new Uint8Array(0), delta)).equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });
});

function base64Int(v: number): string {
  const digits = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';
  let s = '';
  do {
    s = digits[v % 64] + s;
    v = Math.floor(v / 64);
  } while (v > 0);
  return s;
}

/** A document state of about 10 KB and the same state with one field changed. */
function documentPair(): { prev: string; next: string } {
  const items = Array.from({ length: 90 }, (_, i) => ({
    id: `item-${i}`,
    title: `Task number ${i}: review the quarterly report`,
    done: i % 3 === 0,
    assignee: ['ana', 'bo', 'chen', 'dara'][i % 4],
    estimate: (i * 7) % 13,
  }));
  const prev = JSON.stringify({ version: 41, title: 'Sprint board', items });
  items[37] = { ...items[37], done: !items[37].done };
  const next = JSON.stringify({ version: 42, title: 'Sprint board', items });
  return { prev, next };
}
