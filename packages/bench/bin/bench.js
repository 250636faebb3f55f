#!/usr/bin/env node
// The benchmark runner (`npm run bench` at the repository root builds first); see docs/benchmarks.md.
require('../dist/main.js').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
