// The Protobuf variant end to end: the `centrifuge` SDK's Protobuf build, unmodified, against two gateway processes
// on a private Redis, beside its JSON build; then the malformed-frame table, where both variants must close alike.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge as JsonCentrifuge } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge, type Subscription } from 'centrifuge/build/protobuf';
import { hmacToken, RawClient, startRedis, startSwitchboard, TcpBalancer, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'protobuf-secret';
const API_KEY = 'protobuf-key';
const MAX_MESSAGE = 65536;

let redis: RedisServer;
let args: string[];
let gateways: SwitchboardProcess[];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-protobuf-'));
  const config = path.join(dir, 'config.json');
  const pb = {
    name: 'pb',
    allow_subscribe_for_client: true,
    allow_publish_for_client: true,
    allow_history_for_subscriber: true,
    allow_presence_for_subscriber: true,
    history_size: 1000,
    history_ttl: '300s',
    force_recovery: true,
    presence: true,
    join_leave: true,
  };
  writeFileSync(config, JSON.stringify({ channel: { namespaces: [pb] } }));
  args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn'];
  gateways = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
}, 30000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all(gateways.map((g) => g.stop()));
  await redis.stop();
});

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const decode = (bytes: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(bytes));

/** What a subscriber saw of each publication, with Protobuf's bytes decoded as the JSON they carry. */
interface Seen {
  offset?: number;
  data: unknown;
  user?: string;
  client?: string;
  connInfo?: unknown;
  tags?: Record<string, string>;
}

interface Tracked {
  client: ProtobufCentrifuge | JsonCentrifuge;
  sub: Subscription;
  seen: Seen[];
  joins: string[];
  subscribed: { wasRecovering: boolean; recovered: boolean }[];
  /** The first `subscribed` event's flags. */
  flags?: { recoverable: boolean; positioned: boolean };
  clientId: () => string;
}

async function subscriber(variant: 'protobuf' | 'json', url: string, channel: string, user: string, joinLeave = false): Promise<Tracked> {
  const options = {
    websocket: WebSocket,
    token: await hmacToken(SECRET, { sub: user, info: { name: user } }),
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
  };
  const client = variant === 'protobuf' ? new ProtobufCentrifuge(url, options) : new JsonCentrifuge(url, options);
  cleanups.push(() => client.disconnect());
  const bytes = variant === 'protobuf';
  const asJson = (v: unknown): unknown => (bytes && v instanceof Uint8Array ? decode(v) : v);
  let clientId = '';
  client.on('connected', (ctx) => (clientId = ctx.client));
  const sub = client.newSubscription(channel, { joinLeave }) as Subscription;
  const t: Tracked = { client, sub, seen: [], joins: [], subscribed: [], clientId: () => clientId };
  sub.on('publication', (ctx) => {
    const seen: Seen = { offset: ctx.offset, data: asJson(ctx.data) };
    if (ctx.info) Object.assign(seen, { user: ctx.info.user, client: ctx.info.client, connInfo: asJson(ctx.info.connInfo) });
    if (ctx.tags && Object.keys(ctx.tags).length > 0) seen.tags = { ...ctx.tags };
    t.seen.push(seen);
  });
  sub.on('join', (ctx) => t.joins.push(ctx.info.user));
  sub.on('subscribed', (ctx) => {
    t.flags ??= { recoverable: ctx.recoverable, positioned: ctx.positioned };
    t.subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered });
  });
  const first = new Promise((resolve) => sub.once('subscribed', resolve));
  sub.subscribe();
  client.connect();
  await first;
  return t;
}

