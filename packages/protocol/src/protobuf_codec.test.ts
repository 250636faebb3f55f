// The Protobuf codec against the SDK's own compiled client.proto (protobufjs inside `centrifuge/build/protobuf`):
// commands the SDK encodes decode to what the JSON codec makes of the same command, and every reply and push is
// byte for byte what the SDK's encoder makes of the same values.
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge/build/protobuf';
import { decodeFrame } from './codec';
import { protocolError } from './codes';
import { jsonCodec, protobufCodec } from './client_codec';
import { decodeProtobufFrame } from './protobuf_decode';
import { PbWriter, varintSize } from './protobuf_wire';
import { encodePublication, encodePublicationBody } from './codec';
import type { StoredPublication } from './types';

/** The SDK's Protobuf codec (internal to the SDK; reached through an instance that never connects). */
interface SdkCodec {
  encodeCommands(commands: object[]): Uint8Array;
  encodeReplies(replies: object[]): Uint8Array;
  decodeReplies(data: Uint8Array): Record<string, unknown>[];
}
const sdk = (new Centrifuge('ws://127.0.0.1:1/connection/websocket', { websocket: WebSocket }) as unknown as { _codec: SdkCodec })._codec;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A frame of raw bytes: each message given as its bytes, prefixed with its length. */
function frameOf(...messages: number[][]): Uint8Array {
  const out: number[] = [];
  for (const m of messages) out.push(...varint(m.length), ...m);
  return new Uint8Array(out);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** Field key bytes. */
const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const str = (field: number, s: string): number[] => {
  const b = [...bytes(s)];
  return [...key(field, 2), ...varint(b.length), ...b];
};
const msg = (field: number, body: number[]): number[] => [...key(field, 2), ...varint(body.length), ...body];

describe('decoding what the SDK sends', () => {
  const cases: [string, object, string][] = [
    [
      'connect with a token and recovery hints',
      { id: 1, connect: { token: 'jwt', name: 'js', version: '5.8.0', data: bytes('{"hello":[1,2]}'), subs: { 'chat:a': { recover: true, epoch: 'e', offset: 3 } } } },
      '{"id":1,"connect":{"token":"jwt","name":"js","version":"5.8.0","data":{"hello":[1,2]},"subs":{"chat:a":{"recover":true,"epoch":"e","offset":3}}}}',
    ],
    [
      'subscribe with recovery',
      { id: 2, subscribe: { channel: 'chat:index', token: 't', recover: true, epoch: 'xyz', offset: 10, positioned: true, recoverable: true, join_leave: true, flag: 2 } },
      '{"id":2,"subscribe":{"channel":"chat:index","token":"t","recover":true,"epoch":"xyz","offset":10,"positioned":true,"recoverable":true,"join_leave":true,"flag":2}}',
    ],
    ['publish', { id: 3, publish: { channel: 'c', data: bytes('{"text":"héllo ✓","n":[1,null]}') } }, '{"id":3,"publish":{"channel":"c","data":{"text":"héllo ✓","n":[1,null]}}}'],
    ['unsubscribe', { id: 4, unsubscribe: { channel: 'c' } }, '{"id":4,"unsubscribe":{"channel":"c"}}'],
    ['presence', { id: 5, presence: { channel: 'c' } }, '{"id":5,"presence":{"channel":"c"}}'],
    ['presence_stats', { id: 6, presence_stats: { channel: 'c' } }, '{"id":6,"presence_stats":{"channel":"c"}}'],
    [
      'history',
      { id: 7, history: { channel: 'c', limit: 10, since: { offset: 2, epoch: 'e' }, reverse: true } },
      '{"id":7,"history":{"channel":"c","limit":10,"since":{"offset":2,"epoch":"e"},"reverse":true}}',
    ],
    ['history of all (limit -1)', { id: 7, history: { channel: 'c', limit: -1 } }, '{"id":7,"history":{"channel":"c","limit":-1}}'],
    ['rpc', { id: 8, rpc: { method: 'doc.get', data: bytes('{"channel":"doc:a"}') } }, '{"id":8,"rpc":{"method":"doc.get","data":{"channel":"doc:a"}}}'],
    ['refresh', { id: 9, refresh: { token: 't' } }, '{"id":9,"refresh":{"token":"t"}}'],
    ['sub_refresh', { id: 10, sub_refresh: { channel: 'c', token: 't' } }, '{"id":10,"sub_refresh":{"channel":"c","token":"t"}}'],
    ['send', { send: { data: bytes('"x"') } }, '{"send":{"data":"x"}}'],
    ['an empty command (the answer to a ping)', {}, '{}'],
    ['an offset of 2^53 - 1', { id: 11, subscribe: { channel: 'c', offset: Number.MAX_SAFE_INTEGER } }, `{"id":11,"subscribe":{"channel":"c","offset":${Number.MAX_SAFE_INTEGER}}}`],
    ['subscribe without channel', { id: 12, subscribe: {} }, '{"id":12,"subscribe":{}}'],
    ['publish without data', { id: 13, publish: { channel: 'a' } }, '{"id":13,"publish":{"channel":"a"}}'],
    ['refresh without token', { id: 14, refresh: {} }, '{"id":14,"refresh":{}}'],
    ['a negative flag', { id: 15, subscribe: { channel: 'a', flag: -2 } }, '{"id":15,"subscribe":{"channel":"a","flag":-2}}'],
    ['only an id', { id: 16 }, '{"id":16}'],
    ['no id', { subscribe: { channel: 'a' } }, '{"subscribe":{"channel":"a"}}'],
    ['two methods', { id: 17, connect: {}, subscribe: { channel: 'a' } }, '{"id":17,"connect":{},"subscribe":{"channel":"a"}}'],
  ];
  it.each(cases)('%s: as the JSON codec decodes it', (_name, command, json) => {
    expect(decodeProtobufFrame(sdk.encodeCommands([command]))).toEqual(decodeFrame(json));
  });

  it('decodes several commands of one frame in order', () => {
    const frame = sdk.encodeCommands([{ id: 1, connect: {} }, { id: 2, subscribe: { channel: 'a' } }, {}]);
    expect(decodeProtobufFrame(frame).map((i) => i.kind)).toEqual(['command', 'command', 'pong']);
  });

  it('skips unknown fields of every wire type, groups included, and fields this server does not serve', () => {
    const sub = [...str(1, 'a'), ...key(40, 0), 0x96, 0x01, ...key(41, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...key(42, 5), 1, 2, 3, 4, ...str(43, 'x')];
    const group = [...key(44, 3), ...key(1, 0), 5, ...key(2, 3), ...key(1, 0), 1, ...key(2, 4), ...key(44, 4)];
    const withTagFilter = sdk.encodeCommands([{ id: 2, subscribe: { channel: 'b', delta: 'fossil', tf: { op: 'and', nodes: [{ key: 'k', cmp: 'eq', val: 'v' }] } } }]);
    const frame = new Uint8Array([...frameOf([...key(1, 0), 1, ...msg(5, [...sub, ...group]), ...str(99, 'later field')]), ...withTagFilter]);
    expect(decodeProtobufFrame(frame)).toEqual([
      { kind: 'command', command: { id: 1, method: 'subscribe', params: { channel: 'a' } } },
      // Fields the JSON variant has names for are read under them, and validate.ts decides for both variants.
      ...decodeFrame('{"id":2,"subscribe":{"channel":"b","delta":"fossil","tf":{"op":"and","nodes":[{"key":"k","cmp":"eq","val":"v"}]}}}'),
    ]);
  });

  it('names an unknown method by its field number', () => {
    expect(decodeProtobufFrame(frameOf([...key(1, 0), 4, ...msg(30, [])]))).toEqual([
      { kind: 'error', id: 4, error: { code: 104, message: 'method not found: unknown method field 30' } },
    ]);
    expect(decodeProtobufFrame(sdk.encodeCommands([{ id: 5, ping: {} }]))).toEqual([
      { kind: 'error', id: 5, error: { code: 104, message: 'method not found: unknown method ping' } },
    ]);
  });

  const refused: [string, Uint8Array, object][] = [
    ['data that is not JSON', sdk.encodeCommands([{ id: 1, publish: { channel: 'a', data: new Uint8Array([1, 2, 3]) } }]), { kind: 'error', id: 1, error: { code: 107, message: 'bad request: publish: "data" must be JSON text: publications are stored and relayed to every client as JSON' } }],
    ['data that is not UTF-8', sdk.encodeCommands([{ id: 1, publish: { channel: 'a', data: new Uint8Array([0x22, 0xff, 0x22]) } }]), { kind: 'error', id: 1, error: { code: 107, message: 'bad request: publish: "data" is not valid UTF-8' } }],
    ['data nested too deep', sdk.encodeCommands([{ id: 1, publish: { channel: 'a', data: bytes('['.repeat(63) + ']'.repeat(63)) } }]), { kind: 'error', id: 1, error: { code: 107, message: 'bad request: publish: "data" nests deeper than 62 levels' } }],
    ['a channel that is not UTF-8', frameOf([...key(1, 0), 1, ...msg(5, [...key(1, 2), 1, 0xc3])]), { kind: 'error', id: 1, error: { code: 107, message: 'bad request: subscribe: "channel" is not valid UTF-8' } }],
    ['a string field sent as a varint', frameOf([...key(1, 0), 2, ...msg(5, [...key(1, 0), 7])]), { kind: 'error', id: 2, error: { code: 107, message: 'bad request: subscribe: "channel" has wire type 0; its type needs 2' } }],
    ['a method sent as a varint', frameOf([...key(1, 0), 3, ...key(5, 0), 1]), { kind: 'error', id: 3, error: { code: 107, message: 'bad request: subscribe: "subscribe" must be a message' } }],
    ['an offset beyond 2^53', frameOf([...key(1, 0), 4, ...msg(5, [...str(1, 'a'), ...key(7, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])]), { kind: 'error', id: 4, error: { code: 107, message: 'bad request: subscribe: "offset" is beyond 2^53' } }],
    ['tag filters nested too deep', deepFilter(70), { kind: 'error', id: 1, error: { code: 107, message: 'bad request: subscribe: messages nest deeper than 64 levels' } }],
    ['an id beyond 32 bits', frameOf([...key(1, 0), 0x80, 0x80, 0x80, 0x80, 0x10, ...msg(4, [])]), { kind: 'fatal', reason: 'command id must fit in 32 bits' }],
    ['an id sent as bytes', frameOf([...str(1, 'x'), ...msg(4, [])]), { kind: 'fatal', reason: 'command id must be a varint' }],
    ['send with data that is not JSON', frameOf(msg(12, [...str(1, 'nope')])), { kind: 'fatal', reason: '"data" must be JSON text: publications are stored and relayed to every client as JSON' }],
  ];
  it.each(refused)('refuses %s', (_name, frame, expected) => {
    expect(decodeProtobufFrame(frame)).toEqual([expected]);
  });

  const malformed: [string, number[], string][] = [
    ['a truncated length prefix', [0x85], 'malformed command: a varint runs past the end of the frame'],
    ['a length beyond the frame', [0x05, 0x08, 0x01], 'malformed command: a length of 5 runs past the end of the frame'],
    ['a truncated varint inside a command', [0x02, 0x08, 0x81], 'malformed command: a varint runs past the end of the frame'],
    ['a varint of 11 bytes', [0x0c, 0x08, ...Array(10).fill(0xff), 0x01], 'malformed command: a varint is longer than 10 bytes'],
    ['field number 0', [0x02, 0x00, 0x01], 'malformed command: a field number is 0 or beyond 2^29'],
    ['wire type 7', [0x02, 0x0f, 0x01], 'malformed command: wire type 7 does not exist'],
    ['an end of group outside a group', [0x01, 0x0c], 'malformed command: wire type 4 does not exist outside a group'],
    ['a group closed by another field', [0x02, 0x1b, 0x24], 'malformed command: a group ends with another field number than it started'],
    ['a nested length beyond its message', [0x04, 0x08, 0x01, 0x2a, 0x09], 'malformed command: a length of 9 runs past the end of the frame'],
    ['groups nested 40 deep', [80, ...Array(40).fill(0x1b), ...Array(40).fill(0x1c)], 'malformed command: groups nest deeper than 32 levels'],
  ];
  it.each(malformed)('closes on %s', (_name, frame, reason) => {
    expect(decodeProtobufFrame(new Uint8Array(frame))).toEqual([{ kind: 'fatal', reason }]);
  });

  it('stops at the first fatal command', () => {
    const frame = new Uint8Array([...sdk.encodeCommands([{ id: 1, connect: {} }]), 0x05, 0x08, ...sdk.encodeCommands([{ id: 2, connect: {} }])]);
    expect(decodeProtobufFrame(frame).map((i) => i.kind)).toEqual(['command', 'fatal']);
  });

  it('reads a map key "__proto__" as the JSON codec does, and pollutes nothing', () => {
    const json = '{"id":1,"connect":{"subs":{"__proto__":{"recover":true,"offset":1}}}}';
    const frame = sdk.encodeCommands([JSON.parse(json)]);
    expect(decodeProtobufFrame(frame)).toEqual(decodeFrame(json));
    expect(({} as Record<string, unknown>).recover).toBeUndefined();
  });
});

function deepFilter(depth: number): Uint8Array {
  let node: object = { key: 'k' };
  for (let i = 0; i < depth; i++) node = { op: 'and', nodes: [node] };
  return sdk.encodeCommands([{ id: 1, subscribe: { channel: 'a', tf: node } }]);
}

const info = '{"user":"u1","client":"c-1","conn_info":{"name":"Ann ✓"},"chan_info":[1,2]}';
const stored = (offset: number, data: string, tags?: Record<string, string>): StoredPublication => ({
  offset,
  json: encodePublication(offset, encodePublicationBody(data, JSON.parse(info), tags)),
});
const sdkInfo = { user: 'u1', client: 'c-1', conn_info: bytes('{"name":"Ann ✓"}'), chan_info: bytes('[1,2]') };
const sdkPub = (offset: number, data: string, tags?: Record<string, string>): object => ({ data: bytes(data), info: sdkInfo, ...(offset ? { offset } : {}), ...(tags ? { tags } : {}) });

describe('encoding byte for byte as the SDK does', () => {
  const big = 2 ** 40 + 5;
  const cases: [string, Uint8Array | string, object][] = [
    ['the server ping', protobufCodec.ping, {}],
    ['an error', protobufCodec.error(3, protocolError(107, 'subscribe: "channel" is required')), { id: 3, error: { code: 107, message: 'bad request: subscribe: "channel" is required' } }],
    ['a temporary error', protobufCodec.error(4, protocolError(100)), { id: 4, error: { code: 100, message: 'internal server error', temporary: true } }],
    [
      'a connect result with a server-side subscription',
      protobufCodec.reply(1, 'connect', { client: 'c-1', version: '0.1.0', ping: 25, pong: true, node: 'n1', expires: true, ttl: 60, subs: { 'chat:a': { epoch: 'e', offset: 2, positioned: true, recoverable: true } } }),
      { id: 1, connect: { client: 'c-1', version: '0.1.0', expires: true, ttl: 60, subs: { 'chat:a': { epoch: 'e', offset: 2, positioned: true, recoverable: true } }, ping: 25, pong: true, node: 'n1' } },
    ],
    [
      'a recovering subscribe result',
      protobufCodec.reply(2, 'subscribe', { epoch: 'ep', offset: big, positioned: true, recoverable: true, was_recovering: true, recovered: true, publications: [stored(big - 1, '{"a":1}', { k: 'v', '': '' }), stored(big, '"two"')] }),
      { id: 2, subscribe: { recoverable: true, epoch: 'ep', publications: [sdkPub(big - 1, '{"a":1}', { k: 'v', '': '' }), sdkPub(big, '"two"')], recovered: true, offset: big, positioned: true, was_recovering: true } },
    ],
    ['a subscribe result with an expiring token', protobufCodec.reply(2, 'subscribe', { expires: true, ttl: 30 }), { id: 2, subscribe: { expires: true, ttl: 30 } }],
    ['an empty unsubscribe result', protobufCodec.reply(5, 'unsubscribe', {}), { id: 5, unsubscribe: {} }],
    ['an empty publish result', protobufCodec.reply(6, 'publish', {}), { id: 6, publish: {} }],
    [
      'a presence result',
      protobufCodec.reply(7, 'presence', { presence: new Map([['c-1', info], ['c-2', '{"user":"","client":"c-2"}']]) }),
      { id: 7, presence: { presence: { 'c-1': sdkInfo, 'c-2': { client: 'c-2' } } } },
    ],
    ['a presence stats result', protobufCodec.reply(8, 'presence_stats', { num_clients: 3, num_users: 2 }), { id: 8, presence_stats: { num_clients: 3, num_users: 2 } }],
    ['a history result', protobufCodec.reply(9, 'history', { publications: [stored(1, '[1,{"b":null}]')], epoch: 'e', offset: 1 }), { id: 9, history: { publications: [sdkPub(1, '[1,{"b":null}]')], epoch: 'e', offset: 1 } }],
    ['an rpc result', protobufCodec.reply(10, 'rpc', { data: '{"version":3,"state":{}}' }), { id: 10, rpc: { data: bytes('{"version":3,"state":{}}') } }],
    ['a refresh result', protobufCodec.reply(11, 'refresh', { client: 'c-1', version: '0.1.0', expires: true, ttl: 100 }), { id: 11, refresh: { client: 'c-1', version: '0.1.0', expires: true, ttl: 100 } }],
    ['a sub_refresh result', protobufCodec.reply(12, 'sub_refresh', { expires: true, ttl: 5 }), { id: 12, sub_refresh: { expires: true, ttl: 5 } }],
    ['a publication push', protobufCodec.publicationPush('chat:"room"', stored(7, '{"text":"hi"}', { event: 'e' })), { push: { channel: 'chat:"room"', pub: sdkPub(7, '{"text":"hi"}', { event: 'e' }) } }],
    [
      'a publication push of a channel without history, from the API',
      protobufCodec.publicationPush('c', { offset: 0, json: encodePublication(0, encodePublicationBody('null')) }),
      { push: { channel: 'c', pub: { data: bytes('null') } } },
    ],
    ['a join push', protobufCodec.joinLeavePush('c', 'join', info), { push: { channel: 'c', join: { info: sdkInfo } } }],
    ['a leave push', protobufCodec.joinLeavePush('c', 'leave', info), { push: { channel: 'c', leave: { info: sdkInfo } } }],
    ['an unsubscribe push', protobufCodec.unsubscribePush('c', { code: 2500, reason: 'insufficient state' }), { push: { channel: 'c', unsubscribe: { code: 2500, reason: 'insufficient state' } } }],
    [
      'a subscribe push',
      protobufCodec.subscribePush('c', { recoverable: true, epoch: 'e', offset: 4, positioned: true, data: { why: 'server' } }),
      { push: { channel: 'c', subscribe: { recoverable: true, epoch: 'e', offset: 4, positioned: true, data: bytes('{"why":"server"}') } } },
    ],
    ['a message push', protobufCodec.messagePush('{"m":1}'), { push: { message: { data: bytes('{"m":1}') } } }],
    ['a disconnect push', protobufCodec.disconnectPush(3503, 'force disconnect', false), { push: { disconnect: { code: 3503, reason: 'force disconnect' } } }],
  ];
  it.each(cases)('%s', (_name, ours, reply) => {
    expect(ours).toBeInstanceOf(Uint8Array);
    expect(hex(ours as Uint8Array)).toBe(hex(sdk.encodeReplies([reply])));
  });

  it('sends a large publication (a 2-byte and a 3-byte length prefix) that the SDK decodes', () => {
    for (const size of [200, 70000]) {
      const data = JSON.stringify({ text: 'é'.repeat(size) });
      const frame = protobufCodec.publicationPush('c', stored(1, data)) as Uint8Array;
      expect(hex(frame)).toBe(hex(sdk.encodeReplies([{ push: { channel: 'c', pub: sdkPub(1, data) } }])));
      const [decoded] = sdk.decodeReplies(frame) as { push: { pub: { data: Uint8Array } } }[];
      expect(new TextDecoder().decode(decoded.push.pub.data)).toBe(data);
    }
  });
});

describe('the JSON codec behind the same interface', () => {
  it('encodes results as the JSON variant always has', () => {
    const pub = stored(1, '{"a":1}');
    expect(jsonCodec.reply(2, 'subscribe', { epoch: 'e', offset: 1, positioned: true, recoverable: true, was_recovering: true, recovered: true, publications: [pub] })).toBe(
      `{"id":2,"subscribe":{"epoch":"e","offset":1,"positioned":true,"recoverable":true,"was_recovering":true,"recovered":true,"publications":[${pub.json}]}}`,
    );
    expect(jsonCodec.reply(1, 'connect', { client: 'c', version: 'v', ping: 25, pong: true, node: '', subs: { a: { expires: true, ttl: 3 } } })).toBe(
      '{"id":1,"connect":{"client":"c","version":"v","ping":25,"pong":true,"node":"","subs":{"a":{"expires":true,"ttl":3}}}}',
    );
    expect(jsonCodec.reply(3, 'presence_stats', { num_clients: 0, num_users: 0 })).toBe('{"id":3,"presence_stats":{"num_clients":0,"num_users":0}}');
    expect(jsonCodec.reply(4, 'sub_refresh', {})).toBe('{"id":4,"sub_refresh":{}}');
    expect(jsonCodec.publicationPush('c', pub)).toBe(`{"push":{"channel":"c","pub":${pub.json}}}`);
  });

  it('decodes the bytes of a text frame', () => {
    expect(jsonCodec.decode(bytes('{"id":1,"connect":{}}\n{}'))).toEqual(decodeFrame('{"id":1,"connect":{}}\n{}'));
  });
});

describe('the writer', () => {
  it('writes varints of every size up to 2^53 - 1 as protobufjs does', () => {
    for (const n of [1, 127, 128, 300, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1]) {
      const ours = protobufCodec.reply(1, 'history', { publications: [], epoch: '', offset: n }) as Uint8Array;
      expect(hex(ours)).toBe(hex(sdk.encodeReplies([{ id: 1, history: { offset: n } }])));
      expect(new PbWriter().uint(1, n).finish().length).toBe(1 + varintSize(n));
    }
    expect(hex(protobufCodec.reply(2 ** 32 - 1, 'publish', {}) as Uint8Array)).toBe(hex(sdk.encodeReplies([{ id: 2 ** 32 - 1, publish: {} }])));
  });
});
