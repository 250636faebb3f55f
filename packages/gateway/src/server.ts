// The gateway process: uWS app with the WebSocket endpoint, HTTP API, health routes and the session clock.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPresence } from '@switchboard/engine';
import { DisconnectCode, jsonCodec, protobufCodec, type Frame } from '@switchboard/protocol';
import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import { TokenVerifier } from './auth';
import type { GatewayContext } from './context';
import { consoleRoutes } from './console';
import { demoRoutes } from './demo';
import { ChannelCore } from './core';
import { HttpApi } from './http_api';
import { startInternalHttp } from './internal_http';
import { ControlPlane } from './control';
import { Documents } from './documents';
import { centrifugoJson, centrifugoProtobuf, Hub, type CentrifugoEncoding } from './hub';
import { GatewayMetrics } from './metrics';
import { NodeRates } from './node_rates';
import { defaultLimits, type GatewayOptions } from './options';
import { PresenceTracker } from './presence';
import { PusherEdge } from './pusher/edge';
import { startWebhooks } from './pusher/webhook_service';
import { SessionRegistry } from './registry';
import { ClientSession, type Transport } from './session';
import { NativeTopics, PING_TOPIC, PROTOBUF_PING_TOPIC, SetTopics, SocketLink, type Topics } from './topics';
import { loadUws, UwsFallbackError } from './uws';

export interface Gateway {
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  /** The internal HTTP port actually listened on, when one was asked for. */
  readonly internalPort?: number;
  isReady(): boolean;
  /** Drains: readiness fails, new connections are refused, clients get 3001, then the listener closes. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Frames between maxMessageSize and this are read and answered with 1009; larger ones are cut by uWS (1006). */
const FRAME_CEILING = 1024 * 1024;
/** WebSocket close code 1009: message too big. */
const MESSAGE_TOO_BIG = 1009;
/** uWS ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT (the enum is declared but not exported as a value). */
const LISTEN_EXCLUSIVE_PORT = 1;

export const VERSION: string = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;

/** What the upgrade decided for a socket: the protocol variant its session speaks. */
interface UpgradeData {
  protocol?: 'protobuf';
}

/** The Centrifugo Protobuf variant's WebSocket subprotocol. */
const PROTOBUF_SUBPROTOCOL = 'centrifuge-protobuf';
const JSON_SUBPROTOCOL = 'centrifuge-json';

/**
 * The variant a WebSocket upgrade asks for, as Centrifugo negotiates it: the `centrifuge-protobuf` subprotocol or
 * `cf_protocol=protobuf` in the query; anything else is JSON. `subprotocol` is what the response names.
 */
function negotiateProtocol(offered: string, cfProtocol: string): { data: UpgradeData; subprotocol: string } {
  // The header is a comma-separated list; split once, no pattern built from it.
  const names = offered.split(',').map((p) => p.trim());
  if (names.includes(PROTOBUF_SUBPROTOCOL)) return { data: { protocol: 'protobuf' }, subprotocol: PROTOBUF_SUBPROTOCOL };
  if (names.includes(JSON_SUBPROTOCOL)) return { data: {}, subprotocol: JSON_SUBPROTOCOL };
  return { data: cfProtocol === 'protobuf' ? { protocol: 'protobuf' } : {}, subprotocol: offered };
}

/** Each variant's server ping and the topic every socket of that variant joins for it. */
const PINGS: readonly { topic: string; frame: Frame }[] = [
  { topic: PING_TOPIC, frame: jsonCodec.ping },
  { topic: PROTOBUF_PING_TOPIC, frame: protobufCodec.ping },
];

/** One socket: its session and the way the session writes to it. */
class Connection extends SocketLink implements Transport {
  readonly session: ClientSession;

  constructor(
    ws: WebSocket<unknown>,
    topics: Topics,
    ctx: GatewayContext,
    private readonly encoding: CentrifugoEncoding,
  ) {
    super(ws, topics);
    this.session = new ClientSession(ctx, this, encoding);
  }

