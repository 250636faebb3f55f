// Parsers of single setting values (ports, booleans, durations, Redis URLs, public keys); each names its source when it rejects.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseRedisAddress, RedisAddressError, type RedisAddress } from '@switchboard/engine';

/** A setting the user gave is wrong; the message names the flag, variable or key and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError';

  /** Always one line (it goes to stderr as one): line breaks quoted from the input are escaped. */
  constructor(message: string) {
    super(message.replace(/\r?\n/g, '\\n'));
  }
}

/** pino's levels; Centrifugo's `none` is accepted as `silent`. */
export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** A value as it appears in an error message. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function expected(label: string, what: string, value: unknown): ConfigError {
  return new ConfigError(`${label}: expected ${what}, got ${show(value)}`);
}

export function parsePort(value: unknown, label: string): number {
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw expected(label, 'a port number from 0 to 65535', value);
  }
  return port;
}

/** Booleans written as text (flags, environment): true/false/1/0. */
export function parseBooleanText(text: string, label: string): boolean {
  switch (text.toLowerCase()) {
    case 'true':
    case '1':
      return true;
    case 'false':
    case '0':
      return false;
    default:
      throw expected(label, 'true, false, 1 or 0', text);
  }
}

/** Booleans in a config file must be real booleans: a quoted "true" is a mistake worth reporting. */
export function expectBoolean(value: unknown, label: string): boolean {
  if (typeof value !== 'boolean') throw expected(label, 'true or false', value);
  return value;
}

export function expectString(value: unknown, label: string): string {
  if (typeof value !== 'string') throw expected(label, 'a string', value);
  return value;
}

export function expectNonNegativeInteger(value: unknown, label: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw expected(label, 'a non-negative integer', value);
  }
  return value;
}

export function nonEmpty(text: string, label: string): string {
  if (text === '') throw new ConfigError(`${label}: expected a non-empty value`);
  return text;
}

export function parseLogLevel(value: unknown, label: string): LogLevel {
  const level = value === 'none' ? 'silent' : value;
  const known: readonly string[] = logLevels;
  if (typeof level !== 'string' || !known.includes(level)) {
    throw expected(label, `one of ${logLevels.join(', ')}`, value);
  }
  return level as LogLevel;
}

const durationUnitsMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's duration syntax as Centrifugo configs use it ("300s", "1h30m", "500ms", "0"); milliseconds, or undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    part.lastIndex = index;
    const match = part.exec(text);
    if (!match) return undefined;
    total += Number(match[1]) * durationUnitsMs[match[2]];
    index = part.lastIndex;
  }
  return index === 0 ? undefined : total;
}

/**
 * A length of time in seconds: a number of seconds, or a duration string.
 * `wholeSeconds` rejects fractions, as Centrifugo does for history_ttl (history expiry has second precision).
 */
export function parseSeconds(value: unknown, label: string, opts: { wholeSeconds?: boolean } = {}): number {
  const what = opts.wholeSeconds
    ? 'a whole number of seconds or a duration like "300s", "5m", "1h30m"'
    : 'a number of seconds or a duration like "25s", "500ms", "1m"';
  let seconds: number | undefined;
  if (typeof value === 'number') seconds = value;
  else if (typeof value === 'string') {
    const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : parseDurationMs(value);
    seconds = ms === undefined ? undefined : ms / 1000;
  }
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) throw expected(label, what, value);
  if (opts.wholeSeconds && !Number.isInteger(seconds)) throw expected(label, what, value);
  return seconds;
}

/** Comma-separated Redis URLs (several = client-side shards). */
/**
 * `--redis`: the shard URLs the engine connects to (`redis://`, `rediss://`, `redis+sentinel://…`), or one
 * `redis+cluster://` address. Errors quote the address without its passwords.
 */
export function parseRedisUrls(text: string, label: string): string[] {
  let address: RedisAddress;
  try {
    address = parseRedisAddress(text);
  } catch (err) {
    if (err instanceof RedisAddressError) throw new ConfigError(`${label}: ${err.message}`);
    throw err;
  }
  // A cluster is one address (its seeds); the engine parses it again and picks the cluster topology.
  if (address.kind === 'cluster') return [text.trim()];
  return address.shards.map((shard) => shard.url);
}

export type PublicKeyKind = 'rsa' | 'ec' | 'rsa-or-ec';

/**
 * A token verification key from PEM text or the path of a PEM file, checked and returned as SPKI PEM
 * (the form JWT libraries import), so PKCS#1 "RSA PUBLIC KEY" files work too. EC keys must be P-256 (ES256).
 */
export function loadPublicKey(value: string, label: string, kind: PublicKeyKind): string {
  let pem = value;
  if (!pem.includes('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8');
    } catch (err) {
      throw new ConfigError(`${label}: expected PEM text or the path of a PEM file; cannot read ${show(value)}: ${(err as Error).message}`);
    }
  } else if (!pem.includes('\n')) {
    // Environment variables often carry PEM with literal "\n" sequences.
    pem = pem.replace(/\\n/g, '\n');
  }
  if (pem.includes('PRIVATE KEY')) {
    throw new ConfigError(`${label}: this is a private key; give the public key (the gateway only verifies tokens)`);
  }
  let key;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(`${label}: not a valid PEM public key (${(err as Error).message})`);
  }
  const type = key.asymmetricKeyType;
  const rsaOk = kind !== 'ec' && type === 'rsa';
  const ecOk = kind !== 'rsa' && type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  if (!rsaOk && !ecOk) {
    const want = kind === 'rsa' ? 'an RSA public key' : kind === 'ec' ? 'an EC P-256 public key' : 'an RSA or EC P-256 public key';
    const got =
      type === 'ec'
        ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'an unknown curve'}`
        : type === 'rsa'
          ? 'an RSA key'
          : `a key of type ${type ?? 'unknown'}`;
    throw new ConfigError(`${label}: expected ${want}, got ${got}`);
  }
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A config file section: a mapping, or a ConfigError naming the file and the key. */
export function mapping(value: unknown, path: string, key: string): Mapping {
  if (!isMapping(value)) throw new ConfigError(`${path}: ${key}: expected a mapping of keys to values, got ${show(value)}`);
  return value;
}

/** A section left empty (`client:` with nothing under it in YAML) is null: the same as absent. */
export function optionalMapping(value: unknown, path: string, key: string): Mapping | undefined {
  return value == null ? undefined : mapping(value, path, key);
}

/** Adds the dotted path of every key of `section` not in `known` to `unknownKeys`. */
export function keepKnown(section: Mapping, prefix: string, known: readonly string[], unknownKeys: string[]): void {
  for (const key of Object.keys(section)) {
    if (!known.includes(key)) unknownKeys.push(prefix === '' ? key : `${prefix}.${key}`);
  }
}
