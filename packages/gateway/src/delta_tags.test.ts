// Delta compression and tags filters, as the centrifuge SDK negotiates and decodes them, across 2 gateways.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge, type Subscription } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { hmacToken, startRedis, startSwitchboard, TcpSwitch, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'delta-secret';
const API_KEY = 'delta-key';

let redis: RedisServer;
let gateways: SwitchboardProcess[];
let args: string[];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-delta-'));
  const config = path.join(dir, 'config.json');
  const common = { allow_subscribe_for_client: true, history_size: 1000, history_ttl: '300s', force_recovery: true };
  writeFileSync(
    config,
    JSON.stringify({
      channel: {
        namespaces: [
          // delta_publish: every publication is a delta candidate; in 'dx' only those published with `delta: true`.
          { name: 'd', ...common, allowed_delta_types: ['fossil'], delta_publish: true },
          { name: 'dx', ...common, allowed_delta_types: ['fossil'] },
          { name: 't', ...common, allow_tags_filter: true },
          { name: 'plain', ...common },
        ],
      },
    }),
  );
  args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn', '--position-check-interval', '1'];
  gateways = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await Promise.all(gateways.map((g) => g.stop()));
  await redis.stop();
});

async function publish(gateway: SwitchboardProcess, channel: string, data: unknown, tags?: Record<string, string>, delta?: boolean): Promise<number> {
  const r = await fetch(`${gateway.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data, tags, delta }) });
  const body = (await r.json()) as { result?: { offset: number } };
  if (!body.result) throw new Error(`publish failed: ${JSON.stringify(body)}`);
  return body.result.offset;
}

async function client(url: string): Promise<Centrifuge> {
  const c = new Centrifuge(url, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'u' }), minReconnectDelay: 50, maxReconnectDelay: 300 });
  cleanups.push(() => c.disconnect());
  c.connect();
  return c;
}

/** A document-like payload: a large state of which each publication changes a little. */
function doc(n: number): unknown {
  const items = Array.from({ length: 40 }, (_, i) => ({ id: i, title: `item ${i}`, done: i < n % 40, note: i === n % 40 ? `edited at ${n}` : 'unchanged text here' }));
  return { version: n, title: 'shared list', items };
}

/** A raw JSON client counting the bytes of the publication frames it gets on one channel. */
async function rawCounter(url: string, channel: string, delta: boolean): Promise<{ bytes: () => number; frames: () => number }> {
  const ws = new WebSocket(url);
  cleanups.push(() => ws.close());
  let bytes = 0;
  let frames = 0;
  const subscribed = new Promise<void>((resolve) => {
    ws.on('message', (m: Buffer) => {
      const text = m.toString();
      if (text.includes('"pub":')) {
        bytes += m.length;
        frames++;
      }
      if (text.includes('"id":2')) resolve();
    });
  });
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ id: 1, connect: { token: await hmacToken(SECRET, { sub: 'raw' }) } }));
  ws.send(JSON.stringify({ id: 2, subscribe: { channel, ...(delta ? { delta: 'fossil' } : {}) } }));
  await subscribed;
  return { bytes: () => bytes, frames: () => frames };
}

test('the SDK, JSON and Protobuf builds, decodes 100 delta-compressed publications, across a gateway restart and recoveries', async () => {
  const channel = 'd:doc';
  const sw = await TcpSwitch.start(gateways[0].port);
  cleanups.push(() => sw.close());
  const c = await client(sw.wsUrl);
  const sub: Subscription = c.newSubscription(channel, { delta: 'fossil' });
  const got: unknown[] = [];
  sub.on('publication', (ctx) => got.push(ctx.data));
  const subscribed: { wasRecovering: boolean; recovered: boolean }[] = [];
  sub.on('subscribed', (ctx) => subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.subscribe();
  // The Protobuf build on the same path: deltas as bytes, against the same base.
  const pb = new ProtobufCentrifuge(sw.wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'u' }), minReconnectDelay: 50, maxReconnectDelay: 300 });
  cleanups.push(() => pb.disconnect());
  pb.connect();
  const pbSub = pb.newSubscription(channel, { delta: 'fossil' });
  const gotPb: unknown[] = [];
  pbSub.on('publication', (ctx) => gotPb.push(JSON.parse(new TextDecoder().decode(ctx.data as Uint8Array))));
  let pbSubscribed = 0;
  pbSub.on('subscribed', () => pbSubscribed++);
  pbSub.subscribe();
  await waitFor(() => subscribed.length === 1 && pbSubscribed === 1);
  const withDelta = await rawCounter(gateways[0].wsUrl, channel, true);
  const without = await rawCounter(gateways[0].wsUrl, channel, false);

  const sent: unknown[] = [];
  const send = async (n: number): Promise<void> => {
    sent.push(doc(n));
    await publish(gateways[1], channel, doc(n));
  };
  for (let n = 0; n < 40; n++) await send(n);
  await waitFor(() => got.length === 40 && withDelta.frames() === 40 && without.frames() === 40);
  const stats = sub.deltaStats();
  console.log(
    `delta bytes on the wire for 40 document publications (${JSON.stringify(doc(1)).length} B of data each): ` +
      `with delta ${withDelta.bytes()} B, without ${without.bytes()} B (${((100 * withDelta.bytes()) / without.bytes()).toFixed(1)}%); ` +
      `SDK deltaStats ${JSON.stringify(stats)}`,
  );
  expect(withDelta.bytes()).toBeLessThan(without.bytes() / 4);

  // The gateway it is on stops: the SDK comes back through the other and recovers what it missed.
  sw.setTarget(gateways[1].port);
  await gateways[0].stop();
  for (let n = 40; n < 70; n++) await send(n);
  await waitFor(() => subscribed.length === 2, { timeoutMs: 10_000 });
  expect(subscribed[1]).toEqual({ wasRecovering: true, recovered: true });
  // The stopped gateway comes back; the SDK is moved onto it and recovers again, then publications flow live.
  gateways[0] = await startSwitchboard('gateway', args);
  sw.setTarget(gateways[0].port);
  sw.cutAll();
  for (let n = 70; n < 80; n++) await send(n);
  await waitFor(() => subscribed.length === 3 && pbSubscribed === 3, { timeoutMs: 10_000 });
  expect(subscribed[2]).toEqual({ wasRecovering: true, recovered: true });
  for (let n = 80; n < 100; n++) await send(n);
  await waitFor(() => got.length === 100 && gotPb.length === 100, { timeoutMs: 10_000, message: `JSON ${got.length}, Protobuf ${gotPb.length}` });
  expect(got).toEqual(sent);
  expect(gotPb).toEqual(sent);
  const pbStats = pbSub.deltaStats();
  console.log(`after 100 publications: JSON SDK deltaStats ${JSON.stringify(sub.deltaStats())}, Protobuf ${JSON.stringify(pbStats)}`);
  expect(pbStats.numPublications).toBe(100);
  expect(pbStats.numFullPayloads).toBeLessThanOrEqual(45);
  expect(pbStats.numDeltaPayloads).toBe(100 - pbStats.numFullPayloads);
  const after = sub.deltaStats();
  expect(after.numPublications).toBe(100);
  // Recovered publications and the first one after a resubscribe go out full; every other one as a delta.
  expect(after.numFullPayloads).toBeLessThanOrEqual(45);
  expect(after.numDeltaPayloads).toBe(100 - after.numFullPayloads);
}, 60_000);

test('without delta_publish, only publications published with delta: true reach a delta subscriber as deltas', async () => {
  const channel = 'dx:doc';
  const c = await client(gateways[0].wsUrl);
  const sub: Subscription = c.newSubscription(channel, { delta: 'fossil' });
  const got: unknown[] = [];
  sub.on('publication', (ctx) => got.push(ctx.data));
  let subscribed = false;
  sub.on('subscribed', () => (subscribed = true));
  sub.subscribe();
  await waitFor(() => subscribed);
  const sent: unknown[] = [];
  // Full, full, delta, delta, full, delta (via broadcast): the flag decides, not the namespace.
  const plan = [false, false, true, true, false, true];
  for (const [n, delta] of plan.entries()) {
    sent.push(doc(n));
    if (n < plan.length - 1) await publish(gateways[1], channel, doc(n), undefined, delta || undefined);
    else {
      const r = await fetch(`${gateways[1].url}/api/broadcast`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channels: [channel], data: doc(n), delta }) });
      expect(await r.json()).toMatchObject({ result: { responses: [{ result: { offset: n + 1 } }] } });
    }
  }
  await waitFor(() => got.length === plan.length);
  expect(got).toEqual(sent);
  expect(sub.deltaStats()).toMatchObject({ numPublications: 6, numFullPayloads: 3, numDeltaPayloads: 3 });
  // A non-boolean delta is a bad request, as for any boolean field.
  const bad = await fetch(`${gateways[1].url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data: 1, delta: 'yes' }) });
  expect(await bad.json()).toMatchObject({ error: { code: 107 } });
});

