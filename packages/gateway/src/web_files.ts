// The browser files of the demo page and the console (packages/gateway/web/), read once and served as they are.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';

const WEB_DIR = path.join(__dirname, '..', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Headers every page and asset gets: no sniffing, no framing by other sites, no referrer leaking the path. */
export const BASE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
});

/** Serves `file` (from web/, or an absolute path) at `route` with its content type and `headers`. */
export function serveFile(app: TemplatedApp, route: string, file: string, headers: Record<string, string> = {}): void {
  const full = path.isAbsolute(file) ? file : path.join(WEB_DIR, file);
  const body = readFileSync(full);
  const type = TYPES[path.extname(full)] ?? 'application/octet-stream';
  app.get(route, (res) => {
    res.cork(() => {
      res.writeHeader('Content-Type', type);
      writeHeaders(res, { ...BASE_HEADERS, ...headers });
      res.end(body);
    });
  });
}

export function writeHeaders(res: HttpResponse, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
}