  send(frame: Frame): void {
    if (!this.closed) this.ws.send(frame, typeof frame !== 'string');
  }

  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }

  joinPings(): void {
    this.topics.join(this.ws, this.encoding === centrifugoProtobuf ? PROTOBUF_PING_TOPIC : PING_TOPIC);
  }
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { uws, native } = loadUws();
  if (!native && !options.allowUwsFallback) throw new UwsFallbackError();
  const limits = { ...defaultLimits, ...options.limits };
  const { broker, logger } = options;
  const app: TemplatedApp = uws.App();
  const topics: Topics = native ? new NativeTopics(app) : new SetTopics();
  // Keyed by the socket object, which uWS keeps the same for every callback of one connection.
  const connections = new Map<WebSocket<unknown>, Connection>();
  const registry = new SessionRegistry();
  const metrics: GatewayMetrics = new GatewayMetrics({
    connections: () => connections.size + pusher.connectionCount,
    subscriptions: () => registry.subscriptionCount(),
    channels: (): number => hub.channelCount,
  });
  // Built before the hub: its fan-out encoding is one of the hub's.
  const pusher = new PusherEdge(options.pusherApps ?? []);
  const hub: Hub = new Hub(broker, topics, logger, metrics, pusher.enabled ? [centrifugoJson, centrifugoProtobuf, pusher.encoding] : [centrifugoJson, centrifugoProtobuf]);
  const presence = createPresence(broker);
  const presenceTracker = new PresenceTracker(presence, broker, logger, options.presenceTtlMs ?? 60000);
  const startedAt = Date.now();
  const rates = new NodeRates(metrics);
  const control = new ControlPlane(
    broker,
    options.nodeId,
    registry,
    {
      // Each node adds its delivery and publication rates (Centrifugo's node `metrics`), for the console's chart.
      info: () => rates.with({
        uid: options.nodeId,
        name: options.node ?? '',
        version: VERSION,
        num_clients: registry.clientCount,
        num_users: registry.userCount,
        num_subs: registry.subscriptionCount(),
        num_channels: hub.channelCount,
        uptime: Math.floor((Date.now() - startedAt) / 1000),
      }),
      channels: () => Object.fromEntries(hub.channelCounts()),
    },
    logger,
  );
  const documents = new Documents(options.docs, options.channels, limits.maxChannelLength, logger, metrics);
  const core = new ChannelCore({ broker, presence, hub, presenceTracker, metrics, logger, channels: options.channels, limits });
  const ctx: GatewayContext = {
    broker,
    presence,
    core,
    hub,
    registry,
    documents,
    metrics,
    presenceTracker,
    verifier: new TokenVerifier(options.auth),
    channels: options.channels,
    limits,
    insecure: options.auth.insecure,
    logger,
    node: options.node ?? '',
    version: VERSION,
  };
  const webhooks = startWebhooks({
    apps: options.pusherApps ?? [],
    broker,
    hub,
    presenceTracker,
    core,
    node: options.nodeId,
    logger,
    metrics,
    ttlMs: options.presenceTtlMs ?? 60000,
  });
  const api = new HttpApi({ core, control, documents, logger, apiKey: options.apiKey });
  let draining = false;
  let lastPingAt = 0;

