// HttpPool against node:http (which answers pipelined requests in order): every request answered once, with its
// own response, at depth 1 and 32; Connection: close and closed connections fail what is in flight on them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpPool } from './http_pool';

interface Served {
  port: number;
  /** Request ids in the order the server saw them. */
  seen: number[];
  /** Most requests one connection had in the server's hands at once. */
  maxPerSocket: number;
  sockets: number;
  close(): Promise<void>;
}

/**
 * Answers each POST with its own body, a turn of the event loop later (so pipelined requests pile up); `closeAfter`
 * answers the n-th request of every connection with Connection: close, `destroyAfter` cuts the n-th without answer.
 */
async function serve(opts: { closeAfter?: number; destroyAfter?: number } = {}): Promise<Served> {
  const served: Served = { port: 0, seen: [], maxPerSocket: 0, sockets: 0, close: async () => undefined };
  const perSocket = new Map<object, { inFlight: number; requests: number }>();
  const server = http.createServer((req, res) => {
    let s = perSocket.get(req.socket);
    if (!s) {
      s = { inFlight: 0, requests: 0 };
      perSocket.set(req.socket, s);
      served.sockets++;
    }
    const state = s;
    state.inFlight++;
    state.requests++;
    const nth = state.requests;
    served.maxPerSocket = Math.max(served.maxPerSocket, state.inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      served.seen.push((JSON.parse(body.toString('utf8')) as { i: number }).i);
      setImmediate(() => {
        state.inFlight--;
        if (opts.destroyAfter !== undefined && nth === opts.destroyAfter) {
          req.socket.destroy();
          return;
        }
        if (opts.closeAfter !== undefined && nth === opts.closeAfter) res.setHeader('Connection', 'close');
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
        res.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  served.port = (server.address() as AddressInfo).port;
  served.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return served;
}

interface Outcome {
  ok: number[];
  failed: { i: number; error: string }[];
  /** Ids whose callback ran more than once, or whose response carried another request's body. */
  wrong: string[];
}

/** Posts ids 0..n-1 at once and waits for every callback. */
function postAll(pool: HttpPool, n: number): Promise<Outcome> {
  const out: Outcome = { ok: [], failed: [], wrong: [] };
  const calls = new Array<number>(n).fill(0);
  let settled = 0;
  return new Promise((resolve) => {
    for (let i = 0; i < n; i++) {
      pool.post('/api/publish', `{"i":${i}}`, (status, body, err) => {
        if (++calls[i] > 1) out.wrong.push(`${i} answered twice`);
        else if (err) out.failed.push({ i, error: err.message });
        else if (status !== 200 || body?.toString('utf8') !== `{"i":${i}}`) out.wrong.push(`${i} got HTTP ${status} ${body?.toString('utf8')}`);
        else out.ok.push(i);
        if (++settled === n) setImmediate(() => resolve(out)); // a turn later: a second callback would show
      });
    }
  });
}

describe('HttpPool', () => {
  let server: Served | undefined;
  let pool: HttpPool | undefined;

  afterEach(async () => {
    pool?.close();
    pool = undefined;
    await server?.close();
    server = undefined;
  });

  it.each([
    { depth: 1, connections: 4 },
    { depth: 32, connections: 2 },
  ])('answers every request with its own response, in order, at depth $depth', async ({ depth, connections }) => {
    server = await serve();
    pool = new HttpPool('127.0.0.1', server.port, connections, {}, depth);
    const n = 2000;
    const out = await postAll(pool, n);
    expect(out.wrong).toEqual([]);
    expect(out.failed).toEqual([]);
    expect(out.ok).toHaveLength(n);
    expect([...server.seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(server.sockets).toBe(connections);
    // Depth 1 never has two requests on a connection; depth 32 did pipeline.
    if (depth === 1) expect(server.maxPerSocket).toBe(1);
    else expect(server.maxPerSocket).toBeGreaterThan(1);
    expect(server.maxPerSocket).toBeLessThanOrEqual(depth);
    expect(pool.inFlight).toBe(0);
    expect(pool.queued).toBe(0);
  });

  it('fails the requests pipelined behind a Connection: close response, and carries on on a new connection', async () => {
    server = await serve({ closeAfter: 3 });
    pool = new HttpPool('127.0.0.1', server.port, 1, {}, 8);
    const first = await postAll(pool, 8);
    expect(first.wrong).toEqual([]);
    // The first three were answered (the third with Connection: close); the five behind it fail, not retried.
    expect(first.ok).toEqual([0, 1, 2]);
    expect(first.failed.map((f) => f.i)).toEqual([3, 4, 5, 6, 7]);
    for (const f of first.failed) expect(f.error).toMatch(/Connection: close; not retried/);
    expect(server.seen.filter((i) => i >= 3).length).toBeLessThanOrEqual(5);
    // The pool opens a new connection for what comes next.
    const second = await postAll(pool, 2);
    expect(second.wrong).toEqual([]);
    expect(second.ok).toEqual([0, 1]);
    expect(server.sockets).toBe(2);
  });

  it('answers every request once when many connections end with Connection: close at depth 16', async () => {
    server = await serve({ closeAfter: 7 });
    pool = new HttpPool('127.0.0.1', server.port, 4, {}, 16);
    const n = 3000;
    const out = await postAll(pool, n);
    expect(out.wrong).toEqual([]);
    expect(out.ok.length + out.failed.length).toBe(n);
    expect(out.ok.length).toBeGreaterThan(0);
    expect(out.failed.length).toBeGreaterThan(0);
    // Nothing answered OK that the server did not handle, and the server handled nothing twice.
    const seen = new Set(server.seen);
    expect(seen.size).toBe(server.seen.length);
    for (const i of out.ok) expect(seen.has(i)).toBe(true);
    expect(pool.inFlight).toBe(0);
  });

  it('fails every request in flight on a connection that closes', async () => {
    server = await serve({ destroyAfter: 2 });
    pool = new HttpPool('127.0.0.1', server.port, 1, {}, 4);
    const out = await postAll(pool, 4);
    expect(out.wrong).toEqual([]);
    expect(out.ok).toEqual([0]);
    expect(out.failed.map((f) => f.i)).toEqual([1, 2, 3]);
    for (const f of out.failed) expect(f.error).toMatch(/closed with \d+ request\(s\) in flight/);
  });

  it('fails what is queued or in flight when closed', async () => {
    server = await serve();
    pool = new HttpPool('127.0.0.1', server.port, 1, {}, 2);
    const pending = postAll(pool, 5);
    expect(pool.inFlight).toBe(2);
    expect(pool.queued).toBe(3);
    pool.close();
    const out = await pending;
    expect(out.wrong).toEqual([]);
    expect(out.ok).toEqual([]);
    expect(out.failed).toHaveLength(5);
  });
});
