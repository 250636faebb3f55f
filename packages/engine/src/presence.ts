// Presence rules both engines share: TTL checks, which user an entry belongs to, what a removal announces.
import type { JoinLeaveScope, PresenceLeave, PresenceUpdate } from './broker';

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

/**
 * What the removal of an entry announces, or undefined for nothing; `last`: it was its user's last live entry.
 * lua/presence_update.lua applies the same rule in Redis.
 */
export function removalAnnouncement(leave: PresenceLeave, last: boolean): { kind: 'join' | 'leave'; scope: JoinLeaveScope } | undefined {
  if (leave.started) {
    if (last) return { kind: 'leave', scope: leave.clientLeaves ? 'user' : 'user-only' };
    return leave.clientLeaves ? { kind: 'leave', scope: 'client' } : undefined;
  }
  // Never announced: only the user's own change is, when this entry stood for it alone.
  if (leave.first && !last) return { kind: 'join', scope: 'user-only' };
  if (!leave.first && last) return { kind: 'leave', scope: 'user-only' };
  return undefined;
}

/** An update that changed nothing; callers fill in what they saw. */
export function emptyPresenceUpdate(): PresenceUpdate {
  return { first: [], added: [], joined: [], left: [] };
}

/**
 * Presence and occupancy keys outlive their last entry by this much, so a sweeper that comes by after the entries
 * expired still finds them and announces the leaves; keys nobody sweeps vanish after it.
 */
export const EXPIRED_KEY_GRACE_MS = 5 * 60_000;

/** At most this many expired entries are dropped (and announced) by one call; the next call takes the rest. */
export const MAX_EXPIRED_PER_CALL = 1000;
