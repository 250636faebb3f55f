// Frame codec: splits a text frame into commands and builds reply, push and publication JSON.
import { ErrorCode, protocolError, type ProtocolError } from './codes';
import type { ClientInfo, Command, Json, Method } from './types';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json_depth';
import { RequestError, isMethod, isObject, validateRequest } from './validate';

/** One decoded line of a frame. */
export type Decoded =
  | { kind: 'command'; command: Command }
  /** An empty object: the client's answer to a server ping. */
  | { kind: 'pong' }
  /** A command that has an id but is wrong: reply with the error, keep the connection. */
  | { kind: 'error'; id: number; error: ProtocolError }
  /** Unparseable or without an id: the connection is closed with 3501 and this reason. */
  | { kind: 'fatal'; reason: string };

/** Decodes a frame of newline-separated JSON commands. Stops at the first fatal line. */
export function decodeFrame(text: string): Decoded[] {
  const out: Decoded[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    const item = decodeLine(line);
    out.push(item);
    if (item.kind === 'fatal') break;
  }
  return out;
}

function decodeLine(line: string): Decoded {
  // Measured on the text: a value this deep would overflow the encoder when it is relayed.
  const tooDeep = exceedsJsonDepth(line, MAX_JSON_DEPTH);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'fatal', reason: 'invalid JSON' };
  }
  if (!isObject(value)) return { kind: 'fatal', reason: 'command must be a JSON object' };
  const keys = Object.keys(value);
  if (keys.length === 0) return { kind: 'pong' };

  const rawId = value.id;
  let id = 0;
  if (rawId !== undefined) {
    if (typeof rawId !== 'number' || !Number.isSafeInteger(rawId) || rawId < 0) {
      return { kind: 'fatal', reason: 'command id must be a non-negative integer' };
    }
    id = rawId;
  }
  if (tooDeep) {
    const reason = `command nests deeper than ${MAX_JSON_DEPTH} levels`;
    return id > 0 ? { kind: 'error', id, error: protocolError(ErrorCode.BadRequest, reason) } : { kind: 'fatal', reason };
  }

  let method: Method | undefined;
  for (const key of keys) {
    if (key === 'id') continue;
    if (!isMethod(key)) continue;
    if (method !== undefined) {
      return id > 0
        ? { kind: 'error', id, error: protocolError(ErrorCode.BadRequest, 'a command holds exactly one method') }
        : { kind: 'fatal', reason: 'a command holds exactly one method' };
    }
    method = key;
  }
  if (method === 'send') {
    try {
      return { kind: 'command', command: { id: 0, method, params: validateRequest('send', value.send) } };
    } catch (e) {
      return { kind: 'fatal', reason: (e as Error).message };
    }
  }
  if (id === 0) return { kind: 'fatal', reason: 'command id is required' };
  if (method === undefined) {
    const named = keys.filter((k) => k !== 'id').join(', ');
    return { kind: 'error', id, error: protocolError(ErrorCode.MethodNotFound, named ? `unknown method ${named}` : 'no method') };
  }
  try {
    const params = validateRequest(method, value[method]);
    return { kind: 'command', command: { id, method, params } as Command };
  } catch (e) {
    if (e instanceof RequestError) {
      return { kind: 'error', id, error: protocolError(ErrorCode.BadRequest, `${method}: ${e.message}`) };
    }
    throw e;
  }
}

/** `{"id":N,"<method>":<result>}` from an already encoded result. */
export function encodeReply(id: number, method: Method, resultJson: string): string {
  return `{"id":${id},"${method}":${resultJson}}`;
}

export function encodeError(id: number, error: ProtocolError): string {
  return `{"id":${id},"error":${JSON.stringify(error)}}`;
}

/** The body of a publication without its offset: `"data":…,"info":…`; the engine adds the offset. */
export function encodePublicationBody(data: string, info?: ClientInfo, tags?: Record<string, string>, delta?: boolean): string {
  let body = `"data":${data}`;
  if (info) body += `,"info":${JSON.stringify(info)}`;
  if (tags && Object.keys(tags).length > 0) body += `,"tags":${JSON.stringify(tags)}`;
  // Last, so that isDeltaPublication is a suffix test.
  if (delta) body += DELTA_PUBLISH_MARK;
  return body;
}

/**
 * Marks a publication published with delta (API `delta: true` or namespace `delta_publish`): only those reach delta
 * subscribers as deltas, as in Centrifugo. It travels in the stored publication, so every gateway and history see it;
 * Centrifugo clients ignore a publication field they do not know (it is not the SDK's `delta`, which says the data is
 * a patch).
 */
const DELTA_PUBLISH_MARK = ',"delta_publish":true';
const DELTA_PUBLISH_SUFFIX = `${DELTA_PUBLISH_MARK}}`;

/**
 * Whether an encoded publication object carries the delta mark. A suffix test is exact: a `true}` at the very end is
 * a top-level member (a nested object would be followed by another brace, a string ends with a quote).
 */
export function isDeltaPublication(publicationJson: string): boolean {
  return publicationJson.endsWith(DELTA_PUBLISH_SUFFIX);
}

/** A whole publication object; offset 0 means the channel keeps no history, so none is sent. */
export function encodePublication(offset: number, body: string): string {
  return offset > 0 ? `{"offset":${offset},${body}}` : `{${body}}`;
}

// Hot path: built once per publication and sent as the same bytes to every local subscriber.
export function encodePublicationPush(channel: string, publicationJson: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"pub":${publicationJson}}}`;
}

export function encodePush(channel: string, type: 'join' | 'leave' | 'unsubscribe' | 'subscribe', body: Json | object): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"${type}":${JSON.stringify(body)}}}`;
}

/** A join or leave push from an already encoded ClientInfo. */
export function encodeJoinLeavePush(channel: string, kind: 'join' | 'leave', infoJson: string): string {
  return `{"push":{"channel":${JSON.stringify(channel)},"${kind}":{"info":${infoJson}}}}`;
}

export function encodeMessagePush(data: string): string {
  return `{"push":{"message":{"data":${data}}}}`;
}

export function encodeDisconnectPush(code: number, reason: string, reconnect: boolean): string {
  return `{"push":{"disconnect":${JSON.stringify({ code, reason, reconnect })}}}`;
}

/** The server's ping: an empty object. */
export const PING_FRAME = '{}';
