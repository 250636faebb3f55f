// Turns command-line flags, SWITCHBOARD_* environment variables and the config file into one checked configuration.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  combinePusherApps,
  defaultChannelConfig,
  defaultLimits,
  defaultNamespaceOptions,
  parsePusherEdgeAppFlag,
  PusherConfigError,
  type AdminOptions,
  type AuthOptions,
  type ChannelConfig,
  type GatewayLimits,
  type NamespaceOptions,
  type PusherEdgeApp,
} from '@switchboard/gateway';
import { readConfigFile } from './config-file';
import {
  ConfigError,
  type LogLevel,
  loadPublicKey,
  nonEmpty,
  parseBooleanText,
  parseLogLevel,
  parsePort,
  parseRedisUrls,
  parseSeconds,
} from './values';

export { ConfigError, type LogLevel } from './values';

export const roles = ['standalone', 'gateway', 'worker'] as const;
export type Role = (typeof roles)[number];

/** Everything a flag or an environment variable can set, after parsing; `undefined` = not set and no default. */
export interface Settings {
  port: number;
  internalPort: number | undefined;
  host: string;
  /** Redis URLs; several are client-side shards. Empty: the memory engine. */
  redis: string[];
  tokenHmacSecret: string | undefined;
  /** SPKI PEM keys for RS256 / ES256 tokens. */
  tokenPublicKeys: string[];
  apiKey: string | undefined;
  insecure: boolean;
  config: string | undefined;
  logLevel: LogLevel;
  allowUwsFallback: boolean;
  dev: boolean;
  nodeName: string | undefined;
  shutdownGraceSeconds: number;
  positionCheckSeconds: number;
  presenceTtlSeconds: number;
  docPartitions: number;
  docLeaseSeconds: number;
  docWaitReplicas: number;
  maxConnections: number;
  maxChannelsPerConnection: number;
  maxMessageSize: number;
  commandsPerSecond: number;
  maxBackpressure: number;
  /** `--pusher-app ID:KEY:SECRET`: one Pusher app with default limits. */
  pusherApp: PusherEdgeApp | undefined;
  /** The operator's console at /console (Centrifugo's admin.enabled); needs both the password and the secret. */
  admin: boolean;
  adminPassword: string | undefined;
  /** HS256 secret of the console's session tokens. */
  adminSecret: string | undefined;
}

/** The configuration a role runs with. */
export interface Config {
  role: Role;
  host: string;
  port: number;
  /** Second listener for the server API, metrics and health, with HTTP/1.1 pipelining (gateway roles). */
  internalPort?: number;
  /** Empty: the memory engine. */
  redis: string[];
  auth: AuthOptions;
  /** Without one the HTTP API is disabled. */
  apiKey?: string;
  channels: ChannelConfig;
  logLevel: LogLevel;
  allowUwsFallback: boolean;
  nodeName?: string;
  shutdownGraceMs: number;
  positionCheckIntervalMs: number;
  presenceTtlMs: number;
  /** Document request partitions; gateways and workers must agree. */
  docPartitions: number;
  /** How long a worker's partition lease lasts unless renewed. */
  docLeaseMs: number;
  /** Worker: replicas that must have a document commit before it is acknowledged. */
  docWaitReplicas: number;
  limits: Partial<GatewayLimits>;
  /** The config file read, if any. */
  configFile?: string;
  /** Pusher apps (config file and --pusher-app); empty: the Pusher edge is off. */
  pusherApps: PusherEdgeApp[];
  /** Dev mode (standalone or gateway): the demo page, its token endpoint when a token secret is set, open namespaces. */
  dev: boolean;
  /** The console at /console; undefined: off. */
  admin?: AdminOptions;
}

export type LoadResult =
  | { action: 'help'; text: string }
  | { action: 'version'; text: string }
  /** `warnings` are for stderr, one line each; the process carries on. */
  | { action: 'run'; config: Config; warnings: string[] };

