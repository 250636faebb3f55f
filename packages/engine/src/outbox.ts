// An outbox: an ordered, bounded log every node appends to and one node at a time (the holder of its lease) works
// through, with a saved cursor per reader — webhook events waiting for their receivers, in the order they happened.

/** One entry: `id` is its position, opaque, to read after or save as a cursor. */
export interface OutboxEntry {
  id: string;
  body: string;
}

export interface OutboxRead {
  entries: OutboxEntry[];
  /** Entries the length bound dropped between the cursor and the first entry returned (never read by this reader). */
  dropped: number;
}

export interface OutboxOptions {
  /** Entries kept; beyond it the oldest go (roughly, on Redis: whole stream nodes). */
  maxLength: number;
}

export interface Outbox {
  /** Appends in order, after everything appended before by any node. */
  append(bodies: string[]): Promise<void>;
  /** Entries after the cursor `after` ('' = from the oldest kept), oldest first, at most `count`. */
  read(after: string, count: number): Promise<OutboxRead>;
  /** Takes the lease for `ttlMs`, or renews it for its holder; false while another holder has it. */
  claim(holder: string, ttlMs: number): Promise<boolean>;
  release(holder: string): Promise<void>;
  /** A reader's saved cursor, '' when it has none. */
  cursor(reader: string): Promise<string>;
  /** Saves a reader's cursor, only while `holder` holds the lease; false when it does not. */
  saveCursor(reader: string, cursor: string, holder: string): Promise<boolean>;
  /** Drops the entries every one of these readers' cursors is past; nothing when one of them is ''. */
  trim(cursors: string[]): Promise<void>;
}

/** Outboxes and their saved cursors live this long after the last append or save, then vanish by themselves. */
export const OUTBOX_IDLE_MS = 7 * 24 * 3600 * 1000;
