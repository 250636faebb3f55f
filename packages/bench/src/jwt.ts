// HS256 connection tokens signed with node:crypto: a few microseconds each, so thousands can be made before a run.
import { createHmac } from 'node:crypto';

const HEADER = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');

export function hs256Token(secret: string, claims: Record<string, unknown>): string {
  const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** A connection token for user `sub` valid for `ttlSeconds`. */
export function connectionToken(secret: string, sub: string, ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  return hs256Token(secret, { sub, iat: now, exp: now + ttlSeconds });
}
