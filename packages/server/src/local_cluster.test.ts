// Runs scripts/cluster.sh (redis-server, three gateways, a worker, nginx, Prometheus) and checks clients, fan-out and metrics through it.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hmacToken, RawClient, waitFor } from '@switchboard/testkit';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..', '..');
const script = path.join(root, 'scripts', 'cluster.sh');
const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-cluster-test-'));
const CLIENTS = 30;
const GATEWAYS = ['gateway-1', 'gateway-2', 'gateway-3'];
const CHANNEL = 'feed:cluster-test';
const PUBLICATIONS = 3;

// The script's own settings only: SWITCHBOARD_* variables of whoever runs the tests must not reach the cluster.
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_'))),
  SWITCHBOARD_CLUSTER_DIR: dir,
  SWITCHBOARD_CLUSTER_SCRAPE: '1s',
  SWITCHBOARD_CLUSTER_GRACE: '5',
};

let state: Record<string, string> = {};
const clients: RawClient[] = [];

function cluster(command: 'start' | 'stop', timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [script, command], { env, timeout: timeoutMs, cwd: root });
}

function readState(): Record<string, string> {
  const text = readFileSync(path.join(dir, 'state.env'), 'utf8');
  return Object.fromEntries(text.split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

/** Alive and not a zombie waiting for init to reap it. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function api<T>(method: string, body: unknown): Promise<T> {
  const response = await fetch(`${state.URL_HTTP}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': state.API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  const reply = (await response.json()) as { result?: T; error?: unknown };
  if (reply.result === undefined) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query against Prometheus's HTTP API: the value per `node` label (set by the generated scrape config). */
async function promQuery(query: string): Promise<Map<string, number>> {
  const response = await fetch(`${state.URL_PROMETHEUS}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await response.json()) as { status: string; data?: { result: PromSample[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`prometheus: ${JSON.stringify(body)}`);
  return new Map(body.data.result.map((s) => [s.metric.node, Number(s.value[1])]));
}

/** Waits until the query has a value above zero for every one of `nodes`; returns the last answer either way. */
async function positiveForAll(query: string, nodes: string[], timeoutMs: number): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  await waitFor(
    async () => {
      last = await promQuery(query);
      return nodes.every((node) => (last.get(node) ?? 0) > 0);
    },
    { timeoutMs, intervalMs: 250 },
  ).catch(() => undefined);
  return last;
}

beforeAll(async () => {
  // Installing nginx and Prometheus (root only, when missing) dominates a first run; afterwards start takes seconds.
  await cluster('start', 240_000);
  state = readState();
}, 300_000);

afterAll(async () => {
  for (const client of clients) client.close();
  // Whatever happened above, nothing may stay running: stop is a no-op once everything is stopped.
  await cluster('stop', 60_000).catch((err: Error) => console.error(`cluster.sh stop failed: ${err.message}`));
  rmSync(dir, { recursive: true, force: true });
}, 90_000);

test('the state file names every process and URL', () => {
  expect(state.URL_WEBSOCKET).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/connection\/websocket$/);
  expect(state.URL_PROMETHEUS).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  for (const key of ['REDIS', 'GATEWAY1', 'GATEWAY2', 'GATEWAY3', 'WORKER1', 'NGINX', 'PROMETHEUS']) {
    expect(running(Number(state[`${key}_PID`]))).toBe(true);
    // Never a standard port of a service already on this machine (Redis 6379, Prometheus 9090, nginx 80...).
    expect(Number(state[`${key}_PORT`])).toBeGreaterThan(10000);
  }
});

test(`${CLIENTS} clients connected through nginx spread over all three gateways`, async () => {
  const opened = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const client = await RawClient.open(state.URL_WEBSOCKET);
      clients.push(client);
      const connected = await client.command('connect', { token: await hmacToken(state.TOKEN_HMAC_SECRET, { sub: `user-${i}` }, 300) });
      expect(connected.error).toBeUndefined();
      const subscribed = await client.command('subscribe', { channel: CHANNEL });
      expect(subscribed.error).toBeUndefined();
      return connected.connect as { client: string };
    }),
  );
  expect(new Set(opened.map((c) => c.client)).size).toBe(CLIENTS);

  // The API's `info` surveys every gateway over Redis: each reports its own clients.
  let counts = new Map<string, number>();
  await waitFor(
    async () => {
      const info = await api<{ nodes: { name: string; num_clients: number }[] }>('info', {});
      counts = new Map(info.nodes.map((n) => [n.name, n.num_clients]));
      return [...counts.values()].reduce((a, b) => a + b, 0) === CLIENTS && counts.size === GATEWAYS.length;
    },
    { timeoutMs: 10_000, intervalMs: 200 },
  ).catch(() => undefined);
  expect([...counts.keys()].sort()).toEqual(GATEWAYS);
  // least_conn over three gateways: an even split, give or take the race between simultaneous upgrades.
  for (const gateway of GATEWAYS) expect(counts.get(gateway)).toBeGreaterThanOrEqual(CLIENTS / GATEWAYS.length / 2);
}, 30_000);

test('publications through the HTTP API reach every client on every gateway, in order', async () => {
  for (let n = 1; n <= PUBLICATIONS; n++) {
    const result = await api<{ offset: number; epoch: string }>('publish', { channel: CHANNEL, data: { n } });
    expect(result.offset).toBe(n);
  }
  await Promise.all(clients.map((c) => c.waitPush((p) => p.channel === CHANNEL && (p.pub as { offset?: number } | undefined)?.offset === PUBLICATIONS, 10_000)));
  const expected = Array.from({ length: PUBLICATIONS }, (_, i) => expect.objectContaining({ offset: i + 1, data: { n: i + 1 } }));
  for (const client of clients) expect(client.publications(CHANNEL)).toEqual(expected);
}, 20_000);

test('Prometheus scrapes every gateway and the worker, and sees connections and deliveries on each gateway', async () => {
  const up = await positiveForAll('up{job=~"switchboard-.*"}', [...GATEWAYS, 'worker-1'], 15_000);
  expect(Object.fromEntries(up)).toEqual({ 'gateway-1': 1, 'gateway-2': 1, 'gateway-3': 1, 'worker-1': 1 });

  const connections = await positiveForAll('switchboard_connections{job="switchboard-gateway"}', GATEWAYS, 15_000);
  expect([...connections.keys()].sort()).toEqual(GATEWAYS);
  expect([...connections.values()].reduce((a, b) => a + b, 0)).toBe(CLIENTS);

  const deliveries = await positiveForAll('switchboard_deliveries_total{job="switchboard-gateway"}', GATEWAYS, 15_000);
  for (const gateway of GATEWAYS) expect(deliveries.get(gateway)).toBeGreaterThan(0);
  // At most one frame per publication and client. (Not exactly that many: the gateway does not count the
  // frames it hands to subscribers still catching up after their subscribe, which is where the first
  // publication of a new channel goes.)
  expect([...deliveries.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(PUBLICATIONS * CLIENTS);
}, 50_000);

test('cluster.sh stop drains the gateways (clients get 3001 through nginx) and leaves nothing running', async () => {
  const pids = Object.entries(state).filter(([key]) => key.endsWith('_PID')).map(([, pid]) => Number(pid));
  expect(pids).toHaveLength(7);
  const closes = Promise.all(clients.map((c) => c.closed));
  await cluster('stop', 60_000);
  expect(new Set((await closes).map((c) => c.code))).toEqual(new Set([3001]));
  expect(pids.filter(running)).toEqual([]);
  expect(existsSync(path.join(dir, 'state.env'))).toBe(false);
}, 70_000);
