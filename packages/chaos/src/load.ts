// The load of a chaos or soak run: SDK subscribers with recoverable subscriptions, idempotent publishers, document writers.
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { hmacToken } from '@switchboard/testkit';
import { API_KEY, DOC_NAMESPACE, FEED_NAMESPACE, SECRET, sleep, type Cluster } from './cluster';
import { newLog, onSubscribed, type Acked, type RunRecord, type SubscriberLog } from './judge';

/** The size of a run: the cluster's processes and the load on them (shared by chaos and soak runs). */
export interface RunShape {
  gateways: number;
  workers: number;
  subscribers: number;
  channels: number;
  /** Publications per second, spread over the channels. */
  publishRate: number;
  docWriters: number;
  log?: (line: string) => void;
}

export interface LoadOptions {
  url: string;
  wsUrl: string;
  channels: number;
  subscribers: number;
  /** Publications per second, spread over the channels. */
  publishRate: number;
  docWriters: number;
  /** Pause between one writer's updates (ms). */
  docIntervalMs: number;
  /** Short-lived clients per second (connect, subscribe, wait for one publication, disconnect); default none. */
  churnPerSecond?: number;
}

export class Load implements RunRecord {
  readonly subscribers: { client: Centrifuge; logs: SubscriberLog[] }[] = [];
  readonly published: Acked[] = [];
  readonly docVersions: Acked[] = [];
  /** Per writer: updates acknowledged (each an `incr` of 1 on its own field). */
  readonly docAcked: number[];
  /** Requests that were still being retried when the run ended (must be 0: every one is settled). */
  failures: string[] = [];
  /** Short-lived clients that got their publication, and those that did not within 5 s. */
  churned = 0;
  churnFailures = 0;
  private running = true;
  private churning = true;
  private readonly loops: Promise<void>[] = [];
  private churn: Promise<void> = Promise.resolve();

  get logs(): SubscriberLog[] {
    return this.subscribers.flatMap((s) => s.logs);
  }

  /** The load of a run on `cluster`, through its balancer. */
  static on(cluster: Cluster, shape: RunShape, extra: Partial<LoadOptions> = {}): Load {
    return new Load({
      url: cluster.balancer.url,
      wsUrl: cluster.balancer.wsUrl,
      channels: shape.channels,
      subscribers: shape.subscribers,
      publishRate: shape.publishRate,
      docWriters: shape.docWriters,
      docIntervalMs: 50,
      ...extra,
    });
  }

  constructor(readonly opts: LoadOptions) {
    this.docAcked = Array.from({ length: opts.docWriters }, () => 0);
  }

  readonly channelNames = (): string[] => Array.from({ length: this.opts.channels }, (_, i) => `${FEED_NAMESPACE}:c${i}`);
  readonly docChannel = `${DOC_NAMESPACE}:board`;

  async start(): Promise<void> {
    const channels = this.channelNames();
    await Promise.all(
      Array.from({ length: this.opts.subscribers }, async (_, i) => {
        const client = new Centrifuge(this.opts.wsUrl, {
          websocket: WebSocket,
          token: await hmacToken(SECRET, { sub: `s${i}` }),
          minReconnectDelay: 100,
          maxReconnectDelay: 1000,
          timeout: 3000,
        });
        // Each subscriber follows two channels (the documents channel too, for the first few).
        const mine = [channels[i % channels.length], channels[(i + 1) % channels.length]];
        if (i < 3) mine.push(this.docChannel);
        const logs: SubscriberLog[] = [];
        const subscribed: Promise<void>[] = [];
        for (const channel of mine) {
          const log = newLog(channel);
          logs.push(log);
          const sub = client.newSubscription(channel);
          const isDoc = channel === this.docChannel;
          sub.on('publication', (ctx) => {
            const data = ctx.data as { n?: number; version?: number };
            log.offsets.push(ctx.offset ?? -1);
            log.tags.push((isDoc ? data.version : data.n) ?? -1);
          });
          sub.on('subscribed', (ctx) => onSubscribed(log, ctx.streamPosition, ctx.recovered));
          subscribed.push(new Promise((resolve) => sub.once('subscribed', () => resolve())));
          sub.subscribe();
        }
        client.connect();
        await Promise.all(subscribed);
        this.subscribers.push({ client, logs });
      }),
    );
    this.loops.push(this.publishLoop(channels));
    for (let w = 0; w < this.opts.docWriters; w++) this.loops.push(this.docLoop(w));
    if (this.opts.churnPerSecond) this.churn = this.churnLoop(channels, this.opts.churnPerSecond);
  }

