// Container HEALTHCHECK: exits 0 when this container's switchboard answers 200 on /healthz (the image has no curl).
'use strict';
const http = require('node:http');

const port = Number(process.env.SWITCHBOARD_PORT || 8000);
const request = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error('timeout')));
request.on('error', () => process.exit(1));
