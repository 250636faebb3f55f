// Reads the config file (JSON or YAML, Centrifugo v6 key names) into settings, channel namespaces and the keys it did not know.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  defaultChannelConfig,
  defaultNamespaceOptions,
  parsePusherEdgeApps,
  PusherConfigError,
  type ChannelConfig,
  type NamespaceOptions,
  type PusherEdgeApp,
} from '@switchboard/gateway';
import type { Settings } from './config';
import { engineRedis } from './config-engine';
import {
  ConfigError,
  expectBoolean,
  expectNonNegativeInteger,
  expectString,
  keepKnown,
  loadPublicKey,
  type Mapping,
  mapping,
  optionalMapping,
  parseLogLevel,
  parsePort,
  parseSeconds,
  show,
} from './values';

/** The settings a file may hold, under the same names as flags and environment produce. */
export type FileSettings = Partial<
  Pick<
    Settings,
    'host' | 'port' | 'internalPort' | 'insecure' | 'tokenHmacSecret' | 'tokenPublicKeys' | 'apiKey' | 'logLevel' | 'redis' | 'admin' | 'adminPassword' | 'adminSecret'
  >
>;

export interface FileConfig {
  settings: FileSettings;
  channels: ChannelConfig;
  /** Whether the file gave the default namespace a history_size (dev mode adds history only when it did not). */
  defaultHistorySet: boolean;
  /** Dotted paths of keys Switchboard does not know, e.g. `client.allowed_origins`. */
  unknownKeys: string[];
  /** `pusher.apps`: empty when the file has none. */
  pusherApps: PusherEdgeApp[];
}

const namespaceNamePattern = /^[-a-zA-Z0-9_.]+$/;

/** Reads and checks the file; throws ConfigError naming the file and the key. */
export function readConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseConfigFile(text, path);
}

/** Parses file contents; `path` decides the format (.json is JSON, anything else YAML) and prefixes every message. */
export function parseConfigFile(text: string, path: string): FileConfig {
  const document = parseDocument(text, path);
  const root = mapping(document ?? {}, path, 'the top level');
  const at = (key: string): string => `${path}: ${key}`;
  const unknownKeys: string[] = [];
  const settings: FileSettings = {};

  keepKnown(root, '', ['admin', 'client', 'channel', 'engine', 'http_api', 'http_server', 'log', 'pusher'], unknownKeys);

  const redis = engineRedis(root.engine, path, unknownKeys);
  if (redis !== undefined) settings.redis = redis;

  const client = optionalMapping(root.client, path, 'client');
  if (client) {
    keepKnown(client, 'client', ['insecure', 'token'], unknownKeys);
    if (client.insecure != null) settings.insecure = expectBoolean(client.insecure, at('client.insecure'));
    const token = optionalMapping(client.token, path, 'client.token');
    if (token) {
      keepKnown(token, 'client.token', ['hmac_secret_key', 'rsa_public_key', 'ecdsa_public_key'], unknownKeys);
      // An empty string means "not set", as in Centrifugo.
      const secret = optionalString(token.hmac_secret_key, at('client.token.hmac_secret_key'));
      if (secret) settings.tokenHmacSecret = secret;
      const keys: string[] = [];
      const rsa = optionalString(token.rsa_public_key, at('client.token.rsa_public_key'));
      if (rsa) keys.push(loadPublicKey(rsa, at('client.token.rsa_public_key'), 'rsa'));
      const ecdsa = optionalString(token.ecdsa_public_key, at('client.token.ecdsa_public_key'));
      if (ecdsa) keys.push(loadPublicKey(ecdsa, at('client.token.ecdsa_public_key'), 'ec'));
      if (keys.length > 0) settings.tokenPublicKeys = keys;
    }
  }

  const httpApi = optionalMapping(root.http_api, path, 'http_api');
  if (httpApi) {
    keepKnown(httpApi, 'http_api', ['key'], unknownKeys);
    const key = optionalString(httpApi.key, at('http_api.key'));
    if (key) settings.apiKey = key;
  }

  const httpServer = optionalMapping(root.http_server, path, 'http_server');
  if (httpServer) {
    keepKnown(httpServer, 'http_server', ['address', 'port', 'internal_port'], unknownKeys);
    const address = optionalString(httpServer.address, at('http_server.address'));
    if (address) settings.host = address;
    if (httpServer.port != null) settings.port = parsePort(httpServer.port, at('http_server.port'));
    if (httpServer.internal_port != null) settings.internalPort = parsePort(httpServer.internal_port, at('http_server.internal_port'));
  }

  // Centrifugo v6's admin section; its other keys (insecure, handler_prefix, web_path, ...) are named as unknown.
  const admin = optionalMapping(root.admin, path, 'admin');
  if (admin) {
    keepKnown(admin, 'admin', ['enabled', 'password', 'secret'], unknownKeys);
    if (admin.enabled != null) settings.admin = expectBoolean(admin.enabled, at('admin.enabled'));
    const password = optionalString(admin.password, at('admin.password'));
    if (password) settings.adminPassword = password;
    const secret = optionalString(admin.secret, at('admin.secret'));
    if (secret) settings.adminSecret = secret;
  }

  const log = optionalMapping(root.log, path, 'log');
  if (log) {
    keepKnown(log, 'log', ['level'], unknownKeys);
    if (log.level != null) settings.logLevel = parseLogLevel(log.level, at('log.level'));
  }

  const channels = defaultChannelConfig();
  let defaultHistorySet = false;
  const channel = optionalMapping(root.channel, path, 'channel');
  if (channel) {
    keepKnown(channel, 'channel', ['without_namespace', 'namespaces'], unknownKeys);
    const withoutNamespace = optionalMapping(channel.without_namespace, path, 'channel.without_namespace');
    if (withoutNamespace) {
      channels.without_namespace = namespaceOptions(withoutNamespace, path, 'channel.without_namespace', unknownKeys);
      defaultHistorySet = withoutNamespace.history_size != null;
    }
    if (channel.namespaces != null) {
      if (!Array.isArray(channel.namespaces)) throw new ConfigError(`${at('channel.namespaces')}: expected a list of namespaces, got ${show(channel.namespaces)}`);
      channel.namespaces.forEach((entry: unknown, index) => {
        const key = `channel.namespaces[${index}]`;
        const namespace = mapping(entry, path, key);
        const name = namespace.name;
        // "__proto__" fits the pattern but would replace the prototype of the namespace map instead of adding an entry.
        if (typeof name !== 'string' || !namespaceNamePattern.test(name) || name === '__proto__') {
          throw new ConfigError(`${at(`${key}.name`)}: expected a namespace name of letters, digits, "-", "_" and ".", got ${show(name)}`);
        }
        if (Object.prototype.hasOwnProperty.call(channels.namespaces, name)) {
          throw new ConfigError(`${at(`${key}.name`)}: namespace ${show(name)} is defined twice`);
        }
        const { name: _name, ...options } = namespace;
        channels.namespaces[name] = namespaceOptions(options, path, key, unknownKeys);
      });
    }
  }

  const pusherApps: PusherEdgeApp[] = [];
  const pusher = optionalMapping(root.pusher, path, 'pusher');
  if (pusher) {
    keepKnown(pusher, 'pusher', ['apps'], unknownKeys);
    try {
      const parsed = parsePusherEdgeApps(pusher.apps);
      pusherApps.push(...parsed.apps);
      unknownKeys.push(...parsed.unknownKeys);
    } catch (err) {
      if (err instanceof PusherConfigError) throw new ConfigError(`${path}: ${err.message}`);
      throw err;
    }
    pusherApps.forEach(({ namespace }, i) => {
      if (namespace !== undefined && !Object.prototype.hasOwnProperty.call(channels.namespaces, namespace)) {
        throw new ConfigError(`${at(`pusher.apps[${i}].namespace`)}: no namespace ${show(namespace)} in channel.namespaces; define it there first`);
      }
    });
  }

  return { settings, channels, defaultHistorySet, unknownKeys, pusherApps };
}

