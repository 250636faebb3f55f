// The Pusher edge end to end: pusher-js, Laravel Echo, the `pusher` server library and the Centrifugo SDK against
// two gateways on one Redis, and a table of bad input that must each get the protocol's error and change nothing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import PusherServer from 'pusher';
import PusherClient from 'pusher-js';
import Echo from 'laravel-echo';
import { hmacToken, startRedis, startSwitchboard, waitFor, waitUntilGatewaysKnowEachOther, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const APP = { id: 'app1', key: 'key1', secret: 'secret1' };
const TOKEN_SECRET = 'pusher-edge-secret';
const API_KEY = 'pusher-edge-key';

let redis: RedisServer;
let gatewayA: SwitchboardProcess;
let gatewayB: SwitchboardProcess;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-pusher-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '    allow_subscribe_for_anonymous: true',
      '    presence: true',
      '  namespaces:',
      '    - name: closed',
      'pusher:',
      '  apps:',
      `    - { id: app2, key: key2, secret: secret2, namespace: closed }`,
    ].join('\n'),
  );
  const args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', TOKEN_SECRET, '--api-key', API_KEY, '--log-level', 'warn'];
  const withApp = [...args, '--pusher-app', `${APP.id}:${APP.key}:${APP.secret}`];
  [gatewayA, gatewayB] = await Promise.all([startSwitchboard('gateway', withApp), startSwitchboard('gateway', withApp)]);
  await waitUntilGatewaysKnowEachOther([gatewayA, gatewayB], API_KEY);
});

afterAll(async () => {
  for (const c of cleanups) c();
  await Promise.all([gatewayA?.stop(), gatewayB?.stop()]);
  await redis?.stop();
});

function server(gateway: SwitchboardProcess, secret = APP.secret): PusherServer {
  return new PusherServer({ appId: APP.id, key: APP.key, secret, host: '127.0.0.1', port: String(gateway.port), useTLS: false });
}

interface PresenceUser {
  user_id: string;
  user_info?: Record<string, unknown>;
}

/** A pusher-js client whose authorizer signs like a backend would (the `pusher` library's authorizeChannel). */
function client(gateway: SwitchboardProcess, user?: PresenceUser, opts: { secret?: string } = {}): PusherClient {
  const signer = server(gateway, opts.secret);
  const pusher = new PusherClient(APP.key, {
    wsHost: '127.0.0.1',
    wsPort: gateway.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    channelAuthorization: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId, channelName }, callback) => {
        callback(null, signer.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? user : undefined));
      },
    },
  });
  cleanups.push(() => pusher.disconnect());
  return pusher;
}

async function connected(pusher: PusherClient): Promise<string> {
  if (pusher.connection.state !== 'connected') {
    await new Promise<void>((resolve, reject) => {
      pusher.connection.bind('connected', () => resolve());
      pusher.connection.bind('failed', () => reject(new Error('pusher-js could not connect')));
    });
  }
  return pusher.connection.socket_id;
}

function subscribed(pusher: PusherClient, channel: string): Promise<unknown> {
  const ch = pusher.subscribe(channel);
  return new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', (data: unknown) => resolve(data));
    ch.bind('pusher:subscription_error', (e: unknown) => reject(new Error(`subscription error: ${JSON.stringify(e)}`)));
  });
}

function collect(pusher: PusherClient, channel: string, event: string): unknown[] {
  const got: unknown[] = [];
  pusher.channel(channel).bind(event, (data: unknown) => got.push(data));
  return got;
}

it('delivers an event from the pusher library to pusher-js subscribers on both gateways, and honours socket_id', async () => {
  const [a, b, sender] = [client(gatewayA), client(gatewayB), client(gatewayA)];
  await Promise.all([subscribed(a, 'news'), subscribed(b, 'news'), subscribed(sender, 'news')]);
  const [gotA, gotB, gotSender] = [collect(a, 'news', 'headline'), collect(b, 'news', 'headline'), collect(sender, 'news', 'headline')];
  const senderId = await connected(sender);
  await server(gatewayB).trigger('news', 'headline', { title: 'first' }, { socket_id: senderId });
  await server(gatewayA).trigger('news', 'headline', 'plain text');
  await waitFor(() => gotA.length === 2 && gotB.length === 2 && gotSender.length === 1, { timeoutMs: 5000, message: 'events delivered' });
  expect(gotA).toEqual([{ title: 'first' }, 'plain text']);
  expect(gotB).toEqual(gotA);
  // The socket named by socket_id did not get the first event.
  expect(gotSender).toEqual(['plain text']);
});