const defaults: Settings = {
  port: 8000,
  internalPort: undefined,
  host: '0.0.0.0',
  redis: [],
  tokenHmacSecret: undefined,
  tokenPublicKeys: [],
  apiKey: undefined,
  insecure: false,
  config: undefined,
  logLevel: 'info',
  allowUwsFallback: false,
  dev: false,
  nodeName: undefined,
  shutdownGraceSeconds: 25,
  positionCheckSeconds: 10,
  presenceTtlSeconds: 60,
  docPartitions: 16,
  docLeaseSeconds: 10,
  docWaitReplicas: 0,
  maxConnections: defaultLimits.maxConnections,
  maxChannelsPerConnection: defaultLimits.maxChannelsPerConnection,
  maxMessageSize: defaultLimits.maxMessageSize,
  commandsPerSecond: defaultLimits.commandsPerSecond,
  maxBackpressure: defaultLimits.maxBackpressure,
  pusherApp: undefined,
  admin: false,
  adminPassword: undefined,
  adminSecret: undefined,
};

interface SettingSpec<T> {
  flag: string;
  env: string;
  /** Placeholder shown in --help; absent for boolean switches, which take no separate value. */
  value?: string;
  help: string;
  parse(text: string, label: string): T;
}

type SettingSpecs = { [K in keyof Settings]: SettingSpec<Exclude<Settings[K], undefined>> };

const booleanSwitch = (text: string, label: string): boolean => parseBooleanText(text, label);

