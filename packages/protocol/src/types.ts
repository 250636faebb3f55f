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

export interface ConnectResult {
  client: string;
  version: string;
  ping: number;
  pong: boolean;
  expires?: boolean;
  ttl?: number;
  data?: Json;
  subs?: Record<string, unknown>;
  session?: string;
  node?: string;
}