test('tags filters deliver exactly the matching publications to each subscriber; bad or unallowed filters get 107', async () => {
  const channel = 't:news';
  const c = await client(gateways[1].wsUrl);
  const subA = c.newSubscription(channel, { tagsFilter: { key: 'kind', cmp: 'eq', val: 'a' } });
  const c2 = await client(gateways[1].wsUrl);
  const subB2 = c2.newSubscription(channel, { tagsFilter: { key: 'kind', cmp: 'in', vals: ['b', 'c'] } });
  // The Protobuf variant carries the filter as a FilterNode message; the same filter applies.
  const pb = new ProtobufCentrifuge(gateways[1].wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'u' }) });
  cleanups.push(() => pb.disconnect());
  pb.connect();
  const pbSub = pb.newSubscription(channel, { tagsFilter: { key: 'kind', cmp: 'eq', val: 'a' } });
  const gotA: unknown[] = [];
  const gotB: unknown[] = [];
  const gotPb: unknown[] = [];
  pbSub.on('publication', (ctx) => gotPb.push(JSON.parse(new TextDecoder().decode(ctx.data as Uint8Array))));
  pbSub.subscribe();
  subA.on('publication', (ctx) => gotA.push(ctx.data));
  subB2.on('publication', (ctx) => gotB.push(ctx.data));
  subA.subscribe();
  subB2.subscribe();
  await Promise.all([subA, subB2, pbSub].map((s) => new Promise((r) => s.once('subscribed', r))));
  const kinds = ['a', 'b', 'c', 'a', 'd', 'b'];
  for (const [i, kind] of kinds.entries()) await publish(gateways[1], channel, { i }, { kind });
  await publish(gateways[1], channel, { i: 'end' }, { kind: 'a' });
  await waitFor(() => gotA.length === 3, { message: `A ${JSON.stringify(gotA)} B ${JSON.stringify(gotB)}` });
  await waitFor(() => gotB.length === 3, { message: `B ${JSON.stringify(gotB)}` });
  expect(gotA).toEqual([{ i: 0 }, { i: 3 }, { i: 'end' }]);
  expect(gotB).toEqual([{ i: 1 }, { i: 2 }, { i: 5 }]);
  await waitFor(() => gotPb.length === 3, { message: `Protobuf ${JSON.stringify(gotPb)}` });
  expect(gotPb).toEqual(gotA);

  // An operator Centrifugo does not define (the cast gets it past the SDK's types, as a hand-made frame would).
  const errors: number[] = [];
  const bad = c2.newSubscription('t:other', { tagsFilter: { key: 'kind', cmp: 'nope' as 'eq', val: 'a' } });
  bad.on('unsubscribed', (ctx) => errors.push(ctx.code));
  const refused = c2.newSubscription('plain:x', { tagsFilter: { key: 'kind', cmp: 'eq', val: 'a' } });
  refused.on('unsubscribed', (ctx) => errors.push(ctx.code));
  bad.subscribe();
  refused.subscribe();
  await waitFor(() => errors.length >= 2, { message: `errors ${JSON.stringify(errors)}` });
  expect(errors.slice(0, 2)).toEqual([107, 107]);
}, 30_000);
