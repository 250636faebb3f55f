// Every server API method README lists, driven through cent.js (Centrifugo's JavaScript HTTP API client) against two
// gateways on a private Redis, with centrifuge SDK clients watching what each call does to their connections.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge, type ServerPublicationContext, type ServerSubscribedContext } from 'centrifuge';
import { CentClient, CentException } from 'cent.js';
import { hmacToken, RawClient, startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';
import { API_FIELDS } from './http_api';

const SECRET = 'server-api-secret';
const API_KEY = 'server-api-key';

let redis: RedisServer;
let a: SwitchboardProcess;
let b: SwitchboardProcess;
let centA: CentClient;
let centB: CentClient;
let args: string[];
const sdkClients: Centrifuge[] = [];
const rawClients: RawClient[] = [];

// cent.js turns an error reply into `new CentException(error)`, whose message is "[object Object]": the code and
// message are lost. The test keeps every reply body cent.js read, to look at the error it was given.
const bodies: unknown[] = [];
const realFetch = globalThis.fetch;

beforeAll(async () => {
  globalThis.fetch = async (input, init) => {
    const response = await realFetch(input, init);
    bodies.push(await response.clone().json().catch(() => undefined));
    return response;
  };
  redis = await startRedis();
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-server-api-')), 'config.yaml');
  writeFileSync(
    config,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '  namespaces:',
      '    - name: room',
      '      allow_subscribe_for_client: true',
      '      presence: true',
      '      join_leave: true',
      '      history_size: 100',
      '      history_ttl: 300s',
      '      force_recovery: true',
      '    - name: feed',
      '      allow_subscribe_for_client: true',
      '      history_size: 100',
      '      history_ttl: 300s',
    ].join('\n'),
  );
  args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn'];
  [a, b] = await Promise.all([
    startSwitchboard('gateway', [...args, '--node-name', 'gw-a']),
    startSwitchboard('gateway', [...args, '--node-name', 'gw-b']),
  ]);
  centA = new CentClient({ url: `${a.url}/api`, apiKey: API_KEY });
  centB = new CentClient({ url: `${b.url}/api`, apiKey: API_KEY });
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  for (const c of sdkClients) c.disconnect();
  for (const c of rawClients) c.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.stop();
});

/** Calls any method through cent.js's own request path: cent.js 6.1 has no `batch`, and types few fields. */
function cent(client: CentClient, method: string, params: object): Promise<any> {
  return (client as unknown as { methodFactory(m: string): (p: object) => Promise<unknown> }).methodFactory(method)(params);
}

/** The error of a call cent.js rejected (see `bodies`). */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  await expect(call).rejects.toBeInstanceOf(CentException);
  return (bodies[bodies.length - 1] as { error: { code: number; message: string } }).error;
}

/** An SDK client and what it saw of its server-side subscriptions and of its connection. */
interface Watched {
  client: Centrifuge;
  id: string;
  subscribed: ServerSubscribedContext[];
  publications: ServerPublicationContext[];
  unsubscribed: string[];
  /** Codes of the closes the SDK reported ('connecting' after a reconnectable one, 'disconnected' otherwise). */
  closes: number[];
}

async function sdk(gateway: SwitchboardProcess, user: string): Promise<Watched> {
  const client = new Centrifuge(gateway.wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: user }), minReconnectDelay: 60000 });
  sdkClients.push(client);
  const w: Watched = { client, id: '', subscribed: [], publications: [], unsubscribed: [], closes: [] };
  client.on('subscribed', (ctx) => w.subscribed.push(ctx));
  client.on('publication', (ctx) => w.publications.push(ctx));
  client.on('unsubscribed', (ctx) => w.unsubscribed.push(ctx.channel));
  client.on('connecting', (ctx) => {
    if (ctx.code >= 3000) w.closes.push(ctx.code);
  });
  client.on('disconnected', (ctx) => w.closes.push(ctx.code));
  const connected = new Promise<string>((resolve) => client.once('connected', (ctx) => resolve(ctx.client)));
  client.connect();
  w.id = await connected;
  return w;
}

