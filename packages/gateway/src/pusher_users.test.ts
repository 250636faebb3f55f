// Pusher users and quotas end to end: pusher:signin and #server-to-user- channels with pusher-js and the `pusher`
// library's sendToUser, terminate_connections across two gateways, an event's `info`, and the app's limits
// (connections per gateway, presence members per channel), on two gateways and one Redis.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import PusherServer from 'pusher';
import PusherClient from 'pusher-js';
import WebSocket from 'ws';
import { startRedis, startSwitchboard, waitFor, waitUntilGatewaysKnowEachOther, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const APP = { id: 'users', key: 'users-key', secret: 'users-secret' };
const LIMITED = { id: 'limited', key: 'limited-key', secret: 'limited-secret' };
const API_KEY = 'pusher-users-api';

let redis: RedisServer;
let gateways: SwitchboardProcess[];
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-pusher-users-')), 'config.yaml');
  writeFileSync(
    config,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '    allow_subscribe_for_anonymous: true',
      '    presence: true',
      '  namespaces:',
      '    - name: lim',
      '      presence: true',
      '      allow_subscribe_for_client: true',
      '      allow_subscribe_for_anonymous: true',
      'pusher:',
      '  apps:',
      `    - { id: ${APP.id}, key: ${APP.key}, secret: ${APP.secret} }`,
      `    - { id: ${LIMITED.id}, key: ${LIMITED.key}, secret: ${LIMITED.secret}, namespace: lim, max_connections: 3, max_presence_members_per_channel: 2 }`,
    ].join('\n'),
  );
  const args = ['--redis', redis.url, '--config', config, '--api-key', API_KEY, '--insecure', '--log-level', 'warn'];
  gateways = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
  await waitUntilGatewaysKnowEachOther(gateways, API_KEY);
});

afterAll(async () => {
  for (const c of cleanups) c();
  await Promise.all((gateways ?? []).map((g) => g.stop()));
  await redis?.stop();
});

type App = typeof APP;

function backend(gateway: SwitchboardProcess, app: App = APP): PusherServer {
  return new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(gateway.port), useTLS: false });
}

/** pusher-js whose sign-in and channel authorization are signed like a backend would (the `pusher` library). */
function client(gateway: SwitchboardProcess, opts: { app?: App; user?: string; presence?: string } = {}): PusherClient {
  const app = opts.app ?? APP;
  const signer = backend(gateway, app);
  const pusher = new PusherClient(app.key, {
    wsHost: '127.0.0.1',
    wsPort: gateway.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    userAuthentication: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId }, callback) => callback(null, signer.authenticateUser(socketId, { id: opts.user ?? 'nobody', user_info: { name: opts.user } })),
    },
    channelAuthorization: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId, channelName }, callback) =>
        callback(null, signer.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? { user_id: opts.presence ?? 'nobody' } : undefined)),
    },
  });
  cleanups.push(() => pusher.disconnect());
  return pusher;
}

function state(pusher: PusherClient, wanted: string): Promise<void> {
  if (pusher.connection.state === wanted) return Promise.resolve();
  return new Promise((resolve) => pusher.connection.bind('state_change', (s: { current: string }) => s.current === wanted && resolve()));
}

function subscription(pusher: PusherClient, channel: string): Promise<{ ok: true } | { ok: false; error: unknown }> {
  const ch = pusher.subscribe(channel);
  return new Promise((resolve) => {
    ch.bind('pusher:subscription_succeeded', () => resolve({ ok: true }));
    ch.bind('pusher:subscription_error', (error: unknown) => resolve({ ok: false, error }));
  });
}