it('batch events reach their channels', async () => {
  const c = client(gatewayB);
  await Promise.all([subscribed(c, 'batch-1'), subscribed(c, 'batch-2')]);
  const [one, two] = [collect(c, 'batch-1', 'e'), collect(c, 'batch-2', 'e')];
  await server(gatewayA).triggerBatch([
    { channel: 'batch-1', name: 'e', data: { n: 1 } },
    { channel: 'batch-2', name: 'e', data: { n: 2 } },
  ]);
  await waitFor(() => one.length === 1 && two.length === 1, { timeoutMs: 5000 });
  expect([one, two]).toEqual([[{ n: 1 }], [{ n: 2 }]]);
});

it('private channels need a valid signature; Laravel Echo listens on one', async () => {
  const pusher = client(gatewayA);
  const echo = new Echo({ broadcaster: 'pusher', key: APP.key, client: pusher });
  cleanups.push(() => echo.disconnect());
  const got: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    echo
      .private('orders.1')
      .listen('.OrderShipped', (e: unknown) => got.push(e))
      .subscribed(() => resolve())
      .error((e: unknown) => reject(new Error(JSON.stringify(e))));
  });
  await server(gatewayB).trigger('private-orders.1', 'OrderShipped', { id: 1 });
  await waitFor(() => got.length === 1, { timeoutMs: 5000 });
  expect(got).toEqual([{ id: 1 }]);

  // Signed with the wrong secret: refused with pusher:subscription_error, and no event arrives.
  const forger = client(gatewayB, undefined, { secret: 'not-the-secret' });
  await expect(subscribed(forger, 'private-orders.1')).rejects.toThrow(/AuthError.*invalid signature/);
});

