// One client connection: decodes its frames, runs its commands in order, holds its subscriptions. The protocol
// variant (JSON or Protobuf) is its encoding's codec: the session itself never sees a wire format.
import { compileTagFilter, DisconnectCode, ErrorCode, protocolError, UnsubscribeCode } from '@switchboard/protocol';
import type {
  ClientCodec,
  ClientInfo,
  Command,
  CommandOf,
  ConnectResult,
  Frame,
  Json,
  RefreshResult,
  ReplyMethod,
  Results,
  StreamPosition,
  SubscribeHint,
  SubscribePush,
  SubscribeResult,
  TagFilter,
} from '@switchboard/protocol';
import type { Publication } from '@switchboard/engine';
import { nanoid } from 'nanoid';
import { TokenError } from './auth';
import { channelNameProblem, resolveChannel, type NamespaceOptions } from './channels';
import type { GatewayContext } from './context';
import type { Member, SubscribeRequest } from './core';
import { centrifugoJson, type CentrifugoEncoding, type HubSubscriber } from './hub';
import { checkHistorySince } from './history';
import { Refusal, refuse } from './refusal';
import { canPublish, canReadDocument, canReadHistory, canReadPresence, canSubscribe, canUpdateDocument, type Actor } from './permissions';
import { SmallMap } from './small_map';

/** The socket side of a session, so the session does not depend on uWS. */
export interface Transport {
  /** A string as a text message, bytes as a binary one. */
  send(frame: Frame): void;
  close(code: number, reason: string): void;
  /** Start and stop receiving a topic's fan-out frames. */
  join(topic: string): void;
  leave(topic: string): void;
}

/** Ends the connection with a close code. */
class DisconnectError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** One channel of one session, as the hub sees it. */
class Subscription implements HubSubscriber {
  /** In the channel's shared fan-out. */
  joined = false;
  /** Its subscribe reply went out (a join was announced where the namespace does so). */
  started = false;

  constructor(
    readonly session: ClientSession,
    readonly channel: string,
    readonly ns: NamespaceOptions,
    /** From the connection token's `channels` claim: the client cannot resubscribe it by itself. */
    readonly serverSide: boolean,
    /** Unix ms after which the subscription token expires; 0 = never. */
    public expiresAt: number,
    /** Gets join/leave pushes of the channel. */
    readonly pushJoinLeave: boolean,
    /** This client's ClientInfo on the channel, encoded; kept only where presence or join/leave needs it. */
    readonly info: string,
    /** Fossil delta negotiated. */
    readonly delta: boolean,
    /** Its publication tags filter (`tf`). */
    readonly filter: TagFilter | undefined,
  ) {}

  get encoding(): CentrifugoEncoding {
    return this.session.encoding;
  }

  get member(): Member {
    return { client: this.session.id, info: this.info };
  }

  send(frame: Frame): void {
    this.session.sendFrame(frame);
  }

  join(shared: boolean): void {
    this.joined = true;
    this.session.joinTopics(this, shared);
  }

  resync(): void {
    this.session.resync(this);
  }
}

interface OpenedSubscription {
  sub: Subscription;
  result: SubscribeResult;
  position?: StreamPosition;
  recoverable: boolean;
  /** The missed publications, when a recovery succeeded. */
  recovered?: Publication[];
}

/** Namespace options one server-side subscription may set otherwise (Centrifugo's `override`). */
export type SubscribeOverride = Partial<Pick<NamespaceOptions, 'presence' | 'join_leave' | 'force_push_join_leave' | 'force_recovery' | 'force_positioning'>>;

/** What the HTTP API's `subscribe` asks of each connection it names, as it travels between gateways. */
export interface ServerSubscribe {
  /** This connection's channel info (presence, join/leave). */
  info?: Json;
  /** Sent to the client in the `subscribe` push. */
  data?: Json;
  /** Recover the publications after this position (where the channel is recoverable). */
  recoverSince?: StreamPosition;
  override?: SubscribeOverride;
  /** Unix seconds after which the subscription expires (the connection is closed with 3006); 0 = never. */
  expireAt?: number;
}

/** Longest connection lifetime a server refresh sets, as in Centrifugo: a bigger expiry is surely a mistake. */
const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

