// The behaviour every Presence shares; run against each engine beside the broker contract (broker_memory.test.ts,
// broker_redis.test.ts, broker_cluster.test.ts, broker_sentinel.test.ts), on presences made with createPresence.
// Nodes are as in broker.contract.ts: the Redis engine's peers write the same presence from other nodes.
import type { Broker } from './broker';
import { type BrokerUnderTest, type ContractOptions, Inbox, eventually } from './broker.contract';
import { createPresence } from './engine';
import type { Presence } from './presence';

/** An encoded ClientInfo. */
function info(user: string, client: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ user, client, ...extra });
}

export function presenceContract(name: string, make: () => Promise<BrokerUnderTest>, options: ContractOptions): void {
  describe(`Presence contract: ${name}`, () => {
    let subject: BrokerUnderTest;
    /** Subscribes the channels whose joins and leaves a test watches. */
    let broker: Broker;
    let presence: Presence;
    let seq = 0;
    /** A channel no other test (nor an earlier run against the same Redis) has used. */
    const fresh = (label: string): string => `${label}-${process.pid}-${Date.now()}-${++seq}`;

    beforeEach(async () => {
      subject = await make();
      broker = subject.broker;
      presence = createPresence(broker);
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('adds, refreshes and removes presence entries', async () => {
      const ch = fresh('presence');
      expect(await presence.presence(ch)).toEqual(new Map());
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 0, numUsers: 0 });
      const c1 = info('u1', 'c1');
      const c2 = info('u2', 'c2', { conn_info: { name: 'Zoë' } });
      await presence.addPresence(ch, [['c1', c1], ['c2', c2]], 60);
      expect(await presence.presence(ch)).toEqual(new Map([['c1', c1], ['c2', c2]]));

      const changed = info('u1', 'c1', { chan_info: { role: 'admin' } });
      await presence.addPresence(ch, [['c1', changed]], 60);
      expect(await presence.presence(ch)).toEqual(new Map([['c1', changed], ['c2', c2]]));

      await presence.removePresence(ch, ['c1', 'not-there']);
      expect(await presence.presence(ch)).toEqual(new Map([['c2', c2]]));
      await presence.addPresence(ch, [], 60);
      await presence.removePresence(ch, []);
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 1, numUsers: 1 });
      await presence.removePresence(ch, ['c2']);
      expect(await presence.presence(ch)).toEqual(new Map());
      await presence.removePresence(fresh('presence-never'), ['c1']);
      await expect(presence.addPresence(ch, [['c3', info('u3', 'c3')]], 0)).rejects.toThrow('ttlSeconds must be > 0');
    });

    it('expires presence entries not refreshed within their ttl, whatever ttl other entries have', async () => {
      const ch = fresh('presence-ttl');
      const long = info('u1', 'long');
      const refreshed = info('u2', 'refreshed');
      await presence.addPresence(ch, [['long', long]], 60);
      await presence.addPresence(ch, [['refreshed', refreshed]], 1);
      await presence.addPresence(ch, [['refreshed', refreshed]], 60);
      // Last, so a short TTL added after long ones must not cut those short (in Redis: the keys' expiry).
      await presence.addPresence(ch, [['short', info('u3', 'short')]], 1);
      expect([...(await presence.presence(ch)).keys()].sort()).toEqual(['long', 'refreshed', 'short']);
      await eventually(async () => !(await presence.presence(ch)).has('short'), 'the short entry to expire', 3000);
      expect(await presence.presence(ch)).toEqual(new Map([['long', long], ['refreshed', refreshed]]));
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 2, numUsers: 2 });
    });

    it('keeps the presence of every channel apart', async () => {
      const names = [fresh('room'), `${fresh('room')}}:p`, `{${fresh('')}}`, `${fresh('日本語')} 😀`];
      for (const [i, ch] of names.entries()) await presence.addPresence(ch, [[`c${i}`, info(`u${i}`, `c${i}`)]], 60);
      await presence.removePresence(names[0], ['c1', 'c2', 'c3']);
      for (const [i, ch] of names.entries()) {
        expect(await presence.presence(ch)).toEqual(new Map([[`c${i}`, info(`u${i}`, `c${i}`)]]));
        expect(await presence.presenceStats(ch)).toEqual({ numClients: 1, numUsers: 1 });
      }
    });

    it('counts distinct users, the anonymous user "" as one', async () => {
      const ch = fresh('presence-stats');
      await presence.addPresence(
        ch,
        [
          ['c1', info('u1', 'c1')],
          ['c2', info('u1', 'c2', { conn_info: { user: 'not this one' } })],
          ['c3', info('u "2" \\ ü', 'c3')],
          ['c4', info('', 'c4')],
          ['c5', info('', 'c5')],
        ],
        60,
      );
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 5, numUsers: 3 });
      await presence.removePresence(ch, ['c3', 'c4']);
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 3, numUsers: 2 });
    });

    it('adds and removes thousands of presence entries in one call', async () => {
      const ch = fresh('presence-many');
      const entries = Array.from({ length: 3000 }, (_, i): [string, string] => [`c${i}`, info(`u${i % 1000}`, `c${i}`)]);
      await presence.addPresence(ch, entries, 60);
      expect(await presence.presence(ch)).toEqual(new Map(entries));
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 3000, numUsers: 1000 });
      await presence.removePresence(ch, entries.slice(0, 2500).map(([client]) => client));
      expect(await presence.presence(ch)).toEqual(new Map(entries.slice(2500)));
    });

    it("tells a user's first entry and last entry apart, once however many nodes write at once", async () => {
      const ch = fresh('presence-users');
      // Another node's presence; on the memory engine, another one made on the same broker (one cluster, one state).
      const other = createPresence(options.multiNode ? await subject.peer!() : broker);
      const [a1, a2, b1] = [info('alice', 'a1'), info('alice', 'a2'), info('bob', 'b1')];
      expect(await presence.addPresence(ch, [['a1', a1]], 60)).toEqual({ first: ['a1'], added: ['a1'], joined: [], left: [] });
      expect(await other.addPresence(ch, [['a2', a2], ['b1', b1]], 60)).toEqual({ first: ['b1'], added: ['a2', 'b1'], joined: [], left: [] });
      // A refresh adds nothing and nobody arrives.
      expect(await presence.addPresence(ch, [['a1', a1]], 60)).toEqual({ first: [], added: [], joined: [], left: [] });
      // Removed without announcing: nothing reported either way.
      expect(await other.removePresence(ch, ['b1'])).toEqual({ first: [], added: [], joined: [], left: [] });
      const started = { started: true, first: false, clientLeaves: true };
      expect(await presence.removePresence(ch, ['a1'], started)).toEqual({ first: [], added: [], joined: [], left: [] });
      expect(await other.removePresence(ch, ['a2'], started)).toEqual({ first: [], added: [], joined: [], left: [['a2', a2]] });

      // Many connections of one user on two nodes at once: one first, one last.
      const clients = Array.from({ length: 20 }, (_, i) => `c${i}`);
      const adds = await Promise.all(clients.map((c, i) => (i % 2 === 0 ? presence : other).addPresence(ch, [[c, info('carol', c)]], 60)));
      expect(adds.flatMap((u) => u.first)).toHaveLength(1);
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 20, numUsers: 1 });
      const removes = await Promise.all(clients.map((c, i) => (i % 2 === 0 ? other : presence).removePresence(ch, [c], started)));
      expect(removes.flatMap((u) => u.left)).toHaveLength(1);
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 0, numUsers: 0 });
    });

    it('announces the leave of a removed entry with it, as PresenceLeave says, in order with other joins and leaves', async () => {
      const ch = fresh('presence-leave');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const u = (client: string): string => info('u', client);
      await presence.addPresence(ch, [['x', u('x')], ['y', u('y')]], 60);
      // x was counted first and went before its join was announced while y stays: the user joins on its own.
      const early = await presence.removePresence(ch, ['x'], { started: false, first: true, clientLeaves: true });
      expect(early.joined).toEqual([['x', u('x')]]);
      await presence.addPresence(ch, [['z', u('z')]], 60);
      // y leaves announced while z stays; then z, never announced and not first, goes last: the user leaves alone.
      await presence.removePresence(ch, ['y'], { started: true, first: false, clientLeaves: true });
      const late = await presence.removePresence(ch, ['z'], { started: false, first: false, clientLeaves: true });
      expect(late.left).toEqual([['z', u('z')]]);
      // Without client leaves only the user's last leave is announced.
      await presence.addPresence(ch, [['p', u('p')], ['q', u('q')]], 60);
      await presence.removePresence(ch, ['p'], { started: true, first: true, clientLeaves: false });
      await presence.removePresence(ch, ['q'], { started: true, first: false, clientLeaves: false });
      await broker.publishJoinLeave(ch, 'join', 'end');
      await inbox.waitFor(() => inbox.joinLeavesOf(ch).some((j) => j.info === 'end'), 'the last join');
      expect(inbox.joinLeavesOf(ch).map((j) => `${j.kind} ${j.scope} ${j.info}`)).toEqual([
        `join user-only ${u('x')}`,
        `leave client ${u('y')}`,
        `leave user-only ${u('z')}`,
        `leave user-only ${u('q')}`,
        'join client end',
      ]);
    });

    it('announces in order with the publications sent around the write, on the same channel', async () => {
      const ch = fresh('presence-order');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const x = info('u', 'x');
      await presence.addPresence(ch, [['x', x]], 60);
      const withHistory = { historySize: 10, historyTtlSeconds: 60 };
      // Sent together: the leave goes out between the two publications, as the writes were sent.
      await Promise.all([
        broker.publish(ch, '"data":1', withHistory),
        presence.removePresence(ch, ['x'], { started: true, first: true, clientLeaves: true }),
        broker.publish(ch, '"data":2', withHistory),
      ]);
      await inbox.waitFor(() => inbox.eventsOf(ch).length === 3, 'two publications and a leave');
      expect(inbox.eventsOf(ch)).toEqual(['pub 1', `leave ${x}`, 'pub 2']);
      expect(inbox.joinLeavesOf(ch).map((j) => j.scope)).toEqual(['user']);
    });

    it('drops expired entries on the next write and announces them; reads skip them but drop nothing', async () => {
      const ch = fresh('presence-expiry');
      const inbox = new Inbox(broker);
      await broker.subscribe([ch]);
      const [a1, a2, b1, k1] = [info('a', 'a1'), info('a', 'a2'), info('b', 'b1'), info('k', 'k1')];
      await presence.addPresence(ch, [['a1', a1], ['b1', b1], ['k1', k1]], 1);
      await presence.addPresence(ch, [['a2', a2]], 60);
      await eventually(async () => (await presence.presence(ch)).size === 1, 'the short entries to pass their expiry', 3000);
      expect(await presence.presenceStats(ch)).toEqual({ numClients: 1, numUsers: 1 });
      expect(inbox.joinLeavesOf(ch)).toEqual([]);
      // k1 is added again by the write that finds it expired: refreshed, not announced.
      const update = await presence.addPresence(ch, [['k1', k1]], 60);
      expect(update.added).toEqual([]);
      expect(update.left).toEqual([['b1', b1]]);
      await inbox.waitFor(() => inbox.joinLeavesOf(ch).length === 2, 'two leaves');
      expect(inbox.joinLeavesOf(ch).map((j) => `${j.kind} ${j.scope} ${j.info}`).sort()).toEqual([`leave client ${a1}`, `leave user ${b1}`].sort());
      expect(await presence.expirePresence(ch)).toEqual({ first: [], added: [], joined: [], left: [] });
      expect([...(await presence.presence(ch)).keys()].sort()).toEqual(['a2', 'k1']);
      // Nothing written after the expiry but the sweep itself.
      await presence.addPresence(ch, [['gone', info('g', 'gone')]], 1);
      await eventually(async () => !(await presence.presence(ch)).has('gone'), 'the entry to pass its expiry', 3000);
      expect((await presence.expirePresence(ch)).left).toEqual([['gone', info('g', 'gone')]]);
    });
  });
}
