// Local fan-out topics: uWS's native topic tree, or plain sets on the pure-JS fallback (which has none).
import type { Frame } from '@switchboard/protocol';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';

// Topic names are prefixed by kind, so no channel name can collide with another kind or the ping topics.
export const PING_TOPIC = 'ping';
/** Pings of Protobuf connections (an empty Reply, binary). */
export const PROTOBUF_PING_TOPIC = 'ping-pb';
export const channelTopic = (channel: string): string => '#' + channel;
export const joinLeaveTopic = (channel: string): string => '!' + channel;
/** The Centrifugo Protobuf variant's publications and (for those that asked) join/leave of a channel. */
export const protobufChannelTopic = (channel: string): string => '$' + channel;
export const protobufJoinLeaveTopic = (channel: string): string => '&' + channel;
/** The Pusher edge's frames of a channel (publications, member_added/removed). */
export const pusherTopic = (channel: string): string => '%' + channel;

export interface Topics {
  join(ws: WebSocket<unknown>, topic: string): void;
  leave(ws: WebSocket<unknown>, topic: string): void;
  /**
   * Sends the same bytes to every socket that joined the topic but `except` (bytes as a binary message); returns
   * how many that was. `joined`: the topic's `count` when the caller just read it (saves asking again).
   */
  publish(topic: string, frame: Frame, except?: WebSocket<unknown>, joined?: number): number;
  /** Sockets that joined the topic. */
  count(topic: string): number;
  /** Forgets a closed socket. */
  drop(ws: WebSocket<unknown>): void;
}

/** The native build: one call hands the frame to every subscriber inside uWS (C++). */
export class NativeTopics implements Topics {
  constructor(private readonly app: TemplatedApp) {}

  join(ws: WebSocket<unknown>, topic: string): void {
    ws.subscribe(topic);
  }

  leave(ws: WebSocket<unknown>, topic: string): void {
    ws.unsubscribe(topic);
  }

  publish(topic: string, frame: Frame, except?: WebSocket<unknown>, joined?: number): number {
    const n = joined ?? this.app.numSubscribers(topic);
    if (n === 0) return 0;
    const binary = typeof frame !== 'string';
    // A socket's own publish reaches every subscriber of the topic but itself.
    if (except !== undefined && except.isSubscribed(topic)) {
      except.publish(topic, frame, binary);
      return n - 1;
    }
    this.app.publish(topic, frame, binary);
    return n;
  }

  count(topic: string): number {
    return this.app.numSubscribers(topic);
  }

  drop(): void {
    // uWS unsubscribes a closed socket from all its topics itself.
  }
}

/** The fallback: the same contract with JS sets; slower, for development only. */
export class SetTopics implements Topics {
  private readonly members = new Map<string, Set<WebSocket<unknown>>>();
  private readonly joined = new Map<WebSocket<unknown>, Set<string>>();

  join(ws: WebSocket<unknown>, topic: string): void {
    let set = this.members.get(topic);
    if (!set) this.members.set(topic, (set = new Set()));
    set.add(ws);
    let topics = this.joined.get(ws);
    if (!topics) this.joined.set(ws, (topics = new Set()));
    topics.add(topic);
  }

  leave(ws: WebSocket<unknown>, topic: string): void {
    const set = this.members.get(topic);
    if (set) {
      set.delete(ws);
      if (set.size === 0) this.members.delete(topic);
    }
    this.joined.get(ws)?.delete(topic);
  }

  publish(topic: string, frame: Frame, except?: WebSocket<unknown>): number {
    const set = this.members.get(topic);
    if (!set) return 0;
    const binary = typeof frame !== 'string';
    let n = 0;
    for (const ws of set) {
      if (ws === except) continue;
      ws.send(frame, binary);
      n++;
    }
    return n;
  }

  count(topic: string): number {
    return this.members.get(topic)?.size ?? 0;
  }

  drop(ws: WebSocket<unknown>): void {
    for (const topic of this.joined.get(ws) ?? []) this.leave(ws, topic);
    this.joined.delete(ws);
  }
}

/**
 * One client socket as an edge's session sees it: closing it once, and joining and leaving its topics only while it
 * is open (uWS must not be called with a socket it has closed). Each edge adds how it sends.
 */
export class SocketLink {
  closed = false;

  constructor(
    readonly ws: WebSocket<unknown>,
    protected readonly topics: Topics,
  ) {}

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }

  join(topic: string): void {
    if (!this.closed) this.topics.join(this.ws, topic);
  }

  leave(topic: string): void {
    if (!this.closed) this.topics.leave(this.ws, topic);
  }
}
