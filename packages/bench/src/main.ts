// `npm run bench [-- --quick]`: runs the scenarios against Switchboard and its peers and prints the tables.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAverage, pin } from './procstat';
import { renderReport, type Machine, type Results } from './report';
import { LoadGen, MAX_SOCKETS_PER_PROCESS } from './runner';
import { apiScenario, documentsScenario, fanoutScenario, idleScenario, manyChannelsScenario, PROFILES, redisTopologyScenario, takesPart, type Profile } from './scenarios';
import { REDIS_TOPOLOGY_LABELS, SHIPPED_NODE_OPTIONS, SHIPPED_WORKER_NODE_OPTIONS, startCluster, SYSTEM_LABELS, type Cluster, type ClusterOptions, type SystemName } from './systems';

const USAGE = `Usage: npm run bench [-- flags]

  --quick                 a short run (a few minutes): fewer configurations, 1 s steps, 3 s API runs (f)
  --systems <list>        comma-separated (default: all six):
                            switchboard         2 gateways, Centrifugo protocol and HTTP API
                            switchboard-protobuf  the same 2 gateways and API, subscribers on the Centrifugo
                                                Protobuf protocol (binary frames); scenarios a and b only
                            switchboard-pusher  the same 2 gateways through their Pusher edge (protocol 7, Pusher HTTP API)
                            uws-relay           a minimal uWS + Redis relay (the same-hardware ceiling)
                            socketio            Socket.IO 4.8 with @socket.io/redis-adapter
                            soketi              soketi 1.6 with its Redis adapter (installed on first use into
                                                packages/bench/.soketi; skipped with the reason when it cannot run)
  --scenarios <list>      comma-separated (default: all):
                            a  fan-out: 1 channel, 1,000 or 5,000 subscribers
                            b  many channels: 1,000 channels x 5 subscribers, a random channel per publication
                            c  idle connections: connect rate and memory per connection
                            d  documents (Switchboard and a naive baseline)
                            e  scenario b for Switchboard on 1 Redis, then on a 3-primary Redis Cluster: Redis CPU
                               per 1,000 publications on each node and how the primaries share the channels
                            f  HTTP API publish throughput alone: no subscribers, 1,000 channels, 64 B, closed loop
                               (1 s warm-up, then 3 s quick / 5 s full) at depth 1 x 32 connections per node and
                               depth 32 x 4; Switchboard on its main port (uWS, depth 1) and its internal port
                               (node:http, both depths), the relay and Socket.IO at both depths, the Pusher edge
                               and soketi at depth 1
  --no-pin                do not pin processes to cores with taskset
  --cpu-prof <dir>        write a V8 CPU profile of every server process (gateways, worker, peers) into <dir>
  --gateway-args <args>   extra flags for every Switchboard gateway, space-separated (for experiments,
                          e.g. "--position-check-interval 3600"); the report names them
  --node-options <flags>  NODE_OPTIONS of the Switchboard gateways only (default: the project's
                          shipped "${SHIPPED_NODE_OPTIONS}", as the image, the k8s manifests and npm start set
                          it; "" for Node's defaults)
  --worker-node-options <flags>  the worker's NODE_OPTIONS (scenario d; default "": Node's defaults, as the k8s and
                          compose workers run; the image's flag is for gateways)
  --history <on|off>      Switchboard's pub/sub channels keep history (offsets, recovery; default on) or none
  --api-depth <n>         publish requests in flight per publisher connection (HTTP/1.1 pipelining; default 1)
                          in every scenario that publishes; in f, adds a configuration at depth n x 4 connections.
                          (uWS main ports, Switchboard's, the relay's and soketi's, close a connection that
                          pipelines: the requests in flight on it fail and are counted as failed)
  --out <dir>             where the report (.md) and raw results (.json) go (default packages/bench/results)
  -h, --help              this text
`;

interface Options {
  profile: Profile;
  systems: SystemName[];
  scenarios: Set<string>;
  pin: boolean;
  cpuProf?: string;
  gatewayArgs: string[];
  nodeOptions?: string;
  workerNodeOptions?: string;
  history: boolean;
  apiDepth: number;
  out: string;
}

const ALL_SYSTEMS: SystemName[] = ['switchboard', 'switchboard-protobuf', 'switchboard-pusher', 'uws-relay', 'socketio', 'soketi'];
const ALL_SCENARIOS = ['a', 'b', 'c', 'd', 'e', 'f'];

