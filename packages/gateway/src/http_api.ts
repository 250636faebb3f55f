// The server HTTP API (`POST /api/<method>`): what a backend does with an API key, cluster-wide.
import { timingSafeEqual } from 'node:crypto';
import { DisconnectCode, ErrorCode, exceedsJsonDepth, MAX_JSON_DEPTH, protocolError, type Json, type ProtocolError, type StreamPosition } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { NamespaceOptions } from './channels';
import type { ControlPlane, NodeInfo } from './control';
import type { ChannelCore } from './core';
import type { Documents } from './documents';
import { globMatcher, MAX_PATTERN_LENGTH } from './glob';
import { encodeHistory } from './history';
import { Refusal, refuse } from './refusal';
import { encodePresence, encodePresenceStats } from './presence';
import type { ServerSubscribe, SubscribeOverride } from './session';

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
const MAX_BROADCAST_CHANNELS = 10000;
const MAX_BATCH_COMMANDS = 1000;
/** Commands of a `parallel` batch in flight at once. */
const BATCH_CONCURRENCY = 64;
const MAX_TAGS = 64;
const MAX_WHITELIST = 10000;

const NO_SESSION = 'Switchboard connections have no session id; name one connection with "client"';
const NO_VERSIONING = 'publication versioning is not supported; publish without it';

/**
 * Every field Centrifugo v6 defines for each method Switchboard serves (`doc_get` and `doc_update` are
 * Switchboard's own): the honoured ones, and the refused ones with why. A refused field set to anything but its
 * zero value (false, 0, "", empty) gets 107 naming it, so nothing a backend asks for is silently dropped; fields
 * nobody defines are ignored, as Centrifugo ignores them.
 */
export const API_FIELDS: Record<string, { honoured: readonly string[]; refused: Readonly<Record<string, string>> }> = {
  publish: {
    honoured: ['channel', 'data', 'b64data', 'skip_history', 'tags', 'idempotency_key', 'delta'],
    refused: { version: NO_VERSIONING, version_epoch: NO_VERSIONING },
  },
  broadcast: {
    honoured: ['channels', 'data', 'b64data', 'skip_history', 'tags', 'idempotency_key', 'delta'],
    refused: { version: NO_VERSIONING, version_epoch: NO_VERSIONING },
  },
  subscribe: {
    honoured: ['user', 'channel', 'client', 'info', 'b64info', 'data', 'b64data', 'recover_since', 'override', 'expire_at'],
    refused: { session: NO_SESSION },
  },
  unsubscribe: { honoured: ['user', 'channel', 'client'], refused: { session: NO_SESSION } },
  disconnect: { honoured: ['user', 'client', 'disconnect', 'whitelist'], refused: { session: NO_SESSION } },
  refresh: { honoured: ['user', 'client', 'expired', 'expire_at', 'info'], refused: { session: NO_SESSION } },
  history: { honoured: ['channel', 'limit', 'since', 'reverse'], refused: {} },
  history_remove: { honoured: ['channel'], refused: {} },
  presence: { honoured: ['channel'], refused: {} },
  presence_stats: { honoured: ['channel'], refused: {} },
  channels: { honoured: ['pattern'], refused: {} },
  info: { honoured: [], refused: {} },
  batch: { honoured: ['commands', 'parallel'], refused: {} },
};

/** API_FIELDS' refused fields per method as a list, made once rather than per request. */
const REFUSED_FIELDS = new Map(Object.entries(API_FIELDS).map(([method, fields]) => [method, Object.entries(fields.refused)] as const));

/** Centrifugo v6 methods Switchboard does not serve: in a batch they are answered 104 by name. */
const CENTRIFUGO_ONLY_METHODS = new Set([
  'rpc',
  'connections',
  'update_user_status',
  'get_user_status',
  'delete_user_status',
  'block_user',
  'unblock_user',
  'revoke_token',
  'invalidate_user_tokens',
  'device_register',
  'device_update',
  'device_remove',
  'device_list',
  'device_topic_list',
  'device_topic_update',
  'user_topic_list',
  'user_topic_update',
  'send_push_notification',
  'update_push_status',
  'cancel_push',
]);

/** The override options of a server-side subscribe, each `{"value": bool}` as in Centrifugo. */
const OVERRIDES: readonly (keyof SubscribeOverride)[] = ['presence', 'join_leave', 'force_recovery', 'force_positioning', 'force_push_join_leave'];

/** Standard base64 with padding, as Centrifugo decodes it; a fixed pattern, linear in the input. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Refuses bytes that are not UTF-8 instead of replacing them. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function errorBody(error: ProtocolError): string {
  return JSON.stringify({ error });
}

/** proto3's zero values: a field holding one is as good as absent. */
function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

