// Prometheus metrics of one gateway, all named switchboard_*; hot-path counters are pre-bound children.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Live numbers read at scrape time rather than counted on every change. */
export interface GatewayGauges {
  connections(): number;
  subscriptions(): number;
  channels(): number;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class GatewayMetrics {
  readonly registry = new Registry();

  readonly connectionsAccepted = new Counter({ name: 'switchboard_connections_accepted_total', help: 'WebSocket connections accepted.', registers: [this.registry] });
  readonly connectionsClosed = new Counter({
    name: 'switchboard_connections_closed_total',
    help: 'WebSocket connections closed, by close code (1000s: transport; 3000s: protocol disconnect codes).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly commands = new Counter({ name: 'switchboard_commands_total', help: 'Client commands received, by method.', labelNames: ['method'], registers: [this.registry] });
  readonly commandErrors = new Counter({
    name: 'switchboard_command_errors_total',
    help: 'Client commands answered with an error, by method and protocol error code.',
    labelNames: ['method', 'code'],
    registers: [this.registry],
  });
  readonly publications = new Counter({
    name: 'switchboard_publications_total',
    help: 'Publications accepted by this gateway, by source (client or api).',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly deliveries = new Counter({ name: 'switchboard_deliveries_total', help: 'Publication frames handed to local subscribers.', registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'switchboard_received_bytes_total', help: 'Bytes of WebSocket frames received from clients.', registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'switchboard_sent_bytes_total', help: 'Bytes of publication frames sent to clients (fan-out).', registers: [this.registry] });
  readonly fanoutSeconds = new Histogram({
    name: 'switchboard_fanout_seconds',
    help: 'Time to hand one publication to every local subscriber.',
    buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  readonly engineSeconds = new Histogram({
    name: 'switchboard_engine_seconds',
    help: 'Latency of engine (Redis) operations made by the gateway, by operation.',
    labelNames: ['op'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly engineErrors = new Counter({
    name: 'switchboard_engine_errors_total',
    help: 'Engine errors: lost connections, pub/sub errors, failed operations.',
    registers: [this.registry],
  });
  readonly resubscribes = new Counter({
    name: 'switchboard_engine_resubscribes_total',
    help: 'Times the engine restored every channel subscription after a lost connection.',
    registers: [this.registry],
  });
  readonly movedSlots = new Counter({
    name: 'switchboard_engine_moved_slots_total',
    help: 'Redis Cluster slots whose channels this gateway had to subscribe on another node (resharding, failover).',
    registers: [this.registry],
  });
  readonly recoveries = new Counter({
    name: 'switchboard_recoveries_total',
    help: 'Subscribes that asked to recover, by outcome (recovered or unrecovered).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'switchboard_resyncs_total',
    help: 'Subscribers told to resync because pub/sub lost continuity on their channel.',
    registers: [this.registry],
  });
  readonly slowDisconnects = new Counter({
    name: 'switchboard_slow_disconnects_total',
    help: 'Clients disconnected with 3008 because they did not read fast enough.',
    registers: [this.registry],
  });
  readonly apiPipelineRefused = new Counter({
    name: 'switchboard_api_pipeline_refused_total',
    help: 'API requests on the main port not carried out because uWS cut their pipelined connection (use the internal port).',
    registers: [this.registry],
  });
  readonly docUpdates = new Counter({
    name: 'switchboard_doc_updates_total',
    help: 'Document updates answered by this gateway, by outcome (applied, merged, conflict, duplicate, error).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly docSeconds = new Histogram({
    name: 'switchboard_doc_update_seconds',
    help: 'Time from a document update request to its answer, as seen by the gateway.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor(gauges: GatewayGauges) {
    collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
    new Gauge({
      name: 'switchboard_connections',
      help: 'Open WebSocket connections.',
      registers: [this.registry],
      collect() {
        this.set(gauges.connections());
      },
    });
    new Gauge({
      name: 'switchboard_subscriptions',
      help: 'Client subscriptions on this gateway.',
      registers: [this.registry],
      collect() {
        this.set(gauges.subscriptions());
      },
    });
    new Gauge({
      name: 'switchboard_channels',
      help: 'Channels with at least one local subscriber (each one Redis subscription).',
      registers: [this.registry],
      collect() {
        this.set(gauges.channels());
      },
    });
  }

  /** Hot-path children bound once per label value (labels() hashes its arguments on every call). */
  private readonly engineSecondsOf = boundChildren((op) => this.engineSeconds.labels(op));
  private readonly publicationsOf = boundChildren((source) => this.publications.labels(source));
  private readonly docUpdatesOf = boundChildren((outcome) => this.docUpdates.labels(outcome));

  /** Times an engine operation into switchboard_engine_seconds{op}. */
  async timeEngine<T>(op: string, run: () => Promise<T>): Promise<T> {
    const histogram = this.engineSecondsOf(op);
    const start = performance.now();
    try {
      return await run();
    } catch (err) {
      this.engineErrors.inc();
      throw err;
    } finally {
      histogram.observe((performance.now() - start) / 1000);
    }
  }

  /** Counts a document update answered with `outcome`. */
  docUpdated(outcome: string): void {
    this.docUpdatesOf(outcome).inc();
  }

  /** Counts a publication accepted from `source`. */
  published(source: string): void {
    this.publicationsOf(source).inc();
  }
}

/** `bind(label)`, made once per label value and kept. */
function boundChildren<C>(bind: (label: string) => C): (label: string) => C {
  const children = new Map<string, C>();
  return (label) => {
    let child = children.get(label);
    if (child === undefined) {
      child = bind(label);
      children.set(label, child);
    }
    return child;
  };
}
