// soketi 1.6 as a peer: installed on demand from npm into packages/bench/.soketi (ignored by git, never a dependency
// of the project, so `npm ci` and CI stay as they are), and the environment that starts one node of it on the
// benchmark's Redis. Install by hand with `node packages/bench/dist/soketi.js` after a build.
//
// @soketi/soketi 1.6.1 pins uWebSockets.js v20.10.0 from GitHub, which this machine cannot reach; an npm `overrides`
// entry maps it onto the uWS build the gateway uses (20.30.0-unofficial.0 from npm), so soketi runs on that.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PusherCredentials } from './publish_api';

export const SOKETI_VERSION = '1.6.1';
export const SOKETI_UWS = 'npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0';
export const SOKETI_DIR = path.resolve(__dirname, '..', '.soketi');

/** The install's package.json: only the override, so that `npm install` there resolves soketi's uWS from npm. */
const MANIFEST = { name: 'switchboard-bench-soketi', private: true, overrides: { 'uWebSockets.js': SOKETI_UWS } };

const INSTALL_TIMEOUT_MS = 5 * 60 * 1000;

function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err ? err.message : '') });
    });
  });
}

/** The most telling line of a failed command's output (npm puts it on its first `error` line). */
function why(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => /^npm (ERR!|error) /.test(l)) ?? lines[lines.length - 1] ?? 'no output').slice(0, 300);
}

function installedVersion(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'node_modules', '@soketi', 'soketi', 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Whether soketi's uWebSockets.js loads its native binary there (its pure-JS fallback would be no fair peer). */
async function nativeUws(dir: string): Promise<string | undefined> {
  const probe = "const u = require('uWebSockets.js'); process.exit(typeof u.SSLApp === 'function' ? 0 : 3)";
  const r = await run(process.execPath, ['-e', probe], dir, 30000);
  if (r.code === 0) return undefined;
  if (r.code === 3) return `soketi's uWebSockets.js fell back to its pure-JS implementation: ${why(r.stderr)}`;
  return `soketi's uWebSockets.js does not load: ${why(r.stderr)}`;
}

/**
 * Installs soketi into `dir` unless it is there already; resolves with its server script. Rejects with one line
 * saying why it cannot run here (no registry, a failed install, no native uWS for this platform).
 */
export async function installSoketi(dir = SOKETI_DIR, log: (line: string) => void = () => undefined): Promise<string> {
  const server = path.join(dir, 'node_modules', '@soketi', 'soketi', 'bin', 'server.js');
  if (installedVersion(dir) !== SOKETI_VERSION || !existsSync(server)) {
    log(`installing @soketi/soketi@${SOKETI_VERSION} into ${dir} (uWebSockets.js → ${SOKETI_UWS})`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(MANIFEST, null, 2)}\n`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = await run(npm, ['install', '--prefix', dir, `@soketi/soketi@${SOKETI_VERSION}`, '--no-audit', '--no-fund', '--loglevel=error'], dir, INSTALL_TIMEOUT_MS);
    if (r.code !== 0) throw new Error(`npm install @soketi/soketi@${SOKETI_VERSION} failed: ${why(r.stderr || r.stdout)}`);
    if (installedVersion(dir) !== SOKETI_VERSION || !existsSync(server)) throw new Error(`npm install finished but ${server} is not there`);
  }
  const problem = await nativeUws(dir);
  if (problem) throw new Error(problem);
  return server;
}

export interface SoketiNode {
  port: number;
  /** Port of its metrics/usage server, which it always opens. */
  metricsPort: number;
  /** UDP port of node-discover, which it always starts (the Redis adapter does not use it). */
  discoveryPort: number;
  redisHost: string;
  redisPort: number;
  app: PusherCredentials;
}

/**
 * The environment of one soketi node: the Redis adapter on the given Redis, one app, no metrics, and everything on
 * loopback — node-discover would otherwise broadcast its hellos to 255.255.255.255.
 */
export function soketiEnv(node: SoketiNode): Record<string, string> {
  return {
    SOKETI_HOST: '127.0.0.1',
    SOKETI_PORT: String(node.port),
    SOKETI_ADAPTER_DRIVER: 'redis',
    SOKETI_DB_REDIS_HOST: node.redisHost,
    SOKETI_DB_REDIS_PORT: String(node.redisPort),
    SOKETI_DEFAULT_APP_ID: node.app.id,
    SOKETI_DEFAULT_APP_KEY: node.app.key,
    SOKETI_DEFAULT_APP_SECRET: node.app.secret,
    SOKETI_METRICS_ENABLED: 'false',
    SOKETI_METRICS_HOST: '127.0.0.1',
    SOKETI_METRICS_SERVER_PORT: String(node.metricsPort),
    SOKETI_CLUSTER_PORT: String(node.discoveryPort),
    SOKETI_CLUSTER_UNICAST_ADDRESSES: '127.0.0.1',
    SOKETI_SHUTDOWN_GRACE_PERIOD: '200',
    SOKETI_DEBUG: 'false',
  };
}

if (require.main === module) {
  installSoketi(SOKETI_DIR, (line) => process.stderr.write(`${line}\n`)).then(
    (server) => process.stdout.write(`soketi ${SOKETI_VERSION} ready: ${server}\n`),
    (err: Error) => {
      process.stderr.write(`soketi: ${err.message}\n`);
      process.exit(1);
    },
  );
}
