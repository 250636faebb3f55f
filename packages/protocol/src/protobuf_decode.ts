// Decodes binary frames of the Protobuf variant into the same commands the JSON codec yields (client.proto field numbers).
//
// A frame holds one or more Commands, each prefixed by its length (a varint). Every request is read into an object
// with the JSON variant's field names and checked by the same validateRequest, so both variants accept and refuse
// the same requests with the same messages. `bytes` data fields hold JSON text, as Centrifugo relays them to JSON
// clients; data that is not JSON is refused, since publications are stored and fanned out as JSON.
import { ErrorCode, protocolError } from './codes';
import type { Decoded } from './codec';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json_depth';
import { MalformedError, PbReader, WireType } from './protobuf_wire';
import type { Command, Json, Method } from './types';
import { RequestError, validateRequest } from './validate';

type Scalar = 'string' | 'bool' | 'uint32' | 'int32' | 'uint64' | 'int64' | 'json';

interface Field {
  name: string;
  type: Scalar | Schema | { map: Scalar | Schema };
  repeated?: boolean;
}

/** A message: its fields by number. */
type Schema = { readonly [field: number]: Field };

// client.proto (centrifugal/protocol), requests only. Fields the JSON variant has no name for are read too, under
// the name the JSON variant gives them, so a rule about a field (refusing it, say) is written once, in validate.ts.
const StreamPosition: Schema = { 1: { name: 'offset', type: 'uint64' }, 2: { name: 'epoch', type: 'string' } };
const FilterNode: Schema = {
  1: { name: 'op', type: 'string' },
  2: { name: 'key', type: 'string' },
  3: { name: 'cmp', type: 'string' },
  4: { name: 'val', type: 'string' },
  5: { name: 'vals', type: 'string', repeated: true },
};
(FilterNode as Record<number, Field>)[6] = { name: 'nodes', type: FilterNode, repeated: true };
const SubscribeRequest: Schema = {
  1: { name: 'channel', type: 'string' },
  2: { name: 'token', type: 'string' },
  3: { name: 'recover', type: 'bool' },
  6: { name: 'epoch', type: 'string' },
  7: { name: 'offset', type: 'uint64' },
  8: { name: 'data', type: 'json' },
  9: { name: 'positioned', type: 'bool' },
  10: { name: 'recoverable', type: 'bool' },
  11: { name: 'join_leave', type: 'bool' },
  12: { name: 'delta', type: 'string' },
  13: { name: 'tf', type: FilterNode },
  14: { name: 'flag', type: 'int64' },
  15: { name: 'type', type: 'int32' },
  16: { name: 'phase', type: 'int32' },
  17: { name: 'cursor', type: 'string' },
  18: { name: 'limit', type: 'int32' },
  19: { name: 'asc', type: 'bool' },
};
const KeyedItem: Schema = { 1: { name: 'key', type: 'string' }, 2: { name: 'version', type: 'uint64' } };
const TrackBatch: Schema = { 1: { name: 'signature', type: 'string' }, 2: { name: 'items', type: KeyedItem, repeated: true } };
const channelOnly: Schema = { 1: { name: 'channel', type: 'string' } };

const requests: { readonly [M in Method]: Schema } = {
  connect: {
    1: { name: 'token', type: 'string' },
    2: { name: 'data', type: 'json' },
    3: { name: 'subs', type: { map: SubscribeRequest } },
    4: { name: 'name', type: 'string' },
    5: { name: 'version', type: 'string' },
    6: { name: 'headers', type: { map: 'string' } },
    7: { name: 'flag', type: 'int64' },
  },
  subscribe: SubscribeRequest,
  unsubscribe: channelOnly,
  publish: {
    1: { name: 'channel', type: 'string' },
    2: { name: 'data', type: 'json' },
    3: { name: 'type', type: 'int32' },
    4: { name: 'key', type: 'string' },
    5: { name: 'removed', type: 'bool' },
  },
  presence: channelOnly,
  presence_stats: channelOnly,
  history: {
    1: { name: 'channel', type: 'string' },
    7: { name: 'limit', type: 'int32' },
    8: { name: 'since', type: StreamPosition },
    9: { name: 'reverse', type: 'bool' },
  },
  send: { 1: { name: 'data', type: 'json' } },
  rpc: { 1: { name: 'data', type: 'json' }, 2: { name: 'method', type: 'string' } },
  refresh: { 1: { name: 'token', type: 'string' } },
  sub_refresh: {
    1: { name: 'channel', type: 'string' },
    2: { name: 'token', type: 'string' },
    3: { name: 'type', type: 'int32' },
    4: { name: 'track', type: TrackBatch, repeated: true },
    5: { name: 'untrack', type: 'string', repeated: true },
  },
};

