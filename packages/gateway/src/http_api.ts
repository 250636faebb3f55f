// The server HTTP API (`POST /api/<method>`): what a backend does with an API key, cluster-wide.
import { timingSafeEqual } from 'node:crypto';
import { DisconnectCode, ErrorCode, exceedsJsonDepth, MAX_JSON_DEPTH, protocolError, type ProtocolError } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { NamespaceOptions } from './channels';
import type { ControlPlane, NodeInfo } from './control';
import type { ChannelCore } from './core';
import type { Documents } from './documents';
import { globMatcher, MAX_PATTERN_LENGTH } from './glob';
import { encodeHistory } from './history';
import { Refusal, refuse } from './refusal';
import { encodePresence, encodePresenceStats } from './presence';

export interface ApiResponse {
  status: number;
  body: string;
}

export interface ApiContext {
  core: ChannelCore;
  control: ControlPlane;
  documents: Documents;
  logger: Logger;
  apiKey?: string;
}

type Body = Record<string, unknown>;

const MAX_API_BODY = 1024 * 1024;

function errorBody(error: ProtocolError): string {
  return JSON.stringify({ error });
}

export class HttpApi {
  private readonly key: Buffer | undefined;
  private readonly methods: Record<string, (body: Body) => Promise<string>> = {
    publish: (b) => this.publish(b),
    broadcast: (b) => this.broadcast(b),
    history: (b) => this.history(b),
    history_remove: (b) => this.historyRemove(b),
    presence: (b) => this.presence(b),
    presence_stats: (b) => this.presenceStats(b),
    channels: (b) => this.activeChannels(b),
    info: () => this.info(),
    unsubscribe: (b) => this.unsubscribe(b),
    disconnect: (b) => this.disconnect(b),
    doc_get: (b) => this.ctx.documents.get(this.ctx.documents.channelOf(b).channel),
    doc_update: (b) => {
      const { channel, ns } = this.ctx.documents.channelOf(b);
      return this.ctx.documents.update(channel, ns, b);
    },
  };

  constructor(private readonly ctx: ApiContext) {
    this.key = ctx.apiKey ? Buffer.from(ctx.apiKey) : undefined;
  }

  /** Largest request body read. */
  readonly maxBody = MAX_API_BODY;

  get enabled(): boolean {
    return this.key !== undefined;
  }

  /** The answer to a request refused before its body is read (API disabled, wrong key), or undefined. */
  precheck(xApiKey: string, authorization: string): ApiResponse | undefined {
    if (!this.enabled) return { status: 404, body: '{"error":{"code":108,"message":"not available: the HTTP API is disabled (no API key set)"}}' };
    if (!this.authorized(xApiKey, authorization)) return { status: 401, body: '{"error":{"code":101,"message":"unauthorized: wrong or missing API key"}}' };
    return undefined;
  }

  tooLarge(): ApiResponse {
    return { status: 413, body: `{"error":{"code":106,"message":"limit exceeded: body larger than ${MAX_API_BODY} bytes"}}` };
  }

  /** Compares in constant time; accepts `X-API-Key: k` and `Authorization: apikey k`. */
  authorized(xApiKey: string, authorization: string): boolean {
    if (!this.key) return false;
    let given = xApiKey;
    if (given === '' && authorization.toLowerCase().startsWith('apikey ')) given = authorization.slice(7).trim();
    const buf = Buffer.from(given);
    return buf.length === this.key.length && timingSafeEqual(buf, this.key);
  }

