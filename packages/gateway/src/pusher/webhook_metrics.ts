// Prometheus metrics of Pusher webhooks, registered on the gateway's registry (switchboard_pusher_webhook_*).
import { Counter, Gauge, type Registry } from 'prom-client';

export class WebhookMetrics {
  /** Events by what became of them: sent (a receiver answered 2xx), failed (retries gave up), dropped (a queue was full). */
  readonly events: Counter<'outcome'>;
  /** Delivery attempts by result: ok (2xx) or error (another status, a timeout, no connection). */
  readonly requests: Counter<'result'>;
  /** 1 while this gateway holds the delivery lease (it sends every gateway's webhooks and sweeps for dead ones). */
  readonly sender: Gauge;

  constructor(registry: Registry) {
    this.events = new Counter({
      name: 'switchboard_pusher_webhook_events_total',
      help: 'Pusher webhook events by outcome: sent, failed (retries gave up), dropped (over a queue limit).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.requests = new Counter({
      name: 'switchboard_pusher_webhook_requests_total',
      help: 'Pusher webhook POST attempts by result: ok (2xx) or error.',
      labelNames: ['result'],
      registers: [registry],
    });
    this.sender = new Gauge({
      name: 'switchboard_pusher_webhook_sender',
      help: '1 while this gateway holds the webhook delivery lease (sends the queued events, sweeps the channels of dead gateways).',
      registers: [registry],
    });
    for (const outcome of ['sent', 'failed', 'dropped']) this.events.labels(outcome).inc(0);
    for (const result of ['ok', 'error']) this.requests.labels(result).inc(0);
  }
}
