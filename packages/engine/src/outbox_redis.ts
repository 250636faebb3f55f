// An outbox in Redis: a stream whose entries carry a sequence number, with the counter, the readers' cursors and the
// lease under one hash tag (lua/outbox.lua), so every operation is one script on one node, also on Redis Cluster.
import type { RedisBroker } from './broker_redis';
import type { Outbox, OutboxOptions, OutboxRead } from './outbox';
import { OUTBOX_IDLE_MS } from './outbox';
import { outboxChannel, outboxKeys, type OutboxKeys } from './redis_keys';

/** A cursor is `<stream entry id> <sequence number>`. */
function parseCursor(cursor: string): { id: string; n: number } {
  const space = cursor.indexOf(' ');
  if (space === -1) return { id: '', n: 0 };
  return { id: cursor.slice(0, space), n: Number(cursor.slice(space + 1)) };
}

export class RedisOutbox implements Outbox {
  private readonly keys: OutboxKeys;
  private readonly channel: string;

  constructor(
    private readonly broker: RedisBroker,
    name: string,
    private readonly options: OutboxOptions,
  ) {
    this.keys = outboxKeys(name, broker.keyPrefix);
    this.channel = outboxChannel(name);
  }

  async append(bodies: string[]): Promise<void> {
    if (bodies.length === 0) return;
    await this.call('append', this.options.maxLength, OUTBOX_IDLE_MS, ...bodies);
  }

  async read(after: string, count: number): Promise<OutboxRead> {
    const from = parseCursor(after);
    const reply = (await this.call('read', from.id, count)) as [string, string, string][];
    const entries = reply.map(([id, n, body]) => ({ id: `${id} ${n}`, body }));
    // The counter restarts when the outbox was idle long enough to vanish: no gap to count then.
    const firstN = reply.length > 0 ? Number(reply[0][1]) : 0;
    const dropped = from.id !== '' && firstN > from.n + 1 ? firstN - from.n - 1 : 0;
    return { entries, dropped };
  }

  async claim(holder: string, ttlMs: number): Promise<boolean> {
    return (await this.call('claim', holder, ttlMs)) === 1;
  }

  async release(holder: string): Promise<void> {
    await this.call('release', holder);
  }

  async cursor(reader: string): Promise<string> {
    return String(await this.call('cursor', reader));
  }

  async saveCursor(reader: string, cursor: string, holder: string): Promise<boolean> {
    return (await this.call('save', reader, cursor, holder, OUTBOX_IDLE_MS)) === 1;
  }

  async trim(cursors: string[]): Promise<void> {
    if (cursors.length === 0 || cursors.includes('')) return;
    // Sequence numbers grow with the entry ids: the reader furthest behind has the smallest.
    const behind = cursors.map(parseCursor).reduce((a, b) => (b.n < a.n ? b : a));
    if (behind.id !== '') await this.call('trim', behind.id);
  }

  private async call(op: string, ...args: (string | number)[]): Promise<unknown> {
    const conn = this.broker.connectionFor(this.channel);
    const k = this.keys;
    try {
      return await conn.commands().sbOutbox(k.stream, k.sequence, k.cursors, k.lease, op, ...args);
    } catch (err) {
      throw conn.commandError(err);
    }
  }
}
