// Public surface of the worker package: start a versioning worker, read its state and stats, stop it.
export { startWorker, type Worker } from './worker';
export type { WorkerOptions } from './options';
export { LATENCY_BUCKETS_SECONDS, type WorkerStats, type LatencyHistogram } from './stats';
export { serveWorkerHttp, type WorkerHttp } from './http';
