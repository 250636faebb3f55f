// Presence: who is on a channel, cluster-wide, with each user's first and last entry told apart and joins and leaves
// announced on the channel's join/leave path (see Broker.onJoinLeave); and the rules both engines share.
import type { JoinLeaveScope } from './broker';

export interface PresenceStats {
  numClients: number;
  numUsers: number;
}

/** A presence entry: client id and its encoded ClientInfo. */
export type PresenceEntry = [client: string, info: string];

/**
 * What a presence write did to the channel's users. Each engine keeps, per channel, how many live entries each user
 * has, and changes it atomically with the entries, so of many gateways adding and removing entries of one user
 * exactly one sees the count go 0 → 1 and exactly one sees it go 1 → 0.
 */
export interface PresenceUpdate {
  /** Clients this call added as their user's first live entry on the channel: the caller announces the user's join. */
  first: string[];
  /** Clients this call added that had no live entry (on a refresh: an entry that was gone and is back). */
  added: string[];
  /** User joins this call announced on the channel itself (scope 'user-only'). */
  joined: PresenceEntry[];
  /** User leaves this call announced itself: entries removed or expired that were their user's last. */
  left: PresenceEntry[];
}

/** How `removePresence` announces the leave of each entry it removes (atomically with the removal). */
export interface PresenceLeave {
  /** The entry's join was announced: its leave is too ('user' when it was its user's last entry, else 'client'). */
  started: boolean;
  /** Its add reported it as its user's first entry (PresenceUpdate.first). */
  first: boolean;
  /** Announce connections that leave while their user stays ('client'); without it only users are announced. */
  clientLeaves: boolean;
}

/**
 * The presence of channels: entries (client id → encoded ClientInfo) that gateways add, refresh and remove, each
 * expiring after its TTL unless refreshed, so the entries of a gateway that died go by themselves.
 */
export interface Presence {
  // Presence writes first drop the channel's expired entries (a gateway that died left them) and announce each as a
  // leave ('user' when it was its user's last entry, else 'client'), in order with the channel's other joins and
  // leaves; an entry the same call adds again is refreshed instead.
  /** Adds or refreshes presence entries (client id → encoded ClientInfo); each lives `ttlSeconds` unless refreshed. */
  addPresence(channel: string, entries: PresenceEntry[], ttlSeconds: number): Promise<PresenceUpdate>;
  /** Removes entries; with `leave`, announces their leaves as PresenceLeave says, atomically with the removal. */
  removePresence(channel: string, clients: string[], leave?: PresenceLeave): Promise<PresenceUpdate>;
  /** Only drops (and announces) the expired entries: how a channel nobody writes to learns its members left. */
  expirePresence(channel: string): Promise<PresenceUpdate>;
  /** Live presence entries: client id → encoded ClientInfo. Expired entries are never returned (nor dropped). */
  presence(channel: string): Promise<Map<string, string>>;
  /** Counts of live entries and of distinct users among them. */
  presenceStats(channel: string): Promise<PresenceStats>;
}

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