  app.ws('/connection/websocket', {
    // Frames up to this ceiling are read and, past maxMessageSize, answered with close code 1009 (as
    // Centrifugo does); uWS drops a connection that sends more without a close code.
    // uWS resets a connection past this ceiling without a close frame, and buffers up to it: 1 MiB keeps 1009
    // answerable for any frame a confused client plausibly sends, at a bounded cost per connection.
    maxPayloadLength: Math.max(limits.maxMessageSize * 4, FRAME_CEILING),
    // Liveness is ours (protocol pings, 3012); uWS only drops sockets that are silent far longer.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    // Slow clients are closed with 3008 by the clock below once past maxBackpressure; uWS drops frames only
    // past this ceiling, and such a client is closed at the next tick and recovers from its offsets.
    maxBackpressure: limits.maxBackpressure * 4,
    // The pure-JS fallback cannot run a custom upgrade handler; there `open` refuses while draining.
    upgrade: native
      ? (res, req, context) => {
          if (draining) {
            res.writeStatus('503 Service Unavailable').end('draining');
            return;
          }
          const refused = upgradeProblem(req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-version'));
          if (refused) {
            refused(res);
            return;
          }
          const { data, subprotocol } = negotiateProtocol(req.getHeader('sec-websocket-protocol'), req.getQuery('cf_protocol') ?? '');
          res.upgrade<UpgradeData>(data, req.getHeader('sec-websocket-key'), subprotocol, req.getHeader('sec-websocket-extensions'), context);
        }
      : undefined,
    open: (ws) => {
      if (draining) {
        ws.end(DisconnectCode.Shutdown, 'shutdown');
        return;
      }
      if (limits.maxConnections > 0 && connections.size >= limits.maxConnections) {
        ws.end(DisconnectCode.ConnectionLimit, 'connection limit');
        return;
      }
      // The pure-JS fallback runs no upgrade handler (and has no user data): its sockets speak JSON.
      const encoding = native && (ws.getUserData() as UpgradeData).protocol === 'protobuf' ? centrifugoProtobuf : centrifugoJson;
      const conn = new Connection(ws, topics, ctx, encoding);
      connections.set(ws, conn);
      metrics.connectionsAccepted.inc();
      conn.joinPings();
    },
    message: (ws, message, isBinary) => {
      const session = connections.get(ws)?.session;
      if (!session) return;
      metrics.bytesIn.inc(message.byteLength);
      if (message.byteLength > limits.maxMessageSize) {
        session.disconnect(MESSAGE_TOO_BIG, `message too big: frames are limited to ${limits.maxMessageSize} bytes`);
        return;
      }
      // The ArrayBuffer is valid only during this call: the session decodes it before returning.
      session.onMessage(new Uint8Array(message), isBinary);
    },
    close: (ws, code) => {
      metrics.connectionsClosed.labels(String(code)).inc();
      const conn = connections.get(ws);
      if (!conn) return;
      conn.closed = true;
      connections.delete(ws);
      topics.drop(ws);
      conn.session.onClose();
    },
  });

  // uWS hands a GET without a 24-character Sec-WebSocket-Key on to the next route: say what is wrong with it.
  app.get('/connection/websocket', (res, req) => {
    const refused = upgradeProblem(req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-version'), req.getHeader('upgrade'));
    (refused ?? badUpgrade('a WebSocket upgrade request is required'))(res);
  });
  app.get('/metrics', (res) => {
    res.onAborted(() => {
      (res as HttpResponse & { aborted?: boolean }).aborted = true;
    });
    void metrics.registry.metrics().then((text) => sendText(res, 200, metrics.registry.contentType, text));
  });
  app.get('/healthz', (res) => {
    res.writeHeader('Content-Type', 'text/plain').end('ok');
  });
  const readiness = () => {
    const ready = !draining && broker.isReady() && options.docs.isReady();
    return { ready, text: draining ? 'draining' : ready ? 'ready' : 'engine unavailable' };
  };
  app.get('/readyz', (res) => {
    const { ready, text } = readiness();
    if (!ready) res.writeStatus('503 Service Unavailable');
    res.writeHeader('Content-Type', 'text/plain').end(text);
  });
  app.post('/api/:method', (res, req) => {
    const method = req.getParameter(0) ?? '';
    const refused = api.precheck(req.getHeader('x-api-key'), req.getHeader('authorization'));
    if (refused) {
      sendJson(res, refused.status, refused.body);
      return;
    }
    readBody(res, api.maxBody, (body) => {
      if (body === undefined) {
        const r = api.tooLarge();
        sendJson(res, r.status, r.body);
        return;
      }
      // uWS drops the connection, unanswered, when a pipelined request arrives while this one is pending. Run
      // the request only after the rest of this read was parsed: a request of a cut pipeline is then never
      // carried out, so a client that retries does not write twice. Backends that pipeline use the internal port.
      setImmediate(() => {
        if (res.aborted) {
          metrics.apiPipelineRefused.inc();
          return;
        }
        void api.handle(method, body).then((r) => sendJson(res, r.status, r.body));
      });
    });
  });
  pusher.mount(app, {
    core,
    control,
    topics,
    metrics,
    limits,
    insecure: options.auth.insecure,
    logger,
    native,
    isDraining: () => draining,
    upgradeProblem: (key, version) => upgradeProblem(key, version),
    readBody,
    sendText,
  });
  if (options.demo) demoRoutes(app, { dev: options.dev ?? false, hmacSecret: options.auth.hmacSecret });
  if (options.admin) consoleRoutes(app, { admin: options.admin, api, logger, readBody, pipelineRefused: () => metrics.apiPipelineRefused.inc() });
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').writeHeader('Content-Type', 'text/plain').end('not found');
  });

