// The building blocks against the real pusher-js client (from npm, unmodified): a throwaway WebSocket server in
// this test decodes what pusher-js sends with decodeClientFrame and answers with the encoders; pusher-js must
// connect, subscribe, see presence members, receive events, client events and user events, and report errors.
import type { AddressInfo } from 'node:net';
import PusherServer from 'pusher';
import Pusher, { type PresenceChannel } from 'pusher-js';
import { WebSocketServer, type WebSocket } from 'ws';
import { parsePusherAppFlag, pusherAppRegistry, type PusherApp } from './apps';
import {
  checkConnectionQuery,
  clientFrameRules,
  decodeClientFrame,
  encodeChannelEvent,
  encodeConnectionEstablished,
  encodeError,
  encodeMemberAdded,
  encodeMemberRemoved,
  encodePresenceSubscriptionSucceeded,
  encodeSigninSuccess,
  encodeSubscriptionError,
  encodeSubscriptionSucceeded,
  parsePresenceChannelData,
  parseUserData,
  PONG_FRAME,
  type PresenceMember,
} from './frames';
import { needsChannelAuth, serverToUserChannel } from './names';
import { generateSocketId, isSocketId, verifyChannelAuth, verifyUserAuth } from './signature';

const app: PusherApp = parsePusherAppFlag('app-1:app-key:app-secret');
const backend = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1' });

interface Conn {
  ws: WebSocket;
  socketId: string;
  userId?: string;
  members: Map<string, PresenceMember>;
}

/** Just enough of a session to drive pusher-js; the real one is the gateway's. */
function startServer(): { wss: WebSocketServer; conns: Set<Conn>; channels: Map<string, Set<Conn>> } {
  const registry = pusherAppRegistry([app]);
  const rules = clientFrameRules(app);
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const conns = new Set<Conn>();
  const channels = new Map<string, Set<Conn>>();
  const others = (channel: string, except: Conn) => [...(channels.get(channel) ?? [])].filter((c) => c !== except);

  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const key = url.pathname.startsWith('/app/') ? url.pathname.slice(5) : '';
    if (registry.byKey(key) === undefined) {
      ws.send(encodeError(4001, `App key ${key} does not exist`));
      ws.close(4001);
      return;
    }
    const version = checkConnectionQuery(url.search.slice(1));
    if (!version.ok) {
      ws.send(encodeError(version.code, version.message));
      ws.close(version.code);
      return;
    }
    const conn: Conn = { ws, socketId: generateSocketId(), members: new Map() };
    conns.add(conn);
    ws.send(encodeConnectionEstablished(conn.socketId));

    ws.on('close', () => {
      conns.delete(conn);
      for (const [channel, subs] of channels) {
        if (!subs.delete(conn)) continue;
        const member = conn.members.get(channel);
        if (member !== undefined) for (const o of subs) o.ws.send(encodeMemberRemoved(channel, member.user_id));
      }
    });

    ws.on('message', (raw) => {
      const cmd = decodeClientFrame(raw.toString(), rules);
      switch (cmd.kind) {
        case 'ping':
          ws.send(PONG_FRAME);
          return;
        case 'error':
          ws.send(encodeError(cmd.code, cmd.message, cmd.channel));
          return;
        case 'subscribe': {
          if (needsChannelAuth(cmd.type)) {
            const check = verifyChannelAuth(app, conn.socketId, cmd.channel, cmd.auth, cmd.channelData);
            if (!check.ok) {
              ws.send(encodeSubscriptionError(cmd.channel, 'AuthError', check.message, 401));
              return;
            }
          }
          if (cmd.type === 'server-to-user' && serverToUserChannel(conn.userId ?? '') !== cmd.channel) {
            ws.send(encodeSubscriptionError(cmd.channel, 'AuthError', 'sign in first', 401));
            return;
          }
          const subs = channels.get(cmd.channel) ?? new Set<Conn>();
          channels.set(cmd.channel, subs);
          subs.add(conn);
          if (cmd.type !== 'presence') {
            ws.send(encodeSubscriptionSucceeded(cmd.channel));
            return;
          }
          const parsed = parsePresenceChannelData(cmd.channelData ?? '');
          if (!parsed.ok) {
            ws.send(encodeSubscriptionError(cmd.channel, 'AuthError', parsed.message, 401));
            return;
          }
          conn.members.set(cmd.channel, parsed.value);
          const roster = [...subs].flatMap((c) => c.members.get(cmd.channel) ?? []);
          ws.send(encodePresenceSubscriptionSucceeded(cmd.channel, roster));
          for (const o of others(cmd.channel, conn)) o.ws.send(encodeMemberAdded(cmd.channel, parsed.value));
          return;
        }
        case 'signin': {
          const check = verifyUserAuth(app, conn.socketId, cmd.userData, cmd.auth);
          const user = parseUserData(cmd.userData);
          if (!check.ok || !user.ok) {
            ws.send(encodeError(4009, check.ok ? 'bad user data' : check.message));
            return;
          }
          conn.userId = user.value.id;
          ws.send(encodeSigninSuccess(cmd.userData));
          return;
        }
        case 'client-event': {
          const userId = conn.members.get(cmd.channel)?.user_id;
          for (const o of others(cmd.channel, conn)) o.ws.send(encodeChannelEvent(cmd.event, cmd.channel, cmd.data, userId));
          return;
        }
        default:
          return;
      }
    });
  });
  return { wss, conns, channels };
}

