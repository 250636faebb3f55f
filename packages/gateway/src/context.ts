// What every client session of one gateway shares: engine, hub, token verifier, channel config, limits.
import type { Broker, Presence } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { TokenVerifier } from './auth';
import type { ChannelConfig } from './channels';
import type { ChannelCore } from './core';
import type { Hub } from './hub';
import type { GatewayLimits } from './options';
import type { Documents } from './documents';
import type { GatewayMetrics } from './metrics';
import type { PresenceTracker } from './presence';
import type { SessionRegistry } from './registry';

export interface GatewayContext {
  broker: Broker;
  /** The engine's presence (createPresence), beside the broker. */
  presence: Presence;
  /** Channel operations every edge shares. */
  core: ChannelCore;
  hub: Hub;
  registry: SessionRegistry;
  documents: Documents;
  metrics: GatewayMetrics;
  presenceTracker: PresenceTracker;
  verifier: TokenVerifier;
  channels: ChannelConfig;
  limits: GatewayLimits;
  insecure: boolean;
  logger: Logger;
  node: string;
  version: string;
}
