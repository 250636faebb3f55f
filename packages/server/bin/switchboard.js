#!/usr/bin/env node
// The `switchboard` command: runs the built CLI (npm run build / npx tsc -b produces dist/).
'use strict';
require('../dist/main').main(process.argv.slice(2));
