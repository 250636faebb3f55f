// Redis addresses as users write them (Centrifugo's URL forms), parsed once into what the connections need.
import type { RedisOptions } from 'ioredis';

export interface HostPort {
  host: string;
  port: number;
}

/** One Redis deployment that holds a whole shard: a server, or a primary that Sentinel names. */
export interface ShardAddress {
  /** The URL as given (passwords included): what `parseShardAddress` takes back. */
  url: string;
  /** For messages and logs: the address without its passwords. */
  label: string;
  /** Where and how to connect: host/port or sentinels, credentials, db, TLS. */
  connection: RedisOptions;
}

/** A Redis Cluster: seed nodes to discover it from, and the credentials every node takes. */
export interface ClusterAddress {
  label: string;
  seeds: HostPort[];
  username?: string;
  password?: string;
  tls: boolean;
}

export type RedisAddress = { kind: 'shards'; shards: ShardAddress[] } | { kind: 'cluster'; cluster: ClusterAddress };

export class RedisAddressError extends Error {}

const SCHEMES = ['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel', 'redis+cluster', 'rediss+cluster'] as const;

/** Query parameters each scheme takes; anything else is refused by name rather than silently ignored. */
const PARAMS: Record<'plain' | 'sentinel' | 'cluster', readonly string[]> = {
  plain: ['db'],
  sentinel: ['addr', 'sentinel_master_name', 'sentinel_user', 'sentinel_password', 'db'],
  cluster: ['addr'],
};

const FORMS =
  'redis://[user:password@]host:port[/db], rediss://…, redis+sentinel://host:port[,host:port…]?sentinel_master_name=NAME, or redis+cluster://host:port[,host:port…]';

/**
 * Parses `--redis`: comma-separated `redis://` URLs are client-side shards (a shard may be a Sentinel-managed
 * primary); `redis+cluster://` is a Redis Cluster and must stand alone. A comma followed by a bare `host:port`
 * adds a host to the URL before it (Centrifugo's `redis+sentinel://h1:p1,h2:p2` form); `?addr=host:port` does too.
 */
export function parseRedisAddress(text: string): RedisAddress {
  const groups: string[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (item.includes('://') || groups.length === 0) groups.push(item);
    else groups[groups.length - 1] += ',' + item;
  }
  if (groups.length === 0) throw new RedisAddressError(`no Redis address given; expected ${FORMS}`);
  const parsed = groups.map(parseOne);
  const clusters = parsed.filter((p): p is { kind: 'cluster'; cluster: ClusterAddress } => p.kind === 'cluster');
  if (clusters.length > 0) {
    if (parsed.length > 1) throw new RedisAddressError('a redis+cluster:// address cannot be combined with other addresses (list more seed nodes inside it: redis+cluster://h1:p1,h2:p2)');
    return clusters[0];
  }
  return { kind: 'shards', shards: parsed.map((p) => (p as { kind: 'shard'; shard: ShardAddress }).shard) };
}

/** One shard's address (a `redis://`, `rediss://` or `redis+sentinel://` URL), for callers given URLs one by one. */
export function parseShardAddress(url: string): ShardAddress {
  const p = parseOne(url.trim());
  if (p.kind !== 'shard') throw new RedisAddressError(`${redactUrl(url)}: a shard is a redis://, rediss:// or redis+sentinel:// address`);
  return p.shard;
}

type Parsed = { kind: 'shard'; shard: ShardAddress } | { kind: 'cluster'; cluster: ClusterAddress };

