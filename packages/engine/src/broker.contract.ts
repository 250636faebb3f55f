// The behaviour every Broker shares (with the engine's occupancy and outboxes); broker_memory.test.ts,
// broker_redis.test.ts, broker_cluster.test.ts and broker_sentinel.test.ts run it against each engine, beside the
// presence contract (presence.contract.ts) on the same brokers.
//
// Nodes: a node is a broker started with a `node` id. Redis brokers on the same Redis and prefix are nodes of one
// cluster, so the Redis engine provides `peer` and the tests addressing other nodes run against it. A MemoryBroker
// is a whole cluster of one node (one process) with no peers: it gets control messages broadcast or addressed to
// its own id, a message to any other id reaches nobody, and the tests that need a second node do not apply to it.
import { encodePublication } from '@switchboard/protocol';
import type { Broker, JoinLeaveScope, Publication, PublishOptions } from './broker';
import { createOccupancy, createOutbox } from './engine';

export interface BrokerUnderTest {
  /** Started with node id `node`. */
  broker: Broker;
  node: string;
  /** Another started node of the same cluster (same backend and prefix), without a node id when none is given; closed by cleanup. */
  peer?(node?: string): Promise<Broker>;
  cleanup(): Promise<void>;
}

interface Received {
  channel: string;
  pub: Publication;
  epoch: string;
}

interface ReceivedJoinLeave {
  channel: string;
  kind: 'join' | 'leave';
  info: string;
  scope: JoinLeaveScope;
}

/** Lets a test wait for a condition on what a collector received. */
class Collector {
  private waiters: Array<() => void> = [];

  protected wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  protected recent(): unknown {
    return [];
  }

  async waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.recent())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** Collects delivered publications, joins and leaves. */
export class Inbox extends Collector {
  readonly items: Received[] = [];
  readonly joinLeaves: ReceivedJoinLeave[] = [];
  /** Everything delivered, in delivery order: `pub <offset>`, `join <info>` or `leave <info>` per channel. */
  private readonly sequence: Array<{ channel: string; event: string }> = [];

  constructor(broker: Broker) {
    super();
    broker.onPublication((channel, pub, epoch) => {
      this.items.push({ channel, pub, epoch });
      this.sequence.push({ channel, event: `pub ${pub.offset}` });
      this.wake();
    });
    broker.onJoinLeave((channel, kind, info, scope) => {
      this.joinLeaves.push({ channel, kind, info, scope });
      this.sequence.push({ channel, event: `${kind} ${info}` });
      this.wake();
    });
  }

  of(channel: string): Received[] {
    return this.items.filter((r) => r.channel === channel);
  }

  joinLeavesOf(channel: string): ReceivedJoinLeave[] {
    return this.joinLeaves.filter((r) => r.channel === channel);
  }

  eventsOf(channel: string): string[] {
    return this.sequence.filter((r) => r.channel === channel).map((r) => r.event);
  }

  channels(): string[] {
    return [...new Set(this.sequence.map((r) => r.channel))];
  }

  protected override recent(): unknown {
    return this.sequence.slice(-5);
  }
}

/** Collects delivered control messages. */
export class ControlInbox extends Collector {
  readonly messages: string[] = [];

  constructor(broker: Broker) {
    super();
    broker.onControl((message) => {
      this.messages.push(message);
      this.wake();
    });
  }

  protected override recent(): unknown {
    return this.messages.slice(-5);
  }
}

/** Polls `check` until it holds (for what has no event, like a TTL running out). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const withHistory: PublishOptions = { historySize: 10, historyTtlSeconds: 60 };

function body(n: number | string): string {
  return `"data":${JSON.stringify({ n })}`;
}

/** An encoded ClientInfo. */
function info(user: string, client: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ user, client, ...extra });
}

export interface ContractOptions {
  /** The engine runs several nodes of one cluster (`BrokerUnderTest.peer`); see the note at the top. */
  multiNode: boolean;
}

