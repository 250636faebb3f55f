// The Socket.IO peer: Socket.IO 4.8 with @socket.io/redis-adapter on ioredis, websocket transport only, and
// the same publish endpoint as the others (`POST /api/publish {"channel","data"}`) emitting to the room.
//
//   node dist/relay_socketio.js --port <port> --redis redis://127.0.0.1:<port>
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server } from 'socket.io';
import { flag } from './args';

const port = Number(flag('--port'));
const redisUrl = flag('--redis');
const pubClient = new Redis(redisUrl);
const subClient = pubClient.duplicate();

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    send(res, 200, '{"ok":true}');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/api/publish') {
    send(res, 404, '{"error":{"code":104,"message":"not found"}}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let parsed: { channel?: unknown; data?: unknown };
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
    } catch {
      send(res, 400, '{"error":{"code":107,"message":"bad request"}}');
      return;
    }
    if (typeof parsed.channel !== 'string') {
      send(res, 200, '{"error":{"code":107,"message":"channel required"}}');
      return;
    }
    io.to(parsed.channel).emit('p', parsed.data);
    send(res, 200, '{"result":{}}');
  });
});
// The load generator keeps its publishing connections open for the whole run.
server.keepAliveTimeout = 600_000;
server.headersTimeout = 610_000;

const io = new Server(server, { transports: ['websocket'], serveClient: false, pingInterval: 25000, pingTimeout: 20000 });
io.adapter(createAdapter(pubClient, subClient));
io.on('connection', (socket) => {
  socket.on('sub', (channel: unknown, ack?: () => void) => {
    if (typeof channel === 'string') void socket.join(channel);
    if (typeof ack === 'function') ack();
  });
});

// Listening only once both Redis connections are up: a publication before that would be lost.
const ready = (r: Redis): Promise<void> => (r.status === 'ready' ? Promise.resolve() : new Promise((resolve) => r.once('ready', () => resolve())));
void Promise.all([ready(pubClient), ready(subClient)]).then(() => server.listen(port, '127.0.0.1'));
server.on('error', (err) => {
  process.stderr.write(`socket.io peer: ${err.message}\n`);
  process.exit(2);
});
process.on('SIGTERM', () => process.exit(0));
