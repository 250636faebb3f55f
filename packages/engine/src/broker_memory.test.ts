import { brokerContract } from './broker.contract';
import { MemoryBroker } from './broker_memory';

brokerContract('memory', async () => {
  const broker = new MemoryBroker();
  await broker.start();
  return { broker, cleanup: () => broker.close() };
});

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
    const broker = new MemoryBroker({ onError: (err) => errors.push(err) });
    broker.onPublication(() => {
      throw new Error('handler bug');
    });
    await broker.subscribe(['a']);
    await broker.publish('a', '"data":1', { historySize: 0, historyTtlSeconds: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((e) => e.message)).toEqual(['handler bug']);
    await broker.close();
  });
});
