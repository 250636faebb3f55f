// Public surface of the protocol package: wire types, codes and the frame codec.
export * from './types';
export * from './codes';
export * from './codec';
export { validateRequest, RequestError, isMethod, methods } from './validate';