/** Command field numbers of the methods; 11 is `ping` (protocol v1), which the JSON variant does not have either. */
const commandFields: { readonly [field: number]: Method } = {
  4: 'connect',
  5: 'subscribe',
  6: 'unsubscribe',
  7: 'publish',
  8: 'presence',
  9: 'presence_stats',
  10: 'history',
  12: 'send',
  13: 'rpc',
  14: 'refresh',
  15: 'sub_refresh',
};
const COMMAND_ID = 1;
const COMMAND_PING = 11;

/** Messages nested inside a command (filter nodes nest freely); the command and its request count, as in JSON. */
const MAX_MESSAGE_DEPTH = MAX_JSON_DEPTH;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a binary frame of length-delimited Commands. Stops at the first fatal one. */
export function decodeProtobufFrame(frame: Uint8Array): Decoded[] {
  const out: Decoded[] = [];
  const reader = new PbReader(frame);
  while (!reader.done) {
    let item: Decoded;
    try {
      const [start, end] = reader.delimited();
      item = decodeCommand(frame, start, end);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      item = { kind: 'fatal', reason: `malformed command: ${e.message}` };
    }
    out.push(item);
    if (item.kind === 'fatal') break;
  }
  return out;
}

function decodeCommand(buf: Uint8Array, start: number, end: number): Decoded {
  const reader = new PbReader(buf, start, end);
  let id = 0;
  let badId = false;
  let method: Method | undefined;
  let twoMethods = false;
  /** The request's bytes; undefined when the method's field was not a message. */
  let body: [number, number] | undefined;
  const unknown: number[] = [];
  while (!reader.done) {
    const { field, wire } = reader.key();
    const named = commandFields[field];
    if (field === COMMAND_ID) {
      if (wire !== WireType.Varint) {
        reader.skip(wire, field);
        return { kind: 'fatal', reason: 'command id must be a varint' };
      }
      id = reader.uint32();
      // Ids are uint32: a longer varint is no id the client could have meant.
      badId = reader.hi !== 0;
    } else if (named !== undefined) {
      if (method !== undefined && method !== named) twoMethods = true;
      method = named;
      if (wire === WireType.Bytes) body = reader.delimited();
      else {
        reader.skip(wire, field);
        body = undefined;
      }
    } else {
      reader.skip(wire, field);
      unknown.push(field);
    }
  }
  if (badId) return { kind: 'fatal', reason: 'command id must fit in 32 bits' };
  if (id === 0 && method === undefined && unknown.length === 0) return { kind: 'pong' };
  if (twoMethods) {
    return id > 0
      ? { kind: 'error', id, error: protocolError(ErrorCode.BadRequest, 'a command holds exactly one method') }
      : { kind: 'fatal', reason: 'a command holds exactly one method' };
  }
  if (method === 'send') {
    try {
      return { kind: 'command', command: { id: 0, method, params: validateRequest('send', readRequest(buf, body, 'send')) } };
    } catch (e) {
      if (e instanceof RequestError) return { kind: 'fatal', reason: e.message };
      throw e;
    }
  }
  if (id === 0) return { kind: 'fatal', reason: 'command id is required' };
  if (method === undefined) {
    const named = unknown.map((f) => (f === COMMAND_PING ? 'ping' : `field ${f}`)).join(', ');
    return { kind: 'error', id, error: protocolError(ErrorCode.MethodNotFound, named ? `unknown method ${named}` : 'no method') };
  }
  try {
    const params = validateRequest(method, readRequest(buf, body, method));
    return { kind: 'command', command: { id, method, params } as Command };
  } catch (e) {
    if (e instanceof RequestError) return { kind: 'error', id, error: protocolError(ErrorCode.BadRequest, `${method}: ${e.message}`) };
    throw e;
  }
}

function readRequest(buf: Uint8Array, body: [number, number] | undefined, method: Method): Record<string, unknown> {
  if (body === undefined) throw new RequestError(`"${method}" must be a message`);
  // The command and its request are two levels, as `{"id":…,"<method>":{…}}` is in JSON.
  return readMessage(new PbReader(buf, body[0], body[1]), requests[method], 2);
}