  async handle(method: string, rawBody: string): Promise<ApiResponse> {
    const handler = Object.prototype.hasOwnProperty.call(this.methods, method) ? this.methods[method] : undefined;
    if (!handler) return { status: 404, body: errorBody(protocolError(ErrorCode.MethodNotFound, `unknown API method "${method}"`)) };
    if (exceedsJsonDepth(rawBody, MAX_JSON_DEPTH)) {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, `body nests deeper than ${MAX_JSON_DEPTH} levels`)) };
    }
    let body: unknown;
    try {
      body = rawBody.trim() === '' ? {} : JSON.parse(rawBody);
    } catch {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, 'body is not valid JSON')) };
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, 'body must be a JSON object')) };
    }
    try {
      return { status: 200, body: `{"result":${await handler(body as Body)}}` };
    } catch (e) {
      if (e instanceof Refusal) return { status: 200, body: errorBody(e.error) };
      this.ctx.logger.error({ err: e, method }, 'API call failed');
      return { status: 200, body: errorBody(protocolError(ErrorCode.Internal)) };
    }
  }

  private channel(body: Body, writing = true): { channel: string; ns: NamespaceOptions } {
    const channel = body.channel;
    if (typeof channel !== 'string' || channel === '') refuse(ErrorCode.BadRequest, '"channel" must be a non-empty string');
    return { channel, ns: this.namespace(channel, writing) };
  }

  private namespace(channel: string, writing = true): NamespaceOptions {
    const ns = this.ctx.core.namespace(channel);
    if (writing && ns.documents) refuse(ErrorCode.PermissionDenied, `"${channel}" is a document: write it with doc_update`);
    return ns;
  }

  private string(body: Body, key: string, required: boolean): string | undefined {
    const v = body[key];
    if (v === undefined || v === null) {
      if (required) refuse(ErrorCode.BadRequest, `"${key}" is required`);
      return undefined;
    }
    if (typeof v !== 'string') refuse(ErrorCode.BadRequest, `"${key}" must be a string`);
    return v;
  }

  private data(body: Body): string {
    if (body.data === undefined) refuse(ErrorCode.BadRequest, '"data" is required');
    return JSON.stringify(body.data);
  }

  private idempotencyKey(body: Body): string | undefined {
    const key = body.idempotency_key;
    if (key === undefined || key === null || key === '') return undefined;
    if (typeof key !== 'string' || key.length > 256) refuse(ErrorCode.BadRequest, '"idempotency_key" must be a string of at most 256 characters');
    return key;
  }

  private async publishOne(channel: string, ns: NamespaceOptions, data: string, idempotencyKey?: string): Promise<string> {
    const result = await this.ctx.core.publish(channel, ns, data, { idempotencyKey, source: 'api' });
    return JSON.stringify({ offset: result.offset, epoch: result.epoch });
  }

  private async publish(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body);
    return this.publishOne(channel, ns, this.data(body), this.idempotencyKey(body));
  }

  private async broadcast(body: Body): Promise<string> {
    const channels = body.channels;
    if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'string' && c !== '')) {
      refuse(ErrorCode.BadRequest, '"channels" must be a non-empty array of channel names');
    }
    if (channels.length > 10000) refuse(ErrorCode.LimitExceeded, 'at most 10000 channels per broadcast');
    const data = this.data(body);
    const key = this.idempotencyKey(body);
    const responses = await Promise.all(
      (channels as string[]).map(async (channel) => {
        try {
          return `{"result":${await this.publishOne(channel, this.namespace(channel), data, key)}}`;
        } catch (e) {
          if (e instanceof Refusal) return errorBody(e.error);
          throw e;
        }
      }),
    );
    return `{"responses":[${responses.join(',')}]}`;
  }

  private async history(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body, false);
    const limit = body.limit ?? 0;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit)) refuse(ErrorCode.BadRequest, '"limit" must be an integer');
    const reverse = body.reverse ?? false;
    if (typeof reverse !== 'boolean') refuse(ErrorCode.BadRequest, '"reverse" must be a boolean');
    let since: { offset: number; epoch: string } | undefined;
    if (body.since !== undefined && body.since !== null) {
      const s = body.since as Body;
      if (typeof s !== 'object' || typeof (s.offset ?? 0) !== 'number' || typeof (s.epoch ?? '') !== 'string') {
        refuse(ErrorCode.BadRequest, '"since" must be {"offset": number, "epoch": string}');
      }
      since = { offset: (s.offset as number | undefined) ?? 0, epoch: (s.epoch as string | undefined) ?? '' };
    }
    const result = await this.ctx.core.history(channel, ns, { limit, since, reverse });
    return encodeHistory(result, since);
  }

  private async historyRemove(body: Body): Promise<string> {
    const { channel } = this.channel(body, false);
    await this.ctx.core.removeHistory(channel);
    return '{}';
  }

  private async presence(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body, false);
    return encodePresence(await this.ctx.core.presence(channel, ns));
  }

  private async presenceStats(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body, false);
    return encodePresenceStats(await this.ctx.core.presenceStats(channel, ns));
  }

  /** Channels with at least one subscriber on some node, with their subscriber counts; `pattern` may use `*`. */
  private async activeChannels(body: Body): Promise<string> {
    const pattern = this.string(body, 'pattern', false);
    if (pattern !== undefined && pattern.length > MAX_PATTERN_LENGTH) refuse(ErrorCode.BadRequest, `"pattern" longer than ${MAX_PATTERN_LENGTH} characters`);
    const match = pattern ? globMatcher(pattern) : () => true;
    const replies = await this.ctx.control.survey('channels');
    const counts = new Map<string, number>();
    for (const reply of replies.values()) {
      for (const [channel, n] of Object.entries(reply as Record<string, number>)) {
        if (match(channel)) counts.set(channel, (counts.get(channel) ?? 0) + n);
      }
    }
    const channels: Record<string, { num_clients: number }> = {};
    for (const [channel, n] of counts) channels[channel] = { num_clients: n };
    return JSON.stringify({ channels });
  }

  private async info(): Promise<string> {
    const replies = await this.ctx.control.survey('info');
    return JSON.stringify({ nodes: [...replies.values()] as NodeInfo[] });
  }

  private async unsubscribe(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const { channel } = this.channel(body, false);
    const client = this.string(body, 'client', false);
    await this.ctx.core.engine('unsubscribe', channel, () => this.ctx.control.unsubscribe(user, channel, client));
    return '{}';
  }

  private async disconnect(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const client = this.string(body, 'client', false);
    let code: number = DisconnectCode.ForceNoReconnect;
    let reason = 'force disconnect';
    if (body.disconnect !== undefined && body.disconnect !== null) {
      const d = body.disconnect as Body;
      if (typeof d !== 'object' || !Number.isInteger(d.code) || (d.code as number) < 3000 || (d.code as number) > 4999) {
        refuse(ErrorCode.BadRequest, '"disconnect" must be {"code": 3000..4999, "reason": string}');
      }
      code = d.code as number;
      reason = typeof d.reason === 'string' ? d.reason.slice(0, 100) : '';
    }
    await this.ctx.core.engine('disconnect', undefined, () => this.ctx.control.disconnect(user, client, code, reason));
    return '{}';
  }
}
