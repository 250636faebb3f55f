// Wire types of the Centrifugo client protocol v2, JSON variant: what clients send and what they receive.

/** Any JSON value; `data` fields carry the client's or backend's JSON as is. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface ClientInfo {
  user: string;
  client: string;
  conn_info?: Json;
  chan_info?: Json;
}

export interface SubscribeHint {
  recover?: boolean;
  epoch?: string;
  offset?: number;
}

export interface ConnectRequest {
  token?: string;
  data?: Json;
  subs?: Record<string, SubscribeHint>;
  name?: string;
  version?: string;
}

export interface SubscribeRequest {
  channel: string;
  token?: string;
  recover?: boolean;
  epoch?: string;
  offset?: number;
  data?: Json;
  positioned?: boolean;
  recoverable?: boolean;
  join_leave?: boolean;
  flag?: number;
  /** Delta compression asked for (`"fossil"`). */
  delta?: string;
  /** Publication tags filter (a FilterNode), compiled by compileTagFilter. */
  tf?: Json;
}

export interface ChannelRequest {
  channel: string;
}

export interface PublishRequest {
  channel: string;
  data: Json;
}

export interface HistoryRequest {
  channel: string;
  limit?: number;
  since?: StreamPosition;
  reverse?: boolean;
}

export interface RpcRequest {
  method: string;
  data?: Json;
}

export interface SendRequest {
  data?: Json;
}

export interface RefreshRequest {
  token: string;
}

export interface SubRefreshRequest {
  channel: string;
  token: string;
}

/** Requests by method name; the key is the field name in the command object. */
export interface Requests {
  connect: ConnectRequest;
  subscribe: SubscribeRequest;
  unsubscribe: ChannelRequest;
  publish: PublishRequest;
  presence: ChannelRequest;
  presence_stats: ChannelRequest;
  history: HistoryRequest;
  rpc: RpcRequest;
  refresh: RefreshRequest;
  sub_refresh: SubRefreshRequest;
  send: SendRequest;
}

export type Method = keyof Requests;

/** A validated command. `send` has no id (0); every other method has a positive id. */
export type Command = { [M in Method]: { id: number; method: M; params: Requests[M] } }[Method];

export type CommandOf<M extends Method> = Extract<Command, { method: M }>;

/** A publication as the engine keeps it: its offset and its encoded JSON object (`{"offset":N,"data":…,"info":…}`). */
export interface StoredPublication {
  offset: number;
  json: string;
}

export interface SubscribeResult {
  expires?: boolean;
  ttl?: number;
  epoch?: string;
  offset?: number;
  positioned?: boolean;
  recoverable?: boolean;
  was_recovering?: boolean;
  recovered?: boolean;
  /** The missed publications of a successful recovery. */
  publications?: StoredPublication[];
  /** Delta compression was negotiated: every publication's data is a JSON string, fossil deltas marked `delta`. */
  delta?: boolean;
}

export interface ConnectResult {
  client: string;
  version: string;
  ping: number;
  pong: boolean;
  node?: string;
  expires?: boolean;
  ttl?: number;
  /** Server-side subscriptions (the token's `channels`), by channel. */
  subs?: Record<string, SubscribeResult>;
}

export interface RefreshResult {
  client: string;
  version: string;
  expires?: boolean;
  ttl?: number;
}

export interface SubRefreshResult {
  expires?: boolean;
  ttl?: number;
}

export interface HistoryResult {
  publications: StoredPublication[];
  epoch: string;
  offset: number;
}

export interface PresenceResult {
  /** Client id → its encoded ClientInfo JSON, as presence stores it. */
  presence: Map<string, string>;
}

export interface PresenceStatsResult {
  num_clients: number;
  num_users: number;
}

export interface RpcResult {
  /** Encoded JSON. */
  data: string;
}

/** The result of unsubscribe and publish. */
export type EmptyResult = Record<string, never>;

/** Results by method; `send` has none. */
export interface Results {
  connect: ConnectResult;
  subscribe: SubscribeResult;
  unsubscribe: EmptyResult;
  publish: EmptyResult;
  presence: PresenceResult;
  presence_stats: PresenceStatsResult;
  history: HistoryResult;
  rpc: RpcResult;
  refresh: RefreshResult;
  sub_refresh: SubRefreshResult;
}

export type ReplyMethod = keyof Results;

/** The `subscribe` push of a server-side subscription. */
export interface SubscribePush {
  recoverable?: boolean;
  epoch?: string;
  offset?: number;
  positioned?: boolean;
  data?: Json;
}

/** The `unsubscribe` push. */
export interface UnsubscribePush {
  code: number;
  reason: string;
}
