// The attack table: hostile input against two gateway processes on a private Redis, one row per case with the
// exact answer expected, then a healthy SDK client on each gateway. Rows marked "uWS" record what the WebSocket
// layer does and this project cannot change (see docs/reliability.md).
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT, importPKCS8, exportJWK } from 'jose';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import {
  freePort,
  hmacToken,
  httpBodies,
  httpRequest,
  httpStatuses,
  RawClient,
  rawExchange,
  serverFrames,
  startRedis,
  startSwitchboard,
  upgradeRequest,
  waitFor,
  wsFrame,
  type RedisServer,
  type SwitchboardProcess,
} from '@switchboard/testkit';

const SECRET = 'attack-secret';
const API_KEY = 'attack-key';
const ADMIN_PASSWORD = 'attack-admin-password';
const MAX_MESSAGE = 65536;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });

interface Gw {
  proc: SwitchboardProcess;
  internalPort: number;
}

let redis: RedisServer;
let gws: Gw[];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-attack-'));
  const config = path.join(dir, 'config.yaml');
  const keyFile = path.join(dir, 'rsa.pem');
  writeFileSync(keyFile, rsaPublicPem);
  writeFileSync(
    config,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '    allow_publish_for_client: true',
      '  namespaces:',
      '    - name: chat',
      '      allow_subscribe_for_client: true',
      '      allow_publish_for_client: true',
      '      history_size: 100',
      '      history_ttl: 300s',
      '    - name: private',
      '      history_size: 10',
      '      history_ttl: 300s',
      '    - name: dm',
      '      allow_user_limited_channels: true',
    ].join('\n'),
  );
  gws = await Promise.all(
    [0, 1].map(async () => {
      const internalPort = await freePort();
      const args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--token-public-key', keyFile];
      args.push('--api-key', API_KEY, '--internal-port', String(internalPort), '--log-level', 'error');
      args.push('--admin', '--admin-password', ADMIN_PASSWORD, '--admin-secret', 'attack-admin-secret');
      return { proc: await startSwitchboard('gateway', args), internalPort };
    }),
  );
}, 30000);

afterAll(async () => {
  await Promise.all((gws ?? []).map((g) => g.proc.stop()));
  await redis?.stop();
});

const A = (): Gw => gws[0];
const tokenFor = (user: string, claims: Record<string, unknown> = {}) => hmacToken(SECRET, { sub: user, ...claims }, 300);

/** What a client saw: 'ok', a reply error code, or the close code that ended the connection. */
type Outcome = 'ok' | { error: number } | { close: number };

async function outcomeOf(client: RawClient, reply: Promise<{ error?: { code: number } }>): Promise<Outcome> {
  const r = await Promise.race([reply.then((x) => ({ reply: x })), client.closed.then((c) => ({ closed: c }))]);
  if ('closed' in r) return { close: r.closed.code };
  return r.reply.error ? { error: r.reply.error.code } : 'ok';
}

async function connectWith(token: string | undefined, g: Gw = A()): Promise<Outcome> {
  const client = await RawClient.open(g.proc.wsUrl);
  try {
    return await outcomeOf(client, client.command('connect', token === undefined ? {} : { token }));
  } finally {
    client.close();
  }
}

async function connected(user = 'u1', g: Gw = A()): Promise<RawClient> {
  const client = await RawClient.open(g.proc.wsUrl);
  const r = await client.command('connect', { token: await tokenFor(user) });
  if (r.error) throw new Error(`connect failed: ${JSON.stringify(r.error)}`);
  return client;
}

async function asUser(user: string, method: string, params: unknown): Promise<Outcome> {
  const client = await connected(user);
  try {
    return await outcomeOf(client, client.command(method, params));
  } finally {
    client.close();
  }
}

async function asUserRaw(method: string, paramsJson: string): Promise<Outcome> {
  const client = await connected();
  try {
    return await outcomeOf(client, client.commandText(method, paramsJson));
  } finally {
    client.close();
  }
}

/** A raw WebSocket: the upgrade, then `frames` one write each; the server's close code, 'reset', or 'open'. */
async function framesOutcome(frames: Buffer[], waitMs = 1500): Promise<{ close: number | 'reset' | 'open'; texts: string[] }> {
  const ex = await rawExchange(A().proc.port, [upgradeRequest(), ...frames], { gapMs: 50, waitMs });
  const parsed = serverFrames(ex.data);
  return { close: parsed.closeCode ?? (ex.closed ? 'reset' : 'open'), texts: parsed.texts };
}