async function raw(gateway: SwitchboardProcess, user: string): Promise<RawClient> {
  const c = await RawClient.open(gateway.wsUrl);
  rawClients.push(c);
  const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: user }) });
  expect(reply.error).toBeUndefined();
  return c;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('publish and broadcast through cent.js', () => {
  it('publish reaches a subscriber on the other gateway, with its tags in the SDK publication context', async () => {
    const w = await sdk(b, 'pat');
    await cent(centA, 'subscribe', { user: 'pat', channel: 'room:tags' });
    await waitFor(() => w.subscribed.some((s) => s.channel === 'room:tags'), { message: 'server-side subscription' });
    const result = await centA.publish({ channel: 'room:tags', data: { text: 'hi' }, tags: { kind: 'greeting', lang: 'en' } });
    expect(result).toEqual({ offset: 1, epoch: expect.any(String) });
    await waitFor(() => w.publications.length === 1, { message: 'publication' });
    expect(w.publications[0]).toMatchObject({ channel: 'room:tags', data: { text: 'hi' }, offset: 1, tags: { kind: 'greeting', lang: 'en' } });
    // History keeps the tags too.
    const history = await centB.getHistory({ channel: 'room:tags', limit: 10 });
    expect(history.publications).toEqual([{ data: { text: 'hi' }, offset: 1, tags: { kind: 'greeting', lang: 'en' } }]);
  });

  it('broadcast answers per channel, in order', async () => {
    const result = await centB.broadcast({ channels: ['room:b1', 'nope:x', 'feed:b2'], data: { n: 1 }, tags: { t: '1' } });
    // cent.js types the result as an array; what Centrifugo (and Switchboard) answer is {"responses": [...]}.
    expect((result as unknown as { responses: unknown[] }).responses).toEqual([
      { result: { offset: 1, epoch: expect.any(String) } },
      { error: { code: 102, message: expect.stringContaining('no namespace') } },
      { result: { offset: 1, epoch: expect.any(String) } },
    ]);
  });

  it('skip_history: delivered live without an offset, absent from history, and the offsets stay gap-free', async () => {
    const channel = 'room:skip';
    const w = await sdk(a, 'sky');
    await cent(centB, 'subscribe', { user: 'sky', channel });
    await waitFor(() => w.subscribed.some((s) => s.channel === channel));
    await centB.publish({ channel, data: { n: 1 } });
    expect(await centB.publish({ channel, data: { n: 2 }, skip_history: true })).toEqual({});
    await centA.broadcast({ channels: [channel], data: { n: 3 }, skip_history: true });
    await centB.publish({ channel, data: { n: 4 } });
    await waitFor(() => w.publications.filter((p) => p.channel === channel).length === 4, { message: 'four publications' });
    const seen = w.publications.filter((p) => p.channel === channel).map((p) => [p.data.n, p.offset]);
    expect(seen).toEqual([
      [1, 1],
      [2, undefined],
      [3, undefined],
      [4, 2],
    ]);
    const history = await centA.getHistory({ channel, limit: -1 });
    expect(history.publications.map((p) => p.data)).toEqual([{ n: 1 }, { n: 4 }]);
    expect(history.offset).toBe(2);
  });

  it('b64data carrying JSON is published as that JSON; binary bytes are refused naming why', async () => {
    const w = await sdk(b, 'bea');
    await cent(centA, 'subscribe', { user: 'bea', channel: 'feed:b64' });
    await waitFor(() => w.subscribed.some((s) => s.channel === 'feed:b64'));
    await cent(centA, 'publish', { channel: 'feed:b64', b64data: b64('{"from":"base64"}') });
    await waitFor(() => w.publications.some((p) => p.channel === 'feed:b64'));
    expect(w.publications.find((p) => p.channel === 'feed:b64')?.data).toEqual({ from: 'base64' });

    const binary = await refusal(cent(centA, 'publish', { channel: 'feed:b64', b64data: Buffer.from([0xff, 0x00, 0x81]).toString('base64') }));
    expect(binary.code).toBe(107);
    expect(binary.message).toContain('"b64data" must decode to JSON');
    expect(binary.message).toContain('cannot receive binary data');
    const notJson = await refusal(cent(centA, 'broadcast', { channels: ['feed:b64'], b64data: b64('not json') }));
    expect(notJson).toMatchObject({ code: 107, message: expect.stringContaining('"b64data"') });
    const notBase64 = await refusal(cent(centA, 'publish', { channel: 'feed:b64', b64data: 'a*b' }));
    expect(notBase64).toMatchObject({ code: 107, message: expect.stringContaining('"b64data" must be standard base64') });
  });
});

