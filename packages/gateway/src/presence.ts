// Keeps this gateway's presence entries alive in the engine (added on subscribe, refreshed, removed on leave) and
// learns from the engine which users joined or left: a user's first connection on a channel, cluster-wide, and its last.
import type { Broker, Presence, PresenceStats, PresenceUpdate } from '@switchboard/engine';
import { encodePresenceResult, encodePresenceStatsResult } from '@switchboard/protocol';
import type { Logger } from 'pino';

/** Told of each user that joins or leaves a channel, once per cluster (webhooks listen here). */
export interface MemberListener {
  joined(channel: string, info: string): void;
  left(channel: string, info: string): void;
}

interface LocalEntry {
  info: string;
  /** Announce this connection's own join and leave (the namespace's join_leave), not only its user's. */
  joinLeave: boolean;
  /** The engine counted it as its user's first entry. */
  first: boolean;
  /** Its join was announced (the subscribe reply went out). */
  started: boolean;
  /** Set once the engine answered the add: until then a removal waits for it, to know whether the entry was first. */
  added: Promise<unknown> | undefined;
}

export class PresenceTracker {
  /** channel → client id → entry, for the local subscribers of presence channels. */
  private readonly local = new Map<string, Map<string, LocalEntry>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlSeconds: number;
  private listener: MemberListener | undefined;
  private readonly removing = new Set<Promise<void>>();

  constructor(
    private readonly presence: Presence,
    /** Where the joins of revived entries are announced (see revive). */
    private readonly joinLeave: Pick<Broker, 'publishJoinLeave'>,
    private readonly logger: Logger,
    ttlMs: number,
  ) {
    this.ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    // Refreshed three times per TTL, so one late refresh does not drop anyone.
    this.timer = setInterval(() => void this.refresh(), Math.max(200, ttlMs / 3));
    this.timer.unref();
  }

  /** The single listener of users joining and leaving. */
  onMembers(listener: MemberListener): void {
    this.listener = listener;
  }

  async add(channel: string, client: string, info: string, joinLeave: boolean): Promise<void> {
    let clients = this.local.get(channel);
    if (!clients) this.local.set(channel, (clients = new Map()));
    const entry: LocalEntry = { info, joinLeave, first: false, started: false, added: undefined };
    clients.set(client, entry);
    const adding = (async () => {
      try {
        const update = await this.presence.addPresence(channel, [[client, info]], this.ttlSeconds);
        entry.first = update.first.includes(client);
        this.report(channel, update);
      } finally {
        entry.added = undefined;
      }
    })();
    entry.added = adding.catch(() => undefined);
    await adding;
  }

  /**
   * The connection's join is about to be announced: returns true when it is its user's first connection on the
   * channel, so the caller announces the user's join with it.
   */
  start(channel: string, client: string): boolean {
    const entry = this.local.get(channel)?.get(client);
    if (!entry) return false;
    entry.started = true;
    if (entry.first) this.listener?.joined(channel, entry.info);
    return entry.first;
  }

  /** Removes the entry; the engine announces its leave (and its user's, when it was the last) with the removal. */
  remove(channel: string, client: string): void {
    const clients = this.local.get(channel);
    const entry = clients?.get(client);
    if (!clients || !entry) return;
    clients.delete(client);
    if (clients.size === 0) this.local.delete(channel);
    const removeNow = (): Promise<void> =>
      this.presence.removePresence(channel, [client], { started: entry.started, first: entry.first, clientLeaves: entry.joinLeave }).then(
        (update) => this.report(channel, update),
        (err: Error) => {
          // The entry expires by itself after the TTL, and its leave is announced then.
          this.logger.debug({ channel, client, err: err.message }, 'presence remove failed');
        },
      );
    // Sent at once when it can be, ahead of whatever the caller sends next about the channel (its vacancy). A
    // connection that closes while its subscribe is in flight waits for the add's answer, which says what to announce.
    const removing = entry.added ? entry.added.then(removeNow) : removeNow();
    this.removing.add(removing);
    void removing.finally(() => this.removing.delete(removing));
  }

  /** Resolves once every removal sent so far was answered (a gateway shutting down waits, for their webhooks). */
  async settled(): Promise<void> {
    await Promise.all([...this.removing]);
  }

  /** Drops the expired entries of a channel no gateway writes to any more (a sweeper's call), announcing their leaves. */
  async expire(channel: string): Promise<void> {
    this.report(channel, await this.presence.expirePresence(channel));
  }

  /** Live entries of a channel, cluster-wide. */
  async live(channel: string): Promise<number> {
    return (await this.presence.presenceStats(channel)).numClients;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const calls = [...this.local].map(async ([channel, clients]) => {
      const entries = [...clients].map(([client, entry]): [string, string] => [client, entry.info]);
      try {
        const update = await this.presence.addPresence(channel, entries, this.ttlSeconds);
        this.revive(channel, clients, update);
        this.report(channel, update);
      } catch (err) {
        this.logger.debug({ channel, err: (err as Error).message }, 'presence refresh failed');
      }
    });
    await Promise.all(calls);
  }

  /**
   * Entries that were gone when refreshed (this gateway missed refreshes for a TTL, and their leaves went out) are
   * back: their joins are announced again.
   */
  private revive(channel: string, clients: Map<string, LocalEntry>, update: PresenceUpdate): void {
    for (const client of update.added) {
      const entry = clients.get(client);
      if (!entry?.started) continue;
      entry.first = update.first.includes(client);
      const scope = entry.first ? (entry.joinLeave ? 'user' : 'user-only') : entry.joinLeave ? 'client' : undefined;
      if (entry.first) this.listener?.joined(channel, entry.info);
      if (scope === undefined) continue;
      this.joinLeave.publishJoinLeave(channel, 'join', entry.info, scope).catch((err: Error) => {
        this.logger.debug({ channel, err: err.message }, 'join message failed');
      });
    }
  }

  private report(channel: string, update: PresenceUpdate): void {
    if (!this.listener) return;
    for (const [, info] of update.joined) this.listener.joined(channel, info);
    for (const [, info] of update.left) this.listener.left(channel, info);
  }
}

/** The `presence` result: client id → ClientInfo, built from the stored encodings without re-encoding them. */
export function encodePresence(entries: Map<string, string>): string {
  return encodePresenceResult({ presence: entries });
}

/** The `presence_stats` result; both counts are sent even when 0. */
export function encodePresenceStats(stats: PresenceStats): string {
  return encodePresenceStatsResult({ num_clients: stats.numClients, num_users: stats.numUsers });
}
