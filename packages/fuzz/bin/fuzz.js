#!/usr/bin/env node
// The fuzzer (`npm run fuzz -- --seconds N` at the repository root builds first); see docs/reliability.md.
require('../dist/main.js').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fuzz: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
