// The two variants of the client protocol behind one interface: a session decodes and encodes through its codec only.
import type { ProtocolError } from './codes';
import {
  decodeFrame,
  encodeDisconnectPush,
  encodeError,
  encodeJoinLeavePush,
  encodeMessagePush,
  encodePublicationPush,
  encodePush,
  encodeReply,
  PING_FRAME,
  type Decoded,
} from './codec';
import { jsonResults } from './json_results';
import { decodeProtobufFrame } from './protobuf_decode';
import {
  encodeProtobufDisconnectPush,
  encodeProtobufError,
  encodeProtobufJoinLeavePush,
  encodeProtobufMessagePush,
  encodeProtobufPublicationPushWithData,
  encodeProtobufPublicationPush,
  encodeProtobufReply,
  encodeProtobufSubscribePush,
  encodeProtobufUnsubscribePush,
  PROTOBUF_PING_FRAME,
} from './protobuf_encode';
import type { ReplyMethod, Results, StoredPublication, SubscribePush, UnsubscribePush } from './types';

/** A WebSocket message: text for JSON, bytes (sent as a binary message) for Protobuf. */
export type Frame = string | Uint8Array;

export interface ClientCodec {
  readonly name: 'json' | 'protobuf';
  /** Its frames are binary WebSocket messages; a message of the other kind is a bad request. */
  readonly binary: boolean;
  /** The server's ping. */
  readonly ping: Frame;
  /** Decodes one received message (the bytes of a text message for JSON). */
  decode(message: Uint8Array): Decoded[];
  reply<M extends ReplyMethod>(id: number, method: M, result: Results[M]): Frame;
  error(id: number, error: ProtocolError): Frame;
  publicationPush(channel: string, pub: StoredPublication): Frame;
  /**
   * A publication push for a subscriber that negotiated delta: its data is `dataText` (the publication's data as
   * JSON text, the base of the next delta), or the fossil `delta` against the previous one's. Undefined when this
   * variant cannot carry that delta (JSON carries it as text: a delta that is not valid UTF-8 must go out full).
   */
  deltaPublicationPush(channel: string, pub: StoredPublication, dataText: string, delta?: Uint8Array): Frame | undefined;
  /** `infoJson`: the member's encoded ClientInfo. */
  joinLeavePush(channel: string, kind: 'join' | 'leave', infoJson: string): Frame;
  subscribePush(channel: string, push: SubscribePush): Frame;
  unsubscribePush(channel: string, push: UnsubscribePush): Frame;
  /** `dataJson`: encoded JSON. */
  messagePush(dataJson: string): Frame;
  disconnectPush(code: number, reason: string, reconnect: boolean): Frame;
}

// Like Buffer#toString: a byte order mark stays in the text (and makes it invalid JSON), bad UTF-8 becomes U+FFFD.
const text = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8 = new TextEncoder();

export const jsonCodec: ClientCodec = {
  name: 'json',
  binary: false,
  ping: PING_FRAME,
  decode: (message) => decodeFrame(text.decode(message)),
  reply<M extends ReplyMethod>(id: number, method: M, result: Results[M]): string {
    const encode: (r: Results[M]) => string = jsonResults[method];
    return encodeReply(id, method, encode(result));
  },
  error: encodeError,
  publicationPush: (channel, pub) => encodePublicationPush(channel, pub.json),
  deltaPublicationPush: (channel, pub, dataText, delta) => {
    const obj = JSON.parse(pub.json) as Record<string, unknown>;
    if (delta) {
      const deltaText = text.decode(delta);
      if (utf8.encode(deltaText).length !== delta.length) return undefined;
      obj.data = deltaText;
      obj.delta = true;
    } else {
      obj.data = dataText;
    }
    return encodePublicationPush(channel, JSON.stringify(obj));
  },
  joinLeavePush: encodeJoinLeavePush,
  subscribePush: (channel, push) => encodePush(channel, 'subscribe', push),
  unsubscribePush: (channel, push) => encodePush(channel, 'unsubscribe', push),
  messagePush: encodeMessagePush,
  disconnectPush: encodeDisconnectPush,
};

export const protobufCodec: ClientCodec = {
  name: 'protobuf',
  binary: true,
  ping: PROTOBUF_PING_FRAME,
  decode: decodeProtobufFrame,
  reply: encodeProtobufReply,
  error: encodeProtobufError,
  publicationPush: encodeProtobufPublicationPush,
  deltaPublicationPush: (channel, pub, dataText, delta) =>
    encodeProtobufPublicationPushWithData(channel, pub, delta ?? utf8.encode(dataText), delta !== undefined),
  joinLeavePush: encodeProtobufJoinLeavePush,
  subscribePush: encodeProtobufSubscribePush,
  unsubscribePush: encodeProtobufUnsubscribePush,
  messagePush: encodeProtobufMessagePush,
  disconnectPush: encodeProtobufDisconnectPush,
};