function parseDocument(text: string, path: string): unknown {
  if (extname(path).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ConfigError(`${path}: invalid JSON: ${(err as Error).message}`);
    }
  }
  try {
    return parseYaml(text, { logLevel: 'error' }) as unknown;
  } catch (err) {
    // The YAML parser appends a multi-line code excerpt; its first line says what and where.
    const firstLine = (err as Error).message.split('\n')[0].replace(/:$/, '');
    throw new ConfigError(`${path}: invalid YAML: ${firstLine}`);
  }
}

function optionalString(value: unknown, label: string): string | undefined {
  return value == null ? undefined : expectString(value, label);
}

type BooleanOption = { [K in keyof NamespaceOptions]: NamespaceOptions[K] extends boolean ? K : never }[keyof NamespaceOptions];
type NumberOption = { [K in keyof NamespaceOptions]: NamespaceOptions[K] extends number ? K : never }[keyof NamespaceOptions];

function isOption(key: string): key is keyof NamespaceOptions {
  return Object.prototype.hasOwnProperty.call(defaultNamespaceOptions, key);
}

function isBooleanOption(key: keyof NamespaceOptions): key is BooleanOption {
  return typeof defaultNamespaceOptions[key] === 'boolean';
}

/** Centrifugo's `allowed_delta_types`: a list whose only possible entry is "fossil". */
function deltaTypes(value: unknown, label: string): string[] {
  if (!Array.isArray(value)) throw new ConfigError(`${label} must be a list, e.g. ["fossil"]`);
  for (const t of value) {
    if (t !== 'fossil') throw new ConfigError(`${label}: unknown delta type ${JSON.stringify(t)}; the only one is "fossil"`);
  }
  return [...new Set(value as string[])];
}

/** One namespace's options over the defaults; the option names are those of NamespaceOptions (Centrifugo's). */
function namespaceOptions(section: Mapping, path: string, key: string, unknownKeys: string[]): NamespaceOptions {
  const options: NamespaceOptions = { ...defaultNamespaceOptions };
  for (const [name, value] of Object.entries(section)) {
    if (!isOption(name)) {
      unknownKeys.push(`${key}.${name}`);
      continue;
    }
    if (value == null) continue;
    const label = `${path}: ${key}.${name}`;
    if (isBooleanOption(name)) options[name] = expectBoolean(value, label);
    else if (name === 'allowed_delta_types') options.allowed_delta_types = deltaTypes(value, label);
    else if (name === 'history_ttl') options.history_ttl = parseSeconds(value, label, { wholeSeconds: true });
    else options[name as NumberOption] = expectNonNegativeInteger(value, label);
  }
  // The same pairing rules as Centrifugo: history needs both a size and a lifetime, recovery needs history.
  const where = `${path}: ${key}`;
  if (options.history_size > 0 && options.history_ttl === 0) {
    throw new ConfigError(`${where}: history_size ${options.history_size} needs a history_ttl above 0 (e.g. "300s")`);
  }
  if (options.history_size === 0 && options.history_ttl > 0) {
    throw new ConfigError(`${where}: history_ttl needs a history_size above 0`);
  }
  if (options.force_recovery && options.history_size === 0) {
    throw new ConfigError(`${where}: force_recovery needs history (history_size and history_ttl)`);
  }
  return options;
}
