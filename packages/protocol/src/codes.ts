// Error codes (replies) and close codes (disconnects) of the Centrifugo client protocol v2.

export interface ProtocolError {
  code: number;
  message: string;
  temporary?: boolean;
}

export const ErrorCode = {
  Internal: 100,
  Unauthorized: 101,
  UnknownChannel: 102,
  PermissionDenied: 103,
  MethodNotFound: 104,
  AlreadySubscribed: 105,
  LimitExceeded: 106,
  BadRequest: 107,
  NotAvailable: 108,
  TokenExpired: 109,
  Expired: 110,
  TooManyRequests: 111,
  UnrecoverablePosition: 112,
} as const;

const errorMessages: Record<number, string> = {
  100: 'internal server error',
  101: 'unauthorized',
  102: 'unknown channel',
  103: 'permission denied',
  104: 'method not found',
  105: 'already subscribed',
  106: 'limit exceeded',
  107: 'bad request',
  108: 'not available',
  109: 'token expired',
  110: 'expired',
  111: 'too many requests',
  112: 'unrecoverable position',
};

/** A protocol error; `detail` is appended to the standard message to say what to change. */
export function protocolError(code: number, detail?: string): ProtocolError {
  const base = errorMessages[code] ?? 'error';
  const err: ProtocolError = { code, message: detail ? `${base}: ${detail}` : base };
  if (code === ErrorCode.Internal || code === ErrorCode.TooManyRequests) err.temporary = true;
  return err;
}

export interface Disconnect {
  code: number;
  reason: string;
}

/** 3000–3499: the client reconnects; 3500–3999: it does not. */
export const DisconnectCode = {
  Normal: 3000,
  Shutdown: 3001,
  ServerError: 3004,
  Expired: 3005,
  SubscriptionExpired: 3006,
  Slow: 3008,
  WriteError: 3009,
  InsufficientState: 3010,
  ForceReconnect: 3011,
  NoPong: 3012,
  TooManyRequests: 3013,
  InvalidToken: 3500,
  BadRequest: 3501,
  Stale: 3502,
  ForceNoReconnect: 3503,
  ConnectionLimit: 3504,
  ChannelLimit: 3505,
  InappropriateProtocol: 3506,
  PermissionDenied: 3507,
  NotAvailable: 3508,
  TooManyErrors: 3509,
} as const;

const disconnectReasons: Record<number, string> = {
  3000: 'connection closed',
  3001: 'shutdown',
  3004: 'internal server error',
  3005: 'connection expired',
  3006: 'subscription expired',
  3008: 'slow',
  3009: 'write error',
  3010: 'insufficient state',
  3011: 'force reconnect',
  3012: 'no pong',
  3013: 'too many requests',
  3500: 'invalid token',
  3501: 'bad request',
  3502: 'stale',
  3503: 'force disconnect',
  3504: 'connection limit',
  3505: 'channel limit',
  3506: 'inappropriate protocol',
  3507: 'permission denied',
  3508: 'not available',
  3509: 'too many errors',
};

export function disconnect(code: number, reason?: string): Disconnect {
  return { code, reason: reason ?? disconnectReasons[code] ?? 'disconnect' };
}

export function disconnectReconnects(code: number): boolean {
  return !((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000));
}

/** Codes of the `unsubscribe` push: below 2500 final, from 2500 the client resubscribes. */
export const UnsubscribeCode = {
  Client: 0,
  Server: 2000,
  InsufficientState: 2500,
} as const;
