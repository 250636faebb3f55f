// WebSocket framing for the load generator's own client (RFC 6455): parses server frames, builds masked client frames.
//
// Written for speed: a parsed message, text or binary, is handed on as a view into the received chunk (no copy, no
// string), and client frames use the all-zero mask key, which the RFC allows, so the payload needs no XOR pass.

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface FrameHandler {
  /** A complete message (fragments joined). `data` is valid only during the call unless copied. */
  message(opcode: number, data: Buffer): void;
  /** A control frame: close, ping or pong. */
  control(opcode: number, data: Buffer): void;
}

/** Messages larger than this are a broken stream, not a benchmark payload. */
const MAX_MESSAGE = 16 * 1024 * 1024;

export class FrameParseError extends Error {
  override readonly name = 'FrameParseError';
}

/** Incremental parser: feed it chunks in order; it calls the handler once per complete message. */
export class FrameParser {
  private rest: Buffer | undefined;
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;

  constructor(private readonly handler: FrameHandler) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    const end = buf.length;
    while (end - pos >= 2) {
      const b0 = buf[pos];
      const b1 = buf[pos + 1];
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let header = 2;
      if (len === 126) {
        if (end - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        header = 4;
      } else if (len === 127) {
        if (end - pos < 10) break;
        const high = buf.readUInt32BE(pos + 2);
        if (high !== 0) throw new FrameParseError('frame longer than 4 GiB');
        len = buf.readUInt32BE(pos + 6);
        header = 10;
      }
      if (len > MAX_MESSAGE) throw new FrameParseError(`frame of ${len} bytes is over the ${MAX_MESSAGE} byte limit`);
      const maskAt = pos + header;
      if (masked) header += 4;
      if (end - pos < header + len) break;
      const start = pos + header;
      let payload = buf.subarray(start, start + len);
      if (masked) payload = unmask(payload, buf, maskAt);
      pos = start + len;

      if (opcode >= 0x8) {
        if (!fin || len > 125) throw new FrameParseError('control frames must be final and at most 125 bytes');
        this.handler.control(opcode, payload);
        continue;
      }
      if (opcode === OP_CONTINUATION) {
        if (this.fragments.length === 0) throw new FrameParseError('continuation frame without a message to continue');
        this.addFragment(payload);
        if (fin) this.finishFragments();
        continue;
      }
      if (opcode !== OP_TEXT && opcode !== OP_BINARY) throw new FrameParseError(`unknown opcode ${opcode}`);
      if (this.fragments.length > 0) throw new FrameParseError('new message before the fragmented one ended');
      if (fin) {
        this.handler.message(opcode, payload);
      } else {
        this.fragmentOpcode = opcode;
        this.addFragment(payload);
      }
    }
    // Keep the partial frame; copy it, since the chunk it lives in may be reused by the caller.
    if (pos < end) this.rest = Buffer.from(buf.subarray(pos));
  }

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return (this.rest?.length ?? 0) + this.fragmentBytes;
  }

  private addFragment(payload: Buffer): void {
    this.fragmentBytes += payload.length;
    if (this.fragmentBytes > MAX_MESSAGE) throw new FrameParseError(`message over the ${MAX_MESSAGE} byte limit`);
    this.fragments.push(Buffer.from(payload));
  }

  private finishFragments(): void {
    const data = Buffer.concat(this.fragments);
    const opcode = this.fragmentOpcode;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.handler.message(opcode, data);
  }
}

function unmask(payload: Buffer, buf: Buffer, maskAt: number): Buffer {
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i] ^ buf[maskAt + (i & 3)];
  return out;
}

/** A client frame (FIN set, masked with the zero key) carrying `payload`. */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const header = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(header + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  out.writeUInt32BE(0, header - 4); // the mask key: zero, so the payload goes out as it is
  payload.copy(out, header);
  return out;
}

/** A text message as one client frame. */
export function encodeClientText(text: string): Buffer {
  return encodeClientFrame(OP_TEXT, Buffer.from(text, 'utf8'));
}

/** A close frame with a status code. */
export function encodeClientClose(code = 1000): Buffer {
  const body = Buffer.allocUnsafe(2);
  body.writeUInt16BE(code, 0);
  return encodeClientFrame(OP_CLOSE, body);
}

/** The status code of a close frame's payload (1005 when it has none). */
export function closeCode(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}
