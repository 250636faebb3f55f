// Fossil delta encoder for Centrifugo's delta compression: the format the SDKs decode (fossil-scm.org delta_format.wiki).
//
// A delta is a size line, then commands: `N@O,` copies N bytes of the source from offset O, `N:bytes` inserts N
// literal bytes, `C;` ends with the checksum of the result. Numbers are written in Fossil's base-64 digits.
//
// Unlike Fossil's own encoder (and the fossil-delta npm package, which splits "é"/"è" between a copy and a literal),
// every literal run starts and ends on a UTF-8 character boundary of the target: the JSON protocol carries a delta
// as a JSON string and the SDK turns it back into bytes with TextEncoder, so a literal that split a character would
// not survive the trip. For UTF-8 targets the delta is therefore valid UTF-8; one delta serves JSON and Protobuf
// subscribers alike.
//
// Hot path, once per publication of a delta channel (never per subscriber): typed arrays, no per-byte allocation.

/** Width of the blocks of the source that are indexed, and of the rolling hash window over the target. */
const NHASH = 16;
/** How many source blocks with the same hash are tried at one target position: bounds the work per byte. */
const MAX_CANDIDATES = 250;

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';
const DIGIT_CODES = Uint8Array.from(DIGITS, (c) => c.charCodeAt(0));
const NEWLINE = 0x0a;
const COPY = 0x40; // @
const COMMA = 0x2c; // ,
const INSERT = 0x3a; // :
const END = 0x3b; // ;

