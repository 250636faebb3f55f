// Test helpers that start real processes: a private redis-server, Redis Cluster and Sentinel sets, and switchboard roles.
export * from './redis';
export * from './redis_cluster';
export * from './redis_sentinel';
export * from './process';
export { freePort } from './children';
export * from './ws_client';
export * from './tcp_switch';
export * from './raw_socket';
export * from './balancer';