  /** Clients that come and go: what a leak of per-connection or per-subscription state would show up under. */
  private async churnLoop(channels: string[], perSecond: number): Promise<void> {
    const inflight = new Set<Promise<void>>();
    for (let k = 0; this.churning; k++) {
      const task = this.shortLived(channels[k % channels.length], k).finally(() => inflight.delete(task));
      inflight.add(task);
      await sleep(1000 / perSecond);
    }
    await Promise.all(inflight);
  }

  private async shortLived(channel: string, k: number): Promise<void> {
    const client = new Centrifuge(this.opts.wsUrl, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: `short${k}` }), timeout: 3000 });
    const sub = client.newSubscription(channel);
    const got = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      sub.once('publication', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    sub.subscribe();
    client.connect();
    if (await got) this.churned++;
    else this.churnFailures++;
    client.disconnect();
  }

  /** Open loop: one publication every 1/rate s, each its own task retried until acknowledged. */
  private async publishLoop(channels: string[]): Promise<void> {
    const inflight = new Set<Promise<void>>();
    const interval = 1000 / this.opts.publishRate;
    let n = 0;
    const started = Date.now();
    while (this.running) {
      const channel = channels[n % channels.length];
      const id = n++;
      const task = this.publishOnce(channel, id).finally(() => inflight.delete(task));
      inflight.add(task);
      const due = started + n * interval;
      await sleep(Math.max(0, due - Date.now()));
    }
    await Promise.all(inflight);
  }

  private async publishOnce(channel: string, n: number): Promise<void> {
    const body = JSON.stringify({ channel, data: { n }, idempotency_key: `pub-${n}` });
    const r = await this.call<{ offset: number }>('publish', body, `publish ${n}`);
    if (r) this.published.push({ channel, offset: r.offset, tag: n });
  }

  private async docLoop(w: number): Promise<void> {
    let base = 0;
    for (let k = 0; this.running; k++) {
      const body = (b: number) => JSON.stringify({ channel: this.docChannel, base: b, ops: [{ op: 'incr', path: `/w${w}`, value: 1 }], key: `doc-${w}-${k}` });
      // A base ahead of the document means Redis lost versions this writer saw (a failover before the replica
      // caught up): re-read the document and retry on its version, with the same key.
      const rebase = async (error: { code: number; message: string }): Promise<string | undefined> => {
        if (error.code !== 107 || !error.message.includes('ahead of the document')) return undefined;
        const doc = await this.call<{ version: number }>('doc_get', JSON.stringify({ channel: this.docChannel }), `doc ${w}/${k} re-read`);
        return doc ? body(doc.version) : undefined;
      };
      const r = await this.call<{ status: string; version: number }>('doc_update', body(base), `doc ${w}/${k}`, rebase);
      if (r) {
        if (r.status === 'conflict') this.failures.push(`doc ${w}/${k}: an incr conflicted`);
        else {
          this.docAcked[w]++;
          this.docVersions.push({ channel: this.docChannel, offset: r.version, tag: r.version });
        }
        base = r.version;
      }
      await sleep(this.opts.docIntervalMs);
    }
  }

  /**
   * Calls the API through the balancer as a careful backend does: a timeout per attempt, and retries with the
   * same idempotency key until a result comes back (`repair` may rewrite the request after an error). Gives up
   * only after 60 s, which is a failure of the run.
   */
  private async call<T>(method: string, first: string, what: string, repair?: (error: { code: number; message: string }) => Promise<string | undefined>): Promise<T | undefined> {
    const deadline = Date.now() + 60000;
    let last = '';
    let body = first;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.opts.url}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body, signal: AbortSignal.timeout(3000) });
        const json = (await res.json()) as { result?: T; error?: { code: number; message: string } };
        if (json.result) return json.result;
        last = JSON.stringify(json.error);
        const repaired = json.error && repair ? await repair(json.error) : undefined;
        if (repaired) body = repaired;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(100);
    }
    this.failures.push(`${what}: not acknowledged in 60 s (last: ${last})`);
    return undefined;
  }

  /** Stops sending and waits until every request is settled. */
  async stop(): Promise<void> {
    // Short-lived clients first: each waits for a publication, so the publishers outlive them.
    this.churning = false;
    await this.churn;
    this.running = false;
    await Promise.all(this.loops);
  }

  disconnect(): void {
    for (const s of this.subscribers) s.client.disconnect();
  }
}
