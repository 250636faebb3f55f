// Which offsets a history request selects (memory engine; lua/history.lua applies the same rules in Redis).
import type { HistoryOptions } from './broker';

/** Offsets to return, in order: `from` then `from ± 1` … for `count` entries (`step` is 1 or -1). */
export interface OffsetRange {
  from: number;
  step: 1 | -1;
  count: number;
}

/**
 * The selection among kept offsets `first..top` (consecutive): forward returns offsets after `since`, oldest
 * first; reverse returns offsets before `since` (or from the top), newest first; at most `limit` unless negative.
 */
export function selectOffsets(first: number, top: number, opts: HistoryOptions): OffsetRange {
  const empty: OffsetRange = { from: 0, step: 1, count: 0 };
  if (opts.limit === 0 || top < first) return empty;
  const since = opts.since?.offset;
  if (opts.reverse) {
    const from = since === undefined ? top : Math.min(top, since - 1);
    const count = from - first + 1;
    return count > 0 ? { from, step: -1, count: opts.limit > 0 ? Math.min(count, opts.limit) : count } : empty;
  }
  const from = since === undefined ? first : Math.max(first, since + 1);
  const count = top - from + 1;
  return count > 0 ? { from, step: 1, count: opts.limit > 0 ? Math.min(count, opts.limit) : count } : empty;
}