/** One row per setting: its flag, its variable, and how its text becomes a value. --help is printed from this table. */
const specs: SettingSpecs = {
  port: { flag: '--port', env: 'SWITCHBOARD_PORT', value: '<port>', help: 'port to listen on (default 8000)', parse: parsePort },
  internalPort: {
    flag: '--internal-port',
    env: 'SWITCHBOARD_INTERNAL_PORT',
    value: '<port>',
    help: 'second port for the server API, /metrics and health, with HTTP/1.1 pipelining (default: none)',
    parse: parsePort,
  },
  host: { flag: '--host', env: 'SWITCHBOARD_HOST', value: '<address>', help: 'address to listen on (default 0.0.0.0)', parse: nonEmpty },
  redis: {
    flag: '--redis',
    env: 'SWITCHBOARD_REDIS_URL',
    value: '<urls>',
    help: 'redis:// URLs, comma-separated for shards (required by gateway; standalone uses memory)',
    parse: parseRedisUrls,
  },
  tokenHmacSecret: {
    flag: '--token-hmac-secret',
    env: 'SWITCHBOARD_TOKEN_HMAC_SECRET',
    value: '<secret>',
    help: 'HS256 secret for connection and subscription tokens',
    parse: nonEmpty,
  },
  tokenPublicKeys: {
    flag: '--token-public-key',
    env: 'SWITCHBOARD_TOKEN_PUBLIC_KEY',
    value: '<pem|path>',
    help: 'RSA or EC P-256 public key (PEM text or file) for RS256/ES256 tokens',
    parse: (text, label) => [loadPublicKey(nonEmpty(text, label), label, 'rsa-or-ec')],
  },
  apiKey: { flag: '--api-key', env: 'SWITCHBOARD_API_KEY', value: '<key>', help: 'server HTTP API key (no key: API disabled)', parse: nonEmpty },
  insecure: {
    flag: '--insecure',
    env: 'SWITCHBOARD_INSECURE',
    help: 'clients connect without tokens and pass every permission check (development only)',
    parse: booleanSwitch,
  },
  config: { flag: '--config', env: 'SWITCHBOARD_CONFIG', value: '<file>', help: 'JSON or YAML config file (Centrifugo v6 key names)', parse: nonEmpty },
  logLevel: {
    flag: '--log-level',
    env: 'SWITCHBOARD_LOG_LEVEL',
    value: '<level>',
    help: 'trace, debug, info, warn, error, fatal or silent (default info)',
    parse: parseLogLevel,
  },
  allowUwsFallback: {
    flag: '--allow-uws-fallback',
    env: 'SWITCHBOARD_ALLOW_UWS_FALLBACK',
    help: "run on uWebSockets.js's slow pure-JS fallback when the native binary does not load",
    parse: booleanSwitch,
  },
  dev: {
    flag: '--dev',
    env: 'SWITCHBOARD_DEV',
    help:
      'standalone or gateway: the demo page at /, namespaces chat and doc for it, clients may publish and read history and ' +
      'presence; insecure unless a token secret is set (then the page gets short-lived tokens from /demo/token)',
    parse: booleanSwitch,
  },
  nodeName: { flag: '--node-name', env: 'SWITCHBOARD_NODE_NAME', value: '<name>', help: 'name of this node in logs and connect results', parse: nonEmpty },
  shutdownGraceSeconds: {
    flag: '--shutdown-grace',
    env: 'SWITCHBOARD_SHUTDOWN_GRACE',
    value: '<seconds>',
    help: 'seconds (or a duration like 10s) to drain clients on SIGTERM before exiting anyway (default 25)',
    parse: positiveSeconds,
  },
  positionCheckSeconds: {
    flag: '--position-check-interval',
    env: 'SWITCHBOARD_POSITION_CHECK_INTERVAL',
    value: '<seconds>',
    help: 'how often a gateway compares each channel\'s stream top with what pub/sub delivered (default 10)',
    parse: positiveSeconds,
  },
  presenceTtlSeconds: {
    flag: '--presence-ttl',
    env: 'SWITCHBOARD_PRESENCE_TTL',
    value: '<seconds>',
    help: 'presence entries of a gateway that died disappear after this long; refreshed every third of it (default 60)',
    parse: positiveSeconds,
  },
  docPartitions: {
    flag: '--doc-partitions',
    env: 'SWITCHBOARD_DOC_PARTITIONS',
    value: '<n>',
    help: 'document request partitions; every gateway and worker must use the same number (default 16)',
    parse: parsePartitions,
  },
  docLeaseSeconds: {
    flag: '--doc-lease',
    env: 'SWITCHBOARD_DOC_LEASE',
    value: '<seconds>',
    help: "worker only: a dead worker's partitions are taken over after this long (default 10)",
    parse: positiveSeconds,
  },
  docWaitReplicas: {
    flag: '--doc-wait-replicas',
    env: 'SWITCHBOARD_DOC_WAIT_REPLICAS',
    value: '<n>',
    help: 'worker only: acknowledge a document update once this many Redis replicas have it (WAIT, 1 s), so a failover cannot lose it (default 0)',
    parse: (text, label) => wholeNumber(text, label, 0),
  },
  maxConnections: {
    flag: '--max-connections',
    env: 'SWITCHBOARD_MAX_CONNECTIONS',
    value: '<n>',
    help: 'connections this gateway accepts at once; more are closed with 3504 (default 0: no limit)',
    parse: (text, label) => wholeNumber(text, label, 0),
  },
  maxChannelsPerConnection: {
    flag: '--max-channels-per-connection',
    env: 'SWITCHBOARD_MAX_CHANNELS_PER_CONNECTION',
    value: '<n>',
    help: `subscriptions one connection may hold; more are refused with 106 (default ${defaultLimits.maxChannelsPerConnection})`,
    parse: (text, label) => wholeNumber(text, label, 1),
  },
  maxMessageSize: {
    flag: '--max-message-size',
    env: 'SWITCHBOARD_MAX_MESSAGE_SIZE',
    value: '<bytes>',
    help: `largest frame a client may send, and publication data size; larger frames close with 1009 (default ${defaultLimits.maxMessageSize})`,
    parse: (text, label) => wholeNumber(text, label, 1024),
  },
  commandsPerSecond: {
    flag: '--commands-per-second',
    env: 'SWITCHBOARD_COMMANDS_PER_SECOND',
    value: '<n>',
    help: `sustained commands per connection, burst twice that; over it 111, far over it close 3013 (default ${defaultLimits.commandsPerSecond})`,
    parse: (text, label) => wholeNumber(text, label, 1),
  },
  maxBackpressure: {
    flag: '--max-backpressure',
    env: 'SWITCHBOARD_MAX_BACKPRESSURE',
    value: '<bytes>',
    help: `bytes queued for a client that does not read before it is closed with 3008 (default ${defaultLimits.maxBackpressure})`,
    parse: (text, label) => wholeNumber(text, label, 1024),
  },
  pusherApp: {
    flag: '--pusher-app',
    env: 'SWITCHBOARD_PUSHER_APP',
    value: '<id:key:secret>',
    help: 'serve one Pusher app on /app/<key> and /apps/<id> (more apps, limits, namespaces: config file pusher.apps)',
    parse: (text, label) => {
      try {
        return parsePusherEdgeAppFlag(text, label);
      } catch (err) {
        if (err instanceof PusherConfigError) throw new ConfigError(err.message);
        throw err;
      }
    },
  },
  admin: {
    flag: '--admin',
    env: 'SWITCHBOARD_ADMIN',
    help: 'serve the operator console at /console (needs --admin-password and --admin-secret)',
    parse: booleanSwitch,
  },
  adminPassword: {
    flag: '--admin-password',
    env: 'SWITCHBOARD_ADMIN_PASSWORD',
    value: '<password>',
    help: 'password of the console login',
    parse: nonEmpty,
  },
  adminSecret: {
    flag: '--admin-secret',
    env: 'SWITCHBOARD_ADMIN_SECRET',
    value: '<secret>',
    help: "HS256 secret of the console's session tokens (not the token secret of clients)",
    parse: nonEmpty,
  },
};

