import { MemoryBroker } from './broker_memory';
import { docStoreContract } from './docs.contract';
import { MemoryDocStore } from './docs_memory';
import { parseUpdate } from '@switchboard/protocol';

docStoreContract('memory', async () => {
  const broker = new MemoryBroker();
  await broker.start();
  const store = new MemoryDocStore(broker);
  return {
    store,
    broker,
    cleanup: async () => {
      await store.close();
      await broker.close();
    },
  };
});

describe('MemoryDocStore', () => {
  const opts = { historySize: 10, historyTtlSeconds: 60 };

  it('forgets idempotency keys after their TTL, and the oldest when full', async () => {
    const broker = new MemoryBroker();
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const store = new MemoryDocStore(broker, { idempotencyTtlMs: 1000, maxIdempotencyKeys: 2 });
      const u = (key: string) => parseUpdate({ base: 0, key, ops: [{ op: 'incr', path: '/n', value: 1 }] });
      await store.update('doc:ttl', u('a'), opts);
      expect(await store.update('doc:ttl', u('a'), opts)).toMatchObject({ duplicate: true, version: 1 });
      now += 1001;
      expect(await store.update('doc:ttl', u('a'), opts)).toEqual({ status: 'merged', version: 2 });
      await store.update('doc:ttl', u('b'), opts);
      await store.update('doc:ttl', u('c'), opts); // full: 'a' (the oldest) goes
      expect(await store.update('doc:ttl', u('c'), opts)).toMatchObject({ duplicate: true });
      expect(await store.update('doc:ttl', u('a'), opts)).toEqual({ status: 'merged', version: 5 });
      await store.close();
    } finally {
      clock.mockRestore();
    }
  });

  it('fails loudly when something else published on a document channel', async () => {
    const broker = new MemoryBroker();
    const store = new MemoryDocStore(broker);
    await store.update('doc:x', parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
    await broker.publish('doc:x', '"data":{}', opts);
    await expect(store.update('doc:x', parseUpdate({ base: 1, ops: [{ op: 'set', path: '/a', value: 2 }] }), opts)).rejects.toThrow(
      /something else publishes/,
    );
    await store.close();
  });

  it('treats a channel with plain publications as an empty document at its offset', async () => {
    const broker = new MemoryBroker();
    const store = new MemoryDocStore(broker);
    await broker.publish('doc:y', '"data":{}', opts);
    expect(await store.get('doc:y')).toMatchObject({ version: 1, state: '{}' });
    expect(await store.update('doc:y', parseUpdate({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts)).toMatchObject({
      status: 'conflict',
      paths: ['/a'],
    });
    expect(await store.update('doc:y', parseUpdate({ base: 1, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts)).toEqual({
      status: 'applied',
      version: 2,
    });
    await store.close();
  });
});
