// Pusher protocol 7 frames: decoding what a client sends (bounded, typed, errors as values) and encoding replies.
import { exceedsJsonDepth, MAX_JSON_DEPTH, type Json } from '@switchboard/protocol';
import type { PusherApp } from './apps';
import { PusherErrorCode } from './codes';
import {
  allowsClientEvents,
  eventNameProblem,
  isClientEventName,
  pusherChannelNameProblem,
  pusherChannelType,
  userIdProblem,
  type PusherChannelType,
} from './names';

export const PUSHER_PROTOCOL_VERSION = 7;
/**
 * Seconds of silence after which a client should send pusher:ping (sent in connection_established). Pusher's
 * own value and pusher-js's default; pusher-js uses the smaller of the two.
 */
export const DEFAULT_ACTIVITY_TIMEOUT_SECONDS = 120;

// ---- connection ---------------------------------------------------------------------------------------------------

export type ConnectionCheck = { ok: true; protocol: number } | { ok: false; code: PusherErrorCode; message: string };

/**
 * Checks the query of `GET /app/{key}?protocol=7&client=js&version=8.6.0`. Only protocol 7 is spoken: no
 * `protocol` is 4008, anything else 4007 (both tell pusher-js not to reconnect unchanged).
 */
export function checkConnectionQuery(query: string): ConnectionCheck {
  const protocol = new URLSearchParams(query).get('protocol');
  if (protocol === null || protocol === '') {
    return { ok: false, code: PusherErrorCode.NoProtocolVersion, message: `No protocol version supplied; connect with ?protocol=${PUSHER_PROTOCOL_VERSION}` };
  }
  if (protocol !== String(PUSHER_PROTOCOL_VERSION)) {
    const shown = protocol.length > 16 ? `${protocol.slice(0, 16)}…` : protocol;
    return { ok: false, code: PusherErrorCode.UnsupportedProtocol, message: `Unsupported protocol version ${JSON.stringify(shown)}; only ${PUSHER_PROTOCOL_VERSION} is supported` };
  }
  return { ok: true, protocol: PUSHER_PROTOCOL_VERSION };
}

// ---- decoding client frames ---------------------------------------------------------------------------------------

/** A command a client sent, in canonical form. */
export type PusherCommand =
  | { kind: 'ping' }
  | { kind: 'pong' }
  /** `auth` and `channelData` are exactly the strings the client sent (they are what the signature covers). */
  | { kind: 'subscribe'; channel: string; type: PusherChannelType; auth: string | undefined; channelData: string | undefined }
  | { kind: 'unsubscribe'; channel: string }
  /** `userData` is the exact string signed by the backend; parse it with parseUserData after the check. */
  | { kind: 'signin'; auth: string; userData: string }
  /** `data` is canonical: the client's string as is, any other JSON value encoded once — what receivers get. */
  | { kind: 'client-event'; event: string; channel: string; data: string };

/** A frame refused: answer with pusher:error (or pusher:subscription_error when `channel` is set on a subscribe). */
export interface FrameError {
  kind: 'error';
  code: PusherErrorCode;
  message: string;
  /** The channel the refused command named, when it named a readable one. */
  channel?: string;
}

export type DecodedFrame = PusherCommand | FrameError;

/** What an app lets a client frame carry. */
export interface ClientFrameRules {
  /** Frames longer than this (UTF-8 bytes) are refused unread. */
  maxFrameBytes: number;
  maxChannelNameLength: number;
  maxEventNameLength: number;
  /** Client event `data`, in UTF-8 bytes of its canonical string. */
  maxEventPayloadBytes: number;
  /** `channel_data` of a presence subscription and `user_data` of a sign-in, in UTF-8 bytes. */
  maxUserDataBytes: number;
  /** Whether the app relays client events at all. */
  clientEvents: boolean;
}

/** Room for the envelope, auth string and names around the largest payload. */
const FRAME_OVERHEAD_BYTES = 4096;
/** JSON escaping can grow a string up to 6× (`\u0000` for each control character). */
const ESCAPE_GROWTH = 6;
/** Longest `auth` string a frame may carry: app key (≤ 200) + ':' + 64 hex digits, with room to spare. */
const MAX_AUTH_LENGTH = 512;

export function clientFrameRules(app: PusherApp): ClientFrameRules {
  const payload = Math.floor(app.limits.max_event_payload_in_kb * 1024);
  const user = Math.floor(app.limits.max_presence_member_size_in_kb * 1024);
  return {
    maxFrameBytes: ESCAPE_GROWTH * Math.max(payload, user) + FRAME_OVERHEAD_BYTES,
    maxChannelNameLength: app.limits.max_channel_name_length,
    maxEventNameLength: app.limits.max_event_name_length,
    maxEventPayloadBytes: payload,
    maxUserDataBytes: user,
    clientEvents: app.enable_client_messages,
  };
}

