// Public surface of the Pusher protocol building blocks: apps, signatures, names, frames, webhooks (no I/O).
export * from './apps';
export * from './codes';
export * from './names';
export * from './signature';
export * from './frames';
export * from './webhooks';
