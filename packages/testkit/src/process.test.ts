// Tests of the process helpers: polling with waitFor, and startSwitchboard reporting a process that dies before it is ready.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startSwitchboard, switchboardBin, waitFor } from './process';

describe('waitFor', () => {
  it('resolves once the predicate holds', async () => {
    let calls = 0;
    await waitFor(() => ++calls >= 3, { intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('accepts async predicates', async () => {
    let calls = 0;
    await waitFor(async () => ++calls >= 2, { intervalMs: 1 });
    expect(calls).toBe(2);
  });

  it('rejects with the given message after the timeout', async () => {
    await expect(waitFor(() => false, { timeoutMs: 30, intervalMs: 5, message: 'never true' })).rejects.toThrow('never true');
  });

  it('rejects at once when the predicate throws', async () => {
    const started = Date.now();
    await expect(
      waitFor(
        () => {
          throw new Error('broken');
        },
        { timeoutMs: 5000 },
      ),
    ).rejects.toThrow('broken');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('startSwitchboard', () => {
  beforeAll(() => {
    if (!existsSync(join(dirname(switchboardBin), '..', 'dist', 'main.js'))) {
      throw new Error('packages/server is not built: run `npx tsc -b` first');
    }
  });

  it('rejects with what the process printed when it exits before it is ready', async () => {
    await expect(startSwitchboard('standalone', ['--no-such-flag'])).rejects.toThrow(
      /exited with code 2 before it was ready:\nswitchboard: unknown flag --no-such-flag/,
    );
  });

  it('passes the extra environment', async () => {
    await expect(startSwitchboard('standalone', [], { env: { SWITCHBOARD_LOG_LEVEL: 'loud' } })).rejects.toThrow(
      /SWITCHBOARD_LOG_LEVEL: expected one of/,
    );
  });
});
