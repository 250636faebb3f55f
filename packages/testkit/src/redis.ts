// Starts a private redis-server on a free port for a test, and stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, killOnExit } from './children';
import Redis from 'ioredis';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** SIGTERM, then resolves once the process has exited. Does nothing when already stopped. */
  stop(): Promise<void>;
  /** Stops (if running) and starts again on the same port; data is gone since nothing is saved. */
  restart(): Promise<void>;
  /** A new connection to this server; the test must `quit()` it. */
  client(): Redis;
}

export interface StartRedisOptions {
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** How long to wait for the server to answer PING; default 5000 ms. */
  timeoutMs?: number;
}

const OUTPUT_KEPT = 16 * 1024;
const POLL_MS = 20;
const SETTLE_POLL_MS = 50;

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const args = opts.args ?? [];
  const timeoutMs = opts.timeoutMs ?? 5000;
  const { port, value: child } = await onFreePort((port) => spawnRedisServer(redisServerArgs(port, args), port, { timeoutMs }));

  let current: ChildProcess | undefined = child;
  const stop = async (): Promise<void> => {
    const running = current;
    current = undefined;
    if (running) await stopRedisProcess(running);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      current = await spawnRedisServer(redisServerArgs(port, args), port, { timeoutMs });
    },
    client() {
      const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      // Tests restart servers under live clients; the reconnect errors are expected, not worth printing.
      client.on('error', () => undefined);
      return client;
    },
  };
}

/** Calls `start` with a free port, and again with another one when the port was taken between probing and binding. */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<{ port: number; value: T }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { port, value: await start(port) };
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

/** The arguments of a private, memory-only redis-server on `port`, followed by `extra`. */
export function redisServerArgs(port: number, extra: string[] = []): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra];
}

function findRedisServer(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'redis-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error('redis-server is not on PATH; install it to run the Redis tests (apt-get install redis-server)');
}

export interface SpawnRedisOptions {
  /** How long to wait for the server to answer PING; default 5000 ms. */
  timeoutMs?: number;
  /** The working directory, where redis-server writes its files unless told otherwise. */
  cwd?: string;
}

/**
 * Runs `redis-server <args>` (a data node or a sentinel, whatever the arguments say) and resolves once it answers PING
 * on `port`; the process dies with the test run. Stop it with `stopRedisProcess`.
 */
export async function spawnRedisServer(args: string[], port: number, opts: SpawnRedisOptions = {}): Promise<ChildProcess> {
  const binary = findRedisServer();
  const timeoutMs = opts.timeoutMs ?? 5000;
  const child = spawn(binary, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);

  // Keep reading the output for the whole life of the server (a full pipe would block redis), but keep only the tail.
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exited = false;
  let spawnError: Error | undefined;
  child.once('exit', () => (exited = true));
  child.once('error', (err) => (spawnError = err));

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError) throw new Error(`cannot run ${binary}: ${spawnError.message}`);
    if (exited) throw new Error(`redis-server on port ${port} exited before accepting connections:\n${output.trim()}`);
    if (await answersPing(port)) break;
    if (Date.now() > deadline) {
      await stopRedisProcess(child);
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  // A server a test forgot to stop must not keep jest alive; the exit hook still kills it.
  child.unref();
  (child.stdout as net.Socket | null)?.unref();
  (child.stderr as net.Socket | null)?.unref();
  return child;
}

/** A raw socket rather than a client: no reconnect logic or error events to tidy up while redis boots. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Polls `reason` every 50 ms until it returns undefined; for clusters and sentinel sets, whose state is read from several
 * nodes that may disagree for a while. A throw counts as a reason too (a node may be restarting); the timeout error
 * ends with the last reason seen.
 */
export async function waitUntilSettled(
  reason: () => Promise<string | undefined>,
  opts: { timeoutMs: number; message: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    try {
      const why = await reason();
      if (why === undefined) return;
      last = why;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) throw new Error(`${opts.message}; last seen: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
}

/** Sends `signal` (SIGKILL after 5 s if still running) and resolves once the process has exited; a no-op when it has. */
export async function stopRedisProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
