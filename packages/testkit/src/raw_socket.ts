// Raw TCP for hostile-input tests: hand-made HTTP requests and WebSocket frames, and what the server answered.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface RawExchange {
  /** Everything the server wrote before it closed or the wait ended. */
  data: Buffer;
  /** True when the server closed the connection (FIN or reset) within the wait. */
  closed: boolean;
}

/** Writes `chunks` (each written as one write, `gapMs` apart) and collects the answer for up to `waitMs`. */
export function rawExchange(port: number, chunks: (string | Buffer)[], opts: { waitMs?: number; gapMs?: number; until?: (data: Buffer) => boolean } = {}): Promise<RawExchange> {
  const waitMs = opts.waitMs ?? 2000;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (opts.until?.(data)) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed) return;
        socket.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}

/** The status codes of every HTTP response in `data`, in order (bodies are skipped by Content-Length). */
export function httpStatuses(data: Buffer): number[] {
  const statuses: number[] = [];
  let at = 0;
  const text = data.toString('latin1');
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const head = text.slice(at, headEnd);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) break;
    statuses.push(Number(m[1]));
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    at = headEnd + 4 + (len ? Number(len[1]) : 0);
  }
  return statuses;
}

/** The bodies of every HTTP response in `data` (Content-Length framed), in order. */
export function httpBodies(data: Buffer): string[] {
  const bodies: string[] = [];
  let at = 0;
  const text = data.toString('utf8');
  while (at < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(at, headEnd));
    const n = len ? Number(len[1]) : 0;
    bodies.push(text.slice(headEnd + 4, headEnd + 4 + n));
    at = headEnd + 4 + n;
  }
  return bodies;
}

export function httpRequest(method: string, path: string, headers: Record<string, string>, body = ''): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== '' && !Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(path = '/connection/websocket', headers: Record<string, string> = {}): string {
  return httpRequest('GET', path, { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': WS_KEY, 'Sec-WebSocket-Version': '13', ...headers });
}

/** One WebSocket frame as a client writes it (masked unless told otherwise). Lengths may lie via `declaredLength`. */
export function wsFrame(opcode: number, payload: Buffer | string, opts: { mask?: boolean; fin?: boolean; declaredLength?: number } = {}): Buffer {
  const body = Buffer.isBuffer(payload) ? Buffer.from(payload) : Buffer.from(payload, 'utf8');
  const mask = opts.mask ?? true;
  const len = opts.declaredLength ?? body.length;
  const first = ((opts.fin ?? true) ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (len < 126) head = Buffer.from([first, (mask ? 0x80 : 0) | len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, body]);
  const key = randomBytes(4);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

export interface ServerFrames {
  texts: string[];
  /** The code of the server's close frame, if it sent one. */
  closeCode?: number;
}

/** Parses the server's (unmasked) frames that follow the 101 response in `data`. */
export function serverFrames(data: Buffer): ServerFrames {
  const out: ServerFrames = { texts: [] };
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) return out;
  let at = headEnd + 4;
  while (at + 2 <= data.length) {
    const opcode = data[at] & 0x0f;
    let len = data[at + 1] & 0x7f;
    let p = at + 2;
    if (len === 126) {
      len = data.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(data.readBigUInt64BE(p));
      p += 8;
    }
    if (p + len > data.length) break;
    const payload = data.subarray(p, p + len);
    if (opcode === 0x1) out.texts.push(payload.toString('utf8'));
    if (opcode === 0x8) out.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    at = p + len;
  }
  return out;
}