describe('fields Centrifugo v6 defines and Switchboard does not honour are refused with 107 naming them', () => {
  const valid: Record<string, object> = {
    publish: { channel: 'room:refused', data: {} },
    broadcast: { channels: ['room:refused'], data: {} },
    subscribe: { user: 'nobody', channel: 'room:refused' },
    unsubscribe: { user: 'nobody', channel: 'room:refused' },
    disconnect: { user: 'nobody' },
    refresh: { user: 'nobody' },
  };
  const cases = Object.entries(API_FIELDS).flatMap(([method, fields]) => Object.keys(fields.refused).map((field) => [method, field] as const));

  it('every method with a refused field has a case here', () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
    for (const [method] of cases) expect(valid[method]).toBeDefined();
  });

  it.each(cases)('%s with %s', async (method, field) => {
    const value = field === 'version' ? 7 : 'x';
    const error = await refusal(cent(centA, method, { ...valid[method], [field]: value }));
    expect(error.code).toBe(107);
    expect(error.message).toContain(`"${field}" is not supported`);
    // Its zero value asks for nothing and is accepted, as are fields nobody defines.
    await expect(cent(centA, method, { ...valid[method], [field]: field === 'version' ? 0 : '', made_up_field: 1 })).resolves.toBeDefined();
  });

  it('refused fields publish nothing', async () => {
    const before = (await centA.getHistory({ channel: 'room:nothing', limit: 0 })).offset ?? 0;
    await refusal(cent(centA, 'publish', { channel: 'room:nothing', data: {}, version: 3 }));
    await refusal(cent(centA, 'broadcast', { channels: ['room:nothing'], data: {}, version_epoch: 'e' }));
    expect((await centA.getHistory({ channel: 'room:nothing', limit: 0 })).offset ?? 0).toBe(before);
  });
});

