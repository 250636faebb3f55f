// Starts and stops the systems under test on private Redis servers: a Switchboard cluster (gateways, optionally a
// versioning worker) on one Redis or a Redis Cluster, driven through its Centrifugo edge (subscribers on the JSON or
// the Protobuf variant) or its Pusher edge, the minimal uWS + Redis relay, Socket.IO with the Redis adapter, and
// soketi with its Redis adapter.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  freePort,
  httpStatus,
  startRedis,
  startRedisCluster,
  startSwitchboard,
  switchboardBin,
  waitFor,
  type RedisCluster,
  type RedisServer,
} from '@switchboard/testkit';
import { benchScript } from './ipc';
import { pin, type NamedProcess } from './procstat';
import type { Proto } from './protocols';
import type { PublishApi, PusherCredentials } from './publish_api';
import { installSoketi, soketiEnv, SOKETI_VERSION } from './soketi';

export type SystemName = 'switchboard' | 'switchboard-protobuf' | 'switchboard-pusher' | 'uws-relay' | 'socketio' | 'soketi';

export const SYSTEM_LABELS: Record<SystemName, string> = {
  switchboard: 'Switchboard',
  'switchboard-protobuf': 'Switchboard (Protobuf)',
  'switchboard-pusher': 'Switchboard (Pusher edge)',
  'uws-relay': 'uWS+Redis relay',
  socketio: 'Socket.IO+redis-adapter',
  soketi: `soketi ${SOKETI_VERSION}+redis-adapter`,
};

/** The client protocol each system's subscribers speak. */
const PROTOCOLS: Record<SystemName, Proto> = {
  switchboard: 'centrifugo',
  'switchboard-protobuf': 'centrifugo-protobuf',
  'switchboard-pusher': 'pusher',
  'uws-relay': 'centrifugo',
  socketio: 'socketio',
  soketi: 'pusher',
};

/** The systems that are Switchboard gateways, whichever edge their subscribers use. */
function isSwitchboard(system: SystemName): boolean {
  return system === 'switchboard' || system === 'switchboard-protobuf' || system === 'switchboard-pusher';
}

/** The one Pusher app of the Pusher systems (Switchboard's `--pusher-app`, soketi's default app). */
export const BENCH_PUSHER_APP: PusherCredentials = { id: 'bench', key: 'benchkey', secret: 'benchsecret' };

/** One redis-server, or a Redis Cluster of three primaries without replicas (Switchboard only). */
export type RedisTopologyName = 'single' | 'cluster';

export const REDIS_TOPOLOGY_LABELS: Record<RedisTopologyName, string> = {
  single: '1 Redis',
  cluster: 'Redis Cluster, 3 primaries',
};

const CLUSTER_PRIMARIES = 3;

/**
 * The V8 flags Switchboard ships with (deploy/Dockerfile, the k8s manifests and npm start; deploy.test.ts keeps
 * them alike and equal to this): the benchmark runs the gateways and the worker as users run them.
 */
export const SHIPPED_NODE_OPTIONS = '--max-semi-space-size=2';
/** The worker's: Node's defaults (the k8s and compose workers replace the image's NODE_OPTIONS). */
export const SHIPPED_WORKER_NODE_OPTIONS = '';

export interface ClusterOptions {
  /** Gateways (or relay / Socket.IO nodes). */
  nodes: number;
  /** Also start a Switchboard versioning worker. */
  worker?: boolean;
  /** CPU list for the server side (taskset -c), or undefined not to pin. */
  cpus?: string;
  /** Write a V8 CPU profile of each node process here when it exits. */
  profileDir?: string;
  /** Extra flags for each Switchboard gateway. */
  gatewayArgs?: string[];
  /** NODE_OPTIONS of the Switchboard gateways and worker (V8 flags such as --max-semi-space-size). */
  nodeOptions?: string;
  /** NODE_OPTIONS of the Switchboard worker when it should differ from the gateways'. */
  workerNodeOptions?: string;
  /** Pub/sub channels (`bench:` and the Pusher edge's `bench-`) keep history (default) or none. */
  history?: boolean;
  /** Where the data lives; default one redis-server. */
  redis?: RedisTopologyName;
  /** Switchboard: each gateway also serves its API on an internal port (node:http, pipelining supported). */
  internalPort?: boolean;
  /** Progress lines (e.g. installing soketi). */
  log?: (line: string) => void;
}

/** A Redis process of the system under test, named as in the per-process CPU columns. */
export interface RedisNode {
  name: string;
  port: number;
  pid: number;
}

