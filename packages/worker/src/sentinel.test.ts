// Documents through Sentinel: the DocStore contract with a worker and the gateway's store on a Sentinel-named primary.
import { RedisBroker, RedisDocStore } from '@switchboard/engine';
import { startRedisSentinel, type RedisSentinelSet } from '../../testkit/src/redis_sentinel';
import { docStoreContract } from '../../engine/src/docs.contract';
import { Cleanups, testLogger } from './testing.fixture';
import { startWorker } from './worker';

let set: RedisSentinelSet;
beforeAll(async () => {
  set = await startRedisSentinel();
}, 30000);
afterAll(async () => {
  await set?.stop();
});

const own = new Cleanups();
afterAll(() => own.run());

docStoreContract('redis through sentinel (RedisDocStore + worker)', async () => {
  const prefix = `sentinel${process.pid}`;
  const worker = own.add(await startWorker({ redis: [set.url], prefix, logger: testLogger(), nodeId: 'w', leaseMs: 1000 }), (w) => w.stop());
  const store = own.add(new RedisDocStore({ urls: [set.url], prefix, node: 'gw' }), (s) => s.close());
  await store.start();
  const broker = own.add(new RedisBroker({ urls: [set.url], prefix }), (b) => b.close());
  await broker.start();
  expect(worker.ownedPartitions()).toHaveLength(16);
  return { store, broker, cleanup: () => own.run() };
});
