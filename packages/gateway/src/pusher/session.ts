// One Pusher protocol 7 connection: decodes its frames, runs its commands in order, holds its subscriptions.
// Channel rules live in the channel core; this file only maps Pusher frames onto it and its refusals back.
import { userOfInfo } from '@switchboard/engine';
import { ErrorCode, type ClientInfo, type Json } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import type { NamespaceOptions } from '../channels';
import type { ChannelCore, Member } from '../core';
import type { FanoutEncoding, HubSubscriber } from '../hub';
import type { GatewayLimits } from '../options';
import { canSubscribe } from '../permissions';
import { Refusal } from '../refusal';
import { pusherTopic } from '../topics';
import { publicationData, switchboardChannel, TAG_EVENT, TAG_SOCKET_ID, TAG_USER_ID } from './channel_map';
import { PusherErrorCode } from './codes';
import type { PusherEdgeApp } from './edge_apps';
import {
  clientFrameRules,
  decodeClientFrame,
  encodeConnectionEstablished,
  encodeError,
  encodePresenceSubscriptionSucceeded,
  encodeSigninSuccess,
  encodeSubscriptionError,
  encodeSubscriptionSucceeded,
  parsePresenceChannelData,
  parseUserData,
  PING_FRAME,
  PONG_FRAME,
  type ClientFrameRules,
  type PresenceMember,
  type PusherCommand,
  type SignedInUser,
} from './frames';
import { needsChannelAuth, serverToUserChannel, type PusherChannelType } from './names';
import { generateSocketId, verifyChannelAuth, verifyUserAuth } from './signature';
import { SmallMap } from '../small_map';

/** The socket side of a Pusher session, so the session does not depend on uWS beyond the socket's identity. */
export interface PusherTransport {
  readonly ws: WebSocket<unknown>;
  send(frame: string): void;
  close(code: number, reason: string): void;
  join(topic: string): void;
  leave(topic: string): void;
}

export interface PusherSessionContext {
  core: ChannelCore;
  encoding: FanoutEncoding;
  limits: GatewayLimits;
  /** Centrifugo's insecure mode: every public channel may be subscribed. */
  insecure: boolean;
  logger: Logger;
  /** Seconds of silence before a ping (sent to the client in connection_established). */
  activityTimeoutSeconds: number;
  /** A connection signed in (or out, when it closes): the edge keeps its index of users for terminate_connections. */
  onSignedIn(session: PusherSession): void;
}

/** One channel of one Pusher connection, as the hub sees it. */
class PusherSubscription implements HubSubscriber {
  joined = false;
  /** Its subscription_succeeded went out (a join was announced where the namespace does so). */
  started = false;

  constructor(
    readonly session: PusherSession,
    /** The Pusher name. */
    readonly name: string,
    readonly type: PusherChannelType,
    /** The Switchboard channel. */
    readonly channel: string,
    readonly ns: NamespaceOptions,
    readonly member: Member,
    /** The presence member's user id; undefined on other channels. */
    readonly userId: string | undefined,
  ) {}

  get encoding(): FanoutEncoding {
    return this.session.encoding;
  }

  get socket(): WebSocket<unknown> {
    return this.session.socket;
  }

  send(frame: string): void {
    this.session.send(frame);
  }

  join(): void {
    if (this.joined) return;
    this.joined = true;
    this.session.joinTopic(this);
  }

  /**
   * The hub lost continuity on the channel. Pusher has no recovery: the subscriber keeps (or takes) its place in
   * the fan-out and gets what follows, as a Pusher client would after a gap.
   */
  resync(): void {
    this.join();
  }
}

/**
 * Presence channels announce every join and leave, whatever the namespace says about join_leave: Pusher's
 * member_added / member_removed are those announcements.
 */
function presenceOptions(ns: NamespaceOptions, type: PusherChannelType): NamespaceOptions {
  return type === 'presence' && !ns.join_leave ? { ...ns, join_leave: true } : ns;
}

/** A refusal of the core as Pusher's subscription_error: its `type` and an HTTP-like `status`. */
function subscriptionErrorOf(code: number): { type: string; status: number } {
  switch (code) {
    case ErrorCode.PermissionDenied:
    case ErrorCode.Unauthorized:
      return { type: 'AuthError', status: 403 };
    case ErrorCode.LimitExceeded:
      return { type: 'LimitReached', status: 400 };
    case ErrorCode.BadRequest:
    case ErrorCode.UnknownChannel:
    case ErrorCode.NotAvailable:
      return { type: 'BadRequest', status: 400 };
    default:
      return { type: 'ServerError', status: 500 };
  }
}

