// The operator's console at /console: password login, short-lived session tokens, and the server API behind them.
import { createHash, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Logger } from 'pino';
import type { HttpApi } from './http_api';
import type { AdminOptions } from './options';
import { BASE_HEADERS, serveFile, writeHeaders } from './web_files';

/** How long a console session lasts; the page asks for the password again afterwards. */
export const CONSOLE_TOKEN_TTL_SECONDS = 15 * 60;
/** Failed logins one client address may make per window before it gets 429 until the window ends. */
export const LOGIN_ATTEMPTS_PER_WINDOW = 5;
export const LOGIN_WINDOW_MS = 60_000;
/** Addresses tracked at once; past this, new addresses are refused until old windows end (bounded memory). */
const MAX_TRACKED_ADDRESSES = 10_000;
const MAX_LOGIN_BODY = 4096;
const AUDIENCE = 'switchboard-console';

/** Methods that only read: calls to any other method are logged with the caller's address. */
const READ_ONLY = new Set(['info', 'channels', 'presence', 'presence_stats', 'history', 'doc_get']);

/** Scripts, styles and requests only from this gateway: a console page cannot be made to send its token elsewhere. */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'Cache-Control': 'no-store',
};

export interface ConsoleDeps {
  admin: AdminOptions;
  /** The server API: the console carries out exactly what a backend with the API key could. */
  api: HttpApi;
  logger: Logger;
  readBody(res: HttpResponse, max: number, done: (body: string | undefined) => void): void;
  /** Counts a request not carried out because uWS cut its pipelined connection. */
  pipelineRefused(): void;
}

type Res = HttpResponse & { aborted?: boolean };

export function consoleRoutes(app: TemplatedApp, deps: ConsoleDeps): void {
  const { api, logger } = deps;
  const sessions = new ConsoleSessions(deps.admin);
  const limiter = new LoginLimiter();

  serveFile(app, '/console', 'console.html', PAGE_HEADERS);
  serveFile(app, '/console/', 'console.html', PAGE_HEADERS);
  serveFile(app, '/console/console.js', 'console.js', PAGE_HEADERS);
  serveFile(app, '/console/console.css', 'console.css', PAGE_HEADERS);
  serveFile(app, '/console/favicon.svg', 'favicon.svg');

  app.post('/console/login', (res: Res) => {
    // The address is readable only before the handler returns.
    const address = clientAddress(res);
    deps.readBody(res, MAX_LOGIN_BODY, (text) => {
      const now = Date.now();
      const wait = limiter.retryAfterMs(address, now);
      if (wait > 0) {
        reply(res, 429, { error: { code: 111, message: 'too many failed logins from this address: wait and try again' } }, { 'Retry-After': String(Math.ceil(wait / 1000)) });
        return;
      }
      if (text === undefined) {
        reply(res, 413, { error: { code: 106, message: `limit exceeded: a login body is at most ${MAX_LOGIN_BODY} bytes` } });
        return;
      }
      const password = passwordOf(text);
      if (password === undefined) {
        reply(res, 400, { error: { code: 107, message: 'bad request: send {"password": "..."}' } });
        return;
      }
      if (!sessions.passwordMatches(password)) {
        limiter.failed(address, now);
        logger.warn({ address }, 'console login refused: wrong password');
        reply(res, 401, { error: { code: 101, message: 'wrong password' } });
        return;
      }
      void sessions.issue(now).then((token) => {
        logger.info({ address }, 'console login');
        reply(res, 200, { token, expires_in: CONSOLE_TOKEN_TTL_SECONDS });
      });
    });
  });

  app.post('/console/api/:method', (res: Res, req) => {
    const method = req.getParameter(0) ?? '';
    const authorization = req.getHeader('authorization');
    const address = clientAddress(res);
    const carryOut = async (body: string | undefined): Promise<void> => {
      if (!(await sessions.valid(authorization))) {
        reply(res, 401, { error: { code: 101, message: 'the console session expired or is invalid: log in again' } });
        return;
      }
      if (body === undefined) {
        const r = api.tooLarge();
        send(res, r.status, r.body);
        return;
      }
      if (!READ_ONLY.has(method)) logger.info({ address, method }, 'console API call');
      const r = await api.handle(method, body);
      send(res, r.status, r.body);
    };
    deps.readBody(res, api.maxBody, (body) => {
      // As on /api: uWS drops a connection whose next request arrives while this one is pending. Carry the call
      // out only after the rest of the read was parsed, so a call cut with its pipeline never runs.
      setImmediate(() => {
        if (res.aborted) {
          deps.pipelineRefused();
          return;
        }
        carryOut(body).catch((err: unknown) => {
          logger.error({ err, method }, 'console API call failed');
          reply(res, 500, { error: { code: 100, message: 'internal error' } });
        });
      });
    });
  });
}