function wholeNumber(text: string, label: string, min: number): number {
  const n = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(`${label}: expected a whole number of at least ${min}, got ${JSON.stringify(text)}`);
  }
  return n;
}

function parsePartitions(text: string, label: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1 || n > 4096) {
    throw new ConfigError(`${label}: expected a whole number from 1 to 4096, got ${JSON.stringify(text)}`);
  }
  return n;
}

function positiveSeconds(text: string, label: string): number {
  const seconds = parseSeconds(text, label);
  if (seconds === 0) throw new ConfigError(`${label}: expected more than 0 seconds, got ${JSON.stringify(text)}`);
  return seconds;
}

const settingKeys = Object.keys(specs) as (keyof Settings)[];

/** Parses and assigns one setting; generic so that each key gets its own value type. */
function assign<K extends keyof Settings>(into: Partial<Settings>, key: K, text: string, label: string): void {
  into[key] = specs[key].parse(text, label);
}

/**
 * Reads flags (`--port 8000` or `--port=8000`), then the environment, then the config file, and checks the result.
 * Flags override environment variables, which override the file. Throws ConfigError on any bad input.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): LoadResult {
  if (argv.includes('--help') || argv.includes('-h')) return { action: 'help', text: usage() };
  if (argv.includes('--version')) return { action: 'version', text: `switchboard ${version()}\n` };

  const { role, flags } = parseArgs(argv);
  const fromEnv = parseEnv(env);
  const configPath = flags.config ?? fromEnv.config;
  const file = configPath === undefined ? undefined : readConfigFile(configPath);
  const settings: Settings = { ...defaults, ...file?.settings, ...fromEnv, ...flags };

  if (settings.dev && role === 'worker') {
    throw new ConfigError('--dev / SWITCHBOARD_DEV is for the standalone and gateway roles, not worker (it has no clients)');
  }
  if (role === 'worker' && settings.internalPort !== undefined) {
    throw new ConfigError('--internal-port / SWITCHBOARD_INTERNAL_PORT is for the gateway and standalone roles; the worker serves everything on --port');
  }
  if (role === 'gateway' && settings.redis.length === 0) {
    throw new ConfigError('the gateway role needs --redis or SWITCHBOARD_REDIS_URL (a gateway without Redis is standalone)');
  }
  if (role === 'worker' && settings.redis.length === 0) {
    throw new ConfigError('the worker role needs --redis or SWITCHBOARD_REDIS_URL (standalone has its documents built in)');
  }
  if (role === 'standalone' && settings.redis.length > 0) {
    throw new ConfigError('--redis / SWITCHBOARD_REDIS_URL: standalone runs the in-memory engine; run "switchboard gateway --redis ..." to use Redis');
  }

  const channels = file?.channels ?? defaultChannelConfig();
  const pusherApps = pusherAppsOf(file?.pusherApps ?? [], settings.pusherApp);
  if (settings.dev) applyDevMode(channels, file?.defaultHistorySet ?? false);
  // With a token key, dev mode keeps tokens required: the demo page gets them from the dev server.
  const hasTokenKey = settings.tokenHmacSecret !== undefined || settings.tokenPublicKeys.length > 0;
  const admin = role === 'worker' ? undefined : adminOf(settings);

  const config: Config = {
    role,
    host: settings.host,
    port: settings.port,
    internalPort: settings.internalPort,
    redis: settings.redis,
    auth: {
      hmacSecret: settings.tokenHmacSecret,
      publicKeys: settings.tokenPublicKeys,
      insecure: settings.insecure || (settings.dev && !hasTokenKey),
    },
    apiKey: settings.apiKey,
    channels,
    logLevel: settings.logLevel,
    allowUwsFallback: settings.allowUwsFallback,
    nodeName: settings.nodeName,
    shutdownGraceMs: Math.round(settings.shutdownGraceSeconds * 1000),
    positionCheckIntervalMs: Math.round(settings.positionCheckSeconds * 1000),
    presenceTtlMs: Math.round(settings.presenceTtlSeconds * 1000),
    docPartitions: settings.docPartitions,
    docLeaseMs: Math.round(settings.docLeaseSeconds * 1000),
    docWaitReplicas: settings.docWaitReplicas,
    limits: {
      maxConnections: settings.maxConnections,
      maxChannelsPerConnection: settings.maxChannelsPerConnection,
      maxMessageSize: settings.maxMessageSize,
      commandsPerSecond: settings.commandsPerSecond,
      commandBurst: settings.commandsPerSecond * 2,
      maxBackpressure: settings.maxBackpressure,
    },
    configFile: configPath,
    // The worker has no client port; an environment shared with gateways may still name apps.
    pusherApps: role === 'worker' ? [] : pusherApps,
    dev: settings.dev,
    admin,
  };

  const warnings: string[] = [];
  if (file && file.unknownKeys.length > 0) {
    warnings.push(`config file ${configPath}: ignoring keys Switchboard does not know: ${file.unknownKeys.join(', ')}`);
  }
  if (settings.dev && hasTokenKey) {
    warnings.push('dev mode: anyone may get a connection token from /demo/token, and clients may subscribe and publish; never use --dev in production');
  } else if (settings.dev) {
    warnings.push('dev mode: anonymous clients may connect, subscribe and publish; never use --dev in production');
  } else if (role !== 'worker' && !settings.insecure && !settings.tokenHmacSecret && settings.tokenPublicKeys.length === 0) {
    warnings.push(
      'no token secret or public key is set and insecure mode is off: no client can connect ' +
        '(set --token-hmac-secret or --token-public-key)',
    );
  }
  if (role !== 'worker' && !settings.admin && (settings.adminPassword !== undefined || settings.adminSecret !== undefined)) {
    warnings.push('the console is off although an admin password or secret is set: enable it with --admin (SWITCHBOARD_ADMIN, admin.enabled)');
  }
  return { action: 'run', config, warnings };
}

/** The console's settings when it is enabled; enabled without both its password and its secret is refused. */
function adminOf(settings: Settings): AdminOptions | undefined {
  if (!settings.admin) return undefined;
  const { adminPassword: password, adminSecret: secret } = settings;
  if (password === undefined || secret === undefined) {
    const missing = [password === undefined ? '--admin-password' : '', secret === undefined ? '--admin-secret' : ''].filter(Boolean).join(' and ');
    throw new ConfigError(
      `the console is enabled (--admin, SWITCHBOARD_ADMIN or admin.enabled) but ${missing} ${missing.includes(' and ') ? 'are' : 'is'} not set ` +
        '(SWITCHBOARD_ADMIN_PASSWORD, SWITCHBOARD_ADMIN_SECRET or admin.password, admin.secret)',
    );
  }
  // A console session token is an HS256 JWT: under the clients' secret it would also pass as a connection token.
  if (secret === settings.tokenHmacSecret) {
    throw new ConfigError('--admin-secret must differ from --token-hmac-secret: a console session token would otherwise be accepted as a client token');
  }
  return { password, secret };
}