/** Commands waiting per connection before further ones are refused: a client that floods gets 4301 / closes. */
const MAX_QUEUED = 64;

export class PusherSession {
  readonly socketId = generateSocketId();
  closed = false;
  /** Unix ms of the last frame from the client. */
  lastSeen = Date.now();
  /** Unix ms of the ping sent while waiting for a pong; 0 when none is outstanding. */
  pingSentAt = 0;
  /** By Pusher channel name; most connections hold one (see SmallMap). */
  private readonly subs = new SmallMap<PusherSubscription>();
  private readonly rules: ClientFrameRules;
  private queue: PusherCommand[] | undefined;
  private running = false;
  private commandTokens: number;
  private eventTokens: number;
  private refilledAt = this.lastSeen;
  /** Set by pusher:signin. */
  user: SignedInUser | undefined;

  constructor(
    private readonly ctx: PusherSessionContext,
    readonly app: PusherEdgeApp,
    private readonly transport: PusherTransport,
  ) {
    this.rules = clientFrameRules(app.app);
    this.commandTokens = ctx.limits.commandBurst;
    this.eventTokens = this.eventRate;
  }

  get encoding(): FanoutEncoding {
    return this.ctx.encoding;
  }

  get socket(): WebSocket<unknown> {
    return this.transport.ws;
  }

  private get eventRate(): number {
    return this.app.app.limits.max_client_events_per_second;
  }

  /** Sends connection_established; call once the socket is open. */
  start(): void {
    this.send(encodeConnectionEstablished(this.socketId, this.ctx.activityTimeoutSeconds));
  }

  send(frame: string): void {
    if (!this.closed) this.transport.send(frame);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.transport.close(code, reason);
    this.onClose();
  }

  /** Called once by the transport when the socket is gone, whoever closed it. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = undefined;
    for (const sub of this.subs.values()) this.drop(sub);
  }

  /** Liveness: a ping after `activityMs` of silence, close 4201 when no frame answers it within `pongTimeoutMs`. */
  checkActivity(now: number, activityMs: number, pongTimeoutMs: number): void {
    if (this.pingSentAt > 0) {
      if (this.lastSeen > this.pingSentAt) this.pingSentAt = 0;
      else if (now - this.pingSentAt > pongTimeoutMs) {
        this.send(encodeError(PusherErrorCode.PongNotReceived, 'Pong reply not received'));
        this.close(PusherErrorCode.PongNotReceived, 'Pong reply not received');
        return;
      }
    }
    if (this.pingSentAt === 0 && now - this.lastSeen > activityMs) {
      this.pingSentAt = now;
      this.send(PING_FRAME);
    }
  }

  onFrame(text: string): void {
    if (this.closed) return;
    this.lastSeen = Date.now();
    const cmd = decodeClientFrame(text, this.rules);
    switch (cmd.kind) {
      case 'error':
        // A subscribe the decoder refused names its channel: the refusal goes to that channel.
        if (cmd.channel !== undefined && cmd.code === PusherErrorCode.Unauthorized) {
          this.send(encodeSubscriptionError(cmd.channel, 'AuthError', cmd.message, 401));
        } else {
          this.send(encodeError(cmd.code, cmd.message, cmd.channel));
        }
        return;
      case 'ping':
        this.send(PONG_FRAME);
        return;
      case 'pong':
        return;
    }
    if (!this.admit()) return;
    (this.queue ??= []).push(cmd);
    void this.pump();
  }

