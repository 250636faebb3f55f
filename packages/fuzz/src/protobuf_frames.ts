// Binary frames for the Protobuf decoder: Commands built from client.proto's field numbers with values of every wire
// type (right and wrong ones, nested messages, groups, JSON and non-JSON data), then byte-level edits.
import fc from 'fast-check';

/** A field as it goes on the wire. */
type WireField =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1 | 5; bytes: number[] }
  | { field: number; wire: 2; bytes: Uint8Array | WireField[] }
  | { field: number; wire: 3; fields: WireField[] };

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function encodeFields(fields: WireField[]): number[] {
  const out: number[] = [];
  for (const f of fields) {
    out.push(...varint(BigInt(f.field * 8 + f.wire)));
    switch (f.wire) {
      case 0:
        out.push(...varint(f.value));
        break;
      case 1:
      case 5:
        out.push(...f.bytes);
        break;
      case 2: {
        const body = f.bytes instanceof Uint8Array ? [...f.bytes] : encodeFields(f.bytes);
        out.push(...varint(BigInt(body.length)), ...body);
        break;
      }
      case 3:
        out.push(...encodeFields(f.fields), ...varint(BigInt(f.field * 8 + 4)));
        break;
    }
  }
  return out;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Field numbers requests use (1..19), the Command's methods (4..15), and a few nobody uses. */
const fieldNumber = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 19 }) }, { weight: 1, arbitrary: fc.constantFrom(30, 99, 536870911) });

const varintValue = fc.oneof(
  fc.bigInt({ min: 0n, max: 300n }),
  fc.constantFrom(0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -1n, -2n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

const dataBytes = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => utf8(JSON.stringify(v))),
  fc.string({ maxLength: 40 }).map(utf8),
  fc.uint8Array({ maxLength: 40 }),
  fc.integer({ min: 55, max: 70 }).map((d) => utf8('['.repeat(d) + ']'.repeat(d))),
);

/** Field numbers that hold a string or message in most requests (channel 1, token 2, epoch 6, data 8, ...); the rest hold varints. */
const BYTES_FIELDS = [1, 2, 4, 5, 6, 8, 12, 13, 17];
const VARINT_FIELDS = [3, 7, 9, 10, 11, 14, 15, 16, 18, 19];

/** A field of the type its number mostly has, with a value a request could hold: most inputs get past the wire checks. */
const typedField: fc.Arbitrary<WireField> = fc.oneof(
  fc.record({ field: fc.constantFrom(...BYTES_FIELDS), wire: fc.constant(2 as const), bytes: fc.oneof(fc.constantFrom('chat:index', 'doc:a', '', 'e', 'doc.get').map(utf8), dataBytes) }),
  fc.record({ field: fc.constantFrom(...VARINT_FIELDS), wire: fc.constant(0 as const), value: fc.oneof({ weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 20n }) }, { weight: 1, arbitrary: varintValue }) }),
);

const { message } = fc.letrec<{ message: WireField[]; field: WireField }>((tie) => ({
  message: fc.array(tie('field'), { maxLength: 6 }),
  field: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: typedField },
    fc.record({ field: fieldNumber, wire: fc.constant(0 as const), value: varintValue }),
    fc.record({ field: fieldNumber, wire: fc.constant(2 as const), bytes: dataBytes }),
    fc.record({ field: fieldNumber, wire: fc.constant(2 as const), bytes: tie('message') }),
    fc.record({ field: fieldNumber, wire: fc.constantFrom(1 as const, 5 as const), bytes: fc.array(fc.nat({ max: 255 }), { minLength: 8, maxLength: 8 }) }).map((f) => ({
      ...f,
      bytes: f.wire === 5 ? f.bytes.slice(0, 4) : f.bytes,
    })),
    fc.record({ field: fieldNumber, wire: fc.constant(3 as const), fields: tie('message') }),
  ),
})) as unknown as { message: fc.Arbitrary<WireField[]> };

/** A Command: an id (usually), one method field (sometimes two, sometimes an unknown one) holding a request. */
const command = fc
  .record(
    {
      id: fc.oneof({ weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 1000n }) }, { weight: 1, arbitrary: varintValue }),
      methods: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 4, max: 15 }).map((m) => [m]) },
        { weight: 1, arbitrary: fc.array(fc.constantFrom(2, 3, 4, 5, 12, 30), { maxLength: 2 }) },
      ),
      body: message,
    },
    { requiredKeys: ['methods', 'body'] },
  )
  .map(({ id, methods, body }) => {
    const fields: WireField[] = [];
    if (id !== undefined) fields.push({ field: 1, wire: 0, value: id });
    for (const m of methods) fields.push({ field: m, wire: 2, bytes: body });
    return encodeFields(fields);
  });

type ByteEdit = { kind: 'flip' | 'insert' | 'delete' | 'truncate'; at: number; byte: number };
const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({ kind: fc.constantFrom('flip', 'insert', 'delete', 'truncate'), at: fc.nat(), byte: fc.nat({ max: 255 }) });

function applyEdit(bytes: number[], e: ByteEdit): number[] {
  const at = bytes.length === 0 ? 0 : e.at % (bytes.length + 1);
  switch (e.kind) {
    case 'flip':
      return at < bytes.length ? [...bytes.slice(0, at), bytes[at] ^ (1 << e.byte % 8), ...bytes.slice(at + 1)] : bytes;
    case 'insert':
      return [...bytes.slice(0, at), e.byte, ...bytes.slice(at)];
    case 'delete':
      return [...bytes.slice(0, at), ...bytes.slice(at + 1)];
    case 'truncate':
      return bytes.slice(0, at);
  }
}

/** A frame of one to four length-delimited commands, as built or with a few byte edits (lengths then often lie). */
export const protobufFrame: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.array(command, { minLength: 1, maxLength: 4 }),
    fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(byteEdit, { minLength: 1, maxLength: 4 }) }),
    fc.boolean(),
  )
  .map(([commands, edits, empty]) => {
    let bytes: number[] = [];
    for (const c of commands) bytes.push(...varint(BigInt(c.length)), ...c);
    // An empty command is the answer to a ping.
    if (empty) bytes.push(0);
    bytes = edits.reduce(applyEdit, bytes);
    return new Uint8Array(bytes);
  });
