// An outbox held in memory for the memory engine (one process is the whole cluster): an array with sequence numbers.
import type { Outbox, OutboxOptions, OutboxRead } from './outbox';

interface Entry {
  n: number;
  body: string;
}

/** The state every MemoryOutbox of one name on one broker shares. */
export interface MemoryOutboxState {
  entries: Entry[];
  last: number;
  cursors: Map<string, string>;
  lease: { holder: string; until: number } | undefined;
}

export function newMemoryOutboxState(): MemoryOutboxState {
  return { entries: [], last: 0, cursors: new Map(), lease: undefined };
}

export class MemoryOutbox implements Outbox {
  constructor(
    private readonly state: MemoryOutboxState,
    private readonly options: OutboxOptions,
  ) {}

  async append(bodies: string[]): Promise<void> {
    const s = this.state;
    for (const body of bodies) s.entries.push({ n: ++s.last, body });
    const over = s.entries.length - this.options.maxLength;
    if (over > 0) s.entries.splice(0, over);
  }

  async read(after: string, count: number): Promise<OutboxRead> {
    const from = after === '' ? 0 : Number(after);
    const entries = this.state.entries;
    let i = 0;
    while (i < entries.length && entries[i].n <= from) i++;
    const slice = entries.slice(i, i + count);
    const dropped = after !== '' && slice.length > 0 && slice[0].n > from + 1 ? slice[0].n - from - 1 : 0;
    return { entries: slice.map((e) => ({ id: String(e.n), body: e.body })), dropped };
  }

  async claim(holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lease = this.state.lease;
    if (lease && lease.holder !== holder && lease.until > now) return false;
    this.state.lease = { holder, until: now + ttlMs };
    return true;
  }

  async release(holder: string): Promise<void> {
    if (this.state.lease?.holder === holder) this.state.lease = undefined;
  }

  async cursor(reader: string): Promise<string> {
    return this.state.cursors.get(reader) ?? '';
  }

  async saveCursor(reader: string, cursor: string, holder: string): Promise<boolean> {
    const lease = this.state.lease;
    if (!lease || lease.holder !== holder || lease.until <= Date.now()) return false;
    this.state.cursors.set(reader, cursor);
    return true;
  }

  async trim(cursors: string[]): Promise<void> {
    if (cursors.length === 0 || cursors.includes('')) return;
    const upTo = Math.min(...cursors.map(Number));
    const entries = this.state.entries;
    let i = 0;
    while (i < entries.length && entries[i].n <= upTo) i++;
    entries.splice(0, i);
  }
}
