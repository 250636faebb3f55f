// The worker's own HTTP endpoints: /metrics (Prometheus), /healthz and /readyz, so it is probed and scraped like a gateway.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { WorkerStats } from './stats';
import type { Worker } from './worker';

export interface WorkerHttp {
  readonly port: number;
  close(): Promise<void>;
}

const OUTCOMES: [keyof Omit<WorkerStats, 'commitLatency'>, string][] = [
  ['applied', 'applied'],
  ['merged', 'merged'],
  ['conflict', 'conflict'],
  ['duplicate', 'duplicate'],
  ['rejected', 'rejected'],
  ['expired', 'expired'],
  ['failed', 'failed'],
  ['deadLettered', 'dead_lettered'],
];

export async function serveWorkerHttp(worker: Worker, host: string, port: number, logger: Logger): Promise<WorkerHttp> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'switchboard_' });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { 'Content-Type': 'text/plain' }).end('method not allowed');
    } else if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      const ready = worker.isReady();
      res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ready' : 'not ready');
    } else if (path === '/metrics') {
      Promise.all([registry.metrics(), worker.queueLag().catch(() => -1)])
        .then(([text, lag]) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text + workerMetrics(worker, lag)))
        .catch((err: Error) => {
          logger.error({ err }, 'metrics failed');
          res.writeHead(500).end();
        });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The worker's own series in the Prometheus text format, read from its stats at scrape time. */
function workerMetrics(worker: Worker, lag: number): string {
  const stats = worker.stats();
  const lines: string[] = [
    '# HELP switchboard_doc_commits_total Document requests processed by this worker, by outcome.',
    '# TYPE switchboard_doc_commits_total counter',
  ];
  for (const [key, label] of OUTCOMES) lines.push(`switchboard_doc_commits_total{outcome="${label}"} ${stats[key]}`);
  const h = stats.commitLatency;
  lines.push(
    '# HELP switchboard_doc_commit_seconds From the start of processing an update to the commit script answer.',
    '# TYPE switchboard_doc_commit_seconds histogram',
  );
  h.bounds.forEach((bound, i) => lines.push(`switchboard_doc_commit_seconds_bucket{le="${bound}"} ${h.cumulative[i]}`));
  lines.push(
    `switchboard_doc_commit_seconds_bucket{le="+Inf"} ${h.count}`,
    `switchboard_doc_commit_seconds_sum ${h.sumSeconds}`,
    `switchboard_doc_commit_seconds_count ${h.count}`,
    '# HELP switchboard_worker_partitions_owned Request partitions this worker owns now.',
    '# TYPE switchboard_worker_partitions_owned gauge',
    `switchboard_worker_partitions_owned ${worker.ownedPartitions().length}`,
    '# HELP switchboard_worker_queue_lag Requests waiting in the partitions this worker owns (-1: Redis did not answer).',
    '# TYPE switchboard_worker_queue_lag gauge',
    `switchboard_worker_queue_lag ${lag}`,
    '# HELP switchboard_worker_ready 1 when Redis is reachable, the worker registered and its readers run.',
    '# TYPE switchboard_worker_ready gauge',
    `switchboard_worker_ready ${worker.isReady() ? 1 : 0}`,
  );
  return lines.join('\n') + '\n';
}
