// Test helpers for the worker tests: quiet loggers, polling for states without events, cleanup bookkeeping.
import pino, { type Logger } from 'pino';

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
