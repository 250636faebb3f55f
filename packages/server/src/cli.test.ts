// Runs the built `switchboard` command as users do: bad input exits 2 with one stderr line; roles start, and stop on SIGTERM.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, httpStatus, runSwitchboard, startRedis, startSwitchboard, switchboardBin, type RedisServer } from '@switchboard/testkit';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(join(dirname(switchboardBin), '..', 'dist', 'main.js'))) {
    throw new Error('packages/server is not built: run `npx tsc -b` first');
  }
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderrLines: string[] }> {
  const { code, stdout, stderr } = await runSwitchboard(args, { env });
  return { code, stdout, stderrLines: stderr.split('\n').filter((line) => line !== '') };
}

function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('switchboard exits 2 with one line on stderr', () => {
  it.each([
    ['an unknown flag', ['--bogus'], {}, /^switchboard: unknown flag --bogus /],
    ['an unknown role', ['relay'], {}, /^switchboard: unknown role "relay"/],
    ['a bad port', ['gateway', '--port', 'http'], {}, /^switchboard: --port: expected a port number/],
    ['a bad environment variable', [], { SWITCHBOARD_INSECURE: 'maybe' }, /^switchboard: SWITCHBOARD_INSECURE: expected true, false, 1 or 0/],
    ['a gateway without Redis', ['gateway'], {}, /^switchboard: the gateway role needs --redis/],
    ['a missing config file', ['--config', '/nonexistent/switchboard.yaml'], {}, /^switchboard: cannot read config file \/nonexistent\/switchboard\.yaml/],
  ] as [string, string[], Record<string, string>, RegExp][])('for %s', async (_what, args, env, message) => {
    const run = await cli(args, env);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual([expect.stringMatching(message)]);
  });

  it('for invalid YAML, on one line although the parser reports several', async () => {
    const path = configFile('broken.yaml', 'channel:\n  namespaces: [\n');
    const run = await cli(['--config', path]);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual([expect.stringMatching(new RegExp(`^switchboard: ${path}: invalid YAML: `))]);
  });

  it('for a wrong value in the config file', async () => {
    const path = configFile('wrong.yaml', 'channel:\n  without_namespace:\n    history_size: -1\n');
    const run = await cli(['--config', path]);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual([
      `switchboard: ${path}: channel.without_namespace.history_size: expected a non-negative integer, got -1`,
    ]);
  });

  it('for a worker without Redis', async () => {
    const run = await cli(['worker']);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual(['switchboard: the worker role needs --redis or SWITCHBOARD_REDIS_URL (standalone has its documents built in)']);
  });

  it('for an unreachable Redis, naming its address', async () => {
    const port = await freePort();
    const run = await cli(['gateway', '--redis', `redis://127.0.0.1:${port}`, '--token-hmac-secret', 'secret', '--port', '0']);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual([expect.stringMatching(new RegExp(`^switchboard: cannot connect to Redis at redis://127\\.0\\.0\\.1:${port}`))]);
  });

  it('for an unreachable Redis from a worker, as plainly as from a gateway', async () => {
    const port = await freePort();
    const run = await cli(['worker', '--redis', `redis://127.0.0.1:${port}`, '--port', '0']);
    expect(run.code).toBe(2);
    expect(run.stderrLines).toEqual([`switchboard: cannot connect to Redis at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`]);
    // The reason is that line; no log line repeats it.
    expect(run.stdout).not.toContain('redis connection lost');
  });
});

describe('switchboard --help and --version', () => {
  it('--help prints usage and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: switchboard \[standalone\|gateway\|worker\]/);
    expect(run.stdout).toContain('SWITCHBOARD_REDIS_URL');
    expect(run.stderrLines).toEqual([]);
  });

  it('--version prints the version and exits 0', async () => {
    const run = await cli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^switchboard \d+\.\d+\.\d+\n$/);
  });
});

describe('standalone', () => {
  it('starts and /healthz answers 200, SIGTERM exits 0', async () => {
    const server = await startSwitchboard('standalone', ['--dev', '--shutdown-grace', '5']);
    try {
      expect(await httpStatus(`${server.url}/healthz`)).toBe(200);
      expect(server.output()).toMatch(/"msg":"listening"/);
      expect(server.output()).toContain('switchboard: warning: dev mode');
      expect(server.output()).toContain(`switchboard: standalone node running: open http://localhost:${server.port}/ in a browser for the demo`);
      expect(await server.stop('SIGTERM')).toBe(0);
    } finally {
      server.kill();
    }
  });
});

describe('gateway', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('starts on the Redis engine, answers /readyz, warns once about unknown keys, and exits 0 on SIGTERM', async () => {
    const config = configFile('centrifugo.yaml', 'engine:\n  type: redis\n  redis:\n    prefix: app\nchannel:\n  namespaces:\n    - name: chat\n      presence: true\n');
    const args = ['--redis', redis.url, '--token-hmac-secret', 'secret', '--node-name', 'gw-test', '--config', config];
    const server = await startSwitchboard('gateway', args);
    try {
      expect(await httpStatus(`${server.url}/readyz`)).toBe(200);
      const warnings = server.output().split('\n').filter((line) => line.startsWith('switchboard: warning:'));
      expect(warnings).toEqual([`switchboard: warning: config file ${config}: ignoring keys Switchboard does not know: engine.redis.prefix`]);
      const listening = server
        .output()
        .split('\n')
        .map((line) => (line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : {}))
        .find((entry) => entry.msg === 'listening');
      expect(listening).toMatchObject({ level: 30, port: server.port, role: 'gateway', engine: 'redis', node: 'gw-test' });
      expect(await server.stop('SIGTERM')).toBe(0);
    } finally {
      server.kill();
    }
  });

  it('exits 2 with one line on stderr when its port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const run = await cli(['gateway', '--redis', redis.url, '--insecure', '--host', '127.0.0.1', '--port', String(port)]);
      expect(run.code).toBe(2);
      expect(run.stderrLines).toEqual([expect.stringMatching(new RegExp(`^switchboard: cannot start the gateway: .*127\\.0\\.0\\.1:${port}\\b`))]);
    } finally {
      taken.close();
    }
  });
});