it('presence: Echo.join here/joining/leaving with members on both gateways, and the HTTP API sees them', async () => {
  const alice = new Echo({ broadcaster: 'pusher', key: APP.key, client: client(gatewayA, { user_id: 'alice', user_info: { name: 'Alice' } }) });
  cleanups.push(() => alice.disconnect());
  const joined: unknown[] = [];
  const left: unknown[] = [];
  const here = await new Promise<unknown[]>((resolve) => {
    alice
      .join('room.1')
      .here((members: unknown[]) => resolve(members))
      .joining((m: unknown) => joined.push(m))
      .leaving((m: unknown) => left.push(m));
  });
  expect(here).toEqual([{ name: 'Alice' }]);

  const bobClient = client(gatewayB, { user_id: 'bob', user_info: { name: 'Bob' } });
  const bob = new Echo({ broadcaster: 'pusher', key: APP.key, client: bobClient });
  const bobHere = await new Promise<unknown[]>((resolve) => bob.join('room.1').here((members: unknown[]) => resolve(members)));
  expect(bobHere).toEqual(expect.arrayContaining([{ name: 'Alice' }, { name: 'Bob' }]));
  await waitFor(() => joined.length === 1, { timeoutMs: 5000, message: 'alice sees bob join' });
  expect(joined).toEqual([{ name: 'Bob' }]);

  const api = server(gatewayB);
  const users = await (await api.get({ path: '/channels/presence-room.1/users' })).json();
  expect(users.users.map((u: { id: string }) => u.id).sort()).toEqual(['alice', 'bob']);
  // Counts come from a survey of the gateways, which now and then misses one (ControlPlane; /api/info too): retried.
  let info: unknown;
  await waitFor(
    async () => {
      info = await (await api.get({ path: '/channels/presence-room.1', params: { info: 'user_count,subscription_count' } })).json();
      return (info as { subscription_count: number }).subscription_count === 2;
    },
    { timeoutMs: 5000, message: 'both subscribers counted' },
  );
  expect(info).toEqual({ occupied: true, user_count: 2, subscription_count: 2 });
  const list = await (await api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
  expect(list.channels['presence-room.1']).toEqual({ user_count: 2 });

  bob.leave('room.1');
  await waitFor(() => left.length === 1, { timeoutMs: 5000, message: 'alice sees bob leave' });
  expect(left).toEqual([{ name: 'Bob' }]);
  // Alice never heard of her own arrival.
  expect(joined).toEqual([{ name: 'Bob' }]);
});

it('client events (whisper) reach the other members, not the sender; never on public channels', async () => {
  const one = new Echo({ broadcaster: 'pusher', key: APP.key, client: client(gatewayA) });
  const two = new Echo({ broadcaster: 'pusher', key: APP.key, client: client(gatewayB) });
  cleanups.push(() => one.disconnect(), () => two.disconnect());
  const gotOne: unknown[] = [];
  const gotTwo: unknown[] = [];
  const ready = (echo: InstanceType<typeof Echo>, into: unknown[]) =>
    new Promise<void>((resolve) => echo.private('typing').listenForWhisper('typing', (e: unknown) => into.push(e)).subscribed(() => resolve()));
  await Promise.all([ready(one, gotOne), ready(two, gotTwo)]);
  one.private('typing').whisper('typing', { who: 'one' });
  await waitFor(() => gotTwo.length === 1, { timeoutMs: 5000 });
  expect(gotTwo).toEqual([{ who: 'one' }]);
  expect(gotOne).toEqual([]);
});

it('a Centrifugo SDK subscriber and a pusher-js subscriber of one channel both get publications from either API', async () => {
  const pusher = client(gatewayA);
  await subscribed(pusher, 'shared');
  const viaPusher: { event: string; data: unknown }[] = [];
  pusher.channel('shared').bind_global((event: string, data: unknown) => {
    if (!event.startsWith('pusher')) viaPusher.push({ event, data });
  });

  const sdk = new Centrifuge(gatewayB.wsUrl, { websocket: WebSocket, token: await hmacToken(TOKEN_SECRET, { sub: 'u1' }) });
  cleanups.push(() => sdk.disconnect());
  const viaSdk: { data: unknown; tags?: Record<string, string> }[] = [];
  const sub = sdk.newSubscription('shared');
  sub.on('publication', (ctx) => viaSdk.push({ data: ctx.data, tags: ctx.tags }));
  const ready = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
  sub.subscribe();
  sdk.connect();
  await ready;

  const res = await fetch(`${gatewayA.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel: 'shared', data: { from: 'centrifugo' } }) });
  expect(res.status).toBe(200);
  await server(gatewayB).trigger('shared', 'greeting', { from: 'pusher' });
  await waitFor(() => viaPusher.length === 2 && viaSdk.length === 2, { timeoutMs: 5000, message: 'both publications on both protocols' });
  expect(viaPusher).toEqual([
    { event: 'publication', data: { from: 'centrifugo' } },
    { event: 'greeting', data: { from: 'pusher' } },
  ]);
  expect(viaSdk[0].data).toEqual({ from: 'centrifugo' });
  expect(viaSdk[1]).toEqual({ data: { from: 'pusher' }, tags: { event: 'greeting' } });
});

// ---- bad input ------------------------------------------------------------------------------------------------------

interface RawPusher {
  frames: { event: string; channel?: string; data: unknown }[];
  closeCode: Promise<number>;
  send(text: string): void;
  socketId: Promise<string>;
}

/** A bare WebSocket speaking Pusher, to send what no library would. */
function raw(gateway: SwitchboardProcess, key = APP.key, query = 'protocol=7&client=js&version=8.6.0'): RawPusher {
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/app/${key}?${query}`);
  cleanups.push(() => ws.terminate());
  const frames: RawPusher['frames'] = [];
  let established: (id: string) => void = () => undefined;
  const socketId = new Promise<string>((resolve) => (established = resolve));
  ws.on('message', (m) => {
    const frame = JSON.parse(m.toString()) as RawPusher['frames'][number];
    if (typeof frame.data === 'string' && frame.event !== 'pusher:error') {
      try {
        frame.data = JSON.parse(frame.data);
      } catch {
        // Event data that is not JSON stays a string.
      }
    }
    frames.push(frame);
    if (frame.event === 'pusher:connection_established') established((frame.data as { socket_id: string }).socket_id);
  });
  const open = new Promise<void>((resolve) => ws.once('open', () => resolve()));
  return {
    frames,
    socketId,
    closeCode: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
    send: (text) => void open.then(() => ws.send(text)),
  };
}

function lastError(r: RawPusher): unknown {
  return [...r.frames].reverse().find((f) => f.event === 'pusher:error' || f.event === 'pusher:subscription_error');
}

it('refuses an unknown app key with 4001 and closes', async () => {
  const r = raw(gatewayA, 'nope');
  expect(await r.closeCode).toBe(4001);
  expect(r.frames).toEqual([{ event: 'pusher:error', data: { code: 4001, message: expect.stringContaining('Application does not exist') } }]);
});

it('refuses a connection without protocol 7', async () => {
  expect(await raw(gatewayA, APP.key, 'protocol=6').closeCode).toBe(4007);
});

it("maps an app's channels into its namespace, whose options apply: no anonymous subscribe in `closed`", async () => {
  const r = raw(gatewayA, 'key2');
  await r.socketId;
  r.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'room' } }));
  await waitFor(() => lastError(r) !== undefined, { timeoutMs: 3000 });
  expect(lastError(r)).toEqual({ event: 'pusher:subscription_error', channel: 'room', data: { type: 'AuthError', status: 403, error: expect.stringContaining('allow_subscribe_for_anonymous') } });
  // A presence channel where the namespace keeps no presence: refused, saying what to set.
  const signer = new PusherServer({ appId: 'app2', key: 'key2', secret: 'secret2', host: '127.0.0.1', port: String(gatewayA.port), useTLS: false });
  const channelData = { user_id: 'u1' };
  const { auth, channel_data } = signer.authorizeChannel(await r.socketId, 'presence-room', channelData);
  r.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'presence-room', auth, channel_data } }));
  await waitFor(() => (lastError(r) as { channel?: string }).channel === 'presence-room', { timeoutMs: 3000 });
  expect(lastError(r)).toEqual({ event: 'pusher:subscription_error', channel: 'presence-room', data: expect.objectContaining({ error: expect.stringContaining('presence: true') }) });
});

