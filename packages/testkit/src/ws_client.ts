// A raw protocol client over `ws` for tests: send any frame, await replies by id, collect pushes and close codes.
import WebSocket from 'ws';
import { SignJWT } from 'jose';

export interface Reply {
  id: number;
  error?: { code: number; message: string; temporary?: boolean };
  [method: string]: unknown;
}

export interface Closed {
  code: number;
  reason: string;
}

export class RawClient {
  /** Every push received, in order (`{"push": …}` objects). */
  readonly pushes: Record<string, unknown>[] = [];
  /** Number of server pings (`{}`) received. */
  pings = 0;
  readonly closed: Promise<Closed>;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private readonly pushWaiters: { predicate: (p: Record<string, unknown>) => boolean; resolve: () => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', () => undefined);
    ws.on('message', (raw) => {
      for (const line of raw.toString().split('\n')) {
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (typeof msg.id === 'number' && msg.id > 0) {
          this.waiting.get(msg.id)?.(msg as Reply);
          this.waiting.delete(msg.id);
        } else if (msg.push) {
          this.pushes.push(msg.push as Record<string, unknown>);
          for (const w of [...this.pushWaiters]) {
            if (w.predicate(msg.push as Record<string, unknown>)) {
              this.pushWaiters.splice(this.pushWaiters.indexOf(w), 1);
              w.resolve();
            }
          }
        } else {
          this.pings++;
        }
      }
    });
  }

  static open(url: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('error', reject);
    });
  }

  /** Sends a raw frame (text unless a Buffer is given with binary). */
  sendRaw(frame: string | Buffer, binary = false): void {
    this.ws.send(frame, { binary });
  }

  /** Sends `{"id":N, "<method>": params}` and resolves with the reply. */
  command(method: string, params: unknown = {}, timeoutMs = 5000): Promise<Reply> {
    const id = this.nextId++;
    const reply = this.awaitReply(id, method, timeoutMs);
    this.ws.send(JSON.stringify({ id, [method]: params }));
    return reply;
  }

  /** Sends `{"id":N,"<method>":<paramsJson>}` with the params as given text (for input JSON.stringify cannot make). */
  commandText(method: string, paramsJson: string, timeoutMs = 5000): Promise<Reply> {
    const id = this.nextId++;
    const reply = this.awaitReply(id, method, timeoutMs);
    this.ws.send(`{"id":${id},${JSON.stringify(method)}:${paramsJson}}`);
    return reply;
  }

  private awaitReply(id: number, method: string, timeoutMs: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${method} #${id} in ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  /** Resolves when a push matching the predicate arrives (including one already received). */
  waitPush(predicate: (p: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<void> {
    if (this.pushes.some(predicate)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`push not received in ${timeoutMs} ms`)), timeoutMs);
      this.pushWaiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Publications received on a channel, in order. */
  publications(channel: string): { offset?: number; data: unknown }[] {
    return this.pushes.filter((p) => p.channel === channel && p.pub).map((p) => p.pub as { offset?: number; data: unknown });
  }

  close(): void {
    this.ws.close();
  }
}

/** Signs an HS256 token with the given claims; `expiresIn` in seconds (negative for an expired token). */
export async function hmacToken(secret: string, claims: Record<string, unknown>, expiresIn?: number): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (expiresIn !== undefined) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}
