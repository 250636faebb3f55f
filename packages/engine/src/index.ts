// Public surface of the engine package: the Broker and Presence interfaces and their memory and Redis engines.
export * from './broker';
export { createBroker, createOccupancy, createOutbox, createPresence, startDocStore, type EngineOptions } from './engine';
// Presence, cluster-wide occupancy of channels and outboxes, beside the broker (webhooks need the last two).
export type { Presence, PresenceEntry, PresenceLeave, PresenceStats, PresenceUpdate } from './presence';
export type { DueChannel, Occupancy, OccupancyChange, OccupancyOutcome } from './occupancy';
export type { Outbox, OutboxEntry, OutboxOptions, OutboxRead } from './outbox';
export { userOfInfo } from './presence';
export { MemoryBroker, type MemoryBrokerOptions } from './broker_memory';
export { RedisBroker, redisPubSubChannel, type RedisBrokerOptions } from './broker_redis';
// The key layout and shard choice, for other Redis writers of the same channels (the versioning worker's commit).
export { channelKeys, idempotencyKey, shardOf, type ChannelKeys } from './redis_keys';
export { BrokerUnavailableError } from './errors';
export { redactUrl, parseRedisAddress, parseShardAddress, RedisAddressError, type RedisAddress, type ShardAddress, type ClusterAddress, type HostPort } from './redis_url';
export { closeConnection, clusterConnection, redisConnection, waitForReplicas, type ConnectionRole } from './redis_connection';
export { DEFAULT_META_TTL_SECONDS, DEFAULT_IDEMPOTENCY_TTL_SECONDS } from './defaults';
// Versioned documents: the DocStore interface, the merge rules, the memory and Redis stores, and the Redis
// names, payloads and scripts the versioning worker shares with the gateway side.
export * from './docs';
export { MemoryDocStore, type MemoryDocStoreOptions } from './docs_memory';
export { RedisDocStore, type RedisDocStoreOptions } from './docs_redis';
export * from './docs_wire';
export { withDocScripts, type DocScriptedRedis, type DocCommitReply, type DocGetReply, type DocLoadReply } from './docs_scripts';
export { newEpoch } from './epoch';
export { DEFAULT_PREFIX } from './redis_keys';
