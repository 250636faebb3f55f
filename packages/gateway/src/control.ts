// Node-to-node control over the engine: heartbeats, cluster-wide disconnect/unsubscribe/subscribe/refresh, and surveys of every node.
import type { Broker } from '@switchboard/engine';
import { DisconnectCode, type Json } from '@switchboard/protocol';
import type { Logger } from 'pino';
import { nanoid } from 'nanoid';
import type { SessionRegistry } from './registry';
import type { ServerSubscribe } from './session';

export interface NodeInfo {
  uid: string;
  name: string;
  version: string;
  num_clients: number;
  num_users: number;
  num_subs: number;
  num_channels: number;
  uptime: number;
}

export type SurveyOp = 'channels' | 'info';

type ControlMessage =
  | { t: 'node'; info: NodeInfo }
  | { t: 'disconnect'; user: string; client?: string; code: number; reason: string; whitelist?: string[] }
  | { t: 'unsubscribe'; user: string; channel: string; client?: string }
  | { t: 'subscribe'; user: string; channel: string; client?: string; sub: ServerSubscribe }
  | { t: 'refresh'; user: string; client?: string; expired: boolean; expireAt: number; info?: Json }
  | { t: 'survey'; id: string; from: string; op: SurveyOp }
  | { t: 'reply'; id: string; node: string; data: unknown }
  /** A message for one edge's handler on every node (e.g. the Pusher edge's terminate_connections). */
  | { t: 'edge'; kind: string; data: unknown };

export interface LocalState {
  info(): NodeInfo;
  /** Local subscriber counts per channel. */
  channels(): Record<string, number>;
}

const HEARTBEAT_MS = 3000;
/** A node not heard from for this long is gone. */
const NODE_EXPIRY_MS = 10000;
const SURVEY_TIMEOUT_MS = 2000;

export class ControlPlane {
  private readonly nodes = new Map<string, { info: NodeInfo; seenAt: number }>();
  private readonly surveys = new Map<string, { replies: Map<string, unknown>; done: () => void; expected: Set<string> }>();
  private readonly timer: NodeJS.Timeout;
  private readonly edgeHandlers = new Map<string, (data: unknown) => void>();

  constructor(
    private readonly broker: Broker,
    readonly nodeId: string,
    private readonly registry: SessionRegistry,
    private readonly local: LocalState,
    private readonly logger: Logger,
  ) {
    broker.onControl((raw) => this.receive(raw));
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.timer.unref();
    void this.heartbeat();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Disconnects the user's connections (or one client's) on every node, but those in `whitelist` (client ids). */
  disconnect(user: string, client: string | undefined, code: number, reason: string, whitelist?: string[]): Promise<void> {
    return this.send({ t: 'disconnect', user, client, code, reason, whitelist }, undefined, user);
  }

  /** Subscribes the user's connections (or one client's) on every node to a channel, server-side. */
  subscribe(user: string, channel: string, client: string | undefined, sub: ServerSubscribe): Promise<void> {
    return this.send({ t: 'subscribe', user, channel, client, sub }, undefined, user);
  }

  /** Extends (`expireAt`, unix seconds; 0 = never) or ends (`expired`) the user's connections on every node. */
  refresh(user: string, client: string | undefined, expired: boolean, expireAt: number, info?: Json): Promise<void> {
    return this.send({ t: 'refresh', user, client, expired, expireAt, info }, undefined, user);
  }

  /** Unsubscribes the user (or one client of it) from a channel on every node. */
  unsubscribe(user: string, channel: string, client?: string): Promise<void> {
    return this.send({ t: 'unsubscribe', user, channel, client }, undefined, user);
  }

  /** Delivers `data` to the `kind` handler of every node, this one included; `orderKey` keeps one user's messages in order. */
  broadcastToEdges(kind: string, data: unknown, orderKey?: string): Promise<void> {
    return this.send({ t: 'edge', kind, data }, undefined, orderKey);
  }