/** Reads a message into an object keyed by field name; null prototype, so any map key is only a key. */
function readMessage(reader: PbReader, schema: Schema, depth: number): Record<string, unknown> {
  if (depth > MAX_MESSAGE_DEPTH) throw new RequestError(`messages nest deeper than ${MAX_MESSAGE_DEPTH} levels`);
  const out: Record<string, unknown> = Object.create(null);
  while (!reader.done) {
    const { field, wire } = reader.key();
    const def = schema[field];
    if (def === undefined) {
      reader.skip(wire, field);
      continue;
    }
    checkWire(reader, def, field, wire);
    const { type, name } = def;
    if (typeof type === 'string') {
      const value = readScalar(reader, type, name);
      if (def.repeated) ((out[name] as unknown[] | undefined) ?? (out[name] = [])).push(value);
      else out[name] = value;
    } else if ('map' in type) {
      const entries = (out[name] as Record<string, unknown> | undefined) ?? (out[name] = Object.create(null));
      readMapEntry(reader, def, type.map, entries as Record<string, unknown>, depth);
    } else {
      const value = readMessage(nested(reader), type as Schema, depth + 1);
      if (def.repeated) ((out[name] as unknown[] | undefined) ?? (out[name] = [])).push(value);
      else out[name] = value;
    }
  }
  return out;
}

/** The reader of the length-delimited message at the reader's position, which moves past it. */
function nested(reader: PbReader): PbReader {
  const [start, end] = reader.delimited();
  return new PbReader(reader.buf, start, end);
}

/** A map entry: key 1 (a string), value 2; either may be missing (the default). */
function readMapEntry(reader: PbReader, def: Field, valueType: Scalar | Schema, into: Record<string, unknown>, depth: number): void {
  const entry = nested(reader);
  let key = '';
  let value: unknown;
  while (!entry.done) {
    const { field, wire } = entry.key();
    if (field === 1) {
      checkWire(entry, { name: `${def.name} key`, type: 'string' }, field, wire);
      key = readScalar(entry, 'string', `${def.name} key`) as string;
    } else if (field === 2) {
      const valueDef: Field = { name: `${def.name} value`, type: valueType };
      checkWire(entry, valueDef, field, wire);
      value = typeof valueType === 'string' ? readScalar(entry, valueType, valueDef.name) : readMessage(nested(entry), valueType, depth + 1);
    } else entry.skip(wire, field);
  }
  into[key] = value ?? (typeof valueType === 'string' ? '' : Object.create(null));
}

const VARINT_TYPES: ReadonlySet<unknown> = new Set(['bool', 'uint32', 'int32', 'uint64', 'int64']);

/** A known field sent with another wire type than its type has: the value is skipped and the request refused. */
function checkWire(reader: PbReader, def: Field, field: number, wire: number): void {
  const expected = VARINT_TYPES.has(def.type) ? WireType.Varint : WireType.Bytes;
  if (wire === expected) return;
  // Skipped first, so a wire type that does not exist is a malformed frame rather than a wrong type.
  reader.skip(wire, field);
  throw new RequestError(`"${def.name}" has wire type ${wire}; its type needs ${expected}`);
}

function readScalar(reader: PbReader, type: Scalar, name: string): unknown {
  switch (type) {
    case 'bool':
      return reader.bool();
    case 'uint32':
      return reader.uint32();
    case 'int32':
      return reader.int32();
    case 'uint64':
    case 'int64': {
      const n = type === 'uint64' ? reader.uint64() : reader.int64();
      if (Number.isNaN(n)) throw new RequestError(`"${name}" is beyond 2^53`);
      return n;
    }
    case 'string': {
      const [start, end] = reader.delimited();
      return text(reader.buf, start, end, name);
    }
    case 'json': {
      const [start, end] = reader.delimited();
      // Empty bytes are proto3's "not set".
      return start === end ? undefined : json(text(reader.buf, start, end, name), name);
    }
  }
}

function text(buf: Uint8Array, start: number, end: number, name: string): string {
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    throw new RequestError(`"${name}" is not valid UTF-8`);
  }
}

/** A `bytes` data field: JSON text, nested no deeper than it could be inside a JSON command. */
function json(value: string, name: string): Json {
  const max = MAX_JSON_DEPTH - 2;
  if (exceedsJsonDepth(value, max)) throw new RequestError(`"${name}" nests deeper than ${max} levels`);
  try {
    return JSON.parse(value) as Json;
  } catch {
    throw new RequestError(`"${name}" must be JSON text: publications are stored and relayed to every client as JSON`);
  }
}
