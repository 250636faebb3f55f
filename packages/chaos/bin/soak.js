#!/usr/bin/env node
// `npm run soak` at the repository root builds first; see docs/reliability.md.
require('../dist/soak.js').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