function parseOne(url: string): Parsed {
  const sep = url.indexOf('://');
  const scheme = url.slice(0, sep).toLowerCase();
  if (sep < 0 || !(SCHEMES as readonly string[]).includes(scheme)) {
    throw new RedisAddressError(`${redactUrl(url)}: unknown scheme; expected ${FORMS}`);
  }
  const tls = scheme.startsWith('rediss');
  const mode = scheme.endsWith('+sentinel') ? 'sentinel' : scheme.endsWith('+cluster') ? 'cluster' : 'plain';
  let rest = url.slice(sep + 3);
  const hash = rest.indexOf('#');
  if (hash >= 0) throw new RedisAddressError(`${redactUrl(url)}: a Redis address has no #fragment`);
  const q = rest.indexOf('?');
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  if (q >= 0) rest = rest.slice(0, q);
  const slash = rest.indexOf('/');
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  if (slash >= 0) rest = rest.slice(0, slash);
  // Credentials end at the last '@': a password may itself contain '@' when not percent-encoded.
  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : '';
  const hostList = at >= 0 ? rest.slice(at + 1) : rest;
  const label = redactUrl(url);
  const fail = (what: string): never => {
    throw new RedisAddressError(`${label}: ${what}`);
  };

  for (const key of new Set(query.keys())) {
    if (!PARAMS[mode].includes(key)) fail(`unknown parameter "${key}" (${scheme}:// takes ${PARAMS[mode].map((k) => `"${k}"`).join(', ') || 'none'})`);
  }
  const colon = userinfo.indexOf(':');
  const username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, label) || undefined;
  const password = colon >= 0 ? decode(userinfo.slice(colon + 1), label) || undefined : undefined;

  const hosts = [...hostList.split(','), ...query.getAll('addr')].map((h) => h.trim()).filter((h) => h !== '');
  if (hosts.length === 0) fail('no host');
  const addresses = hosts.map((h) => hostPort(h, mode === 'sentinel' ? 26379 : 6379, fail));

  const dbText = query.get('db') ?? path;
  let db = 0;
  if (dbText !== '') {
    if (mode === 'cluster') fail('Redis Cluster has only database 0; remove the /db path');
    if (!/^\d{1,5}$/.test(dbText)) fail(`database "${dbText}" is not a number`);
    db = Number(dbText);
  }

  if (mode === 'cluster') return { kind: 'cluster', cluster: { label, seeds: addresses, username, password, tls } };

  const tlsOptions = tls ? { tls: {} } : {};
  if (mode === 'plain') {
    if (addresses.length > 1) fail('one host per redis:// URL (separate shards are separate URLs: redis://a:6379,redis://b:6379)');
    return { kind: 'shard', shard: { url, label, connection: { ...addresses[0], username, password, db, ...tlsOptions } } };
  }
  const name = query.get('sentinel_master_name');
  if (!name) fail('"sentinel_master_name" is required: redis+sentinel://host:port?sentinel_master_name=NAME');
  const connection: RedisOptions = {
    sentinels: addresses,
    name: name as string,
    username,
    password,
    db,
    sentinelUsername: query.get('sentinel_user') ?? undefined,
    sentinelPassword: query.get('sentinel_password') ?? undefined,
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
  };
  return { kind: 'shard', shard: { url, label, connection } };
}

function hostPort(text: string, defaultPort: number, fail: (what: string) => never): HostPort {
  let host = text;
  let portText = '';
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) fail(`host "${text}" has no closing ]`);
    host = text.slice(1, end);
    const after = text.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) fail(`host "${text}" is not host:port`);
    portText = after.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  if (host === '' || /[\s/@?#]/.test(host)) fail(`host "${text}" is not host:port`);
  if (portText === '') return { host, port: defaultPort };
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) fail(`port "${portText}" is not a port number`);
  return { host, port };
}

function decode(text: string, label: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisAddressError(`${label}: credentials are not valid percent-encoding`);
  }
}

/** The address as it may appear in logs and errors: passwords (in the userinfo and the query) masked. */
export function redactUrl(url: string): string {
  const sep = url.indexOf('://');
  let out = url;
  if (sep >= 0) {
    const start = sep + 3;
    const end = firstOf(url, ['/', '?', '#'], start);
    const authority = url.slice(start, end);
    const at = authority.lastIndexOf('@');
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      const colon = userinfo.indexOf(':');
      if (colon >= 0) out = url.slice(0, start) + userinfo.slice(0, colon) + ':***' + authority.slice(at) + url.slice(end);
    }
  }
  const q = out.indexOf('?');
  if (q < 0) return out;
  const params = out
    .slice(q + 1)
    .split('&')
    .map((kv) => (kv.toLowerCase().startsWith('sentinel_password=') ? 'sentinel_password=***' : kv));
  return out.slice(0, q + 1) + params.join('&');
}

function firstOf(text: string, chars: string[], from: number): number {
  let best = text.length;
  for (const c of chars) {
    const i = text.indexOf(c, from);
    if (i >= 0 && i < best) best = i;
  }
  return best;
}
