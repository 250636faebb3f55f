// The demo chat page of standalone dev mode, served with the centrifuge SDK from node_modules.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TemplatedApp } from 'uWebSockets.js';

export function demoRoutes(app: TemplatedApp): void {
  const page = readFileSync(path.join(__dirname, '..', 'demo', 'index.html'));
  // The package exports no subpaths; its browser bundle sits in dist/ beside build/.
  const sdk = readFileSync(path.join(path.dirname(require.resolve('centrifuge')), '..', 'dist', 'centrifuge.js'));
  app.get('/', (res) => {
    res.writeHeader('Content-Type', 'text/html; charset=utf-8').end(page);
  });
  app.get('/centrifuge.js', (res) => {
    res.writeHeader('Content-Type', 'application/javascript; charset=utf-8').end(sdk);
  });
}
