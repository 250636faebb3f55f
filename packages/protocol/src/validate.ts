// Checks the shape of every request a client may send; a bad field gets a message naming it.
import type { Json, Method, Requests, StreamPosition, SubscribeHint } from './types';

export class RequestError extends Error {}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new RequestError(`"${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new RequestError(`"${key}" must be a string`);
  return v;
}

function nonEmpty(o: Obj, key: string): string {
  const v = str(o, key, true) as string;
  if (v === '') throw new RequestError(`"${key}" must not be empty`);
  return v;
}

function bool(o: Obj, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new RequestError(`"${key}" must be a boolean`);
  return v;
}

function uint(o: Obj, key: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RequestError(`"${key}" must be a non-negative integer`);
  }
  return v;
}

function int(o: Obj, key: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new RequestError(`"${key}" must be an integer`);
  return v;
}

function json(o: Obj, key: string): Json | undefined {
  return o[key] as Json | undefined;
}

function assign<T extends object>(target: Partial<T>, extra: Partial<T>): T {
  for (const k of Object.keys(extra) as (keyof T)[]) {
    if (extra[k] !== undefined) target[k] = extra[k];
  }
  return target as T;
}

function subscribeHint(v: unknown, channel: string): SubscribeHint {
  if (!isObject(v)) throw new RequestError(`"subs.${channel}" must be an object`);
  return assign({}, { recover: bool(v, 'recover'), epoch: str(v, 'epoch', false), offset: uint(v, 'offset') });
}

function position(v: unknown): StreamPosition | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new RequestError('"since" must be an object');
  return { offset: uint(v, 'offset') ?? 0, epoch: str(v, 'epoch', false) ?? '' };
}

/**
 * Fields of newer SDKs' map subscriptions (`type`, `phase`, `cursor`, `limit`, `asc`): Switchboard serves stream
 * subscriptions only, so a request that sets one is refused by name rather than half-served. Zero values are
 * what older SDKs and the Protobuf encoding send for "not set".
 */
function refuseMapSubscription(o: Obj): void {
  for (const key of ['type', 'phase', 'limit'] as const) {
    const v = o[key];
    if (v !== undefined && v !== null && v !== 0) throw new RequestError(`"${key}" asks for a map subscription, which this server does not serve`);
  }
  if (o.cursor !== undefined && o.cursor !== null && o.cursor !== '') throw new RequestError('"cursor" asks for a map subscription, which this server does not serve');
  if (o.asc !== undefined && o.asc !== null && o.asc !== false) throw new RequestError('"asc" asks for a map subscription, which this server does not serve');
}

const validators: { [M in Method]: (o: Obj) => Requests[M] } = {
  connect(o) {
    let subs: Record<string, SubscribeHint> | undefined;
    if (o.subs !== undefined && o.subs !== null) {
      if (!isObject(o.subs)) throw new RequestError('"subs" must be an object');
      subs = {};
      for (const [ch, hint] of Object.entries(o.subs)) subs[ch] = subscribeHint(hint, ch);
    }
    return assign({}, {
      token: str(o, 'token', false),
      data: json(o, 'data'),
      subs,
      name: str(o, 'name', false),
      version: str(o, 'version', false),
    });
  },
  subscribe(o) {
    refuseMapSubscription(o);
    return assign<Requests['subscribe']>({ channel: nonEmpty(o, 'channel') }, {
      token: str(o, 'token', false),
      recover: bool(o, 'recover'),
      epoch: str(o, 'epoch', false),
      offset: uint(o, 'offset'),
      data: json(o, 'data'),
      positioned: bool(o, 'positioned'),
      recoverable: bool(o, 'recoverable'),
      join_leave: bool(o, 'join_leave'),
      flag: uint(o, 'flag'),
      delta: str(o, 'delta', false),
      tf: json(o, 'tf'),
    });
  },
  unsubscribe: (o) => ({ channel: nonEmpty(o, 'channel') }),
  publish(o) {
    if (o.data === undefined) throw new RequestError('"data" is required');
    return { channel: nonEmpty(o, 'channel'), data: o.data as Json };
  },
  presence: (o) => ({ channel: nonEmpty(o, 'channel') }),
  presence_stats: (o) => ({ channel: nonEmpty(o, 'channel') }),
  history(o) {
    return assign<Requests['history']>({ channel: nonEmpty(o, 'channel') }, {
      limit: int(o, 'limit'),
      since: position(o.since),
      reverse: bool(o, 'reverse'),
    });
  },
  rpc: (o) => assign<Requests['rpc']>({ method: str(o, 'method', false) ?? '' }, { data: json(o, 'data') }),
  refresh: (o) => ({ token: nonEmpty(o, 'token') }),
  sub_refresh: (o) => ({ channel: nonEmpty(o, 'channel'), token: nonEmpty(o, 'token') }),
  send: (o) => assign({}, { data: json(o, 'data') }),
};

export const methods = Object.keys(validators) as Method[];

export function isMethod(name: string): name is Method {
  return Object.prototype.hasOwnProperty.call(validators, name);
}

/** Validates one request body; throws RequestError with a message naming the bad field. */
export function validateRequest<M extends Method>(method: M, body: unknown): Requests[M] {
  if (body === undefined || body === null) body = {};
  if (!isObject(body)) throw new RequestError(`"${method}" must be an object`);
  return validators[method](body);
}

export { isObject };
