// A versioned document over the centrifuge SDK: load a snapshot, follow its channel, update it, retry on conflict.
import type { Centrifuge, PublicationContext, Subscription } from 'centrifuge';
import { decide, type DocOp, type Json, type JsonObject } from '@switchboard/protocol';

export type DocMode = 'merge' | 'strict';

export type UpdateResult =
  | { status: 'applied' | 'merged'; version: number }
  | { status: 'conflict'; version: number; paths: string[]; state: JsonObject };

export interface DocumentOptions {
  /** Attempts of `change` before it gives up on conflicts (default 5). */
  maxAttempts?: number;
  /** Attempts of one request when the server answers a temporary error or the call times out (default 3). */
  maxRetries?: number;
}

/** Thrown by `change` when every attempt met a conflict. */
export class ConflictError extends Error {
  constructor(readonly result: Extract<UpdateResult, { status: 'conflict' }>) {
    super(`update conflicted on ${result.paths.join(', ') || 'a stale base'} ${result.version}`);
  }
}

interface PublishedUpdate {
  version: number;
  base: number;
  ops: DocOp[];
  status: 'applied' | 'merged';
}

export class Document {
  version = 0;
  epoch = '';
  state: JsonObject = {};
  private sub: Subscription | undefined;
  private listeners: ((doc: Document) => void)[] = [];
  private readonly maxAttempts: number;
  private readonly maxRetries: number;

  constructor(
    private readonly client: Centrifuge,
    readonly channel: string,
    options: DocumentOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.maxRetries = options.maxRetries ?? 3;
  }

  /** Reads the current snapshot (state, version, epoch). */
  async load(): Promise<this> {
    const doc = (await this.call('doc.get', { channel: this.channel })) as { version: number; epoch: string; state: JsonObject };
    this.adopt(doc.version, doc.state, doc.epoch);
    return this;
  }

  /**
   * Subscribes to the document's channel: every accepted update is applied to `state` in version order.
   * The SDK loads a snapshot through `doc.get` first and whenever it cannot recover what it missed.
   */
  follow(onChange?: (doc: Document) => void): Subscription {
    if (onChange) this.listeners.push(onChange);
    if (this.sub) return this.sub;
    const sub = this.client.newSubscription(this.channel, {
      recoverable: true,
      positioned: true,
      getState: async () => {
        await this.load();
        this.emit();
        return { offset: this.version, epoch: this.epoch };
      },
    });
    sub.on('publication', (ctx) => this.onPublication(ctx));
    sub.subscribe();
    this.sub = sub;
    return sub;
  }

  unfollow(): void {
    if (!this.sub) return;
    this.sub.unsubscribe();
    this.client.removeSubscription(this.sub);
    this.sub = undefined;
  }

  /**
   * Sends ops made against `version`. The same idempotency key is sent on every retry, so a retry after a
   * lost reply gets the first outcome instead of writing twice.
   */
  async update(ops: DocOp[], options: { mode?: DocMode; key?: string; base?: number } = {}): Promise<UpdateResult> {
    const base = options.base ?? this.version;
    const key = options.key ?? randomKey();
    const result = (await this.call('doc.update', { channel: this.channel, base, ops, mode: options.mode ?? 'merge', key })) as UpdateResult;
    if (result.status === 'conflict') {
      this.adopt(result.version, result.state, this.epoch);
    } else if (result.version === this.version + 1 && base === this.version) {
      // Nothing else was written in between: apply locally rather than wait for the publication.
      this.apply({ version: result.version, base, ops, status: result.status });
    }
    return result;
  }

  /**
   * Computes ops from the current state and sends them; on a conflict, runs `fn` again on the state the
   * server returned. Returns the accepted result, or throws ConflictError after `maxAttempts`.
   */
  async change(fn: (state: JsonObject) => DocOp[], options: { mode?: DocMode } = {}): Promise<UpdateResult> {
    let last: UpdateResult | undefined;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      last = await this.update(fn(this.state), options);
      if (last.status !== 'conflict') return last;
    }
    throw new ConflictError(last as Extract<UpdateResult, { status: 'conflict' }>);
  }

  private onPublication(ctx: PublicationContext): void {
    const update = ctx.data as PublishedUpdate;
    if (update.version <= this.version) return;
    if (update.version !== this.version + 1) {
      // A gap the SDK did not repair (it should not happen): reload rather than apply out of order.
      void this.load().then(() => this.emit());
      return;
    }
    this.apply(update);
    this.emit();
  }

  /** Applies a published update on top of the version it follows (what the server did to the same state). */
  private apply(update: PublishedUpdate): void {
    const decision = decide({ version: this.version, state: this.state, writes: [], floor: 0 }, { base: this.version, ops: update.ops, mode: 'merge' });
    if (decision.status === 'conflict') throw new Error(`update ${update.version} does not apply to version ${this.version}`);
    this.state = decision.doc.state;
    this.version = update.version;
  }

  private adopt(version: number, state: JsonObject, epoch: string): void {
    if (version < this.version && epoch === this.epoch) return;
    this.version = version;
    this.state = state;
    this.epoch = epoch;
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this);
  }

  /** An RPC that retries temporary failures (and timeouts) with the same data. */
  private async call(method: string, data: Record<string, Json | DocOp[] | undefined>): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.client.rpc(method, data)).data;
      } catch (err) {
        const e = err as { code?: number; temporary?: boolean };
        // 1: the SDK's own timeout; temporary: the server asks for a retry (engine or worker busy).
        const retryable = e.code === 1 || e.temporary === true;
        if (!retryable || attempt >= this.maxRetries) throw err;
      }
    }
  }
}

function randomKey(): string {
  return globalThis.crypto.randomUUID();
}
