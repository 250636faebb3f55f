// Deliveries and publications per second of this node, for the `info` API (Centrifugo's `metrics` of a node).
import type { GatewayMetrics } from './metrics';

/** What a node adds to its `info` entry: Centrifugo's NodeResult.metrics, an interval and named values. */
export interface NodeMetrics {
  /** Seconds between samples. */
  interval: number;
  items: Record<string, number>;
}

const SAMPLE_MS = 1000;
/** Rates are averaged over this many sample intervals, so one burst does not make the chart jump. */
const WINDOW = 4;

interface Sample {
  at: number;
  deliveries: number;
  publications: number;
}

/** Samples the node's counters every second; `info` reads the last figures without waiting. */
export class NodeRates {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly metrics: GatewayMetrics) {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  /** `info` with this node's figures added. */
  with<T extends object>(info: T): T & { metrics: NodeMetrics } {
    return { ...info, metrics: this.current() };
  }

  current(): NodeMetrics {
    const last = this.samples.at(-1);
    const first = this.samples[0];
    const seconds = last && first ? (last.at - first.at) / 1000 : 0;
    const rate = (key: 'deliveries' | 'publications'): number =>
      last && first && seconds > 0 ? Math.round(((last[key] - first[key]) / seconds) * 10) / 10 : 0;
    return {
      interval: SAMPLE_MS / 1000,
      items: {
        switchboard_deliveries_total: last?.deliveries ?? 0,
        switchboard_publications_total: last?.publications ?? 0,
        deliveries_per_second: rate('deliveries'),
        publications_per_second: rate('publications'),
      },
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    // prom-client reads counters asynchronously; the sum covers every label (publications by source).
    const [deliveries, publications] = await Promise.all([this.metrics.deliveries.get(), this.metrics.publications.get()]);
    const sum = (m: { values: { value: number }[] }): number => m.values.reduce((total, v) => total + v.value, 0);
    this.samples.push({ at: Date.now(), deliveries: sum(deliveries), publications: sum(publications) });
    if (this.samples.length > WINDOW + 1) this.samples.shift();
  }
}