function isObject(v: unknown): v is Body {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class HttpApi {
  private readonly key: Buffer | undefined;
  private readonly methods: Record<string, (body: Body) => Promise<string>> = {
    publish: (b) => this.publish(b),
    broadcast: (b) => this.broadcast(b),
    subscribe: (b) => this.subscribe(b),
    unsubscribe: (b) => this.unsubscribe(b),
    disconnect: (b) => this.disconnect(b),
    refresh: (b) => this.refresh(b),
    history: (b) => this.history(b),
    history_remove: (b) => this.historyRemove(b),
    presence: (b) => this.presence(b),
    presence_stats: (b) => this.presenceStats(b),
    channels: (b) => this.activeChannels(b),
    info: () => this.info(),
    batch: (b) => this.batch(b),
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
    if (!this.serves(method)) return { status: 404, body: errorBody(protocolError(ErrorCode.MethodNotFound, `unknown API method "${method}"`)) };
    if (exceedsJsonDepth(rawBody, MAX_JSON_DEPTH)) {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, `body nests deeper than ${MAX_JSON_DEPTH} levels`)) };
    }
    let body: unknown;
    try {
      body = rawBody.trim() === '' ? {} : JSON.parse(rawBody);
    } catch {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, 'body is not valid JSON')) };
    }
    if (!isObject(body)) {
      return { status: 400, body: errorBody(protocolError(ErrorCode.BadRequest, 'body must be a JSON object')) };
    }
    try {
      return { status: 200, body: `{"result":${await this.call(method, body)}}` };
    } catch (e) {
      if (e instanceof Refusal) return { status: 200, body: errorBody(e.error) };
      this.ctx.logger.error({ err: e, method }, 'API call failed');
      return { status: 200, body: errorBody(protocolError(ErrorCode.Internal)) };
    }
  }

  private serves(method: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.methods, method);
  }

  /** One method call, the same whether it came alone or in a batch: refused fields first, then the method. */
  private call(method: string, body: Body): Promise<string> {
    const refused = REFUSED_FIELDS.get(method);
    if (refused !== undefined) {
      for (const [field, why] of refused) {
        if (!isZero(body[field])) refuse(ErrorCode.BadRequest, `"${field}" is not supported: ${why}`);
      }
    }
    return this.methods[method](body);
  }

  // ---- batch

  /** `{"commands":[{"<method>":{…}}, …], "parallel": bool}` → `{"replies":[{"<method>":{…}} | {"error":{…}}, …]}` in order. */
  private async batch(body: Body): Promise<string> {
    const commands = body.commands ?? [];
    if (!Array.isArray(commands)) refuse(ErrorCode.BadRequest, '"commands" must be an array of {"<method>": {...}} objects');
    if (commands.length > MAX_BATCH_COMMANDS) refuse(ErrorCode.LimitExceeded, `at most ${MAX_BATCH_COMMANDS} commands per batch`);
    const parallel = this.boolean(body, 'parallel');
    const replies: string[] = new Array(commands.length);
    if (!parallel) {
      for (let i = 0; i < commands.length; i++) replies[i] = await this.batchReply(commands[i]);
    } else {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < commands.length) {
          const i = next++;
          replies[i] = await this.batchReply(commands[i]);
        }
      };
      await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, commands.length) }, worker));
    }
    return `{"replies":[${replies.join(',')}]}`;
  }

  /** One command of a batch; its failure is its reply, never the batch's. */
  private async batchReply(command: unknown): Promise<string> {
    try {
      const [method, params] = this.batchCommand(command);
      return `{"${method}":${await this.call(method, params)}}`;
    } catch (e) {
      if (e instanceof Refusal) return errorBody(e.error);
      this.ctx.logger.error({ err: e }, 'API batch command failed');
      return errorBody(protocolError(ErrorCode.Internal));
    }
  }

  /** The method a batch command names, and its parameters; keys that name no Centrifugo method are ignored. */
  private batchCommand(command: unknown): [string, Body] {
    if (!isObject(command)) refuse(ErrorCode.BadRequest, 'each command must be an object {"<method>": {...}}');
    const named = Object.keys(command).filter((k) => this.serves(k) || CENTRIFUGO_ONLY_METHODS.has(k));
    if (named.length === 0) refuse(ErrorCode.MethodNotFound, 'the command names no API method: write {"<method>": {...}}, e.g. {"publish": {...}}');
    if (named.length > 1) refuse(ErrorCode.BadRequest, `a command names one method, this one names ${named.join(', ')}`);
    const method = named[0];
    if (method === 'batch') refuse(ErrorCode.BadRequest, '"batch" cannot be nested in a batch');
    if (!this.serves(method)) refuse(ErrorCode.MethodNotFound, `"${method}" is not served by Switchboard`);
    const params = command[method] ?? {};
    if (!isObject(params)) refuse(ErrorCode.BadRequest, `"${method}" must hold an object of parameters`);
    return [method, params];
  }

  // ---- field readers: each refusal names the field and what it must be

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

  private boolean(body: Body, key: string): boolean {
    const v = body[key] ?? false;
    if (typeof v !== 'boolean') refuse(ErrorCode.BadRequest, `"${key}" must be a boolean`);
    return v;
  }

  /** A whole number of seconds since the epoch, 0 when absent. */
  private unixSeconds(body: Body, key: string): number {
    const v = body[key] ?? 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) refuse(ErrorCode.BadRequest, `"${key}" must be a Unix time in seconds (0 or more)`);
    return v;
  }

  /**
   * A JSON value given as `key` or, base64-encoded, as `b64key` (which wins when both are set, as in Centrifugo).
   * JSON clients receive data as raw JSON inside the frame, so decoded bytes must be JSON: binary cannot reach them.
   */
  private json(body: Body, key: string, b64 = `b64${key}`): Json | undefined {
    const encoded = body[b64];
    if (encoded !== undefined && encoded !== null && encoded !== '') {
      if (typeof encoded !== 'string' || encoded.length % 4 !== 0 || !BASE64.test(encoded)) refuse(ErrorCode.BadRequest, `"${b64}" must be standard base64`);
      const notJson = `"${b64}" must decode to JSON: Switchboard speaks the JSON protocol, whose clients cannot receive binary data`;
      let text: string;
      try {
        text = UTF8.decode(Buffer.from(encoded, 'base64'));
      } catch {
        refuse(ErrorCode.BadRequest, notJson);
      }
      if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) refuse(ErrorCode.BadRequest, `"${b64}" nests deeper than ${MAX_JSON_DEPTH} levels`);
      try {
        return JSON.parse(text) as Json;
      } catch {
        refuse(ErrorCode.BadRequest, notJson);
      }
    }
    const v = body[key];
    return v === undefined ? undefined : (v as Json);
  }

  /** The publication's data, encoded. */
  private data(body: Body): string {
    const data = this.json(body, 'data');
    if (data === undefined) refuse(ErrorCode.BadRequest, '"data" (or "b64data") is required');
    return JSON.stringify(data);
  }

  private idempotencyKey(body: Body): string | undefined {
    const key = body.idempotency_key;
    if (key === undefined || key === null || key === '') return undefined;
    if (typeof key !== 'string' || key.length > 256) refuse(ErrorCode.BadRequest, '"idempotency_key" must be a string of at most 256 characters');
    return key;
  }

  private tags(body: Body): Record<string, string> | undefined {
    const tags = body.tags;
    if (tags === undefined || tags === null) return undefined;
    if (!isObject(tags) || !Object.values(tags).every((v) => typeof v === 'string')) refuse(ErrorCode.BadRequest, '"tags" must be an object of string values');
    if (Object.keys(tags).length > MAX_TAGS) refuse(ErrorCode.LimitExceeded, `at most ${MAX_TAGS} tags per publication`);
    return tags as Record<string, string>;
  }

  private position(body: Body, key: string): StreamPosition | undefined {
    const p = body[key];
    if (p === undefined || p === null) return undefined;
    const offset = isObject(p) ? (p.offset ?? 0) : undefined;
    const epoch = isObject(p) ? (p.epoch ?? '') : undefined;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || typeof epoch !== 'string') {
      refuse(ErrorCode.BadRequest, `"${key}" must be {"offset": number, "epoch": string}`);
    }
    return { offset, epoch };
  }

  // ---- publications

  /** What publish and broadcast share: data, tags, key, whether history keeps it, whether delta subscribers get a delta. */
  private publication(body: Body): { data: string; tags?: Record<string, string>; idempotencyKey?: string; skipHistory: boolean; delta: boolean } {
    return {
      data: this.data(body),
      tags: this.tags(body),
      idempotencyKey: this.idempotencyKey(body),
      skipHistory: this.boolean(body, 'skip_history'),
      delta: this.boolean(body, 'delta'),
    };
  }

  private async publishOne(channel: string, ns: NamespaceOptions, p: ReturnType<HttpApi['publication']>): Promise<string> {
    // skip_history: published as on a namespace without history, so it is delivered live with no offset and
    // stored nowhere, as Centrifugo does; there is no stream position to report either.
    const target = p.skipHistory ? { ...ns, history_size: 0 } : ns;
    const result = await this.ctx.core.publish(channel, target, p.data, { idempotencyKey: p.idempotencyKey, tags: p.tags, delta: p.delta, source: 'api' });
    if (p.skipHistory) return '{}';
    return JSON.stringify({ offset: result.offset, epoch: result.epoch });
  }

  private async publish(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body);
    return this.publishOne(channel, ns, this.publication(body));
  }

  private async broadcast(body: Body): Promise<string> {
    const channels = body.channels;
    if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === 'string' && c !== '')) {
      refuse(ErrorCode.BadRequest, '"channels" must be a non-empty array of channel names');
    }
    if (channels.length > MAX_BROADCAST_CHANNELS) refuse(ErrorCode.LimitExceeded, `at most ${MAX_BROADCAST_CHANNELS} channels per broadcast`);
    const p = this.publication(body);
    const responses = await Promise.all(
      (channels as string[]).map(async (channel) => {
        try {
          return `{"result":${await this.publishOne(channel, this.namespace(channel), p)}}`;
        } catch (e) {
          if (e instanceof Refusal) return errorBody(e.error);
          throw e;
        }
      }),
    );
    return `{"responses":[${responses.join(',')}]}`;
  }

  // ---- reads

  private async history(body: Body): Promise<string> {
    const { channel, ns } = this.channel(body, false);
    const limit = body.limit ?? 0;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit)) refuse(ErrorCode.BadRequest, '"limit" must be an integer');
    const reverse = this.boolean(body, 'reverse');
    const since = this.position(body, 'since');
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

  /** Every live node's own figures, each read by that node when asked. */
  private async info(): Promise<string> {
    const replies = await this.ctx.control.survey('info');
    const nodes = ([...replies.values()] as NodeInfo[]).sort((x, y) => x.name.localeCompare(y.name) || x.uid.localeCompare(y.uid));
    return JSON.stringify({ nodes });
  }

  // ---- connections, on every gateway through the control plane

  private async subscribe(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const { channel } = this.channel(body, false);
    const client = this.string(body, 'client', false) || undefined;
    const sub: ServerSubscribe = {};
    const info = this.json(body, 'info');
    if (info !== undefined && info !== null) sub.info = info;
    const data = this.json(body, 'data');
    if (data !== undefined && data !== null) sub.data = data;
    const since = this.position(body, 'recover_since');
    if (since) sub.recoverSince = since;
    const override = this.override(body);
    if (override) sub.override = override;
    const expireAt = this.unixSeconds(body, 'expire_at');
    if (expireAt > 0) sub.expireAt = expireAt;
    await this.ctx.core.engine('subscribe', channel, () => this.ctx.control.subscribe(user, channel, client, sub));
    return '{}';
  }

  private override(body: Body): SubscribeOverride | undefined {
    const o = body.override;
    if (o === undefined || o === null) return undefined;
    if (!isObject(o)) refuse(ErrorCode.BadRequest, '"override" must be an object');
    const out: SubscribeOverride = {};
    for (const name of OVERRIDES) {
      const v = o[name];
      if (v === undefined || v === null) continue;
      if (!isObject(v) || typeof (v.value ?? false) !== 'boolean') refuse(ErrorCode.BadRequest, `"override.${name}" must be {"value": boolean}`);
      out[name] = (v.value ?? false) as boolean;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }

  private async unsubscribe(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const { channel } = this.channel(body, false);
    const client = this.string(body, 'client', false) || undefined;
    await this.ctx.core.engine('unsubscribe', channel, () => this.ctx.control.unsubscribe(user, channel, client));
    return '{}';
  }

  private async disconnect(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const client = this.string(body, 'client', false) || undefined;
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
    const whitelist = body.whitelist ?? [];
    if (!Array.isArray(whitelist) || !whitelist.every((c) => typeof c === 'string')) refuse(ErrorCode.BadRequest, '"whitelist" must be an array of client ids');
    if (whitelist.length > MAX_WHITELIST) refuse(ErrorCode.LimitExceeded, `at most ${MAX_WHITELIST} client ids in "whitelist"`);
    const kept = whitelist.length > 0 ? (whitelist as string[]) : undefined;
    await this.ctx.core.engine('disconnect', undefined, () => this.ctx.control.disconnect(user, client, code, reason, kept));
    return '{}';
  }

  private async refresh(body: Body): Promise<string> {
    const user = this.string(body, 'user', true) as string;
    const client = this.string(body, 'client', false) || undefined;
    const expired = this.boolean(body, 'expired');
    const expireAt = this.unixSeconds(body, 'expire_at');
    const info = body.info === null ? undefined : (body.info as Json | undefined);
    await this.ctx.core.engine('refresh', undefined, () => this.ctx.control.refresh(user, client, expired, expireAt, info));
    return '{}';
  }
}
