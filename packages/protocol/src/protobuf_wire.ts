// Protocol Buffers wire format: varints and length-delimited fields, read with bounds checks and written into one buffer.

/** Wire types of the Protocol Buffers encoding. */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  Bytes: 2,
  StartGroup: 3,
  EndGroup: 4,
  Fixed32: 5,
} as const;

/** Bytes that are not a Protocol Buffers message (cut short, a length past the end, a wire type that does not exist). */
export class MalformedError extends Error {}

/** Deepest nesting of groups skipped as unknown fields: a group holds fields, which may be groups again. */
const MAX_GROUP_DEPTH = 32;

const TWO_32 = 4294967296;
/** The high 32 bits of the largest safe integer (2^53 - 1) plus one. */
const SAFE_HIGH = 0x200000;

/** Reads fields of a message out of a byte range; every read checks it stays inside the range. */
export class PbReader {
  pos: number;
  /** Low and high 32 bits of the last varint (`lo` unsigned). */
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a varint of up to 10 bytes into `lo`/`hi`. */
  varint(): void {
    const { buf, end } = this;
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (; ; i++) {
      if (this.pos >= end) throw new MalformedError('a varint runs past the end of the frame');
      if (i === 10) throw new MalformedError('a varint is longer than 10 bytes');
      const b = buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) break;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  uint32(): number {
    this.varint();
    return this.lo;
  }

  int32(): number {
    this.varint();
    return this.lo | 0;
  }

  /** A uint64 as a number, or NaN when it is beyond 2^53 - 1. */
  uint64(): number {
    this.varint();
    return this.hi < SAFE_HIGH ? this.hi * TWO_32 + this.lo : NaN;
  }

  /** An int64 (two's complement) as a number, or NaN when it is beyond ±(2^53 - 1). */
  int64(): number {
    this.varint();
    if (this.hi < 0x80000000) return this.hi < SAFE_HIGH ? this.hi * TWO_32 + this.lo : NaN;
    // Negative: the magnitude is the two's complement of the 64 bits.
    const lo = (~this.lo + 1) >>> 0;
    let hi = ~this.hi >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
    return hi < SAFE_HIGH ? -(hi * TWO_32 + lo) : NaN;
  }

  bool(): boolean {
    this.varint();
    return this.lo !== 0 || this.hi !== 0;
  }

  /** Reads a length prefix and returns the [start, end) of the bytes it announces, moving past them. */
  delimited(): [number, number] {
    this.varint();
    const length = this.hi === 0 ? this.lo : Infinity;
    const start = this.pos;
    if (length > this.end - start) throw new MalformedError(`a length of ${this.hi === 0 ? length : 'over 2^32'} runs past the end of the frame`);
    this.pos = start + length;
    return [start, this.pos];
  }

  /** Reads a field's key: sets the field number and wire type it names. */
  key(): { field: number; wire: number } {
    this.varint();
    if (this.hi !== 0 || this.lo >>> 3 === 0) throw new MalformedError('a field number is 0 or beyond 2^29');
    return { field: this.lo >>> 3, wire: this.lo & 7 };
  }

  /** Skips the value of a field not read (unknown, or of a wire type the schema does not expect). */
  skip(wire: number, field: number, depth = 0): void {
    switch (wire) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Fixed64:
        this.advance(8);
        return;
      case WireType.Bytes:
        this.delimited();
        return;
      case WireType.Fixed32:
        this.advance(4);
        return;
      case WireType.StartGroup: {
        if (depth >= MAX_GROUP_DEPTH) throw new MalformedError(`groups nest deeper than ${MAX_GROUP_DEPTH} levels`);
        for (;;) {
          const k = this.key();
          if (k.wire === WireType.EndGroup) {
            if (k.field !== field) throw new MalformedError('a group ends with another field number than it started');
            return;
          }
          this.skip(k.wire, k.field, depth + 1);
        }
      }
      default:
        throw new MalformedError(`wire type ${wire} does not exist${wire === WireType.EndGroup ? ' outside a group' : ''}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new MalformedError('a fixed-size field runs past the end of the frame');
    this.pos += n;
  }
}

/**
 * The buffer every writer builds in. Encoding is synchronous and a writer never starts another, so one suffices; a
 * frame is copied out of it once, at its exact size.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** Strings up to this many UTF-16 units are copied without a native call. */
const SHORT_STRING = 24;

/** Builds messages in one buffer; a nested message's length is written once its end is known. */
export class PbWriter {
  private buf = scratch;
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = scratch = grown;
  }

  /** A varint of a non-negative safe integer. */
  private rawVarint(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    while (n > 0x7fffffff) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  private tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  /** A uint32/uint64 field; 0 is the default and is not written (proto3). */
  uint(field: number, value: number | undefined): this {
    if (value === undefined || value === 0) return this;
    this.tag(field, WireType.Varint);
    this.rawVarint(value);
    return this;
  }

  bool(field: number, value: boolean | undefined): this {
    if (!value) return this;
    this.tag(field, WireType.Varint);
    this.rawVarint(1);
    return this;
  }

  /**
   * A string or bytes field holding the UTF-8 of `text` (JSON for `bytes` data fields); '' is not written unless
   * `always` (map entries write their key and value even when empty).
   */
  string(field: number, text: string | undefined, always = false): this {
    if (text === undefined || (text === '' && !always)) return this;
    this.tag(field, WireType.Bytes);
    this.utf8(text);
    return this;
  }

  /** A bytes field holding `data` as is (a fossil delta, which need not be UTF-8). */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WireType.Bytes);
    this.rawVarint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    return this;
  }

  /** Length prefix and UTF-8 bytes of `text`. */
  private utf8(text: string): void {
    const n = text.length;
    // At most 3 bytes per UTF-16 unit; the prefix is reserved for that bound and moved back if it came out shorter.
    const reserved = varintSize(n * 3);
    this.ensure(reserved + n * 3);
    const buf = this.buf;
    const start = this.pos + reserved;
    // Short strings (field names, ids, small numbers) are mostly ASCII and copied unit by unit, which beats a native
    // call; a longer one, or the first other unit, goes to the UTF-8 encoder.
    let i = 0;
    if (n <= SHORT_STRING) {
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c > 0x7f) break;
        buf[start + i] = c;
      }
    }
    const written = i === n ? n : buf.write(text, start, 'utf8');
    this.finishLength(start, reserved, written);
  }

  /** Starts a nested message (or, with field 0, a length-delimited message of a frame); returns its mark. */
  begin(field: number): number {
    if (field > 0) this.tag(field, WireType.Bytes);
    this.ensure(1);
    // One byte reserved for the length: most nested messages are shorter than 128 bytes.
    this.pos += 1;
    return this.pos;
  }

  /** Ends the nested message started at `mark`, writing its length before it. */
  end(mark: number): this {
    this.finishLength(mark, 1, this.pos - mark);
    return this;
  }

  /** Writes `length` as a varint in the `reserved` bytes before `start`, moving the `length` bytes if it needs another size. */
  private finishLength(start: number, reserved: number, length: number): void {
    const size = varintSize(length);
    if (size !== reserved) {
      this.ensure(size - reserved);
      this.buf.copyWithin(start - reserved + size, start, start + length);
    }
    let at = start - reserved;
    let n = length;
    while (n > 0x7f) {
      this.buf[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[at++] = n;
    this.pos = at + length;
  }

  /** The bytes written, copied out of the shared buffer. */
  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

/** Bytes a varint of the non-negative integer `n` takes. */
export function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n = n > 0x7fffffff ? Math.floor(n / 128) : n >>> 7;
    size++;
  }
  return size;
}
