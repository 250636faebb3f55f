// Picks the engine: memory when no Redis address is given, Redis (one or more shards) otherwise.
import type { Broker } from './broker';

export interface EngineOptions {
  /** Redis URLs; several are client-side shards (a channel lives on one). Empty: memory engine. */
  redis?: string[];
  /** Prefix of every Redis key and pub/sub channel. */
  prefix?: string;
}

export function createBroker(_options: EngineOptions): Broker {
  throw new Error('not implemented yet');
}
