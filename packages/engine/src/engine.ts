// Picks the engine: memory when no Redis address is given, Redis (shards, Sentinel or a Redis Cluster) otherwise.
import type { Broker } from './broker';
import type { DocStore } from './docs';
import { MemoryDocStore } from './docs_memory';
import { RedisDocStore } from './docs_redis';
import { MemoryBroker } from './broker_memory';
import { RedisBroker } from './broker_redis';
import type { Occupancy } from './occupancy';
import { MemoryOccupancy, type OccupancyRecords } from './occupancy_memory';
import { RedisOccupancy } from './occupancy_redis';
import type { Outbox, OutboxOptions } from './outbox';
import { MemoryOutbox, newMemoryOutboxState, type MemoryOutboxState } from './outbox_memory';
import { RedisOutbox } from './outbox_redis';
import type { Presence } from './presence';
import { MemoryPresence } from './presence_memory';
import { RedisPresence } from './presence_redis';
import { parseRedisAddress } from './redis_url';

export interface EngineOptions {
  /** Redis URLs; several are client-side shards (a channel lives on one), one may be `redis+cluster://`. Empty: memory engine. */
  redis?: string[];
  /** Prefix of every Redis key and pub/sub channel. */
  prefix?: string;
  /** This node's id: control messages addressed to it are delivered to it. */
  node?: string;
  /** The caller's logger for engine errors (lost connections, failing handlers); nothing is logged without it. */
  onError?: (err: Error) => void;
}

export function createBroker(options: EngineOptions): Broker {
  const urls = options.redis ?? [];
  if (urls.length === 0) return new MemoryBroker({ node: options.node, onError: options.onError });
  const address = parseRedisAddress(urls.join(','));
  const common = { prefix: options.prefix, node: options.node, onError: options.onError };
  if (address.kind === 'cluster') return new RedisBroker({ urls: [], cluster: address.cluster, ...common });
  return new RedisBroker({ urls, ...common });
}

/** The document store of the same engine: in-process over the memory broker, the versioning workers' client over Redis. */
export async function startDocStore(broker: Broker, options: EngineOptions & { node: string; partitions?: number }): Promise<DocStore> {
  if (broker instanceof MemoryBroker) return new MemoryDocStore(broker);
  const address = parseRedisAddress((options.redis ?? []).join(','));
  const where = address.kind === 'cluster' ? { urls: [], cluster: address.cluster } : { urls: options.redis ?? [] };
  const store = new RedisDocStore({ ...where, node: options.node, prefix: options.prefix, partitions: options.partitions });
  await store.start();
  return store;
}

// A MemoryBroker is a whole cluster: every Presence, Occupancy and Outbox made on it shares its state, as nodes
// share Redis.
const memoryPresence = new WeakMap<MemoryBroker, MemoryPresence>();
const memoryOccupancy = new WeakMap<MemoryBroker, OccupancyRecords>();
const memoryOutboxes = new WeakMap<MemoryBroker, Map<string, MemoryOutboxState>>();

/**
 * The presence of channels on the broker's engine (see presence.ts): its joins and leaves go out on the broker's
 * join/leave path, in order with the channel's publications.
 */
export function createPresence(broker: Broker): Presence {
  if (broker instanceof RedisBroker) return new RedisPresence(broker);
  if (broker instanceof MemoryBroker) {
    let presence = memoryPresence.get(broker);
    if (!presence) {
      const announce = broker.deliverJoinLeave.bind(broker);
      memoryPresence.set(broker, (presence = new MemoryPresence(announce, broker.sweepIntervalMs)));
    }
    return presence;
  }
  throw new Error(`no presence for a ${broker.kind} broker of another kind`);
}

/** The occupancy records of node `node` on the broker's engine (see occupancy.ts). */
export function createOccupancy(broker: Broker, node: string): Occupancy {
  if (broker instanceof RedisBroker) return new RedisOccupancy(broker, node);
  if (broker instanceof MemoryBroker) {
    let records = memoryOccupancy.get(broker);
    if (!records) memoryOccupancy.set(broker, (records = new Map()));
    return new MemoryOccupancy(records, node);
  }
  throw new Error(`no occupancy for a ${broker.kind} broker of another kind`);
}

/** The outbox `name` on the broker's engine (see outbox.ts): a Redis stream, or an array in the memory engine. */
export function createOutbox(broker: Broker, name: string, options: OutboxOptions): Outbox {
  if (broker instanceof RedisBroker) return new RedisOutbox(broker, name, options);
  if (broker instanceof MemoryBroker) {
    let states = memoryOutboxes.get(broker);
    if (!states) memoryOutboxes.set(broker, (states = new Map()));
    let state = states.get(name);
    if (!state) states.set(name, (state = newMemoryOutboxState()));
    return new MemoryOutbox(state, options);
  }
  throw new Error(`no outbox for a ${broker.kind} broker of another kind`);
}
