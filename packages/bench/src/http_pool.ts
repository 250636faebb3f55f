// A minimal HTTP/1.1 client for the publishers and document writers: keep-alive connections, up to `depth`
// requests in flight on each (HTTP/1.1 pipelining: written back to back, answered in order), a FIFO queue when
// every connection is full. Responses must carry Content-Length (every server here does).
//
// A response with `Connection: close` (soketi answers every API request so) ends its connection: the requests
// pipelined behind it fail (they are not retried: a publish must not be counted, or carried out, twice) and the
// next request on that connection opens a new one. A connection that closes fails every request in flight on it.
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
  /** Requests written and not answered yet, oldest first: a ring of `depth` slots. */
  private readonly ring: (Request | undefined)[];
  private head = 0;
  private count = 0;
  private buf: Buffer | undefined;
  private headerLen = -1;
  private bodyLen = 0;
  private status = 0;
  /** The response being read ends the connection. */
  private closing = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly depth: number,
    /** A slot of this connection is free again (called before the request's callback). */
    private readonly idle: (c: Connection) => void,
  ) {
    this.ring = new Array<Request | undefined>(depth).fill(undefined);
  }

  send(req: Request): void {
    if (this.count >= this.depth) throw new Error(`bug: a request sent on a connection with ${this.count} of ${this.depth} in flight`);
    this.ring[(this.head + this.count) % this.depth] = req;
    this.count++;
    const socket = this.socket ?? this.connect();
    socket.cork();
    socket.write(req.head);
    socket.write(req.body);
    socket.uncork();
  }

  /** Closes the connection; what is in flight on it fails. */
  destroy(err: Error): void {
    this.fail(this.detach(), err);
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.buf = undefined;
    this.headerLen = -1;
    let cause = '';
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.receive(chunk);
    });
    socket.on('error', (err: Error) => (cause = `: ${err.message}`)); // 'close' follows and fails the requests
    socket.on('close', () => {
      if (this.socket !== socket) return; // dropped on purpose: its requests were already settled
      const n = this.count;
      this.fail(this.detach(), new Error(`connection to ${this.host}:${this.port} closed with ${n} request(s) in flight${cause}`));
    });
    return socket;
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
          this.destroy(new Error(`response without Content-Length from ${this.host}:${this.port}: ${head.split('\r\n')[0]}`));
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
      const req = this.shift();
      if (!req) {
        this.destroy(new Error(`a response nobody asked for from ${this.host}:${this.port}`));
        return;
      }
      if (this.closing) {
        // The socket goes first, so that nothing sent from the callbacks below lands on it.
        const rest = this.detach();
        this.idle(this);
        req.done(this.status, body);
        this.fail(rest, new Error(`${this.host}:${this.port} answered an earlier request with Connection: close; not retried`));
        return;
      }
      this.idle(this);
      req.done(this.status, body);
    }
  }

  private shift(): Request | undefined {
    if (this.count === 0) return undefined;
    const req = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.depth;
    this.count--;
    return req;
  }

  /**
   * Forgets the socket (its 'close' then settles nothing) and destroys it; returns the requests that were in flight
   * on it, oldest first, and leaves the connection empty for the next request to open a new socket.
   */
  private detach(): Request[] | undefined {
    const socket = this.socket;
    this.socket = undefined;
    this.buf = undefined;
    this.headerLen = -1;
    this.closing = false;
    socket?.destroy();
    if (this.count === 0) return undefined;
    const rest: Request[] = [];
    for (let req = this.shift(); req; req = this.shift()) rest.push(req);
    return rest;
  }

  private fail(reqs: Request[] | undefined, err: Error): void {
    if (!reqs) return;
    for (const req of reqs) {
      this.idle(this);
      req.done(0, undefined, err);
    }
  }
}

export class HttpPool {
  private readonly connections: Connection[] = [];
  /** One entry per free request slot: a connection appears here as often as it can take another request. */
  private readonly free: Connection[] = [];
  private readonly queue: Request[] = [];
  private queueHead = 0;
  private readonly prefix: string;
  private readonly slots: number;
  private closed = false;

  /**
   * `size` keep-alive connections to host:port, each with up to `depth` requests in flight (1: no pipelining).
   * `headers` go on every request.
   */
  constructor(host: string, port: number, size: number, headers: Record<string, string> = {}, depth = 1) {
    if (!(Number.isInteger(depth) && depth >= 1)) throw new Error(`pipelining depth must be an integer ≥ 1, got ${depth}`);
    for (let i = 0; i < size; i++) this.connections.push(new Connection(host, port, depth, (conn) => this.release(conn)));
    // Interleaved, so that the first requests spread over every connection before any is pipelined on.
    for (let d = 0; d < depth; d++) for (let i = size - 1; i >= 0; i--) this.free.push(this.connections[i]);
    this.slots = size * depth;
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    this.prefix = `HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n${extra}Content-Length: `;
  }

  /** Requests waiting for a free slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Requests written and not answered yet. */
  get inFlight(): number {
    return this.slots - this.free.length;
  }

  post(path: string, body: string, done: HttpCallback): void {
    if (this.closed) {
      done(0, undefined, new Error('HTTP pool closed'));
      return;
    }
    const bytes = Buffer.from(body, 'utf8');
    const req: Request = { head: Buffer.from(`POST ${path} ${this.prefix}${bytes.length}\r\n\r\n`, 'latin1'), body: bytes, done };
    const conn = this.free.pop();
    if (conn) conn.send(req);
    else this.queue.push(req);
  }

  /** Closes every connection; requests in flight or queued fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('HTTP pool closed');
    const queued = this.queue.splice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const c of this.connections) c.destroy(err);
    for (const req of queued) req.done(0, undefined, err);
  }

  private release(conn: Connection): void {
    if (!this.closed && this.queueHead < this.queue.length) {
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
