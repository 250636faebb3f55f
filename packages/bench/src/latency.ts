// Latency accounting: microsecond values in an HDR histogram, shipped between processes as compressed base64.
import * as hdr from 'hdr-histogram-js';

/** Values above this (ten minutes) are recorded as this and counted as clamped. */
export const HIGHEST_US = 600_000_000;

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

export class LatencyRecorder {
  private hist = newHistogram();
  /** Counted apart from the histogram, so a test can check that nothing was dropped on the way. */
  count = 0;
  clamped = 0;

  /** Records one latency in microseconds; negative values (clock reads racing) count as 0. */
  record(us: number): void {
    this.count++;
    if (us > HIGHEST_US) {
      this.clamped++;
      us = HIGHEST_US;
    } else if (us < 0) {
      us = 0;
    }
    this.hist.recordValue(us);
  }

  reset(): void {
    this.hist.reset();
    this.count = 0;
    this.clamped = 0;
  }

  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.hist);
  }

  summary(): LatencySummary {
    return summarize(this.hist);
  }
}

/** Adds histograms encoded by LatencyRecorder.encode (from several processes) into one summary. */
export function mergeEncoded(encoded: string[]): LatencySummary {
  const total = newHistogram();
  for (const e of encoded) {
    if (!e) continue;
    total.add(hdr.decodeFromCompressedBase64(e));
  }
  return summarize(total);
}

function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => us / 1000;
  if (h.totalCount === 0) return { count: 0, p50: NaN, p99: NaN, p999: NaN, max: NaN };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}
