// The behaviour every DocStore shares; docs_memory.test.ts and the worker's Redis tests run it against each.
import type { Broker, Publication } from './broker';
import { DocError, parseUpdate } from '@switchboard/protocol';
import type { DocChannelOptions, DocResult, DocStore } from './docs';

export interface DocStoreUnderTest {
  store: DocStore;
  /** A broker on the same backend, for reading the channels' history and receiving their publications. */
  broker: Broker;
  cleanup(): Promise<void>;
}

const opts: DocChannelOptions = { historySize: 100, historyTtlSeconds: 60 };

interface DocPublicationData {
  version: number;
  base: number;
  ops: unknown[];
  status: string;
}

/** Publications received per channel, with a wait for a count. */
class Received {
  private readonly byChannel = new Map<string, Array<{ pub: Publication; epoch: string }>>();
  private wakers: Array<() => void> = [];

  constructor(broker: Broker) {
    broker.onPublication((channel, pub, epoch) => {
      const list = this.byChannel.get(channel) ?? [];
      list.push({ pub, epoch });
      this.byChannel.set(channel, list);
      for (const wake of this.wakers.splice(0)) wake();
    });
  }

  of(channel: string): Array<{ pub: Publication; epoch: string }> {
    return this.byChannel.get(channel) ?? [];
  }

