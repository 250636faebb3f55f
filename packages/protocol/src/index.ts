// Public surface of the protocol package: wire types, codes and the frame codec.
export * from './types';
export * from './codes';
export * from './codec';
export * from './json_depth';
export { validateRequest, RequestError, isMethod, methods } from './validate';
// Versioned documents: the update format and the merge rules, shared by the engine, the worker and clients.
export * from './doc_ops';
export * from './doc_merge';
