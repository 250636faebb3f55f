// The server HTTP API (`POST /api/<method>`): backends publish, broadcast and read history with an API key.
import { timingSafeEqual } from 'node:crypto';
import { encodePublicationBody, ErrorCode, protocolError, type ProtocolError } from '@switchboard/protocol';
import type { Broker } from '@switchboard/engine';
import type { Logger } from 'pino';
import { resolveChannel, type ChannelConfig, type NamespaceOptions } from './channels';
import type { GatewayLimits } from './options';

export interface ApiResponse {
  status: number;
  body: string;
}

export interface ApiContext {
  broker: Broker;
  channels: ChannelConfig;
  limits: GatewayLimits;
  logger: Logger;
  apiKey?: string;
}

class ApiError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

function fail(code: number, detail?: string): never {
  throw new ApiError(protocolError(code, detail));
}

type Body = Record<string, unknown>;

function errorBody(error: ProtocolError): string {
  return JSON.stringify({ error });
}

export class HttpApi {
  private readonly key: Buffer | undefined;
  private readonly methods: Record<string, (body: Body) => Promise<string>> = {
    publish: (b) => this.publish(b),
    broadcast: (b) => this.broadcast(b),
    history: (b) => this.history(b),
  };

  constructor(private readonly ctx: ApiContext) {
    this.key = ctx.apiKey ? Buffer.from(ctx.apiKey) : undefined;
  }

  get enabled(): boolean {
    return this.key !== undefined;
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
      if (e instanceof ApiError) return { status: 200, body: errorBody(e.error) };
      this.ctx.logger.error({ err: e, method }, 'API call failed');
      return { status: 200, body: errorBody(protocolError(ErrorCode.Internal)) };
    }
  }

  private channel(body: Body, key = 'channel'): { channel: string; ns: NamespaceOptions } {
    const channel = body[key];
    if (typeof channel !== 'string' || channel === '') fail(ErrorCode.BadRequest, `"${key}" must be a non-empty string`);
    return { channel, ns: this.namespace(channel) };
  }

  private namespace(channel: string): NamespaceOptions {
    if (channel.length > this.ctx.limits.maxChannelLength) {
      fail(ErrorCode.BadRequest, `channel name longer than ${this.ctx.limits.maxChannelLength} characters`);
    }
    const ns = resolveChannel(this.ctx.channels, channel);
    if (!ns) fail(ErrorCode.UnknownChannel, `no namespace for channel "${channel}"`);
    if (ns.documents) fail(ErrorCode.PermissionDenied, `"${channel}" is a document: write it with doc_update`);
    return ns;
  }

  private data(body: Body): string {
    if (body.data === undefined) fail(ErrorCode.BadRequest, '"data" is required');
    const encoded = JSON.stringify(body.data);
    if (encoded.length > this.ctx.limits.maxMessageSize) {
      fail(ErrorCode.LimitExceeded, `data larger than ${this.ctx.limits.maxMessageSize} bytes`);
    }
    return encoded;
  }

  private idempotencyKey(body: Body): string | undefined {
    const key = body.idempotency_key;
    if (key === undefined || key === null || key === '') return undefined;
    if (typeof key !== 'string' || key.length > 256) fail(ErrorCode.BadRequest, '"idempotency_key" must be a string of at most 256 characters');
    return key;
  }

  private async publishOne(channel: string, ns: NamespaceOptions, data: string, idempotencyKey?: string): Promise<string> {
    let result;
    try {
      result = await this.ctx.broker.publish(channel, encodePublicationBody(data), {
        historySize: ns.history_size,
        historyTtlSeconds: ns.history_ttl,
        idempotencyKey,
      });
    } catch (err) {
      this.ctx.logger.warn({ channel, err: (err as Error).message }, 'engine publish failed');
      fail(ErrorCode.Internal, 'engine unavailable, retry');
    }
    return JSON.stringify({ offset: result.offset, epoch: result.epoch });
  }

  private async publish(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body);
    return this.publishOne(channel, ns, this.data(body), this.idempotencyKey(body));
  }

  private async broadcast(body: Body): Promise<string> {
    const channels = body.channels;
    if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'string' && c !== '')) {
      fail(ErrorCode.BadRequest, '"channels" must be a non-empty array of channel names');
    }
    if (channels.length > 10000) fail(ErrorCode.LimitExceeded, 'at most 10000 channels per broadcast');
    const data = this.data(body);
    const key = this.idempotencyKey(body);
    const responses = await Promise.all(
      (channels as string[]).map(async (channel) => {
        try {
          return `{"result":${await this.publishOne(channel, this.namespace(channel), data, key)}}`;
        } catch (e) {
          if (e instanceof ApiError) return errorBody(e.error);
          throw e;
        }
      }),
    );
    return `{"responses":[${responses.join(',')}]}`;
  }

  private async history(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body);
    if (ns.history_size === 0) fail(ErrorCode.NotAvailable, 'history is not enabled for this channel');
    const limit = body.limit ?? 0;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit)) fail(ErrorCode.BadRequest, '"limit" must be an integer');
    const reverse = body.reverse ?? false;
    if (typeof reverse !== 'boolean') fail(ErrorCode.BadRequest, '"reverse" must be a boolean');
    let since: { offset: number; epoch: string } | undefined;
    if (body.since !== undefined && body.since !== null) {
      const s = body.since as Body;
      if (typeof s !== 'object' || typeof (s.offset ?? 0) !== 'number' || typeof (s.epoch ?? '') !== 'string') {
        fail(ErrorCode.BadRequest, '"since" must be {"offset": number, "epoch": string}');
      }
      since = { offset: (s.offset as number | undefined) ?? 0, epoch: (s.epoch as string | undefined) ?? '' };
    }
    let result;
    try {
      result = await this.ctx.broker.history(channel, {
        limit: limit < 0 ? ns.history_size : Math.min(limit, ns.history_size),
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
}
