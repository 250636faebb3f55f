// Counters and the commit latency histogram a worker exposes for /metrics.

/** Upper bounds (seconds) of the latency buckets, Prometheus style. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface LatencyHistogram {
  /** Upper bounds in seconds; an implicit +Inf bucket follows. */
  bounds: readonly number[];
  /** Cumulative counts per bound (observations <= bound), as Prometheus `_bucket{le=…}` wants them. */
  cumulative: number[];
  count: number;
  sumSeconds: number;
}

export interface WorkerStats {
  /** Updates applied at their base version. */
  applied: number;
  /** Updates merged onto a newer version. */
  merged: number;
  /** Updates rejected as conflicts. */
  conflict: number;
  /** Requests answered from their idempotency record (retries, redeliveries). */
  duplicate: number;
  /** Requests refused as malformed or over a limit (protocol error 107). */
  rejected: number;
  /** Requests whose deadline had passed before processing began. */
  expired: number;
  /** Processing attempts that failed with an unexpected error (each is retried). */
  failed: number;
  /** Requests moved to the dead-letter stream after too many failed deliveries. */
  deadLettered: number;
  /** From the start of processing to the commit script's answer, for applied, merged and conflict outcomes. */
  commitLatency: LatencyHistogram;
}

export type Counter = Exclude<keyof WorkerStats, 'commitLatency'>;

export class StatsRecorder {
  private readonly counters: Record<Counter, number> = {
    applied: 0,
    merged: 0,
    conflict: 0,
    duplicate: 0,
    rejected: 0,
    expired: 0,
    failed: 0,
    deadLettered: 0,
  };
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_SECONDS.length).fill(0);
  private count = 0;
  private sumSeconds = 0;

  inc(counter: Counter): void {
    this.counters[counter]++;
  }

  observeCommit(seconds: number): void {
    this.count++;
    this.sumSeconds += seconds;
    const i = LATENCY_BUCKETS_SECONDS.findIndex((bound) => seconds <= bound);
    if (i !== -1) this.buckets[i]++;
  }

  snapshot(): WorkerStats {
    const cumulative: number[] = [];
    let running = 0;
    for (const n of this.buckets) cumulative.push((running += n));
    return { ...this.counters, commitLatency: { bounds: LATENCY_BUCKETS_SECONDS, cumulative, count: this.count, sumSeconds: this.sumSeconds } };
  }
}
