// Pusher channel, event and user id names: which are valid, and what kind of channel a name denotes.

export const PRIVATE_PREFIX = 'private-';
export const PRIVATE_ENCRYPTED_PREFIX = 'private-encrypted-';
export const PRESENCE_PREFIX = 'presence-';
export const SERVER_TO_USER_PREFIX = '#server-to-user-';
export const CLIENT_EVENT_PREFIX = 'client-';

/** Presence and sign-in user ids: at most 128 characters (Pusher's documented presence limit). */
export const MAX_USER_ID_LENGTH = 128;

export type PusherChannelType = 'public' | 'private' | 'private-encrypted' | 'presence' | 'server-to-user';

/** The kind of a channel, from its prefix (`private-encrypted-` before `private-`, as pusher-js decides). */
export function pusherChannelType(name: string): PusherChannelType {
  if (name.startsWith(PRIVATE_ENCRYPTED_PREFIX)) return 'private-encrypted';
  if (name.startsWith(PRIVATE_PREFIX)) return 'private';
  if (name.startsWith(PRESENCE_PREFIX)) return 'presence';
  if (name.startsWith(SERVER_TO_USER_PREFIX)) return 'server-to-user';
  return 'public';
}

/**
 * Channels whose subscription needs an `auth` signature from the app's backend. A `#server-to-user-<id>` channel
 * needs none: it is open only to a connection signed in (pusher:signin) as that user, which the session checks.
 */
export function needsChannelAuth(type: PusherChannelType): boolean {
  return type === 'private' || type === 'private-encrypted' || type === 'presence';
}

/**
 * Channels a client may send `client-*` events on: private and presence. Never public (nobody vouched for the
 * sender), never private-encrypted (the server cannot see what it relays; pusher-js refuses them too), never a
 * user's own channel.
 */
export function allowsClientEvents(type: PusherChannelType): boolean {
  return type === 'private' || type === 'presence';
}

/** The channel `pusher:signin` subscribes a user to, and the HTTP API's sendToUser publishes on. */
export function serverToUserChannel(userId: string): string {
  return SERVER_TO_USER_PREFIX + userId;
}

/** Pusher's channel alphabet: A–Z a–z 0–9 and `_ - = @ , . ;`. */
function isChannelChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x5f || // _
    c === 0x2d || // -
    c === 0x3d || // =
    c === 0x40 || // @
    c === 0x2c || // ,
    c === 0x2e || // .
    c === 0x3b // ;
  );
}

function controlCharIndex(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return i;
  }
  return -1;
}

/**
 * What is wrong with a user id, or undefined. Any well-formed text without control characters, 1–128
 * characters: it becomes part of `#server-to-user-<id>` and of presence keys, so it must have one encoding.
 */
export function userIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'user id must be a string';
  if (id === '') return 'user id must not be empty';
  if (id.length > MAX_USER_ID_LENGTH) return `user id longer than ${MAX_USER_ID_LENGTH} characters`;
  if (!id.isWellFormed()) return 'user id is not well-formed Unicode (lone surrogate)';
  if (controlCharIndex(id) !== -1) return 'user id holds a control character';
  return undefined;
}

/**
 * What is wrong with a channel name a client or the HTTP API sent, or undefined. Linear, no regular expression:
 * 1..maxLength characters from Pusher's alphabet, or `#server-to-user-` followed by a valid user id.
 */
export function pusherChannelNameProblem(name: unknown, maxLength: number): string | undefined {
  if (typeof name !== 'string') return 'channel name must be a string';
  if (name === '') return 'channel name must not be empty';
  if (name.length > maxLength) return `channel name longer than ${maxLength} characters`;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    const problem = userIdProblem(name.slice(SERVER_TO_USER_PREFIX.length));
    return problem === undefined ? undefined : `channel ${SERVER_TO_USER_PREFIX}<user id>: ${problem}`;
  }
  for (let i = 0; i < name.length; i++) {
    if (!isChannelChar(name.charCodeAt(i))) {
      return `channel name may hold only letters, digits and _ - = @ , . ; (found ${JSON.stringify(name[i])} at ${i})`;
    }
  }
  return undefined;
}

/** Event names the server itself sends; nobody else may use them (a forged member_added would lie about presence). */
function isReservedEventName(name: string): boolean {
  return name.startsWith('pusher:') || name.startsWith('pusher_internal:');
}

/**
 * What is wrong with an event name (client or HTTP API), or undefined. Names are free text — Laravel sends
 * class names such as `App\Events\OrderShipped` — but bounded, well-formed, without control characters, and not
 * in the protocol's own `pusher:` / `pusher_internal:` space.
 */
export function eventNameProblem(name: unknown, maxLength: number): string | undefined {
  if (typeof name !== 'string') return 'event name must be a string';
  if (name === '') return 'event name must not be empty';
  if (name.length > maxLength) return `event name longer than ${maxLength} characters`;
  if (!name.isWellFormed()) return 'event name is not well-formed Unicode (lone surrogate)';
  if (controlCharIndex(name) !== -1) return 'event name holds a control character';
  if (isReservedEventName(name)) return 'event names beginning with "pusher:" or "pusher_internal:" are reserved';
  return undefined;
}

export function isClientEventName(name: string): boolean {
  return name.startsWith(CLIENT_EVENT_PREFIX);
}