  /** Token bucket per connection (the gateway's command rate); far over it the connection closes with 4301. */
  private admit(): boolean {
    const { commandsPerSecond, commandBurst } = this.ctx.limits;
    const now = Date.now();
    const elapsed = (now - this.refilledAt) / 1000;
    this.refilledAt = now;
    this.commandTokens = Math.min(commandBurst, this.commandTokens + elapsed * commandsPerSecond);
    this.eventTokens = Math.min(this.eventRate, this.eventTokens + elapsed * this.eventRate);
    this.commandTokens -= 1;
    if (this.commandTokens >= 0 && (this.queue?.length ?? 0) < MAX_QUEUED) return true;
    if (this.commandTokens < -commandBurst) {
      this.close(PusherErrorCode.OverCapacity, 'too many messages');
      return false;
    }
    this.send(encodeError(PusherErrorCode.ClientEventRejected, 'too many messages; slow down'));
    return false;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue && this.queue.length > 0 && !this.closed) {
        const cmd = this.queue.shift() as PusherCommand;
        try {
          await this.run(cmd);
        } catch (err) {
          this.ctx.logger.error({ err, socket: this.socketId, command: cmd.kind }, 'pusher command failed');
          this.send(encodeError(null, 'internal error'));
        }
      }
    } finally {
      this.running = false;
      if (this.queue?.length === 0) this.queue = undefined;
    }
  }

  private async run(cmd: PusherCommand): Promise<void> {
    switch (cmd.kind) {
      case 'subscribe':
        return this.subscribe(cmd);
      case 'unsubscribe': {
        const sub = this.subs.get(cmd.channel);
        if (sub) this.drop(sub);
        return;
      }
      case 'client-event':
        return this.clientEvent(cmd);
      case 'signin':
        return this.signin(cmd);
    }
  }

  /** User authentication: the backend signed `socket_id::user::user_data`; the connection becomes that user's. */
  private signin(cmd: Extract<PusherCommand, { kind: 'signin' }>): void {
    if (this.user !== undefined) {
      this.send(encodeError(PusherErrorCode.Unauthorized, `already signed in as ${JSON.stringify(this.user.id)}`));
      return;
    }
    const check = verifyUserAuth(this.app.app, this.socketId, cmd.userData, cmd.auth);
    if (!check.ok) {
      this.send(encodeError(check.code, check.message));
      return;
    }
    const parsed = parseUserData(cmd.userData);
    if (!parsed.ok) {
      this.send(encodeError(parsed.code, parsed.message));
      return;
    }
    this.user = parsed.value;
    this.ctx.onSignedIn(this);
    this.send(encodeSigninSuccess(cmd.userData));
  }

  private refuseSubscription(name: string, type: string, message: string, status: number): void {
    this.send(encodeSubscriptionError(name, type, message, status));
  }

  private async subscribe(cmd: Extract<PusherCommand, { kind: 'subscribe' }>): Promise<void> {
    const { channel: name, type } = cmd;
    if (this.subs.has(name)) return; // Subscribed already: pusher-js sends one subscribe per channel.
    // A user's own channel: only a connection signed in as that user (pusher-js subscribes it after sign-in).
    if (type === 'server-to-user' && (this.user === undefined || serverToUserChannel(this.user.id) !== name)) {
      this.refuseSubscription(name, 'AuthError', 'a #server-to-user- channel is only for a connection signed in as that user (pusher:signin)', 403);
      return;
    }
    if (this.subs.size >= this.ctx.limits.maxChannelsPerConnection) {
      this.refuseSubscription(name, 'LimitReached', `at most ${this.ctx.limits.maxChannelsPerConnection} channels per connection`, 400);
      return;
    }
    const channel = switchboardChannel(this.app, name);
    let ns: NamespaceOptions;
    try {
      ns = this.ctx.core.namespace(channel);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const { type: errType, status } = subscriptionErrorOf(err.error.code);
      this.refuseSubscription(name, errType, err.error.message, status);
      return;
    }
    let member: PresenceMember | undefined;
    if (needsChannelAuth(type)) {
      // The backend's signature is the permission, as a subscription token is for Centrifugo clients.
      const check = verifyChannelAuth(this.app.app, this.socketId, name, cmd.auth, cmd.channelData);
      if (!check.ok) {
        this.refuseSubscription(name, 'AuthError', check.message, 401);
        return;
      }
    } else if (type !== 'server-to-user' && !canSubscribe(ns, { user: '', insecure: this.ctx.insecure }, channel)) {
      this.refuseSubscription(name, 'AuthError', `public channels of this app need allow_subscribe_for_client and allow_subscribe_for_anonymous in their namespace`, 403);
      return;
    }
    if (type === 'presence') {
      if (!ns.presence) {
        this.refuseSubscription(name, 'BadRequest', 'presence is not enabled for this channel: set presence: true in its namespace', 400);
        return;
      }
      if (cmd.channelData === undefined) {
        this.refuseSubscription(name, 'AuthError', 'presence channels need "channel_data" with a user_id', 401);
        return;
      }
      const parsed = parsePresenceChannelData(cmd.channelData);
      if (!parsed.ok) {
        this.refuseSubscription(name, 'AuthError', parsed.message, 401);
        return;
      }
      member = parsed.value;
    }
    const effective = presenceOptions(ns, type);
    const info: ClientInfo = { user: member?.user_id ?? '', client: this.socketId };
    if (member && member.user_info !== null) info.chan_info = member.user_info;
    const encodedInfo = effective.presence || effective.join_leave ? JSON.stringify(info) : '';
    const sub = new PusherSubscription(this, name, type, channel, effective, { client: this.socketId, info: encodedInfo }, member?.user_id);
    this.subs.set(name, sub);
    let position;
    let roster: Map<string, string> | undefined;
    let opened = false;
    try {
      position = (await this.ctx.core.open(channel, effective, sub, {}, sub.member)).position;
      opened = true;
      if (type === 'presence') {
        roster = await this.ctx.core.presence(channel, effective);
        const max = this.app.app.limits.max_presence_members_per_channel;
        const users = new Set(membersOf(roster).map((m) => m.user_id));
        // Over the limit a new user is refused (its entry, just added, is undone); more connections of a user present still join.
        if (member && users.size > max && !wasPresent(roster, member.user_id, this.socketId)) {
          throw new Refusal({ code: ErrorCode.LimitExceeded, message: `presence channel is full: at most ${max} members` });
        }
      }
    } catch (err) {
      if (this.subs.get(name) === sub) this.subs.delete(name);
      // A refused open() let go of everything itself; a failed roster read leaves a subscription to undo.
      if (opened) this.ctx.core.close(channel, effective, sub, sub.member, false);
      if (!(err instanceof Refusal)) throw err;
      const { type: errType, status } = subscriptionErrorOf(err.error.code);
      this.refuseSubscription(name, errType, err.error.message, status);
      return;
    }
    if (this.closed || this.subs.get(name) !== sub) {
      this.ctx.core.close(channel, effective, sub, sub.member, false);
      return;
    }
    this.send(roster === undefined ? encodeSubscriptionSucceeded(name) : encodePresenceSubscriptionSucceeded(name, membersOf(roster)));
    sub.started = true;
    this.ctx.core.start(channel, effective, sub, position && { epoch: position.epoch, offset: position.offset }, sub.member);
  }

  private drop(sub: PusherSubscription): void {
    if (this.subs.get(sub.name) !== sub) return;
    this.subs.delete(sub.name);
    if (sub.joined && !this.closed) this.transport.leave(pusherTopic(sub.channel));
    this.ctx.core.close(sub.channel, sub.ns, sub, sub.member, sub.started);
  }

  joinTopic(sub: PusherSubscription): void {
    if (!this.closed && this.subs.get(sub.name) === sub) this.transport.join(pusherTopic(sub.channel));
  }

  private async clientEvent(cmd: Extract<PusherCommand, { kind: 'client-event' }>): Promise<void> {
    const sub = this.subs.get(cmd.channel);
    if (!sub || !sub.started) {
      this.send(encodeError(PusherErrorCode.ClientEventRejected, `client event on ${cmd.channel}: subscribe to the channel first`, cmd.channel));
      return;
    }
    this.eventTokens -= 1;
    if (this.eventTokens < 0) {
      this.eventTokens = 0;
      this.send(encodeError(PusherErrorCode.ClientEventRejected, `more than ${this.eventRate} client events per second`, cmd.channel));
      return;
    }
    const tags: Record<string, string> = { [TAG_EVENT]: cmd.event, [TAG_SOCKET_ID]: this.socketId };
    if (sub.userId !== undefined) tags[TAG_USER_ID] = sub.userId;
    try {
      await this.ctx.core.publish(sub.channel, sub.ns, publicationData(cmd.data), { tags, source: 'client' });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.send(encodeError(PusherErrorCode.ClientEventRejected, `client event rejected: ${err.error.message}`, cmd.channel));
    }
  }
}

/** Whether `user` had a presence entry other than this connection's. */
function wasPresent(roster: Map<string, string>, user: string, socketId: string): boolean {
  for (const [client, info] of roster) {
    if (client !== socketId && userOfInfo(info) === user) return true;
  }
  return false;
}

/** Presence entries (client id → encoded ClientInfo) as Pusher members: `user` is the user id, `chan_info` the user info. */
export function membersOf(entries: Map<string, string>): PresenceMember[] {
  const members: PresenceMember[] = [];
  for (const info of entries.values()) {
    let parsed: { user?: unknown; chan_info?: unknown };
    try {
      parsed = JSON.parse(info) as { user?: unknown; chan_info?: unknown };
    } catch {
      continue;
    }
    if (typeof parsed.user !== 'string' || parsed.user === '') continue;
    members.push({ user_id: parsed.user, user_info: (parsed.chan_info ?? null) as Json });
  }
  return members;
}
