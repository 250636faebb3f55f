// Delivers the queued webhook events: one gateway at a time holds the outbox's lease and works through it, per
// receiver in order, in signed batches, retrying a failing receiver with backoff before moving on.
import type { Outbox, OutboxEntry } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { PusherApp, PusherWebhook } from './apps';
import { webhookSignatureHeaders } from './signature';
import type { QueuedWebhookEvent } from './webhook_events';
import type { WebhookMetrics } from './webhook_metrics';
import { DEFAULT_WEBHOOK_RETRY, MAX_WEBHOOK_EVENTS_PER_REQUEST, webhookBody, webhookRetryDelayMs, type RetryPolicy, type WebhookEvent } from './webhooks';

export interface WebhookSenderOptions {
  /** This gateway's id, as the lease holder. */
  node: string;
  /** The lease lives this long unless renewed (every third of it); another gateway takes over after it. */
  leaseMs: number;
  /** How often an idle receiver's queue is read again. */
  pollMs: number;
  /** A receiver that has not answered by then failed this attempt. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  /** The lease holder's other duty (the occupancy sweep), run every `dutyIntervalMs`. */
  duty?: () => Promise<void>;
  dutyIntervalMs: number;
}

export const DEFAULT_SENDER_OPTIONS: Omit<WebhookSenderOptions, 'node'> = {
  leaseMs: 10_000,
  pollMs: 200,
  requestTimeoutMs: 5000,
  retry: DEFAULT_WEBHOOK_RETRY,
  dutyIntervalMs: 5000,
};

/** Outbox entries read per round. */
const READ_COUNT = 500;

/** One receiver of one app, with its own cursor in the outbox. */
interface Target {
  app: PusherApp;
  hook: PusherWebhook;
  /** The cursor's name: app id and URL (two apps may share a URL, and each app's events are signed apart). */
  reader: string;
  types: ReadonlySet<string>;
  cursor: string;
  /** Reads that found nothing left to send. */
  emptyReads: number;
}

/** Raised inside a receiver's loop once this gateway no longer holds the lease. */
class LeaseLost extends Error {}

/** One stretch of holding the lease; loops of an earlier one stop even when the lease is taken again. */
interface Term {
  active: boolean;
  /** Wakes every sleeping loop and cancels requests in flight when the term ends. */
  wake: AbortController;
}

export class WebhookSender {
  private readonly targets: Target[];
  private term: Term | undefined;
  private stopped = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private dutyTimer: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  private loops: Promise<void>[] = [];

  constructor(
    apps: readonly PusherApp[],
    private readonly outbox: Outbox,
    private readonly logger: Logger,
    private readonly metrics: WebhookMetrics,
    private readonly options: WebhookSenderOptions,
  ) {
    this.targets = apps.flatMap((app) =>
      app.webhooks.map((hook) => ({ app, hook, reader: `${app.id} ${hook.url}`, types: new Set<string>(hook.event_types), cursor: '', emptyReads: 0 })),
    );
  }

  start(): void {
    const renew = (): void => void this.renew();
    renew();
    this.leaseTimer = setInterval(renew, Math.max(100, this.options.leaseMs / 3));
    this.leaseTimer.unref();
  }

