// The Centrifugo Protobuf client protocol as the load generator speaks it: the Commands it sends (connect, subscribe,
// pong) and a walk over the Replies of a received binary message that finds pings and setup replies.
//
// Field numbers are client.proto's (centrifugal/protocol); the unit test holds them to the protocol package's codec
// and to the centrifuge SDK's own encoder. Publications are not decoded: their data is the published JSON's bytes,
// which the payload scanner finds in the binary message as it does in a text one.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

const Command = { id: 1, connect: 4, subscribe: 5 } as const;
const ConnectRequest = { token: 1 } as const;
const SubscribeRequest = { channel: 1 } as const;
const Reply = { id: 1, error: 2, push: 4, connect: 5 } as const;
const ErrorFields = { code: 1, message: 2 } as const;
const ConnectResult = { pong: 8 } as const;

/** The key byte a push Reply starts with: field `push`, length-delimited; no id is written before it. */
const PUSH_KEY = (Reply.push << 3) | WIRE_BYTES;

/** The WebSocket subprotocol that asks the gateway for the Protobuf variant (as the SDK's Protobuf build does). */
export const PROTOBUF_SUBPROTOCOL = 'centrifuge-protobuf';

/** One empty Command: the pong the SDK sends when the server pinged and the connect result asked for pongs. */
export const PONG_COMMAND: Buffer = Buffer.from([0]);

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited field. */
function bytesField(field: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([...varint((field << 3) | WIRE_BYTES), ...varint(body.length)]), body]);
}

/** A Command with `id` and one method's request, prefixed by its length as Commands are in a frame. */
function command(id: number, method: number, request: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([(Command.id << 3) | WIRE_VARINT, ...varint(id)]), bytesField(method, request)]);
  return Buffer.concat([Buffer.from(varint(body.length)), body]);
}

/** `{id, connect: {token}}`; without a token the connect request is empty. */
export function connectCommand(id: number, token?: string): Buffer {
  return command(id, Command.connect, token ? bytesField(ConnectRequest.token, Buffer.from(token, 'utf8')) : Buffer.alloc(0));
}

/** `{id, subscribe: {channel}}`. Several go in one message concatenated. */
export function subscribeCommand(id: number, channel: string): Buffer {
  return command(id, Command.subscribe, bytesField(SubscribeRequest.channel, Buffer.from(channel, 'utf8')));
}

/** What the load generator needs of a Reply to one of its commands. */
export interface ReplyInfo {
  id: number;
  error?: { code: number; message: string };
  /** A connect result that asks the client to answer pings. */
  pong: boolean;
  push: boolean;
}

export interface ReplyVisitor {
  /** An empty Reply, or one with neither id nor push: the server's ping (as the SDK reads it). */
  ping(): void;
  /** A Reply to a command (id > 0). */
  reply(reply: ReplyInfo): void;
}

/**
 * Walks the length-delimited Replies of a binary message: pings and replies go to `visitor`, pushes are passed over
 * (the payload scan already counted their publications). Hot path: one varint and one byte per push. Throws on a
 * message that is not a sequence of Replies.
 */
export function walkReplies(data: Buffer, visitor: ReplyVisitor): void {
  const end = data.length;
  let pos = 0;
  while (pos < end) {
    const length = readVarint(data, pos, end);
    pos = next;
    const stop = pos + length;
    if (stop > end) throw new Error(`a Reply of ${length} bytes runs past the end of a ${end} byte message`);
    if (length === 0) visitor.ping();
    else if (data[pos] !== PUSH_KEY) {
      const reply = readReply(data, pos, stop);
      if (reply.id > 0) visitor.reply(reply);
      else if (!reply.push) visitor.ping();
    }
    pos = stop;
  }
}

/** Reads one Reply's id, error, push presence and (in a connect result) `pong` from `data[start, end)`. */
export function readReply(data: Buffer, start: number, end: number): ReplyInfo {
  const out: ReplyInfo = { id: 0, pong: false, push: false };
  forEachField(data, start, end, (field, wire, at, stop) => {
    if (field === Reply.id && wire === WIRE_VARINT) out.id = readVarint(data, at, stop);
    else if (field === Reply.push && wire === WIRE_BYTES) out.push = true;
    else if (field === Reply.error && wire === WIRE_BYTES) {
      const error = { code: 0, message: '' };
      forEachField(data, at, stop, (f, w, a, s) => {
        if (f === ErrorFields.code && w === WIRE_VARINT) error.code = readVarint(data, a, s);
        else if (f === ErrorFields.message && w === WIRE_BYTES) error.message = data.toString('utf8', a, s);
      });
      out.error = error;
    } else if (field === Reply.connect && wire === WIRE_BYTES) {
      forEachField(data, at, stop, (f, w, a, s) => {
        if (f === ConnectResult.pong && w === WIRE_VARINT) out.pong = readVarint(data, a, s) !== 0;
      });
    }
  });
  return out;
}

/**
 * Calls `visit` for each field of the message in `data[start, end)` with where its value lies: the varint itself
 * for WIRE_VARINT, the bytes after the length for WIRE_BYTES. Setup path only (a closure per call).
 */
function forEachField(data: Buffer, start: number, end: number, visit: (field: number, wire: number, at: number, stop: number) => void): void {
  let pos = start;
  while (pos < end) {
    const key = readVarint(data, pos, end);
    pos = next;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let at = pos;
    switch (wire) {
      case WIRE_VARINT:
        readVarint(data, pos, end);
        pos = next;
        break;
      case WIRE_FIXED64:
        pos += 8;
        break;
      case WIRE_FIXED32:
        pos += 4;
        break;
      case WIRE_BYTES: {
        const length = readVarint(data, pos, end);
        at = next;
        pos = next + length;
        break;
      }
      default:
        throw new Error(`wire type ${wire} (field ${field}) in a Reply`);
    }
    if (pos > end) throw new Error(`field ${field} runs past the end of its message`);
    visit(field, wire, at, pos);
  }
}

/** Where the last readVarint stopped (module state rather than an allocated pair, as in payload.ts). */
let next = 0;

/** A varint of up to 10 bytes; beyond 2^53 it loses precision, which only fields passed over can reach. */
function readVarint(data: Buffer, from: number, end: number): number {
  let value = 0;
  let scale = 1;
  for (let p = from; p < end && p - from < 10; p++) {
    const b = data[p];
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      next = p + 1;
      return value;
    }
    scale *= 128;
  }
  throw new Error('a varint runs past the end of its message or is longer than 10 bytes');
}
