// The same-hardware ceiling: a minimal uWS + Redis relay speaking just enough of the Centrifugo protocol
// (connect, subscribe, publication pushes) for the load generator. No auth, offsets, history or recovery.
//
//   node dist/relay_uws.js --port <port> --redis redis://127.0.0.1:<port>
import Redis from 'ioredis';
import type { HttpResponse, WebSocket } from 'uWebSockets.js';
// eslint-disable-next-line @typescript-eslint/no-require-imports
import uws = require('uWebSockets.js');
import { flag } from './args';

interface Conn {
  channels: string[];
  closed: boolean;
}

const port = Number(flag('--port'));
const redisUrl = flag('--redis');
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
const app = uws.App();
/** Local subscribers per channel, and the Redis SUBSCRIBE each channel waits for. */
const local = new Map<string, { count: number; ready: Promise<unknown> }>();
let clientIds = 0;

// Hot path: one frame per publication, published once to the uWS topic (uWS copies it to each socket).
sub.on('message', (channel: string, message: string) => {
  app.publish(channel, `{"push":{"channel":${JSON.stringify(channel)},"pub":{"data":${message}}}}`, false);
});

function joinChannel(channel: string): Promise<unknown> {
  let entry = local.get(channel);
  if (!entry) {
    entry = { count: 0, ready: sub.subscribe(channel) };
    local.set(channel, entry);
  }
  entry.count++;
  return entry.ready;
}

function leaveChannel(channel: string): void {
  const entry = local.get(channel);
  if (!entry || --entry.count > 0) return;
  local.delete(channel);
  void sub.unsubscribe(channel);
}

function command(ws: WebSocket<Conn>, line: string): void {
  const cmd = JSON.parse(line) as { id: number; connect?: unknown; subscribe?: { channel: string } };
  if (cmd.connect !== undefined) {
    ws.send(`{"id":${cmd.id},"connect":{"client":"r${++clientIds}","version":"relay","ping":0,"pong":false}}`, false);
  } else if (cmd.subscribe) {
    const channel = cmd.subscribe.channel;
    const conn = ws.getUserData();
    conn.channels.push(channel);
    ws.subscribe(channel);
    void joinChannel(channel).then(() => {
      if (!conn.closed) ws.send(`{"id":${cmd.id},"subscribe":{}}`, false);
    });
  } else {
    ws.send(`{"id":${cmd.id},"error":{"code":104,"message":"method not found"}}`, false);
  }
}

app.ws<Conn>('/connection/websocket', {
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  upgrade: (res, req, context) => {
    res.upgrade<Conn>(
      { channels: [], closed: false },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  message: (ws, message) => {
    for (const line of Buffer.from(message).toString('utf8').split('\n')) {
      if (line === '' || line === '{}') continue;
      try {
        command(ws, line);
      } catch {
        ws.end(3501, 'bad request');
        return;
      }
    }
  },
  close: (ws) => {
    const conn = ws.getUserData();
    conn.closed = true;
    for (const channel of conn.channels) leaveChannel(channel);
  },
});

function readBody(res: HttpResponse, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (isLast) done(Buffer.concat(chunks));
  });
}

app.post('/api/publish', (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  readBody(res, (body) => {
    const answer = (status: string, text: string): void => {
      if (aborted) return;
      res.cork(() => res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(text));
    };
    let parsed: { channel?: unknown; data?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      answer('400 Bad Request', '{"error":{"code":107,"message":"bad request"}}');
      return;
    }
    if (typeof parsed.channel !== 'string') {
      answer('200 OK', '{"error":{"code":107,"message":"channel required"}}');
      return;
    }
    pub.publish(parsed.channel, JSON.stringify(parsed.data)).then(
      () => answer('200 OK', '{"result":{}}'),
      (err: Error) => answer('200 OK', JSON.stringify({ error: { code: 100, message: err.message } })),
    );
  });
});
app.get('/healthz', (res) => {
  res.end('ok');
});

// Listening only once both Redis connections are up: a publication before that would be lost.
const ready = (r: Redis): Promise<void> => (r.status === 'ready' ? Promise.resolve() : new Promise((resolve) => r.once('ready', () => resolve())));
void Promise.all([ready(pub), ready(sub)]).then(() =>
  app.listen('127.0.0.1', port, (token) => {
    if (!token) {
      process.stderr.write(`relay: cannot listen on ${port}\n`);
      process.exit(2);
    }
  }),
);
process.on('SIGTERM', () => process.exit(0));