let server: ReturnType<typeof startServer>;
let port: number;
const clients: Pusher[] = [];

beforeAll(async () => {
  server = startServer();
  await new Promise<void>((resolve) => server.wss.once('listening', () => resolve()));
  port = (server.wss.address() as AddressInfo).port;
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.wss.close(() => resolve()));
});

function client(key: string, user: { id: string; name: string }, opts: { forgeAuth?: boolean } = {}): Pusher {
  const p = new Pusher(key, {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    channelAuthorization: {
      transport: 'ajax',
      endpoint: '/unused',
      customHandler: ({ socketId, channelName }, callback) => {
        const presence = channelName.startsWith('presence-') ? { user_id: user.id, user_info: { name: user.name } } : undefined;
        const signed = backend.authorizeChannel(socketId, channelName, presence);
        callback(null, opts.forgeAuth ? { ...signed, auth: `${app.key}:${'0'.repeat(64)}` } : signed);
      },
    },
    userAuthentication: {
      transport: 'ajax',
      endpoint: '/unused',
      customHandler: ({ socketId }, callback) => callback(null, backend.authenticateUser(socketId, { id: user.id, user_info: { name: user.name } })),
    },
  });
  clients.push(p);
  return p;
}

function connected(p: Pusher): Promise<string> {
  return new Promise((resolve) => {
    if (p.connection.state === 'connected') resolve(p.connection.socket_id);
    else p.connection.bind('connected', () => resolve(p.connection.socket_id));
  });
}

function next<T>(bindTo: { bind: (event: string, cb: (data: T, meta?: unknown) => void) => unknown }, event: string): Promise<[T, unknown]> {
  return new Promise((resolve) => bindTo.bind(event, (data: T, meta?: unknown) => resolve([data, meta])));
}

function connOf(socketId: string): Conn {
  const conn = [...server.conns].find((c) => c.socketId === socketId);
  if (conn === undefined) throw new Error(`no connection ${socketId}`);
  return conn;
}

