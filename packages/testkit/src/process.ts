// Starts switchboard processes (standalone, gateway, worker) for a test, waits for readiness, stops them.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { freePort, killOnExit } from './children';

export interface SwitchboardProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/connection/websocket` */
  readonly wsUrl: string;
  readonly pid: number;
  /** Sends the signal and resolves with the exit code (null when a signal ended the process). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL, for tests of a gateway dying without a goodbye. */
  kill(): void;
  /** The last lines the process wrote to stdout and stderr. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  waitForExit(): Promise<number | null>;
}

export interface StartSwitchboardOptions {
  /** Added to the test process's environment (whose own SWITCHBOARD_* variables are left out). */
  env?: Record<string, string>;
  /** How long to wait for /readyz to answer 200; default 15000 ms. */
  readyTimeoutMs?: number;
}

/** The CLI as a fresh clone runs it; it requires the built dist/ (npm test builds first). */
export const switchboardBin = path.resolve(__dirname, '..', '..', 'server', 'bin', 'switchboard.js');

const LINES_KEPT = 200;
const POLL_MS = 50;

/** Spawns `switchboard <role> --port <free port> ...args` and resolves once /readyz answers 200. */
export async function startSwitchboard(
  role: 'standalone' | 'gateway' | 'worker',
  args: string[] = [],
  opts: StartSwitchboardOptions = {},
): Promise<SwitchboardProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [switchboardBin, role, '--port', String(port), ...args], {
    env: testEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);

  const lines: string[] = [];
  const keep = (stream: NodeJS.ReadableStream | null): void => {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > LINES_KEPT) lines.splice(0, lines.length - LINES_KEPT);
    });
    stream?.on('end', () => {
      if (partial) lines.push(partial);
    });
  };
  keep(child.stdout);
  keep(child.stderr);
  const output = (): string => lines.join('\n');

  // 'close' comes after 'exit' and after both pipes ended, so output() is complete by then.
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const url = `http://127.0.0.1:${port}`;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15000;
  try {
    await waitFor(
      async () => {
        if (hasExited) {
          throw new Error(`switchboard ${role} exited with code ${child.exitCode} before it was ready:\n${output()}`);
        }
        return (await httpStatus(`${url}/readyz`)) === 200;
      },
      { timeoutMs: readyTimeoutMs, intervalMs: POLL_MS, message: `switchboard ${role} on port ${port} not ready` },
    );
  } catch (err) {
    if (!hasExited) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${(err as Error).message} within ${readyTimeoutMs} ms:\n${output()}`);
    }
    throw err;
  }
  // A test that forgets stop() must not keep jest alive; the exit hook still kills the process.
  child.unref();
  (child.stdout as net.Socket | null)?.unref();
  (child.stderr as net.Socket | null)?.unref();

  return {
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}/connection/websocket`,
    pid: child.pid ?? 0,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!hasExited) child.kill(signal);
      return exited;
    },
    kill() {
      if (!hasExited) child.kill('SIGKILL');
    },
    output,
    waitForExit: () => exited,
  };
}

export interface SwitchboardRun {
  /** null when a signal ended the process. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `switchboard ...args` to completion, for tests of start-up failures, --help and the like. */
export async function runSwitchboard(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<SwitchboardRun> {
  const timeoutMs = opts.timeoutMs ?? 20000;
  const child = spawn(process.execPath, [switchboardBin, ...args], { env: testEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('close', resolve);
    child.once('error', reject);
  }).finally(() => clearTimeout(timer));
  if (timedOut) throw new Error(`switchboard ${args.join(' ')} still ran after ${timeoutMs} ms:\n${stdout}${stderr}`);
  return { code, stdout, stderr };
}

/** The test's environment without SWITCHBOARD_* variables from the developer's shell, plus `extra`. */
function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SWITCHBOARD_')));
  return { ...env, ...extra };
}

export interface WaitForOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
  /** Default 25 ms. */
  intervalMs?: number;
  /** The error message when time runs out. */
  message?: string;
}

/** Polls until `predicate` returns true; rejects after the timeout, or at once when the predicate throws. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, opts: WaitForOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(opts.message ?? `condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Waits until every gateway's server API `info` lists all of them: cluster-wide answers (channel counts, surveys)
 * come from the nodes a gateway has heard of.
 */
export async function waitUntilGatewaysKnowEachOther(gateways: readonly SwitchboardProcess[], apiKey: string): Promise<void> {
  const nodesSeen = async (g: SwitchboardProcess): Promise<number> => {
    const res = await fetch(`${g.url}/api/info`, { method: 'POST', headers: { 'X-API-Key': apiKey }, body: '{}' });
    return ((await res.json()) as { result: { nodes: unknown[] } }).result.nodes.length;
  };
  await waitFor(async () => (await Promise.all(gateways.map(nodesSeen))).every((n) => n === gateways.length), {
    timeoutMs: 10000,
    message: 'gateways know each other',
  });
}

/** The status of a GET, or undefined when nothing answers (yet). */
export function httpStatus(url: string, timeoutMs = 1000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: timeoutMs }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(undefined));
  });
}

