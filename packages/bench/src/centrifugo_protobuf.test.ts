// The load generator's Protobuf client against the gateway's own codec (packages/protocol) and the SDK's encoder:
// what it sends decodes to the commands meant, and what the gateway sends is read or scanned as the SDK would.
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge/build/protobuf';
import { decodeProtobufFrame, encodeProtobufPublicationPush, ErrorCode, PROTOBUF_PING_FRAME, protobufCodec, protocolError } from '@switchboard/protocol';
import { connectCommand, PONG_COMMAND, readReply, subscribeCommand, walkReplies, type ReplyInfo } from './centrifugo_protobuf';
import { payloadJson, PLAIN_KEYS, scanDeliveries } from './payload';

/** The SDK's Protobuf codec (internal to the SDK; reached through an instance that never connects). */
interface SdkCodec {
  encodeCommands(commands: object[]): Uint8Array;
}
const sdk = (new Centrifuge('ws://127.0.0.1:1/connection/websocket', { websocket: WebSocket }) as unknown as { _codec: SdkCodec })._codec;

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl';

/** What walkReplies reported, in order. */
function walk(frame: Uint8Array): (ReplyInfo | 'ping')[] {
  const seen: (ReplyInfo | 'ping')[] = [];
  walkReplies(Buffer.from(frame), { ping: () => seen.push('ping'), reply: (r) => seen.push(r) });
  return seen;
}

describe('commands', () => {
  it('connect and subscribe decode with the gateway decoder to what they mean', () => {
    const frame = Buffer.concat([connectCommand(1, TOKEN), subscribeCommand(2, 'bench:fan'), subscribeCommand(300, 'bench:m999')]);
    expect(decodeProtobufFrame(frame)).toEqual([
      { kind: 'command', command: { id: 1, method: 'connect', params: { token: TOKEN } } },
      { kind: 'command', command: { id: 2, method: 'subscribe', params: { channel: 'bench:fan' } } },
      { kind: 'command', command: { id: 300, method: 'subscribe', params: { channel: 'bench:m999' } } },
    ]);
    expect(decodeProtobufFrame(connectCommand(1))).toEqual([{ kind: 'command', command: { id: 1, method: 'connect', params: {} } }]);
  });

  it('are byte for byte what the SDK encodes, the pong too', () => {
    expect(connectCommand(1, TOKEN)).toEqual(Buffer.from(sdk.encodeCommands([{ id: 1, connect: { token: TOKEN } }])));
    expect(connectCommand(1)).toEqual(Buffer.from(sdk.encodeCommands([{ id: 1, connect: {} }])));
    const long = `bench:${'c'.repeat(200)}`; // a length prefix of two bytes
    expect(Buffer.concat([subscribeCommand(2, 'bench:fan'), subscribeCommand(1000, long)])).toEqual(
      Buffer.from(sdk.encodeCommands([{ id: 2, subscribe: { channel: 'bench:fan' } }, { id: 1000, subscribe: { channel: long } }])),
    );
    expect(PONG_COMMAND).toEqual(Buffer.from(sdk.encodeCommands([{}])));
    expect(decodeProtobufFrame(PONG_COMMAND)).toEqual([{ kind: 'pong' }]);
  });
});

describe('replies', () => {
  const connect = protobufCodec.reply(1, 'connect', { client: 'c1', version: '0.1.0', ping: 25, pong: true, node: 'n1', expires: true, ttl: 3600 });
  const subscribe = protobufCodec.reply(2, 'subscribe', { recoverable: true, epoch: 'abcd', offset: 2 ** 40, positioned: true });
  const refused = protobufCodec.error(3, protocolError(ErrorCode.PermissionDenied));

  it('reads the connect result, its pong, the subscribe result and errors; takes the empty Reply for a ping', () => {
    const frame = Buffer.concat([connect, subscribe, refused, PROTOBUF_PING_FRAME].map((f) => Buffer.from(f)));
    expect(walk(frame)).toEqual([
      { id: 1, pong: true, push: false },
      { id: 2, pong: false, push: false },
      { id: 3, pong: false, push: false, error: { code: ErrorCode.PermissionDenied, message: protocolError(ErrorCode.PermissionDenied).message } },
      'ping',
    ]);
    expect(walk(Buffer.from(protobufCodec.reply(1, 'connect', { client: 'c1', version: '', ping: 25, pong: false }) as Uint8Array))).toEqual([{ id: 1, pong: false, push: false }]);
  });

  it('finds the payloads of publication pushes and passes the pushes over', () => {
    const payloads = [3, 4].map((seq) => payloadJson({ seq, intendedUs: 123456789012, step: 7, channel: 0 }, 64));
    const frame = Buffer.concat(
      [
        ...payloads.map((data, i) => encodeProtobufPublicationPush('bench:fan', { offset: 10 + i, json: `{"offset":${10 + i},"data":${data}}` })),
        protobufCodec.joinLeavePush('bench:fan', 'join', '{"user":"u1","client":"c1"}'),
        PROTOBUF_PING_FRAME,
      ].map((f) => Buffer.from(f)),
    );
    const found: number[][] = [];
    expect(scanDeliveries(frame, 0, frame.length, (...fields) => found.push(fields), PLAIN_KEYS)).toBe(2);
    expect(found).toEqual([
      [3, 123456789012, 7, 0],
      [4, 123456789012, 7, 0],
    ]);
    expect(walk(frame)).toEqual(['ping']);
  });

  it('refuses what is not a sequence of Replies', () => {
    const whole = Buffer.from(connect);
    expect(() => walk(whole.subarray(0, whole.length - 1))).toThrow(/runs past the end/);
    expect(() => walk(Buffer.from([0x80]))).toThrow(/varint/);
    expect(() => readReply(Buffer.from([0x0b]), 0, 1)).toThrow(/wire type 3/);
  });
});