async function apiPublish(gateway: SwitchboardProcess, channel: string, data: unknown, tags?: Record<string, string>): Promise<number> {
  const r = await fetch(`${gateway.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data, tags }) });
  const body = (await r.json()) as { result?: { offset: number } };
  if (!body.result) throw new Error(`publish failed: ${JSON.stringify(body)}`);
  return body.result.offset;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

it('the Protobuf SDK connects with a token, subscribes with recovery, publishes, reads presence and history', async () => {
  const channel = 'pb:basics';
  const t = await subscriber('protobuf', gateways[0].wsUrl, channel, 'alice');
  expect(t.subscribed).toEqual([{ wasRecovering: false, recovered: false }]);
  expect(t.flags).toEqual({ recoverable: true, positioned: true });

  await t.sub.publish(encode({ text: 'héllo ✓', n: [1, null] }));
  await apiPublish(gateways[1], channel, 'from the API');
  await waitFor(() => t.seen.length === 2);
  expect(t.seen).toEqual([
    { offset: 1, data: { text: 'héllo ✓', n: [1, null] }, user: 'alice', client: t.clientId(), connInfo: { name: 'alice' } },
    { offset: 2, data: 'from the API' },
  ]);

  const presence = await t.sub.presence();
  expect(Object.keys(presence.clients)).toEqual([t.clientId()]);
  const me = presence.clients[t.clientId()];
  expect({ user: me.user, client: me.client, connInfo: decode(me.connInfo) }).toEqual({ user: 'alice', client: t.clientId(), connInfo: { name: 'alice' } });
  expect(await t.sub.presenceStats()).toEqual({ numClients: 1, numUsers: 1 });

  const history = await t.sub.history({ limit: 10 });
  expect(history.offset).toBe(2);
  expect(history.epoch).toMatch(/.+/);
  expect(history.publications.map((p) => [p.offset, decode(p.data)])).toEqual([
    [1, { text: 'héllo ✓', n: [1, null] }],
    [2, 'from the API'],
  ]);
  const since = await t.sub.history({ limit: 10, since: { offset: 1, epoch: history.epoch } });
  expect(since.publications.map((p) => p.offset)).toEqual([2]);

  // Data a JSON client could not read is refused, the connection stays.
  await expect(t.sub.publish(new Uint8Array([0xff, 0x00]))).rejects.toMatchObject({ code: 107 });
  // History of a channel it is not subscribed to: this namespace allows it to subscribers only.
  await expect(t.client.history('pb:basics-other', { limit: 1 })).rejects.toMatchObject({ code: 103 });
  await apiPublish(gateways[0], channel, 3);
  await waitFor(() => t.seen.length === 3);
});

it('a Protobuf and a JSON subscriber of one channel, on different gateways, get the same publications', async () => {
  const channel = 'pb:mixed';
  const pb = await subscriber('protobuf', gateways[0].wsUrl, channel, 'pat', true);
  const json = await subscriber('json', gateways[1].wsUrl, channel, 'jo');
  await waitFor(() => pb.joins.includes('jo'), { message: 'the Protobuf subscriber heard the JSON one join' });

  const values: unknown[] = [{ a: 1 }, 'text', 42, [true, null, { deep: { er: ['x'] } }], 'ünïcödé ✓ 😀', { n: -1.5e300 }];
  await pb.sub.publish(encode(values[0]));
  await json.sub.publish(values[1]);
  for (let i = 2; i < values.length; i++) await apiPublish(gateways[i % 2], channel, values[i], i === 2 ? { kind: 'answer', '': 'empty key' } : undefined);
  await waitFor(() => pb.seen.length === values.length && json.seen.length === values.length);
  expect(pb.seen[2].tags).toEqual({ kind: 'answer', '': 'empty key' });

  expect(pb.seen).toEqual(json.seen);
  expect(pb.seen.map((s) => s.offset)).toEqual(range(1, values.length));
  expect(pb.seen.map((s) => s.data)).toEqual(values);
  expect(pb.seen.slice(0, 2).map((s) => [s.user, s.client, s.connInfo])).toEqual([
    ['pat', pb.clientId(), { name: 'pat' }],
    ['jo', json.clientId(), { name: 'jo' }],
  ]);
});

it('the Protobuf SDK recovers across a gateway restart: it reconnects to the other gateway and gets exactly what it missed', async () => {
  const channel = 'pb:restart';
  const lb = await TcpBalancer.start([gateways[0].port]);
  cleanups.push(() => lb.stop());
  const t = await subscriber('protobuf', lb.wsUrl, channel, 'rita');
  for (let i = 1; i <= 5; i++) await apiPublish(gateways[1], channel, { i });
  await waitFor(() => t.seen.length === 5);

  // Gateway A goes away (SIGTERM: the client is told 3001 and reconnects); nothing answers for a while.
  lb.setBackends([]);
  const [stopped, other] = gateways;
  expect(await stopped.stop()).toBe(0);
  for (let i = 6; i <= 25; i++) await apiPublish(other, channel, { i });
  lb.setBackends([other.port]);
  await waitFor(() => t.subscribed.length === 2, { timeoutMs: 10000, message: 'resubscribed through the other gateway' });
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: true });
  await waitFor(() => t.seen.length === 25);

  // The gateway comes back; live publications from it reach the client on the other one.
  gateways[0] = await startSwitchboard('gateway', args);
  for (let i = 26; i <= 30; i++) await apiPublish(gateways[0], channel, { i });
  await waitFor(() => t.seen.length === 30);
  expect(t.seen.map((s) => s.offset)).toEqual(range(1, 30));
  expect(t.seen.map((s) => s.data)).toEqual(range(1, 30).map((i) => ({ i })));
});

/** A raw socket of either variant: sends frames as given and reports replies (by id) and the close. */
class RawSocket {
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly messages: (string | Buffer)[] = [];
  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    ws.on('message', (data, binary) => this.messages.push(binary ? (data as Buffer) : data.toString()));
  }

  static open(url: string, protocols?: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      ws.once('open', () => resolve(new RawSocket(ws)));
      ws.once('error', reject);
    });
  }
}

/** The SDK's own encoder of commands and decoder of replies (internal to the SDK; the instance never connects). */
interface SdkCodec {
  encodeCommands(commands: object[]): Uint8Array;
  decodeReplies(data: Uint8Array): { id?: number; error?: { code: number }; connect?: { client: string } }[];
}
const sdk = (new ProtobufCentrifuge('ws://127.0.0.1:1/connection/websocket', { websocket: WebSocket }) as unknown as { _codec: SdkCodec })._codec;

describe('negotiation', () => {
  it('speaks Protobuf on the centrifuge-protobuf subprotocol and names it in the response', async () => {
    const s = await RawSocket.open(gateways[1].wsUrl, 'centrifuge-protobuf');
    expect(s.ws.protocol).toBe('centrifuge-protobuf');
    s.ws.send(sdk.encodeCommands([{ id: 1, connect: { token: await hmacToken(SECRET, { sub: 'neg' }) } }]));
    await waitFor(() => s.messages.length === 1);
    expect(Buffer.isBuffer(s.messages[0])).toBe(true);
    const [reply] = sdk.decodeReplies(s.messages[0] as Buffer);
    expect(reply.id).toBe(1);
    expect(reply.connect?.client).toMatch(/.+/);
    s.ws.close();
  });

  it('speaks Protobuf with cf_protocol=protobuf in the query, and JSON otherwise', async () => {
    const pb = await RawSocket.open(`${gateways[0].wsUrl}?cf_protocol=protobuf`);
    pb.ws.send(sdk.encodeCommands([{ id: 1, connect: { token: await hmacToken(SECRET, { sub: 'neg' }) } }]));
    const json = await RawSocket.open(gateways[0].wsUrl, 'centrifuge-json');
    expect(json.ws.protocol).toBe('centrifuge-json');
    json.ws.send(JSON.stringify({ id: 1, connect: { token: await hmacToken(SECRET, { sub: 'neg' }) } }));
    await waitFor(() => pb.messages.length === 1 && json.messages.length === 1);
    expect(sdk.decodeReplies(pb.messages[0] as Buffer)[0].connect?.client).toMatch(/.+/);
    expect(typeof json.messages[0]).toBe('string');
    expect(JSON.parse(json.messages[0] as string).connect.client).toMatch(/.+/);
    pb.ws.close();
    json.ws.close();
  });
});

/** What a connection did with one bad frame: closed with a code, or answered an error and stayed. */
type Outcome = { close: number } | { error: number };

async function outcome(variant: 'json' | 'protobuf', frame: string | Uint8Array, connected: boolean): Promise<Outcome> {
  const gateway = gateways[1];
  const s = variant === 'json' ? await RawSocket.open(gateway.wsUrl) : await RawSocket.open(gateway.wsUrl, 'centrifuge-protobuf');
  const token = await hmacToken(SECRET, { sub: 'table' });
  if (connected) {
    s.ws.send(variant === 'json' ? JSON.stringify({ id: 1, connect: { token } }) : sdk.encodeCommands([{ id: 1, connect: { token } }]));
    await waitFor(() => s.messages.length === 1);
  }
  s.ws.send(frame, { binary: typeof frame !== 'string' });
  const answered = new Promise<Outcome>((resolve) => {
    s.ws.on('message', (data, binary) => {
      const reply = binary ? sdk.decodeReplies(data as Buffer)[0] : (JSON.parse(data.toString()) as { error?: { code: number } });
      if (reply.error) resolve({ error: reply.error.code });
    });
  });
  const result = await Promise.race([s.closed.then((c) => ({ close: c.code })), answered]);
  s.ws.close();
  return result;
}

/** Raw Protobuf bytes: a field key, a varint, a length-delimited field. */
const pbKey = (field: number, wire: number): number[] => (field * 8 + wire > 0x7f ? [((field * 8 + wire) & 0x7f) | 0x80, (field * 8 + wire) >> 7] : [field * 8 + wire]);
const framed = (...body: number[]): Uint8Array => new Uint8Array([body.length, ...body]);

describe('malformed frames close both variants alike', () => {
  const rows: [string, string, Uint8Array | string, boolean, Outcome][] = [
    ['a truncated varint / cut-off JSON', '{"id":2,"conn', new Uint8Array([0x85]), true, { close: 3501 }],
    ['a truncated varint before connect', '{"id":1,"conn', new Uint8Array([0x85]), false, { close: 3501 }],
    ['a length beyond the frame / an unclosed object', '{"id":2,"subscribe":{"channel":"pb:x"}', new Uint8Array([0x05, 0x08, 0x02]), true, { close: 3501 }],
    ['an unknown command', '{"id":2,"frobnicate":{}}', framed(...pbKey(1, 0), 2, ...pbKey(30, 2), 0), true, { error: 104 }],
    ['an unknown command before connect', '{"id":1,"frobnicate":{}}', framed(...pbKey(1, 0), 1, ...pbKey(30, 2), 0), false, { close: 3501 }],
    ['a command without id', '{"subscribe":{"channel":"pb:x"}}', sdk.encodeCommands([{ subscribe: { channel: 'pb:x' } }]), true, { close: 3501 }],
    ['a field of the wrong type', '{"id":2,"subscribe":{"channel":5}}', framed(...pbKey(1, 0), 2, ...pbKey(5, 2), 2, ...pbKey(1, 0), 5), true, { error: 107 }],
  ];
  it.each(rows)('%s', async (_name, jsonFrame, pbFrame, connected, expected) => {
    const [json, pb] = await Promise.all([outcome('json', jsonFrame, connected), outcome('protobuf', pbFrame, connected)]);
    expect({ json, pb }).toEqual({ json: expected, pb: expected });
  });

  it('a frame of the other kind: text on a Protobuf connection, binary on a JSON one', async () => {
    const [json, pb] = await Promise.all([outcome('json', new Uint8Array([0x7b, 0x7d]), true), outcome('protobuf', '{}', true)]);
    expect({ json, pb }).toEqual({ json: { close: 3501 }, pb: { close: 3501 } });
  });

  it('an oversize frame', async () => {
    const big = new Uint8Array(MAX_MESSAGE + 10);
    const [json, pb] = await Promise.all([outcome('json', `{"id":2,"publish":{"channel":"pb:x","data":"${'x'.repeat(MAX_MESSAGE)}"}}`, true), outcome('protobuf', big, true)]);
    expect({ json, pb }).toEqual({ json: { close: 1009 }, pb: { close: 1009 } });
  });

  it('a raw JSON client still gets JSON after all this', async () => {
    const c = await RawClient.open(gateways[1].wsUrl);
    const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: 'after' }) });
    expect(reply.connect).toBeDefined();
    c.close();
  });
});
