// RESP2 for a pub/sub connection: commands encoded as arrays of bulk strings, replies read incrementally.

/** A reply: a simple string, an integer, a bulk string (null for nil), an array of replies, or an error. */
export type RespValue = string | number | null | RespValue[] | RespError;

export class RespError {
  constructor(readonly message: string) {}
}

/** `*N\r\n$len\r\narg\r\n…`: what every Redis command is on the wire. */
export function encodeCommand(args: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Most bytes one reply may take: far above any publication Switchboard sends, and bounded. */
const MAX_REPLY_BYTES = 512 * 1024 * 1024;
const CR = 13;

/**
 * Reads replies from a byte stream in any chunking. Bulk strings are decoded as UTF-8 (pub/sub payloads are
 * JSON text). A protocol violation throws: the caller drops the connection.
 */
export class RespReader {
  private buffer: Buffer = Buffer.alloc(0);
  private pos = 0;

  /** Feeds bytes; returns every reply they complete, in order. */
  push(chunk: Buffer): RespValue[] {
    this.buffer = this.pos < this.buffer.length ? Buffer.concat([this.buffer.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
    const out: RespValue[] = [];
    for (;;) {
      const start = this.pos;
      const value = this.read();
      if (value === undefined) {
        this.pos = start;
        break;
      }
      out.push(value.v);
    }
    if (this.buffer.length - this.pos > MAX_REPLY_BYTES) throw new Error(`a reply over ${MAX_REPLY_BYTES} bytes`);
    return out;
  }

  /** One reply from `pos`, or undefined when the buffer ends inside it. */
  private read(): { v: RespValue } | undefined {
    const line = this.line();
    if (line === undefined) return undefined;
    const type = line[0];
    const rest = line.slice(1);
    switch (type) {
      case '+':
        return { v: rest };
      case '-':
        return { v: new RespError(rest) };
      case ':':
        return { v: this.integer(rest) };
      case '$': {
        const len = this.integer(rest);
        if (len < 0) return { v: null };
        if (len > MAX_REPLY_BYTES) throw new Error(`a bulk string of ${len} bytes`);
        if (this.buffer.length < this.pos + len + 2) return undefined;
        const v = this.buffer.toString('utf8', this.pos, this.pos + len);
        this.pos += len + 2;
        return { v };
      }
      case '*': {
        const n = this.integer(rest);
        if (n < 0) return { v: null };
        const items: RespValue[] = [];
        for (let i = 0; i < n; i++) {
          const item = this.read();
          if (item === undefined) return undefined;
          items.push(item.v);
        }
        return { v: items };
      }
      default:
        throw new Error(`unexpected reply type ${JSON.stringify(type)}`);
    }
  }

  private line(): string | undefined {
    const end = this.buffer.indexOf(CR, this.pos);
    if (end < 0 || end + 1 >= this.buffer.length) return undefined;
    const text = this.buffer.toString('utf8', this.pos, end);
    this.pos = end + 2;
    return text;
  }

  private integer(text: string): number {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || text === '') throw new Error(`not an integer: ${JSON.stringify(text)}`);
    return n;
  }
}
