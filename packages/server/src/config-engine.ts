// The config file's `engine` section (Centrifugo v6 names) turned into the Redis address `--redis` would take.
import { ConfigError, expectBoolean, expectNonNegativeInteger, expectString, keepKnown, optionalMapping, parseRedisUrls, show } from './values';

const ENGINE_KEYS = ['type', 'redis'];
const REDIS_KEYS = [
  'address',
  'cluster_address',
  'sentinel_address',
  'sentinel_master_name',
  'sentinel_user',
  'sentinel_password',
  'user',
  'password',
  'db',
  'tls',
];
const TLS_KEYS = ['enabled'];

/**
 * Reads `engine: { type, redis: {...} }`. Returns the Redis URLs (the same list `--redis` produces), `[]` for
 * `type: memory`, or undefined when the file does not choose an engine.
 * `redis.address` is one address or a list (a list is client-side shards, as in Centrifugo); each is a URL or a
 * bare `host:port`. `cluster_address` and `sentinel_address` (with `sentinel_master_name`) are lists of host:port.
 */
export function engineRedis(section: unknown, path: string, unknownKeys: string[]): string[] | undefined {
  const engine = optionalMapping(section, path, 'engine');
  if (!engine) return undefined;
  keepKnown(engine, 'engine', ENGINE_KEYS, unknownKeys);
  const at = (key: string): string => `${path}: ${key}`;
  const type = engine.type == null ? undefined : expectString(engine.type, at('engine.type'));
  if (type !== undefined && type !== 'memory' && type !== 'redis') {
    throw new ConfigError(`${at('engine.type')}: expected "memory" or "redis", got ${show(type)}`);
  }
  const redis = optionalMapping(engine.redis, path, 'engine.redis');
  if (type === 'memory') return [];
  // Centrifugo's default address when the type is redis and no address is given.
  if (!redis) return type === 'redis' ? ['redis://127.0.0.1:6379'] : undefined;
  keepKnown(redis, 'engine.redis', REDIS_KEYS, unknownKeys);

  const user = optionalText(redis.user, at('engine.redis.user'));
  const password = optionalText(redis.password, at('engine.redis.password'));
  const db = redis.db == null ? undefined : expectNonNegativeInteger(redis.db, at('engine.redis.db'));
  const tlsSection = optionalMapping(redis.tls, path, 'engine.redis.tls');
  if (tlsSection) keepKnown(tlsSection, 'engine.redis.tls', TLS_KEYS, unknownKeys);
  const tls = tlsSection?.enabled == null ? false : expectBoolean(tlsSection.enabled, at('engine.redis.tls.enabled'));
  const scheme = tls ? 'rediss' : 'redis';
  const userinfo = user === undefined && password === undefined ? '' : `${encodeURIComponent(user ?? '')}${password === undefined ? '' : ':' + encodeURIComponent(password)}@`;

  const given = (['address', 'cluster_address', 'sentinel_address'] as const).filter((key) => redis[key] != null);
  if (given.length > 1) throw new ConfigError(`${at('engine.redis')}: give one of ${given.join(' and ')}, not both`);
  // Centrifugo's default address when none is given.
  const kind = given[0] ?? 'address';
  const label = at(`engine.redis.${kind}`);
  const addresses = given.length === 0 ? ['127.0.0.1:6379'] : stringList(redis[kind], label);
  if (kind !== 'sentinel_address') {
    for (const key of ['sentinel_master_name', 'sentinel_user', 'sentinel_password'] as const) {
      if (redis[key] != null) throw new ConfigError(`${at(`engine.redis.${key}`)}: only used with sentinel_address`);
    }
  }

  let text: string;
  if (kind === 'address') {
    const url = addresses.find((address) => address.includes('://'));
    if (url !== undefined && (userinfo !== '' || db !== undefined || tls)) {
      throw new ConfigError(`${label}: a URL carries its own credentials, database and TLS; remove user, password, db and tls or give host:port`);
    }
    text = addresses.map((address) => (address.includes('://') ? address : `${scheme}://${userinfo}${address}${db ? `/${db}` : ''}`)).join(',');
  } else if (kind === 'cluster_address') {
    if (db) throw new ConfigError(`${at('engine.redis.db')}: Redis Cluster has only database 0`);
    text = `${scheme}+cluster://${userinfo}${addresses.map((a) => hostOnly(a, label)).join(',')}`;
  } else {
    const name = optionalText(redis.sentinel_master_name, at('engine.redis.sentinel_master_name'));
    if (!name) throw new ConfigError(`${at('engine.redis.sentinel_master_name')}: required with sentinel_address`);
    const query = new URLSearchParams({ sentinel_master_name: name });
    const sentinelUser = optionalText(redis.sentinel_user, at('engine.redis.sentinel_user'));
    const sentinelPassword = optionalText(redis.sentinel_password, at('engine.redis.sentinel_password'));
    if (sentinelUser) query.set('sentinel_user', sentinelUser);
    if (sentinelPassword) query.set('sentinel_password', sentinelPassword);
    if (db) query.set('db', String(db));
    text = `${scheme}+sentinel://${userinfo}${addresses.map((a) => hostOnly(a, label)).join(',')}?${query.toString()}`;
  }
  return parseRedisUrls(text, label);
}

/** An empty string means "not set", as elsewhere in the file. */
function optionalText(value: unknown, label: string): string | undefined {
  if (value == null) return undefined;
  return expectString(value, label) || undefined;
}

function stringList(value: unknown, label: string): string[] {
  const items = Array.isArray(value) ? value : [value];
  const list = items.map((item, i) => expectString(item, Array.isArray(value) ? `${label}[${i}]` : label).trim());
  if (list.length === 0 || list.some((item) => item === '')) throw new ConfigError(`${label}: expected host:port addresses, got ${show(value)}`);
  return list;
}

/** Cluster seeds and sentinels are host:port; a URL there would hide credentials and options in the wrong place. */
function hostOnly(address: string, label: string): string {
  if (address.includes('://') || address.includes('@') || address.includes(',') || address.includes('?')) {
    throw new ConfigError(`${label}: expected host:port, got ${show(address)} (credentials go in engine.redis.user and password)`);
  }
  return address;
}
