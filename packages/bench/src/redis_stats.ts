// What each Redis node counts about its own work (INFO stats), read before and after a ladder: how many socket reads
// carried its commands tells how well clients batched them.
import Redis from 'ioredis';
import type { RedisNode } from './systems';

export interface RedisCounters {
  /** Socket reads the node processed (total_reads_processed). */
  reads: number;
  /** Commands it executed (total_commands_processed). */
  commands: number;
}

export interface NodeCounters extends RedisCounters {
  name: string;
}

async function countersOf(port: number): Promise<RedisCounters> {
  const conn = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await conn.connect();
    const info = await conn.info('stats');
    const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    return { reads: field('total_reads_processed'), commands: field('total_commands_processed') };
  } finally {
    conn.disconnect();
  }
}

/** Starts counting on every node; `stop()` gives what each node counted since. */
export async function redisCounters(nodes: RedisNode[]): Promise<{ stop(): Promise<NodeCounters[]> }> {
  const before = await Promise.all(nodes.map((n) => countersOf(n.port)));
  return {
    async stop() {
      const after = await Promise.all(nodes.map((n) => countersOf(n.port)));
      return nodes.map((n, i) => ({ name: n.name, reads: after[i].reads - before[i].reads, commands: after[i].commands - before[i].commands }));
    },
  };
}
