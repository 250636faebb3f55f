// Presence held in memory for the memory engine: per channel, client id → info with an expiry time, and how many
// live entries each user has (so a user's first and last entry are told apart, as in lua/presence_update.lua).
// One MemoryPresence serves every caller of one MemoryBroker, which is a whole cluster.
import type { JoinLeaveScope } from './broker';
import type { Presence, PresenceEntry, PresenceLeave, PresenceStats, PresenceUpdate } from './presence';
import { emptyPresenceUpdate, MAX_EXPIRED_PER_CALL, presenceTtlMs, removalAnnouncement, userOfInfo } from './presence';

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

/**
 * Delivers a join or leave on the channel through the broker's join/leave path, queued in order with its
 * publications (MemoryBroker.deliverJoinLeave).
 */
export type Announce = (channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope) => void;

export class MemoryPresence implements Presence {
  private readonly channels = new Map<string, ChannelPresence>();
  /** Runs while some channel holds entries. */
  private sweeper: NodeJS.Timeout | undefined;

  /** `sweepIntervalMs`: how often expired entries nobody writes over are dropped (and announced). */
  constructor(
    private readonly announce: Announce,
    private readonly sweepIntervalMs = 10_000,
  ) {}

  async addPresence(channel: string, entries: PresenceEntry[], ttlSeconds: number): Promise<PresenceUpdate> {
    const ttlMs = presenceTtlMs(ttlSeconds);
    const now = Date.now();
    const update = emptyPresenceUpdate();
    if (entries.length === 0) return update;
    let state = this.channels.get(channel);
    if (!state) {
      state = { entries: new Map(), users: new Map() };
      this.channels.set(channel, state);
      this.startSweeper();
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

  async removePresence(channel: string, clients: string[], leave?: PresenceLeave): Promise<PresenceUpdate> {
    const now = Date.now();
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

  async expirePresence(channel: string): Promise<PresenceUpdate> {
    return this.expire(channel, Date.now());
  }

  async presence(channel: string): Promise<Map<string, string>> {
    const now = Date.now();
    const result = new Map<string, string>();
    const state = this.channels.get(channel);
    if (!state) return result;
    for (const [client, entry] of state.entries) if (entry.expiresAt > now) result.set(client, entry.info);
    return result;
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    const now = Date.now();
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
  private sweep(now: number): void {
    // expire() takes at most MAX_EXPIRED_PER_CALL entries at a time, like the Redis script.
    for (const channel of [...this.channels.keys()]) while (this.hasExpired(channel, now)) this.expire(channel, now);
    if (this.channels.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Channels holding entries (tests check that sweeping frees them). */
  get size(): number {
    return this.channels.size;
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(Date.now()), this.sweepIntervalMs);
    this.sweeper.unref();
  }

  private expire(channel: string, now: number): PresenceUpdate {
    const update = emptyPresenceUpdate();
    const state = this.channels.get(channel);
    if (!state) return update;
    this.dropExpired(channel, state, now, update);
    if (state.entries.size === 0) this.channels.delete(channel);
    return update;
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
