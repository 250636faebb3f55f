// A minimal HTTP/1.1 client for the publishers and document writers: keep-alive connections, one request in
// flight on each, a FIFO queue when all are busy. Responses must carry Content-Length (every server here does).
// A response with `Connection: close` (soketi answers every API request so) ends its connection; the next request
// on that slot opens a new one.
//
// Node's http client costs tens of microseconds per request; at tens of thousands of publishes a second on the
// load generator's single core that would be what limits the run, so the requests are written by hand.
import net from 'node:net';

export type HttpCallback = (status: number, body: Buffer | undefined, error?: Error) => void;

interface Request {
  head: Buffer;
  body: Buffer;
  done: HttpCallback;
}

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CONTENT_LENGTH = /\r\ncontent-length:\s*(\d+)/i;
const CONNECTION_CLOSE = /\r\nconnection:\s*close/i;

class Connection {
  private socket: net.Socket | undefined;
  private current: Request | undefined;
  private buf: Buffer | undefined;
  private headerLen = -1;
  private bodyLen = 0;
  private status = 0;
  /** The response being read ends the connection. */
  private closing = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly idle: (c: Connection) => void,
  ) {}

  get busy(): boolean {
    return this.current !== undefined;
  }

  send(req: Request): void {
    this.current = req;
    if (!this.socket || this.socket.destroyed) this.connect();
    this.socket?.cork();
    this.socket?.write(req.head);
    this.socket?.write(req.body);
    this.socket?.uncork();
  }

  destroy(): void {
    this.socket?.destroy();
  }

  private connect(): void {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.buf = undefined;
    this.headerLen = -1;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined); // 'close' follows and fails the request
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      const req = this.current;
      this.current = undefined;
      if (req) {
        req.done(0, undefined, new Error(`connection to ${this.host}:${this.port} closed before the response`));
        this.idle(this);
      }
    });
  }

  private receive(chunk: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const buf: Buffer | undefined = this.buf;
      if (!buf) return;
      if (this.headerLen < 0) {
        const end = buf.indexOf(HEADER_END);
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        this.status = Number(head.slice(9, 12));
        const length = CONTENT_LENGTH.exec(head);
        if (!length) {
          this.fail(new Error(`response without Content-Length from ${this.host}:${this.port}: ${head.split('\r\n')[0]}`));
          return;
        }
        this.headerLen = end + 4;
        this.bodyLen = Number(length[1]);
        this.closing = CONNECTION_CLOSE.test(head);
      }
      const total = this.headerLen + this.bodyLen;
      if (buf.length < total) return;
      const body = buf.subarray(this.headerLen, total);
      this.buf = buf.length > total ? buf.subarray(total) : undefined;
      this.headerLen = -1;
      const req = this.current;
      this.current = undefined;
      if (!req) {
        this.fail(new Error('a response nobody asked for'));
        return;
      }
      if (this.closing) this.drop();
      req.done(this.status, body);
      this.idle(this);
    }
  }

  /** Forgets the socket (its 'close' then fails nothing) and destroys it. */
  private drop(): void {
    this.buf = undefined;
    this.headerLen = -1;
    this.closing = false;
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  private fail(err: Error): void {
    const req = this.current;
    this.current = undefined;
    this.drop();
    if (req) {
      req.done(0, undefined, err);
      this.idle(this);
    }
  }
}

export class HttpPool {
  private readonly connections: Connection[] = [];
  private readonly free: Connection[] = [];
  private readonly queue: Request[] = [];
  private queueHead = 0;
  private readonly prefix: string;

  constructor(
    host: string,
    port: number,
    size: number,
    headers: Record<string, string> = {},
  ) {
    for (let i = 0; i < size; i++) {
      const c = new Connection(host, port, (conn) => this.release(conn));
      this.connections.push(c);
      this.free.push(c);
    }
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    this.prefix = `HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n${extra}Content-Length: `;
  }

  /** Requests waiting for a free connection. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  get inFlight(): number {
    return this.connections.length - this.free.length;
  }

  post(path: string, body: string, done: HttpCallback): void {
    const bytes = Buffer.from(body, 'utf8');
    const req: Request = { head: Buffer.from(`POST ${path} ${this.prefix}${bytes.length}\r\n\r\n`, 'latin1'), body: bytes, done };
    const conn = this.free.pop();
    if (conn) conn.send(req);
    else this.queue.push(req);
  }

  close(): void {
    for (const c of this.connections) c.destroy();
  }

  private release(conn: Connection): void {
    if (this.queueHead < this.queue.length) {
      const req = this.queue[this.queueHead++];
      if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      conn.send(req);
      return;
    }
    this.free.push(conn);
  }
}
