// The demo page (chat with presence and history, a task board on versioned documents), the SDK it loads, and in
// dev mode the endpoint that hands it short-lived connection tokens.
import path from 'node:path';
import { SignJWT } from 'jose';
import type { TemplatedApp } from 'uWebSockets.js';
import { BASE_HEADERS, serveFile, writeHeaders } from './web_files';

/** Lifetime of a demo connection token; the SDK asks for a new one before it runs out. */
export const DEMO_TOKEN_TTL_SECONDS = 120;
const MAX_NAME_LENGTH = 32;

export interface DemoOptions {
  /** Dev mode: with `hmacSecret`, GET /demo/token signs tokens for any name. Never mounted outside dev mode. */
  dev: boolean;
  hmacSecret?: string;
}

export function demoRoutes(app: TemplatedApp, options: DemoOptions): void {
  serveFile(app, '/', 'demo.html', { 'Cache-Control': 'no-cache' });
  serveFile(app, '/demo.js', 'demo.js', { 'Cache-Control': 'no-cache' });
  serveFile(app, '/demo.css', 'demo.css', { 'Cache-Control': 'no-cache' });
  serveFile(app, '/favicon.svg', 'favicon.svg');
  serveFile(app, '/favicon.ico', 'favicon.svg');
  // The package exports no subpaths; its browser bundle sits in dist/ beside build/.
  serveFile(app, '/centrifuge.js', path.join(path.dirname(require.resolve('centrifuge')), '..', 'dist', 'centrifuge.js'));
  if (options.dev && options.hmacSecret) tokenRoute(app, options.hmacSecret);
}

/** GET /demo/token?user=<name>: a connection token for that name, with the name as `info` (shown in presence). */
function tokenRoute(app: TemplatedApp, secret: string): void {
  const key = new TextEncoder().encode(secret);
  app.get('/demo/token', (res, req) => {
    const user = demoUserName(new URLSearchParams(req.getQuery() ?? '').get('user') ?? '');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const now = Math.floor(Date.now() / 1000);
    void new SignJWT({ info: { name: user } })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user)
      .setIssuedAt(now)
      .setExpirationTime(now + DEMO_TOKEN_TTL_SECONDS)
      .sign(key)
      .then((token) => {
        if (aborted) return;
        res.cork(() => {
          res.writeHeader('Content-Type', 'application/json');
          writeHeaders(res, { ...BASE_HEADERS, 'Cache-Control': 'no-store' });
          res.end(JSON.stringify({ token, user, expires_in: DEMO_TOKEN_TTL_SECONDS }));
        });
      });
  });
}

/** The name a demo token is made out to: printable, at most 32 characters, "guest" when nothing is left. */
export function demoUserName(text: string): string {
  let name = '';
  for (const ch of text.trim()) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) continue;
    name += ch;
    if (name.length >= MAX_NAME_LENGTH) break;
  }
  return name.trim() === '' ? 'guest' : name.trim();
}