describe('bad frames get the protocol error, and the gateway carries on', () => {
  const longName = 'x'.repeat(201);
  const cases: [string, (socketId: string) => string, object][] = [
    ['malformed JSON', () => '{"event":', { event: 'pusher:error', data: { code: 4200, message: expect.stringContaining('not JSON') } }],
    ['an unknown pusher: event', () => '{"event":"pusher:nope","data":{}}', { event: 'pusher:error', data: { code: 4200, message: expect.stringContaining('unknown event') } }],
    ['a deep frame', () => '['.repeat(5000), { event: 'pusher:error', data: { code: 4200, message: expect.stringContaining('deeper') } }],
    [
      'an over-long channel name',
      () => JSON.stringify({ event: 'pusher:subscribe', data: { channel: longName } }),
      { event: 'pusher:subscription_error', channel: longName, data: { type: 'AuthError', status: 401, error: 'channel name longer than 200 characters' } },
    ],
    [
      'a private channel without auth',
      () => JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-x' } }),
      { event: 'pusher:subscription_error', channel: 'private-x', data: { type: 'AuthError', status: 401, error: expect.stringContaining('needs an "auth"') } },
    ],
    [
      'a forged auth',
      (id) => JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `${APP.key}:${'0'.repeat(64)}`, socket_id: id } }),
      { event: 'pusher:subscription_error', channel: 'private-x', data: { type: 'AuthError', status: 401, error: expect.stringContaining('invalid signature') } },
    ],
    [
      'a client event on a public channel',
      () => JSON.stringify({ event: 'client-x', channel: 'news', data: {} }),
      { event: 'pusher:error', channel: 'news', data: { code: 4301, message: expect.stringContaining('private- and presence- channels only') } },
    ],
    [
      'an oversized client event',
      () => JSON.stringify({ event: 'client-x', channel: 'private-x', data: 'x'.repeat(11 * 1024) }),
      { event: 'pusher:error', channel: 'private-x', data: { code: 4301, message: expect.stringContaining('larger than 10240 bytes') } },
    ],
    [
      'a client event without a subscription',
      () => JSON.stringify({ event: 'client-x', channel: 'private-x', data: {} }),
      { event: 'pusher:error', channel: 'private-x', data: { code: 4301, message: expect.stringContaining('subscribe to the channel first') } },
    ],
  ];

  it.each(cases)('%s', async (_what, frame, expected) => {
    const r = raw(gatewayB);
    const id = await r.socketId;
    r.send(frame(id));
    await waitFor(() => lastError(r) !== undefined, { timeoutMs: 3000 });
    expect(lastError(r)).toEqual(expected);
    // Still served: a ping is answered.
    r.send('{"event":"pusher:ping","data":{}}');
    await waitFor(() => r.frames.some((f) => f.event === 'pusher:pong'), { timeoutMs: 3000 });
  });
});

