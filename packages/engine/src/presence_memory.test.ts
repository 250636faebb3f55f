// The memory engine's presence beyond the contract (run in broker_memory.test.ts): one state per broker, and a
// sweeper that drops and announces expired entries nobody writes over.
import { Inbox } from './broker.contract';
import { MemoryBroker } from './broker_memory';
import { createPresence } from './engine';
import { MemoryPresence } from './presence_memory';

describe('MemoryPresence', () => {
  it('is one state per MemoryBroker, a whole cluster', async () => {
    const [broker, another] = [new MemoryBroker(), new MemoryBroker()];
    const presence = createPresence(broker);
    expect(presence).toBeInstanceOf(MemoryPresence);
    expect(createPresence(broker)).toBe(presence);
    await presence.addPresence('a', [['c1', '{"user":"u","client":"c1"}']], 60);
    expect(await createPresence(another).presenceStats('a')).toEqual({ numClients: 0, numUsers: 0 });
    await presence.removePresence('a', ['c1']);
  });

  it('sweeps expired presence entries without a read, and announces their leaves', async () => {
    const broker = new MemoryBroker({ sweepIntervalMs: 20 });
    await broker.start();
    const inbox = new Inbox(broker);
    await broker.subscribe(['a']);
    const presence = createPresence(broker) as MemoryPresence;
    await presence.addPresence('a', [['c1', '{"user":"u","client":"c1"}']], 0.05);
    await presence.addPresence('b', [['c2', '{"user":"u","client":"c2"}']], 60);
    expect(presence.size).toBe(2);
    const deadline = Date.now() + 3000;
    while (presence.size > 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(presence.size).toBe(1);
    expect([...(await presence.presence('b')).keys()]).toEqual(['c2']);
    await inbox.waitFor(() => inbox.joinLeavesOf('a').length === 1, 'the leave of the swept entry');
    expect(inbox.joinLeavesOf('a')).toEqual([{ channel: 'a', kind: 'leave', info: '{"user":"u","client":"c1"}', scope: 'user' }]);
    await presence.removePresence('b', ['c2']);
    await broker.close();
  });
});
