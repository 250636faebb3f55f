// Presence in Redis: per channel, two hashes and a sorted set under its hash tag, written by lua/presence_update.lua
// (which announces joins and leaves on the channel's pub/sub in the same step) and read by lua/presence_get.lua.
import type { RedisBroker } from './broker_redis';
import type { Presence, PresenceEntry, PresenceLeave, PresenceStats, PresenceUpdate } from './presence';
import { EXPIRED_KEY_GRACE_MS, emptyPresenceUpdate, MAX_EXPIRED_PER_CALL, presenceTtlMs, userOfInfo } from './presence';
import { presenceKeys, redisPubSubChannel } from './redis_keys';
import type { PresenceUpdateReply } from './redis_scripts';

export class RedisPresence implements Presence {
  constructor(private readonly broker: RedisBroker) {}

  async addPresence(channel: string, entries: PresenceEntry[], ttlSeconds: number): Promise<PresenceUpdate> {
    const ttlMs = presenceTtlMs(ttlSeconds);
    if (entries.length === 0) return emptyPresenceUpdate();
    // The user is read here rather than in Lua: a refresh of thousands of entries costs the shared Redis nothing.
    const triples: string[] = new Array(entries.length * 3);
    for (let i = 0; i < entries.length; i++) {
      triples[3 * i] = entries[i][0];
      triples[3 * i + 1] = userOfInfo(entries[i][1]);
      triples[3 * i + 2] = entries[i][1];
    }
    return this.update(channel, ['add', ttlMs, EXPIRED_KEY_GRACE_MS, ...triples]);
  }

  removePresence(channel: string, clients: string[], leave?: PresenceLeave): Promise<PresenceUpdate> {
    const flags = leave ? ['1', leave.started ? '1' : '0', leave.first ? '1' : '0', leave.clientLeaves ? '1' : '0'] : ['0', '0', '0', '0'];
    return this.update(channel, ['remove', ...flags, ...clients]);
  }

  expirePresence(channel: string): Promise<PresenceUpdate> {
    return this.update(channel, ['expire']);
  }

  async presence(channel: string): Promise<Map<string, string>> {
    const conn = this.broker.connectionFor(channel);
    const keys = presenceKeys(channel, this.broker.keyPrefix);
    try {
      const flat = await conn.commands().sbPresenceGet(keys.entries, keys.expiry, 'entries');
      const result = new Map<string, string>();
      for (let i = 0; i < flat.length; i += 2) result.set(flat[i], flat[i + 1]);
      return result;
    } catch (err) {
      throw conn.commandError(err);
    }
  }

  async presenceStats(channel: string): Promise<PresenceStats> {
    const conn = this.broker.connectionFor(channel);
    const keys = presenceKeys(channel, this.broker.keyPrefix);
    try {
      const [numClients, numUsers] = await conn.commands().sbPresenceGet(keys.entries, keys.expiry, 'stats');
      return { numClients, numUsers };
    } catch (err) {
      throw conn.commandError(err);
    }
  }

  /**
   * One presence script call. It runs on the channel's command connection, the one that carries its publish
   * scripts, so the joins and leaves it publishes reach subscribers in order with the channel's publications.
   */
  private async update(channel: string, args: (string | number)[]): Promise<PresenceUpdate> {
    const conn = this.broker.connectionFor(channel);
    const prefix = this.broker.keyPrefix;
    const keys = presenceKeys(channel, prefix);
    const [op, ...rest] = args;
    let reply: PresenceUpdateReply;
    try {
      reply = await conn
        .commands()
        .sbPresenceUpdate(keys.entries, keys.expiry, keys.users, op, redisPubSubChannel(channel, prefix), this.broker.publishCommand, MAX_EXPIRED_PER_CALL, ...rest);
    } catch (err) {
      throw conn.commandError(err);
    }
    const [first, added, joined, left] = reply;
    return { first, added, joined: pairsOf(joined), left: pairsOf(left) };
  }
}

/** A flat {client, info, …} reply as entries. */
function pairsOf(flat: string[]): PresenceEntry[] {
  const out: PresenceEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}