/** UTF-8 length, counted only when the UTF-16 length cannot already decide (ASCII is the common case). */
function exceedsBytes(s: string, max: number): boolean {
  if (s.length > max) return true;
  if (s.length * 3 <= max) return false;
  return Buffer.byteLength(s, 'utf8') > max;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refuse(code: PusherErrorCode, message: string, channel?: string): FrameError {
  return channel === undefined ? { kind: 'error', code, message } : { kind: 'error', code, message, channel };
}

function malformed(message: string): FrameError {
  return refuse(PusherErrorCode.GenericReconnect, `Invalid message format: ${message}`);
}

/** An optional string field; null counts as absent (some clients send it). */
function optionalString(v: unknown): string | undefined | false {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : false;
}

function decodeSubscribe(data: unknown, rules: ClientFrameRules): DecodedFrame {
  if (!isObject(data)) return malformed('pusher:subscribe needs "data": { "channel": ... }');
  const channel = data.channel;
  const problem = pusherChannelNameProblem(channel, rules.maxChannelNameLength);
  if (problem !== undefined) {
    // Name the channel back only when it is a string of bounded size, so the refusal can be addressed to it.
    const named = typeof channel === 'string' && channel.length <= rules.maxChannelNameLength * 4 ? channel : undefined;
    return refuse(PusherErrorCode.Unauthorized, problem, named);
  }
  const name = channel as string;
  const auth = optionalString(data.auth);
  if (auth === false) return refuse(PusherErrorCode.Unauthorized, '"auth" must be a string', name);
  if (auth !== undefined && auth.length > MAX_AUTH_LENGTH) return refuse(PusherErrorCode.Unauthorized, `"auth" longer than ${MAX_AUTH_LENGTH} characters`, name);
  const channelData = optionalString(data.channel_data);
  if (channelData === false) return refuse(PusherErrorCode.Unauthorized, '"channel_data" must be a string', name);
  if (channelData !== undefined && exceedsBytes(channelData, rules.maxUserDataBytes)) {
    return refuse(PusherErrorCode.Unauthorized, `"channel_data" larger than ${rules.maxUserDataBytes} bytes`, name);
  }
  return { kind: 'subscribe', channel: name, type: pusherChannelType(name), auth: auth === '' ? undefined : auth, channelData };
}

function decodeUnsubscribe(data: unknown, rules: ClientFrameRules): DecodedFrame {
  if (!isObject(data)) return malformed('pusher:unsubscribe needs "data": { "channel": ... }');
  const problem = pusherChannelNameProblem(data.channel, rules.maxChannelNameLength);
  if (problem !== undefined) return refuse(PusherErrorCode.Unauthorized, problem);
  return { kind: 'unsubscribe', channel: data.channel as string };
}

function decodeSignin(data: unknown, rules: ClientFrameRules): DecodedFrame {
  if (!isObject(data)) return malformed('pusher:signin needs "data": { "auth": ..., "user_data": ... }');
  const { auth, user_data: userData } = data;
  if (typeof auth !== 'string' || auth === '') return refuse(PusherErrorCode.Unauthorized, 'pusher:signin needs an "auth" string');
  if (auth.length > MAX_AUTH_LENGTH) return refuse(PusherErrorCode.Unauthorized, `"auth" longer than ${MAX_AUTH_LENGTH} characters`);
  if (typeof userData !== 'string') return refuse(PusherErrorCode.Unauthorized, 'pusher:signin needs a "user_data" string');
  if (exceedsBytes(userData, rules.maxUserDataBytes)) return refuse(PusherErrorCode.Unauthorized, `"user_data" larger than ${rules.maxUserDataBytes} bytes`);
  return { kind: 'signin', auth, userData };
}

function decodeClientEvent(event: string, channel: unknown, data: unknown, rules: ClientFrameRules): DecodedFrame {
  const problem = pusherChannelNameProblem(channel, rules.maxChannelNameLength);
  if (problem !== undefined) return refuse(PusherErrorCode.ClientEventRejected, `client event: ${problem}`);
  const name = channel as string;
  if (!rules.clientEvents) return refuse(PusherErrorCode.ClientEventRejected, 'client events are not enabled for this app', name);
  const type = pusherChannelType(name);
  if (!allowsClientEvents(type)) {
    return refuse(PusherErrorCode.ClientEventRejected, `client events are allowed on private- and presence- channels only, not on ${type} channels`, name);
  }
  const eventProblem = eventNameProblem(event, rules.maxEventNameLength);
  if (eventProblem !== undefined) return refuse(PusherErrorCode.ClientEventRejected, eventProblem, name);
  // One canonical form for relaying and measuring: what pusher-js receivers decode the same way either way.
  const text = typeof data === 'string' ? data : JSON.stringify(data === undefined ? null : data);
  if (exceedsBytes(text, rules.maxEventPayloadBytes)) {
    return refuse(PusherErrorCode.ClientEventRejected, `client event data larger than ${rules.maxEventPayloadBytes} bytes`, name);
  }
  return { kind: 'client-event', event, channel: name, data: text };
}

/**
 * Decodes one text frame from a client: `{"event": "...", "data": ..., "channel"?: "..."}`. Never throws. Size is
 * checked before anything else and nesting depth before parsing, so neither a huge nor a deep frame costs more
 * than one linear scan. Unknown `pusher:` events are refused; events that are neither `pusher:` nor `client-`
 * are refused as client events without the prefix.
 */
export function decodeClientFrame(text: string, rules: ClientFrameRules): DecodedFrame {
  if (typeof text !== 'string') return malformed('frames must be text');
  if (exceedsBytes(text, rules.maxFrameBytes)) return malformed(`frame larger than ${rules.maxFrameBytes} bytes`);
  if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) return malformed(`frame nests deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return malformed('frame is not JSON');
  }
  if (!isObject(value)) return malformed('frame must be a JSON object');
  const event = value.event;
  if (typeof event !== 'string' || event === '') return malformed('"event" must be a non-empty string');
  switch (event) {
    case 'pusher:ping':
      return { kind: 'ping' };
    case 'pusher:pong':
      return { kind: 'pong' };
    case 'pusher:subscribe':
      return decodeSubscribe(value.data, rules);
    case 'pusher:unsubscribe':
      return decodeUnsubscribe(value.data, rules);
    case 'pusher:signin':
      return decodeSignin(value.data, rules);
  }
  if (isClientEventName(event)) return decodeClientEvent(event, value.channel, value.data, rules);
  if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) {
    return malformed(`unknown event ${JSON.stringify(event.length > 64 ? `${event.slice(0, 64)}…` : event)}`);
  }
  return refuse(PusherErrorCode.ClientEventRejected, 'events sent by a client must begin with "client-"');
}

// ---- presence members and signed-in users -------------------------------------------------------------------------

/** One member of a presence channel: the user id in canonical (string) form and the user info the backend gave. */
export interface PresenceMember {
  readonly user_id: string;
  /** null when the backend gave none. */
  readonly user_info: Json;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; code: 4009; message: string };

function parseObject(text: string, what: string): Obj | string {
  if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) return `${what} nests deeper than ${MAX_JSON_DEPTH} levels`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `${what} is not JSON`;
  }
  return isObject(value) ? value : `${what} must be a JSON object`;
}

/**
 * A user id as the backend wrote it: a string, or an integer (Laravel sends numeric ids), made a string so that
 * "1" and 1 are one member.
 */
function canonicalUserId(id: unknown): string | undefined {
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id);
  return typeof id === 'string' ? id : undefined;
}

/** Parses the signed `channel_data` of a presence subscription: `{"user_id": ..., "user_info"?: ...}`. */
export function parsePresenceChannelData(channelData: string): Parsed<PresenceMember> {
  const value = parseObject(channelData, '"channel_data"');
  if (typeof value === 'string') return { ok: false, code: 4009, message: value };
  const id = canonicalUserId(value.user_id);
  const problem = id === undefined ? '"channel_data" needs a "user_id" (string or integer)' : userIdProblem(id);
  if (problem !== undefined) return { ok: false, code: 4009, message: problem };
  const info = value.user_info === undefined ? null : (value.user_info as Json);
  return { ok: true, value: { user_id: id as string, user_info: info } };
}

/** A user signed in with pusher:signin. */
export interface SignedInUser {
  readonly id: string;
  /** The user object's `user_info`, used for presence when a subscription brings no channel_data. */
  readonly user_info: Json;
  /** The exact `user_data` string, echoed back in pusher:signin_success. */
  readonly userData: string;
}

/** Parses the signed `user_data` of a sign-in: a JSON object whose `id` is a non-empty string (pusher-js requires it). */
export function parseUserData(userData: string): Parsed<SignedInUser> {
  const value = parseObject(userData, '"user_data"');
  if (typeof value === 'string') return { ok: false, code: 4009, message: value };
  if (typeof value.id !== 'string') return { ok: false, code: 4009, message: '"user_data" needs an "id" string' };
  const problem = userIdProblem(value.id);
  if (problem !== undefined) return { ok: false, code: 4009, message: problem };
  const info = value.user_info === undefined ? null : (value.user_info as Json);
  return { ok: true, value: { id: value.id, user_info: info, userData } };
}

// ---- encoding server frames ---------------------------------------------------------------------------------------
// Server events carry `data` as a JSON-encoded string (pusher-js parses a string `data` once more); pusher:error
// carries an object, as the protocol documents and pusher-js's own tests send it.

function frame(event: string, channel: string | undefined, dataJson: string): string {
  const ch = channel === undefined ? '' : `,"channel":${JSON.stringify(channel)}`;
  return `{"event":${JSON.stringify(event)}${ch},"data":${dataJson}}`;
}

/** A frame whose `data` is the JSON string of `payload`. */
function stringFrame(event: string, channel: string | undefined, payloadJson: string): string {
  return frame(event, channel, JSON.stringify(payloadJson));
}

export function encodeConnectionEstablished(socketId: string, activityTimeoutSeconds = DEFAULT_ACTIVITY_TIMEOUT_SECONDS): string {
  return stringFrame('pusher:connection_established', undefined, JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeoutSeconds }));
}

/** pusher:error with `{code, message}`; `code` null for errors the protocol has no code for. */
export function encodeError(code: PusherErrorCode | null, message: string, channel?: string): string {
  return frame('pusher:error', channel, JSON.stringify({ code, message }));
}

export const PING_FRAME = '{"event":"pusher:ping","data":"{}"}';
export const PONG_FRAME = '{"event":"pusher:pong","data":"{}"}';

export function encodeSubscriptionSucceeded(channel: string): string {
  return stringFrame('pusher_internal:subscription_succeeded', channel, '{}');
}

/**
 * The presence roster on subscription: `{"presence":{"ids":[...],"hash":{id: info},"count":n}}`, one entry per
 * user (the first one given wins, so a user connected twice counts once).
 */
export function encodePresenceSubscriptionSucceeded(channel: string, members: Iterable<PresenceMember>): string {
  const seen = new Set<string>();
  const ids: string[] = [];
  const hash: string[] = [];
  for (const m of members) {
    if (seen.has(m.user_id)) continue;
    seen.add(m.user_id);
    const id = JSON.stringify(m.user_id);
    ids.push(id);
    // Built as text, not as an object: a user id such as "__proto__" must stay an ordinary key.
    hash.push(`${id}:${JSON.stringify(m.user_info)}`);
  }
  return stringFrame('pusher_internal:subscription_succeeded', channel, `{"presence":{"ids":[${ids.join(',')}],"hash":{${hash.join(',')}},"count":${ids.length}}}`);
}

export function encodeMemberAdded(channel: string, member: PresenceMember): string {
  return stringFrame('pusher_internal:member_added', channel, JSON.stringify({ user_id: member.user_id, user_info: member.user_info }));
}

export function encodeMemberRemoved(channel: string, userId: string): string {
  return stringFrame('pusher_internal:member_removed', channel, JSON.stringify({ user_id: userId }));
}

export function encodeSubscriptionCount(channel: string, count: number): string {
  return stringFrame('pusher_internal:subscription_count', channel, JSON.stringify({ subscription_count: count }));
}

/**
 * A refused subscription, as pusher-js reports its own auth failures (Laravel Echo's `.error()` listens for it):
 * `type` is "AuthError" for a bad signature, "LimitReached" for a full channel.
 */
export function encodeSubscriptionError(channel: string, type: string, error: string, status: number): string {
  return frame('pusher:subscription_error', channel, JSON.stringify({ type, error, status }));
}

export function encodeSigninSuccess(userData: string): string {
  return stringFrame('pusher:signin_success', undefined, JSON.stringify({ user_data: userData }));
}

/**
 * An event on a channel (HTTP API publication or relayed client event). Hot path: encode once per publication,
 * send the same string to every local subscriber. `data` is already a string (the protocol's form); `userId`
 * marks client events on presence channels.
 */
export function encodeChannelEvent(event: string, channel: string, data: string, userId?: string): string {
  const user = userId === undefined ? '' : `,"user_id":${JSON.stringify(userId)}`;
  return `{"event":${JSON.stringify(event)},"channel":${JSON.stringify(channel)},"data":${JSON.stringify(data)}${user}}`;
}
