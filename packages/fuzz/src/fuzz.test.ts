// The short fuzz pass of `npm test`: every target for a few seconds (about 25 s in all); a finding fails with its seed.
import { runTarget } from './main';
import { targets } from './targets';

const SECONDS_PER_TARGET = 5;

it.each(targets.map((t) => [t.name, t] as const))('fuzz target %s holds its property', async (_name, target) => {
  const r = await runTarget(target, SECONDS_PER_TARGET);
  // The report names the seed and path that replay it: npm run fuzz -- --target NAME --seed S
  expect(r.failure).toBeUndefined();
  expect(r.runs).toBeGreaterThan(0);
}, (SECONDS_PER_TARGET + 20) * 1000);
