// Public surface of the gateway package.
export * from './channels';
export * from './options';
export { startGateway, type Gateway } from './server';
export { loadUws, UwsFallbackError } from './uws';
