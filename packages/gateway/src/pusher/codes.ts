// Pusher protocol 7 error codes (pusher:error and WebSocket close codes) and what a client does on each.

/**
 * The codes of the Pusher Channels protocol. Ranges: 4000–4099 the client must not reconnect unchanged,
 * 4100–4199 reconnect after backing off, 4200–4299 reconnect at once, 4300–4399 other errors.
 */
export const PusherErrorCode = {
  /** Application only accepts TLS connections: reconnect with wss://. */
  SslOnly: 4000,
  AppNotFound: 4001,
  AppDisabled: 4003,
  OverConnectionQuota: 4004,
  PathNotFound: 4005,
  InvalidVersionFormat: 4006,
  UnsupportedProtocol: 4007,
  NoProtocolVersion: 4008,
  /** Connection is unauthorized: bad subscription or sign-in (also used for bad subscribe requests, as soketi does). */
  Unauthorized: 4009,
  OverCapacity: 4100,
  /** Generic "reconnect now"; also what a frame we cannot read gets (as Laravel Reverb answers), without a close. */
  GenericReconnect: 4200,
  PongNotReceived: 4201,
  ClosedAfterInactivity: 4202,
  /** Client event rejected: rate limit, and (as soketi does) any other reason a client event is refused. */
  ClientEventRejected: 4301,
} as const;

export type PusherErrorCode = (typeof PusherErrorCode)[keyof typeof PusherErrorCode];

/** The protocol's own wording of each code, for messages that add nothing specific. */
export const pusherErrorMessages: Readonly<Record<PusherErrorCode, string>> = {
  4000: 'Application only accepts SSL connections, reconnect using wss://',
  4001: 'Application does not exist',
  4003: 'Application disabled',
  4004: 'Application is over connection quota',
  4005: 'Path not found',
  4006: 'Invalid version string format',
  4007: 'Unsupported protocol version',
  4008: 'No protocol version supplied',
  4009: 'Connection is unauthorized',
  4100: 'Over capacity',
  4200: 'Generic reconnect immediately',
  4201: 'Pong reply not received',
  4202: 'Closed after inactivity',
  4301: 'Client event rejected due to rate limit',
};

/** What pusher-js does when the socket is closed with a code (its Protocol.getCloseAction). */
export type CloseAdvice = 'tls-only' | 'refused' | 'backoff' | 'retry';

/**
 * The action pusher-js takes on a close code of 4000 or more: 4000 reconnect over TLS, 4001–4099 stay
 * disconnected, 4100–4199 retry after a delay, 4200–4299 retry at once, anything else stay disconnected. So a
 * socket is never closed with 4301: that code only travels inside pusher:error messages.
 */
export function closeAdvice(code: number): CloseAdvice {
  if (code === 4000) return 'tls-only';
  if (code > 4000 && code < 4100) return 'refused';
  if (code >= 4100 && code < 4200) return 'backoff';
  if (code >= 4200 && code < 4300) return 'retry';
  return 'refused';
}
