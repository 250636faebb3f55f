// In-process gateway on the memory engine: auth, permissions, bad input and the centrifuge SDK.
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, importPKCS8 } from 'jose';
import fc from 'fast-check';
import pino from 'pino';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { MemoryBroker, MemoryDocStore } from '@switchboard/engine';
import { RawClient, hmacToken } from '@switchboard/testkit';
import { defaultNamespaceOptions, type ChannelConfig, type NamespaceOptions } from './channels';
import { startGateway, type Gateway } from './server';

const SECRET = 'test-secret';
const API_KEY = 'test-api-key';

function ns(options: Partial<NamespaceOptions>): NamespaceOptions {
  return { ...defaultNamespaceOptions, ...options };
}

const channels: ChannelConfig = {
  without_namespace: ns({ allow_subscribe_for_client: true, allow_publish_for_client: true }),
  namespaces: {
    hist: ns({ allow_subscribe_for_client: true, allow_publish_for_client: true, allow_history_for_subscriber: true, history_size: 10, history_ttl: 60, allow_recovery: true }),
    sub: ns({ allow_subscribe_for_client: true, allow_publish_for_subscriber: true }),
    ro: ns({ allow_subscribe_for_client: true }),
    private: ns({}),
    anonok: ns({ allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true }),
    dm: ns({ allow_user_limited_channels: true }),
    pres: ns({ allow_subscribe_for_client: true, presence: true, allow_presence_for_subscriber: true }),
    prescl: ns({ allow_subscribe_for_client: true, presence: true, allow_presence_for_client: true, allow_history_for_client: true, history_size: 5, history_ttl: 60 }),
  },
};

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: { export(o: object): string | Buffer }, type: string) => k.export({ type, format: 'pem' }).toString();

let gateway: Gateway;
let broker: MemoryBroker;
let url: string;
let api: string;

beforeAll(async () => {
  broker = new MemoryBroker({ node: 'test-node' });
  await broker.start();
  gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    broker,
    docs: new MemoryDocStore(broker),
    channels,
    auth: { hmacSecret: SECRET, publicKeys: [pem(rsa.publicKey, 'spki'), pem(ec.publicKey, 'spki')], insecure: false },
    apiKey: API_KEY,
    nodeId: 'test-node',
    logger: pino({ level: 'silent' }),
    limits: { maxMessageSize: 4096, commandsPerSecond: 50, commandBurst: 50, maxChannelsPerConnection: 5 },
  });
  url = `ws://127.0.0.1:${gateway.port}/connection/websocket`;
  api = `http://127.0.0.1:${gateway.port}/api`;
});

afterAll(async () => {
  await gateway.shutdown(100);
  await broker.close();
});

async function connected(user = 'alice'): Promise<RawClient> {
  const c = await RawClient.open(url);
  const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: user }) });
  expect(reply.error).toBeUndefined();
  return c;
}

