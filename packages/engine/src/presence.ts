// Presence rules both engines share: TTL checks and which user an entry belongs to.

/** A presence TTL in whole milliseconds; throws on a TTL that can only come from a bug in the caller. */
export function presenceTtlMs(ttlSeconds: number): number {
  const ms = Math.ceil(ttlSeconds * 1000);
  if (!(ms > 0) || !Number.isSafeInteger(ms)) throw new Error(`presence ttlSeconds must be > 0, got ${ttlSeconds}`);
  return ms;
}

/**
 * The user of an encoded ClientInfo (`{"user":"…","client":"…",…}`). An info without a string `user` counts as
 * the anonymous user '', like in lua/presence_get.lua, so both engines count users alike.
 */
export function userOfInfo(info: string): string {
  try {
    const parsed: unknown = JSON.parse(info);
    if (typeof parsed === 'object' && parsed !== null && 'user' in parsed && typeof parsed.user === 'string') return parsed.user;
  } catch {
    // not JSON: anonymous
  }
  return '';
}
