// examples/php run with Debian's php-cli against a real gateway: its tokens let an SDK client in, its publish reaches it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge, type PublicationContext } from 'centrifuge';
import { freePort, startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const SECRET = 'php-example-secret';
const API_KEY = 'php-example-key';
const SERVER_PHP = path.resolve(__dirname, '..', '..', '..', 'examples', 'php', 'server.php');

let redis: RedisServer;
let gateway: SwitchboardProcess;
let php: ChildProcess | undefined;
let phpOutput = '';
let backend: string;
const clients: Centrifuge[] = [];

beforeAll(async () => {
  // CI installs php-cli (.ci/run): a missing binary is a broken setup, not a reason to skip.
  const version = spawnSync('php', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`this test runs examples/php with the "php" binary, which is missing: apt-get install php-cli (.ci/run does) — ${version.error?.message ?? version.stderr}`);
  }
  redis = await startRedis();
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-php-')), 'config.yaml');
  writeFileSync(
    config,
    [
      'channel:',
      '  namespaces:',
      // Only holders of a subscription token get in.
      '    - name: secret',
      '      history_size: 10',
      '      history_ttl: 300s',
      '      force_recovery: true',
      '      presence: true',
    ].join('\n'),
  );
  gateway = await startSwitchboard('gateway', ['--redis', redis.url, '--config', config, '--token-hmac-secret', SECRET, '--api-key', API_KEY, '--log-level', 'warn']);

  const port = await freePort();
  backend = `http://127.0.0.1:${port}`;
  php = spawn('php', ['-S', `127.0.0.1:${port}`, SERVER_PHP], {
    cwd: path.dirname(SERVER_PHP),
    env: { ...process.env, SWITCHBOARD_TOKEN_HMAC_SECRET: SECRET, SWITCHBOARD_API_KEY: API_KEY, SWITCHBOARD_API_URL: `${gateway.url}/api` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [php.stdout, php.stderr]) stream?.on('data', (chunk: Buffer) => (phpOutput = (phpOutput + chunk.toString()).slice(-4000)));
  await waitFor(async () => (await fetch(`${backend}/token?user=probe`).catch(() => undefined))?.status === 200, {
    timeoutMs: 10000,
    message: 'the PHP backend to answer',
  }).catch((err: Error) => {
    throw new Error(`${err.message}; php said:\n${phpOutput}`);
  });
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  php?.kill();
  await gateway?.stop();
  await redis?.stop();
});

async function token(route: string): Promise<string> {
  const r = await fetch(`${backend}${route}`);
  const body = (await r.json()) as { token?: string };
  if (r.status !== 200 || !body.token) throw new Error(`GET ${route}: ${r.status} ${JSON.stringify(body)}; php said:\n${phpOutput}`);
  return body.token;
}

describe('the PHP example backend', () => {
  it('makes tokens a gateway accepts, and its publish, presence and history work through the HTTP API', async () => {
    const channel = 'secret:room';
    const client = new Centrifuge(gateway.wsUrl, { websocket: WebSocket, getToken: () => token('/token?user=alice') });
    clients.push(client);
    const sub = client.newSubscription(channel, { getToken: (ctx) => token(`/subscription-token?user=alice&channel=${encodeURIComponent(ctx.channel)}`) });
    const received: PublicationContext[] = [];
    sub.on('publication', (ctx) => received.push(ctx));
    const subscribed = new Promise<void>((resolve, reject) => {
      sub.once('subscribed', () => resolve());
      sub.once('error', (ctx) => reject(new Error(`subscribe failed: ${JSON.stringify(ctx.error)}`)));
      client.once('disconnected', (ctx) => reject(new Error(`connection refused: ${ctx.code} ${ctx.reason}`)));
    });
    sub.subscribe();
    client.connect();
    await subscribed;

    const published = await fetch(`${backend}/publish?user=bob`, { method: 'POST', body: JSON.stringify({ channel, data: { text: 'from php' } }) });
    expect(published.status).toBe(200);
    expect(await published.json()).toEqual({ offset: 1, epoch: expect.any(String) });
    await waitFor(() => received.length === 1, { message: 'the publication made by PHP' });
    expect(received[0]).toMatchObject({ channel, data: { text: 'from php' }, offset: 1, tags: { from: 'bob' } });

    // The connection token's claims reached the gateway: alice, with the info PHP put in it.
    const presence = (await (await fetch(`${backend}/presence?channel=${channel}`)).json()) as { presence: Record<string, unknown>; stats: unknown };
    expect(Object.values(presence.presence)).toEqual([expect.objectContaining({ user: 'alice', conn_info: { name: 'alice' } })]);
    expect(presence.stats).toEqual({ num_clients: 1, num_users: 1 });

    const history = (await (await fetch(`${backend}/history?channel=${channel}&limit=10`)).json()) as { publications: unknown[] };
    expect(history.publications).toEqual([{ offset: 1, data: { text: 'from php' }, tags: { from: 'bob' } }]);
  });

  it('passes the API error on: code and message', async () => {
    const r = await fetch(`${backend}/history?channel=nope:x`);
    expect(r.status).toBe(502);
    expect(await r.json()).toEqual({ error: { code: 102, message: expect.stringContaining('no namespace') } });
  });

  it('without its subscription token the channel stays closed', async () => {
    const client = new Centrifuge(gateway.wsUrl, { websocket: WebSocket, getToken: () => token('/token?user=mallory') });
    clients.push(client);
    const sub = client.newSubscription('secret:room');
    const refused = new Promise<number>((resolve) => sub.once('unsubscribed', (ctx) => resolve(ctx.code)));
    sub.subscribe();
    client.connect();
    expect(await refused).toBe(103);
  });
});
