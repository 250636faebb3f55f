// Test helpers that start real processes: a private redis-server and switchboard roles.
export * from './redis';
export * from './process';
export { freePort } from './children';
export * from './ws_client';
export * from './tcp_switch';
export * from './raw_socket';
export * from './balancer';
