// Keeps this gateway's presence entries alive in the engine: added on subscribe, refreshed, removed on leave.
import type { Broker, PresenceStats } from '@switchboard/engine';
import type { Logger } from 'pino';

export class PresenceTracker {
  /** channel → client id → encoded ClientInfo, for the local subscribers of presence channels. */
  private readonly local = new Map<string, Map<string, string>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlSeconds: number;

  constructor(
    private readonly broker: Broker,
    private readonly logger: Logger,
    ttlMs: number,
  ) {
    this.ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    // Refreshed three times per TTL, so one late refresh does not drop anyone.
    this.timer = setInterval(() => void this.refresh(), Math.max(200, ttlMs / 3));
    this.timer.unref();
  }

  async add(channel: string, client: string, info: string): Promise<void> {
    let clients = this.local.get(channel);
    if (!clients) this.local.set(channel, (clients = new Map()));
    clients.set(client, info);
    await this.broker.addPresence(channel, [[client, info]], this.ttlSeconds);
  }

  remove(channel: string, client: string): void {
    const clients = this.local.get(channel);
    if (!clients?.delete(client)) return;
    if (clients.size === 0) this.local.delete(channel);
    this.broker.removePresence(channel, [client]).catch((err: Error) => {
      // The entry expires by itself after the TTL.
      this.logger.debug({ channel, client, err: err.message }, 'presence remove failed');
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const calls = [...this.local].map(([channel, clients]) =>
      this.broker.addPresence(channel, [...clients], this.ttlSeconds).catch((err: Error) => {
        this.logger.debug({ channel, err: err.message }, 'presence refresh failed');
      }),
    );
    await Promise.all(calls);
  }
}

/** The `presence` result: client id → ClientInfo, built from the stored encodings without re-encoding them. */
export function encodePresence(entries: Map<string, string>): string {
  const parts: string[] = [];
  for (const [client, info] of entries) parts.push(`${JSON.stringify(client)}:${info}`);
  return `{"presence":{${parts.join(',')}}}`;
}

/** The `presence_stats` result; both counts are sent even when 0. */
export function encodePresenceStats(stats: PresenceStats): string {
  return JSON.stringify({ num_clients: stats.numClients, num_users: stats.numUsers });
}
