// The protocol-neutral channel core: subscriptions (positioning, recovery, presence, join/leave), publish, history,
// presence reads, and what an engine failure means to the caller. Every edge — the Centrifugo client session, the
// server HTTP API, the Pusher edge — checks its own permissions, calls the core, and encodes what comes back; a
// refusal is a Refusal carrying a Centrifugo error code, which each edge maps to its protocol's.
import { encodePublicationBody, ErrorCode, type ClientInfo, type StreamPosition } from '@switchboard/protocol';
import type { Broker, HistoryResult, JoinLeaveScope, Presence, PresenceStats, PublishResult } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { ChannelConfig, NamespaceOptions } from './channels';
import type { Hub, HubSubscriber } from './hub';
import type { GatewayMetrics } from './metrics';
import type { GatewayLimits } from './options';
import type { PresenceTracker } from './presence';
import { channelOptions, refuse } from './refusal';

export interface CoreContext {
  broker: Broker;
  /** The engine's presence, read here; this gateway's own entries are written through `presenceTracker`. */
  presence: Presence;
  hub: Hub;
  presenceTracker: PresenceTracker;
  metrics: GatewayMetrics;
  logger: Logger;
  channels: ChannelConfig;
  limits: GatewayLimits;
}

/** What a subscriber asks for; the namespace decides what it gets. */
export interface SubscribeRequest {
  recover?: boolean;
  epoch?: string;
  offset?: number;
  positioned?: boolean;
  recoverable?: boolean;
  /** Refuse with 112 instead of subscribing when recovery is impossible. */
  rejectUnrecovered?: boolean;
}

/** One connection on a channel, as presence and join/leave see it. */
export interface Member {
  /** The connection's id (presence key). */
  client: string;
  /** Its encoded ClientInfo; '' when the namespace keeps neither presence nor join/leave. */
  info: string;
}

export interface SubscribeOutcome {
  /** The stream position the subscriber starts after, when the channel is positioned. */
  position?: HistoryResult;
  recoverable: boolean;
  recovering: boolean;
  /** Every missed publication is in `position.publications`. */
  recovered: boolean;
}

export interface PublishOptions {
  /** The publishing client, for the publication's `info`; none from a backend. */
  info?: ClientInfo;
  idempotencyKey?: string;
  /** Publication tags (string → string), e.g. the Pusher event name; subscribers see them as is. */
  tags?: Record<string, string>;
  /** The API's `delta: true`: sent as a delta to delta subscribers even where the namespace has no `delta_publish`. */
  delta?: boolean;
  source: 'client' | 'api';
}

export interface HistoryRequest {
  /** Negative: as much as the namespace keeps. */
  limit: number;
  since?: StreamPosition;
  reverse?: boolean;
}

const ENGINE_UNAVAILABLE = 'engine unavailable, retry';

/** Told of each accepted publication (webhooks take client events from here). */
export type PublicationListener = (channel: string, data: string, opts: PublishOptions) => void;

export class ChannelCore {
  private publicationListener: PublicationListener | undefined;

  constructor(private readonly ctx: CoreContext) {}

  /** Sets the single listener of accepted publications (`data`: the encoded JSON as published). */
  onPublished(listener: PublicationListener): void {
    this.publicationListener = listener;
  }

  /** The channel's namespace options; refuses 107 for a name that is not acceptable, 102 for an unknown namespace. */
  namespace(channel: string): NamespaceOptions {
    return channelOptions(this.ctx.channels, this.ctx.limits.maxChannelLength, channel);
  }

