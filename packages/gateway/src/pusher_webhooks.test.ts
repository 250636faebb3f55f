// Pusher webhooks end to end: a local receiver (node:http) behind two gateways on a private Redis gets every event once
// per cluster — occupancy and members counted cluster-wide — signed, in order per channel, also after it was down,
// and the channels of a gateway killed with SIGKILL are vacated; then the same on a standalone (memory) gateway.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import PusherServer from 'pusher';
import PusherClient from 'pusher-js';
import { startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const APP = { id: 'hooks', key: 'hooks-key', secret: 'hooks-secret' };
const TOKEN = 't0k';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface HookEvent {
  name: string;
  channel: string;
  user_id?: string;
  event?: string;
  data?: string;
  socket_id?: string;
}

/** A webhook receiver: answers 200, or 503, or stops listening, as a test says. */
class Receiver {
  readonly accepted: Received[] = [];
  refused = 0;
  mode: 'ok' | 'unavailable' = 'ok';
  private server = http.createServer((req, res) => this.handle(req, res));
  port = 0;

  async start(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Not listening at all: connections are refused. */
  async down(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async up(): Promise<void> {
    await this.start(this.port);
  }

  stop(): Promise<void> {
    return this.down();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/pusher/webhooks`;
  }

  /** Every event accepted so far, in the order received. */
  events(): HookEvent[] {
    return this.accepted.flatMap((r) => (JSON.parse(r.body) as { events: HookEvent[] }).events);
  }

  of(channel: string): string[] {
    return this.events()
      .filter((e) => e.channel === channel)
      .map((e) => (e.user_id === undefined ? e.name : `${e.name} ${e.user_id}`));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (this.mode === 'unavailable') {
        this.refused++;
        res.writeHead(503).end();
        return;
      }
      this.accepted.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end('ok');
    });
  }
}

function configFile(receiver: Receiver): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-webhooks-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      'channel:',
      '  without_namespace:',
      '    allow_subscribe_for_client: true',
      '    allow_subscribe_for_anonymous: true',
      '    presence: true',
      'pusher:',
      '  apps:',
      `    - id: ${APP.id}`,
      `      key: ${APP.key}`,
      `      secret: ${APP.secret}`,
      '      webhooks:',
      `        - url: ${receiver.url}`,
      '          event_types: [channel_occupied, channel_vacated, member_added, member_removed, client_event]',
      `          headers: { X-Receiver-Token: ${TOKEN} }`,
    ].join('\n'),
  );
  return file;
}

const cleanups: (() => void)[] = [];

function client(gateway: SwitchboardProcess, user?: { user_id: string; user_info?: Record<string, unknown> }): PusherClient {
  const signer = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(gateway.port), useTLS: false });
  const pusher = new PusherClient(APP.key, {
    wsHost: '127.0.0.1',
    wsPort: gateway.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    channelAuthorization: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: ({ socketId, channelName }, callback) => {
        callback(null, signer.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? user : undefined));
      },
    },
  });
  cleanups.push(() => pusher.disconnect());
  return pusher;
}

function subscribed(pusher: PusherClient, channel: string): Promise<void> {
  const ch = pusher.subscribe(channel);
  return new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', () => resolve());
    ch.bind('pusher:subscription_error', (e: unknown) => reject(new Error(`subscription error: ${JSON.stringify(e)}`)));
  });
}

let markers = 0;
/**
 * Occupies and vacates a channel of its own and waits for both events: the receiver gets each receiver's events in
 * the order they were queued, so everything queued before is in by then.
 */
async function barrier(receiver: Receiver, gateway: SwitchboardProcess): Promise<void> {
  const channel = `marker-${++markers}`;
  const c = client(gateway);
  await subscribed(c, channel);
  c.unsubscribe(channel);
  await waitFor(() => receiver.of(channel).length === 2, { timeoutMs: 15000, message: `the events of ${channel}` });
  c.disconnect();
}

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('webhooks from two gateways on Redis', () => {
  let redis: RedisServer;
  let receiver: Receiver;
  let a: SwitchboardProcess;
  let b: SwitchboardProcess;
  let args: string[];

  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    redis = await startRedis();
    // Presence (and occupancy) records of a gateway that died expire 2 s after its last refresh.
    args = ['--redis', redis.url, '--config', configFile(receiver), '--token-hmac-secret', 'webhook-tests', '--presence-ttl', '2', '--log-level', 'warn', '--pusher-app', 'other:other-key:other-secret'];
    [a, b] = await Promise.all([startSwitchboard('gateway', args), startSwitchboard('gateway', args)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await receiver?.stop();
  });

  it('sends one channel_occupied and one channel_vacated per channel lifetime, whichever gateways the subscribers are on', async () => {
    const [onA, onB] = [client(a), client(b)];
    await subscribed(onA, 'orders');
    await waitFor(() => receiver.of('orders').length === 1, { timeoutMs: 5000, message: 'channel_occupied' });
    await subscribed(onB, 'orders');
    onA.unsubscribe('orders');
    await barrier(receiver, a);
    await barrier(receiver, b);
    // Still a subscriber on B: not vacated.
    expect(receiver.of('orders')).toEqual(['channel_occupied']);
    onB.unsubscribe('orders');
    await waitFor(() => receiver.of('orders').length === 2, { timeoutMs: 5000, message: 'channel_vacated' });
    await barrier(receiver, a);
    expect(receiver.of('orders')).toEqual(['channel_occupied', 'channel_vacated']);

    // Two subscribers at once on each gateway, gone at once: still one of each.
    const clients = [client(a), client(a), client(b), client(b)];
    await Promise.all(clients.map((c) => subscribed(c, 'burst')));
    for (const c of clients) c.unsubscribe('burst');
    await waitFor(() => receiver.of('burst').length === 2, { timeoutMs: 5000, message: 'the burst channel vacated' });
    await barrier(receiver, b);
    expect(receiver.of('burst')).toEqual(['channel_occupied', 'channel_vacated']);
  });

  it('sends member_added and member_removed once per user, however many connections it has on which gateways', async () => {
    const alice = { user_id: 'alice', user_info: { name: 'Alice' } };
    const bob = client(b, { user_id: 'bob' });
    await subscribed(bob, 'presence-room');
    const seenByBob: string[] = [];
    bob.channel('presence-room').bind('pusher:member_added', (m: { id: string }) => seenByBob.push(`added ${m.id}`));
    bob.channel('presence-room').bind('pusher:member_removed', (m: { id: string }) => seenByBob.push(`removed ${m.id}`));

    const [aliceOnA, aliceOnB] = [client(a, alice), client(b, alice)];
    await subscribed(aliceOnA, 'presence-room');
    await subscribed(aliceOnB, 'presence-room');
    await waitFor(() => receiver.of('presence-room').includes('member_added alice'), { timeoutMs: 5000, message: 'alice added' });
    aliceOnA.unsubscribe('presence-room');
    await barrier(receiver, a);
    expect(receiver.of('presence-room')).toEqual(['channel_occupied', 'member_added bob', 'member_added alice']);
    expect(seenByBob).toEqual(['added alice']);

    aliceOnB.disconnect();
    await waitFor(() => receiver.of('presence-room').includes('member_removed alice'), { timeoutMs: 5000, message: 'alice removed' });
    bob.unsubscribe('presence-room');
    await waitFor(() => receiver.of('presence-room').length === 6, { timeoutMs: 5000, message: 'bob removed, channel vacated' });
    await barrier(receiver, b);
    expect(receiver.of('presence-room')).toEqual(['channel_occupied', 'member_added bob', 'member_added alice', 'member_removed alice', 'member_removed bob', 'channel_vacated']);
    expect(seenByBob).toEqual(['added alice', 'removed alice']);
  });

  it('sends client events, and signs every request so that the pusher library accepts it', async () => {
    const [one, two] = [client(a), client(b)];
    await Promise.all([subscribed(one, 'private-chat'), subscribed(two, 'private-chat')]);
    const socketId = one.connection.socket_id;
    one.channel('private-chat').trigger('client-typing', { who: 'one' });
    await waitFor(() => receiver.events().some((e) => e.name === 'client_event'), { timeoutMs: 5000, message: 'the client event' });
    expect(receiver.events().find((e) => e.name === 'client_event')).toEqual({
      name: 'client_event',
      channel: 'private-chat',
      event: 'client-typing',
      data: '{"who":"one"}',
      socket_id: socketId,
    });

    const verifier = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1' });
    const forger = new PusherServer({ appId: APP.id, key: APP.key, secret: 'not-the-secret', host: '127.0.0.1' });
    expect(receiver.accepted.length).toBeGreaterThan(0);
    for (const { headers, body } of receiver.accepted) {
      const request = { headers: headers as Record<string, string>, rawBody: body };
      expect(verifier.webhook(request).isValid()).toBe(true);
      expect(forger.webhook(request).isValid()).toBe(false);
      expect(headers['x-receiver-token']).toBe(TOKEN);
      expect(typeof (JSON.parse(body) as { time_ms: unknown }).time_ms).toBe('number');
    }
    // The other app asked for no webhooks: none of its channels' events were sent.
    expect(receiver.events().every((e) => !e.channel.startsWith('other'))).toBe(true);
  });

  it('keeps the events while the receiver answers 503 and then does not listen, and sends them all, in order, once it is back', async () => {
    const channels = ['down-1', 'down-2', 'presence-down'];
    receiver.mode = 'unavailable';
    const subscribers = [client(a), client(b), client(a, { user_id: 'carol' })];
    await Promise.all(channels.map((ch, i) => subscribed(subscribers[i], ch)));
    for (const [i, ch] of channels.entries()) subscribers[i].unsubscribe(ch);
    await waitFor(() => receiver.refused > 0, { timeoutMs: 5000, message: 'a refused delivery' });
    await receiver.down();
    // New events keep coming while it is down; and a while passes.
    const late = client(b);
    await subscribed(late, 'down-1');
    late.unsubscribe('down-1');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(receiver.events().filter((e) => channels.includes(e.channel))).toEqual([]);

    receiver.mode = 'ok';
    await receiver.up();
    await waitFor(() => receiver.of('down-1').length === 4 && receiver.of('presence-down').length === 4, { timeoutMs: 15000, message: 'every event after the receiver came back' });
    expect(receiver.of('down-1')).toEqual(['channel_occupied', 'channel_vacated', 'channel_occupied', 'channel_vacated']);
    expect(receiver.of('down-2')).toEqual(['channel_occupied', 'channel_vacated']);
    expect(receiver.of('presence-down')).toEqual(['channel_occupied', 'member_added carol', 'member_removed carol', 'channel_vacated']);
  });

  it('vacates the channels and removes the members of a gateway killed with SIGKILL once their records expire', async () => {
    const doomed = await startSwitchboard('gateway', args);
    try {
      const [alice, bob, lonely] = [client(a, { user_id: 'alice' }), client(doomed, { user_id: 'bob' }), client(doomed)];
      await subscribed(alice, 'presence-shared');
      await subscribed(bob, 'presence-shared');
      await subscribed(lonely, 'alone');
      await waitFor(() => receiver.of('presence-shared').length === 3 && receiver.of('alone').length === 1, { timeoutMs: 5000, message: 'the events before the kill' });
      const seenByAlice: string[] = [];
      alice.channel('presence-shared').bind('pusher:member_removed', (m: { id: string }) => seenByAlice.push(m.id));

      doomed.kill();
      await waitFor(() => receiver.of('alone').length === 2 && receiver.of('presence-shared').length === 4, { timeoutMs: 15000, message: 'the dead gateway swept' });
      expect(receiver.of('alone')).toEqual(['channel_occupied', 'channel_vacated']);
      // Alice is still there: bob leaves, the channel stays occupied.
      expect(receiver.of('presence-shared')).toEqual(['channel_occupied', 'member_added alice', 'member_added bob', 'member_removed bob']);
      await waitFor(() => seenByAlice.length === 1, { timeoutMs: 5000, message: 'alice told bob left' });
      expect(seenByAlice).toEqual(['bob']);
    } finally {
      doomed.kill();
    }
  });
});

describe('webhooks from a standalone gateway (memory engine)', () => {
  let receiver: Receiver;
  let standalone: SwitchboardProcess;

  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    standalone = await startSwitchboard('standalone', ['--config', configFile(receiver), '--token-hmac-secret', 'webhook-tests', '--log-level', 'warn']);
  });

  afterAll(async () => {
    await standalone?.stop();
    await receiver?.stop();
  });

  it('sends occupancy once per channel and members once per user, signed', async () => {
    const [one, two, bob] = [client(standalone, { user_id: 'alice' }), client(standalone, { user_id: 'alice' }), client(standalone, { user_id: 'bob' })];
    await subscribed(one, 'presence-lobby');
    await subscribed(two, 'presence-lobby');
    await subscribed(bob, 'presence-lobby');
    one.unsubscribe('presence-lobby');
    two.unsubscribe('presence-lobby');
    bob.unsubscribe('presence-lobby');
    await waitFor(() => receiver.of('presence-lobby').length === 6, { timeoutMs: 5000, message: 'the lobby events' });
    await barrier(receiver, standalone);
    expect(receiver.of('presence-lobby')).toEqual([
      'channel_occupied',
      'member_added alice',
      'member_added bob',
      'member_removed alice',
      'member_removed bob',
      'channel_vacated',
    ]);
    const verifier = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1' });
    for (const { headers, body } of receiver.accepted) expect(verifier.webhook({ headers: headers as Record<string, string>, rawBody: body }).isValid()).toBe(true);
  });

  it('sends what is queued before a standalone gateway stops', async () => {
    const c = client(standalone);
    await subscribed(c, 'last-words');
    await waitFor(() => receiver.of('last-words').length === 1, { timeoutMs: 5000, message: 'channel_occupied' });
    // The stop closes the subscriber: its channel's vacancy goes out before the process exits.
    await standalone.stop();
    expect(receiver.of('last-words')).toEqual(['channel_occupied', 'channel_vacated']);
  });
});
