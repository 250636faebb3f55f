// One client connection: decodes its frames, runs its commands in order, holds its subscriptions.
import {
  decodeFrame,
  DisconnectCode,
  encodeError,
  encodePublicationBody,
  encodePush,
  encodeReply,
  ErrorCode,
  protocolError,
  UnsubscribeCode,
} from '@switchboard/protocol';
import type { ClientInfo, Command, CommandOf, Json, ProtocolError, StreamPosition } from '@switchboard/protocol';
import type { HistoryResult } from '@switchboard/engine';
import { nanoid } from 'nanoid';
import { TokenError } from './auth';
import { resolveChannel, type NamespaceOptions } from './channels';
import type { GatewayContext } from './context';
import type { HubSubscriber } from './hub';
import { canPublish, canReadHistory, canReadPresence, canSubscribe, type Actor } from './permissions';

/** The socket side of a session, so the session does not depend on uWS. */
export interface Transport {
  send(frame: string): void;
  close(code: number, reason: string): void;
  /** Start and stop receiving the channel's fan-out frames. */
  join(channel: string): void;
  leave(channel: string): void;
}

/** Refuses the command with a reply error; the connection stays. */
class CommandError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
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

function fail(code: number, detail?: string): never {
  throw new CommandError(protocolError(code, detail));
}

/** One channel of one session, as the hub sees it. */
class Subscription implements HubSubscriber {
  /** In the channel's shared fan-out. */
  joined = false;

  constructor(
    readonly session: ClientSession,
    readonly channel: string,
    readonly ns: NamespaceOptions,
    /** From the connection token's `channels` claim: the client cannot resubscribe it by itself. */
    readonly serverSide: boolean,
    /** Unix ms after which the subscription token expires; 0 = never. */
    public expiresAt: number,
  ) {}

  send(frame: string): void {
    this.session.sendFrame(frame);
  }

  join(): void {
    this.joined = true;
    this.session.joinChannel(this.channel);
  }

  resync(): void {
    this.session.resync(this);
  }
}

