// A document-writer process: closed-loop writers (each sends its next update when the previous one is answered)
// against Switchboard's `doc_update` API, or against the naive optimistic-locking baseline straight on Redis.
import Redis from 'ioredis';
import { HttpPool } from './http_pool';
import { serve } from './ipc';
import { LatencyRecorder } from './latency';
import { nowMicros } from './payload';

export interface DocRun {
  system: 'switchboard' | 'naive';
  /** `hot`: one document, each writer on its own field; `many`: random writers over `docs` documents. */
  workload: 'hot' | 'many';
  writers: number;
  durationMs: number;
  docs: number;
  /** Fields per document in the `many` workload (random writers pick one). */
  fields: number;
  /** Switchboard: gateways' HTTP API. */
  host: string;
  ports: number[];
  apiKey: string;
  /** Channel prefix of the documents namespace, e.g. `docs:`. */
  prefix: string;
  /** Naive baseline: the same Redis the cluster uses. */
  redisUrl: string;
}

export interface DocResult {
  /** Updates committed (applied or merged; for the baseline, successful check-and-sets). */
  commits: number;
  applied: number;
  merged: number;
  conflicts: number;
  errors: number;
  errorSamples: string[];
  /** Every request or check-and-set tried; for the baseline, attempts - commits were wasted. */
  attempts: number;
  elapsedUs: number;
  hist: string;
}

/** Compare-and-set: writes only when the version is still the one read. Publishes like a real commit would. */
const NAIVE_CAS = `
local v = redis.call('hget', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then return 0 end
local next = tonumber(v) + 1
redis.call('hset', KEYS[1], 'v', next, 's', ARGV[2])
redis.call('publish', ARGV[3], '{"version":' .. next .. '}')
return 1`;

type CasRedis = Redis & { naiveCas(key: string, expected: string, state: string, channel: string): Promise<number> };

function docName(run: DocRun, writer: number): { doc: number; field: string } {
  if (run.workload === 'hot') return { doc: 0, field: `w${writer}` };
  return { doc: Math.floor(Math.random() * run.docs), field: `f${Math.floor(Math.random() * run.fields)}` };
}

async function runSwitchboard(run: DocRun): Promise<DocResult> {
  const perPort = Math.ceil(run.writers / run.ports.length);
  const pools = run.ports.map((port) => new HttpPool(run.host, port, perPort, { 'X-API-Key': run.apiKey }));
  const known = new Map<number, number>(); // latest version seen per document, the base of the next update
  const hist = new LatencyRecorder();
  const r: DocResult = { commits: 0, applied: 0, merged: 0, conflicts: 0, errors: 0, errorSamples: [], attempts: 0, elapsedUs: 0, hist: '' };
  const start = nowMicros();
  const deadline = start + run.durationMs * 1000;
  let counter = 0;
  const writer = (w: number): Promise<void> =>
    new Promise((resolve) => {
      const pool = pools[w % pools.length];
      const once = (): void => {
        if (nowMicros() >= deadline) {
          resolve();
          return;
        }
        const { doc, field } = docName(run, w);
        const channel = run.workload === 'hot' ? `${run.prefix}hot` : `${run.prefix}d${doc}`;
        const body = JSON.stringify({
          channel,
          base: known.get(doc) ?? 0,
          ops: [{ op: 'set', path: `/${field}`, value: ++counter }],
          mode: 'merge',
        });
        const began = nowMicros();
        r.attempts++;
        pool.post('/api/doc_update', body, (status, resBody, err) => {
          hist.record(nowMicros() - began);
          let reply: { result?: { status: string; version: number }; error?: { message: string } } | undefined;
          try {
            reply = !err && status === 200 && resBody ? (JSON.parse(resBody.toString('utf8')) as typeof reply) : undefined;
          } catch {
            reply = undefined;
          }
          const result = reply?.result;
          if (result) {
            if (result.version > (known.get(doc) ?? 0)) known.set(doc, result.version);
            if (result.status === 'applied') r.applied++;
            else if (result.status === 'merged') r.merged++;
            else if (result.status === 'conflict') r.conflicts++;
          } else {
            r.errors++;
            if (r.errorSamples.length < 5) r.errorSamples.push(err ? err.message : `HTTP ${status}: ${resBody?.toString('utf8').slice(0, 200)}`);
          }
          once();
        });
      };
      once();
    });
  await Promise.all(Array.from({ length: run.writers }, (_, w) => writer(w)));
  r.elapsedUs = nowMicros() - start;
  r.commits = r.applied + r.merged;
  r.hist = hist.encode();
  for (const p of pools) p.close();
  return r;
}

async function runNaive(run: DocRun): Promise<DocResult> {
  const connections = Array.from({ length: 4 }, () => {
    const c = new Redis(run.redisUrl) as CasRedis;
    c.defineCommand('naiveCas', { numberOfKeys: 1, lua: NAIVE_CAS });
    return c;
  });
  const hist = new LatencyRecorder();
  const r: DocResult = { commits: 0, applied: 0, merged: 0, conflicts: 0, errors: 0, errorSamples: [], attempts: 0, elapsedUs: 0, hist: '' };
  const start = nowMicros();
  const deadline = start + run.durationMs * 1000;
  let counter = 0;
  const writer = async (w: number): Promise<void> => {
    const redis = connections[w % connections.length];
    while (nowMicros() < deadline) {
      const { doc, field } = docName(run, w);
      const key = `naive:{${run.workload === 'hot' ? 'hot' : `d${doc}`}}`;
      const value = ++counter;
      const began = nowMicros();
      try {
        // Read, change, check-and-set; a version that moved meanwhile means the attempt was wasted: start over.
        for (;;) {
          r.attempts++;
          const [version, state] = await redis.hmget(key, 'v', 's');
          const doc = (state ? JSON.parse(state) : {}) as Record<string, unknown>;
          doc[field] = value;
          if ((await redis.naiveCas(key, version ?? '0', JSON.stringify(doc), `${key}:pub`)) === 1) break;
          if (nowMicros() >= deadline) throw new Error('deadline');
        }
        r.commits++;
        r.applied++;
        hist.record(nowMicros() - began);
      } catch (err) {
        if ((err as Error).message === 'deadline') break;
        r.errors++;
        if (r.errorSamples.length < 5) r.errorSamples.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: run.writers }, (_, w) => writer(w)));
  r.elapsedUs = nowMicros() - start;
  r.hist = hist.encode();
  await Promise.all(connections.map((c) => c.quit()));
  return r;
}

serve({
  run: (run: DocRun) => (run.system === 'switchboard' ? runSwitchboard(run) : runNaive(run)),
});
