// The Pusher HTTP API (`/apps/{id}/...`): signed requests from an app's backend, carried out through the channel core.
import { userOfInfo } from '@switchboard/engine';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { NamespaceOptions } from '../channels';
import type { ControlPlane } from '../control';
import type { ChannelCore } from '../core';
import { Refusal } from '../refusal';
import type { PusherAppRegistry } from './apps';
import { appChannelName, publicationData, switchboardChannel, TAG_EVENT, TAG_SOCKET_ID } from './channel_map';
import type { PusherEdgeApp } from './edge_apps';
import { TERMINATE } from './edge_constants';
import { eventNameProblem, PRESENCE_PREFIX, pusherChannelNameProblem, userIdProblem } from './names';
import { isSocketId, verifyApiRequest, type ApiParams } from './signature';

export interface PusherApiRequest {
  method: string;
  /** Path as received (it is signed as is), without the query string. */
  path: string;
  query: string;
  body: string;
}

export interface PusherApiResponse {
  status: number;
  contentType: 'application/json' | 'text/plain';
  body: string;
}

export interface PusherApiContext {
  core: ChannelCore;
  control: ControlPlane;
  logger: Logger;
}

/** Largest request body read (a batch of 10 events of 10 KB, escaped, fits many times over). */
export const MAX_PUSHER_API_BODY = 1024 * 1024;

/** A request refused with an HTTP status and a message saying what to change. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function fail(status: number, message: string): never {
  throw new ApiError(status, message);
}

function text(status: number, body: string): PusherApiResponse {
  return { status, contentType: 'text/plain', body };
}

function json(body: string): PusherApiResponse {
  return { status: 200, contentType: 'application/json', body };
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One event to publish, checked: every event of a request is checked before any is published. */
interface CheckedEvent {
  channel: string;
  ns: NamespaceOptions;
  name: string;
  data: string;
  socketId: string | undefined;
}

export class PusherHttpApi {
  constructor(
    private readonly ctx: PusherApiContext,
    private readonly apps: PusherAppRegistry,
    private readonly edgeApps: ReadonlyMap<string, PusherEdgeApp>,
  ) {}

  readonly maxBody = MAX_PUSHER_API_BODY;

  /** `rest`: the path after `/apps/{id}/`, split at '/'. Never throws. */
  async handle(appId: string, rest: string[], req: PusherApiRequest): Promise<PusherApiResponse> {
    const app = this.apps.byId(appId);
    const edgeApp = app && this.edgeApps.get(app.id);
    if (!app || !edgeApp) return text(404, `unknown app id ${JSON.stringify(appId.slice(0, 64))}`);
    const auth = verifyApiRequest(app, { method: req.method, path: req.path, query: req.query, body: req.body });
    if (!auth.ok) return text(auth.status, auth.message);
    if (!app.enabled) return text(403, 'application disabled');
    try {
      return await this.route(edgeApp, rest, req.method.toUpperCase(), auth.params, req.body);
    } catch (err) {
      if (err instanceof ApiError) return text(err.status, err.message);
      if (err instanceof Refusal) return text(err.error.code === 100 ? 503 : 400, err.error.message);
      this.ctx.logger.error({ err, app: app.id, path: req.path }, 'pusher API call failed');
      return text(500, 'internal error');
    }
  }

  private route(app: PusherEdgeApp, rest: string[], method: string, params: ApiParams, body: string): Promise<PusherApiResponse> {
    const [first, name, third] = rest;
    if (method === 'POST' && rest.length === 1 && first === 'events') return this.events(app, body);
    if (method === 'POST' && rest.length === 1 && first === 'batch_events') return this.batchEvents(app, body);
    if (method === 'GET' && rest.length === 1 && first === 'channels') return this.channels(app, params);
    if (method === 'GET' && rest.length === 2 && first === 'channels') return this.channel(app, this.channelName(app, name), params);
    if (method === 'GET' && rest.length === 3 && first === 'channels' && third === 'users') return this.users(app, this.channelName(app, name));
    if (method === 'POST' && rest.length === 3 && first === 'users' && third === 'terminate_connections') return this.terminate(app, this.userId(name));
    fail(404, `no such endpoint: ${method} /apps/{id}/${rest.join('/').slice(0, 200)}`);
  }

