// Public surface of the engine package: the Broker interface and its memory and Redis engines.
export * from './broker';
export { createBroker, type EngineOptions } from './engine';
