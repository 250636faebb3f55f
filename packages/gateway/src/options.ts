// What a gateway is started with: listen address, engine, channels, auth, API key and limits.
import type { Broker, DocStore } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { ChannelConfig } from './channels';
import type { PusherEdgeApp } from './pusher/edge_apps';

export interface AuthOptions {
  /** HS256 secret for connection and subscription tokens. */
  hmacSecret?: string;
  /** PEM public keys (RSA for RS256, EC P-256 for ES256). */
  publicKeys?: string[];
  /** Centrifugo's insecure mode: connect without a token, every client permission check passes. */
  insecure: boolean;
}

/** The operator's console at /console: its login password and the HS256 secret of its session tokens. */
export interface AdminOptions {
  password: string;
  secret: string;
}

export interface GatewayLimits {
  /** Largest frame a client may send and largest publication data (bytes). */
  maxMessageSize: number;
  maxChannelLength: number;
  maxChannelsPerConnection: number;
  /** Connections this process accepts at once; 0 = no limit. */
  maxConnections: number;
  /** Sustained commands per second per connection, and the burst allowed above it. */
  commandsPerSecond: number;
  commandBurst: number;
  /** A socket that has not sent connect by then is closed. */
  connectTimeoutMs: number;
  /** Server ping interval; a client that has not answered by the next ping + pongTimeout is closed with 3012. */
  pingIntervalSeconds: number;
  pongTimeoutSeconds: number;
  /** Bytes queued for a client before it is disconnected as slow (3008). */
  maxBackpressure: number;
  /** Most publications a recovering subscribe returns. */
  maxRecoveredPublications: number;
}

export const defaultLimits: Readonly<GatewayLimits> = Object.freeze({
  maxMessageSize: 65536,
  maxChannelLength: 255,
  maxChannelsPerConnection: 128,
  maxConnections: 0,
  commandsPerSecond: 100,
  commandBurst: 200,
  connectTimeoutMs: 10000,
  pingIntervalSeconds: 25,
  pongTimeoutSeconds: 8,
  maxBackpressure: 4 * 1024 * 1024,
  maxRecoveredPublications: 10000,
});

export interface GatewayOptions {
  host: string;
  port: number;
  broker: Broker;
  /** Versioned documents: the memory store in standalone, the worker's Redis client in a cluster. */
  docs: DocStore;
  channels: ChannelConfig;
  auth: AuthOptions;
  /**
   * A second HTTP listener (node:http) for the server API, /metrics, /healthz and /readyz, with HTTP/1.1
   * pipelining; on the same host. Undefined: none (the main port serves them, without pipelining).
   */
  internalPort?: number;
  /** Server API key; without one the HTTP API answers 404. */
  apiKey?: string;
  logger: Logger;
  /** Run on the package's pure-JS `ws` fallback when the native uWS binary did not load. */
  allowUwsFallback?: boolean;
  limits?: Partial<GatewayLimits>;
  /** Serve the demo page at `/` (standalone, and gateways in dev mode). */
  demo?: boolean;
  /**
   * Dev mode: with an HMAC token secret, the demo page gets short-lived connection tokens from `/demo/token`.
   * That endpoint exists only in dev mode.
   */
  dev?: boolean;
  /** The operator's console at `/console`; undefined (the default): off, 404. */
  admin?: AdminOptions;
  /** Name of this node, reported in the connect result and logs. */
  node?: string;
  /** Unique id of this process in the cluster; the broker must have been created with the same id. */
  nodeId: string;
  /** How often each channel's stream top is compared with what pub/sub delivered (default 10 s). */
  positionCheckIntervalMs?: number;
  /** Presence entries live this long unless refreshed (every third of it); default 60 s. */
  presenceTtlMs?: number;
  /** Pusher apps served on `/app/{key}` and `/apps/{id}/...`; none (the default) = the Pusher edge is off. */
  pusherApps?: readonly PusherEdgeApp[];
}