describe('subscribe: a user connection on any gateway is subscribed server-side', () => {
  it('the SDK gets a subscribe push with the data, then publications; presence carries the channel info', async () => {
    const w = await sdk(b, 'sam');
    expect(await cent(centA, 'subscribe', { user: 'sam', channel: 'room:sam', data: { welcome: true }, info: { role: 'guest' } })).toEqual({});
    await waitFor(() => w.subscribed.length === 1, { message: 'subscribed event' });
    expect(w.subscribed[0]).toMatchObject({ channel: 'room:sam', recoverable: true, positioned: true, data: { welcome: true } });
    await centA.publish({ channel: 'room:sam', data: { to: 'sam' } });
    await waitFor(() => w.publications.some((p) => p.channel === 'room:sam'), { message: 'publication' });
    expect(w.publications.find((p) => p.channel === 'room:sam')).toMatchObject({ data: { to: 'sam' }, offset: 1 });
    const presence = await centA.getPresence({ channel: 'room:sam' });
    expect(Object.values(presence.presence)).toEqual([{ client: w.id, user: 'sam', chan_info: { role: 'guest' } }]);
    expect(await centB.getChannels({ pattern: 'room:sam' })).toEqual({ channels: { 'room:sam': { num_clients: 1 } } });

    // unsubscribe through cent.js ends it; the SDK hears of it.
    await centB.unsubscribe({ user: 'sam', channel: 'room:sam' });
    await waitFor(() => w.unsubscribed.includes('room:sam'), { message: 'unsubscribed event' });
  });

  it('client names one connection of the user; b64info and b64data are decoded', async () => {
    const [one, two] = [await sdk(a, 'cid'), await sdk(b, 'cid')];
    await cent(centB, 'subscribe', { user: 'cid', client: two.id, channel: 'room:cid', b64data: b64('{"d":1}'), b64info: b64('{"i":2}') });
    await waitFor(() => two.subscribed.length === 1);
    expect(two.subscribed[0].data).toEqual({ d: 1 });
    const presence = await centB.getPresence({ channel: 'room:cid' });
    expect(Object.values(presence.presence)).toEqual([{ client: two.id, user: 'cid', chan_info: { i: 2 } }]);
    // The other connection was left alone: a publication reaches only the subscribed one.
    await centA.publish({ channel: 'room:cid', data: { x: 1 } });
    await waitFor(() => two.publications.length === 1);
    expect(one.subscribed).toEqual([]);
    expect(one.publications).toEqual([]);
  });

  it('recover_since delivers what was published after the position, after the subscribed event', async () => {
    const channel = 'room:recover';
    const first = await centA.publish({ channel, data: { n: 1 } });
    await centA.publish({ channel, data: { n: 2 } });
    await centA.publish({ channel, data: { n: 3 } });
    const w = await sdk(b, 'rita');
    await cent(centA, 'subscribe', { user: 'rita', channel, recover_since: { offset: first.offset, epoch: first.epoch } });
    await waitFor(() => w.publications.length === 2, { message: 'recovered publications' });
    expect(w.subscribed[0]).toMatchObject({ channel, streamPosition: { offset: 3, epoch: first.epoch } });
    expect(w.publications.map((p) => [p.data.n, p.offset])).toEqual([
      [2, 2],
      [3, 3],
    ]);
    // Live publications follow without a gap.
    await centB.publish({ channel, data: { n: 4 } });
    await waitFor(() => w.publications.length === 3);
    expect(w.publications[2].offset).toBe(4);
  });

  it('override turns recovery on for a namespace that does not force it, and presence off', async () => {
    const plain = await sdk(a, 'ovo');
    await cent(centB, 'subscribe', { user: 'ovo', channel: 'feed:plain' });
    await cent(centB, 'subscribe', { user: 'ovo', channel: 'feed:over', override: { force_recovery: { value: true } } });
    await cent(centB, 'subscribe', { user: 'ovo', channel: 'room:nopresence', override: { presence: { value: false } } });
    await waitFor(() => plain.subscribed.length === 3);
    const by = (ch: string) => plain.subscribed.find((s) => s.channel === ch);
    expect(by('feed:plain')).toMatchObject({ recoverable: false, positioned: false });
    expect(by('feed:over')).toMatchObject({ recoverable: true, positioned: true });
    expect(by('room:nopresence')).toMatchObject({ recoverable: true });
    expect(await centA.getPresenceStats({ channel: 'room:nopresence' })).toEqual({ num_clients: 0, num_users: 0 });
    const bad = await refusal(cent(centB, 'subscribe', { user: 'ovo', channel: 'feed:x', override: { presence: true } }));
    expect(bad).toMatchObject({ code: 107, message: expect.stringContaining('"override.presence" must be {"value": boolean}') });
  });

  it('expire_at: the subscription expires and the connection is closed with 3006', async () => {
    const w = await sdk(a, 'exa');
    await cent(centB, 'subscribe', { user: 'exa', channel: 'feed:exp', expire_at: Math.floor(Date.now() / 1000) + 1 });
    await waitFor(() => w.subscribed.length === 1);
    await waitFor(() => w.closes.includes(3006), { timeoutMs: 6000, message: 'closed with 3006' });
  });

  it('the subscribe push is Centrifugo’s: {"push":{"channel":…,"subscribe":{…}}}', async () => {
    const c = await raw(a, 'rawsub');
    await cent(centB, 'subscribe', { user: 'rawsub', channel: 'feed:rawpush', data: [1, 2] });
    await c.waitPush((p) => p.subscribe !== undefined);
    expect(c.pushes.find((p) => p.subscribe)).toEqual({ channel: 'feed:rawpush', subscribe: { data: [1, 2] } });
    expect((await c.command('subscribe', { channel: 'feed:rawpush' })).error?.code).toBe(105);
    // Already subscribed: a second subscribe does nothing. A user's control messages keep their order, so once the
    // unsubscribe sent after it has arrived, the second subscribe was handled.
    await cent(centB, 'subscribe', { user: 'rawsub', channel: 'feed:rawpush' });
    await centA.unsubscribe({ user: 'rawsub', channel: 'feed:rawpush' });
    await c.waitPush((p) => p.unsubscribe !== undefined);
    expect(c.pushes.filter((p) => p.subscribe)).toHaveLength(1);
  });

  it('bad input is refused naming the field', async () => {
    expect(await refusal(cent(centA, 'subscribe', { channel: 'room:x' }))).toMatchObject({ code: 107, message: expect.stringContaining('"user" is required') });
    expect(await refusal(cent(centA, 'subscribe', { user: 'u', channel: 'nope:x' }))).toMatchObject({ code: 102 });
    expect(await refusal(cent(centA, 'subscribe', { user: 'u', channel: 'room:x', recover_since: { offset: -1 } }))).toMatchObject({
      code: 107,
      message: expect.stringContaining('"recover_since"'),
    });
    expect(await refusal(cent(centA, 'subscribe', { user: 'u', channel: 'room:x', expire_at: 'soon' }))).toMatchObject({
      code: 107,
      message: expect.stringContaining('"expire_at"'),
    });
  });
});

