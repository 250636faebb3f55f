// Test helpers for the worker tests: quiet loggers, polling for states without events, cleanup bookkeeping,
// another writer's commit.
import type { DocCommitReply, DocKeyNames, DocScriptedRedis } from '@switchboard/engine';
import pino, { type Logger } from 'pino';
import { startRedis, type RedisServer } from '../../testkit/src/redis';

/** Silent unless SWITCHBOARD_TEST_LOG is set (e.g. to "debug") while debugging a test. */
export function testLogger(): Logger {
  return pino({ level: process.env.SWITCHBOARD_TEST_LOG ?? 'silent' });
}

/** Polls `check` until it holds (for states that have no event, like a lease running out). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Runs registered cleanups in reverse order; register in the test, call `run` from afterEach/afterAll. */
export class Cleanups {
  private readonly list: Array<() => Promise<unknown> | unknown> = [];

  add<T>(value: T, cleanup: (value: T) => Promise<unknown> | unknown): T {
    this.list.push(() => cleanup(value));
    return value;
  }

  async run(): Promise<void> {
    for (const cleanup of this.list.splice(0).reverse()) await cleanup();
  }
}

/** One decided update committed by someone else (say, the owner before a lease moved). */
export interface OtherCommit {
  /** Its full idempotency key, e.g. `${keys.pubsub}:di:r:other`. */
  idempotencyKey: string;
  /** The version it was decided against (the script's guard); it commits `expected + 1`. */
  expected: number;
  /** The new state, writes JSON and floor. */
  state: string;
  writes: string;
  floor?: number;
  /** `{"offset":expected+1,"data":…}` */
  publication: string;
  /** The outcome JSON recorded under the idempotency key. */
  outcome: string;
  historySize: number;
  historyTtlSeconds?: number;
  idempotencyTtlSeconds?: number;
  /** The epoch to use if the channel has none. */
  epoch?: string;
}

/** Commits `c` as "another writer" would: through doc_commit_batch.lua as a group of one. */
export function commitOther(redis: DocScriptedRedis, keys: DocKeyNames, c: OtherCommit): Promise<DocCommitReply> {
  return redis.sbDocCommitBatch(
    4,
    keys.doc,
    keys.meta,
    keys.history,
    c.idempotencyKey,
    c.expected,
    c.state,
    c.writes,
    c.floor ?? 0,
    c.historySize,
    c.historyTtlSeconds ?? 60,
    c.epoch ?? 'E',
    keys.pubsub,
    c.idempotencyTtlSeconds ?? 60,
    1,
    c.publication,
    c.outcome,
    'publish',
  );
}

/**
 * A private redis-server for the whole test file and per-test cleanups, registered with jest's hooks.
 * `redis.server` is set once beforeAll has run.
 */
export function redisForFile(): { server: RedisServer; cleanups: Cleanups } {
  const ctx = { server: undefined as unknown as RedisServer, cleanups: new Cleanups() };
  beforeAll(async () => {
    ctx.server = await startRedis();
  });
  afterAll(async () => {
    await ctx.server?.stop();
  });
  afterEach(() => ctx.cleanups.run());
  return ctx;
}
