// The benchmark payload: sequence, intended send time, step and channel in a JSON object padded to an exact size,
// and the scanner that finds payloads in received frames of any of the compared protocols.
//
// Every system under test passes `data` through as JSON with its keys in order, so the receiver can find
// payloads by their opening bytes and read the numbers without JSON.parse (hot path: one call per delivery).
// The Pusher protocol carries `data` as a JSON string inside the frame, so there the quotes arrive escaped.

/** The byte sequences a payload is recognised by: its opening bytes and the keys before each number. */
export interface PayloadKeys {
  mark: Buffer;
  t: Buffer;
  k: Buffer;
  c: Buffer;
}

function keys(quote: string): PayloadKeys {
  const key = (text: string): Buffer => Buffer.from(text.replaceAll('"', quote), 'latin1');
  return { mark: key('{"s":'), t: key(',"t":'), k: key(',"k":'), c: key(',"c":') };
}

/** The payload as a JSON value in the frame (Centrifugo, Socket.IO). */
export const PLAIN_KEYS = keys('"');
/** The payload inside a JSON string in the frame, each quote escaped as `\"` (Pusher channel events). */
export const ESCAPED_KEYS = keys('\\"');

export interface PayloadFields {
  /** Sequence number of the publication within its step. */
  seq: number;
  /** Intended send time, microseconds on the system-wide monotonic clock (see nowMicros). */
  intendedUs: number;
  /** Step id: deliveries of another step are counted apart. */
  step: number;
  /** Index of the channel the publication was sent to. */
  channel: number;
}

/** The smallest payload: the fields with no padding. Sizes below it are rounded up to it. */
export function payloadJson(fields: PayloadFields, size: number): string {
  const head = `{"s":${fields.seq},"t":${fields.intendedUs},"k":${fields.step},"c":${fields.channel},"p":"`;
  const pad = size - head.length - 2;
  return pad > 0 ? `${head}${'x'.repeat(pad)}"}` : `${head}"}`;
}

/**
 * Microseconds on CLOCK_MONOTONIC, which every process on the machine shares. performance.now() reads the same
 * clock from a per-process origin and is much cheaper than hrtime.bigint(), so it is used with the origin added.
 */
export function nowMicros(): number {
  return performance.now() * 1000 + ORIGIN_US;
}

/** The smallest of a few samples, after a first pair of reads that pays for lazy initialisation. */
const ORIGIN_US = ((): number => {
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const before = performance.now() * 1000;
    const origin = Number(process.hrtime.bigint() / 1000n) - before;
    if (i > 0) best = Math.min(best, origin);
  }
  return best;
})();

export type DeliveryVisitor = (seq: number, intendedUs: number, step: number, channel: number) => void;

/**
 * Calls `visit` for every payload in `buf[start, end)`, e.g. a Centrifugo frame of several newline-separated
 * pushes, a Socket.IO `42["p",{...}]` packet or (with ESCAPED_KEYS) a Pusher channel event. Returns how many it
 * found. A malformed payload (a key out of place) ends the scan and is reported by a negative count of what was
 * found before it, minus one.
 */
export function scanDeliveries(buf: Buffer, start: number, end: number, visit: DeliveryVisitor, keys: PayloadKeys = PLAIN_KEYS): number {
  const { mark, t: keyT, k: keyK, c: keyC } = keys;
  let found = 0;
  let pos = buf.indexOf(mark, start);
  while (pos !== -1 && pos < end) {
    let p = pos + mark.length;
    const seq = readUint(buf, p, end);
    p = next;
    if (seq < 0 || !at(buf, p, end, keyT)) return -found - 1;
    const t = readUint(buf, p + keyT.length, end);
    p = next;
    if (t < 0 || !at(buf, p, end, keyK)) return -found - 1;
    const k = readUint(buf, p + keyK.length, end);
    p = next;
    if (k < 0 || !at(buf, p, end, keyC)) return -found - 1;
    const c = readUint(buf, p + keyC.length, end);
    p = next;
    if (c < 0) return -found - 1;
    visit(seq, t, k, c);
    found++;
    pos = buf.indexOf(mark, p);
  }
  return found;
}

/** Where the last readUint stopped (module state rather than an allocated pair: this runs per delivery). */
let next = 0;

function readUint(buf: Buffer, from: number, end: number): number {
  let value = 0;
  let p = from;
  while (p < end) {
    const ch = buf[p];
    if (ch < 48 || ch > 57) break;
    value = value * 10 + (ch - 48);
    p++;
  }
  next = p;
  return p === from ? -1 : value;
}

function at(buf: Buffer, pos: number, end: number, key: Buffer): boolean {
  if (pos + key.length > end) return false;
  for (let i = 0; i < key.length; i++) if (buf[pos + i] !== key[i]) return false;
  return true;
}