describe('refresh and disconnect', () => {
  it('expired: true closes the user connections on every gateway with 3005 "expired"', async () => {
    const [onA, onB, other] = [await sdk(a, 'eve'), await sdk(b, 'eve'), await sdk(b, 'ed')];
    expect(await centA.refresh({ user: 'eve', expired: true } as never)).toEqual({});
    await waitFor(() => onA.closes.includes(3005) && onB.closes.includes(3005), { message: 'both closed with 3005' });
    expect(other.closes).toEqual([]);
  });

  it('expire_at sets the new expiry: the later one keeps its connection past the earlier one', async () => {
    const soon = Math.floor(Date.now() / 1000) + 2;
    const [short, extended] = [await sdk(a, 'shorty'), await sdk(b, 'longy')];
    await centB.refresh({ user: 'shorty', expire_at: soon } as never);
    await centA.refresh({ user: 'longy', expire_at: soon } as never);
    await centA.refresh({ user: 'longy', expire_at: soon + 3600, info: { plan: 'pro' } } as never);
    await waitFor(() => short.closes.includes(3005), { timeoutMs: 6000, message: 'the short one expired' });
    // The expiry check runs about once a second on each gateway: give it one more round past the short expiry.
    const witness = await sdk(b, 'witness');
    await centA.refresh({ user: 'witness', expire_at: Math.floor(Date.now() / 1000) + 1 } as never);
    await waitFor(() => witness.closes.includes(3005), { timeoutMs: 6000, message: 'the witness expired' });
    expect(extended.closes).toEqual([]);
    // The new connection info shows in presence of a later subscription.
    await cent(centA, 'subscribe', { user: 'longy', channel: 'room:longy' });
    await waitFor(async () => Object.keys((await centA.getPresence({ channel: 'room:longy' })).presence).length === 1);
    expect(Object.values((await centA.getPresence({ channel: 'room:longy' })).presence)[0]).toMatchObject({ conn_info: { plan: 'pro' } });
  });

  it('disconnect honours whitelist', async () => {
    const [kept, gone] = [await sdk(a, 'wanda'), await sdk(b, 'wanda')];
    await centB.disconnect({ user: 'wanda', whitelist: [kept.id] } as never);
    await waitFor(() => gone.closes.includes(3503), { message: 'the other one disconnected' });
    // The kept one still works: a server-side subscribe reaches it.
    await cent(centA, 'subscribe', { user: 'wanda', channel: 'feed:wanda' });
    await waitFor(() => kept.subscribed.length === 1);
    expect(kept.closes).toEqual([]);
  });
});