/** What a subscribe asks for: the client's request, or the hints of a server-side subscription. */
interface SubscribeOptions extends Omit<SubscribeRequest, 'rejectUnrecovered'> {
  join_leave?: boolean;
  flag?: number;
}

const SUBSCRIBE_FLAG_REJECT_UNRECOVERED = 2;

export class ClientSession {
  readonly id = nanoid();
  user = '';
  connected = false;
  closed = false;
  readonly openedAt = Date.now();
  /** Unix ms of the last frame from the client; pings are answered by any frame. */
  lastSeen = this.openedAt;
  /** Unix ms when the connection token expires; 0 = never. */
  expiresAt = 0;
  private connInfo: Json | undefined;
  /** Its connect reply went out: pushes before it would reach an SDK that is not connected yet. */
  private welcomed = false;
  /** By channel; most connections hold one (see SmallMap). */
  private readonly subs = new SmallMap<Subscription>();
  /** Commands waiting for the one in progress; allocated only while there are some. */
  private queue: Command[] | undefined;
  private running = false;
  private tokens: number;
  private refilledAt = this.openedAt;
  private readonly codec: ClientCodec;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly transport: Transport,
    /** The protocol variant: its codec, and the topics its subscriptions join. */
    readonly encoding: CentrifugoEncoding = centrifugoJson,
  ) {
    this.tokens = ctx.limits.commandBurst;
    this.codec = encoding.codec;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** One WebSocket message; `binary` when it came as a binary message. It is read before this returns. */
  onMessage(message: Uint8Array, binary: boolean): void {
    if (this.closed) return;
    if (binary !== this.codec.binary) {
      this.disconnect(DisconnectCode.BadRequest, `bad request: ${binary ? 'binary' : 'text'} frames are not accepted on a ${this.codec.name === 'json' ? 'JSON' : 'Protobuf'} connection`);
      return;
    }
    this.lastSeen = Date.now();
    for (const item of this.codec.decode(message)) {
      switch (item.kind) {
        case 'pong':
          break;
        case 'fatal':
          this.disconnect(DisconnectCode.BadRequest, `bad request: ${item.reason}`);
          return;
        case 'error':
          if (!this.connected) {
            this.disconnect(DisconnectCode.BadRequest, 'bad request: connect first');
            return;
          }
          this.transport.send(this.codec.error(item.id, item.error));
          break;
        case 'command':
          if (this.admit(item.command)) (this.queue ??= []).push(item.command);
          if (this.closed) return;
      }
    }
    void this.pump();
  }

  /** Called once by the transport when the socket is gone, whoever closed it. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = undefined;
    for (const sub of this.subs.values()) this.dropSubscription(sub);
    if (this.connected) this.ctx.registry.remove(this);
  }

  disconnect(code: number, reason: string): void {
    if (this.closed) return;
    this.transport.close(code, reason);
    this.onClose();
  }

  /** Token bucket per connection: over the rate a command is refused with 111, far over it the connection closes with 3013. */
  private admit(cmd: Command): boolean {
    const { commandsPerSecond, commandBurst } = this.ctx.limits;
    const now = Date.now();
    this.tokens = Math.min(commandBurst, this.tokens + ((now - this.refilledAt) / 1000) * commandsPerSecond);
    this.refilledAt = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return true;
    if (this.tokens < -commandBurst) {
      this.disconnect(DisconnectCode.TooManyRequests, 'too many requests');
      return false;
    }
    if (cmd.method !== 'send') this.transport.send(this.codec.error(cmd.id, protocolError(ErrorCode.TooManyRequests)));
    return false;
  }

  /** Commands of one connection run one after another, as the client sent them. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue && this.queue.length > 0 && !this.closed) {
        const cmd = this.queue.shift() as Command;
        await this.run(cmd);
      }
    } finally {
      this.running = false;
      if (this.queue?.length === 0) this.queue = undefined;
    }
  }

  private async run(cmd: Command): Promise<void> {
    this.ctx.metrics.commands.labels(cmd.method).inc();
    try {
      if (!this.connected && cmd.method !== 'connect') {
        throw new DisconnectError(DisconnectCode.BadRequest, 'bad request: connect first');
      }
      const reply = await this.dispatch(cmd);
      if (reply !== undefined && !this.closed) this.transport.send(reply);
    } catch (e) {
      if (e instanceof Refusal) {
        this.ctx.metrics.commandErrors.labels(cmd.method, String(e.error.code)).inc();
        if (cmd.method !== 'send') this.transport.send(this.codec.error(cmd.id, e.error));
      } else if (e instanceof DisconnectError) {
        this.disconnect(e.code, e.reason);
      } else {
        this.ctx.metrics.commandErrors.labels(cmd.method, String(ErrorCode.Internal)).inc();
        this.ctx.logger.error({ err: e, client: this.id, method: cmd.method }, 'command failed');
        if (cmd.method !== 'send') this.transport.send(this.codec.error(cmd.id, protocolError(ErrorCode.Internal)));
      }
    }
  }

  /** The encoded reply to a command. */
  private reply<M extends ReplyMethod>(cmd: { id: number; method: M }, result: Results[M]): Frame {
    return this.codec.reply(cmd.id, cmd.method, result);
  }

  /** Returns the encoded reply, or undefined when the handler replied itself or no reply is due. */
  private dispatch(cmd: Command): Promise<Frame | undefined> | Frame | undefined {
    switch (cmd.method) {
      case 'connect':
        return this.connect(cmd);
      case 'subscribe':
        return this.subscribe(cmd);
      case 'unsubscribe':
        return this.unsubscribe(cmd);
      case 'publish':
        return this.publish(cmd);
      case 'history':
        return this.history(cmd);
      case 'presence':
      case 'presence_stats':
        return this.presence(cmd);
      case 'rpc':
        return this.rpc(cmd);
      case 'refresh':
        return this.refresh(cmd);
      case 'sub_refresh':
        return this.subRefresh(cmd);
      case 'send':
        return undefined;
    }
  }

  private get actor(): Actor {
    return { user: this.user, insecure: this.ctx.insecure };
  }

  private async connect(cmd: CommandOf<'connect'>): Promise<Frame | undefined> {
    if (this.connected) throw new DisconnectError(DisconnectCode.BadRequest, 'bad request: already connected');
    const { token } = cmd.params;
    let channels: string[] = [];
    if (token) {
      if (!this.ctx.verifier.enabled) refuse(ErrorCode.Unauthorized, 'this server has no token key configured');
      const claims = await this.verify(() => this.ctx.verifier.verifyConnect(token));
      this.user = claims.user;
      this.connInfo = claims.info;
      this.expiresAt = claims.exp * 1000;
      channels = claims.channels;
    } else if (!this.ctx.insecure) {
      refuse(ErrorCode.Unauthorized, 'a connection token is required');
    }
    this.connected = true;
    this.ctx.registry.add(this);
    const serverSubs = await this.serverSideSubscriptions(channels, cmd.params.subs ?? {});
    const result: ConnectResult = {
      client: this.id,
      version: this.ctx.version,
      ping: this.ctx.limits.pingIntervalSeconds,
      pong: true,
      node: this.ctx.node,
    };
    if (this.expiresAt > 0) Object.assign(result, { expires: true, ttl: this.ttlSeconds(this.expiresAt) });
    if (serverSubs.length > 0) {
      // Null prototype: a channel is only ever a key.
      result.subs = Object.create(null) as Record<string, SubscribeResult>;
      for (const o of serverSubs) result.subs[o.sub.channel] = o.result;
    }
    if (this.closed) return undefined;
    this.transport.send(this.reply(cmd, result));
    this.welcomed = true;
    for (const o of serverSubs) this.startSubscription(o.sub, o.position);
    return undefined;
  }

  /**
   * Subscribes the channels of the token's `channels` claim; the client cannot refuse or resubscribe these.
   * A channel the configuration does not know is skipped and logged: the token issuer has to fix it.
   */
  private async serverSideSubscriptions(channels: string[], hints: Record<string, SubscribeHint>): Promise<OpenedSubscription[]> {
    const opened: OpenedSubscription[] = [];
    for (const channel of channels) {
      const ns = resolveChannel(this.ctx.channels, channel);
      if (!ns || channelNameProblem(channel, this.ctx.limits.maxChannelLength) || this.subs.has(channel)) {
        this.ctx.logger.warn({ channel, user: this.user }, 'skipping a server-side channel the configuration does not allow');
        continue;
      }
      const hint = hints[channel] ?? {};
      const o = await this.openSubscription(channel, ns, { ...hint, positioned: true, recoverable: true }, 0, true, undefined);
      if (o) opened.push(o);
    }
    return opened;
  }

  /** Runs a token check: an expired token is error 109, any other bad token ends the connection with 3500. */
  private async verify<T>(check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      if (e.expired) refuse(ErrorCode.TokenExpired);
      throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token');
    }
  }

  private ttlSeconds(expiresAt: number): number {
    return Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  }

  private clientInfo(chanInfo?: Json): ClientInfo {
    const info: ClientInfo = { user: this.user, client: this.id };
    if (this.connInfo !== undefined) info.conn_info = this.connInfo;
    if (chanInfo !== undefined) info.chan_info = chanInfo;
    return info;
  }

  private namespace(channel: string): NamespaceOptions {
    return this.ctx.core.namespace(channel);
  }

  private async subscribe(cmd: CommandOf<'subscribe'>): Promise<undefined> {
    const req = cmd.params;
    const { channel } = req;
    const ns = this.namespace(channel);
    if (this.subs.has(channel)) refuse(ErrorCode.AlreadySubscribed, `channel ${JSON.stringify(channel)}`);
    this.checkChannelLimit();
    let expiresAt = 0;
    let chanInfo: Json | undefined;
    if (req.token) {
      const claims = await this.verify(() => this.ctx.verifier.verifySubscribe(req.token as string));
      if (claims.channel !== channel || claims.user !== this.user) {
        throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another channel or user');
      }
      expiresAt = claims.exp * 1000;
      chanInfo = claims.info;
    } else if (!canSubscribe(ns, this.actor, channel)) {
      refuse(ErrorCode.PermissionDenied, `cannot subscribe to channel ${JSON.stringify(channel)}`);
    }
    if (this.closed || this.subs.has(channel)) refuse(ErrorCode.AlreadySubscribed, `channel ${JSON.stringify(channel)}`);
    const opened = await this.openSubscription(channel, ns, req, expiresAt, false, chanInfo, this.streamOptions(ns, req));
    if (!opened) return undefined;
    this.transport.send(this.reply(cmd, opened.result));
    this.startSubscription(opened.sub, opened.position);
    return undefined;
  }

  /**
   * Delta and tags filter of a client subscribe, as Centrifugo negotiates them: an unknown delta type, a filter the
   * namespace does not allow or that does not compile, and both together are refused (107); a delta the namespace
   * does not offer is simply not negotiated.
   */
  private streamOptions(ns: NamespaceOptions, req: CommandOf<'subscribe'>['params']): { delta: boolean; filter: TagFilter | undefined } {
    let filter: TagFilter | undefined;
    if (req.tf !== undefined && req.tf !== null) {
      if (!ns.allow_tags_filter) refuse(ErrorCode.BadRequest, 'tags filter is not allowed in this namespace (allow_tags_filter)');
      const compiled = compileTagFilter(req.tf);
      if (!compiled.ok) refuse(ErrorCode.BadRequest, compiled.error);
      filter = compiled.filter;
    }
    const asked = req.delta !== undefined && req.delta !== '';
    if (asked && req.delta !== 'fossil') refuse(ErrorCode.BadRequest, `unknown delta type ${JSON.stringify(req.delta)}; the only one is "fossil"`);
    if (asked && filter) refuse(ErrorCode.BadRequest, 'delta and tags filter cannot be used together');
    const delta = asked && ns.allowed_delta_types.includes('fossil');
    return { delta, filter };
  }

  /** After the reply holding the subscribe result: publications flow, and others hear of the join. */
  private startSubscription(sub: Subscription, position?: StreamPosition): void {
    if (this.subs.get(sub.channel) !== sub) return;
    sub.started = true;
    this.ctx.core.start(sub.channel, sub.ns, sub, position, sub.member);
  }

  private checkChannelLimit(): void {
    if (this.subs.size >= this.ctx.limits.maxChannelsPerConnection) {
      refuse(ErrorCode.LimitExceeded, `at most ${this.ctx.limits.maxChannelsPerConnection} channels per connection`);
    }
  }

  /**
   * Registers the subscription with the hub, reads the position (recovering when asked) and builds the
   * subscribe result. The caller sends the reply holding it and then calls `hub.start`. Undefined when the
   * session went away meanwhile.
   */
  private async openSubscription(
    channel: string,
    ns: NamespaceOptions,
    req: SubscribeOptions,
    expiresAt: number,
    serverSide: boolean,
    chanInfo: Json | undefined,
    stream: { delta: boolean; filter: TagFilter | undefined } = { delta: false, filter: undefined },
  ): Promise<OpenedSubscription | undefined> {
    const pushJoinLeave = ns.join_leave && (ns.force_push_join_leave || req.join_leave === true);
    // Idle connections are the common case: keep no per-subscription string the namespace does not use.
    const info = ns.presence || ns.join_leave ? JSON.stringify(this.clientInfo(chanInfo)) : '';
    const sub = new Subscription(this, channel, ns, serverSide, expiresAt, pushJoinLeave, info, stream.delta, stream.filter);
    this.subs.set(channel, sub);
    let outcome;
    try {
      outcome = await this.ctx.core.open(channel, ns, sub, { ...req, rejectUnrecovered: ((req.flag ?? 0) & SUBSCRIBE_FLAG_REJECT_UNRECOVERED) !== 0 }, sub.member);
    } catch (err) {
      // The core has already let go of it.
      if (this.subs.get(channel) === sub) this.subs.delete(channel);
      throw err;
    }
    if (this.closed || this.subs.get(channel) !== sub) {
      this.ctx.core.close(channel, ns, sub, sub.member, false);
      return undefined;
    }
    const { position, recoverable, recovering, recovered } = outcome;

    const result: SubscribeResult = {};
    if (expiresAt > 0) Object.assign(result, { expires: true, ttl: this.ttlSeconds(expiresAt) });
    if (position) {
      Object.assign(result, { epoch: position.epoch, offset: position.offset, positioned: true });
      if (recoverable) result.recoverable = true;
      if (recovering) {
        Object.assign(result, { was_recovering: true, recovered });
        if (recovered) result.publications = recoveredFor(sub, position.publications);
      }
    }
    if (sub.delta) result.delta = true;
    return {
      sub,
      result,
      position: position && { epoch: position.epoch, offset: position.offset },
      recoverable,
      recovered: recovered && position ? position.publications : undefined,
    };
  }

  private dropSubscription(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (sub.joined && !this.closed) {
      this.transport.leave(this.encoding.topic(sub.channel));
      if (sub.pushJoinLeave) this.transport.leave(this.encoding.joinLeaveTopic(sub.channel));
    }
    this.ctx.core.close(sub.channel, sub.ns, sub, sub.member, sub.started);
  }

  /** The server ends one subscription (HTTP API `unsubscribe`); the client does not resubscribe by itself. */
  serverUnsubscribe(channel: string): void {
    const sub = this.subs.get(channel);
    if (!sub || this.closed) return;
    this.dropSubscription(sub);
    // A server-side subscription still opening never told the client of itself.
    if (sub.serverSide && !sub.started) return;
    this.transport.send(this.codec.unsubscribePush(channel, { code: UnsubscribeCode.Server, reason: 'server unsubscribe' }));
  }

  /**
   * The HTTP API's `subscribe`: the connection is subscribed without asking, told with a `subscribe` push (then
   * the recovered publications as ordinary ones), and cannot unsubscribe by itself. Already subscribed or at its
   * channel limit, or still connecting: nothing happens. Refusals (engine unavailable) reach the caller.
   */
  async serverSubscribe(channel: string, req: ServerSubscribe): Promise<void> {
    if (this.closed || !this.welcomed || this.subs.has(channel)) return;
    const ns = this.namespace(channel);
    if (this.subs.size >= this.ctx.limits.maxChannelsPerConnection) {
      this.ctx.logger.warn({ channel, user: this.user, client: this.id }, 'server-side subscribe skipped: the connection is at its channel limit');
      return;
    }
    const options = req.override ? { ...ns, ...req.override } : ns;
    const since = req.recoverSince;
    const hints: SubscribeOptions = since ? { recover: true, offset: since.offset, epoch: since.epoch } : {};
    const opened = await this.openSubscription(channel, options, hints, (req.expireAt ?? 0) * 1000, true, req.info);
    if (!opened) return;
    const push: SubscribePush = {};
    if (opened.recoverable) push.recoverable = true;
    if (opened.position) Object.assign(push, { epoch: opened.position.epoch, offset: opened.position.offset, positioned: true });
    if (req.data !== undefined) push.data = req.data;
    this.transport.send(this.codec.subscribePush(channel, push));
    for (const pub of opened.recovered ?? []) this.transport.send(this.codec.publicationPush(channel, pub));
    this.startSubscription(opened.sub, opened.position);
  }

  /**
   * The HTTP API's `refresh`, with Centrifugo's semantics: `expired` (or an `expireAt` already past) closes the
   * connection with 3005; a later `expireAt` (unix seconds) becomes its expiry and `info` its connection info;
   * 0 means it never expires.
   */
  serverRefresh(expired: boolean, expireAt: number, info: Json | undefined): void {
    if (this.closed || !this.connected) return;
    const now = Date.now();
    if (expired || (expireAt > 0 && expireAt * 1000 <= now)) {
      this.disconnect(DisconnectCode.Expired, 'expired');
      return;
    }
    if (expireAt === 0) {
      this.expiresAt = 0;
      return;
    }
    this.expiresAt = Math.min(expireAt * 1000, now + MAX_TTL_MS);
    if (info !== undefined) this.connInfo = info;
  }

  /** Sends a frame to this client (used by its subscriptions while they catch up). */
  sendFrame(frame: Frame): void {
    if (!this.closed) this.transport.send(frame);
  }

  joinTopics(sub: Subscription, shared: boolean): void {
    if (this.closed) return;
    if (shared) this.transport.join(this.encoding.topic(sub.channel));
    if (sub.pushJoinLeave) this.transport.join(this.encoding.joinLeaveTopic(sub.channel));
  }

  /**
   * The gateway lost continuity on a channel: the client resubscribes and recovers from history. A
   * server-side subscription can only be restored by reconnecting.
   */
  resync(sub: Subscription): void {
    if (this.closed || this.subs.get(sub.channel) !== sub) return;
    if (sub.serverSide) {
      this.disconnect(DisconnectCode.InsufficientState, 'insufficient state');
      return;
    }
    this.dropSubscription(sub);
    this.transport.send(this.codec.unsubscribePush(sub.channel, { code: UnsubscribeCode.InsufficientState, reason: 'insufficient state' }));
  }

  private unsubscribe(cmd: CommandOf<'unsubscribe'>): Frame {
    const sub = this.subs.get(cmd.params.channel);
    if (sub) this.dropSubscription(sub);
    return this.reply(cmd, {});
  }

  private async publish(cmd: CommandOf<'publish'>): Promise<Frame> {
    const { channel, data } = cmd.params;
    const ns = this.namespace(channel);
    if (!canPublish(ns, this.actor, this.subs.has(channel))) refuse(ErrorCode.PermissionDenied, `cannot publish to channel ${JSON.stringify(channel)}`);
    await this.ctx.core.publish(channel, ns, JSON.stringify(data), { info: this.clientInfo(), source: 'client' });
    return this.reply(cmd, {});
  }

  private async history(cmd: CommandOf<'history'>): Promise<Frame> {
    const { channel, limit, since, reverse } = cmd.params;
    const ns = this.namespace(channel);
    if (ns.history_size === 0) refuse(ErrorCode.NotAvailable, 'history is not enabled for this channel');
    if (!canReadHistory(ns, this.actor, this.subs.has(channel))) refuse(ErrorCode.PermissionDenied, `cannot read the history of channel ${JSON.stringify(channel)}`);
    const result = await this.ctx.core.history(channel, ns, { limit: Math.max(0, limit ?? 0), since, reverse });
    checkHistorySince(result, since);
    return this.reply(cmd, result);
  }

  private async presence(cmd: CommandOf<'presence' | 'presence_stats'>): Promise<Frame> {
    const { channel } = cmd.params;
    const ns = this.namespace(channel);
    if (!ns.presence) refuse(ErrorCode.NotAvailable, 'presence is not enabled for this channel');
    if (!canReadPresence(ns, this.actor, this.subs.has(channel))) refuse(ErrorCode.PermissionDenied, `cannot read the presence of channel ${JSON.stringify(channel)}`);
    if (cmd.method === 'presence') return this.reply(cmd, { presence: await this.ctx.core.presence(channel, ns) });
    const stats = await this.ctx.core.presenceStats(channel, ns);
    return this.reply(cmd, { num_clients: stats.numClients, num_users: stats.numUsers });
  }

  /** RPC methods the gateway serves itself: the documents; anything else has no handler (108). */
  private async rpc(cmd: CommandOf<'rpc'>): Promise<Frame> {
    const { method, data } = cmd.params;
    if (method !== 'doc.get' && method !== 'doc.update') refuse(ErrorCode.NotAvailable, `no handler for rpc method "${method}"`);
    const { channel, ns } = this.ctx.documents.channelOf(data);
    const subscribed = this.subs.has(channel);
    let result: string;
    if (method === 'doc.get') {
      if (!canReadDocument(ns, this.actor, channel, subscribed)) refuse(ErrorCode.PermissionDenied, `cannot read document channel ${JSON.stringify(channel)}`);
      result = await this.ctx.documents.get(channel);
    } else {
      if (!canUpdateDocument(ns, this.actor, subscribed)) refuse(ErrorCode.PermissionDenied, `cannot update document channel ${JSON.stringify(channel)}`);
      result = await this.ctx.documents.update(channel, ns, data);
    }
    return this.reply(cmd, { data: result });
  }

  private async refresh(cmd: CommandOf<'refresh'>): Promise<Frame> {
    const claims = await this.verify(() => this.ctx.verifier.verifyConnect(cmd.params.token));
    if (claims.user !== this.user) throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another user');
    this.expiresAt = claims.exp * 1000;
    const result: RefreshResult = { client: this.id, version: this.ctx.version };
    if (this.expiresAt > 0) Object.assign(result, { expires: true, ttl: this.ttlSeconds(this.expiresAt) });
    return this.reply(cmd, result);
  }

  private async subRefresh(cmd: CommandOf<'sub_refresh'>): Promise<Frame> {
    const { channel, token } = cmd.params;
    const sub = this.subs.get(channel);
    if (!sub) refuse(ErrorCode.PermissionDenied, 'not subscribed to this channel');
    const claims = await this.verify(() => this.ctx.verifier.verifySubscribe(token));
    if (claims.channel !== channel || claims.user !== this.user) {
      throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another channel or user');
    }
    sub.expiresAt = claims.exp * 1000;
    return this.reply(cmd, sub.expiresAt > 0 ? { expires: true, ttl: this.ttlSeconds(sub.expiresAt) } : {});
  }

  /** Periodic check (about once a second): expired connection or subscription tokens. */
  checkExpiry(now: number): void {
    if (this.expiresAt > 0 && now > this.expiresAt) {
      this.disconnect(DisconnectCode.Expired, 'connection expired');
      return;
    }
    for (const sub of this.subs.values()) {
      if (sub.expiresAt > 0 && now > sub.expiresAt) {
        this.disconnect(DisconnectCode.SubscriptionExpired, 'subscription expired');
        return;
      }
    }
  }
}

/**
 * Recovered publications as this subscription takes them: filtered by its tags filter; with delta, full and, in the
 * JSON variant, with their data as a JSON string (Protobuf carries data as bytes either way).
 */
function recoveredFor(sub: Subscription, pubs: Publication[]): Publication[] {
  const asText = sub.delta && sub.encoding.codec.name === 'json';
  if (!asText && !sub.filter) return pubs;
  const out: Publication[] = [];
  for (const pub of pubs) {
    const obj = JSON.parse(pub.json) as { data?: unknown; tags?: Record<string, string> };
    if (sub.filter && !sub.filter(obj.tags)) continue;
    if (asText) {
      obj.data = JSON.stringify(obj.data ?? null);
      out.push({ offset: pub.offset, json: JSON.stringify(obj) });
    } else {
      out.push(pub);
    }
  }
  return out;
}