const connectFrame = async (id = 1) => wsFrame(1, JSON.stringify({ id, connect: { token: await tokenFor('u1') } }));

async function http(port: number, request: string | string[], waitMs = 2000): Promise<{ statuses: number[]; bodies: string[]; closed: boolean }> {
  const ex = await rawExchange(port, Array.isArray(request) ? [request.join('')] : [request], { waitMs });
  return { statuses: httpStatuses(ex.data), bodies: httpBodies(ex.data), closed: ex.closed };
}

const apiHeaders = { 'X-API-Key': API_KEY, 'Content-Type': 'application/json', Connection: 'keep-alive' };
const publishRequest = (channel: string, data: unknown, headers: Record<string, string> = apiHeaders) =>
  httpRequest('POST', '/api/publish', headers, JSON.stringify({ channel, data }));

async function api(method: string, body: unknown, port = A().internalPort): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

async function topOffset(channel: string): Promise<number> {
  const r = await api('history', { channel, limit: 0 });
  return r.json.result.offset as number;
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** An HS256 token with any header, signed with the server's secret (jose refuses to sign some of these). */
function hs256Raw(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('tokens', () => {
  it.each<[string, () => Promise<string | undefined>, Outcome]>([
    ['a valid HS256 token', () => tokenFor('u1'), 'ok'],
    ['a valid RS256 token', async () => new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'RS256' }).sign(await importPKCS8(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256')), 'ok'],
    ['no token (not insecure)', async () => undefined, { error: 101 }],
    ['alg none', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'u1' })}.`, { close: 3500 }],
    ['alg None, signature kept', async () => `${b64url({ alg: 'None' })}.${b64url({ sub: 'u1' })}.c2ln`, { close: 3500 }],
    ['HS256 signed with the RSA public key (algorithm confusion)', () => new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(rsaPublicPem)), { close: 3500 }],
    [
      'RS256 with an embedded jwk of the attacker',
      async () =>
        new SignJWT({ sub: 'u1' })
          .setProtectedHeader({ alg: 'RS256', jwk: await exportJWK(attacker.publicKey) })
          .sign(await importPKCS8(attacker.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256')),
      { close: 3500 },
    ],
    ['a crit header the server does not know', async () => hs256Raw({ alg: 'HS256', crit: ['x-must'], 'x-must': 1 }, { sub: 'u1' }), { close: 3500 }],
    ['signed with another secret', () => hmacToken('not-the-secret', { sub: 'u1' }), { close: 3500 }],
    ['garbage', async () => 'not.a.token', { close: 3500 }],
    ['50 KB of garbage', async () => 'x'.repeat(50000), { close: 3500 }],
    ['"sub" that is not a string', () => hmacToken(SECRET, { sub: 42 }), { close: 3500 }],
    ['expired', () => hmacToken(SECRET, { sub: 'u1' }, -60), { error: 109 }],
    ['not valid yet (nbf in the future): refreshable, like Centrifugo', () => hmacToken(SECRET, { sub: 'u1', nbf: Math.floor(Date.now() / 1000) + 600 }), { error: 109 }],
  ])('connect with %s', async (_name, token, expected) => {
    expect(await connectWith(await token())).toEqual(expected);
  });

  it.each<[string, () => Promise<Record<string, unknown>>, Outcome]>([
    ['no subscription token on a private channel', async () => ({ channel: 'private:room' }), { error: 103 }],
    ['a subscription token for the channel', async () => ({ channel: 'private:room', token: await hmacToken(SECRET, { sub: 'u1', channel: 'private:room' }, 300) }), 'ok'],
    ['a subscription token for another channel', async () => ({ channel: 'private:room', token: await hmacToken(SECRET, { sub: 'u1', channel: 'private:other' }, 300) }), { close: 3500 }],
    ['a subscription token for another user', async () => ({ channel: 'private:room', token: await hmacToken(SECRET, { sub: 'u2', channel: 'private:room' }, 300) }), { close: 3500 }],
    ['an expired subscription token', async () => ({ channel: 'private:room', token: await hmacToken(SECRET, { sub: 'u1', channel: 'private:room' }, -5) }), { error: 109 }],
    ['a user-limited channel of another user', async () => ({ channel: 'dm:x#u2,u3' }), { error: 103 }],
    ['a user-limited channel that lists the user', async () => ({ channel: 'dm:x#u2,u1' }), 'ok'],
  ])('subscribe with %s', async (_name, params, expected) => {
    expect(await asUser('u1', 'subscribe', await params())).toEqual(expected);
  });
});

describe('frames', () => {
  it('a frame of exactly --max-message-size is read (not 1009)', async () => {
    const cmd = JSON.stringify({ id: 1, connect: { token: await tokenFor('u1'), data: '' } });
    const padded = cmd.replace('"data":""', `"data":"${'x'.repeat(MAX_MESSAGE - cmd.length)}"`);
    expect(Buffer.byteLength(padded)).toBe(MAX_MESSAGE);
    const r = await framesOutcome([wsFrame(1, padded)]);
    expect(r.close).toBe('open');
    expect(JSON.parse(r.texts[0]).connect.client).toEqual(expect.any(String));
  });

  it.each<[string, number]>([
    ['one byte over the limit', MAX_MESSAGE + 1],
    ['300 KB (over the old 256 KiB ceiling)', 300 * 1024],
    ['1 MiB', 1024 * 1024],
  ])('%s is closed with 1009', async (_name, size) => {
    expect((await framesOutcome([wsFrame(1, Buffer.alloc(size, 0x20))])).close).toBe(1009);
  });

  it('uWS: a frame over its 1 MiB buffer ceiling is cut without a close frame, before the payload is read', async () => {
    // Only the header is sent: uWS refuses the declared length at once and never buffers the payload.
    expect((await framesOutcome([wsFrame(1, Buffer.alloc(16), { declaredLength: 64 * 1024 * 1024 })])).close).toBe('reset');
  });

  it('uWS: invalid UTF-8 in a text frame ends the connection without a close frame (1007 not sent)', async () => {
    expect((await framesOutcome([await connectFrame(), wsFrame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))])).close).toBe('reset');
  });

  it('uWS: an unmasked client frame is never executed, and the connect deadline closes the connection (3502)', async () => {
    const r = await framesOutcome([wsFrame(1, JSON.stringify({ id: 1, connect: { token: await tokenFor('u1') } }), { mask: false })], 12000);
    expect(r.texts).toEqual([]);
    expect(r.close).toBe(3502);
  }, 20000);

  it('a fragmented text message is reassembled and executed', async () => {
    const text = JSON.stringify({ id: 1, connect: { token: await tokenFor('u1') } });
    const r = await framesOutcome([wsFrame(1, text.slice(0, 10), { fin: false }), wsFrame(0, text.slice(10, 20), { fin: false }), wsFrame(0, text.slice(20))]);
    expect(JSON.parse(r.texts[0]).id).toBe(1);
  });

  it('a binary frame is closed with 3501', async () => {
    expect((await framesOutcome([wsFrame(2, Buffer.from([1, 2, 3]))])).close).toBe(3501);
  });

  it.each<[string, string, Outcome]>([
    ['5000-deep array data (fix: was error 100)', `{"channel":"chat:deep","data":${deep(5000)}}`, { error: 107 }],
    ['data nested 62 levels (inside the limit with the envelope)', `{"channel":"chat:deep","data":${deep(61)}}`, 'ok'],
    ['data nested 100 levels', `{"channel":"chat:deep","data":${deep(100)}}`, { error: 107 }],
    ['data with 5000 keys', `{"channel":"chat:keys","data":{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(',')}}}`, 'ok'],
    ['a __proto__ key in data', '{"channel":"chat:proto","data":{"__proto__":{"admin":true}}}', 'ok'],
  ])('publish %s', async (_name, params, expected) => {
    expect(await asUserRaw('publish', params)).toEqual(expected);
  });

  it.each<[string, string, number]>([
    ['a negative id', '{"id":-1,"connect":{}}', 3501],
    ['a fractional id', '{"id":1.5,"connect":{}}', 3501],
    ['a string id', '{"id":"1","connect":{}}', 3501],
    ['an id past 2^53', '{"id":9007199254740993,"connect":{}}', 3501],
    ['not JSON', '{"id":1,', 3501],
    ['a JSON array', '[1,2]', 3501],
    ['no id', '{"publish":{"channel":"chat:x","data":1}}', 3501],
  ])('a command with %s is closed with %d', async (_name, text, code) => {
    expect((await framesOutcome([wsFrame(1, text)])).close).toBe(code);
  });
});

describe('channel names', () => {
  it.each<[string, string, Outcome]>([
    ['a NUL character', 'chat:a\u0000b', { error: 107 }],
    ['a newline', 'chat:a\nb', { error: 107 }],
    ['DEL', 'chat:a\u007f', { error: 107 }],
    ['a lone high surrogate (fix: aliased chat:\\ufffd)', 'chat:\ud800', { error: 107 }],
    ['a lone low surrogate', 'chat:x\udc00', { error: 107 }],
    ['a reversed surrogate pair', 'chat:\udc00\ud800', { error: 107 }],
    ['a real astral character', 'chat:\u{1F600}', 'ok'],
    ['U+FFFD itself', 'chat:\ufffd', 'ok'],
    ['hash-tag characters', 'chat:{x}}{', 'ok'],
    ['a leading } (it would empty the Redis Cluster hash tag)', '}x', { error: 107 }],
    ['glob characters', 'chat:*?[a]', 'ok'],
    ['256 characters', 'chat:' + 'x'.repeat(251), { error: 107 }],
    ['255 characters', 'chat:' + 'x'.repeat(250), 'ok'],
    ['a __proto__ namespace', '__proto__:x', { error: 102 }],
    ['a constructor namespace', 'constructor:x', { error: 102 }],
    ['an empty name', '', { error: 107 }],
  ])('subscribe to a name with %s', async (_name, channel, expected) => {
    expect(await asUser('u1', 'subscribe', { channel })).toEqual(expected);
  });

  it('a lone surrogate is refused by the API too, and chat:\\ufffd keeps its own stream', async () => {
    const before = await topOffset('chat:\ufffd');
    const r = await api('publish', { channel: 'chat:\ud800', data: 1 });
    expect(r.json.error).toEqual({ code: 107, message: expect.stringContaining('well-formed') });
    expect(await topOffset('chat:\ufffd')).toBe(before);
  });

  it('a lone surrogate subscriber and a U+FFFD subscriber cannot alias one another', async () => {
    const replacement = await connected('u1');
    expect((await replacement.command('subscribe', { channel: 'chat:\ufffd' })).error).toBeUndefined();
    expect(await asUser('u2', 'subscribe', { channel: 'chat:\ud800' })).toEqual({ error: 107 });
    expect(await asUser('u2', 'publish', { channel: 'chat:\ud800', data: 'evil' })).toEqual({ error: 107 });
    await api('publish', { channel: 'chat:\ufffd', data: 'mine' });
    await replacement.waitPush((p) => p.channel === 'chat:\ufffd' && !!p.pub);
    expect(replacement.publications('chat:\ufffd').map((p) => p.data)).toEqual(['mine']);
    replacement.close();
  });
});

describe('HTTP API', () => {
  const ports = () => ({ main: A().proc.port, internal: A().internalPort });

  it.each<[string, 'main' | 'internal', () => string, number[]]>([
    ['no API key', 'main', () => publishRequest('chat:h', 1, { 'Content-Type': 'application/json' }), [401]],
    ['a wrong API key', 'main', () => publishRequest('chat:h', 1, { 'X-API-Key': 'wrong' }), [401]],
    ['a key one byte longer', 'internal', () => publishRequest('chat:h', 1, { 'X-API-Key': API_KEY + 'x' }), [401]],
    ['Authorization: apikey', 'main', () => publishRequest('chat:h', 1, { Authorization: `apikey ${API_KEY}` }), [200]],
    ['a body over 1 MiB', 'main', () => publishRequest('chat:h', 'x'.repeat(1024 * 1024)), [413]],
    ['a body over 1 MiB (internal port)', 'internal', () => publishRequest('chat:h', 'x'.repeat(1024 * 1024)), [413]],
    ['a chunked body', 'main', () => httpRequest('POST', '/api/publish', { ...apiHeaders, 'Transfer-Encoding': 'chunked' }, '13\r\n{"channel":"chat:h"\r\nA\r\n,"data":1}\r\n0\r\n\r\n'), [200]],
    ['a chunked body (internal port)', 'internal', () => httpRequest('POST', '/api/publish', { ...apiHeaders, 'Transfer-Encoding': 'chunked' }, '13\r\n{"channel":"chat:h"\r\nA\r\n,"data":1}\r\n0\r\n\r\n'), [200]],
    ['Content-Length and Transfer-Encoding together (smuggling, internal port)', 'internal', () => httpRequest('POST', '/api/publish', { ...apiHeaders, 'Content-Length': '4', 'Transfer-Encoding': 'chunked' }, '0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n'), [400]],
    ['two Content-Length headers (internal port)', 'internal', () => `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}`, [400]],
    ['a path with ..', 'main', () => httpRequest('POST', '/api/../api/publish', apiHeaders, '{}'), [404]],
    ['an unknown method', 'main', () => httpRequest('POST', '/api/drop_everything', apiHeaders, '{}'), [404]],
    ['GET on an API method', 'main', () => httpRequest('GET', '/api/publish', apiHeaders), [404]],
    ['DELETE /', 'main', () => httpRequest('DELETE', '/', {}), [404]],
    ['a body that is not JSON', 'main', () => httpRequest('POST', '/api/publish', apiHeaders, '{"channel":'), [400]],
    ['a JSON array body', 'main', () => httpRequest('POST', '/api/publish', apiHeaders, '[1]'), [400]],
    ['a 5000-deep body (fix: was error 100)', 'main', () => httpRequest('POST', '/api/publish', apiHeaders, `{"channel":"chat:h","data":${deep(5000)}}`), [400]],
    ['a 5000-deep body (internal port)', 'internal', () => httpRequest('POST', '/api/publish', apiHeaders, `{"channel":"chat:h","data":${deep(5000)}}`), [400]],
    ['headers over 16 KB (internal port)', 'internal', () => httpRequest('GET', '/healthz', { 'X-Junk': 'x'.repeat(20000) }), [431]],
    ['two pipelined GET /healthz', 'main', () => httpRequest('GET', '/healthz', {}) + httpRequest('GET', '/healthz', {}), [200, 200]],
  ])('%s (%s port)', async (_name, which, request, statuses) => {
    expect((await http(ports()[which], request())).statuses).toEqual(statuses);
  });

  it('a deep body is refused with 107 naming the limit', async () => {
    const r = await http(A().internalPort, httpRequest('POST', '/api/publish', apiHeaders, `{"channel":"chat:h","data":${deep(5000)}}`));
    expect(JSON.parse(r.bodies[0])).toEqual({ error: { code: 107, message: expect.stringContaining('deeper than 64 levels') } });
  });

  it('fix: 32 pipelined publishes on the internal port are all answered, in order, each carried out once', async () => {
    const channel = 'chat:pipelined';
    const before = await topOffset(channel);
    const requests = Array.from({ length: 32 }, (_, i) => publishRequest(channel, { i }));
    const r = await http(A().internalPort, requests, 3000);
    expect(r.statuses).toEqual(requests.map(() => 200));
    expect(r.bodies.map((b) => JSON.parse(b).result.offset)).toEqual(requests.map((_, i) => before + i + 1));
    expect(await topOffset(channel)).toBe(before + 32);
    const history = await api('history', { channel, limit: -1 });
    expect(history.json.result.publications.slice(-32).map((p: { data: { i: number } }) => p.data.i)).toEqual(requests.map((_, i) => i));
  });

  it('fix: pipelined publishes cut by uWS on the main port are not carried out (a retry cannot write twice)', async () => {
    const channel = 'chat:pipelined-main';
    const before = await topOffset(channel);
    const r = await http(A().proc.port, [publishRequest(channel, 1), publishRequest(channel, 2)]);
    expect(r.closed).toBe(true);
    expect(r.statuses).toEqual([]);
    // The gateway counts what it refused; nothing reached the channel.
    await waitFor(async () => (await (await fetch(`${A().proc.url}/metrics`)).text()).includes('switchboard_api_pipeline_refused_total 1'), { timeoutMs: 3000, message: 'refusal counted' });
    expect(await topOffset(channel)).toBe(before);
  });

  it('fix: pipelined console API calls cut by uWS are not carried out either', async () => {
    const channel = 'chat:pipelined-console';
    const login = await fetch(`${A().proc.url}/console/login`, { method: 'POST', body: JSON.stringify({ password: ADMIN_PASSWORD }) });
    const { token } = (await login.json()) as { token: string };
    const before = await topOffset(channel);
    const call = (n: number) => httpRequest('POST', '/console/api/publish', { Authorization: `Bearer ${token}` }, JSON.stringify({ channel, data: n }));
    const metric = async () => Number(/switchboard_api_pipeline_refused_total (\d+)/.exec(await (await fetch(`${A().proc.url}/metrics`)).text())?.[1] ?? 0);
    const refusedBefore = await metric();
    const r = await http(A().proc.port, [call(1), call(2)]);
    expect(r.closed).toBe(true);
    expect(r.statuses).toEqual([]);
    await waitFor(async () => (await metric()) === refusedBefore + 1, { timeoutMs: 3000, message: 'refusal counted' });
    expect(await topOffset(channel)).toBe(before);
    // One call at a time still works.
    expect((await http(A().proc.port, call(3))).statuses).toEqual([200]);
    expect(await topOffset(channel)).toBe(before + 1);
  });

  it('fix: a backtracking pattern answers at once, and the gateway keeps serving', async () => {
    const client = await connected('u1');
    const channel = 'chat:' + 'a'.repeat(120);
    expect((await client.command('subscribe', { channel })).error).toBeUndefined();
    const started = Date.now();
    const r = await api('channels', { pattern: 'chat:*a*a*a*a*a*a*a*a*a*a*a*a*b' }, A().proc.port);
    expect(r.json.result.channels).toEqual({});
    expect(Date.now() - started).toBeLessThan(2000);
    const match = await api('channels', { pattern: 'chat:*a*a' }, A().proc.port);
    expect(match.json.result.channels[channel]).toEqual({ num_clients: 1 });
    expect((await fetch(`${A().proc.url}/healthz`)).status).toBe(200);
    client.close();
  });

  it('a pattern longer than 1024 characters is refused with 107', async () => {
    expect((await api('channels', { pattern: '*'.repeat(1025) })).json.error.code).toBe(107);
  });

  it('slowloris: a request whose headers never end does not stop the gateway serving others', async () => {
    const slow = rawExchange(A().proc.port, ['POST /api/publish HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n'], { gapMs: 300, waitMs: 1500 });
    const slowInternal = rawExchange(A().internalPort, ['POST /api/publish HTTP/1.1\r\n', 'Host: x\r\n'], { gapMs: 300, waitMs: 1500 });
    expect((await api('info', {})).status).toBe(200);
    expect((await api('info', {}, A().proc.port)).status).toBe(200);
    await Promise.all([slow, slowInternal]);
  });
});

describe('upgrades', () => {
  it.each<[string, string, number]>([
    ['no Sec-WebSocket-Key (fix: was 404)', upgradeRequest('/connection/websocket', { 'Sec-WebSocket-Key': '' }).replace('Sec-WebSocket-Key: \r\n', ''), 400],
    ['a short Sec-WebSocket-Key', upgradeRequest('/connection/websocket', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }), 400],
    ['a 24-character key that is not base64 of 16 bytes', upgradeRequest('/connection/websocket', { 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' }), 400],
    ['Sec-WebSocket-Version: 8 (fix: was upgraded)', upgradeRequest('/connection/websocket', { 'Sec-WebSocket-Version': '8' }), 426],
    ['no Upgrade header', httpRequest('GET', '/connection/websocket', {}), 400],
    ['an unknown path', upgradeRequest('/connection/other'), 404],
    ['a valid upgrade', upgradeRequest(), 101],
  ])('%s: %d', async (_name, request, status) => {
    const r = await rawExchange(A().proc.port, [request], { waitMs: 1000, until: (d) => d.includes('\r\n\r\n') });
    expect(httpStatuses(r.data)[0]).toBe(status);
    if (status === 426) expect(r.data.toString()).toMatch(/\r\nSec-WebSocket-Version: 13\r\n/i);
  });
});

describe('resource limits', () => {
  it('subscribing past the per-connection channel limit is refused with 106', async () => {
    const client = await connected('u-limit');
    const replies = await Promise.all(Array.from({ length: 129 }, (_, i) => client.command('subscribe', { channel: `chat:limit-${i}` })));
    expect(replies.filter((r) => r.error?.code === 106)).toHaveLength(1);
    client.close();
  });

  it('a flood of 1000 commands in one frame is cut off with 3013', async () => {
    const client = await connected('u-flood');
    const frame = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: i + 10, publish: { channel: 'chat:flood', data: i } })).join('\n');
    client.sendRaw(frame);
    expect((await client.closed).code).toBe(3013);
  });
});

it('after the table: every gateway still serves a real SDK client end to end, and none has exited', async () => {
  for (const g of gws) {
    const client = new Centrifuge(g.proc.wsUrl, { websocket: WebSocket, token: await tokenFor('healthy') });
    const sub = client.newSubscription('chat:after-the-table');
    const got = new Promise<unknown>((resolve) => sub.on('publication', (ctx) => resolve(ctx.data)));
    const subscribed = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
    sub.subscribe();
    client.connect();
    await subscribed;
    await api('publish', { channel: 'chat:after-the-table', data: { ok: g.proc.port } }, g.internalPort);
    expect(await got).toEqual({ ok: g.proc.port });
    client.disconnect();
    expect((await fetch(`${g.proc.url}/healthz`)).status).toBe(200);
  }
}, 20000);
