// One Redis Cluster node's sharded pub/sub connection (SSUBSCRIBE), with every reply accounted for.
//
// Our own connection rather than the driver's: when a slot moves, Redis 7 tells subscribers with an unsolicited
// SUNSUBSCRIBE, which ioredis 5 matches against whatever command is pending (or reports as a queue error), and
// subscriptions are silently left dead. Here a SUNSUBSCRIBE we did not ask for is reported as `dropped`, and an
// SSUBSCRIBE sent to a node that does not own the slot as `moved`, so the owner can place the channels again.
import net from 'node:net';
import tls from 'node:tls';
import calculateSlot from 'cluster-key-slot';
import { encodeCommand, RespError, RespReader, type RespValue } from './resp';

export interface NodeAddress {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls?: boolean;
}

export interface ShardedSubscriberEvents {
  message(pubsubName: string, payload: string): void;
  /** The node dropped these subscriptions on its own: their slot moved to another node. */
  dropped(pubsubNames: string[]): void;
  /** An SSUBSCRIBE was refused because the slot lives at `to` (`host:port`). */
  moved(pubsubNames: string[], to: string): void;
  /** The connection is gone; every subscription on it with it. */
  closed(reason: string): void;
}

interface Pending {
  kind: 'ssubscribe' | 'sunsubscribe' | 'ok';
  /** Channels whose confirmation is still to come. */
  waiting: Set<string>;
  names: string[];
  resolve(): void;
  reject(err: Error): void;
}

export class ShardedSubscriber {
  private readonly reader = new RespReader();
  private readonly pending: Pending[] = [];
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly events: ShardedSubscriberEvents,
    readonly label: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      let replies: RespValue[];
      try {
        replies = this.reader.push(chunk);
      } catch (err) {
        this.fail(`bad reply: ${(err as Error).message}`);
        return;
      }
      for (const reply of replies) this.handle(reply);
    });
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('connection closed'));
  }

  /** Connects, authenticates and names the connection; rejects naming the node within `timeoutMs`. */
  static async connect(node: NodeAddress, name: string, timeoutMs: number, events: ShardedSubscriberEvents): Promise<ShardedSubscriber> {
    const label = `${node.host}:${node.port}`;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = node.tls ? tls.connect({ host: node.host, port: node.port, servername: node.host }) : net.connect(node.port, node.host);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`redis ${label}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once(node.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.setNoDelay(true);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`redis ${label}: ${err.message}`));
      });
    });
    const sub = new ShardedSubscriber(socket, events, label);
    try {
      if (node.password !== undefined) await sub.send('ok', node.username ? ['AUTH', node.username, node.password] : ['AUTH', node.password], []);
      await sub.send('ok', ['CLIENT', 'SETNAME', name], []);
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Subscribes, one SSUBSCRIBE per slot (a command may not span slots); resolves once every one is confirmed. */
  ssubscribe(pubsubNames: string[]): Promise<void> {
    return this.perSlot('ssubscribe', pubsubNames);
  }

  sunsubscribe(pubsubNames: string[]): Promise<void> {
    return this.perSlot('sunsubscribe', pubsubNames);
  }

  close(): void {
    this.socket.destroy();
    this.fail('closed');
  }

  private async perSlot(kind: 'ssubscribe' | 'sunsubscribe', names: string[]): Promise<void> {
    const bySlot = new Map<number, string[]>();
    for (const name of names) {
      const slot = calculateSlot(name);
      const list = bySlot.get(slot);
      if (list) list.push(name);
      else bySlot.set(slot, [name]);
    }
    // All written in one go: the socket batches them into few packets.
    await Promise.all([...bySlot.values()].map((group) => this.send(kind, [kind.toUpperCase(), ...group], group)));
  }

  private send(kind: Pending['kind'], args: string[], names: string[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`redis ${this.label}: sharded pub/sub connection is closed`));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ kind, waiting: new Set(names), names, resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }

  private handle(reply: RespValue): void {
    if (Array.isArray(reply) && typeof reply[0] === 'string') {
      const [kind, name, payload] = reply;
      if (kind === 'smessage' && typeof name === 'string') {
        this.events.message(name, typeof payload === 'string' ? payload : '');
        return;
      }
      if ((kind === 'ssubscribe' || kind === 'sunsubscribe') && typeof name === 'string') {
        const head = this.pending[0];
        if (head && head.kind === kind && head.waiting.delete(name)) {
          if (head.waiting.size === 0) this.settle(head);
        } else if (kind === 'sunsubscribe') {
          this.events.dropped([name]);
        }
        return;
      }
    }
    const head = this.pending[0];
    if (!head) {
      this.fail(`a reply nothing asked for: ${JSON.stringify(reply)}`);
      return;
    }
    if (reply instanceof RespError) {
      this.pending.shift();
      // `MOVED <slot> <host:port>`: the whole command was refused.
      if (head.kind === 'ssubscribe' && reply.message.startsWith('MOVED ')) this.events.moved(head.names, reply.message.split(' ')[2] ?? '');
      head.reject(new Error(`redis ${this.label}: ${reply.message}`));
      return;
    }
    if (head.kind === 'ok') this.settle(head);
    else this.fail(`an unexpected reply to ${head.kind}: ${JSON.stringify(reply)}`);
  }

  private settle(p: Pending): void {
    this.pending.shift();
    p.resolve();
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const err = new Error(`redis ${this.label}: sharded pub/sub ${reason}`);
    for (const p of this.pending.splice(0)) p.reject(err);
    this.events.closed(reason);
  }
}