describe('pusher-js against the building blocks', () => {
  it('connects and gets a socket id in Pusher’s form', async () => {
    const p = client(app.key, { id: 'u1', name: 'Ann' });
    expect(isSocketId(await connected(p))).toBe(true);
  });

  it('subscribes to a public channel and receives an event published as a string', async () => {
    const p = client(app.key, { id: 'u1', name: 'Ann' });
    const ch = p.subscribe('orders');
    await next(ch, 'pusher:subscription_succeeded');
    const got = next<unknown>(ch, 'App\\Events\\OrderShipped');
    connOf(p.connection.socket_id).ws.send(encodeChannelEvent('App\\Events\\OrderShipped', 'orders', JSON.stringify({ id: 7, note: 'ü "q"' })));
    expect((await got)[0]).toEqual({ id: 7, note: 'ü "q"' });
  });

  it('subscribes to a private channel with the backend’s signature, and is refused with a forged one', async () => {
    const good = client(app.key, { id: 'u1', name: 'Ann' });
    await next(good.subscribe('private-orders.1'), 'pusher:subscription_succeeded');

    const bad = client(app.key, { id: 'u2', name: 'Bob' }, { forgeAuth: true });
    const [error] = await next<{ type: string; error: string; status: number }>(bad.subscribe('private-orders.1'), 'pusher:subscription_error');
    expect(error).toEqual({ type: 'AuthError', error: 'invalid signature for channel private-orders.1', status: 401 });
  });

  it('presence: the roster on joining, member_added, client events with user_id, member_removed', async () => {
    const ann = client(app.key, { id: 'u1', name: 'Ann' });
    const annRoom = ann.subscribe('presence-room') as PresenceChannel;
    await next(annRoom, 'pusher:subscription_succeeded');
    expect(annRoom.members.count).toBe(1);
    expect(annRoom.members.me).toEqual({ id: 'u1', info: { name: 'Ann' } });

    const added = next<{ id: string; info: unknown }>(annRoom, 'pusher:member_added');
    const bob = client(app.key, { id: 'u2', name: 'Bob' });
    const bobRoom = bob.subscribe('presence-room') as PresenceChannel;
    await next(bobRoom, 'pusher:subscription_succeeded');
    expect(bobRoom.members.count).toBe(2);
    const seen: unknown[] = [];
    bobRoom.members.each((m: unknown) => seen.push(m));
    expect(seen).toEqual(expect.arrayContaining([{ id: 'u1', info: { name: 'Ann' } }, { id: 'u2', info: { name: 'Bob' } }]));
    expect((await added)[0]).toEqual({ id: 'u2', info: { name: 'Bob' } });

    const typing = next<unknown>(annRoom, 'client-typing');
    bobRoom.trigger('client-typing', { typing: true });
    const [data, meta] = await typing;
    expect(data).toEqual({ typing: true });
    expect(meta).toEqual({ user_id: 'u2' });

    const removed = next<{ id: string }>(annRoom, 'pusher:member_removed');
    bob.disconnect();
    expect((await removed)[0]).toEqual({ id: 'u2', info: { name: 'Bob' } });
    expect(annRoom.members.count).toBe(1);
  });

  it('signs in and receives events on its #server-to-user- channel', async () => {
    const p = client(app.key, { id: 'u9', name: 'Zed' });
    await connected(p);
    p.signin();
    await p.user.signinDonePromise;
    expect(p.user.user_data).toEqual({ id: 'u9', user_info: { name: 'Zed' } });
    // pusher-js subscribes to its user channel right after signin_success; wait until that is acknowledged.
    expect(p.user.serverToUserChannel.name).toBe('#server-to-user-u9');
    await next(p.user.serverToUserChannel, 'pusher:subscription_succeeded');
    const conn = connOf(p.connection.socket_id);
    const got = next<unknown>(p.user, 'hello');
    conn.ws.send(encodeChannelEvent('hello', serverToUserChannel('u9'), '{"n":1}'));
    expect((await got)[0]).toEqual({ n: 1 });
  });

  it('reports a refused client event as a pusher:error with code and message, and stays connected', async () => {
    const p = client(app.key, { id: 'u1', name: 'Ann' });
    const ch = p.subscribe('orders');
    await next(ch, 'pusher:subscription_succeeded');
    const error = new Promise<{ type: string; data: { code: number; message: string } }>((resolve) => p.connection.bind('error', resolve));
    ch.trigger('client-x', { a: 1 });
    expect(await error).toEqual({ type: 'PusherError', data: { code: 4301, message: 'client events are allowed on private- and presence- channels only, not on public channels' } });
    expect(p.connection.state).toBe('connected');
  });

  it('an unknown app key gets 4001 and pusher-js gives up instead of retrying', async () => {
    const p = client('no-such-key', { id: 'u1', name: 'Ann' });
    const errors: unknown[] = [];
    p.connection.bind('error', (e: unknown) => errors.push(e));
    await new Promise<void>((resolve) => p.connection.bind('state_change', ({ current }: { current: string }) => current === 'disconnected' && resolve()));
    expect(errors).toContainEqual({ type: 'WebSocketError', error: { type: 'PusherError', data: { code: 4001, message: 'App key no-such-key does not exist' } } });
  });
});
