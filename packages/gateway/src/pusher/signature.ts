// Pusher signatures: channel authorization, user sign-in, signed HTTP API requests, webhook signing, socket ids.
import { createHmac, createSecretKey, hash, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PusherApp } from './apps';

/**
 * HMAC keys made once per secret (importing the secret is a large part of an HMAC over a short text). Secrets
 * come from the configuration, so the map stays small; it is emptied if it ever grows past the cap.
 */
const hmacKeys = new Map<string, KeyObject>();
const MAX_HMAC_KEYS = 1024;

function hmacKey(secret: string): KeyObject {
  let key = hmacKeys.get(secret);
  if (key === undefined) {
    if (hmacKeys.size >= MAX_HMAC_KEYS) hmacKeys.clear();
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    hmacKeys.set(secret, key);
  }
  return key;
}

/** HMAC-SHA256 of `text` under the app's secret: the one primitive behind every Pusher signature. */
function hmacBytes(secret: string, text: string): Buffer {
  return createHmac('sha256', hmacKey(secret)).update(text, 'utf8').digest();
}

/** Hex HMAC-SHA256 of `text` under the app's secret. */
export function hmacHex(secret: string, text: string): string {
  return hmacBytes(secret, text).toString('hex');
}

/** MD5 hex of a request body, over the bytes received (a string counts as its UTF-8 bytes). */
export function md5Hex(body: string | Uint8Array): string {
  return hash('md5', typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength), 'hex');
}

