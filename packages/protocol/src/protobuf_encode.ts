// Encodes replies and pushes of the Protobuf variant (client.proto field numbers), each as one length-delimited Reply.
//
// Publications and client infos are stored as JSON; their `data`, `conn_info` and `chan_info` go out as the raw JSON
// bytes, as Centrifugo sends JSON-published data to Protobuf clients. Fields are written in field-number order and
// proto3 defaults are left out, so the bytes equal what protobufjs (the SDK's encoder) makes of the same values.
import type { ProtocolError } from './codes';
import { forEachMember } from './json_members';
import { PbWriter } from './protobuf_wire';
import type { Json, ReplyMethod, Results, StoredPublication, SubscribePush, SubscribeResult, UnsubscribePush } from './types';

const Reply = { id: 1, error: 2, push: 4 } as const;
/** Reply fields of the results, by method. */
const resultField: { readonly [M in ReplyMethod]: number } = {
  connect: 5,
  subscribe: 6,
  unsubscribe: 7,
  publish: 8,
  presence: 9,
  presence_stats: 10,
  history: 11,
  rpc: 13,
  refresh: 14,
  sub_refresh: 15,
};
const Push = { channel: 2, pub: 4, join: 5, leave: 6, unsubscribe: 7, message: 8, subscribe: 9, disconnect: 11 } as const;
const Publication = { data: 4, info: 5, offset: 6, tags: 7, delta: 8 } as const;
const ClientInfo = { user: 1, client: 2, conn_info: 3, chan_info: 4 } as const;

/** The server's ping: an empty Reply (length 0). */
export const PROTOBUF_PING_FRAME: Uint8Array = new Uint8Array([0]);

/** One frame holding one Reply written by `body`. */
function frame(body: (w: PbWriter) => void): Uint8Array {
  const w = new PbWriter();
  const mark = w.begin(0);
  body(w);
  w.end(mark);
  return w.finish();
}

export function encodeProtobufReply<M extends ReplyMethod>(id: number, method: M, result: Results[M]): Uint8Array {
  const write: (w: PbWriter, r: Results[M]) => void = results[method];
  return frame((w) => {
    w.uint(Reply.id, id);
    // A result is written even when empty: its presence is what names the method answered.
    const mark = w.begin(resultField[method]);
    write(w, result);
    w.end(mark);
  });
}

export function encodeProtobufError(id: number, error: ProtocolError): Uint8Array {
  return frame((w) => {
    w.uint(Reply.id, id);
    const mark = w.begin(Reply.error);
    w.uint(1, error.code).string(2, error.message).bool(3, error.temporary);
    w.end(mark);
  });
}

function push(channel: string | undefined, field: number, body: (w: PbWriter) => void): Uint8Array {
  return frame((w) => {
    const p = w.begin(Reply.push);
    w.string(Push.channel, channel);
    const m = w.begin(field);
    body(w);
    w.end(m);
    w.end(p);
  });
}

// Hot path: built once per publication for all local Protobuf subscribers of the channel.
export function encodeProtobufPublicationPush(channel: string, pub: StoredPublication): Uint8Array {
  return push(channel, Push.pub, (w) => writePublication(w, pub));
}

/** A publication push whose data is `data` as is, marked as a fossil delta when `delta` (delta compression). */
export function encodeProtobufPublicationPushWithData(channel: string, pub: StoredPublication, data: Uint8Array, delta: boolean): Uint8Array {
  return push(channel, Push.pub, (w) => writePublication(w, pub, undefined, { data, delta }));
}

/** A join or leave push from the member's encoded ClientInfo JSON. */
export function encodeProtobufJoinLeavePush(channel: string, kind: 'join' | 'leave', infoJson: string): Uint8Array {
  return push(channel, kind === 'join' ? Push.join : Push.leave, (w) => writeClientInfo(w, 1, infoJson));
}

export function encodeProtobufSubscribePush(channel: string, p: SubscribePush): Uint8Array {
  return push(channel, Push.subscribe, (w) => {
    w.bool(1, p.recoverable).string(4, p.epoch).uint(5, p.offset).bool(6, p.positioned).string(7, jsonText(p.data));
  });
}

export function encodeProtobufUnsubscribePush(channel: string, p: UnsubscribePush): Uint8Array {
  return push(channel, Push.unsubscribe, (w) => w.uint(2, p.code).string(3, p.reason));
}

/** A `message` push (the server's `send`) from encoded JSON data. */
export function encodeProtobufMessagePush(dataJson: string): Uint8Array {
  return push(undefined, Push.message, (w) => w.string(1, dataJson));
}