describe('the HTTP API refuses unsigned or badly signed requests with 401 and publishes nothing', () => {
  it.each([
    ['a forged signature', () => server(gatewayA, 'wrong-secret').trigger('audit', 'e', { n: 1 })],
    [
      'a stale timestamp',
      () => {
        const body = JSON.stringify({ name: 'e', data: '{}', channels: ['audit'] });
        const query = server(gatewayA).createSignedQueryString({ method: 'POST', path: `/apps/${APP.id}/events`, body });
        const stale = query.replace(/auth_timestamp=\d+/, `auth_timestamp=${Math.floor(Date.now() / 1000) - 3600}`);
        return fetch(`${gatewayA.url}/apps/${APP.id}/events?${stale}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      },
    ],
    ['no signature', () => fetch(`${gatewayA.url}/apps/${APP.id}/events`, { method: 'POST', body: JSON.stringify({ name: 'e', data: '{}', channel: 'audit' }) })],
  ])('%s', async (_what, send) => {
    const watcher = client(gatewayB);
    await subscribed(watcher, 'audit');
    const got = collect(watcher, 'audit', 'e');
    let status: number;
    try {
      status = (await send()).status;
    } catch (err) {
      status = (err as { status: number }).status;
    }
    expect(status).toBe(401);
    // A real event after it arrives alone: the refused one changed nothing.
    await server(gatewayA).trigger('audit', 'e', { n: 'real' });
    await waitFor(() => got.length > 0, { timeoutMs: 5000 });
    expect(got).toEqual([{ n: 'real' }]);
    watcher.unsubscribe('audit');
  });
});

it('pipelined API requests cut by uWS on the main port are not carried out (a retry cannot publish twice)', async () => {
  const watcher = client(gatewayB);
  await subscribed(watcher, 'pipelined');
  const got = collect(watcher, 'pipelined', 'e');
  const request = (n: number): string => {
    const body = JSON.stringify({ name: 'e', data: JSON.stringify({ n }), channel: 'pipelined' });
    const query = server(gatewayA).createSignedQueryString({ method: 'POST', path: `/apps/${APP.id}/events`, body });
    return `POST /apps/${APP.id}/events?${query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  // Both requests in one write: uWS drops such a connection while the first is pending, unanswered.
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(gatewayA.port, '127.0.0.1', () => socket.write(request(1) + request(2)));
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(3000, () => socket.destroy());
  });
  expect(answer).toBe('');
  await waitFor(async () => (await (await fetch(`${gatewayA.url}/metrics`)).text()).includes('switchboard_api_pipeline_refused_total 1'), { timeoutMs: 3000, message: 'refusal counted' });
  // A real event after them arrives alone: the cut ones were never published.
  await server(gatewayA).trigger('pipelined', 'e', { n: 'real' });
  await waitFor(() => got.length > 0, { timeoutMs: 5000 });
  expect(got).toEqual([{ n: 'real' }]);
});
