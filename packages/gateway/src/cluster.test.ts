// Two gateway processes on a private Redis: fan-out across gateways, one Redis subscription per channel, Redis restarts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge, type Subscription } from 'centrifuge';
import { redisPubSubChannel } from '@switchboard/engine';
import { hmacToken, RawClient, startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'cluster-secret';
const API_KEY = 'cluster-key';

let redis: RedisServer;
let gatewayA: SwitchboardProcess;
let gatewayB: SwitchboardProcess;
const clients: Centrifuge[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-cluster-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '  namespaces:',
      '    - name: chat',
      '      allow_subscribe_for_client: true',
      '      allow_publish_for_client: true',
      '      history_size: 1000',
      '      history_ttl: 300s',
      '      force_recovery: true',
    ].join('\n'),
  );
  const args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn'];
  [gatewayA, gatewayB] = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([gatewayA?.stop(), gatewayB?.stop()]);
  await redis?.stop();
});

interface Received {
  offsets: number[];
  data: unknown[];
  /** Each `subscribed` event: whether it was recovering and whether it recovered. */
  subscribed: { wasRecovering: boolean; recovered: boolean }[];
}

async function sdkSubscriber(gateway: SwitchboardProcess, channel: string, user: string): Promise<{ client: Centrifuge; sub: Subscription; received: Received }> {
  const client = new Centrifuge(gateway.wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: user }) });
  clients.push(client);
  const received: Received = { offsets: [], data: [], subscribed: [] };
  const sub = client.newSubscription(channel);
  sub.on('subscribed', (ctx) => received.subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
  sub.on('publication', (ctx) => {
    received.offsets.push(ctx.offset ?? 0);
    received.data.push(ctx.data);
  });
  const subscribed = new Promise<void>((resolve, reject) => {
    sub.once('subscribed', () => resolve());
    sub.once('error', (e) => reject(new Error(JSON.stringify(e.error))));
  });
  sub.subscribe();
  client.connect();
  await subscribed;
  return { client, sub, received };
}

function apiPublish(gateway: SwitchboardProcess, channel: string, data: unknown) {
  return fetch(`${gateway.url}/api/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY },
    body: JSON.stringify({ channel, data }),
  });
}

async function numsub(channel: string): Promise<number> {
  const conn = redis.client();
  try {
    const reply = (await conn.call('PUBSUB', 'NUMSUB', redisPubSubChannel(channel))) as [string, number];
    return Number(reply[1]);
  } finally {
    conn.disconnect();
  }
}

it('delivers publications from a client on A and the API on B to every subscriber on both, once, in order', async () => {
  const channel = 'chat:fanout';
  const subscribers = await Promise.all([
    ...[1, 2, 3].map((i) => sdkSubscriber(gatewayA, channel, `a${i}`)),
    ...[1, 2, 3].map((i) => sdkSubscriber(gatewayB, channel, `b${i}`)),
  ]);
  const publisher = subscribers[0].sub;
  const perSource = 25;
  await Promise.all([
    (async () => {
      for (let i = 0; i < perSource; i++) await publisher.publish({ from: 'client', i });
    })(),
    (async () => {
      for (let i = 0; i < perSource; i++) expect((await apiPublish(gatewayB, channel, { from: 'api', i })).status).toBe(200);
    })(),
  ]);
  const total = 2 * perSource;
  await waitFor(() => subscribers.every((s) => s.received.offsets.length >= total), { timeoutMs: 10000, message: 'all publications delivered' });
  const expectedOffsets = Array.from({ length: total }, (_, i) => i + 1);
  const reference = subscribers[0].received.data;
  for (const s of subscribers) {
    expect(s.received.offsets).toEqual(expectedOffsets);
    expect(s.received.data).toEqual(reference);
  }
  // Each source's messages arrive in the order it sent them.
  for (const from of ['client', 'api']) {
    const seq = (reference as { from: string; i: number }[]).filter((d) => d.from === from).map((d) => d.i);
    expect(seq).toEqual(Array.from({ length: perSource }, (_, i) => i));
  }
  const history = (await (await fetch(`${gatewayA.url}/api/history`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, limit: 1 }) })).json()) as { result: { offset: number } };
  expect(history.result.offset).toBe(total);
  for (const s of subscribers) s.client.disconnect();
});

it('holds one Redis subscription per channel per gateway and drops it after the last local subscriber', async () => {
  const channel = 'refcount';
  const token = await hmacToken(SECRET, { sub: 'r' });
  const open = async (gateway: SwitchboardProcess) => {
    const c = await RawClient.open(gateway.wsUrl);
    await c.command('connect', { token });
    expect((await c.command('subscribe', { channel })).error).toBeUndefined();
    return c;
  };
  const onA = await Promise.all(Array.from({ length: 20 }, () => open(gatewayA)));
  expect(await numsub(channel)).toBe(1);
  const onB = await Promise.all([open(gatewayB), open(gatewayB)]);
  expect(await numsub(channel)).toBe(2);
  for (const c of onA.slice(0, 19)) expect((await c.command('unsubscribe', { channel })).error).toBeUndefined();
  expect(await numsub(channel)).toBe(2);
  onA[19].close();
  await waitFor(async () => (await numsub(channel)) === 1, { timeoutMs: 5000, message: 'A dropped its subscription' });
  for (const c of onB) c.close();
  await waitFor(async () => (await numsub(channel)) === 0, { timeoutMs: 5000, message: 'B dropped its subscription' });
  for (const c of onA) c.close();
});

it('reports not ready while Redis is down, then resubscribes and delivers again', async () => {
  const channel = 'chat:restart';
  const subscribers = await Promise.all([sdkSubscriber(gatewayA, channel, 'x'), sdkSubscriber(gatewayB, channel, 'y')]);
  const readyz = async (g: SwitchboardProcess) => (await fetch(`${g.url}/readyz`)).status;

  await redis.stop();
  await waitFor(async () => (await readyz(gatewayA)) === 503 && (await readyz(gatewayB)) === 503, { timeoutMs: 10000, message: 'readyz 503 while Redis is down' });
  await redis.restart();
  await waitFor(async () => (await readyz(gatewayA)) === 200 && (await readyz(gatewayB)) === 200, { timeoutMs: 15000, message: 'readyz 200 after Redis is back' });
  expect(await numsub(channel)).toBe(2);

  // Redis lost the channel's history (new epoch): each subscriber is told it could not recover, then
  // receives what is published from then on.
  expect((await apiPublish(gatewayA, channel, { first: 'after restart' })).status).toBe(200);
  await waitFor(() => subscribers.every((s) => s.received.subscribed.some((c) => c.wasRecovering && !c.recovered)), {
    timeoutMs: 10000,
    message: 'subscribers resubscribed and were told recovery failed',
  });
  expect((await apiPublish(gatewayA, channel, { after: 'restart' })).status).toBe(200);
  await waitFor(() => subscribers.every((s) => s.received.data.some((d) => JSON.stringify(d) === '{"after":"restart"}')), {
    timeoutMs: 10000,
    message: 'publication after restart delivered to both gateways',
  });
  for (const s of subscribers) s.client.disconnect();
});
