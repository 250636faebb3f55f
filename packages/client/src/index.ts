// Public surface of the client helpers.
export { Document, ConflictError, type DocumentOptions, type DocMode, type UpdateResult } from './document';