  hub.startPositionChecks(options.positionCheckIntervalMs ?? 10000);

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    // Exclusive: without it uWS shares the port with another process already on it (SO_REUSEPORT), and a
    // second gateway started by mistake would silently take half the traffic.
    const listen = app.listen as unknown as (host: string, port: number, opts: number, cb: (t: us_listen_socket | false) => void) => void;
    listen.call(app, options.host, options.port, LISTEN_EXCLUSIVE_PORT, (token) => {
      if (token) resolve(token);
      else reject(new Error(`cannot listen on ${options.host}:${options.port} (address in use or not available)`));
    });
  });
  const port = uws.us_socket_local_port(listenSocket);
  let internal: Awaited<ReturnType<typeof startInternalHttp>> | undefined;
  if (options.internalPort !== undefined) {
    try {
      internal = await startInternalHttp({ host: options.host, port: options.internalPort, api, metrics, readiness, logger });
    } catch (err) {
      uws.us_listen_socket_close(listenSocket);
      throw new Error(`cannot listen on ${options.host}:${options.internalPort} (internal port): ${(err as Error).message}`);
    }
  }

  // One clock for every session: pings, pong and connect timeouts, token expiry, slow clients.
  const pingTimer = setInterval(() => {
    lastPingAt = Date.now();
    for (const ping of PINGS) topics.publish(ping.topic, ping.frame);
  }, limits.pingIntervalSeconds * 1000);
  const tick = setInterval(() => {
    const now = Date.now();
    const pongDeadline = lastPingAt + limits.pongTimeoutSeconds * 1000;
    for (const conn of connections.values()) {
      const session = conn.session;
      if (!session.connected) {
        if (now - session.openedAt > limits.connectTimeoutMs) session.disconnect(DisconnectCode.Stale, 'stale: no connect command');
        continue;
      }
      if (lastPingAt > 0 && now > pongDeadline && session.lastSeen < lastPingAt) {
        session.disconnect(DisconnectCode.NoPong, 'no pong');
        continue;
      }
      if (conn.bufferedAmount() > limits.maxBackpressure) {
        metrics.slowDisconnects.inc();
        session.disconnect(DisconnectCode.Slow, 'slow');
        continue;
      }
      session.checkExpiry(now);
    }
    pusher.tick(now, limits.maxBackpressure);
  }, 1000);

  return {
    port,
    internalPort: internal?.port,
    isReady: () => readiness().ready,
    async shutdown(graceMs = 25000) {
      if (draining) return;
      draining = true;
      clearInterval(pingTimer);
      clearInterval(tick);
      hub.stopPositionChecks();
      rates.stop();
      presenceTracker.stop();
      control.stop();
      pusher.shutdown();
      await closeInBatches([...connections.values()].map((c) => c.session), graceMs / 2);
      // After the last subscribers left: their channels' vacancies and members' leaves go out with the rest.
      await webhooks?.stop();
      uws.us_listen_socket_close(listenSocket);
      await internal?.close();
      // Also ends idle HTTP keep-alive connections, which would otherwise keep the process alive.
      (app as TemplatedApp & { close?: () => void }).close?.();
      logger.info({ port }, 'gateway stopped');
    },
  };
}

