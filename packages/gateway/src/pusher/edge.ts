// The Pusher edge on the gateway's uWS app: the `/app/{key}` WebSocket endpoint and the `/apps/{id}/...` HTTP API.
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { ControlPlane } from '../control';
import type { ChannelCore } from '../core';
import type { FanoutEncoding } from '../hub';
import type { GatewayMetrics } from '../metrics';
import type { GatewayLimits } from '../options';
import { SocketLink, type Topics } from '../topics';
import { pusherAppRegistry, type PusherApp, type PusherAppRegistry } from './apps';
import { PusherErrorCode, pusherErrorMessages } from './codes';
import type { PusherEdgeApp } from './edge_apps';
import { pusherEncoding } from './encoding';
import { checkConnectionQuery, clientFrameRules, DEFAULT_ACTIVITY_TIMEOUT_SECONDS, encodeError } from './frames';
import { TERMINATE } from './edge_constants';
import { PusherHttpApi } from './http_api';
import { PusherSession, type PusherTransport } from './session';

/** Seconds a pinged client has to answer before it is closed with 4201 (Pusher's documented 30 s). */
const PONG_TIMEOUT_SECONDS = 30;
/** Frames above the largest an app allows are still read (and refused with a pusher:error) up to this size. */
const FRAME_CEILING = 1024 * 1024;

type Response = HttpResponse & { aborted?: boolean };

/** What the gateway lends the edge: the shared core and plumbing, and its HTTP helpers. */
export interface PusherEdgeDeps {
  core: ChannelCore;
  control: ControlPlane;
  topics: Topics;
  metrics: GatewayMetrics;
  limits: GatewayLimits;
  insecure: boolean;
  logger: Logger;
  /** uWS can run a custom upgrade handler (the native build); without one the key in the URL is unreadable. */
  native: boolean;
  isDraining(): boolean;
  /** The gateway's refusal of a malformed WebSocket upgrade, or undefined when it may be upgraded. */
  upgradeProblem(key: string, version: string): ((res: HttpResponse) => void) | undefined;
  readBody(res: Response, max: number, done: (body: string | undefined) => void): void;
  sendText(res: Response, status: number, contentType: string, body: string): void;
}

/** What the upgrade handler learned from the request, handed to `open`. */
interface UpgradeData {
  key: string;
  query: string;
}

class PusherConnection extends SocketLink implements PusherTransport {
  session: PusherSession | undefined;

  send(frame: string): void {
    if (!this.closed) this.ws.send(frame, false);
  }
}

export class PusherEdge {
  private readonly registry: PusherAppRegistry;
  private readonly edgeApps: Map<string, PusherEdgeApp>;
  /** Local sessions by socket id: publications name the socket to leave out by it. */
  private readonly sessions = new Map<string, PusherSession>();
  private readonly connections = new Map<WebSocket<unknown>, PusherConnection>();
  /** Open connections per app id, for the app's max_connections (counted on this gateway). */
  private readonly perApp = new Map<string, number>();
  /** Signed-in sessions: app id → user id → sessions, for terminate_connections. */
  private readonly users = new Map<string, Map<string, Set<PusherSession>>>();
  readonly encoding: FanoutEncoding = pusherEncoding((socketId) => this.sessions.get(socketId)?.socket);

  constructor(apps: readonly PusherEdgeApp[]) {
    this.registry = pusherAppRegistry(apps.map((a) => a.app));
    this.edgeApps = new Map(apps.map((a) => [a.app.id, a]));
  }

