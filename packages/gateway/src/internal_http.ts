// The internal HTTP port (node:http): server API, metrics and health with HTTP/1.1 pipelining, for backends and probes.
import http from 'node:http';
import type { Logger } from 'pino';
import type { HttpApi } from './http_api';
import type { GatewayMetrics } from './metrics';

export interface InternalHttpOptions {
  host: string;
  port: number;
  api: HttpApi;
  metrics: GatewayMetrics;
  readiness: () => { ready: boolean; text: string };
  logger: Logger;
}

/** Requests one connection may have in flight before the server stops reading from it (back-pressure). */
const MAX_IN_FLIGHT_PER_CONNECTION = 64;

/**
 * uWS closes a keep-alive connection when a request arrives before the previous asynchronous response has
 * ended (it supports pipelining only for synchronous handlers). node:http parses pipelined requests as they
 * come and writes their responses in request order, so backends that pipeline use this port.
 */
export async function startInternalHttp(options: InternalHttpOptions): Promise<{ port: number; close(): Promise<void> }> {
  const { api, metrics, readiness, logger } = options;
  const inFlight = new WeakMap<object, number>();
  const server = http.createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 30000, headersTimeout: 10000, keepAliveTimeout: 5000 },
    (req, res) => {
      const socket = req.socket;
      const n = (inFlight.get(socket) ?? 0) + 1;
      inFlight.set(socket, n);
      if (n >= MAX_IN_FLIGHT_PER_CONNECTION) socket.pause();
      res.on('finish', () => {
        const left = (inFlight.get(socket) ?? 1) - 1;
        inFlight.set(socket, left);
        if (left < MAX_IN_FLIGHT_PER_CONNECTION) socket.resume();
      });
      void route(req, res).catch((err: unknown) => {
        logger.error({ err }, 'internal HTTP request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
      });
    },
  );

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    if (req.method === 'POST' && path.startsWith('/api/')) {
      const refused = api.precheck(header(req, 'x-api-key'), header(req, 'authorization'));
      if (refused) {
        // The body is not read: say so, so that the client does not reuse a connection with bytes left on it.
        res.setHeader('Connection', 'close');
        send(res, refused.status, 'application/json', refused.body);
        req.resume();
        return;
      }
      const body = await readBody(req, api.maxBody);
      const r = body === undefined ? api.tooLarge() : await api.handle(path.slice(5), body);
      send(res, r.status, 'application/json', r.body);
      return;
    }
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 404, 'text/plain', 'not found');
    if (path === '/healthz') return send(res, 200, 'text/plain', 'ok');
    if (path === '/readyz') {
      const r = readiness();
      return send(res, r.ready ? 200 : 503, 'text/plain', r.text);
    }
    if (path === '/metrics') return send(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
    send(res, 404, 'text/plain', 'not found');
  }

  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Malformed requests, oversized headers, timeouts: one answer, then the connection ends.
    if (socket.writable) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function header(req: http.IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The body as text, or undefined when it is larger than `max` (the rest is drained, not kept). */
function readBody(req: http.IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > max ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