/** What a subscribe asks for: the client's request, or the hints of a server-side subscription. */
interface SubscribeOptions {
  recover?: boolean;
  epoch?: string;
  offset?: number;
  positioned?: boolean;
  recoverable?: boolean;
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
  private readonly subs = new Map<string, Subscription>();
  private readonly queue: Command[] = [];
  private running = false;
  private tokens: number;
  private refilledAt = this.openedAt;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly transport: Transport,
  ) {
    this.tokens = ctx.limits.commandBurst;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  onFrame(text: string): void {
    if (this.closed) return;
    this.lastSeen = Date.now();
    for (const item of decodeFrame(text)) {
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
          this.transport.send(encodeError(item.id, item.error));
          break;
        case 'command':
          if (this.admit(item.command)) this.queue.push(item.command);
          if (this.closed) return;
      }
    }
    void this.pump();
  }

  /** Called once by the transport when the socket is gone, whoever closed it. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    for (const sub of this.subs.values()) this.ctx.hub.remove(sub.channel, sub);
    this.subs.clear();
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
    if (cmd.method !== 'send') this.transport.send(encodeError(cmd.id, protocolError(ErrorCode.TooManyRequests)));
    return false;
  }

  /** Commands of one connection run one after another, as the client sent them. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const cmd = this.queue.shift() as Command;
        await this.run(cmd);
      }
    } finally {
      this.running = false;
    }
  }

  private async run(cmd: Command): Promise<void> {
    try {
      if (!this.connected && cmd.method !== 'connect') {
        throw new DisconnectError(DisconnectCode.BadRequest, 'bad request: connect first');
      }
      const result = await this.dispatch(cmd);
      if (result !== undefined && !this.closed) this.transport.send(encodeReply(cmd.id, cmd.method, result));
    } catch (e) {
      if (e instanceof CommandError) {
        if (cmd.method !== 'send') this.transport.send(encodeError(cmd.id, e.error));
      } else if (e instanceof DisconnectError) {
        this.disconnect(e.code, e.reason);
      } else {
        this.ctx.logger.error({ err: e, client: this.id, method: cmd.method }, 'command failed');
        if (cmd.method !== 'send') this.transport.send(encodeError(cmd.id, protocolError(ErrorCode.Internal)));
      }
    }
  }

  /** Returns the encoded result, or undefined when the handler replied itself or no reply is due. */
  private dispatch(cmd: Command): Promise<string | undefined> | string | undefined {
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
        return fail(ErrorCode.NotAvailable, `no handler for rpc method "${cmd.params.method}"`);
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

  private async connect(cmd: CommandOf<'connect'>): Promise<string> {
    if (this.connected) throw new DisconnectError(DisconnectCode.BadRequest, 'bad request: already connected');
    const { token } = cmd.params;
    if (token) {
      if (!this.ctx.verifier.enabled) fail(ErrorCode.Unauthorized, 'this server has no token key configured');
      const claims = await this.verify(() => this.ctx.verifier.verifyConnect(token));
      this.user = claims.user;
      this.connInfo = claims.info;
      this.expiresAt = claims.exp * 1000;
    } else if (!this.ctx.insecure) {
      fail(ErrorCode.Unauthorized, 'a connection token is required');
    }
    this.connected = true;
    const result: Record<string, unknown> = {
      client: this.id,
      version: this.ctx.version,
      ping: this.ctx.limits.pingIntervalSeconds,
      pong: true,
      node: this.ctx.node,
    };
    if (this.expiresAt > 0) Object.assign(result, { expires: true, ttl: this.ttlSeconds(this.expiresAt) });
    return JSON.stringify(result);
  }

  /** Runs a token check: an expired token is error 109, any other bad token ends the connection with 3500. */
  private async verify<T>(check: () => Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (e) {
      if (!(e instanceof TokenError)) throw e;
      if (e.expired) fail(ErrorCode.TokenExpired);
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
    if (channel.length > this.ctx.limits.maxChannelLength) {
      fail(ErrorCode.BadRequest, `channel name longer than ${this.ctx.limits.maxChannelLength} characters`);
    }
    const ns = resolveChannel(this.ctx.channels, channel);
    if (!ns) fail(ErrorCode.UnknownChannel, `no namespace for channel "${channel}"`);
    return ns;
  }

  private async subscribe(cmd: CommandOf<'subscribe'>): Promise<undefined> {
    const req = cmd.params;
    const { channel } = req;
    const ns = this.namespace(channel);
    if (this.subs.has(channel)) fail(ErrorCode.AlreadySubscribed);
    this.checkChannelLimit();
    let expiresAt = 0;
    if (req.token) {
      const claims = await this.verify(() => this.ctx.verifier.verifySubscribe(req.token as string));
      if (claims.channel !== channel || claims.user !== this.user) {
        throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another channel or user');
      }
      expiresAt = claims.exp * 1000;
    } else if (!canSubscribe(ns, this.actor, channel)) {
      fail(ErrorCode.PermissionDenied);
    }
    if (this.closed || this.subs.has(channel)) fail(ErrorCode.AlreadySubscribed);
    const opened = await this.openSubscription(channel, ns, req, expiresAt, false);
    if (!opened) return undefined;
    this.transport.send(encodeReply(cmd.id, 'subscribe', opened.result));
    this.ctx.hub.start(channel, opened.sub, opened.position);
    return undefined;
  }

  private checkChannelLimit(): void {
    if (this.subs.size >= this.ctx.limits.maxChannelsPerConnection) {
      fail(ErrorCode.LimitExceeded, `at most ${this.ctx.limits.maxChannelsPerConnection} channels per connection`);
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
  ): Promise<{ sub: Subscription; result: string; position?: StreamPosition } | undefined> {
    const sub = new Subscription(this, channel, ns, serverSide, expiresAt);
    this.subs.set(channel, sub);
    try {
      await this.ctx.hub.add(channel, sub);
    } catch (err) {
      this.dropSubscription(sub);
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine subscribe failed');
      fail(ErrorCode.Internal, 'engine unavailable, retry');
    }

    const historyOn = ns.history_size > 0;
    const recoverable = historyOn && (ns.force_recovery || (ns.allow_recovery && req.recoverable === true));
    const positioned = recoverable || (historyOn && (ns.force_positioning || (ns.allow_positioning && req.positioned === true)));
    const recovering = recoverable && req.recover === true;
    let position: HistoryResult | undefined;
    let recovered = false;
    try {
      if (recovering) {
        position = await this.ctx.broker.history(channel, {
          limit: this.ctx.limits.maxRecoveredPublications,
          since: { offset: req.offset ?? 0, epoch: req.epoch ?? '' },
          metaTtlSeconds: ns.history_ttl,
        });
        recovered = isRecovered(position, req.offset ?? 0, req.epoch ?? '');
      } else if (positioned) {
        position = await this.ctx.broker.history(channel, { limit: 0, metaTtlSeconds: ns.history_ttl });
      }
    } catch (err) {
      this.dropSubscription(sub);
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine history failed');
      fail(ErrorCode.Internal, 'engine unavailable, retry');
    }
    if (this.closed || this.subs.get(channel) !== sub) return undefined;
    if (recovering && !recovered && ((req.flag ?? 0) & SUBSCRIBE_FLAG_REJECT_UNRECOVERED) !== 0) {
      this.dropSubscription(sub);
      fail(ErrorCode.UnrecoverablePosition);
    }

    const fields: string[] = [];
    if (expiresAt > 0) fields.push(`"expires":true,"ttl":${this.ttlSeconds(expiresAt)}`);
    if (position) {
      fields.push(`"epoch":${JSON.stringify(position.epoch)},"offset":${position.offset},"positioned":true`);
      if (recoverable) fields.push('"recoverable":true');
      if (recovering) {
        fields.push(`"was_recovering":true,"recovered":${recovered}`);
        if (recovered) fields.push(`"publications":[${position.publications.map((p) => p.json).join(',')}]`);
      }
    }
    return { sub, result: `{${fields.join(',')}}`, position: position && { epoch: position.epoch, offset: position.offset } };
  }

  private dropSubscription(sub: Subscription): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (sub.joined) this.transport.leave(sub.channel);
    this.ctx.hub.remove(sub.channel, sub);
  }

  /** Sends a frame to this client (used by its subscriptions while they catch up). */
  sendFrame(frame: string): void {
    if (!this.closed) this.transport.send(frame);
  }

  joinChannel(channel: string): void {
    if (!this.closed) this.transport.join(channel);
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
    this.transport.send(encodePush(sub.channel, 'unsubscribe', { code: UnsubscribeCode.InsufficientState, reason: 'insufficient state' }));
  }

  private unsubscribe(cmd: CommandOf<'unsubscribe'>): string {
    const sub = this.subs.get(cmd.params.channel);
    if (sub) this.dropSubscription(sub);
    return '{}';
  }

  private async publish(cmd: CommandOf<'publish'>): Promise<string> {
    const { channel, data } = cmd.params;
    const ns = this.namespace(channel);
    if (!canPublish(ns, this.actor, this.subs.has(channel))) fail(ErrorCode.PermissionDenied);
    const encoded = JSON.stringify(data);
    if (encoded.length > this.ctx.limits.maxMessageSize) {
      fail(ErrorCode.LimitExceeded, `data larger than ${this.ctx.limits.maxMessageSize} bytes`);
    }
    try {
      await this.ctx.broker.publish(channel, encodePublicationBody(encoded, this.clientInfo()), {
        historySize: ns.history_size,
        historyTtlSeconds: ns.history_ttl,
      });
    } catch (err) {
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine publish failed');
      fail(ErrorCode.Internal, 'engine unavailable, retry');
    }
    return '{}';
  }

  private async history(cmd: CommandOf<'history'>): Promise<string> {
    const { channel, limit, since, reverse } = cmd.params;
    const ns = this.namespace(channel);
    if (ns.history_size === 0) fail(ErrorCode.NotAvailable, 'history is not enabled for this channel');
    if (!canReadHistory(ns, this.actor, this.subs.has(channel))) fail(ErrorCode.PermissionDenied);
    let result: HistoryResult;
    try {
      result = await this.ctx.broker.history(channel, {
        limit: Math.min(limit ?? 0, ns.history_size),
        since,
        reverse,
        metaTtlSeconds: ns.history_ttl,
      });
    } catch (err) {
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine history failed');
      fail(ErrorCode.Internal, 'engine unavailable, retry');
    }
    if (since && since.epoch !== '' && since.epoch !== result.epoch) fail(ErrorCode.UnrecoverablePosition);
    const pubs = result.publications.map((p) => p.json).join(',');
    return `{"publications":[${pubs}],"epoch":${JSON.stringify(result.epoch)},"offset":${result.offset}}`;
  }

  private presence(cmd: CommandOf<'presence' | 'presence_stats'>): never {
    const ns = this.namespace(cmd.params.channel);
    if (!canReadPresence(ns, this.actor, this.subs.has(cmd.params.channel))) fail(ErrorCode.PermissionDenied);
    return fail(ErrorCode.NotAvailable, 'presence is not enabled for this channel');
  }

  private async refresh(cmd: CommandOf<'refresh'>): Promise<string> {
    const claims = await this.verify(() => this.ctx.verifier.verifyConnect(cmd.params.token));
    if (claims.user !== this.user) throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another user');
    this.expiresAt = claims.exp * 1000;
    const result: Record<string, unknown> = { client: this.id, version: this.ctx.version };
    if (this.expiresAt > 0) Object.assign(result, { expires: true, ttl: this.ttlSeconds(this.expiresAt) });
    return JSON.stringify(result);
  }

  private async subRefresh(cmd: CommandOf<'sub_refresh'>): Promise<string> {
    const { channel, token } = cmd.params;
    const sub = this.subs.get(channel);
    if (!sub) fail(ErrorCode.PermissionDenied, 'not subscribed to this channel');
    const claims = await this.verify(() => this.ctx.verifier.verifySubscribe(token));
    if (claims.channel !== channel || claims.user !== this.user) {
      throw new DisconnectError(DisconnectCode.InvalidToken, 'invalid token: issued for another channel or user');
    }
    sub.expiresAt = claims.exp * 1000;
    return sub.expiresAt > 0 ? `{"expires":true,"ttl":${this.ttlSeconds(sub.expiresAt)}}` : '{}';
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

/** Recovery succeeded when the epoch matches and history holds every publication after the client's offset. */
export function isRecovered(history: HistoryResult, offset: number, epoch: string): boolean {
  if (epoch !== '' && epoch !== history.epoch) return false;
  const missed = history.offset - offset;
  if (missed < 0) return false;
  if (missed === 0) return true;
  const pubs = history.publications;
  return pubs.length === missed && pubs[0].offset === offset + 1;
}