export function brokerContract(name: string, make: () => Promise<BrokerUnderTest>, options: ContractOptions): void {
  describe(`Broker contract: ${name}`, () => {
    let subject: BrokerUnderTest;
    let broker: Broker;
    let seq = 0;
    /** A channel no other test (nor an earlier run against the same Redis) has used. */
    const fresh = (label: string): string => `${label}-${process.pid}-${Date.now()}-${++seq}`;

    beforeEach(async () => {
      subject = await make();
      broker = subject.broker;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('assigns consecutive offsets from 1 under one epoch and returns them from history', async () => {
      const ch = fresh('offsets');
      const results = [];
      for (let i = 1; i <= 5; i++) results.push(await broker.publish(ch, body(i), withHistory));
      expect(results.map((r) => r.offset)).toEqual([1, 2, 3, 4, 5]);
      expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
      expect(results.every((r) => r.duplicate === false)).toBe(true);
      expect(results[0].epoch).toMatch(/^\S+$/);

      const history = await broker.history(ch, { limit: -1 });
      expect(history.offset).toBe(5);
      expect(history.epoch).toBe(results[0].epoch);
      expect(history.publications).toEqual([1, 2, 3, 4, 5].map((n) => ({ offset: n, json: encodePublication(n, body(n)) })));
    });

    it('keeps at most historySize publications, the newest', async () => {
      const ch = fresh('trim');
      for (let i = 1; i <= 12; i++) await broker.publish(ch, body(i), { historySize: 3, historyTtlSeconds: 60 });
      const history = await broker.history(ch, { limit: -1 });
      expect(history.offset).toBe(12);
      expect(history.publications.map((p) => p.offset)).toEqual([10, 11, 12]);
      const reverse = await broker.history(ch, { limit: -1, reverse: true });
      expect(reverse.publications.map((p) => p.offset)).toEqual([12, 11, 10]);
      const since = await broker.history(ch, { limit: -1, since: { offset: 2, epoch: history.epoch } });
      expect(since.publications.map((p) => p.offset)).toEqual([10, 11, 12]);
    });

    it('selects by since, limit and reverse', async () => {
      const ch = fresh('select');
      let epoch = '';
      for (let i = 1; i <= 10; i++) epoch = (await broker.publish(ch, body(i), withHistory)).epoch;
      const offsets = async (limit: number, since?: number, reverse?: boolean): Promise<number[]> => {
        const h = await broker.history(ch, { limit, reverse, since: since === undefined ? undefined : { offset: since, epoch } });
        expect(h.offset).toBe(10);
        expect(h.epoch).toBe(epoch);
        return h.publications.map((p) => p.offset);
      };
      expect(await offsets(-1)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await offsets(3)).toEqual([1, 2, 3]);
      expect(await offsets(-1, 4)).toEqual([5, 6, 7, 8, 9, 10]);
      expect(await offsets(2, 4)).toEqual([5, 6]);
      expect(await offsets(-1, 0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await offsets(-1, 10)).toEqual([]);
      expect(await offsets(-1, 99)).toEqual([]);
      expect(await offsets(3, undefined, true)).toEqual([10, 9, 8]);
      expect(await offsets(-1, 4, true)).toEqual([3, 2, 1]);
      expect(await offsets(2, 4, true)).toEqual([3, 2]);
      expect(await offsets(-1, 1, true)).toEqual([]);
      expect(await offsets(2, 99, true)).toEqual([10, 9]);
      // A different epoch in `since` is the caller's business: the current epoch comes back.
      const other = await broker.history(ch, { limit: -1, since: { offset: 8, epoch: 'other' } });
      expect(other.epoch).toBe(epoch);
      expect(other.publications.map((p) => p.offset)).toEqual([9, 10]);
    });

    it('returns only the position for limit 0', async () => {
      const ch = fresh('position');
      await broker.publish(ch, body(1), withHistory);
      const { epoch } = await broker.publish(ch, body(2), withHistory);
      expect(await broker.history(ch, { limit: 0 })).toEqual({ offset: 2, epoch, publications: [] });
    });

    it('forks the epoch once when a caller saw an offset the stream no longer has (lost publications)', async () => {
      const ch = fresh('regressed');
      for (let i = 1; i <= 3; i++) await broker.publish(ch, body(i), withHistory);
      const { epoch } = await broker.history(ch, { limit: 0 });
      // Seen positions the stream still has change nothing.
      expect(await broker.history(ch, { limit: 0, seen: { epoch, offset: 3 } })).toMatchObject({ epoch, offset: 3 });
      expect(await broker.history(ch, { limit: 0, seen: { epoch: 'other', offset: 9 } })).toMatchObject({ epoch, offset: 3 });

      const forked = await broker.history(ch, { limit: -1, seen: { epoch, offset: 5 } });
      expect(forked.epoch).not.toBe(epoch);
      expect(forked.offset).toBe(3);
      expect(forked.publications.map((p) => p.offset)).toEqual([1, 2, 3]);
      // A second caller with the same old position finds the fork done: one new epoch, not one per caller.
      expect((await broker.history(ch, { limit: 0, seen: { epoch, offset: 5 } })).epoch).toBe(forked.epoch);
      // Publishing goes on under the new epoch, from the same offsets.
      expect(await broker.publish(ch, body(4), withHistory)).toMatchObject({ epoch: forked.epoch, offset: 4 });
    });

    it('keeps one epoch for a channel without publications, from its first read on', async () => {
      const ch = fresh('empty');
      const first = await broker.history(ch, { limit: -1 });
      expect(first.offset).toBe(0);
      expect(first.publications).toEqual([]);
      expect(first.epoch).toMatch(/^\S+$/);
      expect((await broker.history(ch, { limit: 0 })).epoch).toBe(first.epoch);
      const published = await broker.publish(ch, body(1), withHistory);
      expect(published).toEqual({ offset: 1, epoch: first.epoch, duplicate: false });
      expect((await broker.history(fresh('other'), { limit: 0 })).epoch).not.toBe(first.epoch);
    });

    it('assigns no offset and keeps nothing with historySize 0, but still delivers', async () => {
      const ch = fresh('nohistory');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const a = await broker.publish(ch, body(1), { historySize: 0, historyTtlSeconds: 0 });
      const b = await broker.publish(ch, body(2), { historySize: 0, historyTtlSeconds: 0 });
      expect(a.offset).toBe(0);
      expect(b).toEqual({ offset: 0, epoch: a.epoch, duplicate: false });
      expect(await broker.history(ch, { limit: -1 })).toEqual({ offset: 0, epoch: a.epoch, publications: [] });
      await inbox.waitFor(() => inbox.of(ch).length === 2, 'two publications');
      expect(inbox.of(ch).map((r) => r.pub)).toEqual([
        { offset: 0, json: encodePublication(0, body(1)) },
        { offset: 0, json: encodePublication(0, body(2)) },
      ]);
      expect(inbox.of(ch)[0].pub.json).toBe(`{${body(1)}}`);
    });

    it('a publication with historySize 0 on a channel with history is delivered, not stored, and takes no offset', async () => {
      const ch = fresh('skiphistory');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const first = await broker.publish(ch, body(1), withHistory);
      const skipped = await broker.publish(ch, body(2), { historySize: 0, historyTtlSeconds: 0 });
      const third = await broker.publish(ch, body(3), withHistory);
      expect(skipped).toEqual({ offset: 0, epoch: first.epoch, duplicate: false });
      expect(third.offset).toBe(2);
      const history = await broker.history(ch, { limit: -1 });
      expect(history.publications.map((p) => p.json)).toEqual([encodePublication(1, body(1)), encodePublication(2, body(3))]);
      expect((await broker.history(ch, { limit: -1, since: { offset: 1, epoch: first.epoch } })).publications.map((p) => p.offset)).toEqual([2]);
      await inbox.waitFor(() => inbox.of(ch).length === 3, 'three publications');
      expect(inbox.of(ch).map((r) => r.pub.offset)).toEqual([1, 0, 2]);
    });

    it('drops history after its TTL but keeps the epoch and the offset', async () => {
      const ch = fresh('ttl');
      const opts = { historySize: 5, historyTtlSeconds: 1 };
      await broker.publish(ch, body(1), opts);
      const { epoch } = await broker.publish(ch, body(2), opts);
      expect((await broker.history(ch, { limit: -1 })).publications).toHaveLength(2);
      await eventually(async () => (await broker.history(ch, { limit: -1 })).publications.length === 0, 'history to expire', 4000);
      expect(await broker.history(ch, { limit: -1 })).toEqual({ offset: 2, epoch, publications: [] });
      const next = await broker.publish(ch, body(3), opts);
      expect(next).toEqual({ offset: 3, epoch, duplicate: false });
      expect((await broker.history(ch, { limit: -1 })).publications.map((p) => p.offset)).toEqual([3]);
    });

    it('removes history but keeps the epoch and the offset', async () => {
      const ch = fresh('remove');
      await broker.publish(ch, body(1), withHistory);
      const { epoch } = await broker.publish(ch, body(2), withHistory);
      await broker.removeHistory(ch);
      expect(await broker.history(ch, { limit: -1 })).toEqual({ offset: 2, epoch, publications: [] });
      expect(await broker.publish(ch, body(3), withHistory)).toEqual({ offset: 3, epoch, duplicate: false });
      expect((await broker.history(ch, { limit: -1 })).publications.map((p) => p.offset)).toEqual([3]);
      await broker.removeHistory(fresh('never-published'));
    });

    it('publishes once per idempotency key and returns the first result again', async () => {
      const ch = fresh('idempotent');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const opts = { ...withHistory, idempotencyKey: 'req-1', idempotencyTtlSeconds: 60 };
      const first = await broker.publish(ch, body('a'), opts);
      const again = await broker.publish(ch, body('b'), opts);
      expect(first.duplicate).toBe(false);
      expect(again).toEqual({ offset: first.offset, epoch: first.epoch, duplicate: true });
      const other = await broker.publish(ch, body('c'), { ...opts, idempotencyKey: 'req-2' });
      expect(other).toEqual({ offset: 2, epoch: first.epoch, duplicate: false });
      // The same key on another channel is another request.
      expect((await broker.publish(fresh('idempotent-other'), body('d'), opts)).duplicate).toBe(false);

      await inbox.waitFor(() => inbox.of(ch).length >= 2, 'two publications');
      expect(inbox.of(ch).map((r) => r.pub.json)).toEqual([encodePublication(1, body('a')), encodePublication(2, body('c'))]);
      expect((await broker.history(ch, { limit: -1 })).publications.map((p) => p.json)).toEqual(inbox.of(ch).map((r) => r.pub.json));
    });

    it('delivers publications of subscribed channels in order, as history stores them, never synchronously', async () => {
      const ch = fresh('deliver');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const published = [];
      for (let i = 1; i <= 20; i++) {
        const before = inbox.items.length;
        published.push(broker.publish(ch, body(i), { historySize: 20, historyTtlSeconds: 60 }));
        expect(inbox.items).toHaveLength(before);
      }
      const results = await Promise.all(published);
      await inbox.waitFor(() => inbox.of(ch).length === 20, '20 publications');
      const history = await broker.history(ch, { limit: -1 });
      expect(inbox.of(ch).map((r) => r.pub)).toEqual(history.publications);
      expect(inbox.of(ch).map((r) => r.pub.offset)).toEqual(results.map((r) => r.offset));
      expect(new Set(inbox.of(ch).map((r) => r.epoch))).toEqual(new Set([history.epoch]));
    });

    it('delivers nothing for channels not subscribed or unsubscribed', async () => {
      const gone = fresh('gone');
      const never = fresh('never');
      const kept = fresh('kept');
      const inbox = new Inbox(broker);
      await broker.subscribe([gone, kept]);
      await broker.unsubscribe([gone]);
      await broker.publish(gone, body(1), withHistory);
      await broker.publish(never, body(1), withHistory);
      await broker.publish(kept, body(1), withHistory);
      // Publications of one broker arrive in publish order, so once `kept` is in the others would be too.
      await inbox.waitFor(() => inbox.of(kept).length === 1, 'the publication on the kept channel');
      expect(inbox.items.map((r) => r.channel)).toEqual([kept]);
    });

    it('ends subscribed after subscribe, unsubscribe, subscribe in quick succession', async () => {
      const same = fresh('flip-same-tick');
      const later = fresh('flip-later');
      const inbox = new Inbox(broker);
      await Promise.all([broker.subscribe([same]), broker.unsubscribe([same]), broker.subscribe([same])]);
      await broker.subscribe([later]);
      const unsubscribed = broker.unsubscribe([later]);
      await Promise.resolve();
      await Promise.all([unsubscribed, broker.subscribe([later])]);
      // And the reverse ends unsubscribed.
      const off = fresh('flip-off');
      await Promise.all([broker.subscribe([off]), broker.unsubscribe([off])]);

      await broker.publish(off, body('off'), withHistory);
      await broker.publish(same, body('same'), withHistory);
      await broker.publish(later, body('later'), withHistory);
      await inbox.waitFor(() => inbox.of(same).length === 1 && inbox.of(later).length === 1, 'both publications');
      expect(inbox.of(off)).toEqual([]);
    });

    it('round-trips a large payload', async () => {
      const ch = fresh('large');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const big = `"data":${JSON.stringify({ text: 'x'.repeat(1 << 20), unicode: 'ü😀 ' })}`;
      const { offset } = await broker.publish(ch, big, withHistory);
      await inbox.waitFor(() => inbox.of(ch).length === 1, 'the large publication');
      expect(inbox.of(ch)[0].pub.json).toBe(encodePublication(offset, big));
      expect((await broker.history(ch, { limit: -1 })).publications[0].json).toBe(encodePublication(offset, big));
    });

    it('handles channel names with braces, colons, spaces and unicode', async () => {
      // (Names never begin with `}`: the gateway refuses them, as they would empty the Redis Cluster hash tag.)
      const names = [fresh('a{b}c:d e'), `x}{${fresh('x')}`, `${fresh('日本語')} 😀`, `{${fresh('')}}`, `${fresh('p')}:{q}:h`, `{}${fresh('e')}`];
      const inbox = new Inbox(broker);
      await broker.subscribe(names);
      for (const ch of names) {
        await broker.publish(ch, body(ch), withHistory);
        await broker.publish(ch, body(ch), withHistory);
      }
      await inbox.waitFor(() => names.every((ch) => inbox.of(ch).length === 2), 'two publications on every channel');
      for (const ch of names) {
        const history = await broker.history(ch, { limit: -1 });
        expect(history.publications.map((p) => p.json)).toEqual([encodePublication(1, body(ch)), encodePublication(2, body(ch))]);
        expect(inbox.of(ch).map((r) => r.pub)).toEqual(history.publications);
      }
      await broker.unsubscribe(names);
    });

    it('delivers joins and leaves of subscribed channels only, in order with publications, and stores none', async () => {
      const ch = fresh('joinleave');
      const gone = fresh('joinleave-gone');
      const never = fresh('joinleave-never');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch, gone]);
      await broker.unsubscribe([gone]);
      const alice = info('alice 😀', 'c 1');
      const sent = [
        broker.publishJoinLeave(gone, 'join', alice),
        broker.publishJoinLeave(never, 'join', alice),
        broker.publish(ch, body(1), withHistory),
        broker.publishJoinLeave(ch, 'join', alice),
        broker.publish(ch, body(2), withHistory),
        broker.publishJoinLeave(ch, 'leave', alice, 'user'),
        broker.publish(ch, body(3), withHistory),
      ];
      expect(inbox.eventsOf(ch)).toEqual([]);
      await Promise.all(sent);
      // Sent before the last publication, so once it is in the others would be too.
      await inbox.waitFor(() => inbox.eventsOf(ch).length === 5, 'three publications, a join and a leave');
      expect(inbox.eventsOf(ch)).toEqual(['pub 1', `join ${alice}`, 'pub 2', `leave ${alice}`, 'pub 3']);
      expect(inbox.joinLeavesOf(ch)).toEqual([
        { channel: ch, kind: 'join', info: alice, scope: 'client' },
        { channel: ch, kind: 'leave', info: alice, scope: 'user' },
      ]);
      expect(inbox.channels()).toEqual([ch]);
      expect((await broker.history(ch, { limit: -1 })).publications.map((p) => p.offset)).toEqual([1, 2, 3]);
    });

    it('counts occupancy per node: occupied by the first, vacated by the last, once however many write at once', async () => {
      const ch = fresh('occupancy');
      const other = options.multiNode ? await subject.peer!() : broker;
      const [n1, n2] = [createOccupancy(broker, 'n1'), createOccupancy(other, 'n2')];
      expect(await n1.occupy([ch], 60)).toEqual([{ channel: ch, change: 'occupied' }]);
      expect(await n2.occupy([ch], 60)).toEqual([{ channel: ch }]);
      expect(await n1.occupy([ch], 60)).toEqual([{ channel: ch }]);
      expect(await n1.vacate([ch])).toEqual([{ channel: ch }]);
      expect(await n2.vacate([ch])).toEqual([{ channel: ch, change: 'vacated' }]);
      expect(await n2.vacate([ch])).toEqual([{ channel: ch }]);

      const nodes = Array.from({ length: 10 }, (_, i) => createOccupancy(i % 2 === 0 ? broker : other, `node ${i}`));
      const names = [fresh('occupancy-a'), `${fresh('occupancy-b')} {x} 😀`];
      const occupied = (await Promise.all(nodes.map((n) => n.occupy(names, 60)))).flat();
      expect(occupied.filter((o) => o.change === 'occupied').map((o) => o.channel).sort()).toEqual([...names].sort());
      const vacated = (await Promise.all(nodes.map((n) => n.vacate(names)))).flat();
      expect(vacated.filter((o) => o.change === 'vacated').map((o) => o.channel).sort()).toEqual([...names].sort());
      expect(vacated.every((o) => o.error === undefined)).toBe(true);
    });

    it('lists the channels whose every record expired, and a sweep vacates them once', async () => {
      const [dead, alive] = [fresh('occupancy-dead'), fresh('occupancy-alive')];
      const dying = createOccupancy(broker, 'dying');
      const living = createOccupancy(broker, 'living');
      await dying.occupy([dead, alive], 1);
      await living.occupy([alive], 60);
      let due: { channel: string; expiry: number }[] = [];
      await eventually(async () => {
        due = (await living.due(1000)).filter((d) => d.channel === dead || d.channel === alive);
        return due.length > 0;
      }, 'the dead channel to be due', 4000);
      expect(due.map((d) => d.channel)).toEqual([dead]);
      const sweeps = await Promise.all([living.sweep(due[0]), dying.sweep(due[0])]);
      expect(sweeps.filter((s) => s.change === 'vacated')).toEqual([{ channel: dead, change: 'vacated' }]);
      expect((await living.due(1000)).map((d) => d.channel)).not.toContain(dead);
      // The channel with a live record was never due, and its node vacates it.
      expect(await living.vacate([alive])).toEqual([{ channel: alive, change: 'vacated' }]);
      await expect(living.occupy([alive], 0)).rejects.toThrow('ttlSeconds must be > 0');
    });

    it('keeps an outbox in append order across nodes, with cursors, a lease and a length bound', async () => {
      const name = fresh('outbox');
      const other = options.multiNode ? await subject.peer!() : broker;
      const [mine, theirs] = [createOutbox(broker, name, { maxLength: 1000 }), createOutbox(other, name, { maxLength: 1000 })];
      await mine.append(['1', '2']);
      await theirs.append(['3']);
      await mine.append([]);
      const all = await theirs.read('', 10);
      expect(all.entries.map((e) => e.body)).toEqual(['1', '2', '3']);
      expect(all.dropped).toBe(0);
      const rest = await mine.read(all.entries[0].id, 10);
      expect(rest.entries.map((e) => e.body)).toEqual(['2', '3']);
      expect((await mine.read(all.entries[2].id, 10)).entries).toEqual([]);

      expect(await mine.claim('a', 60_000)).toBe(true);
      expect(await theirs.claim('b', 60_000)).toBe(false);
      expect(await mine.claim('a', 60_000)).toBe(true);
      expect(await theirs.saveCursor('reader', all.entries[1].id, 'b')).toBe(false);
      expect(await theirs.saveCursor('reader', all.entries[1].id, 'a')).toBe(true);
      expect(await mine.cursor('reader')).toBe(all.entries[1].id);
      expect(await mine.cursor('nobody')).toBe('');
      await mine.release('b');
      expect(await theirs.claim('b', 1000)).toBe(false);
      await mine.release('a');
      expect(await theirs.claim('b', 1000)).toBe(true);

      await theirs.trim([all.entries[2].id, '']);
      expect((await mine.read('', 10)).entries).toHaveLength(3);
      await theirs.trim([all.entries[2].id, all.entries[1].id]);
      expect((await mine.read('', 10)).entries.map((e) => e.body)).toEqual(['3']);

      // Over the bound the oldest go, and a reader behind them learns how many it lost.
      const bounded = createOutbox(broker, fresh('outbox-bounded'), { maxLength: 10 });
      await bounded.append(['first']);
      const cursor = (await bounded.read('', 1)).entries[0].id;
      for (let i = 0; i < 10; i++) await bounded.append(Array.from({ length: 100 }, (_, j) => `${i * 100 + j}`));
      const behind = await bounded.read(cursor, 5);
      expect(behind.dropped).toBeGreaterThan(0);
      expect(Number(behind.entries[0].body)).toBe(behind.dropped);
      expect(behind.entries.map((e) => Number(e.body))).toEqual([0, 1, 2, 3, 4].map((k) => k + behind.dropped));
    });

    it('delivers control messages to every node, the sender included, and to this node by its id only', async () => {
      const inbox = new ControlInbox(broker);
      await broker.publishControl('to all');
      await broker.publishControl('to me', subject.node);
      await broker.publishControl('to another node', `${subject.node}-other`);
      await broker.publishControl('{"last":"ü 😀"}');
      // Each was sent after the one before had gone out, so once the last is in the others would be too.
      await inbox.waitFor(() => inbox.messages.includes('{"last":"ü 😀"}'), 'the last control message');
      expect(inbox.messages).toEqual(['to all', 'to me', '{"last":"ü 😀"}']);
    });

    if (options.multiNode) {
      it('delivers a control message for another node to that node only, and a broadcast to every node', async () => {
        const peerNode = `${subject.node}-peer`;
        const peer = await subject.peer!(peerNode);
        const nodeless = await subject.peer!();
        const [own, theirs, none] = [new ControlInbox(broker), new ControlInbox(peer), new ControlInbox(nodeless)];
        await broker.publishControl('to peer', peerNode);
        await peer.publishControl('to first', subject.node);
        await nodeless.publishControl('from a broker without a node');
        await broker.publishControl('last');
        // Messages from different senders keep no order between them (on Redis Cluster a PUBLISH reaches the
        // other nodes over the cluster bus), so wait for each one.
        await own.waitFor(() => own.messages.length === 3, 'three control messages on the first node');
        await theirs.waitFor(() => theirs.messages.length === 3, 'three control messages on the peer');
        expect([...own.messages].sort()).toEqual(['from a broker without a node', 'last', 'to first']);
        expect([...theirs.messages].sort()).toEqual(['from a broker without a node', 'last', 'to peer']);
        expect(none.messages).toEqual([]);
      });
    }
  });
}