  /**
   * Stops delivering and lets the lease go, so another gateway takes over at once. With `drainMs`, the holder first
   * sends what is queued, for up to that long (an outbox in memory goes with the process).
   */
  async stop(drainMs = 0): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaseTimer);
    if (this.term && drainMs > 0) {
      const seen = this.targets.map((t) => t.emptyReads);
      const deadline = Date.now() + drainMs;
      while (this.term && Date.now() < deadline && this.targets.some((t, i) => t.emptyReads <= seen[i])) await new Promise((r) => setTimeout(r, 50));
    }
    const wasHolding = this.term !== undefined;
    this.lose();
    await Promise.all(this.loops);
    if (wasHolding) await this.outbox.release(this.options.node).catch(() => undefined);
  }

  private async renew(): Promise<void> {
    let held: boolean;
    try {
      held = !this.stopped && (await this.outbox.claim(this.options.node, this.options.leaseMs));
    } catch (err) {
      // Unreachable: another gateway may take over once the lease runs out, so stop sending.
      if (this.term) this.logger.warn({ err: (err as Error).message }, 'webhook sender paused: cannot renew its lease');
      held = false;
    }
    if (held && !this.term && !this.stopped) this.take();
    else if (!held && this.term) this.lose();
  }

  private take(): void {
    const term: Term = { active: true, wake: new AbortController() };
    this.term = term;
    this.metrics.sender.set(1);
    this.logger.info({ receivers: this.targets.length }, 'webhook sender: this gateway delivers webhooks');
    this.loops = this.targets.map((target) => this.run(term, target));
    const duty = this.options.duty;
    if (duty) {
      let running = false;
      this.dutyTimer = setInterval(() => {
        if (running) return;
        running = true;
        void duty().finally(() => (running = false));
      }, this.options.dutyIntervalMs);
      this.dutyTimer.unref();
    }
    this.trimTimer = setInterval(() => void this.trim(), 5000);
    this.trimTimer.unref();
  }

  private lose(): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    term.active = false;
    this.metrics.sender.set(0);
    clearInterval(this.dutyTimer);
    clearInterval(this.trimTimer);
    term.wake.abort();
  }

  /** Drops what every receiver has been sent. */
  private async trim(): Promise<void> {
    try {
      await this.outbox.trim(this.targets.map((t) => t.cursor));
    } catch {
      // The next trim catches up.
    }
  }

  /** One receiver's loop, while this gateway holds the lease: read after its cursor, send in batches, save the cursor. */
  private async run(term: Term, target: Target): Promise<void> {
    try {
      target.cursor = await this.retrying(term, () => this.outbox.cursor(target.reader));
      while (term.active) {
        const read = await this.retrying(term, () => this.outbox.read(target.cursor, READ_COUNT));
        if (read.dropped > 0) {
          this.metrics.events.labels('dropped').inc(read.dropped);
          this.logger.warn({ url: target.hook.url, app: target.app.id, dropped: read.dropped }, 'webhook events dropped before delivery: the queue was full');
        }
        if (read.entries.length === 0) {
          target.emptyReads++;
          await sleep(term, this.options.pollMs);
          continue;
        }
        await this.deliverAll(term, target, read.entries);
      }
    } catch (err) {
      if (!(err instanceof LeaseLost)) this.logger.error({ err, url: target.hook.url }, 'webhook sender failed');
    }
  }

  /** Sends the entries meant for this receiver, in batches, moving the cursor past each batch once it is done. */
  private async deliverAll(term: Term, target: Target, entries: OutboxEntry[]): Promise<void> {
    let batch: { event: WebhookEvent; time: number }[] = [];
    for (let i = 0; i < entries.length; i++) {
      const queued = parse(entries[i].body);
      if (queued && queued.app === target.app.id && target.types.has(queued.event.name)) batch.push({ event: queued.event, time: queued.time_ms });
      const last = i === entries.length - 1;
      if (batch.length === MAX_WEBHOOK_EVENTS_PER_REQUEST || (last && batch.length > 0)) {
        await this.deliver(term, target, batch);
        batch = [];
        await this.advance(target, entries[i].id);
      } else if (last) {
        await this.advance(target, entries[i].id);
      }
    }
  }

  private async advance(target: Target, cursor: string): Promise<void> {
    target.cursor = cursor;
    let saved: boolean;
    try {
      saved = await this.outbox.saveCursor(target.reader, cursor, this.options.node);
    } catch {
      // Kept in memory; saved with the next batch. A gateway taking over meanwhile sends some events again.
      return;
    }
    if (!saved) {
      this.lose();
      throw new LeaseLost();
    }
  }

  /** One signed request for the batch, retried with backoff until the receiver takes it or the policy gives up. */
  private async deliver(term: Term, target: Target, batch: { event: WebhookEvent; time: number }[]): Promise<void> {
    const body = webhookBody(
      batch.map((b) => b.event),
      batch[0].time,
    );
    const headers = { ...target.hook.headers, 'Content-Type': 'application/json', ...webhookSignatureHeaders(target.app, body) };
    for (let attempt = 1; ; attempt++) {
      if (!term.active) throw new LeaseLost();
      const problem = await this.post(term, target.hook.url, headers, body);
      if (problem === undefined) {
        this.metrics.requests.labels('ok').inc();
        this.metrics.events.labels('sent').inc(batch.length);
        return;
      }
      this.metrics.requests.labels('error').inc();
      const delay = webhookRetryDelayMs(attempt, this.options.retry);
      if (delay === null) {
        this.metrics.events.labels('failed').inc(batch.length);
        this.logger.warn({ url: target.hook.url, app: target.app.id, events: batch.length, attempts: attempt, problem }, 'webhook events given up: the receiver kept failing');
        return;
      }
      if (attempt === 1) this.logger.info({ url: target.hook.url, problem }, 'webhook receiver failing; retrying with backoff');
      await sleep(term, delay);
    }
  }

  /** POSTs once; undefined when the receiver answered 2xx, else what went wrong. */
  private async post(term: Term, url: string, headers: Record<string, string>, body: string): Promise<string | undefined> {
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(this.options.requestTimeoutMs), term.wake.signal]);
      const res = await fetch(url, { method: 'POST', headers, body, signal });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? undefined : `status ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return cause ?? (err as Error).message;
    }
  }

  /** Retries an outbox call until it succeeds or the lease is gone (Redis away: nobody sends meanwhile). */
  private async retrying<T>(term: Term, call: () => Promise<T>): Promise<T> {
    for (;;) {
      if (!term.active) throw new LeaseLost();
      try {
        return await call();
      } catch {
        await sleep(term, Math.max(this.options.pollMs, 500));
      }
    }
  }
}

/** Waits, or less once the term ends. */
function sleep(term: Term, ms: number): Promise<void> {
  const signal = term.wake.signal;
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

function parse(body: string): QueuedWebhookEvent | undefined {
  try {
    const queued = JSON.parse(body) as QueuedWebhookEvent;
    return typeof queued.app === 'string' && typeof queued.event?.name === 'string' ? queued : undefined;
  } catch {
    return undefined;
  }
}
