// MemoryDocStore: versioned documents for the standalone mode, committed as publications of a MemoryBroker.
//
// Version == channel offset holds because updates of one document run one at a time and nothing else
// publishes on a document channel (the gateway refuses client and API publishes to document namespaces):
// each commit checks the channel is at the document's version before publishing, and that the publish
// returned version + 1, and fails loudly otherwise.
import type { MemoryBroker } from './broker_memory';
import { DEFAULT_IDEMPOTENCY_TTL_SECONDS } from './defaults';
import { decide, emptyDoc, type DocSnapshot } from '@switchboard/protocol';
import type { DocLimits, DocUpdate } from '@switchboard/protocol';
import type { DocChannelOptions, DocResult, DocState, DocStore } from './docs';
import { docHistorySize, docHistoryTtlSeconds, encodeDocPublicationData } from './docs_wire';

export interface MemoryDocStoreOptions {
  limits?: Partial<DocLimits>;
  /** How long an idempotency key's outcome is remembered; default 5 minutes. */
  idempotencyTtlMs?: number;
  /** Most outcomes remembered at once; the oldest go first. Default 100 000. */
  maxIdempotencyKeys?: number;
}

/**
 * The meta of a written document must outlive any pause in its writes (its offset is the version), as the
 * Redis commit PERSISTs it; 100 years stands in for "never" in the memory engine.
 */
const DOC_META_TTL_SECONDS = 100 * 365 * 24 * 3600;

interface StoredDoc {
  doc: DocSnapshot;
  /** `doc.state` encoded, kept from the commit so reads and conflicts do not encode it again. */
  encoded: string;
}

export class MemoryDocStore implements DocStore {
  private readonly docs = new Map<string, StoredDoc>();
  private readonly outcomes: OutcomeCache;
  /** The tail of each document's queue of reads and updates. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly broker: MemoryBroker,
    private readonly options: MemoryDocStoreOptions = {},
  ) {
    this.outcomes = new OutcomeCache(
      options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS * 1000,
      options.maxIdempotencyKeys ?? 100_000,
    );
  }

  /** In process: ready whenever the broker is. */
  isReady(): boolean {
    return this.broker.isReady();
  }

  get(channel: string): Promise<DocState> {
    return this.serially(channel, async () => {
      const stored = await this.load(channel);
      return { version: stored.position.offset, epoch: stored.position.epoch, state: stored.encoded };
    });
  }

  update(channel: string, update: DocUpdate, opts: DocChannelOptions): Promise<DocResult> {
    // The length prefix keeps (channel, key) pairs apart whatever characters either holds.
    const idemKey = update.key === undefined ? undefined : `${channel.length}:${channel}${update.key}`;
    return this.serially(channel, async () => {
      if (idemKey !== undefined) {
        const seen = this.outcomes.get(idemKey, Date.now());
        if (seen) return { ...seen, duplicate: true };
      }
      const { doc, encoded } = await this.load(channel);
      const decision = decide(doc, update, this.options.limits);
      let result: DocResult;
      if (decision.status === 'conflict') {
        result = { status: 'conflict', version: decision.version, paths: decision.paths, state: encoded };
      } else {
        const version = decision.doc.version;
        const published = await this.broker.publish(channel, `"data":${encodeDocPublicationData(version, update, decision.status)}`, {
          historySize: docHistorySize(opts.historySize),
          historyTtlSeconds: docHistoryTtlSeconds(opts.historyTtlSeconds),
          metaTtlSeconds: DOC_META_TTL_SECONDS,
        });
        if (published.offset !== version) {
          throw new Error(`document ${channel}: version ${version} was published at offset ${published.offset}; something else publishes on the channel`);
        }
        this.docs.set(channel, { doc: decision.doc, encoded: decision.encoded ?? JSON.stringify(decision.doc.state) });
        result = { status: decision.status, version };
      }
      if (idemKey !== undefined) this.outcomes.set(idemKey, result, Date.now());
      return result;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.queues.values()]);
  }

  /** The document and its channel's position, which must agree. */
  private async load(channel: string): Promise<StoredDoc & { position: { offset: number; epoch: string } }> {
    const position = await this.broker.history(channel, { limit: 0 });
    const stored = this.docs.get(channel);
    if (stored) {
      if (stored.doc.version !== position.offset) {
        throw new Error(`document ${channel} is at version ${stored.doc.version} but its channel at offset ${position.offset}; something else publishes on the channel`);
      }
      return { ...stored, position };
    }
    // Never written as a document: empty, at the channel's offset (earlier plain publications count as
    // versions whose writes are unknown, so the floor makes any update based before them conservative).
    const doc = position.offset === 0 ? emptyDoc() : { ...emptyDoc(), version: position.offset, floor: position.offset };
    return { doc, encoded: '{}', position };
  }

  /** Runs `task` after every earlier read and update of the same document has finished. */
  private serially<T>(channel: string, task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the document store is closed'));
    const previous = this.queues.get(channel) ?? Promise.resolve();
    const run = previous.then(task); // the tail never rejects
    const tail = run.catch(() => undefined);
    this.queues.set(channel, tail);
    void tail.then(() => {
      if (this.queues.get(channel) === tail) this.queues.delete(channel);
    });
    return run;
  }
}

/**
 * First outcomes by idempotency key. Every entry lives the same TTL, so insertion order is expiry order:
 * expired entries are dropped from the front on each insert, and the oldest go when the map is full.
 */
class OutcomeCache {
  private readonly entries = new Map<string, { result: DocResult; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: string, now: number): DocResult | undefined {
    const entry = this.entries.get(key);
    return entry && entry.expiresAt > now ? entry.result : undefined;
  }

  set(key: string, result: DocResult, now: number): void {
    this.entries.delete(key); // an expired entry of the same key would keep its old place in the order
    for (const [k, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.maxEntries) break;
      this.entries.delete(k);
    }
    this.entries.set(key, { result, expiresAt: now + this.ttlMs });
  }
}
