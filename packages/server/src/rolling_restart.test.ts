// A rolling restart behind nginx (scripts/cluster.sh): each gateway in turn drains and comes back while the
// backend keeps publishing; clients reconnect through nginx to the others and recover every publication.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { hmacToken, waitFor } from '@switchboard/testkit';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..', '..');
const script = path.join(root, 'scripts', 'cluster.sh');
const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-rolling-'));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_'))),
  SWITCHBOARD_CLUSTER_DIR: dir,
  SWITCHBOARD_CLUSTER_WORKERS: '0',
  SWITCHBOARD_CLUSTER_GRACE: '2',
};
const CHANNEL = 'feed:rolling';
const CLIENTS = 24;

let state: Record<string, string> = {};
const clients: Centrifuge[] = [];

function cluster(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [script, ...args], { env, timeout: 60000, cwd: root });
}

beforeAll(async () => {
  await cluster('start');
  const text = readFileSync(path.join(dir, 'state.env'), 'utf8');
  state = Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}, 90000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cluster('stop');
}, 60000);

/**
 * Publishes as a careful backend does: with an idempotency key, retried when the balancer answers an error
 * (nginx does not retry a POST on another gateway by itself), so a retry never publishes twice.
 */
async function publish(n: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const r = await fetch(`${state.URL_HTTP}/api/publish`, {
      method: 'POST',
      headers: { 'X-API-Key': state.API_KEY },
      body: JSON.stringify({ channel: CHANNEL, data: { n }, idempotency_key: `rolling-${n}` }),
    }).catch(() => undefined);
    if (r?.status === 200) {
      const body = (await r.json()) as { result?: { offset: number } };
      if (body.result) return body.result.offset;
    }
    if (attempt >= 100) throw new Error(`publish ${n} failed ${attempt} times, last: ${r?.status} ${r ? await r.text() : "no response"}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('every gateway restarted in turn under load: no publication on a recoverable channel is lost', async () => {
  const wsUrl = `${state.URL_HTTP.replace('http://', 'ws://')}/connection/websocket`;
  const received = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const client = new Centrifuge(wsUrl, { websocket: WebSocket, token: await hmacToken(state.TOKEN_HMAC_SECRET, { sub: `u${i}` }), minReconnectDelay: 50, maxReconnectDelay: 500 });
      clients.push(client);
      const got = { offsets: [] as number[], subscribed: [] as { wasRecovering: boolean; recovered: boolean }[] };
      const sub = client.newSubscription(CHANNEL);
      sub.on('publication', (ctx) => got.offsets.push(ctx.offset ?? 0));
      sub.on('subscribed', (ctx) => got.subscribed.push({ wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }));
      const first = new Promise((resolve) => sub.once('subscribed', resolve));
      sub.subscribe();
      client.connect();
      await first;
      return got;
    }),
  );

  let publishing = true;
  let last = 0;
  const publisher = (async () => {
    // The backend keeps publishing through nginx; a draining gateway's 503 is retried on another by nginx.
    for (let n = 0; publishing; n++) {
      last = await publish(n);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  for (let g = 1; g <= 3; g++) {
    await cluster('restart-gateway', String(g));
    // As an operator would: let the balancer take the restarted gateway back (nginx's fail_timeout here is 2 s)
    // before draining the next one, so the cluster never runs out of gateways.
    await new Promise((r) => setTimeout(r, 2500));
  }
  publishing = false;
  await publisher;

  await waitFor(() => received.every((r) => r.offsets[r.offsets.length - 1] === last), { timeoutMs: 20000, message: 'every client caught up' });
  for (const r of received) {
    expect(r.offsets).toEqual(Array.from({ length: r.offsets.length }, (_, k) => r.offsets[0] + k));
    expect(r.subscribed.slice(1).every((s) => s.wasRecovering && s.recovered)).toBe(true);
  }
  // Every client was moved at least once: each gateway it sat on was restarted.
  expect(received.every((r) => r.subscribed.length >= 2)).toBe(true);
}, 120000);