/** Frames of one raw connection (for what pusher-js does not expose). */
async function raw(gateway: SwitchboardProcess, key: string): Promise<{ frames: { event: string; data: unknown }[]; ws: WebSocket }> {
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/app/${key}?protocol=7&client=js&version=8.4.0`);
  const frames: { event: string; data: unknown }[] = [];
  ws.onmessage = (m) => frames.push(JSON.parse(String(m.data)) as { event: string; data: unknown });
  await waitFor(() => frames.length > 0 || ws.readyState === WebSocket.CLOSED, { timeoutMs: 5000, message: 'first frame' });
  return { frames, ws };
}

it('signs a user in and delivers sendToUser to every connection of that user, on both gateways', async () => {
  const [a, b, other] = [client(gateways[0], { user: 'alice' }), client(gateways[1], { user: 'alice' }), client(gateways[0], { user: 'bob' })];
  const got: unknown[][] = [[], [], []];
  [a, b, other].forEach((p, i) => p.user.bind('note', (data: unknown) => got[i].push(data)));
  for (const p of [a, b, other]) p.signin();
  await Promise.all([a, b, other].map((p) => p.user.signinDonePromise));
  // pusher-js subscribes #server-to-user-<id> right after sign-in; wait until both of alice's connections have it.
  await waitFor(() => [a, b].every((p) => p.user.serverToUserChannel?.subscribed === true), { timeoutMs: 5000, message: 'user channels' });
  await backend(gateways[1]).sendToUser('alice', 'note', { text: 'hi' });
  await waitFor(() => got[0].length === 1 && got[1].length === 1, { timeoutMs: 5000, message: 'both of alice\'s connections got it' });
  expect(got).toEqual([[{ text: 'hi' }], [{ text: 'hi' }], []]);
});

it('refuses a #server-to-user- channel to a connection not signed in as that user, and a forged sign-in', async () => {
  // pusher-js never subscribes another user's channel itself: a raw client does what a hostile one would.
  const conn = await raw(gateways[1], APP.key);
  const socketId = (JSON.parse(conn.frames[0].data as string) as { socket_id: string }).socket_id;
  conn.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } }));
  const signer = backend(gateways[1]);
  conn.ws.send(JSON.stringify({ event: 'pusher:signin', data: backend(gateways[1], { ...APP, secret: 'wrong' }).authenticateUser(socketId, { id: 'alice' }) }));
  conn.ws.send(JSON.stringify({ event: 'pusher:signin', data: signer.authenticateUser(socketId, { id: 'mallory' }) }));
  conn.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } }));
  conn.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-mallory' } }));
  await waitFor(() => conn.frames.length >= 6, { timeoutMs: 5000, message: 'five answers' });
  expect(conn.frames.slice(1).map((f) => [f.event, (f as { channel?: string }).channel])).toEqual([
    ['pusher:subscription_error', '#server-to-user-alice'],
    ['pusher:error', undefined],
    ['pusher:signin_success', undefined],
    ['pusher:subscription_error', '#server-to-user-alice'],
    ['pusher_internal:subscription_succeeded', '#server-to-user-mallory'],
  ]);
  expect(conn.frames[2].data).toMatchObject({ code: 4009 });
  conn.ws.close();
});

it('terminate_connections closes the user\'s connections on every gateway and no one else\'s', async () => {
  const [a, b, other] = [client(gateways[0], { user: 'carol' }), client(gateways[1], { user: 'carol' }), client(gateways[1], { user: 'dave' })];
  for (const p of [a, b, other]) p.signin();
  await Promise.all([a, b, other].map((p) => p.user.signinDonePromise));
  await backend(gateways[0]).terminateUserConnections('carol');
  // 4009 is a code pusher-js does not reconnect after.
  await Promise.all([state(a, 'disconnected'), state(b, 'disconnected')]);
  expect(other.connection.state).toBe('connected');
});

it('answers an event\'s info with the channels\' subscription and user counts', async () => {
  const [p1, p2] = [client(gateways[0], { presence: 'u1' }), client(gateways[1], { presence: 'u2' })];
  await Promise.all([subscription(p1, 'presence-room'), subscription(p2, 'presence-room'), subscription(p1, 'plain')]);
  const res = await backend(gateways[0]).trigger(['presence-room', 'plain'], 'ev', {}, { info: 'subscription_count,user_count' });
  expect(await res.json()).toEqual({ channels: { 'presence-room': { subscription_count: 2, user_count: 2 }, plain: { subscription_count: 1 } } });
});

it('refuses connections over the app\'s max_connections per gateway with 4004, and a new member of a full presence channel', async () => {
  const members = [client(gateways[0], { app: LIMITED, presence: 'm1' }), client(gateways[0], { app: LIMITED, presence: 'm2' })];
  for (const m of members) expect(await subscription(m, 'presence-full')).toEqual({ ok: true });
  // A third user does not fit; a second connection of a member does.
  const third = client(gateways[1], { app: LIMITED, presence: 'm3' });
  expect(await subscription(third, 'presence-full')).toMatchObject({ ok: false, error: { type: 'LimitReached' } });
  const again = client(gateways[1], { app: LIMITED, presence: 'm1' });
  expect(await subscription(again, 'presence-full')).toEqual({ ok: true });

  // Gateway 0 holds two of the app's connections: a third fits, a fourth is over quota.
  const fits = await raw(gateways[0], LIMITED.key);
  expect(fits.frames[0]).toMatchObject({ event: 'pusher:connection_established' });
  const refused = await raw(gateways[0], LIMITED.key);
  expect(refused.frames[0]).toMatchObject({ event: 'pusher:error', data: { code: 4004 } });
  fits.ws.close();
});