  async waitFor(channel: string, count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.of(channel).length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} publications on ${channel}; got ${this.of(channel).length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wakers.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function data(pub: Publication): DocPublicationData {
  return (JSON.parse(pub.json) as { data: DocPublicationData }).data;
}

/** Parses like the gateway does, so the contract exercises validated updates. */
function upd(raw: unknown): ReturnType<typeof parseUpdate> {
  return parseUpdate(raw);
}

export function docStoreContract(name: string, make: () => Promise<DocStoreUnderTest>): void {
  describe(`DocStore contract: ${name}`, () => {
    let subject: DocStoreUnderTest;
    let store: DocStore;
    let received: Received;
    let seq = 0;
    /** A document no other test (nor an earlier run) has used. */
    const fresh = (label: string): string => `doc:${label}-${process.pid}-${Date.now()}-${++seq}`;

    beforeAll(async () => {
      subject = await make();
      store = subject.store;
      received = new Received(subject.broker);
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    it('reads a new document as version 0, {}, in the epoch its channel keeps', async () => {
      const ch = fresh('new');
      const doc = await store.get(ch);
      expect(doc).toEqual({ version: 0, epoch: expect.any(String), state: '{}' });
      expect(doc.epoch).not.toBe('');
      const position = await subject.broker.history(ch, { limit: 0 });
      expect(position).toMatchObject({ offset: 0, epoch: doc.epoch });
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
      expect((await store.get(ch)).epoch).toBe(doc.epoch);
    });

    it('applies an update at the current version and merges a stale one on other paths', async () => {
      const ch = fresh('merge');
      expect(await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/title', value: 'x' }] }), opts)).toEqual({ status: 'applied', version: 1 });
      expect(await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/body', value: 'y' }] }), opts)).toEqual({ status: 'merged', version: 2 });
      expect(await store.update(ch, upd({ base: 1, ops: [{ op: 'incr', path: '/n', value: 2 }] }), opts)).toEqual({ status: 'merged', version: 3 });
      expect(await store.update(ch, upd({ base: 3, ops: [{ op: 'add', path: '/tags', value: 'a' }] }), opts)).toEqual({ status: 'applied', version: 4 });
      const doc = await store.get(ch);
      expect(doc.version).toBe(4);
      expect(JSON.parse(doc.state)).toEqual({ title: 'x', body: 'y', n: 2, tags: ['a'] });
    });

    it('rejects a stale write to a path written since its base with the current version, paths and state', async () => {
      const ch = fresh('conflict');
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a/b', value: 1 }] }), opts);
      const result = await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a', value: 2 }, { op: 'set', path: '/c', value: 3 }] }), opts);
      expect(result).toEqual({ status: 'conflict', version: 1, paths: ['/a'], state: expect.any(String) });
      expect(JSON.parse((result as { state: string }).state)).toEqual({ a: { b: 1 } });
      // All or nothing: /c was not written either.
      const doc = await store.get(ch);
      expect(doc.version).toBe(1);
      expect(JSON.parse(doc.state)).toEqual({ a: { b: 1 } });
      expect((await subject.broker.history(ch, { limit: -1 })).publications).toHaveLength(1);
    });

    it('rejects any stale base in strict mode', async () => {
      const ch = fresh('strict');
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
      const result = await store.update(ch, upd({ base: 0, mode: 'strict', ops: [{ op: 'set', path: '/b', value: 1 }] }), opts);
      expect(result).toMatchObject({ status: 'conflict', version: 1, paths: [] });
      expect(await store.update(ch, upd({ base: 1, mode: 'strict', ops: [{ op: 'set', path: '/b', value: 1 }] }), opts)).toEqual({
        status: 'applied',
        version: 2,
      });
    });

    it('publishes each accepted update once, at offset == version, with the documented data; history agrees', async () => {
      const ch = fresh('pubs');
      await subject.broker.subscribe([ch]);
      const { epoch } = await store.get(ch);
      const ops1 = [{ op: 'set', path: '/a', value: { x: [1, 2] } }];
      const ops2 = [{ op: 'incr', path: '/n', value: 5 }];
      await store.update(ch, upd({ base: 0, ops: ops1 }), opts);
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a', value: 0 }] }), opts); // conflict: no publication
      await store.update(ch, upd({ base: 0, ops: ops2 }), opts);
      await received.waitFor(ch, 2);
      const pubs = received.of(ch);
      expect(pubs.map((p) => p.pub.offset)).toEqual([1, 2]);
      expect(pubs.map((p) => p.epoch)).toEqual([epoch, epoch]);
      expect(data(pubs[0].pub)).toEqual({ version: 1, base: 0, ops: ops1, status: 'applied' });
      expect(data(pubs[1].pub)).toEqual({ version: 2, base: 0, ops: ops2, status: 'merged' });
      expect(JSON.parse(pubs[0].pub.json)).toEqual({ offset: 1, data: data(pubs[0].pub) });

      const history = await subject.broker.history(ch, { limit: -1 });
      expect(history).toMatchObject({ offset: 2, epoch });
      expect(history.publications.map((p) => p.offset)).toEqual([1, 2]);
      expect(history.publications.map((p) => data(p).version)).toEqual([1, 2]);
      expect(history.publications.map((p) => p.json)).toEqual(pubs.map((p) => p.pub.json));
      const doc = await store.get(ch);
      expect(doc).toEqual({ version: 2, epoch, state: expect.any(String) });
      expect(JSON.parse(doc.state)).toEqual({ a: { x: [1, 2] }, n: 5 });
      await subject.broker.unsubscribe([ch]);
    });

    it('carries out an update with an idempotency key once; a retry gets the first outcome', async () => {
      const ch = fresh('idem');
      const update = upd({ base: 0, key: 'k1', ops: [{ op: 'incr', path: '/n', value: 1 }] });
      expect(await store.update(ch, update, opts)).toEqual({ status: 'applied', version: 1 });
      await store.update(ch, upd({ base: 1, ops: [{ op: 'incr', path: '/m', value: 1 }] }), opts);
      expect(await store.update(ch, update, opts)).toEqual({ status: 'applied', version: 1, duplicate: true });
      const doc = await store.get(ch);
      expect(doc.version).toBe(2);
      expect(JSON.parse(doc.state)).toEqual({ n: 1, m: 1 });
      expect((await subject.broker.history(ch, { limit: -1 })).publications).toHaveLength(2);
      // Keys are per document: the same key elsewhere is a different update.
      expect(await store.update(fresh('idem-other'), update, opts)).toEqual({ status: 'applied', version: 1 });
    });

    it('remembers a conflict under its key, so a retry gets the same conflict', async () => {
      const ch = fresh('idem-conflict');
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/a', value: 1 }] }), opts);
      const update = upd({ base: 0, key: 'k', ops: [{ op: 'set', path: '/a', value: 2 }] });
      const first = await store.update(ch, update, opts);
      expect(first).toMatchObject({ status: 'conflict', version: 1, paths: ['/a'] });
      await store.update(ch, upd({ base: 1, ops: [{ op: 'set', path: '/b', value: 1 }] }), opts);
      const retry = await store.update(ch, update, opts);
      expect(retry).toEqual({ ...first, duplicate: true });
    });

    it('refuses with DocError what the caller got wrong, and writes nothing', async () => {
      const ch = fresh('bad');
      await store.update(ch, upd({ base: 0, ops: [{ op: 'set', path: '/s', value: 'text' }] }), opts);
      await expect(store.update(ch, upd({ base: 1, ops: [{ op: 'incr', path: '/s', value: 1 }] }), opts)).rejects.toThrow(DocError);
      await expect(store.update(ch, upd({ base: 1, ops: [{ op: 'incr', path: '/s', value: 1 }] }), opts)).rejects.toThrow(/cannot incr \/s/);
      await expect(store.update(ch, upd({ base: 5, ops: [{ op: 'set', path: '/x', value: 1 }] }), opts)).rejects.toThrow(/ahead of the document/);
      await expect(store.update(ch, upd({ base: 1, ops: [{ op: 'set', path: '/s/deeper', value: 1 }] }), opts)).rejects.toThrow(DocError);
      const doc = await store.get(ch);
      expect(doc.version).toBe(1);
      expect(JSON.parse(doc.state)).toEqual({ s: 'text' });
      expect(() => upd({ base: 0, ops: [{ op: 'jump', path: '/a' }] })).toThrow(DocError);
    });

    it('keeps versions gap-free under concurrent updates of one document', async () => {
      const ch = fresh('concurrent');
      const n = 30;
      const results: DocResult[] = await Promise.all(
        Array.from({ length: n }, (_, i) => store.update(ch, upd({ base: 0, ops: [{ op: 'incr', path: '/count', value: 1 }, { op: 'add', path: '/who', value: i }] }), opts)),
      );
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(results.every((r) => r.status !== 'conflict')).toBe(true);
      const doc = await store.get(ch);
      expect(doc.version).toBe(n);
      const state = JSON.parse(doc.state) as { count: number; who: number[] };
      expect(state.count).toBe(n);
      expect([...state.who].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      const history = await subject.broker.history(ch, { limit: -1 });
      expect(history.publications.map((p) => p.offset)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    });
  });
}