describe('batch', () => {
  it('answers each command in order, keyed by method, errors in their place', async () => {
    const w = await sdk(a, 'bob');
    const result = await cent(centB, 'batch', {
      commands: [
        // The subscribe reaches bob's gateway through the control plane, perhaps after the publishes: recovering from
        // the stream's start, he gets every publication either way.
        { subscribe: { user: 'bob', channel: 'room:batch', recover_since: { offset: 0, epoch: '' } } },
        { publish: { channel: 'room:batch', data: { n: 1 } } },
        { publish: { channel: 'nope:batch', data: {} } },
        { broadcast: { channels: ['room:batch'], data: { n: 2 } } },
        { history: { channel: 'room:batch', limit: 10 } },
        { presence_stats: { channel: 'room:batch' } },
        { rpc: { method: 'x' } },
        { batch: { commands: [] } },
        { publish: { channel: 'room:batch', data: {}, version: 1 } },
        { info: {}, ignored_key: 1 },
        { made_up: {} },
      ],
    });
    expect(result.replies).toEqual([
      { subscribe: {} },
      { publish: { offset: 1, epoch: expect.any(String) } },
      { error: { code: 102, message: expect.stringContaining('no namespace') } },
      { broadcast: { responses: [{ result: { offset: 2, epoch: expect.any(String) } }] } },
      { history: { publications: [expect.objectContaining({ offset: 1 }), expect.objectContaining({ offset: 2 })], offset: 2, epoch: expect.any(String) } },
      { presence_stats: { num_clients: expect.any(Number), num_users: expect.any(Number) } },
      { error: { code: 104, message: expect.stringContaining('"rpc" is not served') } },
      { error: { code: 107, message: expect.stringContaining('"batch" cannot be nested in a batch') } },
      { error: { code: 107, message: expect.stringContaining('"version" is not supported') } },
      { info: { nodes: expect.any(Array) } },
      { error: { code: 104, message: expect.stringContaining('names no API method') } },
    ]);
    await waitFor(() => w.publications.length === 2, { message: 'publications of the batch' });
    expect(w.publications.map((p) => p.data.n)).toEqual([1, 2]);
  });

  it('parallel runs them concurrently and still answers in order', async () => {
    const commands = Array.from({ length: 50 }, (_, i) => ({ publish: { channel: `feed:par${i % 5}`, data: { i } } }));
    const result = await cent(centA, 'batch', { commands, parallel: true });
    expect(result.replies).toHaveLength(50);
    // Each reply is its own command's: every channel's offsets 1..10, each once.
    for (let ch = 0; ch < 5; ch++) {
      const offsets = result.replies.filter((_: unknown, i: number) => i % 5 === ch).map((r: { publish: { offset: number } }) => r.publish.offset);
      expect(offsets.sort((x: number, y: number) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
    const history = await centB.getHistory({ channel: 'feed:par3', limit: -1 });
    expect(history.publications.map((p) => p.data.i).sort((x: number, y: number) => x - y)).toEqual([3, 8, 13, 18, 23, 28, 33, 38, 43, 48]);
  });

  it('limits and bad shapes', async () => {
    const tooMany = Array.from({ length: 1001 }, () => ({ info: {} }));
    expect(await refusal(cent(centA, 'batch', { commands: tooMany }))).toMatchObject({ code: 106, message: expect.stringContaining('at most 1000 commands') });
    expect(await refusal(cent(centA, 'batch', { commands: {} }))).toMatchObject({ code: 107, message: expect.stringContaining('"commands" must be an array') });
    expect(await refusal(cent(centA, 'batch', { commands: [], parallel: 'yes' }))).toMatchObject({ code: 107, message: expect.stringContaining('"parallel"') });
    expect(await cent(centA, 'batch', { commands: [] })).toEqual({ replies: [] });
    const two = await cent(centA, 'batch', { commands: [{ info: {}, channels: {} }, 5] });
    expect(two.replies).toEqual([
      { error: { code: 107, message: expect.stringContaining('names one method') } },
      { error: { code: 107, message: expect.stringContaining('each command must be an object') } },
    ]);
  });
});

describe('the other methods through cent.js, across gateways', () => {
  it('history, history_remove, presence, presence_stats, channels', async () => {
    const channel = 'room:misc';
    const w = await sdk(a, 'mia');
    await centB.subscribe({ user: 'mia', channel });
    await waitFor(() => w.subscribed.length === 1);
    await centA.publish({ channel, data: { n: 1 } });
    await centA.publish({ channel, data: { n: 2 } });
    const history = await centB.getHistory({ channel, limit: 1, reverse: true });
    expect(history.publications.map((p) => p.data)).toEqual([{ n: 2 }]);
    const since = await centB.getHistory({ channel, limit: 10, since: { offset: 1, epoch: history.epoch } });
    expect(since.publications.map((p) => p.offset)).toEqual([2]);
    expect(await centB.getPresenceStats({ channel })).toEqual({ num_clients: 1, num_users: 1 });
    expect(Object.values((await centB.getPresence({ channel })).presence).map((p) => p.user)).toEqual(['mia']);
    expect(await centA.getChannels({ pattern: 'room:mi*' })).toEqual({ channels: { [channel]: { num_clients: 1 } } });
    expect(await centB.removeHistory({ channel })).toEqual({});
    expect((await centA.getHistory({ channel, limit: -1 })).publications).toEqual([]);
  });

  it('info: each node reports its own clients, users, subscriptions and channels', async () => {
    // Fresh gateways, so that the figures are exactly this test's.
    const [c, d] = await Promise.all([startSwitchboard('gateway', [...args, '--node-name', 'info-c']), startSwitchboard('gateway', [...args, '--node-name', 'info-d'])]);
    try {
      const centC = new CentClient({ url: `${c.url}/api`, apiKey: API_KEY });
      const [c1, c2, c3] = [await raw(c, 'iu1'), await raw(c, 'iu1'), await raw(c, 'iu2')];
      const d1 = await raw(d, 'iu3');
      for (const [client, channel] of [
        [c1, 'i1'],
        [c1, 'i2'],
        [c2, 'i1'],
        [c3, 'i3'],
        [d1, 'i1'],
      ] as const) {
        expect((await client.command('subscribe', { channel })).error).toBeUndefined();
      }
      const info = await centC.getInfo();
      const byName = Object.fromEntries(info.nodes.map((n: { name: string }) => [n.name, n]));
      expect(byName['info-c']).toMatchObject({ num_clients: 3, num_users: 2, num_subs: 4, num_channels: 3, version: expect.any(String), uid: expect.any(String) });
      expect(byName['info-d']).toMatchObject({ num_clients: 1, num_users: 1, num_subs: 1, num_channels: 1 });
      expect(byName['gw-a']).toBeDefined();
      expect(byName['gw-b']).toBeDefined();
      c3.close();
      await waitFor(async () => (await centC.getInfo()).nodes.find((n: { name: string }) => n.name === 'info-c')?.num_clients === 2, { message: 'a closed client leaves the count' });
    } finally {
      await Promise.all([c.stop(), d.stop()]);
    }
  });
});
