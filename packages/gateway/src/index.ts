// Public surface of the gateway package.
export * from './channels';
export * from './options';
export { startGateway, type Gateway } from './server';
export { loadUws, UwsFallbackError } from './uws';
export { combinePusherApps, PusherConfigError, type PusherApp } from './pusher/apps';
export { parsePusherEdgeAppFlag, parsePusherEdgeApps, type PusherEdgeApp } from './pusher/edge_apps';