/** The password check and the session tokens: HS256 JWTs signed with the admin secret, for this audience only. */
class ConsoleSessions {
  private readonly passwordDigest: Buffer;
  private readonly key: Uint8Array;

  constructor(admin: AdminOptions) {
    this.passwordDigest = digest(admin.password);
    this.key = new TextEncoder().encode(admin.secret);
  }

  /** Compares digests in constant time, so neither the password nor its length leaks through timing. */
  passwordMatches(given: string): boolean {
    return timingSafeEqual(digest(given), this.passwordDigest);
  }

  issue(now: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('admin')
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(iat + CONSOLE_TOKEN_TTL_SECONDS)
      .sign(this.key);
  }

  /** `Authorization: Bearer <token>` with a token this gateway's secret signed for the console, not expired. */
  async valid(authorization: string): Promise<boolean> {
    const match = /^Bearer ([A-Za-z0-9_.-]{1,4096})$/.exec(authorization.trim());
    if (!match) return false;
    try {
      await jwtVerify(match[1], this.key, { algorithms: ['HS256'], audience: AUDIENCE, subject: 'admin', requiredClaims: ['exp'] });
      return true;
    } catch {
      return false;
    }
  }
}

/** Failed logins per client address in fixed windows; a successful login is never counted. */
export class LoginLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(
    private readonly attempts = LOGIN_ATTEMPTS_PER_WINDOW,
    private readonly windowMs = LOGIN_WINDOW_MS,
  ) {}

  /** 0 when `address` may try now, else how long it has to wait. */
  retryAfterMs(address: string, now: number): number {
    const w = this.windows.get(address);
    if (w === undefined) return this.windows.size >= MAX_TRACKED_ADDRESSES && !this.sweep(now) ? this.windowMs : 0;
    if (now - w.start >= this.windowMs) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.attempts ? w.start + this.windowMs - now : 0;
  }

  failed(address: string, now: number): void {
    const w = this.windows.get(address);
    if (w === undefined || now - w.start >= this.windowMs) this.windows.set(address, { start: now, failures: 1 });
    else w.failures++;
  }

  /** Drops ended windows; true when that made room. */
  private sweep(now: number): boolean {
    for (const [address, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(address);
    return this.windows.size < MAX_TRACKED_ADDRESSES;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function passwordOf(text: string): string | undefined {
  try {
    const body: unknown = JSON.parse(text);
    const password = typeof body === 'object' && body !== null ? (body as { password?: unknown }).password : undefined;
    return typeof password === 'string' ? password : undefined;
  } catch {
    return undefined;
  }
}

/** The peer's address as uWS sees it: behind a load balancer, the balancer's (so the limit is shared there). */
function clientAddress(res: HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString('utf8');
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

function reply(res: Res, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(body), headers);
}

function send(res: Res, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.aborted) return;
  res.cork(() => {
    res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`.trim()).writeHeader('Content-Type', 'application/json');
    writeHeaders(res, { ...BASE_HEADERS, 'Cache-Control': 'no-store', ...headers });
    res.end(body);
  });
}
