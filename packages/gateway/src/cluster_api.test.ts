// Cluster-wide presence, join/leave and HTTP API methods: a call on one gateway acts on clients of another.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hmacToken, RawClient, startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'api-secret';
const API_KEY = 'api-key';

let redis: RedisServer;
let a: SwitchboardProcess;
let b: SwitchboardProcess;
let args: string[];
const clients: RawClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-api-')), 'config.yaml');
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
      '      allow_presence_for_subscriber: true',
      '      history_size: 10',
      '      history_ttl: 60s',
    ].join('\n'),
  );
  args = ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn', '--presence-ttl', '2'];
  [a, b] = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([a.stop(), b.stop()]);
  await redis.stop();
});

async function client(gateway: SwitchboardProcess, user: string): Promise<RawClient> {
  const c = await RawClient.open(gateway.wsUrl);
  clients.push(c);
  const reply = await c.command('connect', { token: await hmacToken(SECRET, { sub: user, info: { name: user } }) });
  expect(reply.error).toBeUndefined();
  return c;
}

async function api(gateway: SwitchboardProcess, method: string, body: unknown): Promise<{ result?: any; error?: { code: number; message: string } }> {
  const r = await fetch(`${gateway.url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return (await r.json()) as { result?: unknown; error?: { code: number; message: string } };
}

function users(presence: Record<string, { user: string }>): string[] {
  return Object.values(presence).map((i) => i.user).sort();
}

describe('presence and join/leave across gateways', () => {
  it('agree on every gateway, reach subscribers elsewhere, and forget a killed gateway within the TTL', async () => {
    const channel = 'room:lobby';
    const alice = await client(a, 'alice');
    expect((await alice.command('subscribe', { channel, join_leave: true })).error).toBeUndefined();
    const bob = await client(b, 'bob');
    expect((await bob.command('subscribe', { channel, join_leave: true })).error).toBeUndefined();
    const bob2 = await client(b, 'bob');
    expect((await bob2.command('subscribe', { channel })).error).toBeUndefined();

    // Bob's join on B reaches Alice on A, with the info from his token.
    await alice.waitPush((p) => p.channel === channel && (p.join as any)?.info?.user === 'bob');
    expect((alice.pushes.find((p) => (p.join as any)?.info?.user === 'bob') as any).join.info.conn_info).toEqual({ name: 'bob' });

    for (const [c, gw] of [[alice, a], [bob, b]] as const) {
      const presence = (await c.command('presence', { channel })).presence as { presence: Record<string, { user: string }> };
      expect(users(presence.presence)).toEqual(['alice', 'bob', 'bob']);
      expect((await c.command('presence_stats', { channel })).presence_stats).toEqual({ num_clients: 3, num_users: 2 });
      expect((await api(gw, 'presence_stats', { channel })).result).toEqual({ num_clients: 3, num_users: 2 });
    }

    // A third gateway dies without a word: its entry lasts at most the TTL (2 s) plus one refresh period.
    const c = await startSwitchboard('gateway', args);
    const carol = await client(c, 'carol');
    expect((await carol.command('subscribe', { channel })).error).toBeUndefined();
    expect(users((await api(a, 'presence', { channel })).result.presence)).toEqual(['alice', 'bob', 'bob', 'carol']);
    c.kill();
    const killedAt = Date.now();
    await waitFor(async () => users((await api(a, 'presence', { channel })).result.presence).length === 3, { timeoutMs: 6000, message: 'carol gone from presence' });
    expect(Date.now() - killedAt).toBeLessThan(4000);

    // Leave on B reaches A too.
    expect((await bob.command('unsubscribe', { channel })).error).toBeUndefined();
    await alice.waitPush((p) => p.channel === channel && (p.leave as any)?.info?.user === 'bob');
    expect((await api(b, 'presence_stats', { channel })).result).toEqual({ num_clients: 2, num_users: 2 });
  });
});

describe('HTTP API methods act on clients of another gateway', () => {
  it('disconnect closes the user connections on every gateway', async () => {
    const [onA, onB, other] = [await client(a, 'dave'), await client(b, 'dave'), await client(b, 'erin')];
    expect((await api(a, 'disconnect', { user: 'dave' })).result).toEqual({});
    expect((await onA.closed).code).toBe(3503);
    expect((await onB.closed).code).toBe(3503);
    expect((await other.command('subscribe', { channel: 'still-here' })).error).toBeUndefined();
  });

  it('disconnect with a code and one client only', async () => {
    const [first, second] = [await client(b, 'fred'), await client(b, 'fred')];
    const clientId = ((await first.command('refresh', { token: await hmacToken(SECRET, { sub: 'fred' }) })).refresh as { client: string }).client;
    expect((await api(a, 'disconnect', { user: 'fred', client: clientId, disconnect: { code: 4001, reason: 'moved' } })).result).toEqual({});
    expect(await first.closed).toEqual({ code: 4001, reason: 'moved' });
    expect((await second.command('subscribe', { channel: 'ok' })).error).toBeUndefined();
  });

  it('unsubscribe ends the subscription on another gateway with a push', async () => {
    const gina = await client(b, 'gina');
    expect((await gina.command('subscribe', { channel: 'news' })).error).toBeUndefined();
    expect((await api(a, 'unsubscribe', { user: 'gina', channel: 'news' })).result).toEqual({});
    await gina.waitPush((p) => p.channel === 'news' && p.unsubscribe !== undefined);
    expect(gina.pushes.find((p) => p.unsubscribe)?.unsubscribe).toEqual({ code: 2000, reason: 'server unsubscribe' });
    // It is really gone: subscribing again works.
    expect((await gina.command('subscribe', { channel: 'news' })).error).toBeUndefined();
  });

  it('channels counts subscribers over all gateways, and info lists every node', async () => {
    const [h1, h2, h3] = [await client(a, 'h1'), await client(b, 'h2'), await client(b, 'h3')];
    for (const c of [h1, h2, h3]) expect((await c.command('subscribe', { channel: 'counted-x' })).error).toBeUndefined();
    expect((await h1.command('subscribe', { channel: 'counted-y' })).error).toBeUndefined();
    const result = (await api(a, 'channels', { pattern: 'counted-*' })).result;
    expect(result).toEqual({ channels: { 'counted-x': { num_clients: 3 }, 'counted-y': { num_clients: 1 } } });
    const info = (await api(b, 'info', {})).result;
    expect(info.nodes).toHaveLength(2);
    expect(info.nodes.map((n: { num_clients: number }) => n.num_clients).every((n: number) => n > 0)).toBe(true);
  });

  it('history_remove empties history seen from every gateway', async () => {
    const channel = 'room:hist';
    for (let i = 0; i < 3; i++) await api(a, 'publish', { channel, data: i });
    expect((await api(b, 'history', { channel, limit: -1 })).result.publications).toHaveLength(3);
    expect((await api(b, 'history_remove', { channel })).result).toEqual({});
    expect((await api(a, 'history', { channel, limit: -1 })).result.publications).toEqual([]);
  });

  it.each([
    ['disconnect', {}, 107, '"user" is required'],
    ['disconnect', { user: 5 }, 107, '"user" must be a string'],
    ['disconnect', { user: 'x', disconnect: { code: 1000 } }, 107, '"disconnect" must be'],
    ['unsubscribe', { user: 'x' }, 107, '"channel"'],
    ['presence', { channel: 'no-presence' }, 108, 'presence is not enabled'],
    ['presence_stats', { channel: 'nope:x' }, 102, 'no namespace'],
    ['history_remove', { channel: '' }, 107, '"channel"'],
    ['channels', { pattern: 7 }, 107, '"pattern" must be a string'],
  ])('%s with %j is refused with %i', async (method, body, code, message) => {
    const reply = await api(a, method, body);
    expect(reply.error?.code).toBe(code);
    expect(reply.error?.message).toContain(message);
  });
});
