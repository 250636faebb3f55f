// One publication as one HTTP request, for each publish API the benchmark drives: Centrifugo's `POST /api/publish`
// (the API key travels in a header) and the Pusher HTTP API's `POST /apps/{id}/events` (a signed query string).
//
// Signed by hand with node:crypto: the `pusher` library's trigger() costs far more per request than a load generator
// on one core can spend (publish_api.test.ts checks the signature against the library's).
import { createHash, createHmac } from 'node:crypto';

export interface PusherCredentials {
  id: string;
  key: string;
  secret: string;
}

export type PublishApi = { kind: 'centrifugo' } | { kind: 'pusher'; app: PusherCredentials };

export interface PublishRequest {
  /** Request target: path and query. */
  target: string;
  body: string;
}

export const CENTRIFUGO_PUBLISH_PATH = '/api/publish';
/** The event name of every publication made through the Pusher API; subscribers recognise its frames by it. */
export const PUSHER_EVENT = 'p';

/**
 * The request publishing `payload` (JSON text) on a channel. `channelJson` is the channel name as a JSON string,
 * encoded once per run by the caller. `nowSeconds` is the Pusher signature's auth_timestamp.
 */
export function publishRequest(api: PublishApi, channelJson: string, payload: string, nowSeconds: number): PublishRequest {
  if (api.kind === 'centrifugo') return { target: CENTRIFUGO_PUBLISH_PATH, body: `{"channel":${channelJson},"data":${payload}}` };
  // Pusher event data is a string: the payload's JSON travels escaped inside it.
  const body = `{"name":"${PUSHER_EVENT}","channel":${channelJson},"data":${JSON.stringify(payload)}}`;
  const path = `/apps/${api.app.id}/events`;
  return { target: `${path}?${pusherSignedQuery(api.app, 'POST', path, body, nowSeconds)}`, body };
}

/**
 * The query string of a signed Pusher HTTP API request with a body: auth_key, auth_timestamp, auth_version and
 * body_md5 in key order, then auth_signature = hex HMAC-SHA256(secret, "METHOD\npath\n" + those four).
 * The app key must need no %-escaping (the bench's does not).
 */
export function pusherSignedQuery(app: PusherCredentials, method: string, path: string, body: string, timestamp: number): string {
  const md5 = createHash('md5').update(body).digest('hex');
  const query = `auth_key=${app.key}&auth_timestamp=${timestamp}&auth_version=1.0&body_md5=${md5}`;
  const signature = createHmac('sha256', app.secret).update(`${method}\n${path}\n${query}`).digest('hex');
  return `${query}&auth_signature=${signature}`;
}
