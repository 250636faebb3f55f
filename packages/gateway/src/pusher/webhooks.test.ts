import fc from 'fast-check';
import Pusher from 'pusher';
import { parsePusherApps } from './apps';
import { DEFAULT_WEBHOOK_RETRY, eventsFor, webhookBody, webhookRequests, webhookRetryDelayMs, type WebhookEvent } from './webhooks';

const app = parsePusherApps([
  {
    id: 'app-1',
    key: 'app-key',
    secret: 'app-secret',
    webhooks: [
      { url: 'http://127.0.0.1:9001/existence', event_types: ['channel_occupied', 'channel_vacated'] },
      { url: 'http://127.0.0.1:9002/all', event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event'], headers: { 'X-Receiver-Token': 't0k' } },
      { url: 'http://127.0.0.1:9003/none-here', event_types: ['member_removed'] },
    ],
  },
]).apps[0];

const events: WebhookEvent[] = [
  { name: 'channel_occupied', channel: 'presence-room' },
  { name: 'member_added', channel: 'presence-room', user_id: '42' },
  { name: 'client_event', channel: 'presence-room', event: 'client-typing', data: '{"typing":true}', socket_id: '1.2', user_id: '42' },
  { name: 'client_event', channel: 'private-a', event: 'client-x', data: 'hi', socket_id: '3.4' },
  { name: 'channel_vacated', channel: 'private-a' },
];

describe('webhook bodies', () => {
  it('are {time_ms, events} with the documented fields of each event', () => {
    expect(JSON.parse(webhookBody(events, 1327078148132))).toEqual({
      time_ms: 1327078148132,
      events: [
        { name: 'channel_occupied', channel: 'presence-room' },
        { name: 'member_added', channel: 'presence-room', user_id: '42' },
        { name: 'client_event', channel: 'presence-room', event: 'client-typing', data: '{"typing":true}', socket_id: '1.2', user_id: '42' },
        { name: 'client_event', channel: 'private-a', event: 'client-x', data: 'hi', socket_id: '3.4' },
        { name: 'channel_vacated', channel: 'private-a' },
      ],
    });
  });

  it('carry no field the event does not have, whatever the caller passed along', () => {
    const sloppy = { name: 'channel_occupied', channel: 'a', user_id: 'leak', secret: 'x' } as unknown as WebhookEvent;
    expect(webhookBody([sloppy], 1)).toBe('{"time_ms":1,"events":[{"name":"channel_occupied","channel":"a"}]}');
  });
});

describe('webhookRequests', () => {
  it('gives each receiver only the types it asked for, and nobody an empty request', () => {
    const requests = webhookRequests(app, events, 1000);
    expect(requests.map((r) => [r.url, r.events])).toEqual([
      ['http://127.0.0.1:9001/existence', 2],
      ['http://127.0.0.1:9002/all', 5],
    ]);
    expect(eventsFor(app.webhooks[0], events).map((e) => e.name)).toEqual(['channel_occupied', 'channel_vacated']);
    expect(webhookRequests(app, [], 1000)).toEqual([]);
  });

  it('are signed so that the pusher library accepts them, and carry the receiver’s headers', () => {
    const pusher = new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1' });
    for (const r of webhookRequests(app, events, 1000)) {
      const lower = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
      const hook = pusher.webhook({ headers: lower, rawBody: r.body });
      expect(hook.isValid()).toBe(true);
      expect(hook.getTime().getTime()).toBe(1000);
      expect(hook.getEvents()).toEqual(JSON.parse(r.body).events);
      // Any change to the body breaks the signature.
      expect(pusher.webhook({ headers: lower, rawBody: r.body.replace('private-a', 'private-b') }).isValid()).toBe(false);
    }
    const [, all] = webhookRequests(app, events, 1000);
    expect(all.headers).toMatchObject({ 'X-Receiver-Token': 't0k', 'Content-Type': 'application/json', 'X-Pusher-Key': 'app-key' });
    const other = new Pusher({ appId: app.id, key: app.key, secret: 'other-secret', host: '127.0.0.1' });
    expect(other.webhook({ headers: Object.fromEntries(Object.entries(all.headers).map(([k, v]) => [k.toLowerCase(), v])), rawBody: all.body }).isValid()).toBe(false);
  });

  it('split many events into batches, in order', () => {
    const many: WebhookEvent[] = Array.from({ length: 250 }, (_, i) => ({ name: 'channel_occupied', channel: `c${i}` }));
    const requests = webhookRequests(app, many, 5).filter((r) => r.url.endsWith('/existence'));
    expect(requests.map((r) => r.events)).toEqual([100, 100, 50]);
    const channels = requests.flatMap((r) => (JSON.parse(r.body) as { events: { channel: string }[] }).events.map((e) => e.channel));
    expect(channels).toEqual(many.map((e) => e.channel));
    expect(webhookRequests(app, many, 5, 10).filter((r) => r.url.endsWith('/existence'))).toHaveLength(25);
  });
});

describe('webhookRetryDelayMs', () => {
  it('doubles from 1 s to a 60 s cap with up to half taken off by jitter, then gives up', () => {
    const high = (a: number) => webhookRetryDelayMs(a, DEFAULT_WEBHOOK_RETRY, () => 0.999999);
    const low = (a: number) => webhookRetryDelayMs(a, DEFAULT_WEBHOOK_RETRY, () => 0);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 11].map(high)).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    expect([1, 2, 7, 11].map(low)).toEqual([500, 1000, 30000, 30000]);
    expect(high(12)).toBeNull();
    const waits = (f: (a: number) => number | null) => Array.from({ length: 11 }, (_, i) => f(i + 1) as number).reduce((a, b) => a + b, 0);
    // Pusher retries for about five minutes; these bounds bracket that.
    expect(waits(low)).toBe(181_500);
    expect(waits(high)).toBe(363_000);
  });

  it('refuses attempts that are not positive integers, and takes its own policy', () => {
    for (const attempt of [0, -1, 1.5, NaN, Infinity]) expect(webhookRetryDelayMs(attempt)).toBeNull();
    expect(webhookRetryDelayMs(3, { baseMs: 10, maxDelayMs: 25, maxAttempts: 4 }, () => 1)).toBe(25);
    expect(webhookRetryDelayMs(4, { baseMs: 10, maxDelayMs: 25, maxAttempts: 4 }, () => 1)).toBeNull();
  });

  it('stays within [step/2, step] for any random source, even a broken one (property)', () => {
    const policy = { baseMs: 1000, maxDelayMs: 60_000, maxAttempts: 10_000 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9_999 }), fc.oneof(fc.double(), fc.constantFrom(NaN, -Infinity, Infinity, -0)), (attempt, r) => {
        const delay = webhookRetryDelayMs(attempt, policy, () => r) as number;
        const step = Math.min(60_000, 1000 * 2 ** (attempt - 1));
        expect(delay).toBeGreaterThanOrEqual(step / 2);
        expect(delay).toBeLessThanOrEqual(step);
      }),
    );
  });
});
