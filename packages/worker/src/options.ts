// The worker's options, their defaults and their checks.
import { DEFAULT_DOC_PARTITIONS, DEFAULT_IDEMPOTENCY_TTL_SECONDS, DEFAULT_PREFIX } from '@switchboard/engine';
import { resolveLimits, type DocLimits } from '@switchboard/protocol';
import type { Logger } from 'pino';

export interface WorkerOptions {
  /** The same shard URLs, in the same order, as the gateways. */
  redis: string[];
  /** Prefix of every Redis key; default 'sb'. */
  prefix?: string;
  /** Request partitions; must equal the gateways'. Default 16. */
  partitions?: number;
  logger: Logger;
  /** This process's name in logs and in its worker id (`<nodeId>.<random>`). */
  nodeId: string;
  /** Partition lease lifetime; renewed every third of it. A dead worker's partitions move after it. Default 10000 ms. */
  leaseMs?: number;
  /** Failed processing attempts after which a request goes to the dead-letter stream; default 3. */
  maxDeliveries?: number;
  /** Document limits; keep them equal to the gateways' (the worker checks the update again). */
  limits?: Partial<DocLimits>;
  /** How long an update's outcome is remembered under its idempotency key; default 300 s. */
  idempotencyTtlSeconds?: number;
  /** Requests read per partition at once; default 64. */
  batchSize?: number;
  /** Encoded bytes of documents cached between updates; default 64 MiB. */
  cacheBytes?: number;
  /** How long `startWorker` waits for each Redis shard; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Replicas that must have a commit before it is acknowledged (Redis WAIT); default 0. */
  waitReplicas?: number;
  /** How long a commit waits for them before it is retried; default 1000 ms. */
  waitTimeoutMs?: number;
  /** Delay before a failed request is tried again; default a tenth of the lease, at most 250 ms. */
  retryDelayMs?: number;
}

export interface ResolvedWorkerOptions {
  redis: string[];
  prefix: string;
  partitions: number;
  logger: Logger;
  nodeId: string;
  leaseMs: number;
  maxDeliveries: number;
  limits: DocLimits;
  idempotencyTtlSeconds: number;
  batchSize: number;
  cacheBytes: number;
  connectTimeoutMs: number;
  waitReplicas: number;
  waitTimeoutMs: number;
  /** How long a blocking read waits: short, so ownership changes and stop() take effect quickly. */
  blockMs: number;
  /** Delay before a failed request is tried again. */
  retryDelayMs: number;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`worker option ${name} must be a positive integer, got ${value}`);
  return value;
}

export function resolveWorkerOptions(o: WorkerOptions): ResolvedWorkerOptions {
  if (o.redis.length === 0) throw new Error('the worker needs at least one Redis URL');
  if (o.nodeId === '') throw new Error('worker option nodeId must not be empty');
  const leaseMs = positiveInt('leaseMs', o.leaseMs ?? 10_000);
  if (leaseMs < 300) throw new Error(`worker option leaseMs must be at least 300, got ${leaseMs}`);
  return {
    redis: o.redis,
    prefix: o.prefix ?? DEFAULT_PREFIX,
    partitions: positiveInt('partitions', o.partitions ?? DEFAULT_DOC_PARTITIONS),
    logger: o.logger,
    nodeId: o.nodeId,
    leaseMs,
    maxDeliveries: positiveInt('maxDeliveries', o.maxDeliveries ?? 3),
    limits: resolveLimits(o.limits),
    idempotencyTtlSeconds: positiveInt('idempotencyTtlSeconds', o.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS),
    batchSize: positiveInt('batchSize', o.batchSize ?? 64),
    cacheBytes: positiveInt('cacheBytes', o.cacheBytes ?? 64 * 1024 * 1024),
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs ?? 5000),
    waitReplicas: o.waitReplicas === undefined || o.waitReplicas === 0 ? 0 : positiveInt('waitReplicas', o.waitReplicas),
    waitTimeoutMs: positiveInt('waitTimeoutMs', o.waitTimeoutMs ?? 1000),
    blockMs: Math.min(1000, Math.floor(leaseMs / 4)),
    retryDelayMs: o.retryDelayMs === undefined ? Math.min(250, Math.floor(leaseMs / 10)) : positiveInt('retryDelayMs', o.retryDelayMs),
  };
}
