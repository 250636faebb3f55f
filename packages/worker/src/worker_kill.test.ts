// A worker process killed without a goodbye (SIGKILL: no lease released): another worker takes all its partitions.
// Runs the built worker (dist/, which `npm test` builds first) in a child process, as production does.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RedisDocStore, docPartitionOf } from '@switchboard/engine';
import { parseUpdate } from '@switchboard/protocol';
import { eventually, testLogger, redisForFile } from './testing.fixture';
import { startWorker } from './worker';

const LEASE_MS = 1000;
const workerDist = path.resolve(__dirname, '..', 'dist', 'index.js');

const privateRedis = redisForFile();
const { cleanups } = privateRedis;

/** Starts a worker in its own process; resolves with the process and the partitions it owned once started. */
async function spawnWorker(prefix: string): Promise<{ child: ChildProcess; owned: number[] }> {
  if (!fs.existsSync(workerDist)) throw new Error(`${workerDist} is missing: build first (npx tsc -b)`);
  const script = `
    const { startWorker } = require(${JSON.stringify(workerDist)});
    const pino = require(${JSON.stringify(require.resolve('pino'))});
    startWorker({ redis: [process.env.REDIS_URL], prefix: process.env.PREFIX, logger: pino({ level: 'silent' }), nodeId: 'child', leaseMs: ${LEASE_MS} })
      .then((w) => { process.stdout.write(JSON.stringify(w.ownedPartitions()) + '\\n'); setInterval(() => undefined, 60000); })
      .catch((err) => { console.error(err); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, REDIS_URL: privateRedis.server.url, PREFIX: prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.add(child, (c) => c.kill('SIGKILL'));
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const owned = await new Promise<number[]>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as number[]));
    child.once('exit', (code) => reject(new Error(`worker process exited with ${code}: ${output}`)));
  });
  return { child, owned };
}

it('takes over every partition of a killed worker process within about a lease, and serves them', async () => {
  const prefix = `kill${process.pid}`;
  const { child, owned } = await spawnWorker(prefix);
  expect(owned).toHaveLength(16);
  const survivor = cleanups.add(await startWorker({ redis: [privateRedis.server.url], prefix, logger: testLogger(), nodeId: 'survivor', leaseMs: LEASE_MS }), (w) =>
    w.stop(),
  );
  await eventually(() => survivor.ownedPartitions().length === 8, 'the survivor to get half the partitions');

  const exited = new Promise((resolve) => child.once('exit', resolve));
  const killedAt = Date.now();
  child.kill('SIGKILL');
  await exited;
  await eventually(() => survivor.ownedPartitions().length === 16, 'the survivor to own every partition', 4 * LEASE_MS);
  const tookMs = Date.now() - killedAt;
  // Its leases and its heartbeat expire one lease after their last renewal; the next tick takes them.
  expect(tookMs).toBeLessThan(2.5 * LEASE_MS);

  const store = cleanups.add(new RedisDocStore({ urls: [privateRedis.server.url], prefix, node: 'gw', timeoutMs: 2000 }), (s) => s.close());
  await store.start();
  const channels: string[] = [];
  for (let i = 0; channels.length < 16; i++) {
    const ch = `doc:k${i}`;
    if (!channels.some((c) => docPartitionOf(c, 16) === docPartitionOf(ch, 16))) channels.push(ch);
  }
  const results = await Promise.all(channels.map((ch) => store.update(ch, parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), { historySize: 10, historyTtlSeconds: 60 })));
  expect(results.every((r) => r.status === 'applied')).toBe(true);
});