/** Closes sessions with 3001 spread over `spreadMs`, so their reconnects do not all land at once. */
async function closeInBatches(sessions: ClientSession[], spreadMs: number): Promise<void> {
  const intervalMs = 50;
  const batches = Math.max(1, Math.floor(spreadMs / intervalMs));
  const size = Math.max(100, Math.ceil(sessions.length / batches));
  for (let i = 0; i < sessions.length; i += size) {
    for (const s of sessions.slice(i, i + size)) s.disconnect(DisconnectCode.Shutdown, 'shutdown');
    if (i + size < sessions.length) await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const SUPPORTED_WS_VERSION = '13';

/** A response for an upgrade request RFC 6455 §4.2.1 says to refuse, or undefined when it may be upgraded. */
function upgradeProblem(key: string, version: string, upgrade = 'websocket'): ((res: HttpResponse) => void) | undefined {
  if (upgrade.toLowerCase() !== 'websocket') return badUpgrade('"Upgrade: websocket" is required');
  if (version !== SUPPORTED_WS_VERSION) {
    return (res) =>
      res.cork(() => {
        res.writeStatus('426 Upgrade Required').writeHeader('Sec-WebSocket-Version', SUPPORTED_WS_VERSION).writeHeader('Content-Type', 'text/plain');
        res.end(`unsupported Sec-WebSocket-Version ${JSON.stringify(version)}: this server speaks version ${SUPPORTED_WS_VERSION}`);
      });
  }
  // The key is the base64 of 16 bytes: 22 characters of the base64 alphabet and "==".
  if (key.length !== 24 || !key.endsWith('==') || !BASE64_16.test(key)) return badUpgrade('Sec-WebSocket-Key must be the base64 of 16 bytes');
  return undefined;
}

const BASE64_16 = /^[A-Za-z0-9+/]{22}==$/;

function badUpgrade(reason: string): (res: HttpResponse) => void {
  return (res) =>
    res.cork(() => {
      res.writeStatus('400 Bad Request').writeHeader('Content-Type', 'text/plain').end(`bad WebSocket upgrade: ${reason}`);
    });
}

function sendJson(res: HttpResponse & { aborted?: boolean }, status: number, body: string): void {
  sendText(res, status, 'application/json', body);
}

function sendText(res: HttpResponse & { aborted?: boolean }, status: number, contentType: string, body: string): void {
  if (res.aborted) return;
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('Content-Type', contentType).end(body);
  });
}

const STATUS_LINES: Readonly<Record<number, string>> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

function statusLine(status: number): string {
  return STATUS_LINES[status] ?? String(status);
}

/** Reads a request body up to `max` bytes; calls back with undefined when it is larger. */
function readBody(res: HttpResponse & { aborted?: boolean }, max: number, done: (body: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  res.onAborted(() => {
    res.aborted = true;
  });
  res.onData((chunk, isLast) => {
    if (finished) return;
    size += chunk.byteLength;
    if (size > max) {
      finished = true;
      done(undefined);
      return;
    }
    // The chunk is valid only during this call: decode it now when it is the whole body, else copy it.
    if (isLast && chunks.length === 0) {
      finished = true;
      done(Buffer.from(chunk).toString('utf8'));
      return;
    }
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) {
      finished = true;
      done(Buffer.concat(chunks).toString('utf8'));
    }
  });
}