/** Whether `given` is the lower-case hex of `digest`, in time that does not depend on where they differ. */
function digestMatches(digest: Buffer, given: string): boolean {
  if (given.length !== digest.length * 2) return false;
  for (let i = 0; i < given.length; i++) {
    const c = given.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return timingSafeEqual(digest, Buffer.from(given, 'hex'));
}

/**
 * Equality that takes the same time wherever the strings first differ. Only the length can leak, and every
 * value compared here (hex digests) has a length that is public anyway.
 */
export function safeEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---- socket ids ------------------------------------------------------------------------------------------------

/** Longest socket id accepted from outside (two 20-digit numbers and the dot); ours are shorter. */
export const MAX_SOCKET_ID_LENGTH = 41;

/**
 * A fresh socket id in Pusher's `\d+\.\d+` form, from 64 random bits: ids must not collide across gateways
 * (the HTTP API's `socket_id` exclusion and client events name a connection by it).
 */
export function generateSocketId(): string {
  const bytes = randomBytes(8);
  return `${bytes.readUInt32BE(0)}.${bytes.readUInt32BE(4)}`;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Whether a value from outside is a socket id: ASCII digits, one dot, ASCII digits, bounded length. */
export function isSocketId(value: unknown): value is string {
  if (typeof value !== 'string' || value.length < 3 || value.length > MAX_SOCKET_ID_LENGTH) return false;
  const dot = value.indexOf('.');
  if (dot < 1 || dot === value.length - 1) return false;
  for (let i = 0; i < value.length; i++) if (i !== dot && !isDigit(value.charCodeAt(i))) return false;
  return true;
}

// ---- channel authorization and user sign-in (WebSocket side) ----------------------------------------------------

/** Outcome of a check on a client's signature: ok, or pusher:error 4009 with a message saying what is wrong. */
export type AuthCheck = { ok: true } | { ok: false; code: 4009; message: string };

const AUTH_OK: AuthCheck = { ok: true };

function unauthorized(message: string): AuthCheck {
  return { ok: false, code: 4009, message };
}

/** Longest `auth` string looked at: a key (≤ 200) + ':' + 64 hex digits, with room to spare. */
const MAX_AUTH_LENGTH = 512;

/** The text a channel authorization signs: `socket_id:channel[:channel_data]`. */
export function channelAuthText(socketId: string, channel: string, channelData?: string): string {
  return channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
}

/** The `auth` value a backend returns for a channel (what the `pusher` library's authorizeChannel computes). */
export function signChannelAuth(app: PusherApp, socketId: string, channel: string, channelData?: string): string {
  return `${app.key}:${hmacHex(app.secret, channelAuthText(socketId, channel, channelData))}`;
}

/** The `auth` value for `pusher:signin`: the signed text is `socket_id::user::user_data`. */
export function signUserAuth(app: PusherApp, socketId: string, userData: string): string {
  return `${app.key}:${hmacHex(app.secret, `${socketId}::user::${userData}`)}`;
}

function checkAuth(app: PusherApp, auth: unknown, text: () => string, what: string): AuthCheck {
  if (typeof auth !== 'string' || auth === '') return unauthorized(`${what} needs an "auth" signature`);
  if (auth.length > MAX_AUTH_LENGTH) return unauthorized(`"auth" is longer than ${MAX_AUTH_LENGTH} characters`);
  const colon = auth.indexOf(':');
  if (colon === -1) return unauthorized('"auth" must be "<app key>:<signature>"');
  if (!safeEqual(app.key, auth.slice(0, colon))) return unauthorized('"auth" was signed for another app key');
  if (!digestMatches(hmacBytes(app.secret, text()), auth.slice(colon + 1))) return unauthorized(`invalid signature for ${what}`);
  return AUTH_OK;
}

/**
 * Checks the `auth` of a `pusher:subscribe` to a private, private-encrypted or presence channel. `channelData`
 * is signed whenever the client sent it (presence channels always do); a value that is not a string fails.
 */
export function verifyChannelAuth(app: PusherApp, socketId: string, channel: string, auth: unknown, channelData?: unknown): AuthCheck {
  if (channelData !== undefined && typeof channelData !== 'string') return unauthorized('"channel_data" must be a string');
  // HMAC input is UTF-8: a lone surrogate would be signed as U+FFFD, so two different strings would share one
  // signature. Only well-formed text is accepted, so the signed bytes and the string used are the same thing.
  if (channelData !== undefined && !channelData.isWellFormed()) return unauthorized('"channel_data" is not well-formed Unicode');
  return checkAuth(app, auth, () => channelAuthText(socketId, channel, channelData), `channel ${channel}`);
}

/** Checks the `auth` of a `pusher:signin` over the exact `user_data` string the client sent. */
export function verifyUserAuth(app: PusherApp, socketId: string, userData: unknown, auth: unknown): AuthCheck {
  if (typeof userData !== 'string') return unauthorized('"user_data" must be a string');
  if (!userData.isWellFormed()) return unauthorized('"user_data" is not well-formed Unicode');
  return checkAuth(app, auth, () => `${socketId}::user::${userData}`, 'sign-in');
}

// ---- HTTP API requests --------------------------------------------------------------------------------------------

/** A request to the Pusher HTTP API as received: nothing decoded, nothing trusted. */
export interface ApiRequest {
  /** HTTP method as received (compared in upper case). */
  readonly method: string;
  /** Path as received, without the query string: it is signed as is. */
  readonly path: string;
  /** Raw query string, without the leading '?'. */
  readonly query: string;
  /** Raw body bytes (or their UTF-8 text); absent or empty for a bodiless request. */
  readonly body?: string | Uint8Array;
}

/** Request parameters after a successful check: keys lower-cased, values decoded, each key at most once. */
export type ApiParams = ReadonlyMap<string, string>;

export type ApiAuthResult = { ok: true; params: ApiParams } | { ok: false; status: 400 | 401; message: string };

export interface ApiAuthOptions {
  /** Current time in milliseconds (tests pin it). */
  nowMs?: number;
  /** How far `auth_timestamp` may be from now, in seconds. Pusher's: 600. */
  maxSkewSeconds?: number;
}

export const API_MAX_SKEW_SECONDS = 600;
/** Query strings longer than this are refused before parsing (they are far beyond any real request). */
export const MAX_API_QUERY_LENGTH = 16 * 1024;
/** More parameters than this are refused: a real request carries about ten. */
export const MAX_API_PARAMS = 64;

const MD5_OF_EMPTY = 'd41d8cd98f00b204e9800998ecf8427e';

function badRequest(message: string): ApiAuthResult {
  return { ok: false, status: 400, message };
}

function apiUnauthorized(message: string): ApiAuthResult {
  return { ok: false, status: 401, message };
}

/**
 * Splits a raw query string into lower-cased keys and decoded values (form encoding: '+' is a space), refusing a
 * key given twice: the handler and the signature must read the same value, whichever copy each would pick.
 */
/** Form-decodes one query component; most hold neither '%' nor '+' and are returned as they are (the hot path). */
function unescapeQuery(text: string): string {
  if (text.indexOf('%') === -1 && text.indexOf('+') === -1) return text;
  return decodeURIComponent(text.replaceAll('+', ' '));
}

function parseQuery(query: string): Map<string, string> | string {
  const params = new Map<string, string>();
  if (query === '') return params;
  let count = 0;
  for (const part of query.split('&')) {
    if (part === '') continue;
    if (++count > MAX_API_PARAMS) return `more than ${MAX_API_PARAMS} query parameters`;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    let key: string;
    let value: string;
    try {
      key = unescapeQuery(rawKey).toLowerCase();
      value = unescapeQuery(rawValue);
    } catch {
      return 'query string holds a malformed %-escape';
    }
    if (key === '') return 'query string holds a parameter without a name';
    if (params.has(key)) return `query parameter "${key}" given more than once`;
    params.set(key, value);
  }
  return params;
}

/** The text an HTTP API request signs: METHOD \n path \n sorted `k=v` pairs (all but auth_signature), unescaped. */
export function apiSigningText(method: string, path: string, params: ReadonlyMap<string, string>): string {
  const keys: string[] = [];
  for (const k of params.keys()) if (k !== 'auth_signature') keys.push(k);
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let text = `${method.toUpperCase()}\n${path}\n`;
  for (let i = 0; i < keys.length; i++) text += `${i === 0 ? '' : '&'}${keys[i]}=${params.get(keys[i])}`;
  return text;
}

/**
 * Checks a signed Pusher HTTP API request against `app`. Never throws: whatever arrives, the answer is ok (with
 * the parsed parameters) or an HTTP status with a message. 400 = the request cannot be read (duplicate or
 * malformed parameters); 401 = it is not proven to come from the app's backend (missing or wrong auth_*,
 * body_md5, stale timestamp, bad signature). The signature is compared in constant time.
 */
export function verifyApiRequest(app: PusherApp, req: ApiRequest, options: ApiAuthOptions = {}): ApiAuthResult {
  // Typed, but callers pass what the network gave them: check the shapes anyway.
  const { method, path, query, body } = req as { method: unknown; path: unknown; query: unknown; body: unknown };
  if (typeof method !== 'string' || method === '' || method.length > 16) return badRequest('unreadable request method');
  if (typeof path !== 'string' || path === '' || path.length > 4096 || !path.isWellFormed()) return badRequest('unreadable request path');
  if (typeof query !== 'string' || !query.isWellFormed()) return badRequest('unreadable query string');
  let bytes: string | Uint8Array | undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) bytes = body;
  else if (body !== undefined) return badRequest('unreadable request body');
  if (query.length > MAX_API_QUERY_LENGTH) return badRequest(`query string longer than ${MAX_API_QUERY_LENGTH} characters`);

  const params = parseQuery(query);
  if (typeof params === 'string') return badRequest(params);

  for (const name of ['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature']) {
    if (!params.has(name)) return apiUnauthorized(`missing ${name}`);
  }
  if (!safeEqual(app.key, params.get('auth_key') as string)) return apiUnauthorized('auth_key does not match the app');
  if (params.get('auth_version') !== '1.0') return apiUnauthorized('auth_version must be 1.0');

  const timestamp = params.get('auth_timestamp') as string;
  if (!/^[0-9]{1,12}$/.test(timestamp)) return apiUnauthorized('auth_timestamp must be Unix seconds');
  const skew = Math.abs((options.nowMs ?? Date.now()) / 1000 - Number(timestamp));
  const maxSkew = options.maxSkewSeconds ?? API_MAX_SKEW_SECONDS;
  if (skew > maxSkew) return apiUnauthorized(`auth_timestamp is more than ${maxSkew} s from the server's clock; check the clock of the sender`);

  const hasBody = bytes !== undefined && bytes.length > 0;
  const givenMd5 = params.get('body_md5');
  if (hasBody && givenMd5 === undefined) return apiUnauthorized('missing body_md5 for a request with a body');
  if (givenMd5 !== undefined && !safeEqual(bytes !== undefined && hasBody ? md5Hex(bytes) : MD5_OF_EMPTY, givenMd5)) {
    return apiUnauthorized('body_md5 does not match the body');
  }

  if (!digestMatches(hmacBytes(app.secret, apiSigningText(method, path, params)), params.get('auth_signature') as string)) {
    return apiUnauthorized('invalid auth_signature');
  }
  return { ok: true, params };
}

// ---- webhooks -----------------------------------------------------------------------------------------------------

/** Headers that prove a webhook body came from us: the receiver recomputes the HMAC of the exact body bytes. */
export function webhookSignatureHeaders(app: PusherApp, body: string): { 'X-Pusher-Key': string; 'X-Pusher-Signature': string } {
  return { 'X-Pusher-Key': app.key, 'X-Pusher-Signature': hmacHex(app.secret, body) };
}