function callApi(method: string, body: unknown, headers: Record<string, string> = { 'X-API-Key': API_KEY }) {
  return fetch(`${api}/${method}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function body(r: Response): Promise<any> {
  return r.json();
}

describe('connect and tokens', () => {
  it('accepts a valid HS256 token and reports the client id, ping and version', async () => {
    const c = await RawClient.open(url);
    const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: 'bob' }, 60) });
    const result = reply.connect as Record<string, unknown>;
    expect(typeof result.client).toBe('string');
    expect(result).toMatchObject({ ping: 25, pong: true, expires: true });
    expect(result.ttl).toBeGreaterThan(50);
    c.close();
  });

  it.each([
    ['RS256', async () => new SignJWT({ sub: 'r' }).setProtectedHeader({ alg: 'RS256' }).sign(await importPKCS8(pem(rsa.privateKey, 'pkcs8'), 'RS256'))],
    ['ES256', async () => new SignJWT({ sub: 'e' }).setProtectedHeader({ alg: 'ES256' }).sign(await importPKCS8(pem(ec.privateKey, 'pkcs8'), 'ES256'))],
  ])('accepts a valid %s token', async (_alg, sign) => {
    const c = await RawClient.open(url);
    const reply = await c.command('connect', { token: await sign() });
    expect(reply.error).toBeUndefined();
    c.close();
  });

  it('refuses a missing token with 101 (not insecure)', async () => {
    const c = await RawClient.open(url);
    expect((await c.command('connect', {})).error?.code).toBe(101);
    c.close();
  });

  it('refuses an expired token with 109', async () => {
    const c = await RawClient.open(url);
    expect((await c.command('connect', { token: await hmacToken(SECRET, { sub: 'x' }, -10) })).error?.code).toBe(109);
    c.close();
  });

  it.each([
    ['malformed', async () => 'not.a.jwt'],
    ['wrongly signed', async () => hmacToken('another-secret', { sub: 'x' })],
    ['signed with an unaccepted algorithm', async () => new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(SECRET))],
  ])('closes the connection with 3500 for a %s token', async (_name, token) => {
    const c = await RawClient.open(url);
    c.sendRaw(JSON.stringify({ id: 1, connect: { token: await token() } }));
    expect((await c.closed).code).toBe(3500);
  });

  it('refuses a subscription token for another channel with 3500', async () => {
    const c = await connected('alice');
    const token = await hmacToken(SECRET, { sub: 'alice', channel: 'private:other' });
    c.sendRaw(JSON.stringify({ id: 9, subscribe: { channel: 'private:mine', token } }));
    expect((await c.closed).code).toBe(3500);
  });

  it('accepts a subscription token where the namespace allows no client subscribe', async () => {
    const c = await connected('alice');
    expect((await c.command('subscribe', { channel: 'private:mine' })).error?.code).toBe(103);
    const token = await hmacToken(SECRET, { sub: 'alice', channel: 'private:mine' });
    expect((await c.command('subscribe', { channel: 'private:mine', token })).error).toBeUndefined();
    c.close();
  });
});

describe('token expiry', () => {
  it('closes a connection whose token expired with 3005, unless refresh extended it', async () => {
    const [stale, refreshed] = [await RawClient.open(url), await RawClient.open(url)];
    for (const c of [stale, refreshed]) expect((await c.command('connect', { token: await hmacToken(SECRET, { sub: 'exp' }, 2) })).error).toBeUndefined();
    const reply = await refreshed.command('refresh', { token: await hmacToken(SECRET, { sub: 'exp' }, 60) });
    expect(reply.refresh).toMatchObject({ expires: true });
    expect((await stale.closed).code).toBe(3005);
    expect((await refreshed.command('subscribe', { channel: 'still-open' })).error).toBeUndefined();
    refreshed.close();
  });

  it('refuses a refresh for another user with 3500', async () => {
    const c = await connected('alice');
    c.sendRaw(JSON.stringify({ id: 77, refresh: { token: await hmacToken(SECRET, { sub: 'mallory' }, 60) } }));
    expect((await c.closed).code).toBe(3500);
  });

  it('closes a connection whose subscription token expired with 3006, unless sub_refresh extended it', async () => {
    const [stale, refreshed] = [await connected('sam'), await connected('sam')];
    for (const c of [stale, refreshed]) {
      const token = await hmacToken(SECRET, { sub: 'sam', channel: 'private:exp' }, 2);
      expect((await c.command('subscribe', { channel: 'private:exp', token })).error).toBeUndefined();
    }
    const later = await hmacToken(SECRET, { sub: 'sam', channel: 'private:exp' }, 60);
    expect((await refreshed.command('sub_refresh', { channel: 'private:exp', token: later })).sub_refresh).toMatchObject({ expires: true });
    expect((await stale.closed).code).toBe(3006);
    expect((await refreshed.command('history', { channel: 'private:exp' })).error?.code).toBe(108);
    refreshed.close();
  });
});

describe('permissions', () => {
  it('refuses client publish with 103 where the namespace forbids it', async () => {
    const c = await connected();
    await c.command('subscribe', { channel: 'ro:news' });
    expect((await c.command('publish', { channel: 'ro:news', data: { x: 1 } })).error?.code).toBe(103);
    c.close();
  });

  it('refuses an unknown namespace with 102', async () => {
    const c = await connected();
    expect((await c.command('subscribe', { channel: 'nope:x' })).error?.code).toBe(102);
    c.close();
  });
});

describe('permission table', () => {
  type Outcome = 'ok' | { error: number } | { close: number };
  const code = async (c: RawClient, method: string, params: unknown): Promise<Outcome> => {
    const reply = await Promise.race([c.command(method, params), c.closed]);
    if (!('id' in reply)) return { close: reply.code };
    return reply.error ? { error: reply.error.code } : 'ok';
  };
  const table: [string, string, (c: RawClient) => Promise<Outcome>, Outcome][] = [
    ['anonymous subscribing where only users may', '', (c) => code(c, 'subscribe', { channel: 'anything' }), { error: 103 }],
    ['anonymous subscribing where anonymous may', '', (c) => code(c, 'subscribe', { channel: 'anonok:x' }), 'ok'],
    ['a user subscribing to its own user-limited channel', 'alice', (c) => code(c, 'subscribe', { channel: 'dm:chat#alice,bob' }), 'ok'],
    ['a wrong user subscribing to a user-limited channel', 'carol', (c) => code(c, 'subscribe', { channel: 'dm:chat#alice,bob' }), { error: 103 }],
    ['a subscription token that expired', 'alice', async (c) => code(c, 'subscribe', { channel: 'private:p', token: await hmacToken(SECRET, { sub: 'alice', channel: 'private:p' }, -5) }), { error: 109 }],
    ['a subscription token for another channel', 'alice', async (c) => code(c, 'subscribe', { channel: 'private:p', token: await hmacToken(SECRET, { sub: 'alice', channel: 'private:q' }) }), { close: 3500 }],
    ['a subscription token for another user', 'alice', async (c) => code(c, 'subscribe', { channel: 'private:p', token: await hmacToken(SECRET, { sub: 'bob', channel: 'private:p' }) }), { close: 3500 }],
    ['a valid subscription token', 'alice', async (c) => code(c, 'subscribe', { channel: 'private:p', token: await hmacToken(SECRET, { sub: 'alice', channel: 'private:p' }, 60) }), 'ok'],
    ['publishing where the namespace allows none', 'alice', async (c) => (await c.command('subscribe', { channel: 'ro:n' }), code(c, 'publish', { channel: 'ro:n', data: 1 })), { error: 103 }],
    ['publishing as a subscriber where subscribers may', 'alice', async (c) => (await c.command('subscribe', { channel: 'sub:n' }), code(c, 'publish', { channel: 'sub:n', data: 1 })), 'ok'],
    ['history without being subscribed where only subscribers may', 'alice', (c) => code(c, 'history', { channel: 'hist:h' }), { error: 103 }],
    ['history as a subscriber', 'alice', async (c) => (await c.command('subscribe', { channel: 'hist:h' }), code(c, 'history', { channel: 'hist:h', limit: 5 })), 'ok'],
    ['history for any client where clients may', 'alice', (c) => code(c, 'history', { channel: 'prescl:h', limit: 5 }), 'ok'],
    ['presence without being subscribed where only subscribers may', 'alice', (c) => code(c, 'presence', { channel: 'pres:p' }), { error: 103 }],
    ['presence as a subscriber', 'alice', async (c) => (await c.command('subscribe', { channel: 'pres:p' }), code(c, 'presence', { channel: 'pres:p' })), 'ok'],
    ['presence stats for any client where clients may', 'alice', (c) => code(c, 'presence_stats', { channel: 'prescl:p' }), 'ok'],
    ['presence where the namespace keeps none', 'alice', (c) => code(c, 'presence', { channel: 'anything' }), { error: 108 }],
  ];
  it.each(table)('%s', async (_name, user, act, expected) => {
    const c = await connected(user);
    expect(await act(c)).toEqual(expected);
    c.close();
  });

  it('subscribes the channels of the connection token, with their results in the connect reply', async () => {
    const c = await RawClient.open(url);
    const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: 'srv', channels: ['hist:server-side', 'nope:skipped'] }) });
    const subs = (reply.connect as { subs: Record<string, { epoch: string; offset: number; recoverable: boolean }> }).subs;
    expect(Object.keys(subs)).toEqual(['hist:server-side']);
    expect(subs['hist:server-side']).toMatchObject({ offset: 0, recoverable: true });
    expect((await callApi('publish', { channel: 'hist:server-side', data: 'pushed' })).status).toBe(200);
    await c.waitPush((p) => p.channel === 'hist:server-side' && p.pub !== undefined);
    expect(c.publications('hist:server-side')).toEqual([{ offset: 1, data: 'pushed' }]);
    c.close();
  });
});

describe('HTTP API', () => {
  it('publishes with the right key, in either header form', async () => {
    const c = await connected();
    await c.command('subscribe', { channel: 'hist:api' });
    const r1 = await callApi('publish', { channel: 'hist:api', data: { n: 1 } });
    expect(r1.status).toBe(200);
    expect((await body(r1)).result).toMatchObject({ offset: 1 });
    const r2 = await callApi('publish', { channel: 'hist:api', data: { n: 2 } }, { Authorization: `apikey ${API_KEY}` });
    expect((await body(r2)).result).toMatchObject({ offset: 2 });
    await c.waitPush((p) => (p.pub as { offset?: number } | undefined)?.offset === 2);
    expect(c.publications('hist:api').map((p) => p.data)).toEqual([{ n: 1 }, { n: 2 }]);
    c.close();
  });

  it.each([
    ['no key', {}],
    ['a wrong key', { 'X-API-Key': 'wrong' }],
    ['a wrong apikey authorization', { Authorization: 'apikey wrong' }],
  ])('answers 401 with %s and publishes nothing', async (_name, headers) => {
    const before = await broker.history('hist:guarded', { limit: 0 });
    const r = await callApi('publish', { channel: 'hist:guarded', data: 1 }, headers as Record<string, string>);
    expect(r.status).toBe(401);
    const after = await broker.history('hist:guarded', { limit: 0 });
    expect(after.offset).toBe(before.offset);
  });

  it.each([
    ['invalid JSON', 'publish', '{nope', 400, 107],
    ['a body that is not an object', 'publish', '[1]', 400, 107],
    ['an unknown method', 'frobnicate', '{}', 404, 104],
    ['a missing channel', 'publish', '{"data":1}', 200, 107],
    ['missing data', 'publish', '{"channel":"a"}', 200, 107],
    ['an unknown namespace', 'publish', '{"channel":"nope:a","data":1}', 200, 102],
    ['history where none is kept', 'history', '{"channel":"a"}', 200, 108],
    ['broadcast without channels', 'broadcast', '{"data":1}', 200, 107],
  ])('rejects %s', async (_name, method, requestBody, status, code) => {
    const r = await callApi(method, requestBody);
    expect(r.status).toBe(status);
    expect((await body(r)).error.code).toBe(code);
  });

  it('broadcasts to several channels and reads history', async () => {
    const r = await callApi('broadcast', { channels: ['hist:b1', 'hist:b2', 'nope:x'], data: 'hi' });
    const { responses } = (await body(r)).result;
    expect(responses[0].result.offset).toBe(1);
    expect(responses[1].result.offset).toBe(1);
    expect(responses[2].error.code).toBe(102);
    const h = await body(await callApi('history', { channel: 'hist:b1', limit: 10 }));
    expect(h.result.publications).toEqual([{ offset: 1, data: 'hi' }]);
  });
});

describe('bad input', () => {
  type Outcome = { error: number } | { close: number };

  const table: { name: string; outcome: Outcome; connect: boolean; act: (c: RawClient) => Promise<Outcome> }[] = [
    { name: 'invalid JSON', outcome: { close: 3501 }, connect: true, act: async (c) => (c.sendRaw('{"id":1,'), { close: (await c.closed).code }) },
    { name: 'a binary frame', outcome: { close: 3501 }, connect: true, act: async (c) => (c.sendRaw(Buffer.from('{"id":1,"connect":{}}'), true), { close: (await c.closed).code }) },
    { name: 'a frame over the size limit', outcome: { close: 1009 }, connect: true, act: async (c) => (c.sendRaw(JSON.stringify({ id: 5, publish: { channel: 'a', data: 'x'.repeat(10000) } })), { close: (await c.closed).code }) },
    { name: 'an unknown method', outcome: { error: 104 }, connect: true, act: async (c) => ({ error: (await c.command('frobnicate', {})).error?.code ?? 0 }) },
    { name: 'a command without id', outcome: { close: 3501 }, connect: true, act: async (c) => (c.sendRaw('{"subscribe":{"channel":"a"}}'), { close: (await c.closed).code }) },
    { name: 'a command before connect', outcome: { close: 3501 }, connect: false, act: async (c) => (c.sendRaw('{"id":1,"subscribe":{"channel":"a"}}'), { close: (await c.closed).code }) },
    { name: 'a second connect', outcome: { close: 3501 }, connect: true, act: async (c) => (c.sendRaw('{"id":50,"connect":{}}'), { close: (await c.closed).code }) },
    { name: 'subscribing twice', outcome: { error: 105 }, connect: true, act: async (c) => (await c.command('subscribe', { channel: 'twice' }), { error: (await c.command('subscribe', { channel: 'twice' })).error?.code ?? 0 }) },
    { name: 'publishing to an unsubscribed channel', outcome: { error: 103 }, connect: true, act: async (c) => ({ error: (await c.command('publish', { channel: 'sub:x', data: 1 })).error?.code ?? 0 }) },
    { name: 'a huge channel name', outcome: { error: 107 }, connect: true, act: async (c) => ({ error: (await c.command('subscribe', { channel: 'x'.repeat(300) })).error?.code ?? 0 }) },
    { name: 'too many channels', outcome: { error: 106 }, connect: true, act: async (c) => {
      for (let i = 0; i < 5; i++) await c.command('subscribe', { channel: `many${i}` });
      return { error: (await c.command('subscribe', { channel: 'many5' })).error?.code ?? 0 };
    } },
    { name: 'a bad field type', outcome: { error: 107 }, connect: true, act: async (c) => ({ error: (await c.command('subscribe', { channel: 7 })).error?.code ?? 0 }) },
    { name: 'a flood of commands', outcome: { close: 3013 }, connect: true, act: async (c) => {
      for (let i = 0; i < 400; i++) c.sendRaw(JSON.stringify({ id: 100 + i, presence_stats: { channel: 'a' } }));
      return { close: (await c.closed).code };
    } },
  ];

  it.each(table.map((t) => [t.name, t] as const))('%s', async (_name, t) => {
    const bystander = await connected('bystander');
    await bystander.command('subscribe', { channel: 'calm' });
    const c = t.connect ? await connected() : await RawClient.open(url);
    const outcome = await t.act(c);
    expect(outcome).toEqual(t.outcome);
    c.close();
    // The rest of the gateway is unaffected.
    const r = await callApi('publish', { channel: 'calm', data: { still: 'here' } });
    expect(r.status).toBe(200);
    await bystander.waitPush((p) => p.channel === 'calm' && p.pub !== undefined);
    expect((await fetch(`http://127.0.0.1:${gateway.port}/healthz`)).status).toBe(200);
    bystander.close();
  });
});

