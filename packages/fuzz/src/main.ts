// `npm run fuzz -- --seconds N [--target NAME] [--seed S]`: runs each target for N seconds, prints any finding with its seed.
import fc from 'fast-check';
import { targets, type Target } from './targets';

export interface RunResult {
  target: string;
  runs: number;
  /** fast-check's report (seed, path, counterexample) when the property failed. */
  failure?: string;
}

/** Runs one target for `seconds`; a property that fails stops it and is reported with its seed and path. */
export async function runTarget(target: Target, seconds: number, seed?: number): Promise<RunResult> {
  const stop = target.setup ? await target.setup() : undefined;
  try {
    const out = await fc.check(target.property(), {
      seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: seconds * 1000,
      markInterruptAsFailure: false,
      endOnFailure: false,
    });
    return { target: target.name, runs: out.numRuns, failure: out.failed ? fc.defaultReportMessage(out) : undefined };
  } finally {
    await stop?.();
  }
}

function usage(): string {
  return [
    'usage: npm run fuzz -- [--seconds N] [--target NAME] [--seed S]',
    `  --seconds N   time per target (default 10)`,
    `  --target NAME one of: ${targets.map((t) => t.name).join(', ')} (default: all)`,
    '  --seed S      replay a reported seed',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let seconds = 10;
  let only: string | undefined;
  let seed: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = inline ?? argv[++i];
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    if (flag === '--seconds' && Number(value) > 0) seconds = Number(value);
    else if (flag === '--target' && targets.some((t) => t.name === value)) only = value;
    else if (flag === '--seed' && Number.isInteger(Number(value))) seed = Number(value);
    else {
      process.stderr.write(`fuzz: bad argument ${argv[inline === undefined ? i - 1 : i]} ${inline === undefined ? (value ?? '') : ''}\n${usage()}\n`);
      return 2;
    }
  }
  let findings = 0;
  for (const target of targets.filter((t) => only === undefined || t.name === only)) {
    const r = await runTarget(target, seconds, seed);
    process.stdout.write(`${r.target.padEnd(14)} ${String(r.runs).padStart(9)} inputs  ${r.failure ? 'FINDING' : 'ok'}\n`);
    if (r.failure) {
      findings++;
      process.stdout.write(r.failure + '\n');
    }
  }
  return findings === 0 ? 0 : 1;
}
