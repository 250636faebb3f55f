// Presence held in memory for the memory engine: per channel, client id → info with an expiry time, and how many
// live entries each user has (so a user's first and last entry are told apart, as in lua/presence_update.lua).
import type { JoinLeaveScope, PresenceEntry, PresenceLeave, PresenceStats, PresenceUpdate } from './broker';
import { emptyPresenceUpdate, MAX_EXPIRED_PER_CALL, removalAnnouncement, userOfInfo } from './presence';

interface Entry {
  info: string;
  user: string;
  expiresAt: number;
}

interface ChannelPresence {
  entries: Map<string, Entry>;
  /** user → number of entries (live or expired but not dropped yet) */
  users: Map<string, number>;
}

/** Delivers a join or leave on the channel (the broker's join/leave path). */
export type Announce = (channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope) => void;

export class MemoryPresence {
  private readonly channels = new Map<string, ChannelPresence>();

  constructor(private readonly announce: Announce) {}

  add(channel: string, entries: PresenceEntry[], ttlMs: number, now: number): PresenceUpdate {
    const update = emptyPresenceUpdate();
    if (entries.length === 0) return update;
    let state = this.channels.get(channel);
    if (!state) {
      state = { entries: new Map(), users: new Map() };
      this.channels.set(channel, state);
    }
    this.dropExpired(channel, state, now, update, new Set(entries.map(([client]) => client)));
    const expiresAt = now + ttlMs;
    for (const [client, info] of entries) {
      const old = state.entries.get(client);
      const user = old?.info === info ? old.user : userOfInfo(info);
      state.entries.set(client, { info, user, expiresAt });
      if (old && old.user === user) continue;
      if (old && this.dropUser(state, old.user)) {
        this.announce(channel, 'leave', old.info, 'user-only');
        update.left.push([client, old.info]);
      }
      if (!old) update.added.push(client);
      if (this.addUser(state, user)) update.first.push(client);
    }
    return update;
  }

  remove(channel: string, clients: string[], leave: PresenceLeave | undefined, now: number): PresenceUpdate {
    const update = emptyPresenceUpdate();
    const state = this.channels.get(channel);
    if (!state) return update;
    this.dropExpired(channel, state, now, update);
    for (const client of clients) {
      const entry = state.entries.get(client);
      if (!entry) continue;
      state.entries.delete(client);
      const last = this.dropUser(state, entry.user);
      const said = leave && removalAnnouncement(leave, last);
      if (!said) continue;
      this.announce(channel, said.kind, entry.info, said.scope);
      if (said.kind === 'join') update.joined.push([client, entry.info]);
      else if (last) update.left.push([client, entry.info]);
    }
    if (state.entries.size === 0) this.channels.delete(channel);
    return update;
  }

  expire(channel: string, now: number): PresenceUpdate {
    const update = emptyPresenceUpdate();
    const state = this.channels.get(channel);
    if (!state) return update;
    this.dropExpired(channel, state, now, update);
    if (state.entries.size === 0) this.channels.delete(channel);
    return update;
  }

  entries(channel: string, now: number): Map<string, string> {
    const result = new Map<string, string>();
    const state = this.channels.get(channel);
    if (!state) return result;
    for (const [client, entry] of state.entries) if (entry.expiresAt > now) result.set(client, entry.info);
    return result;
  }

  stats(channel: string, now: number): PresenceStats {
    const state = this.channels.get(channel);
    if (!state) return { numClients: 0, numUsers: 0 };
    const users = new Set<string>();
    let numClients = 0;
    for (const entry of state.entries.values()) {
      if (entry.expiresAt <= now) continue;
      numClients++;
      users.add(entry.user);
    }
    return { numClients, numUsers: users.size };
  }

  /** Drops (and announces) every expired entry, so channels nobody writes to do not hold memory. */
  sweep(now: number): void {
    // expire() takes at most MAX_EXPIRED_PER_CALL entries at a time, like the Redis script.
    for (const channel of [...this.channels.keys()]) while (this.hasExpired(channel, now)) this.expire(channel, now);
  }

  /** Channels holding entries (tests check that sweeping frees them). */
  get size(): number {
    return this.channels.size;
  }

  private hasExpired(channel: string, now: number): boolean {
    const state = this.channels.get(channel);
    if (!state) return false;
    for (const entry of state.entries.values()) if (entry.expiresAt <= now) return true;
    return false;
  }

  /** An entry expiring exactly now is gone, as in Redis; `keep`: clients the caller is adding again. */
  private dropExpired(channel: string, state: ChannelPresence, now: number, update: PresenceUpdate, keep?: ReadonlySet<string>): void {
    let dropped = 0;
    for (const [client, entry] of state.entries) {
      if (entry.expiresAt > now || keep?.has(client)) continue;
      if (dropped++ === MAX_EXPIRED_PER_CALL) break;
      state.entries.delete(client);
      const last = this.dropUser(state, entry.user);
      this.announce(channel, 'leave', entry.info, last ? 'user' : 'client');
      if (last) update.left.push([client, entry.info]);
    }
  }

  /** One more entry of `user`; true when it is the first. */
  private addUser(state: ChannelPresence, user: string): boolean {
    const n = (state.users.get(user) ?? 0) + 1;
    state.users.set(user, n);
    return n === 1;
  }

  /** One entry fewer of `user`; true when it was the last. */
  private dropUser(state: ChannelPresence, user: string): boolean {
    const n = (state.users.get(user) ?? 0) - 1;
    if (n > 0) {
      state.users.set(user, n);
      return false;
    }
    state.users.delete(user);
    return true;
  }
}
