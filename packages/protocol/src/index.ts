// Public surface of the protocol package: wire types, codes and the frame codecs (JSON and Protobuf).
export * from './types';
export * from './codes';
export * from './codec';
export * from './client_codec';
export { encodeHistoryResult, encodePresenceResult, encodePresenceStatsResult } from './json_results';
export { decodeProtobufFrame } from './protobuf_decode';
export * from './protobuf_encode';
export * from './json_depth';
export { validateRequest, RequestError, isMethod, methods } from './validate';
// Versioned documents: the update format and the merge rules, shared by the engine, the worker and clients.
export * from './doc_ops';
export * from './doc_merge';
// Delta compression (Fossil deltas, as the SDKs decode them) and publication tags filters (`tf` on subscribe).
export { createFossilDelta, fossilDeltaIfSmaller, fossilChecksum } from './fossil_delta';
export { compileTagFilter, TAG_FILTER_LIMITS, type TagFilter, type TagFilterNode, type TagFilterResult } from './tag_filter';
