// This gateway's connected sessions by client id and by user, for commands that name a user or a client.
import type { ClientSession } from './session';

export class SessionRegistry {
  private readonly byClient = new Map<string, ClientSession>();
  /** One session, or a set once a user has several: most users have one connection, and a Set each costs. */
  private readonly byUser = new Map<string, ClientSession | Set<ClientSession>>();

  get clientCount(): number {
    return this.byClient.size;
  }

  get userCount(): number {
    return this.byUser.size;
  }

  add(session: ClientSession): void {
    this.byClient.set(session.id, session);
    const held = this.byUser.get(session.user);
    if (held === undefined) this.byUser.set(session.user, session);
    else if (held instanceof Set) held.add(session);
    else this.byUser.set(session.user, new Set([held, session]));
  }

  remove(session: ClientSession): void {
    if (this.byClient.get(session.id) !== session) return;
    this.byClient.delete(session.id);
    const held = this.byUser.get(session.user);
    if (held === session) {
      this.byUser.delete(session.user);
    } else if (held instanceof Set) {
      held.delete(session);
      if (held.size === 1) this.byUser.set(session.user, held.values().next().value as ClientSession);
    }
  }

  /** The user's sessions, or only the one with that client id when given. */
  find(user: string, client?: string): ClientSession[] {
    if (client) {
      const s = this.byClient.get(client);
      return s && s.user === user ? [s] : [];
    }
    const held = this.byUser.get(user);
    if (held === undefined) return [];
    return held instanceof Set ? [...held] : [held];
  }

  subscriptionCount(): number {
    let n = 0;
    for (const s of this.byClient.values()) n += s.subscriptionCount;
    return n;
  }
}