export interface Cluster {
  system: SystemName;
  proto: Proto;
  host: string;
  /** One per node: WebSocket endpoint and publish API on the same port. */
  ports: number[];
  /** Switchboard started with `internalPort`: each gateway's `--internal-port` (the API through node:http), same order. */
  internalPorts?: number[];
  /** Headers of the publish API (the API key). */
  apiHeaders: Record<string, string>;
  apiKey: string;
  publishApi: PublishApi;
  /** The Pusher app the subscribers connect to (`proto` 'pusher'). */
  pusherApp?: PusherCredentials;
  /** Prefix of the benchmark's channel names: `bench:` (a Switchboard namespace), or `bench-` where ':' is not allowed (Pusher). */
  channelPrefix: string;
  /** Connection tokens are required (Switchboard); the peers take none. */
  secret?: string;
  redisUrl: string;
  redis: RedisTopologyName;
  /** `redis` for one server; `redis1`, `redis2`, … for the nodes of a Redis Cluster. */
  redisNodes: RedisNode[];
  /** The Redis Cluster, when `redis` is 'cluster': to ask it which primary owns which slot. */
  redisCluster?: RedisCluster;
  processes: NamedProcess[];
  stop(): Promise<void>;
}

export const BENCH_SECRET = 'bench-secret-not-for-production';
export const BENCH_API_KEY = 'bench-api-key';

/**
 * Namespaces: `bench:` pub/sub channels with history (offsets and recovery, as users run them); `docs:` documents.
 * Pusher channel names hold no ':', so the Pusher edge's `bench-*` channels live in the default namespace: the same
 * history as `bench:`, and open to anonymous subscribers as Pusher public channels need.
 */
function switchboardConfig(history: boolean): string {
  // Without history a channel keeps no offsets either: publish is PUBLISH through the script, nothing stored.
  const kept = (indent: string): string => (history ? `${indent}history_size: 100\n${indent}history_ttl: 300s\n` : '');
  return `channel:
  without_namespace:
    allow_subscribe_for_client: true
    allow_subscribe_for_anonymous: true
${kept('    ')}  namespaces:
    - name: bench
      allow_subscribe_for_client: true
${kept('      ')}    - name: docs
      documents: true
      allow_subscribe_for_client: true
      history_size: 100
      history_ttl: 300s
`;
}

async function redisPid(redis: RedisServer): Promise<number> {
  const client = redis.client();
  try {
    const info = await client.info('server');
    return Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);
  } finally {
    client.disconnect();
  }
}

interface StartedRedis {
  url: string;
  nodes: RedisNode[];
  cluster?: RedisCluster;
  stop(): Promise<void>;
}

async function startRedisTopology(topology: RedisTopologyName): Promise<StartedRedis> {
  if (topology === 'single') {
    const redis = await startRedis();
    return { url: redis.url, nodes: [{ name: 'redis', port: redis.port, pid: await redisPid(redis) }], stop: () => redis.stop() };
  }
  const cluster = await startRedisCluster({ primaries: CLUSTER_PRIMARIES, replicasPerPrimary: 0 });
  return {
    url: cluster.url,
    nodes: cluster.nodes.map((n, i) => ({ name: `redis${i + 1}`, port: n.port, pid: n.pid })),
    cluster,
    stop: () => cluster.stop(),
  };
}