  /** Runs and times an engine call; a failure is logged and refused as a temporary internal error (100). */
  async engine<T>(op: string, channel: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await this.ctx.metrics.timeEngine(op, call);
    } catch (err) {
      this.ctx.logger.warn({ channel, err: (err as Error).message }, `engine ${op} failed`);
      refuse(ErrorCode.Internal, ENGINE_UNAVAILABLE);
    }
  }

  /**
   * Registers `sub` with the hub (it collects publications from now on), reads the position or recovers, and adds
   * the member to presence. The edge sends its subscribe reply, then calls `start`. On a refusal nothing is left
   * registered. The edge must check afterwards that its connection is still there (and `close` if not).
   */
  async open(channel: string, ns: NamespaceOptions, sub: HubSubscriber, req: SubscribeRequest, member: Member): Promise<SubscribeOutcome> {
    try {
      await this.ctx.metrics.timeEngine('subscribe', () => this.ctx.hub.add(channel, sub));
    } catch (err) {
      this.forget(channel, ns, sub, member);
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine subscribe failed');
      refuse(ErrorCode.Internal, ENGINE_UNAVAILABLE);
    }
    const historyOn = ns.history_size > 0;
    const recoverable = historyOn && (ns.force_recovery || (ns.allow_recovery && req.recoverable === true));
    const positioned = recoverable || (historyOn && (ns.force_positioning || (ns.allow_positioning && req.positioned === true)));
    const recovering = recoverable && req.recover === true;
    let position: HistoryResult | undefined;
    let recovered = false;
    try {
      if (recovering) {
        const since = { offset: req.offset ?? 0, epoch: req.epoch ?? '' };
        position = await this.ctx.metrics.timeEngine('recover', () =>
          // `seen`: a client ahead of the stream saw publications Redis lost; the epoch forks and it is told.
          this.ctx.broker.history(channel, { limit: this.ctx.limits.maxRecoveredPublications, since, seen: since, metaTtlSeconds: ns.history_ttl }),
        );
        recovered = isRecovered(position, since.offset, since.epoch);
        this.ctx.metrics.recoveries.labels(recovered ? 'recovered' : 'unrecovered').inc();
      } else if (positioned) {
        position = await this.ctx.metrics.timeEngine('position', () => this.ctx.broker.history(channel, { limit: 0, metaTtlSeconds: ns.history_ttl }));
      }
      if (ns.presence) await this.ctx.presenceTracker.add(channel, member.client, member.info, ns.join_leave);
    } catch (err) {
      this.forget(channel, ns, sub, member);
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine history or presence failed');
      refuse(ErrorCode.Internal, ENGINE_UNAVAILABLE);
    }
    if (recovering && !recovered && req.rejectUnrecovered) {
      this.forget(channel, ns, sub, member);
      refuse(ErrorCode.UnrecoverablePosition, `"offset" ${req.offset ?? 0} of "epoch" ${JSON.stringify(req.epoch ?? '')} cannot be recovered; subscribe without recover`);
    }
    return { position, recoverable, recovering, recovered };
  }

  /**
   * After the edge's subscribe reply: publications flow to `sub`, and the channel hears of the join — of the
   * connection where the namespace announces joins, and of its user when it is the user's first connection on the
   * channel (presence knows; Pusher members are users).
   */
  start(channel: string, ns: NamespaceOptions, sub: HubSubscriber, position: StreamPosition | undefined, member: Member): void {
    this.ctx.hub.start(channel, sub, position);
    const first = ns.presence && this.ctx.presenceTracker.start(channel, member.client);
    const scope: JoinLeaveScope | undefined = first ? (ns.join_leave ? 'user' : 'user-only') : ns.join_leave ? 'client' : undefined;
    if (scope) this.joinLeave(channel, 'join', member.info, scope);
  }

  /**
   * Ends a subscription: out of presence and the hub. The leave of a `started` subscription is announced: by the
   * engine with the presence removal where there is presence (it knows whether the user left too), else here.
   */
  close(channel: string, ns: NamespaceOptions, sub: HubSubscriber, member: Member, started: boolean): void {
    this.forget(channel, ns, sub, member);
    if (started && ns.join_leave && !ns.presence) this.joinLeave(channel, 'leave', member.info, 'client');
  }

  // Presence first: a member's leave goes out before the channel's vacancy, as Pusher orders them.
  private forget(channel: string, ns: NamespaceOptions, sub: HubSubscriber, member: Member): void {
    if (ns.presence) this.ctx.presenceTracker.remove(channel, member.client);
    this.ctx.hub.remove(channel, sub);
  }

  private joinLeave(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope): void {
    this.ctx.broker.publishJoinLeave(channel, kind, info, scope).catch((err: Error) => {
      this.ctx.logger.debug({ channel, err: err.message }, `${kind} message failed`);
    });
  }

  /** Publishes `data` (encoded JSON) after the size check; the namespace decides history. */
  async publish(channel: string, ns: NamespaceOptions, data: string, opts: PublishOptions): Promise<PublishResult> {
    if (data.length > this.ctx.limits.maxMessageSize) refuse(ErrorCode.LimitExceeded, `data larger than ${this.ctx.limits.maxMessageSize} bytes`);
    const delta = ns.allowed_delta_types.length > 0 && (opts.delta === true || ns.delta_publish);
    const body = encodePublicationBody(data, opts.info, opts.tags, delta);
    const publishOpts = { historySize: ns.history_size, historyTtlSeconds: ns.history_ttl, idempotencyKey: opts.idempotencyKey };
    const result = await this.engine('publish', channel, () => this.ctx.broker.publish(channel, body, publishOpts));
    if (!result.duplicate) {
      this.ctx.metrics.published(opts.source);
      this.publicationListener?.(channel, data, opts);
    }
    return result;
  }

  /** Reads history; 108 where the namespace keeps none. */
  history(channel: string, ns: NamespaceOptions, req: HistoryRequest): Promise<HistoryResult> {
    if (ns.history_size === 0) refuse(ErrorCode.NotAvailable, 'history is not enabled for this channel');
    const limit = req.limit < 0 ? ns.history_size : Math.min(req.limit, ns.history_size);
    return this.engine('history', channel, () => this.ctx.broker.history(channel, { limit, since: req.since, reverse: req.reverse, metaTtlSeconds: ns.history_ttl }));
  }

  removeHistory(channel: string): Promise<void> {
    return this.engine('history_remove', channel, () => this.ctx.broker.removeHistory(channel));
  }

  /** Live members: client id → encoded ClientInfo; 108 where the namespace keeps no presence. */
  presence(channel: string, ns: NamespaceOptions): Promise<Map<string, string>> {
    if (!ns.presence) refuse(ErrorCode.NotAvailable, 'presence is not enabled for this channel');
    return this.engine('presence', channel, () => this.ctx.presence.presence(channel));
  }

  presenceStats(channel: string, ns: NamespaceOptions): Promise<PresenceStats> {
    if (!ns.presence) refuse(ErrorCode.NotAvailable, 'presence is not enabled for this channel');
    return this.engine('presence_stats', channel, () => this.ctx.presence.presenceStats(channel));
  }
}

/** Recovery succeeded when the epoch matches and history holds every publication after the client's offset. */
export function isRecovered(history: HistoryResult, offset: number, epoch: string): boolean {
  if (epoch !== '' && epoch !== history.epoch) return false;
  const missed = history.offset - offset;
  if (missed < 0) return false;
  if (missed === 0) return true;
  const pubs = history.publications;
  return pubs.length === missed && pubs[0].offset === offset + 1;
}