/** The file's apps and the flag's one, an id or key given twice refused (it would make signatures ambiguous). */
function pusherAppsOf(fromFile: PusherEdgeApp[], fromFlag: PusherEdgeApp | undefined): PusherEdgeApp[] {
  const all = fromFlag === undefined ? fromFile : [...fromFile, fromFlag];
  try {
    combinePusherApps(all.map((a) => a.app), 'pusher apps (config file pusher.apps and --pusher-app)');
  } catch (err) {
    if (err instanceof PusherConfigError) throw new ConfigError(err.message);
    throw err;
  }
  return all;
}

function parseArgs(argv: readonly string[]): { role: Role; flags: Partial<Settings> } {
  const byFlag = new Map(settingKeys.map((key) => [specs[key].flag, key]));
  const flags: Partial<Settings> = {};
  let role: Role | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      if (role !== undefined) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}: give one role (${roles.join(', ')})`);
      role = parseRole(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = equals === -1 ? arg : arg.slice(0, equals);
    const key = byFlag.get(name);
    if (key === undefined) throw new ConfigError(`unknown flag ${name} (see switchboard --help)`);
    let text = equals === -1 ? undefined : arg.slice(equals + 1);
    if (text === undefined) {
      if (specs[key].value === undefined) text = 'true';
      else {
        text = argv[i + 1];
        // A following flag means the value was forgotten; PEM text ("-----BEGIN") is a value.
        if (text === undefined || /^--[a-z]/i.test(text)) throw new ConfigError(`${name} needs a value: ${name} ${specs[key].value}`);
        i++;
      }
    }
    assign(flags, key, text, name);
  }
  return { role: role ?? 'standalone', flags };
}

function parseRole(text: string): Role {
  const known: readonly string[] = roles;
  if (!known.includes(text)) throw new ConfigError(`unknown role ${JSON.stringify(text)}: expected ${roles.join(', ')}`);
  return text as Role;
}

/** An empty variable counts as unset, so `SWITCHBOARD_REDIS_URL=` in a compose file changes nothing. */
function parseEnv(env: NodeJS.ProcessEnv): Partial<Settings> {
  const settings: Partial<Settings> = {};
  for (const key of settingKeys) {
    const text = env[specs[key].env];
    if (text !== undefined && text !== '') assign(settings, key, text, specs[key].env);
  }
  return settings;
}

/**
 * The namespaces the demo page uses, added in dev mode when the config does not define them: a chat with
 * presence, join/leave and history for late joiners, and versioned documents for the task board.
 */
const devNamespaces: Record<string, Partial<NamespaceOptions>> = {
  chat: { presence: true, join_leave: true, history_size: 100, history_ttl: 300, force_recovery: true },
  doc: { documents: true, history_size: 100, history_ttl: 3600 },
};

/** What `npm start` needs for the demo: anonymous clients that can do everything, and history to recover from. */
function applyDevMode(channels: ChannelConfig, defaultHistorySet: boolean): void {
  for (const [name, options] of Object.entries(devNamespaces)) {
    if (!Object.prototype.hasOwnProperty.call(channels.namespaces, name)) channels.namespaces[name] = { ...defaultNamespaceOptions, ...options };
  }
  for (const options of [channels.without_namespace, ...Object.values(channels.namespaces)]) {
    options.allow_subscribe_for_client = true;
    options.allow_publish_for_client = true;
    options.allow_history_for_client = true;
    options.allow_presence_for_client = true;
  }
  if (!defaultHistorySet) {
    channels.without_namespace.history_size = 100;
    channels.without_namespace.history_ttl = 300;
  }
}

function version(): string {
  // package.json sits one level above both src/ (tests) and dist/ (the built CLI).
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const rows = settingKeys.map((key) => {
    const spec = specs[key];
    return [spec.value ? `${spec.flag} ${spec.value}` : spec.flag, spec.env, spec.help];
  });
  rows.push(['-h, --help', '', 'print this help'], ['--version', '', 'print the version']);
  const width = (column: number): number => Math.max(...rows.map((row) => row[column].length));
  const [flagWidth, envWidth] = [width(0), width(1)];
  const lines = rows.map(([flag, env, help]) => `  ${flag.padEnd(flagWidth)}  ${env.padEnd(envWidth)}  ${help}`.trimEnd());
  return [
    'Usage: switchboard [standalone|gateway|worker] [flags]',
    '',
    'Roles:',
    '  standalone  gateway with the in-memory engine; no Redis needed (the default)',
    '  gateway     stateless gateway on the Redis engine (needs --redis)',
    '  worker      versioning worker: commits document updates from Redis (needs --redis; --port serves /metrics, /healthz, /readyz)',
    '',
    'Flags and their environment variables (flags override the environment, which overrides the config file):',
    ...lines,
    '',
    'The config file (--config) holds channel namespaces under Centrifugo v6 key names: channel.without_namespace,',
    'channel.namespaces[], client.insecure, client.token.hmac_secret_key, client.token.rsa_public_key,',
    'client.token.ecdsa_public_key, http_api.key, http_server.address, http_server.port, http_server.internal_port, log.level,',
    'engine.type (memory or redis), engine.redis.address | cluster_address | sentinel_address (+ sentinel_master_name,',
    'sentinel_user, sentinel_password), engine.redis.user, password, db, tls.enabled, pusher.apps[] (id, key, secret,',
    'namespace, enabled, enable_client_messages, limits, webhooks), admin.enabled, admin.password, admin.secret (the console).',
    '',
  ].join('\n');
}
