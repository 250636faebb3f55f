// Where a Pusher channel lives among Switchboard's channels, and the Pusher event a publication becomes.
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '@switchboard/protocol';
import { NAMESPACE_SEPARATOR } from '../channels';
import type { PusherEdgeApp } from './edge_apps';

/** The Switchboard channel of Pusher channel `name` of `app`: `<namespace>:name`, or `name` without a namespace. */
export function switchboardChannel(app: PusherEdgeApp, name: string): string {
  return app.namespace === undefined ? name : `${app.namespace}${NAMESPACE_SEPARATOR}${name}`;
}

/**
 * The Pusher name of a Switchboard channel: what follows its namespace. Pusher names hold no ':', so this is
 * the inverse of switchboardChannel for every app.
 */
export function pusherName(channel: string): string {
  const i = channel.indexOf(NAMESPACE_SEPARATOR);
  return i === -1 ? channel : channel.slice(i + 1);
}

/** The Pusher name of `channel` when it belongs to `app`'s channel space (its namespace, or none), else undefined. */
export function appChannelName(app: PusherEdgeApp, channel: string): string | undefined {
  const i = channel.indexOf(NAMESPACE_SEPARATOR);
  if (app.namespace === undefined) return i === -1 ? channel : undefined;
  return i !== -1 && channel.slice(0, i) === app.namespace ? channel.slice(i + 1) : undefined;
}

/** Publication tags the Pusher edge writes and reads. */
export const TAG_EVENT = 'event';
/** The connection that must not get the event: the client event's sender, or the HTTP API's `socket_id`. */
export const TAG_SOCKET_ID = 'socket_id';
/** The sender of a client event on a presence channel. */
export const TAG_USER_ID = 'user_id';

/** The event name Pusher clients see for a publication without an `event` tag (one made through the Centrifugo API or SDK). */
export const DEFAULT_EVENT = 'publication';

/**
 * The publication `data` of a Pusher event's `data` string: the JSON value it holds when it is valid JSON (a
 * Centrifugo subscriber then sees an object, not a string holding one), else the string itself. Returns encoded JSON.
 */
export function publicationData(eventData: string): string {
  // Too deep to hand to every Centrifugo subscriber's parser as a value: it stays a string.
  if (exceedsJsonDepth(eventData, MAX_JSON_DEPTH)) return JSON.stringify(eventData);
  try {
    JSON.parse(eventData);
    return eventData;
  } catch {
    return JSON.stringify(eventData);
  }
}
