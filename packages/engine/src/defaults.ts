// Defaults and checks shared by both engines, so memory and Redis agree on every TTL.
import type { PublishOptions } from './broker';

/** How long a channel's epoch and top offset outlive its last publication (Centrifugo's default). */
export const DEFAULT_META_TTL_SECONDS = 30 * 24 * 3600;
export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 300;

/** Publish options with every default applied; TTLs in whole seconds. */
export interface ResolvedPublishOptions {
  historySize: number;
  historyTtlSeconds: number;
  metaTtlSeconds: number;
  /** Empty when the publish has no idempotency key. */
  idempotencyKey: string;
  idempotencyTtlSeconds: number;
}

/** Applies defaults; throws on options that can only come from a bug in the caller. */
export function resolvePublishOptions(opts: PublishOptions): ResolvedPublishOptions {
  const historySize = opts.historySize;
  if (!Number.isSafeInteger(historySize) || historySize < 0) {
    throw new Error(`historySize must be a non-negative integer, got ${historySize}`);
  }
  const historyTtlSeconds = Math.ceil(opts.historyTtlSeconds);
  if (historySize > 0 && !(historyTtlSeconds > 0)) {
    throw new Error(`historyTtlSeconds must be > 0 when historySize > 0, got ${opts.historyTtlSeconds}`);
  }
  const key = opts.idempotencyKey ?? '';
  const idempotencyTtlSeconds = Math.ceil(opts.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS);
  if (key !== '' && !(idempotencyTtlSeconds > 0)) {
    throw new Error(`idempotencyTtlSeconds must be > 0, got ${opts.idempotencyTtlSeconds}`);
  }
  const metaTtlSeconds = Math.max(Math.ceil(opts.metaTtlSeconds ?? DEFAULT_META_TTL_SECONDS), historySize > 0 ? historyTtlSeconds : 0, 1);
  return { historySize, historyTtlSeconds, metaTtlSeconds, idempotencyKey: key, idempotencyTtlSeconds };
}

/** Meta TTL of a history read, which creates the meta when the channel has none. */
export function historyMetaTtlSeconds(metaTtlSeconds: number | undefined): number {
  return Math.max(Math.ceil(metaTtlSeconds ?? DEFAULT_META_TTL_SECONDS), 1);
}