/** The delta being written: a byte buffer that doubles when full. */
class Output {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(64, capacity));
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** An unsigned integer in Fossil's base-64 digits, most significant first. */
  int(v: number): void {
    const n = digitCount(v);
    this.reserve(n);
    for (let i = this.len + n - 1; i >= this.len; i--) {
      this.buf[i] = DIGIT_CODES[v & 63];
      v = Math.floor(v / 64);
    }
    this.len += n;
  }

  bytes(src: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.buf.set(src.subarray(start, end), this.len);
    this.len += end - start;
  }

  insert(target: Uint8Array, start: number, end: number): void {
    this.int(end - start);
    this.byte(INSERT);
    this.bytes(target, start, end);
  }

  copy(count: number, offset: number): void {
    this.int(count);
    this.byte(COPY);
    this.int(offset);
    this.byte(COMMA);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function digitCount(v: number): number {
  let n = 1;
  while (v >= 64) {
    v = Math.floor(v / 64);
    n++;
  }
  return n;
}

/**
 * The checksum Fossil puts at the end of a delta: the sum, modulo 2^32, of the bytes read as big-endian 32-bit
 * words, a short last word padded with zeros.
 */
export function fossilChecksum(bytes: Uint8Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = bytes.length;
  let i = 0;
  // Each sum stays below 2^53 for any array that fits in memory, so it is exact; reduced once at the end.
  for (; i + 4 <= n; i += 4) {
    s0 += bytes[i];
    s1 += bytes[i + 1];
    s2 += bytes[i + 2];
    s3 += bytes[i + 3];
  }
  if (i < n) s0 += bytes[i];
  if (i + 1 < n) s1 += bytes[i + 1];
  if (i + 2 < n) s2 += bytes[i + 2];
  return ((s0 << 24) + (s1 << 16) + (s2 << 8) + s3) >>> 0;
}

/** Rolling hash over a window of NHASH bytes (Adler-style, as Fossil's). */
class RollingHash {
  private a = 0;
  private b = 0;
  private readonly window = new Uint8Array(NHASH);
  private pos = 0;

  init(z: Uint8Array, start: number): void {
    let a = 0;
    let b = 0;
    for (let i = 0; i < NHASH; i++) {
      const c = z[start + i];
      this.window[i] = c;
      a = (a + c) & 0xffff;
      b = (b + a) & 0xffff;
    }
    this.a = a;
    this.b = b;
    this.pos = 0;
  }

  /** Slides the window one byte: drops the oldest, appends `c`. */
  next(c: number): void {
    const old = this.window[this.pos];
    this.window[this.pos] = c;
    this.pos = (this.pos + 1) & (NHASH - 1);
    this.a = (this.a - old + c) & 0xffff;
    this.b = (this.b - NHASH * old + this.a) & 0xffff;
  }

  value(): number {
    return (this.a | (this.b << 16)) >>> 0;
  }
}

/** True at 0, at the end, and before any byte that is not a UTF-8 continuation byte (10xxxxxx). */
function isBoundary(z: Uint8Array, i: number): boolean {
  return i <= 0 || i >= z.length || (z[i] & 0xc0) !== 0x80;
}

/** The first character boundary at or after `i`, looking at most 3 bytes ahead (bytes that are not UTF-8 stop there). */
function boundaryAfter(z: Uint8Array, i: number): number {
  for (let k = 0; k < 3 && !isBoundary(z, i); k++) i++;
  return i;
}

/** The last character boundary at or before `i`, looking at most 3 bytes back. */
function boundaryBefore(z: Uint8Array, i: number): number {
  for (let k = 0; k < 3 && !isBoundary(z, i); k++) i--;
  return i;
}

/**
 * A Fossil delta that turns `source` into `target`. Any two byte arrays are accepted; the SDKs' decoders give
 * `target` back. Work is linear in the sizes (bounded by MAX_CANDIDATES tries per target position).
 */
export function createFossilDelta(source: Uint8Array, target: Uint8Array): Uint8Array {
  const lenSrc = source.length;
  const lenOut = target.length;
  const out = new Output(Math.min(lenOut, 1024) + 32);
  out.int(lenOut);
  out.byte(NEWLINE);

  if (lenSrc <= NHASH) {
    if (lenOut > 0) out.insert(target, 0, lenOut);
    out.int(fossilChecksum(target));
    out.byte(END);
    return out.result();
  }

  // Index the source by the hash of each whole NHASH-byte block: landmark[h] is the last block with hash h,
  // collide[block] the block before it with the same hash.
  const nHash = Math.floor(lenSrc / NHASH);
  const collide = new Int32Array(nHash).fill(-1);
  const landmark = new Int32Array(nHash).fill(-1);
  const hash = new RollingHash();
  for (let i = 0; i + NHASH <= lenSrc; i += NHASH) {
    hash.init(source, i);
    const h = hash.value() % nHash;
    collide[i / NHASH] = landmark[h];
    landmark[h] = i / NHASH;
  }

  // `base` is where the unencoded rest of the target starts; it always sits on a character boundary.
  let base = 0;
  while (base + NHASH < lenOut) {
    hash.init(target, base);
    let bestCnt = 0;
    let bestOfst = 0;
    let bestLit = 0;
    let i = 0; // the window starts at base + i
    for (;;) {
      let block = landmark[hash.value() % nHash];
      for (let tries = 0; block >= 0 && tries < MAX_CANDIDATES; tries++, block = collide[block]) {
        const iSrc = block * NHASH;
        // Extend the match forwards from the window start, then backwards (no further back than base).
        let fwd = 0;
        while (iSrc + fwd < lenSrc && base + i + fwd < lenOut && source[iSrc + fwd] === target[base + i + fwd]) fwd++;
        let back = 0;
        while (back < iSrc && back < i && source[iSrc - back - 1] === target[base + i - back - 1]) back++;
        // The copy covers target[start, end); both ends moved onto character boundaries, so that the literals
        // around it hold whole characters.
        const start = boundaryAfter(target, base + i - back);
        const end = boundaryBefore(target, base + i + fwd);
        const cnt = end - start;
        if (cnt <= bestCnt) continue;
        const ofst = iSrc - (base + i - start);
        const lit = start - base;
        // Worth a copy only when it is no longer than the command that would replace the literal bytes.
        const cost = digitCount(lit) + digitCount(cnt) + digitCount(ofst) + 3;
        if (cnt >= cost) {
          bestCnt = cnt;
          bestOfst = ofst;
          bestLit = lit;
        }
      }
      if (bestCnt > 0) {
        if (bestLit > 0) out.insert(target, base, base + bestLit);
        out.copy(bestCnt, bestOfst);
        base += bestLit + bestCnt;
        break;
      }
      if (base + i + NHASH >= lenOut) {
        // No match up to the end of the target: the rest goes as one literal.
        out.insert(target, base, lenOut);
        base = lenOut;
        break;
      }
      hash.next(target[base + i + NHASH]);
      i++;
    }
  }
  if (base < lenOut) out.insert(target, base, lenOut);
  out.int(fossilChecksum(target));
  out.byte(END);
  return out.result();
}

/**
 * The delta when it is smaller than `target`, otherwise null: the publication then goes with its full payload,
 * as Centrifugo does (`delta: false`), which also restarts every subscriber's chain from that payload.
 */
export function fossilDeltaIfSmaller(source: Uint8Array, target: Uint8Array): Uint8Array | null {
  const delta = createFossilDelta(source, target);
  return delta.length < target.length ? delta : null;
}
