// This gateway's connected sessions by client id and by user, for commands that name a user or a client.
import type { ClientSession } from './session';

export class SessionRegistry {
  private readonly byClient = new Map<string, ClientSession>();
  private readonly byUser = new Map<string, Set<ClientSession>>();

  get clientCount(): number {
    return this.byClient.size;
  }

  get userCount(): number {
    return this.byUser.size;
  }

  add(session: ClientSession): void {
    this.byClient.set(session.id, session);
    let set = this.byUser.get(session.user);
    if (!set) this.byUser.set(session.user, (set = new Set()));
    set.add(session);
  }

  remove(session: ClientSession): void {
    if (this.byClient.get(session.id) !== session) return;
    this.byClient.delete(session.id);
    const set = this.byUser.get(session.user);
    set?.delete(session);
    if (set?.size === 0) this.byUser.delete(session.user);
  }

  /** The user's sessions, or only the one with that client id when given. */
  find(user: string, client?: string): ClientSession[] {
    if (client) {
      const s = this.byClient.get(client);
      return s && s.user === user ? [s] : [];
    }
    return [...(this.byUser.get(user) ?? [])];
  }

  subscriptionCount(): number {
    let n = 0;
    for (const s of this.byClient.values()) n += s.subscriptionCount;
    return n;
  }
}