export function encodeProtobufDisconnectPush(code: number, reason: string, reconnect: boolean): Uint8Array {
  return push(undefined, Push.disconnect, (w) => w.uint(1, code).string(2, reason).bool(3, reconnect));
}

function jsonText(value: Json | undefined): string | undefined {
  return value === undefined ? undefined : JSON.stringify(value);
}

/** Writers of each result's fields (inside the Reply field that names the method). */
const results: { readonly [M in ReplyMethod]: (w: PbWriter, r: Results[M]) => void } = {
  connect(w, r) {
    w.string(1, r.client).string(2, r.version).bool(3, r.expires).uint(4, r.ttl);
    for (const [channel, sub] of Object.entries(r.subs ?? {})) {
      const entry = w.begin(6);
      w.string(1, channel, true);
      const value = w.begin(2);
      writeSubscribeResult(w, sub);
      w.end(value).end(entry);
    }
    w.uint(7, r.ping).bool(8, r.pong).string(10, r.node);
  },
  subscribe: writeSubscribeResult,
  unsubscribe() {},
  publish() {},
  presence(w, r) {
    for (const [client, info] of r.presence) {
      const entry = w.begin(1);
      w.string(1, client, true);
      writeClientInfo(w, 2, info);
      w.end(entry);
    }
  },
  presence_stats(w, r) {
    w.uint(1, r.num_clients).uint(2, r.num_users);
  },
  history(w, r) {
    for (const pub of r.publications) writePublication(w, pub, 1);
    w.string(2, r.epoch).uint(3, r.offset);
  },
  rpc(w, r) {
    w.string(1, r.data);
  },
  refresh(w, r) {
    w.string(1, r.client).string(2, r.version).bool(3, r.expires).uint(4, r.ttl);
  },
  sub_refresh(w, r) {
    w.bool(1, r.expires).uint(2, r.ttl);
  },
};

function writeSubscribeResult(w: PbWriter, r: SubscribeResult): void {
  w.bool(1, r.expires).uint(2, r.ttl).bool(3, r.recoverable).string(6, r.epoch);
  for (const pub of r.publications ?? []) writePublication(w, pub, 7);
  w.bool(8, r.recovered).uint(9, r.offset).bool(10, r.positioned).bool(12, r.was_recovering).bool(13, r.delta);
}

/**
 * A Publication from its stored JSON (`{"offset":N,"data":…,"info":…,"tags":…}`): `data` as its raw JSON bytes,
 * `info` as a ClientInfo, `tags` as the map. With `field`, as that field of the enclosing message; without, the
 * fields alone (inside a push's `pub`, already begun).
 */
function writePublication(w: PbWriter, pub: StoredPublication, field?: number, dataOverride?: { data: Uint8Array; delta: boolean }): void {
  const { json } = pub;
  let data: string | undefined;
  let info: string | undefined;
  let tags: string | undefined;
  forEachMember(json, (key, start, end) => {
    if (key === 'data') data = json.slice(start, end);
    else if (key === 'info') info = json.slice(start, end);
    else if (key === 'tags') tags = json.slice(start, end);
  });
  const mark = field === undefined ? -1 : w.begin(field);
  if (dataOverride) w.bytes(Publication.data, dataOverride.data);
  else w.string(Publication.data, data);
  if (info !== undefined) writeClientInfo(w, Publication.info, info);
  w.uint(Publication.offset, pub.offset);
  if (tags !== undefined) {
    for (const [key, value] of Object.entries(JSON.parse(tags) as Record<string, string>)) {
      const entry = w.begin(Publication.tags);
      w.string(1, key, true).string(2, String(value), true);
      w.end(entry);
    }
  }
  if (dataOverride?.delta) w.bool(Publication.delta, true);
  if (mark >= 0) w.end(mark);
}

/** A ClientInfo as field `field`, from its JSON (`{"user":…,"client":…,"conn_info":…,"chan_info":…}`). */
function writeClientInfo(w: PbWriter, field: number, infoJson: string): void {
  let user: string | undefined;
  let client: string | undefined;
  let connInfo: string | undefined;
  let chanInfo: string | undefined;
  forEachMember(infoJson, (key, start, end) => {
    const raw = infoJson.slice(start, end);
    if (key === 'user') user = JSON.parse(raw) as string;
    else if (key === 'client') client = JSON.parse(raw) as string;
    else if (key === 'conn_info') connInfo = raw;
    else if (key === 'chan_info') chanInfo = raw;
  });
  const mark = w.begin(field);
  w.string(ClientInfo.user, user).string(ClientInfo.client, client).string(ClientInfo.conn_info, connInfo).string(ClientInfo.chan_info, chanInfo);
  w.end(mark);
}
