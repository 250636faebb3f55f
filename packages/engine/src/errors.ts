// Errors the engines raise that callers handle by kind rather than by message.

/** The backend (a Redis shard) is unreachable right now; the request was not carried out, or its outcome is unknown. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}
