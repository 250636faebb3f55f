// Public surface of the engine package: the Broker interface and its memory and Redis engines.
export * from './broker';
export { createBroker, type EngineOptions } from './engine';
export { MemoryBroker, type MemoryBrokerOptions } from './broker_memory';
export { RedisBroker, redisPubSubChannel, type RedisBrokerOptions } from './broker_redis';
// The key layout and shard choice, for other Redis writers of the same channels (the versioning worker's commit).
export { channelKeys, idempotencyKey, shardOf, type ChannelKeys } from './redis_keys';
export { BrokerUnavailableError } from './errors';
export { DEFAULT_META_TTL_SECONDS, DEFAULT_IDEMPOTENCY_TTL_SECONDS } from './defaults';
