import { decodeFrame, encodePublication, encodePublicationBody, encodePublicationPush, encodeReply, encodeError } from './codec';
import { disconnectReconnects, protocolError } from './codes';

describe('decodeFrame', () => {
  it('splits newline-separated commands and keeps their order', () => {
    const items = decodeFrame('{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"a"}}\n\n{}');
    expect(items.map((i) => i.kind)).toEqual(['command', 'command', 'pong']);
    const second = items[1];
    expect(second.kind === 'command' && second.command).toEqual({ id: 2, method: 'subscribe', params: { channel: 'a' } });
  });

  it('accepts the zero values of map subscription fields (what the Protobuf encoding and older SDKs mean by unset)', () => {
    const [item] = decodeFrame('{"id":1,"subscribe":{"channel":"a","type":0,"phase":0,"cursor":"","limit":0,"asc":false}}');
    expect(item).toMatchObject({ kind: 'command', command: { method: 'subscribe', params: { channel: 'a' } } });
  });

  it('accepts send without id', () => {
    const [item] = decodeFrame('{"send":{"data":{"x":1}}}');
    expect(item).toEqual({ kind: 'command', command: { id: 0, method: 'send', params: { data: { x: 1 } } } });
  });

  it('keeps raw JSON data of publish as it was sent', () => {
    const [item] = decodeFrame('{"id":3,"publish":{"channel":"c","data":[1,"two",{"three":null}]}}');
    expect(item.kind === 'command' && item.command.params).toEqual({ channel: 'c', data: [1, 'two', { three: null }] });
  });

  const cases: [string, string, object][] = [
    ['invalid JSON', '{"id":1,', { kind: 'fatal', reason: 'invalid JSON' }],
    ['a JSON array', '[1,2]', { kind: 'fatal', reason: 'command must be a JSON object' }],
    ['a JSON string', '"connect"', { kind: 'fatal', reason: 'command must be a JSON object' }],
    ['no id', '{"subscribe":{"channel":"a"}}', { kind: 'fatal', reason: 'command id is required' }],
    ['a negative id', '{"id":-1,"connect":{}}', { kind: 'fatal', reason: 'command id must be a non-negative integer' }],
    ['a string id', '{"id":"1","connect":{}}', { kind: 'fatal', reason: 'command id must be a non-negative integer' }],
    ['an unknown method', '{"id":4,"frobnicate":{}}', { kind: 'error', id: 4, error: { code: 104, message: 'method not found: unknown method frobnicate' } }],
    ['only an id', '{"id":5}', { kind: 'error', id: 5, error: { code: 104, message: 'method not found: no method' } }],
    ['two methods', '{"id":6,"connect":{},"subscribe":{"channel":"a"}}', { kind: 'error', id: 6, error: { code: 107, message: 'bad request: a command holds exactly one method' } }],
    ['subscribe without channel', '{"id":7,"subscribe":{}}', { kind: 'error', id: 7, error: { code: 107, message: 'bad request: subscribe: "channel" is required' } }],
    ['subscribe with empty channel', '{"id":7,"subscribe":{"channel":""}}', { kind: 'error', id: 7, error: { code: 107, message: 'bad request: subscribe: "channel" must not be empty' } }],
    ['a numeric channel', '{"id":8,"subscribe":{"channel":5}}', { kind: 'error', id: 8, error: { code: 107, message: 'bad request: subscribe: "channel" must be a string' } }],
    ['a negative offset', '{"id":9,"subscribe":{"channel":"a","recover":true,"offset":-3}}', { kind: 'error', id: 9, error: { code: 107, message: 'bad request: subscribe: "offset" must be a non-negative integer' } }],
    ['a string recover flag', '{"id":9,"subscribe":{"channel":"a","recover":"yes"}}', { kind: 'error', id: 9, error: { code: 107, message: 'bad request: subscribe: "recover" must be a boolean' } }],
    ['publish without data', '{"id":10,"publish":{"channel":"a"}}', { kind: 'error', id: 10, error: { code: 107, message: 'bad request: publish: "data" is required' } }],
    ['history with a bad limit', '{"id":11,"history":{"channel":"a","limit":1.5}}', { kind: 'error', id: 11, error: { code: 107, message: 'bad request: history: "limit" must be an integer' } }],
    ['a request that is not an object', '{"id":12,"connect":[1]}', { kind: 'error', id: 12, error: { code: 107, message: 'bad request: connect: "connect" must be an object' } }],
    ['refresh without token', '{"id":13,"refresh":{}}', { kind: 'error', id: 13, error: { code: 107, message: 'bad request: refresh: "token" is required' } }],
    ['a map subscription type', '{"id":14,"subscribe":{"channel":"a","type":1}}', { kind: 'error', id: 14, error: { code: 107, message: 'bad request: subscribe: "type" asks for a map subscription, which this server does not serve' } }],
    ['a map subscription phase', '{"id":15,"subscribe":{"channel":"a","phase":2}}', { kind: 'error', id: 15, error: { code: 107, message: 'bad request: subscribe: "phase" asks for a map subscription, which this server does not serve' } }],
    ['a map subscription cursor', '{"id":16,"subscribe":{"channel":"a","cursor":"x"}}', { kind: 'error', id: 16, error: { code: 107, message: 'bad request: subscribe: "cursor" asks for a map subscription, which this server does not serve' } }],
    ['a map subscription page size', '{"id":17,"subscribe":{"channel":"a","limit":100,"asc":true}}', { kind: 'error', id: 17, error: { code: 107, message: 'bad request: subscribe: "limit" asks for a map subscription, which this server does not serve' } }],
  ];
  it.each(cases)('refuses %s', (_name, frame, expected) => {
    expect(decodeFrame(frame)).toEqual([expected]);
  });

  it('stops at the first fatal line', () => {
    expect(decodeFrame('{"id":1,"connect":{}}\nnot json\n{"id":2,"connect":{}}').map((i) => i.kind)).toEqual(['command', 'fatal']);
  });
});

describe('encoders', () => {
  it('builds publications with and without offset', () => {
    const body = encodePublicationBody('{"a":1}', { user: 'u', client: 'c' });
    expect(JSON.parse(encodePublication(7, body))).toEqual({ offset: 7, data: { a: 1 }, info: { user: 'u', client: 'c' } });
    expect(JSON.parse(encodePublication(0, encodePublicationBody('"x"')))).toEqual({ data: 'x' });
  });

  it('builds a publication push that parses back', () => {
    const push = encodePublicationPush('chat:"room"', encodePublication(1, encodePublicationBody('1')));
    expect(JSON.parse(push)).toEqual({ push: { channel: 'chat:"room"', pub: { offset: 1, data: 1 } } });
  });

  it('builds replies and errors', () => {
    expect(JSON.parse(encodeReply(3, 'publish', '{}'))).toEqual({ id: 3, publish: {} });
    expect(JSON.parse(encodeError(4, protocolError(100)))).toEqual({ id: 4, error: { code: 100, message: 'internal server error', temporary: true } });
  });

  it('tells reconnecting close codes from terminal ones', () => {
    expect([3001, 3008, 3499, 3500, 3999, 4000, 4500].map(disconnectReconnects)).toEqual([true, true, true, false, false, true, false]);
  });
});
