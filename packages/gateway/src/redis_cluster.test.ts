// Two gateway processes on a real Redis Cluster (3 primaries + 3 replicas): SDK subscribers of 60 channels spread
// over every primary get each publication exactly once, in order, and each gateway holds one sharded
// subscription per channel, on the primary that owns its slot only.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { redisPubSubChannel } from '../../engine/src/redis_keys';
import { hmacToken, startRedisCluster, startSwitchboard, waitFor, type RedisCluster, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'cluster-secret';
const API_KEY = 'cluster-key';
const CHANNELS = Array.from({ length: 60 }, (_, i) => `room:${i}`);

let cluster: RedisCluster;
let gateways: SwitchboardProcess[];

beforeAll(async () => {
  cluster = await startRedisCluster();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-rcluster-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(config, ['channel:', '  namespaces:', '    - name: room', '      allow_subscribe_for_client: true', '      history_size: 100', '      history_ttl: 300s', '      force_recovery: true'].join('\n'));
  const args = ['--redis', cluster.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn'];
  gateways = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
}, 60000);

afterAll(async () => {
  await Promise.all((gateways ?? []).map((g) => g.stop()));
  await cluster?.stop();
});

/** Sharded subscriptions of each channel on every primary: channel → [[port, count]] where count > 0. */
async function shardSubscriptions(): Promise<Map<string, [number, number][]>> {
  const out = new Map<string, [number, number][]>();
  for (const { port } of await cluster.primaries()) {
    const conn = new Redis({ host: '127.0.0.1', port });
    try {
      const reply = (await conn.call('PUBSUB', 'SHARDNUMSUB', ...CHANNELS.map((c) => redisPubSubChannel(c, 'sb')))) as (string | number)[];
      for (let i = 0; i < reply.length; i += 2) {
        const count = Number(reply[i + 1]);
        if (count > 0) out.set(CHANNELS[i / 2], [...(out.get(CHANNELS[i / 2]) ?? []), [port, count]]);
      }
    } finally {
      conn.disconnect();
    }
  }
  return out;
}

async function publish(gateway: SwitchboardProcess, channel: string, data: unknown): Promise<number> {
  const res = await fetch(`${gateway.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data }) });
  const body = (await res.json()) as { result?: { offset: number } };
  if (!body.result) throw new Error(`publish failed: ${JSON.stringify(body)}`);
  return body.result.offset;
}

it('delivers every publication exactly once, in order, to subscribers on both gateways', async () => {
  const clients: Centrifuge[] = [];
  const got = new Map<string, number[]>();
  try {
    for (const [g, gateway] of gateways.entries()) {
      const client = new Centrifuge(gateway.wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: `u${g}` }) });
      clients.push(client);
      const subscribed = CHANNELS.map((channel) => {
        const sub = client.newSubscription(channel);
        sub.on('publication', (ctx) => got.set(`${g} ${channel}`, [...(got.get(`${g} ${channel}`) ?? []), ctx.offset ?? -1]));
        const done = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
        sub.subscribe();
        return done;
      });
      client.connect();
      await Promise.all(subscribed);
    }

    // One sharded subscription per gateway and channel, on the owning primary only, and all three primaries used.
    const placed = await shardSubscriptions();
    for (const channel of CHANNELS) {
      const owner = await cluster.ownerOfSlot(await cluster.slotOfKey(redisPubSubChannel(channel, 'sb')));
      expect([channel, placed.get(channel)]).toEqual([channel, [[owner, 2]]]);
    }
    expect(new Set([...placed.values()].map((p) => p[0][0])).size).toBe(3);

    for (let round = 0; round < 5; round++) {
      await Promise.all(CHANNELS.map((channel, i) => publish(gateways[(i + round) % 2], channel, { round })));
    }
    await waitFor(() => [...got.values()].reduce((n, list) => n + list.length, 0) === 2 * CHANNELS.length * 5, { timeoutMs: 10000, message: 'every publication on both gateways' });
    for (const g of [0, 1]) for (const channel of CHANNELS) expect([g, channel, got.get(`${g} ${channel}`)]).toEqual([g, channel, [1, 2, 3, 4, 5]]);
  } finally {
    for (const client of clients) client.disconnect();
  }
  // The last subscriber gone, each gateway lets go of every sharded subscription.
  await waitFor(async () => (await shardSubscriptions()).size === 0, { timeoutMs: 5000, message: 'no sharded subscription left' });
}, 60000);


it('runs cluster-wide control over sharded channels: channels and info from both gateways, a disconnect from the other gateway', async () => {
  const client = new Centrifuge(gateways[0].wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'ctl-user' }) });
  const sub = client.newSubscription('room:control');
  const subscribed = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
  const disconnected = new Promise<number>((resolve) => client.once('disconnected', (ctx) => resolve(ctx.code)));
  sub.subscribe();
  client.connect();
  try {
    await subscribed;
    const api = async (method: string, body: unknown): Promise<any> =>
      (await (await fetch(`${gateways[1].url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(body) })).json());
    // Surveys travel over the control shards and come back on each node's own channel.
    expect((await api('info', {})).result.nodes).toHaveLength(2);
    expect((await api('channels', { pattern: 'room:control' })).result.channels).toEqual({ 'room:control': { num_clients: 1 } });
    expect(await api('disconnect', { user: 'ctl-user', disconnect: { code: 4501, reason: 'bye' } })).toEqual({ result: {} });
    expect(await disconnected).toBe(4501);
  } finally {
    client.disconnect();
  }
}, 30000);

it('is ready again within 10 s of a primary failover, and its subscriber gets what comes next, gap-free', async () => {
  const channel = 'room:failover';
  const client = new Centrifuge(gateways[0].wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'f' }), minReconnectDelay: 50, maxReconnectDelay: 500 });
  const offsets: number[] = [];
  const sub = client.newSubscription(channel);
  sub.on('publication', (ctx) => offsets.push(ctx.offset ?? -1));
  const subscribed = new Promise<void>((resolve) => sub.once('subscribed', () => resolve()));
  sub.subscribe();
  client.connect();
  try {
    await subscribed;
    await publish(gateways[1], channel, 'before');
    const owner = await cluster.ownerOfSlot(await cluster.slotOfKey(redisPubSubChannel(channel, 'sb')));
    await cluster.failoverKill(owner);
    const promotedAt = Date.now();
    await waitFor(async () => (await fetch(`${gateways[0].url}/readyz`)).status === 200 && (await fetch(`${gateways[1].url}/readyz`)).status === 200, {
      timeoutMs: 10000,
      message: 'both gateways ready after the promotion',
    });
    expect(Date.now() - promotedAt).toBeLessThan(10000);
    let acknowledged = 0;
    await waitFor(
      async () => {
        acknowledged = await publish(gateways[1], channel, 'after').catch(() => 0);
        return acknowledged > 0;
      },
      { timeoutMs: 10000, message: 'a publish after the failover' },
    );
    await waitFor(() => offsets.includes(acknowledged), { timeoutMs: 10000, message: 'the publication after the failover' });
    expect(offsets).toEqual(Array.from({ length: acknowledged }, (_, i) => i + 1));
    // The subscriber's gateway subscribed the channel's slot on the promoted replica: one moved slot at least.
    const metrics = await (await fetch(`${gateways[0].url}/metrics`)).text();
    expect(Number(/^switchboard_engine_moved_slots_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    await cluster.restartNode(owner);
  } finally {
    client.disconnect();
  }
}, 60000);
