// The webhook emitter and sender in one process on the memory engine, against a node:http receiver: what becomes an
// event for which app, batches, retries, giving up, drops over the bound, and one sender at a time.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOutbox, MemoryBroker, type Outbox } from '@switchboard/engine';
import pino from 'pino';
import { Registry } from 'prom-client';
import { parsePusherEdgeApps, type PusherEdgeApp } from './edge_apps';
import { WebhookEmitter } from './webhook_events';
import { WebhookMetrics } from './webhook_metrics';
import { WebhookSender, type WebhookSenderOptions } from './webhook_sender';
import type { WebhookEvent } from './webhooks';

const logger = pino({ level: 'silent' });

/** A receiver whose answer each test sets: a status per request, 200 by default. */
class Receiver {
  readonly bodies: { events: WebhookEvent[] }[] = [];
  attempts = 0;
  answer: (attempt: number) => number = () => 200;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = this.answer(++this.attempts);
      if (status === 200) this.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: WebhookEvent[] });
      res.writeHead(status).end();
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  events(): WebhookEvent[] {
    return this.bodies.flatMap((b) => b.events);
  }
}

function appsFor(url: string, extra: Record<string, unknown> = {}): PusherEdgeApp[] {
  return parsePusherEdgeApps([
    { id: 'a1', key: 'k1', secret: 's1', webhooks: [{ url, event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event'] }], ...extra },
    { id: 'quiet', key: 'k2', secret: 's2', namespace: 'quiet' },
  ]).apps;
}

const fast: Omit<WebhookSenderOptions, 'node'> = {
  leaseMs: 2000,
  pollMs: 20,
  requestTimeoutMs: 2000,
  retry: { baseMs: 20, maxDelayMs: 40, maxAttempts: 3 },
  dutyIntervalMs: 1000,
};

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let receiver: Receiver;
let url: string;
let broker: MemoryBroker;
let outbox: Outbox;
let metrics: WebhookMetrics;
const stops: (() => Promise<void>)[] = [];

beforeEach(async () => {
  receiver = new Receiver();
  url = await receiver.start();
  broker = new MemoryBroker();
  outbox = createOutbox(broker, 'hooks', { maxLength: 1000 });
  metrics = new WebhookMetrics(new Registry());
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await receiver.stop();
});

function sender(node = 'n1', options: Partial<WebhookSenderOptions> = {}, apps = appsFor(url)): WebhookSender {
  const s = new WebhookSender(
    apps.map((a) => a.app),
    outbox,
    logger,
    metrics,
    { ...fast, ...options, node },
  );
  stops.push(() => s.stop());
  return s;
}

async function count(outcome: string): Promise<number> {
  return (await metrics.events.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('WebhookEmitter', () => {
  it("turns observations into the events of the apps whose channels they are, of the types their webhooks want", async () => {
    const apps = parsePusherEdgeApps([
      { id: 'a1', key: 'k1', secret: 's1', webhooks: [{ url, event_types: ['channel_occupied', 'member_added', 'client_event'] }] },
      { id: 'a2', key: 'k2', secret: 's2', namespace: 'ns', webhooks: [{ url, event_types: ['channel_vacated', 'member_removed'] }] },
    ]).apps;
    const emitter = new WebhookEmitter(apps, outbox, logger, metrics);
    expect(emitter.tracksOccupancy('room')).toBe(true);
    expect(emitter.tracksOccupancy('ns:room')).toBe(true);
    expect(emitter.tracksOccupancy('other:room')).toBe(false);
    emitter.occupancy('room', 'occupied');
    emitter.occupancy('ns:room', 'occupied'); // a2 wants no channel_occupied
    emitter.occupancy('ns:room', 'vacated');
    emitter.member('presence-room', 'member_added', '{"user":"u1","client":"c1"}');
    emitter.member('room', 'member_added', '{"user":"u1","client":"c1"}'); // not a presence channel
    emitter.member('presence-room', 'member_added', '{"user":"","client":"c2"}'); // anonymous
    emitter.member('ns:presence-room', 'member_removed', '{"user":"u2","client":"c3"}');
    const tags = (event: string): Record<string, string> => ({ event, socket_id: '1.2' });
    emitter.published('private-x', '{"a":1}', { source: 'client', tags: tags('client-typing') });
    emitter.published('private-x', '"plain"', { source: 'client', tags: { ...tags('client-said'), user_id: 'u1' } });
    emitter.published('private-x', '{"a":1}', { source: 'api', tags: tags('client-typing') });
    emitter.published('private-x', '{"a":1}', { source: 'client', tags: tags('typing') });
    await emitter.flush();
    const queued = (await outbox.read('', 100)).entries.map((e) => JSON.parse(e.body) as { app: string; event: WebhookEvent });
    expect(queued.map((q) => [q.app, q.event])).toEqual([
      ['a1', { name: 'channel_occupied', channel: 'room' }],
      ['a2', { name: 'channel_vacated', channel: 'room' }],
      ['a1', { name: 'member_added', channel: 'presence-room', user_id: 'u1' }],
      ['a2', { name: 'member_removed', channel: 'presence-room', user_id: 'u2' }],
      ['a1', { name: 'client_event', channel: 'private-x', event: 'client-typing', data: '{"a":1}', socket_id: '1.2' }],
      ['a1', { name: 'client_event', channel: 'private-x', event: 'client-said', data: 'plain', socket_id: '1.2', user_id: 'u1' }],
    ]);
  });

  it('holds events while the outbox fails, drops the oldest over its bound, and appends the rest in order', async () => {
    let failing = true;
    const flaky: Outbox = Object.assign(Object.create(outbox) as Outbox, {
      append: (bodies: string[]) => (failing ? Promise.reject(new Error('down')) : outbox.append(bodies)),
    });
    const emitter = new WebhookEmitter(appsFor(url), flaky, logger, metrics, 3);
    for (const channel of ['c1', 'c2', 'c3', 'c4', 'c5']) emitter.occupancy(channel, 'occupied');
    await emitter.flush();
    expect(await count('dropped')).toBe(2);
    failing = false;
    await emitter.flush();
    expect((await outbox.read('', 10)).entries.map((e) => (JSON.parse(e.body) as { event: WebhookEvent }).event.channel)).toEqual(['c3', 'c4', 'c5']);
  });
});

describe('WebhookSender', () => {
  it('sends in order, at most 100 events per request', async () => {
    const emitter = new WebhookEmitter(appsFor(url), outbox, logger, metrics);
    for (let i = 0; i < 250; i++) emitter.occupancy(`ch${i}`, 'occupied');
    emitter.occupancy('quiet:ch', 'occupied'); // the quiet app has no webhooks
    await emitter.flush();
    sender().start();
    await until(() => receiver.events().length === 250, '250 events');
    expect(receiver.bodies.map((b) => b.events.length)).toEqual([100, 100, 50]);
    expect(receiver.events().map((e) => e.channel)).toEqual(Array.from({ length: 250 }, (_, i) => `ch${i}`));
    // The receiver holds the last body before its answer is back at the sender, which counts it then.
    await until(async () => (await count('sent')) >= 250, 'the last request counted');
    expect(await count('sent')).toBe(250);
  });

  it('retries a failing receiver with backoff, gives a batch up after the last attempt, and goes on', async () => {
    const emitter = new WebhookEmitter(appsFor(url), outbox, logger, metrics);
    receiver.answer = (attempt) => (attempt <= 2 ? 503 : 200);
    emitter.occupancy('retried', 'occupied');
    await emitter.flush();
    const s = sender();
    s.start();
    await until(() => receiver.events().length === 1, 'the retried event');
    expect(receiver.attempts).toBe(3);

    receiver.answer = () => 500;
    emitter.occupancy('given-up', 'occupied');
    await emitter.flush();
    await until(async () => (await count('failed')) === 1, 'the batch given up after three attempts');
    expect(receiver.attempts).toBe(6);
    receiver.answer = () => 200;
    emitter.occupancy('after', 'occupied');
    await emitter.flush();
    await until(() => receiver.events().length === 2, 'the next event');
    expect(receiver.events().map((e) => e.channel)).toEqual(['retried', 'after']);
    expect(await count('failed')).toBe(1);
  });

  it('counts the events the outbox bound dropped before this receiver read them', async () => {
    const small = createOutbox(broker, 'small', { maxLength: 5 });
    const reader = `a1 ${url}`;
    await small.append(['{}']);
    await small.claim('n1', 60_000);
    await small.saveCursor(reader, (await small.read('', 1)).entries[0].id, 'n1');
    const emitter = new WebhookEmitter(appsFor(url), small, logger, metrics);
    for (let i = 0; i < 20; i++) emitter.occupancy(`d${i}`, 'occupied');
    await emitter.flush();
    outbox = small;
    sender().start();
    await until(() => receiver.events().length === 5, 'the five kept');
    expect(receiver.events().map((e) => e.channel)).toEqual(['d15', 'd16', 'd17', 'd18', 'd19']);
    expect(await count('dropped')).toBe(15);
  });

  it('delivers from one gateway at a time; another takes over where the first stopped', async () => {
    const emitter = new WebhookEmitter(appsFor(url), outbox, logger, metrics);
    const [first, second] = [sender('n1'), sender('n2')];
    first.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    second.start();
    for (let i = 0; i < 5; i++) emitter.occupancy(`x${i}`, 'occupied');
    await emitter.flush();
    await until(() => receiver.events().length === 5, 'five events');
    await first.stop();
    for (let i = 5; i < 10; i++) emitter.occupancy(`x${i}`, 'occupied');
    await emitter.flush();
    await until(() => receiver.events().length === 10, 'five more, from the second sender');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.events().map((e) => e.channel)).toEqual(Array.from({ length: 10 }, (_, i) => `x${i}`));
  });
});