export async function startCluster(system: SystemName, opts: ClusterOptions): Promise<Cluster> {
  const topology = opts.redis ?? 'single';
  // The peers speak to one Redis through plain clients; only Switchboard's engine routes by slot.
  if (topology === 'cluster' && !isSwitchboard(system)) throw new Error(`${SYSTEM_LABELS[system]} does not run on a Redis Cluster here`);
  const redis = await startRedisTopology(topology);
  const processes: NamedProcess[] = redis.nodes.map((n) => ({ name: n.name, pid: n.pid, side: 'sut' }));
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(stops.map((s) => s().catch(() => undefined)));
    await redis.stop();
  };
  try {
    const ports: number[] = [];
    const internalPorts: number[] = [];
    // Node refuses --cpu-prof in NODE_OPTIONS, so a profiled gateway or worker is spawned here rather than by the testkit.
    const profileDir = opts.profileDir;
    const startRole = async (role: 'gateway' | 'worker', args: string[]): Promise<{ port: number; pid: number; stop(): Promise<unknown> }> => {
      const nodeOptions = role === 'worker' ? (opts.workerNodeOptions ?? opts.nodeOptions) : opts.nodeOptions;
      const env = nodeOptions ? { NODE_OPTIONS: nodeOptions } : undefined;
      if (!profileDir) return startSwitchboard(role, args, { env });
      return startNodeProcess(switchboardBin, (port) => [role, '--port', String(port), ...args], '/readyz', profileDir, { env: env && (() => env) });
    };
    if (isSwitchboard(system)) {
      const pusherApp = system === 'switchboard-pusher' ? ['--pusher-app', `${BENCH_PUSHER_APP.id}:${BENCH_PUSHER_APP.key}:${BENCH_PUSHER_APP.secret}`] : [];
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-'));
      const config = path.join(dir, 'switchboard.yaml');
      writeFileSync(config, switchboardConfig(opts.history ?? true));
      stops.push(async () => rmSync(dir, { recursive: true, force: true }));
      const common = ['--redis', redis.url, '--log-level', 'warn', '--shutdown-grace', '5'];
      if (opts.internalPort) for (let i = 0; i < opts.nodes; i++) internalPorts.push(await freePort());
      const started = await Promise.all(
        Array.from({ length: opts.nodes }, (_, i) =>
          startRole('gateway', [
            ...(opts.internalPort ? ['--internal-port', String(internalPorts[i])] : []),
            ...common,
            '--token-hmac-secret',
            BENCH_SECRET,
            '--api-key',
            BENCH_API_KEY,
            '--config',
            config,
            '--host',
            '127.0.0.1',
            ...pusherApp,
            ...(opts.gatewayArgs ?? []),
          ]),
        ),
      );
      started.forEach((g, i) => {
        ports.push(g.port);
        processes.push({ name: `gw${i + 1}`, pid: g.pid, side: 'sut' });
        stops.unshift(() => g.stop());
      });
      if (opts.worker) {
        const w = await startRole('worker', [...common, '--host', '127.0.0.1']);
        processes.push({ name: 'worker', pid: w.pid, side: 'sut' });
        stops.unshift(() => w.stop());
      }
    } else if (system === 'soketi') {
      const server = await installSoketi(undefined, opts.log);
      const { hostname, port: redisPort } = new URL(redis.url);
      for (let i = 0; i < opts.nodes; i++) {
        const [metricsPort, discoveryPort] = [await freePort(), await freePort()];
        const env = (port: number): Record<string, string> =>
          soketiEnv({ port, metricsPort, discoveryPort, redisHost: hostname, redisPort: Number(redisPort), app: BENCH_PUSHER_APP });
        const node = await startNodeProcess(server, () => ['start'], '/ready', opts.profileDir, { env, cwd: path.dirname(path.dirname(server)) });
        ports.push(node.port);
        processes.push({ name: `node${i + 1}`, pid: node.pid, side: 'sut' });
        stops.unshift(node.stop);
      }
    } else {
      const script = system === 'uws-relay' ? 'relay_uws' : 'relay_socketio';
      for (let i = 0; i < opts.nodes; i++) {
        const node = await startNodeProcess(benchScript(script), (port) => ['--port', String(port), '--redis', redis.url], '/healthz', opts.profileDir);
        ports.push(node.port);
        processes.push({ name: `node${i + 1}`, pid: node.pid, side: 'sut' });
        stops.unshift(node.stop);
      }
    }
    if (opts.cpus !== undefined) for (const p of processes) pin(p.pid, opts.cpus);
    const pusher = system === 'switchboard-pusher' || system === 'soketi';
    return {
      system,
      proto: PROTOCOLS[system],
      host: '127.0.0.1',
      ports,
      internalPorts: internalPorts.length ? internalPorts : undefined,
      apiHeaders: pusher ? {} : { 'X-API-Key': BENCH_API_KEY },
      apiKey: BENCH_API_KEY,
      publishApi: pusher ? { kind: 'pusher', app: BENCH_PUSHER_APP } : { kind: 'centrifugo' },
      pusherApp: pusher ? BENCH_PUSHER_APP : undefined,
      channelPrefix: pusher ? 'bench-' : 'bench:',
      secret: isSwitchboard(system) && !pusher ? BENCH_SECRET : undefined,
      redisUrl: redis.url,
      redis: topology,
      redisNodes: redis.nodes,
      redisCluster: redis.cluster,
      processes,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Spawns a node server (a peer, or a profiled switchboard role) on a free port and waits for `readyPath` to answer
 * 200. `env` adds variables that name the port (soketi takes its configuration from the environment).
 */
async function startNodeProcess(
  script: string,
  args: (port: number) => string[],
  readyPath: string,
  profileDir?: string,
  opts: { env?: (port: number) => Record<string, string>; cwd?: string } = {},
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const execArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...execArgv, script, ...args(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env(port) } : process.env,
    cwd: opts.cwd,
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor(
    async () => {
      if (gone) throw new Error(`${script} exited before it was ready: ${stderr}`);
      return (await httpStatus(`http://127.0.0.1:${port}${readyPath}`)) === 200;
    },
    { timeoutMs: 15000, message: `${script} on port ${port} not ready` },
  );
  return {
    port,
    pid: child.pid ?? 0,
    async stop() {
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