  /** No app configured: no route is mounted and `/app/...`, `/apps/...` answer 404. */
  get enabled(): boolean {
    return this.registry.size > 0;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  mount(app: TemplatedApp, deps: PusherEdgeDeps): void {
    if (!this.enabled) return;
    const api = new PusherHttpApi({ core: deps.core, control: deps.control, logger: deps.logger }, this.registry, this.edgeApps);
    // terminate_connections reaches every gateway; each closes the app's user's connections it holds.
    deps.control.onEdgeMessage(TERMINATE, (data) => this.terminateLocal(data));
    const largestFrame = Math.max(...this.registry.all().map((a) => clientFrameRules(a).maxFrameBytes));
    const sessionCtx = {
      core: deps.core,
      encoding: this.encoding,
      limits: deps.limits,
      insecure: deps.insecure,
      logger: deps.logger,
      activityTimeoutSeconds: DEFAULT_ACTIVITY_TIMEOUT_SECONDS,
      onSignedIn: (session: PusherSession) => this.signedIn(session),
    };

    if (!deps.native) {
      deps.logger.warn('the Pusher edge needs the native uWebSockets.js build (it reads the app key while upgrading); /app/{key} is off');
    } else {
      app.ws('/app/:key', {
        maxPayloadLength: Math.max(largestFrame * 2, FRAME_CEILING),
        idleTimeout: 0,
        sendPingsAutomatically: false,
        maxBackpressure: deps.limits.maxBackpressure * 4,
        upgrade: (res, req, context) => {
          if (deps.isDraining()) {
            res.writeStatus('503 Service Unavailable').end('draining');
            return;
          }
          const refused = deps.upgradeProblem(req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-version'));
          if (refused) {
            refused(res);
            return;
          }
          const data: UpgradeData = { key: req.getParameter(0) ?? '', query: req.getQuery() ?? '' };
          res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
        },
        open: (ws) => {
          const conn = new PusherConnection(ws, deps.topics);
          this.connections.set(ws, conn);
          deps.metrics.connectionsAccepted.inc();
          const { key, query } = ws.getUserData() as UpgradeData;
          const found = this.registry.byKey(key);
          const refusal = this.refusal(found, query, deps);
          if (refusal) {
            conn.send(encodeError(refusal.code, refusal.message));
            conn.close(refusal.code, refusal.message.slice(0, 120));
            return;
          }
          const session = new PusherSession(sessionCtx, this.edgeApps.get((found as PusherApp).id) as PusherEdgeApp, conn);
          conn.session = session;
          this.sessions.set(session.socketId, session);
          this.perApp.set(session.app.app.id, (this.perApp.get(session.app.app.id) ?? 0) + 1);
          session.start();
        },
        message: (ws, message, isBinary) => {
          const session = this.connections.get(ws)?.session;
          if (!session) return;
          deps.metrics.bytesIn.inc(message.byteLength);
          if (isBinary) {
            session.send(encodeError(PusherErrorCode.GenericReconnect, 'Invalid message format: frames must be text'));
            return;
          }
          // The ArrayBuffer is valid only during this call: decode it now.
          session.onFrame(Buffer.from(message).toString('utf8'));
        },
        close: (ws, code) => {
          deps.metrics.connectionsClosed.labels(String(code)).inc();
          const conn = this.connections.get(ws);
          if (!conn) return;
          conn.closed = true;
          this.connections.delete(ws);
          deps.topics.drop(ws);
          if (conn.session) {
            const session = conn.session;
            this.sessions.delete(session.socketId);
            const appId = session.app.app.id;
            this.perApp.set(appId, (this.perApp.get(appId) ?? 1) - 1);
            if (session.user) this.users.get(appId)?.get(session.user.id)?.delete(session);
            session.onClose();
          }
        },
      });
    }

    app.any('/apps/*', (res: Response, req) => {
      const method = req.getCaseSensitiveMethod();
      const path = req.getUrl();
      const query = req.getQuery() ?? '';
      const segments = path.split('/').slice(2); // ['', 'apps', id, ...rest]
      const [appId, ...rest] = segments;
      // As on the Centrifugo API: uWS drops a connection, unanswered, when a pipelined request arrives while this
      // one is pending. Carry the request out only after the rest of this read was parsed, so a request of a cut
      // pipeline never publishes and a backend's retry cannot publish twice.
      const answer = (body: string): void => {
        setImmediate(() => {
          if (res.aborted) {
            deps.metrics.apiPipelineRefused.inc();
            return;
          }
          void api.handle(appId ?? '', rest, { method, path, query, body }).then((r) => deps.sendText(res, r.status, r.contentType, r.body));
        });
      };
      if (method.toUpperCase() === 'GET' || method.toUpperCase() === 'HEAD') {
        res.onAborted(() => {
          res.aborted = true;
        });
        answer('');
        return;
      }
      deps.readBody(res, api.maxBody, (body) => {
        if (body === undefined) deps.sendText(res, 413, 'text/plain', `body larger than ${api.maxBody} bytes`);
        else answer(body);
      });
    });
  }

  private refusal(app: PusherApp | undefined, query: string, deps: PusherEdgeDeps): { code: PusherErrorCode; message: string } | undefined {
    if (deps.isDraining()) return { code: PusherErrorCode.GenericReconnect, message: 'server shutting down; reconnect' };
    if (!app) return { code: PusherErrorCode.AppNotFound, message: `${pusherErrorMessages[PusherErrorCode.AppNotFound]}: no app has this key` };
    if (!app.enabled) return { code: PusherErrorCode.AppDisabled, message: pusherErrorMessages[PusherErrorCode.AppDisabled] };
    if ((this.perApp.get(app.id) ?? 0) >= app.limits.max_connections) {
      return { code: PusherErrorCode.OverConnectionQuota, message: `${pusherErrorMessages[PusherErrorCode.OverConnectionQuota]}: at most ${app.limits.max_connections} connections per gateway` };
    }
    const check = checkConnectionQuery(query);
    if (!check.ok) return { code: check.code, message: check.message };
    if (deps.limits.maxConnections > 0 && this.connections.size > deps.limits.maxConnections) {
      return { code: PusherErrorCode.OverCapacity, message: pusherErrorMessages[PusherErrorCode.OverCapacity] };
    }
    return undefined;
  }

  private signedIn(session: PusherSession): void {
    if (!session.user) return;
    const appId = session.app.app.id;
    let byUser = this.users.get(appId);
    if (!byUser) this.users.set(appId, (byUser = new Map()));
    let set = byUser.get(session.user.id);
    if (!set) byUser.set(session.user.id, (set = new Set()));
    set.add(session);
  }

  /** Closes the signed-in connections of an app's user held here (a terminate_connections from any gateway). */
  private terminateLocal(data: unknown): void {
    const { app, user } = (data ?? {}) as { app?: unknown; user?: unknown };
    if (typeof app !== 'string' || typeof user !== 'string') return;
    const byUser = this.users.get(app);
    const set = byUser?.get(user);
    if (!byUser || !set) return;
    byUser.delete(user);
    for (const session of set) session.close(PusherErrorCode.Unauthorized, 'connection terminated by the app');
  }

  /** Once a second, from the gateway's clock: pings after inactivity, 4201 without a pong, slow clients. */
  tick(now: number, maxBackpressure: number): void {
    for (const [ws, conn] of this.connections) {
      const session = conn.session;
      if (!session) continue;
      session.checkActivity(now, DEFAULT_ACTIVITY_TIMEOUT_SECONDS * 1000, PONG_TIMEOUT_SECONDS * 1000);
      if (!conn.closed && ws.getBufferedAmount() > maxBackpressure) session.close(PusherErrorCode.OverCapacity, 'slow: too many unread frames');
    }
  }

  /** Closes every Pusher connection with 4200: pusher-js reconnects at once, through the load balancer elsewhere. */
  shutdown(): void {
    for (const conn of [...this.connections.values()]) {
      if (conn.session) conn.session.close(PusherErrorCode.GenericReconnect, 'server shutting down');
      else conn.close(PusherErrorCode.GenericReconnect, 'server shutting down');
    }
  }
}