  /** Sets the handler of `kind` edge messages on this node. */
  onEdgeMessage(kind: string, handler: (data: unknown) => void): void {
    this.edgeHandlers.set(kind, handler);
  }

  /** Asks every known node (this one included) and returns the answers that came within the timeout. */
  async survey(op: SurveyOp): Promise<Map<string, unknown>> {
    const id = nanoid();
    const expected = new Set([...this.liveNodes().keys(), this.nodeId]);
    const replies = new Map<string, unknown>();
    const finished = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SURVEY_TIMEOUT_MS);
      this.surveys.set(id, {
        replies,
        expected,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
    try {
      await this.send({ t: 'survey', id, from: this.nodeId, op });
      await finished;
    } finally {
      this.surveys.delete(id);
    }
    return replies;
  }

  private liveNodes(): Map<string, NodeInfo> {
    const now = Date.now();
    const live = new Map<string, NodeInfo>();
    for (const [id, n] of this.nodes) {
      if (now - n.seenAt > NODE_EXPIRY_MS) this.nodes.delete(id);
      else live.set(id, n.info);
    }
    return live;
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.send({ t: 'node', info: this.local.info() });
    } catch {
      // The engine is down; readiness already says so.
    }
  }

  /** `orderKey`: messages about one user keep their order. */
  private send(msg: ControlMessage, toNode?: string, orderKey?: string): Promise<void> {
    return this.broker.publishControl(JSON.stringify(msg), toNode, orderKey);
  }

  private receive(raw: string): void {
    let msg: ControlMessage;
    try {
      msg = JSON.parse(raw) as ControlMessage;
    } catch {
      this.logger.warn({ raw: raw.slice(0, 200) }, 'malformed control message');
      return;
    }
    switch (msg.t) {
      case 'node': {
        const known = this.nodes.has(msg.info.uid);
        this.nodes.set(msg.info.uid, { info: msg.info, seenAt: Date.now() });
        // A node heard of for the first time may have missed our heartbeats (it started after the last one, or
        // sent its first before we listened): tell it of us now, so that its surveys (info, channels) wait for our
        // answer instead of finishing without it until the next heartbeat.
        if (!known && msg.info.uid !== this.nodeId) {
          this.send({ t: 'node', info: this.local.info() }, msg.info.uid).catch(() => undefined);
        }
        break;
      }
      case 'disconnect':
        for (const s of this.registry.find(msg.user, msg.client)) {
          if (!msg.whitelist?.includes(s.id)) s.disconnect(msg.code || DisconnectCode.ForceNoReconnect, msg.reason);
        }
        break;
      case 'unsubscribe':
        for (const s of this.registry.find(msg.user, msg.client)) s.serverUnsubscribe(msg.channel);
        break;
      case 'subscribe':
        for (const s of this.registry.find(msg.user, msg.client)) {
          s.serverSubscribe(msg.channel, msg.sub).catch((err: Error) => {
            this.logger.warn({ channel: msg.channel, user: msg.user, client: s.id, err: err.message }, 'server-side subscribe failed');
          });
        }
        break;
      case 'refresh':
        for (const s of this.registry.find(msg.user, msg.client)) s.serverRefresh(msg.expired, msg.expireAt, msg.info);
        break;
      case 'survey': {
        const data = msg.op === 'channels' ? this.local.channels() : this.local.info();
        this.send({ t: 'reply', id: msg.id, node: this.nodeId, data }, msg.from).catch((err: Error) => {
          this.logger.warn({ err: err.message }, 'survey reply failed');
        });
        break;
      }
      case 'edge':
        this.edgeHandlers.get(msg.kind)?.(msg.data);
        break;
      case 'reply': {
        const survey = this.surveys.get(msg.id);
        if (!survey) break;
        survey.replies.set(msg.node, msg.data);
        if ([...survey.expected].every((n) => survey.replies.has(n))) survey.done();
        break;
      }
    }
  }
}