function parse(argv: string[]): Options | undefined {
  const opts: Options = {
    profile: PROFILES.full,
    systems: ALL_SYSTEMS,
    scenarios: new Set(ALL_SCENARIOS),
    pin: true,
    gatewayArgs: [],
    nodeOptions: SHIPPED_NODE_OPTIONS,
    workerNodeOptions: SHIPPED_WORKER_NODE_OPTIONS,
    history: true,
    apiDepth: 1,
    out: path.resolve(__dirname, '..', 'results'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') opts.profile = PROFILES.quick;
    else if (arg === '--no-pin') opts.pin = false;
    else if (arg === '--cpu-prof') opts.cpuProf = path.resolve(value());
    else if (arg === '--out') opts.out = path.resolve(value());
    else if (arg === '--gateway-args') opts.gatewayArgs = value().split(' ').filter(Boolean);
    else if (arg === '--node-options') opts.nodeOptions = value();
    else if (arg === '--worker-node-options') opts.workerNodeOptions = value();
    else if (arg === '--api-depth') {
      const v = value();
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= 1 && n <= 1024)) throw new Error(`--api-depth takes an integer from 1 to 1024, got ${v}`);
      opts.apiDepth = n;
    } else if (arg === '--history') {
      const v = value();
      if (v !== 'on' && v !== 'off') throw new Error(`--history takes on or off, got ${v}`);
      opts.history = v === 'on';
    }
    else if (arg === '--systems') {
      const list = value().split(',') as SystemName[];
      for (const s of list) if (!ALL_SYSTEMS.includes(s)) throw new Error(`unknown system ${s}; expected ${ALL_SYSTEMS.join(', ')}`);
      opts.systems = list;
    } else if (arg === '--scenarios') {
      const list = value().split(',');
      for (const s of list) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; expected one of ${ALL_SCENARIOS.join(', ')}`);
      opts.scenarios = new Set(list);
    } else if (arg === '-h' || arg === '--help') return undefined;
    else throw new Error(`unknown flag ${arg}\n\n${USAGE}`);
  }
  return opts;
}

function cmd(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'n/a';
  }
}

function machine(cores: number, layout: string, command: string, nodeOptions: string | undefined): Machine {
  let cpu = 'unknown CPU';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return {
    cpu,
    cores,
    kernel: os.release(),
    node: process.version,
    redis: cmd('redis-server', ['--version']).replace(/ sha=.*$/, ''),
    loadBefore: loadAverage(),
    layout,
    started: new Date().toISOString(),
    command,
    commit: ((c) => (c === 'n/a' ? undefined : c))(cmd('git', ['-C', __dirname, 'describe', '--always', '--dirty'])),
    nodeOptions,
  };
}

export async function main(argv: string[]): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parse(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  if (!opts) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Ctrl-C or a kill: exit through process.exit so the exit hooks SIGKILL every server and load process started.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const started = Date.now();
  const log = (line: string): void => {
    process.stderr.write(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s ${line}\n`);
  };
  const cores = os.availableParallelism();
  // Server side on core 0, load generator on core 1: each side gets one whole core, and the load generator's
  // own CPU never comes out of the servers' share.
  const pinned = opts.pin && cores >= 2 && pin(process.pid, '1');
  const sutCpus = pinned ? '0' : undefined;
  const loadCpus = pinned ? (cores > 2 ? `1-${cores - 1}` : '1') : undefined;
  const layout = pinned
    ? `server side (Redis, gateways, worker, peer nodes) pinned to CPU 0; load generator (subscriber, publisher, writer processes and the orchestrator) pinned to CPU ${loadCpus}`
    : 'not pinned (taskset missing, one core, or --no-pin): all processes share every core';
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const res: Results = { profile: opts.profile.name, machine: machine(cores, layout, command, `gateways ${opts.nodeOptions || 'none'}, worker ${opts.workerNodeOptions || 'none'}`), history: opts.history, fanout: [], many: [], idle: [], docs: [], topologies: [], api: [], skipped: [] };
  log(`${command}: ${res.machine.cpu}, ${cores} cores, load ${res.machine.loadBefore}; ${layout}`);
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });

  const profile = opts.profile;
  const maxSockets = Math.max(profile.idleConnections, ...profile.fanout.map((f) => f.subscribers), profile.manyChannels * profile.manySubscribersPerChannel);
  const gen = LoadGen.start({ subscriberProcesses: Math.max(2, Math.ceil(maxSockets / MAX_SOCKETS_PER_PROCESS)), cpus: loadCpus });
  const common = { nodes: 2, cpus: sutCpus, profileDir: opts.cpuProf, gatewayArgs: opts.gatewayArgs, nodeOptions: opts.nodeOptions, workerNodeOptions: opts.workerNodeOptions, history: opts.history, log };
  const depth = opts.apiDepth;
  /** Starts a system; undefined (and the reason in the report) when soketi cannot run here. */
  const start = async (system: SystemName, extra: Partial<ClusterOptions> = {}): Promise<Cluster | undefined> => {
    try {
      return await startCluster(system, { ...common, ...extra });
    } catch (err) {
      // soketi comes from outside the project (installed on demand): when it cannot run here, the rest still can.
      if (system !== 'soketi') throw err;
      const reason = (err as Error).message.split('\n')[0];
      log(`skipping ${SYSTEM_LABELS[system]}: ${reason}`);
      if (!res.skipped.some((s) => s.system === system)) res.skipped.push({ system, reason });
      return undefined;
    }
  };
  try {
    const runs = (system: SystemName, scenario: string): boolean => opts.scenarios.has(scenario) && takesPart(system, scenario);
    /**
     * Runs one scenario on a system started for it; a scenario that fails is reported as skipped with its error and
     * the run goes on (one system's failure, say a peer still busy closing 20,000 sockets, must not lose the rest).
     */
    const scenario = async (system: SystemName, name: string, body: (cluster: Cluster) => Promise<void>): Promise<void> => {
      log(`starting ${SYSTEM_LABELS[system]} for scenario ${name}`);
      const cluster = await start(system);
      if (!cluster) return;
      try {
        await gen.initPublisher(cluster, 32, { depth });
        await body(cluster);
      } catch (err) {
        const reason = `scenario ${name} failed: ${(err as Error).message.split('\n')[0].slice(0, 300)}`;
        log(`${SYSTEM_LABELS[system]}: ${reason}`);
        res.skipped.push({ system, reason });
      } finally {
        await cluster.stop();
      }
    };
    for (const system of opts.systems) {
      // Each scenario on fresh processes: RSS growth in c is the connections' and not earlier scenarios' heap, and
      // a does not start while a server is still closing c's 20,000 sockets.
      if (runs(system, 'c')) await scenario(system, 'c', async (cluster) => void res.idle.push(await idleScenario(gen, cluster, profile, log)));
      if (runs(system, 'a')) await scenario(system, 'a', async (cluster) => void res.fanout.push(...(await fanoutScenario(gen, cluster, profile, log))));
      if (runs(system, 'b')) await scenario(system, 'b', async (cluster) => void res.many.push(...(await manyChannelsScenario(gen, cluster, profile, log))));
    }
    if (opts.scenarios.has('e') && opts.systems.includes('switchboard')) {
      // Same gateways, same ladder; only where the data lives changes.
      for (const redis of ['single', 'cluster'] as const) {
        log(`starting Switchboard on ${REDIS_TOPOLOGY_LABELS[redis]}`);
        const cluster = await startCluster('switchboard', { ...common, redis });
        try {
          await gen.initPublisher(cluster, 32, { depth });
          res.topologies.push(await redisTopologyScenario(gen, cluster, profile, log));
        } finally {
          await cluster.stop();
        }
      }
    }
    if (opts.scenarios.has('d') && opts.systems.includes('switchboard')) {
      log('starting Switchboard with a versioning worker');
      const cluster = await startCluster('switchboard', { ...common, worker: true });
      try {
        res.docs.push(...(await documentsScenario(gen, cluster, profile, log)));
      } finally {
        await cluster.stop();
      }
    }
    // Fresh processes per system, with nothing subscribed; Switchboard's gateways also listen on an internal port.
    for (const system of opts.systems.filter((s) => runs(s, 'f'))) {
      log(`starting ${SYSTEM_LABELS[system]} for the publish API alone`);
      const cluster = await start(system, { internalPort: system === 'switchboard' });
      if (!cluster) continue;
      try {
        res.api.push(...(await apiScenario(gen, cluster, profile, depth, log)));
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    await gen.stop();
  }
  res.machine.loadAfter = loadAverage();
  res.machine.seconds = (Date.now() - started) / 1000;
  const report = renderReport(res);
  process.stdout.write(report);
  mkdirSync(opts.out, { recursive: true });
  const stamp = res.machine.started.replace(/[:.]/g, '-');
  writeFileSync(path.join(opts.out, `bench-${profile.name}-${stamp}.md`), report);
  writeFileSync(path.join(opts.out, `bench-${profile.name}-${stamp}.json`), JSON.stringify(res, null, 2));
  log(`done in ${res.machine.seconds.toFixed(0)} s; report and raw results in ${opts.out}`);
  return 0;
}