describe('random commands', () => {
  it('get an answer each, none of them an internal error, and the gateway stays up', async () => {
    const methodNames = ['subscribe', 'unsubscribe', 'publish', 'presence', 'presence_stats', 'history', 'rpc', 'refresh', 'sub_refresh', 'send'];
    const fields = fc.dictionary(
      fc.constantFrom('channel', 'data', 'token', 'recover', 'epoch', 'offset', 'limit', 'since', 'reverse', 'method', 'positioned', 'recoverable', 'join_leave', 'flag'),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('hist:fuzz', 'pres:fuzz', 'doc', 'a'.repeat(300), '', 'nope:x', 'dm:x#alice')),
    );
    const commands = fc.sample(fc.record({ method: fc.constantFrom(...methodNames), params: fields }), { numRuns: 200, seed: 42 });
    let c = await connected('fuzzer');
    const codes: number[] = [];
    const closes: number[] = [];
    let answered = 0;
    for (const { method, params } of commands) {
      if (method === 'send') {
        c.sendRaw(JSON.stringify({ send: params }));
        continue;
      }
      const reply = await Promise.race([c.command(method, params), c.closed]);
      if (!('id' in reply)) {
        // Closed with a documented code (a bad token, say): carry on with a new connection.
        closes.push(reply.code);
        c = await connected('fuzzer');
        continue;
      }
      answered++;
      if (reply.error) codes.push(reply.error.code);
      // Stay under the command rate limit: this test is about the commands, not about flooding.
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(answered).toBeGreaterThan(160);
    expect(codes).not.toContain(100);
    expect(closes.every((code) => [3500, 3501].includes(code))).toBe(true);
    c.close();
    expect((await fetch(`http://127.0.0.1:${gateway.port}/healthz`)).status).toBe(200);
    const fresh = await connected('after-fuzz');
    expect((await fresh.command('subscribe', { channel: 'after-fuzz' })).error).toBeUndefined();
    fresh.close();
  });
});

describe('centrifuge SDK', () => {
  it('connects, subscribes, publishes and receives in order with offsets', async () => {
    const client = new Centrifuge(url, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'sdk' }) });
    const received: { data: unknown; offset?: number }[] = [];
    const sub = client.newSubscription('hist:sdk', { recoverable: true });
    sub.on('publication', (ctx) => received.push({ data: ctx.data, offset: ctx.offset }));
    const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    client.connect();
    await subscribed;
    for (let i = 1; i <= 3; i++) await sub.publish({ i });
    await new Promise<void>((resolve) => {
      const check = () => (received.length >= 3 ? resolve() : setTimeout(check, 10));
      check();
    });
    expect(received).toEqual([1, 2, 3].map((i) => ({ data: { i }, offset: i })));
    const hist = await sub.history({ limit: 10 });
    expect(hist.publications.map((p) => p.data)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
    client.disconnect();
  });
});
