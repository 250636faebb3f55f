// Recovery across gateways: clients cut off from one gateway come back on another and get exactly what they missed.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge, type Subscription } from 'centrifuge';
// The key layout of the Redis engine, to commit a publication without publishing it.
import { channelKeys } from '../../engine/src/redis_keys';
import { hmacToken, startRedis, startSwitchboard, TcpSwitch, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'recovery-secret';
const API_KEY = 'recovery-key';

let redis: RedisServer;
let gateways: SwitchboardProcess[];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-recovery-'));
  const config = path.join(dir, 'config.json');
  const common = { allow_subscribe_for_client: true, history_ttl: '300s', force_recovery: true };
  writeFileSync(
    config,
    JSON.stringify({
      channel: {
        namespaces: [
          { name: 'r', ...common, history_size: 10000 },
          { name: 'short', ...common, history_size: 5 },
        ],
      },
    }),
  );
  const args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn', '--position-check-interval', '1'];
  gateways = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all(gateways.map((g) => g.stop()));
  await redis.stop();
});

interface Tracked {
  client: Centrifuge;
  sub: Subscription;
  offsets: number[];
  subscribed: { wasRecovering: boolean; recovered: boolean }[];
}

async function subscriber(url: string, channel: string): Promise<Tracked> {
  const client = new Centrifuge(url, {
    websocket: WebSocket,
    token: await hmacToken(SECRET, { sub: 'u' }),
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
  });
  const t: Tracked = { client, sub: client.newSubscription(channel), offsets: [], subscribed: [] };
  cleanups.push(() => client.disconnect());
  t.sub.on('publication', (ctx) => t.offsets.push(ctx.offset ?? 0));
  t.sub.on('subscribed', (ctx) => t.subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  const first = new Promise((resolve) => t.sub.once('subscribed', resolve));
  t.sub.subscribe();
  client.connect();
  await first;
  return t;
}

async function publish(gateway: SwitchboardProcess, channel: string, data: unknown): Promise<number> {
  const r = await fetch(`${gateway.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data }) });
  const body = (await r.json()) as { result?: { offset: number } };
  if (!body.result) throw new Error(`publish failed: ${JSON.stringify(body)}`);
  return body.result.offset;
}

async function switchFor(target: SwitchboardProcess): Promise<TcpSwitch> {
  const sw = await TcpSwitch.start(target.port);
  cleanups.push(() => sw.close());
  return sw;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

it('a client cut off from A comes back on B with exactly the 100 it missed, then live ones', async () => {
  const channel = 'r:cut';
  const sw = await switchFor(gateways[0]);
  const t = await subscriber(sw.wsUrl, channel);
  for (let i = 0; i < 5; i++) await publish(gateways[0], channel, { i });
  await waitFor(() => t.offsets.length === 5);

  sw.setTarget(undefined);
  sw.cutAll();
  for (let i = 0; i < 100; i++) await publish(gateways[1], channel, { missed: i });
  sw.setTarget(gateways[1].port);
  await waitFor(() => t.subscribed.length === 2, { timeoutMs: 10000, message: 'resubscribed through B' });
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: true });
  await waitFor(() => t.offsets.length === 105);
  for (let i = 0; i < 5; i++) await publish(gateways[0], channel, { live: i });
  await waitFor(() => t.offsets.length === 110);
  expect(t.offsets).toEqual(range(1, 110));
});

it('under continuous publishing, subscribers bouncing between gateways see every offset once, in order', async () => {
  const channel = 'r:stream';
  const switches = await Promise.all([0, 1, 0, 1].map((i) => switchFor(gateways[i])));
  const subs = await Promise.all(switches.map((sw) => subscriber(sw.wsUrl, channel)));
  let last = 0;
  let publishing = true;
  // About 300 publications a second from both gateways, while every subscriber is cut and moved twice.
  const publisher = (async () => {
    for (let n = 0; publishing; n++) {
      const batch = await Promise.all([publish(gateways[n % 2], channel, { n }), publish(gateways[(n + 1) % 2], channel, { n })]);
      last = Math.max(last, ...batch);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  for (let round = 0; round < 2; round++) {
    await new Promise((r) => setTimeout(r, 400));
    switches.forEach((sw, i) => {
      sw.setTarget(gateways[(i + round + 1) % 2].port);
      sw.cutAll();
    });
    await waitFor(() => subs.every((s) => s.subscribed.length >= round + 2), { timeoutMs: 10000, message: `round ${round}: all resubscribed` });
  }
  await new Promise((r) => setTimeout(r, 400));
  publishing = false;
  await publisher;
  expect(last).toBeGreaterThan(200);
  await waitFor(() => subs.every((s) => s.offsets[s.offsets.length - 1] === last), { timeoutMs: 10000, message: 'all caught up' });
  for (const s of subs) {
    expect(s.subscribed.slice(1).every((c) => c.wasRecovering && c.recovered)).toBe(true);
    expect(s.offsets).toEqual(range(s.offsets[0], last));
  }
});

it('tells a client it could not recover when history was trimmed past its offset', async () => {
  const channel = 'short:trim';
  const sw = await switchFor(gateways[0]);
  const t = await subscriber(sw.wsUrl, channel);
  await publish(gateways[0], channel, 'seen');
  await waitFor(() => t.offsets.length === 1);
  sw.setTarget(undefined);
  sw.cutAll();
  for (let i = 0; i < 20; i++) await publish(gateways[1], channel, { i });
  sw.setTarget(gateways[1].port);
  await waitFor(() => t.subscribed.length === 2, { timeoutMs: 10000 });
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: false });
  // Live publications keep coming after it was told.
  const next = await publish(gateways[0], channel, 'after');
  await waitFor(() => t.offsets.includes(next));
});

it('tells a client it could not recover when Redis lost the channel (new epoch)', async () => {
  const channel = 'r:flushed';
  const sw = await switchFor(gateways[0]);
  const t = await subscriber(sw.wsUrl, channel);
  await publish(gateways[0], channel, 'seen');
  await waitFor(() => t.offsets.length === 1);
  sw.setTarget(undefined);
  sw.cutAll();
  const conn = redis.client();
  await conn.flushall();
  conn.disconnect();
  await publish(gateways[1], channel, 'new epoch');
  sw.setTarget(gateways[1].port);
  await waitFor(() => t.subscribed.length === 2, { timeoutMs: 10000 });
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: false });
});

/** Commits a publication to the channel's history the way the engine does, but never PUBLISHes it: a lost pub/sub message. */
async function publishSilently(channel: string, data: unknown): Promise<number> {
  const script = readFileSync(path.join(__dirname, '..', '..', 'engine', 'lua', 'publish.lua'), 'utf8');
  const keys = channelKeys(channel, 'sb');
  const conn = redis.client();
  try {
    const [offset] = (await conn.eval(script, 3, keys.meta, keys.history, `${keys.meta}:unused`, `"data":${JSON.stringify(data)}`, 10000, 300, 86400, 'unused', 'nowhere', 0, 'publish')) as [number];
    return offset;
  } finally {
    conn.disconnect();
  }
}

it('repairs a lost pub/sub message revealed by the next publication', async () => {
  const channel = 'r:gap-next';
  const t = await subscriber(gateways[0].wsUrl, channel);
  await publish(gateways[0], channel, 1);
  await publishSilently(channel, 2);
  await publish(gateways[1], channel, 3);
  await waitFor(() => t.offsets.length === 3, { timeoutMs: 10000, message: 'the lost publication was recovered' });
  expect(t.offsets).toEqual([1, 2, 3]);
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: true });
});

it('repairs a lost pub/sub message with no later publication within the position check interval', async () => {
  const channel = 'r:gap-last';
  const t = await subscriber(gateways[1].wsUrl, channel);
  await publish(gateways[0], channel, 1);
  await waitFor(() => t.offsets.length === 1);
  const started = Date.now();
  await publishSilently(channel, 2);
  // The interval is 1 s; a lag has to be seen on two checks in a row before it counts as a loss.
  await waitFor(() => t.offsets.length === 2, { timeoutMs: 5000, message: 'the position check noticed the loss' });
  expect(Date.now() - started).toBeLessThan(3500);
  expect(t.offsets).toEqual([1, 2]);
  expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: true });
});

/** What a failover before the replica caught up leaves: the channel's top offset back at `top`, the newer entries gone. */
async function loseNewest(channel: string, top: number): Promise<void> {
  const keys = channelKeys(channel, 'sb');
  const conn = redis.client();
  try {
    // A replica never had the newer entries, so its stream's last id is `top`: rebuild the stream (XDEL would keep
    // the last id, and Redis 7 refuses XSETID below a deleted id).
    const kept = (await conn.xrange(keys.history, '-', String(top))) as [string, string[]][];
    const tx = conn.multi().hset(keys.meta, 'o', top).del(keys.history);
    for (const [id, fields] of kept) tx.xadd(keys.history, id, ...fields);
    await tx.exec();
  } finally {
    conn.disconnect();
  }
}

describe('when Redis loses acknowledged publications and reuses their offsets', () => {
  it('forks the epoch at the first reused offset: subscribers on every gateway are told, none skips a publication', async () => {
    const channel = 'r:regressed-next';
    const [a, b] = [await subscriber(gateways[0].wsUrl, channel), await subscriber(gateways[1].wsUrl, channel)];
    for (let i = 1; i <= 5; i++) await publish(gateways[0], channel, i);
    await waitFor(() => a.offsets.length === 5 && b.offsets.length === 5);
    await loseNewest(channel, 3);
    // Offset 4 again, for another publication: both gateways delivered the old 4, so neither may pass this one
    // on as if it were known, nor drop it silently.
    expect(await publish(gateways[1], channel, 'reused')).toBe(4);
    for (const t of [a, b]) {
      await waitFor(() => t.subscribed.length === 2, { timeoutMs: 5000, message: 'the subscriber was told to resubscribe' });
      expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: false });
    }
    // Under the new epoch publishing goes on, and each subscriber gets what comes next.
    expect(await publish(gateways[0], channel, 'next')).toBe(5);
    for (const t of [a, b]) await waitFor(() => t.offsets.length === 6, { timeoutMs: 5000, message: 'the next publication arrived' });
    expect(a.offsets).toEqual([1, 2, 3, 4, 5, 5]);
    expect(b.offsets).toEqual([1, 2, 3, 4, 5, 5]);
  });

  it('forks it at the next position check when no publication follows, and a client ahead of the stream is told too', async () => {
    const channel = 'r:regressed-quiet';
    const t = await subscriber(gateways[0].wsUrl, channel);
    for (let i = 1; i <= 4; i++) await publish(gateways[0], channel, i);
    await waitFor(() => t.offsets.length === 4);
    await loseNewest(channel, 2);
    await waitFor(() => t.subscribed.length === 2, { timeoutMs: 5000, message: 'the position check forked the epoch' });
    expect(t.subscribed[1]).toEqual({ wasRecovering: true, recovered: false });

    // A client that saw offset 4 under the new epoch comes back after the stream lost it again: told as well.
    const epoch = t.sub.state === 'subscribed' ? (await historyTop(channel)).epoch : '';
    await publish(gateways[0], channel, 'three');
    await publish(gateways[0], channel, 'four');
    await waitFor(() => t.offsets.length === 6);
    t.client.disconnect();
    await loseNewest(channel, 3);
    const late = new Centrifuge(gateways[1].wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'late' }) });
    cleanups.push(() => late.disconnect());
    const sub = late.newSubscription(channel, { since: { offset: 4, epoch } });
    const subscribed = new Promise<{ recovered: boolean; wasRecovering: boolean }>((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    late.connect();
    expect(await subscribed).toMatchObject({ wasRecovering: true, recovered: false });
  });
});

async function historyTop(channel: string): Promise<{ offset: number; epoch: string }> {
  const r = await fetch(`${gateways[0].url}/api/history`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, limit: 0 }) });
  return ((await r.json()) as { result: { offset: number; epoch: string } }).result;
}
