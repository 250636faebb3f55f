#!/usr/bin/env node
// `npm run chaos` at the repository root builds first; see docs/reliability.md.
require('../dist/chaos.js').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`chaos: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