  private userId(raw: string): string {
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      fail(400, 'user id holds a malformed %-escape');
    }
    const problem = userIdProblem(id);
    if (problem !== undefined) fail(400, problem);
    return id;
  }

  /** Closes every connection signed in as the user, on every gateway (the edge's control message). */
  private async terminate(app: PusherEdgeApp, user: string): Promise<PusherApiResponse> {
    await this.ctx.core.engine('terminate_connections', undefined, () => this.ctx.control.broadcastToEdges(TERMINATE, { app: app.app.id, user }, user));
    return json('{}');
  }

  private parseBody(body: string): Obj {
    if (exceedsJsonDepth(body, MAX_JSON_DEPTH)) fail(400, `body nests deeper than ${MAX_JSON_DEPTH} levels`);
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      fail(400, 'body is not valid JSON');
    }
    if (!isObject(value)) fail(400, 'body must be a JSON object');
    return value;
  }

  private channelName(app: PusherEdgeApp, raw: string): string {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      fail(400, 'channel name holds a malformed %-escape');
    }
    const problem = pusherChannelNameProblem(name, app.app.limits.max_channel_name_length);
    if (problem !== undefined) fail(400, problem);
    return name;
  }

  /** Checks one event of `events` or `batch_events` against the app's limits and the channel's namespace. */
  private checkEvent(app: PusherEdgeApp, channel: unknown, name: unknown, data: unknown, socketId: unknown, where: string): CheckedEvent {
    const limits = app.app.limits;
    const channelProblem = pusherChannelNameProblem(channel, limits.max_channel_name_length);
    if (channelProblem !== undefined) fail(400, `${where}: ${channelProblem}`);
    const nameProblem = eventNameProblem(name, limits.max_event_name_length);
    if (nameProblem !== undefined) fail(400, `${where}: ${nameProblem}`);
    if (typeof data !== 'string') fail(400, `${where}: "data" must be a string (the event's data, JSON-encoded by the library)`);
    const maxBytes = Math.floor(limits.max_event_payload_in_kb * 1024);
    if (Buffer.byteLength(data, 'utf8') > maxBytes) fail(413, `${where}: "data" larger than ${maxBytes} bytes`);
    if (socketId !== undefined && socketId !== null && !isSocketId(socketId)) fail(400, `${where}: "socket_id" is not a socket id`);
    const sbChannel = switchboardChannel(app, channel as string);
    const ns = this.ctx.core.namespace(sbChannel);
    if (ns.documents) fail(403, `${where}: ${channel as string} is a document channel: write it with doc_update`);
    return { channel: sbChannel, ns, name: name as string, data, socketId: (socketId as string | null | undefined) ?? undefined };
  }

  private async publish(events: CheckedEvent[]): Promise<void> {
    await Promise.all(
      events.map((e) => {
        const tags: Record<string, string> = { [TAG_EVENT]: e.name };
        if (e.socketId !== undefined) tags[TAG_SOCKET_ID] = e.socketId;
        return this.ctx.core.publish(e.channel, e.ns, publicationData(e.data), { tags, source: 'api' });
      }),
    );
  }

  private async events(app: PusherEdgeApp, raw: string): Promise<PusherApiResponse> {
    const body = this.parseBody(raw);
    const channels = body.channels ?? (body.channel === undefined ? undefined : [body.channel]);
    if (!Array.isArray(channels) || channels.length === 0) fail(400, '"channels" must be a non-empty list of channel names (or give "channel")');
    const max = app.app.limits.max_event_channels_at_once;
    if (channels.length > max) fail(400, `at most ${max} channels per event`);
    if (new Set(channels).size !== channels.length) fail(400, '"channels" names a channel twice');
    const checked = channels.map((c: unknown, i: number) => this.checkEvent(app, c, body.name, body.data, body.socket_id, `channels[${i}]`));
    const info = this.eventInfo(body.info, channels as string[]);
    await this.publish(checked);
    if (info.size === 0) return json('{}');
    // Pusher answers `info` with the attributes of every channel the event went to, counted after publishing.
    const counts = info.has('subscription_count') ? await this.subscriberCounts(app) : undefined;
    const out: Record<string, Record<string, number>> = {};
    for (const name of channels as string[]) {
      const attrs: Record<string, number> = {};
      if (counts) attrs.subscription_count = counts.get(name) ?? 0;
      if (info.has('user_count') && name.startsWith(PRESENCE_PREFIX)) attrs.user_count = await this.userCount(app, name);
      out[name] = attrs;
    }
    return json(JSON.stringify({ channels: out }));
  }

  private async batchEvents(app: PusherEdgeApp, raw: string): Promise<PusherApiResponse> {
    const body = this.parseBody(raw);
    const batch = body.batch;
    if (!Array.isArray(batch) || batch.length === 0) fail(400, '"batch" must be a non-empty list of events');
    const max = app.app.limits.max_event_batch_size;
    if (batch.length > max) fail(400, `at most ${max} events per batch`);
    const checked = batch.map((e: unknown, i: number) => {
      if (!isObject(e)) fail(400, `batch[${i}]: expected an object with "channel", "name" and "data"`);
      return this.checkEvent(app, e.channel, e.name, e.data, e.socket_id, `batch[${i}]`);
    });
    await this.publish(checked);
    return json('{}');
  }

  /** The `info` of an event: a comma-separated string of user_count and subscription_count. */
  private eventInfo(raw: unknown, channels: string[]): Set<string> {
    if (raw === undefined || raw === null || raw === '') return new Set();
    if (typeof raw !== 'string') fail(400, '"info" must be a comma-separated string');
    const info = new Set(raw.split(',').filter((s) => s !== ''));
    for (const attr of info) {
      if (attr !== 'user_count' && attr !== 'subscription_count') fail(400, `unknown info attribute ${JSON.stringify(attr.slice(0, 64))}`);
    }
    if (info.has('user_count') && !channels.some((c) => c.startsWith(PRESENCE_PREFIX))) fail(400, 'info=user_count is only available for presence- channels');
    return info;
  }

  /** `info` as a set of attribute names; user_count only where presence- channels are asked for. */
  private infoOf(params: ApiParams, presence: boolean): Set<string> {
    const info = new Set((params.get('info') ?? '').split(',').filter((s) => s !== ''));
    for (const attr of info) {
      if (attr !== 'user_count' && attr !== 'subscription_count') fail(400, `unknown info attribute ${JSON.stringify(attr.slice(0, 64))}`);
    }
    if (info.has('user_count') && !presence) fail(400, 'info=user_count is only available for presence- channels');
    return info;
  }

  /** Subscriber counts of this app's channels across the cluster (every gateway answers the survey). */
  private async subscriberCounts(app: PusherEdgeApp): Promise<Map<string, number>> {
    const replies = await this.ctx.core.engine('channels', undefined, () => this.ctx.control.survey('channels'));
    const counts = new Map<string, number>();
    for (const reply of replies.values()) {
      for (const [channel, n] of Object.entries(reply as Record<string, number>)) {
        const name = appChannelName(app, channel);
        if (name !== undefined && n > 0) counts.set(name, (counts.get(name) ?? 0) + n);
      }
    }
    return counts;
  }

  private async userCount(app: PusherEdgeApp, name: string): Promise<number> {
    const channel = switchboardChannel(app, name);
    const ns = this.ctx.core.namespace(channel);
    if (!ns.presence) return 0;
    return (await this.ctx.core.presenceStats(channel, ns)).numUsers;
  }

  private async channels(app: PusherEdgeApp, params: ApiParams): Promise<PusherApiResponse> {
    const prefix = params.get('filter_by_prefix') ?? '';
    const info = this.infoOf(params, prefix.startsWith(PRESENCE_PREFIX));
    const counts = await this.subscriberCounts(app);
    const names = [...counts.keys()].filter((n) => n.startsWith(prefix)).sort();
    const entries = await Promise.all(
      names.map(async (n) => {
        const attrs: Record<string, number> = {};
        if (info.has('user_count')) attrs.user_count = await this.userCount(app, n);
        if (info.has('subscription_count')) attrs.subscription_count = counts.get(n) ?? 0;
        return `${JSON.stringify(n)}:${JSON.stringify(attrs)}`;
      }),
    );
    return json(`{"channels":{${entries.join(',')}}}`);
  }

  private async channel(app: PusherEdgeApp, name: string, params: ApiParams): Promise<PusherApiResponse> {
    const info = this.infoOf(params, name.startsWith(PRESENCE_PREFIX));
    const count = (await this.subscriberCounts(app)).get(name) ?? 0;
    const out: Record<string, unknown> = { occupied: count > 0 };
    if (info.has('user_count')) out.user_count = await this.userCount(app, name);
    if (info.has('subscription_count')) out.subscription_count = count;
    return json(JSON.stringify(out));
  }

  private async users(app: PusherEdgeApp, name: string): Promise<PusherApiResponse> {
    if (!name.startsWith(PRESENCE_PREFIX)) fail(400, 'users are only available for presence- channels');
    const channel = switchboardChannel(app, name);
    const ns = this.ctx.core.namespace(channel);
    if (!ns.presence) return json('{"users":[]}');
    const entries = await this.ctx.core.presence(channel, ns);
    const ids = new Set<string>();
    for (const info of entries.values()) {
      // An entry without a user (anonymous, or not ClientInfo JSON) is nobody.
      const user = userOfInfo(info);
      if (user !== '') ids.add(user);
    }
    return json(JSON.stringify({ users: [...ids].map((id) => ({ id })) }));
  }
}
