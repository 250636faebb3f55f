// The DocStore interface: read a versioned document and submit updates that are applied, merged or rejected.
import type { DocUpdate } from '@switchboard/protocol';

/** A document as read: its version equals its channel's top offset, in the channel's epoch. */
export interface DocState {
  version: number;
  epoch: string;
  /** The document state, encoded as a JSON object. */
  state: string;
}

export type DocResult =
  | {
      status: 'applied' | 'merged';
      version: number;
      /** True when the idempotency key had been seen: this is the first attempt's outcome, nothing was written now. */
      duplicate?: boolean;
    }
  | {
      status: 'conflict';
      /** The current version. */
      version: number;
      /** The update's paths that changed since its base, sorted. */
      paths: string[];
      /** The current state, encoded as a JSON object. */
      state: string;
      duplicate?: boolean;
    };

export interface DocChannelOptions {
  /** History kept on the document's channel (its versions as publications), as for any channel. */
  historySize: number;
  historyTtlSeconds: number;
}

/** The caller's fault (malformed update, limits): protocol error 107. Defined with the update format in @switchboard/protocol. */
export { DocError } from '@switchboard/protocol';

/** The request could not be carried out now (engine or worker unavailable, timed out): retry with the same key. */
export class DocUnavailableError extends Error {
  override readonly name = 'DocUnavailableError';
}

export interface DocStore {
  get(channel: string): Promise<DocState>;
  /**
   * Applies, merges or rejects the update; every accepted update is one publication on the channel whose
   * offset is the new version and whose data is `{"version":V2,"base":V,"ops":[...],"status":"applied"|"merged"}`.
   * An update with an idempotency key is carried out at most once; a retry gets the first outcome.
   */
  update(channel: string, update: DocUpdate, opts: DocChannelOptions): Promise<DocResult>;
  /** Able to serve now (for readiness). */
  isReady(): boolean;
  close(): Promise<void>;
}
