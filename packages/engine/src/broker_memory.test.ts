import { type BrokerUnderTest, ControlInbox, brokerContract } from './broker.contract';
import { MemoryBroker } from './broker_memory';
import { createBroker } from './engine';
import { presenceContract } from './presence.contract';

// One node with no peers: see the note at the top of broker.contract.ts.
async function memoryBroker(): Promise<BrokerUnderTest> {
  const node = 'memory node';
  const broker = new MemoryBroker({ node });
  await broker.start();
  return { broker, node, cleanup: () => broker.close() };
}
brokerContract('memory', memoryBroker, { multiNode: false });
presenceContract('memory', memoryBroker, { multiNode: false });

describe('MemoryBroker', () => {
  it('sweeps expired channels and idempotency keys without a read', async () => {
    const broker = new MemoryBroker({ sweepIntervalMs: 20 });
    await broker.start();
    const { epoch } = await broker.publish('a', '"data":1', {
      historySize: 1,
      historyTtlSeconds: 1,
      metaTtlSeconds: 1,
      idempotencyKey: 'k',
      idempotencyTtlSeconds: 1,
    });
    const internals = broker as unknown as { channels: Map<string, unknown>; idempotency: Map<string, unknown> };
    expect(internals.channels.size).toBe(1);
    expect(internals.idempotency.size).toBe(1);
    const deadline = Date.now() + 3000;
    while ((internals.channels.size > 0 || internals.idempotency.size > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(internals.channels.size).toBe(0);
    expect(internals.idempotency.size).toBe(0);
    // Meta gone with it: the channel starts over with a new epoch.
    const again = await broker.publish('a', '"data":1', { historySize: 1, historyTtlSeconds: 1 });
    expect(again.offset).toBe(1);
    expect(again.epoch).not.toBe(epoch);
    await broker.close();
  });

  it('reports handler errors to onError', async () => {
    const errors: Error[] = [];
    const broker = new MemoryBroker({ node: 'n', onError: (err) => errors.push(err) });
    broker.onPublication(() => {
      throw new Error('publication handler bug');
    });
    broker.onJoinLeave(() => {
      throw new Error('join/leave handler bug');
    });
    broker.onControl(() => {
      throw new Error('control handler bug');
    });
    await broker.subscribe(['a']);
    await broker.publish('a', '"data":1', { historySize: 0, historyTtlSeconds: 0 });
    await broker.publishJoinLeave('a', 'join', '{"user":"u","client":"c"}');
    await broker.publishControl('x');
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((e) => e.message)).toEqual(['publication handler bug', 'join/leave handler bug', 'control handler bug']);
    await broker.close();
  });

  it('receives no control messages without a node id, and gets its node id from createBroker', async () => {
    const nodeless = createBroker({});
    const named = createBroker({ node: 'n1' });
    const [none, inbox] = [new ControlInbox(nodeless), new ControlInbox(named)];
    await nodeless.publishControl('to all');
    await nodeless.publishControl('to n1', 'n1');
    await named.publishControl('to n1', 'n1');
    await inbox.waitFor(() => inbox.messages.length === 1, 'the message to n1');
    expect(inbox.messages).toEqual(['to n1']);
    expect(none.messages).toEqual([]);
    await Promise.all([nodeless.close(), named.close()]);
  });
});
