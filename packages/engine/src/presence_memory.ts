// Presence held in memory for the memory engine: per channel, client id → info with an expiry time.
import type { PresenceStats } from './broker';
import { userOfInfo } from './presence';

interface Entry {
  info: string;
  expiresAt: number;
}

export class MemoryPresence {
  private readonly channels = new Map<string, Map<string, Entry>>();

  add(channel: string, entries: [client: string, info: string][], ttlMs: number, now: number): void {
    if (entries.length === 0) return;
    let clients = this.channels.get(channel);
    if (!clients) {
      clients = new Map();
      this.channels.set(channel, clients);
    }
    const expiresAt = now + ttlMs;
    for (const [client, info] of entries) clients.set(client, { info, expiresAt });
  }

  remove(channel: string, clients: string[]): void {
    const entries = this.channels.get(channel);
    if (!entries) return;
    for (const client of clients) entries.delete(client);
    if (entries.size === 0) this.channels.delete(channel);
  }

  entries(channel: string, now: number): Map<string, string> {
    const result = new Map<string, string>();
    for (const [client, entry] of this.live(channel, now)) result.set(client, entry.info);
    return result;
  }

  stats(channel: string, now: number): PresenceStats {
    const live = this.live(channel, now);
    const users = new Set<string>();
    for (const entry of live.values()) users.add(userOfInfo(entry.info));
    return { numClients: live.size, numUsers: users.size };
  }

  /** Drops every expired entry, so channels nobody reads do not hold memory. */
  sweep(now: number): void {
    for (const channel of this.channels.keys()) this.live(channel, now);
  }

  /** The channel's entries after dropping expired ones (an entry expiring exactly now is gone). */
  private live(channel: string, now: number): Map<string, Entry> {
    const entries = this.channels.get(channel);
    if (!entries) return new Map();
    for (const [client, entry] of entries) {
      if (entry.expiresAt <= now) entries.delete(client);
    }
    if (entries.size === 0) this.channels.delete(channel);
    return entries;
  }

  /** Channels holding entries (tests check that sweeping frees them). */
  get size(): number {
    return this.channels.size;
  }
}
