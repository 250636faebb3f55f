// The documents of the owned partitions kept in memory between updates, bounded by their encoded size.
//
// A cached document is only a guess: every commit is guarded by the document's version in Redis, and a
// stale guard (another owner wrote meanwhile) drops the entry and reloads.
import { docPartitionOf } from '@switchboard/engine';
import type { DocSnapshot } from '@switchboard/protocol';

export interface CachedDoc {
  doc: DocSnapshot;
  /** `doc.state` encoded as JSON. */
  encoded: string;
}

export class DocCache {
  /** Map order is recency order: a hit moves the entry to the end, eviction takes from the front. */
  private readonly entries = new Map<string, CachedDoc>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(channel: string): CachedDoc | undefined {
    const hit = this.entries.get(channel);
    if (hit) {
      this.entries.delete(channel);
      this.entries.set(channel, hit);
    }
    return hit;
  }

  set(channel: string, entry: CachedDoc): void {
    this.delete(channel);
    // The encoded state is the bulk of a document; the writes list is bounded by maxTrackedPaths.
    const size = entry.encoded.length;
    if (size > this.maxBytes) return;
    this.entries.set(channel, entry);
    this.bytes += size;
    for (const [oldest, cached] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= cached.encoded.length;
    }
  }

  delete(channel: string): void {
    const cached = this.entries.get(channel);
    if (!cached) return;
    this.entries.delete(channel);
    this.bytes -= cached.encoded.length;
  }

  /** Forgets the documents of a partition this worker no longer owns (another owner will change them). */
  dropPartition(partition: number, partitions: number): void {
    for (const channel of [...this.entries.keys()]) {
      if (docPartitionOf(channel, partitions) === partition) this.delete(channel);
    }
  }
}
