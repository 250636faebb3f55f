// Pusher apps: credentials, limits and webhooks of each app, read from untrusted config, looked up by key or id.

/** Webhook event types an app may ask for (Pusher's names). */
export const WEBHOOK_EVENT_TYPES = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface PusherWebhook {
  /** Absolute http(s) URL the signed POST goes to. */
  readonly url: string;
  /** Which events this receiver gets; never empty. */
  readonly event_types: readonly WebhookEventType[];
  /** Extra request headers (soketi's `headers`), e.g. a token the receiver checks. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Limits of one app, named as in soketi's app config (snake_case). Counts that may be unlimited hold `Infinity`
 * when unlimited, so a check reads `count >= limit` with no special case.
 */
export interface PusherAppLimits {
  /** Concurrent connections of the app, cluster-wide. */
  readonly max_connections: number;
  /** Client events (`client-*`) one connection may send per second; over it: pusher:error 4301. */
  readonly max_client_events_per_second: number;
  /** Distinct users in one presence channel. */
  readonly max_presence_members_per_channel: number;
  /** Size of one member's `channel_data` (user id and user info), in KB. */
  readonly max_presence_member_size_in_kb: number;
  readonly max_channel_name_length: number;
  readonly max_event_name_length: number;
  /** Size of one event's `data`, in KB (client events and HTTP API events alike). */
  readonly max_event_payload_in_kb: number;
  /** Channels one HTTP API `events` request may name. */
  readonly max_event_channels_at_once: number;
  /** Events one HTTP API `batch_events` request may hold. */
  readonly max_event_batch_size: number;
}

export interface PusherApp {
  /** Path segment of the HTTP API (`/apps/{id}/...`). */
  readonly id: string;
  /** Path segment of the WebSocket endpoint (`/app/{key}`) and the public half of every signature. */
  readonly key: string;
  /** HMAC-SHA256 key of channel, user, HTTP API and webhook signatures. Never sent anywhere. */
  readonly secret: string;
  /** A disabled app refuses connections with 4003 and API requests with 403. */
  readonly enabled: boolean;
  /** Whether `client-*` events are relayed (on private and presence channels only). */
  readonly enable_client_messages: boolean;
  readonly limits: PusherAppLimits;
  readonly webhooks: readonly PusherWebhook[];
}

/**
 * Defaults from Pusher's documented limits (channel and event names ≤ 200 characters, event data ≤ 10 KB, ≤ 100
 * channels per event, ≤ 10 events per batch, presence: ≤ 100 members, ≤ 1 KB user object) and its client event
 * rate (10 per second per connection). Connections are not limited unless configured.
 */
export const DEFAULT_PUSHER_LIMITS: Readonly<PusherAppLimits> = Object.freeze({
  max_connections: Infinity,
  max_client_events_per_second: 10,
  max_presence_members_per_channel: 100,
  max_presence_member_size_in_kb: 1,
  max_channel_name_length: 200,
  max_event_name_length: 200,
  max_event_payload_in_kb: 10,
  max_event_channels_at_once: 100,
  max_event_batch_size: 10,
});

/** Ceilings a config may not exceed: beyond them the protocol's own bounds (and the frame size) stop meaning much. */
const LIMIT_CEILINGS: Readonly<Record<keyof PusherAppLimits, number>> = {
  max_connections: Number.MAX_SAFE_INTEGER,
  max_client_events_per_second: 1_000_000,
  max_presence_members_per_channel: 1_000_000,
  max_presence_member_size_in_kb: 1024,
  max_channel_name_length: 1000,
  max_event_name_length: 1000,
  max_event_payload_in_kb: 10 * 1024,
  max_event_channels_at_once: 1000,
  max_event_batch_size: 1000,
};

/** Limits that may be switched off with -1 (soketi's spelling) or null. */
const UNLIMITABLE: ReadonlySet<keyof PusherAppLimits> = new Set([
  'max_connections',
  'max_client_events_per_second',
  'max_presence_members_per_channel',
]);

/** Limits measured in KB may be fractional (soketi parses them as floats); the others are counts. */
const FRACTIONAL: ReadonlySet<keyof PusherAppLimits> = new Set(['max_presence_member_size_in_kb', 'max_event_payload_in_kb']);

/** soketi's camelCase spellings, accepted so that a soketi app list carries over unchanged. */
const ALIASES: Readonly<Record<string, string>> = {
  enableClientMessages: 'enable_client_messages',
  maxConnections: 'max_connections',
  maxClientEventsPerSecond: 'max_client_events_per_second',
  max_client_events_per_sec: 'max_client_events_per_second',
  maxPresenceMembersPerChannel: 'max_presence_members_per_channel',
  maxPresenceMemberSizeInKb: 'max_presence_member_size_in_kb',
  maxChannelNameLength: 'max_channel_name_length',
  maxEventNameLength: 'max_event_name_length',
  maxEventPayloadInKb: 'max_event_payload_in_kb',
  maxEventChannelsAtOnce: 'max_event_channels_at_once',
  maxEventBatchSize: 'max_event_batch_size',
};

const LIMIT_KEYS = Object.keys(DEFAULT_PUSHER_LIMITS) as (keyof PusherAppLimits)[];
const APP_KEYS: ReadonlySet<string> = new Set(['id', 'key', 'secret', 'enabled', 'enable_client_messages', 'webhooks', ...LIMIT_KEYS]);
const WEBHOOK_KEYS: ReadonlySet<string> = new Set(['url', 'event_types', 'headers']);

/** A config value that is wrong: the message names the key (`pusher.apps[0].key`) and what it should be. */
export class PusherConfigError extends Error {
  override readonly name = 'PusherConfigError';
}

export interface ParsedPusherApps {
  apps: PusherApp[];
  /** Keys nobody defines, by full path, for the one warning the config loader prints. */
  unknownKeys: string[];
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

function fail(path: string, expected: string, got: unknown): never {
  throw new PusherConfigError(`${path}: expected ${expected}, got ${describe(got)}`);
}

/** URL-unreserved characters: an id or key in a path needs no escaping, so the signed path is the path received. */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}

const MAX_ID_LENGTH = 200;

function identifier(v: unknown, path: string, allowNumber: boolean): string {
  // Pusher app ids are numbers, and YAML reads `id: 12345` as one.
  if (allowNumber && typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  const expected = `a non-empty string of at most ${MAX_ID_LENGTH} letters, digits, "-", "_", "." or "~"`;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH) fail(path, expected, v);
  for (let i = 0; i < v.length; i++) if (!isUnreserved(v.charCodeAt(i))) fail(path, expected, v);
  return v;
}

function secretOf(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'a string (quote it in YAML if it looks like a number)', v);
  if (v.length === 0) fail(path, 'a non-empty secret', v);
  if (!v.isWellFormed()) fail(path, 'well-formed Unicode', v);
  return v;
}

function bool(v: unknown, path: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') fail(path, 'true or false', v);
  return v;
}

function limit(name: keyof PusherAppLimits, v: unknown, path: string): number {
  if (v === undefined) return DEFAULT_PUSHER_LIMITS[name];
  const unlimitable = UNLIMITABLE.has(name);
  if (unlimitable && (v === null || v === -1)) return Infinity;
  const ceiling = LIMIT_CEILINGS[name];
  const kind = FRACTIONAL.has(name) ? 'a positive number' : name === 'max_connections' ? 'a non-negative integer' : 'a positive integer';
  const expected = `${kind} up to ${ceiling}${unlimitable ? ', or -1 for unlimited' : ''}`;
  if (typeof v !== 'number' || !Number.isFinite(v) || v > ceiling) fail(path, expected, v);
  if (!FRACTIONAL.has(name) && !Number.isInteger(v)) fail(path, expected, v);
  if (name === 'max_connections' ? v < 0 : v <= 0) fail(path, expected, v);
  return v;
}

function isTokenChar(c: number): boolean {
  // RFC 9110 token characters: a header name made of these cannot smuggle a second header.
  return c > 0x20 && c < 0x7f && '"(),/:;<=>?@[\\]{}'.indexOf(String.fromCharCode(c)) === -1;
}

function headers(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (v === undefined) return out;
  if (!isObject(v)) fail(path, 'a map of header names to strings', v);
  for (const [name, value] of Object.entries(v)) {
    const at = `${path}.${name}`;
    let tokenOk = name.length > 0 && name.length <= 256;
    for (let i = 0; tokenOk && i < name.length; i++) tokenOk = isTokenChar(name.charCodeAt(i));
    if (!tokenOk) fail(at, 'a header name made of letters, digits and !#$%&\'*+-.^_`|~', name);
    const lower = name.toLowerCase();
    if (lower === 'x-pusher-key' || lower === 'x-pusher-signature' || lower === 'content-type' || lower === 'content-length') {
      fail(at, 'a header the webhook sender does not set itself', name);
    }
    if (typeof value !== 'string') fail(at, 'a string', value);
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) fail(at, 'a header value without control characters', value);
    }
    out[name] = value;
  }
  return out;
}

function webhook(v: unknown, path: string, unknownKeys: string[]): PusherWebhook {
  if (!isObject(v)) fail(path, 'an object with "url" and "event_types"', v);
  for (const k of Object.keys(v)) if (!WEBHOOK_KEYS.has(k)) unknownKeys.push(`${path}.${k}`);
  const rawUrl = v.url;
  if (typeof rawUrl !== 'string') fail(`${path}.url`, 'an http:// or https:// URL', rawUrl);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    fail(`${path}.url`, 'an http:// or https:// URL', rawUrl);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${path}.url`, 'an http:// or https:// URL', rawUrl);
  const types = v.event_types;
  const expectedTypes = `a non-empty list of ${WEBHOOK_EVENT_TYPES.join(', ')}`;
  if (!Array.isArray(types) || types.length === 0) fail(`${path}.event_types`, expectedTypes, types);
  const eventTypes: WebhookEventType[] = [];
  types.forEach((t: unknown, i: number) => {
    if (typeof t !== 'string' || !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t)) fail(`${path}.event_types[${i}]`, `one of ${WEBHOOK_EVENT_TYPES.join(', ')}`, t);
    if (!eventTypes.includes(t as WebhookEventType)) eventTypes.push(t as WebhookEventType);
  });
  return Object.freeze({ url: url.href, event_types: Object.freeze(eventTypes), headers: Object.freeze(headers(v.headers, `${path}.headers`)) });
}

/** Copies soketi's camelCase keys to their snake_case names; both spellings at once is ambiguous and refused. */
function canonicalKeys(raw: Obj, path: string): Obj {
  const out: Obj = {};
  const spelledAs = new Map<string, string>();
  for (const [k, value] of Object.entries(raw)) {
    const name = Object.prototype.hasOwnProperty.call(ALIASES, k) ? ALIASES[k] : k;
    const earlier = spelledAs.get(name);
    if (earlier !== undefined) throw new PusherConfigError(`${path}: "${earlier}" and "${k}" name the same setting; keep one`);
    spelledAs.set(name, k);
    out[name] = value;
  }
  return out;
}

function app(raw: unknown, path: string, unknownKeys: string[]): PusherApp {
  if (!isObject(raw)) fail(path, 'an object with "id", "key" and "secret"', raw);
  const v = canonicalKeys(raw, path);
  for (const k of Object.keys(v)) if (!APP_KEYS.has(k)) unknownKeys.push(`${path}.${k}`);
  const limits = {} as Record<keyof PusherAppLimits, number>;
  for (const name of LIMIT_KEYS) limits[name] = limit(name, v[name], `${path}.${name}`);
  const hooks = v.webhooks;
  if (hooks !== undefined && !Array.isArray(hooks)) fail(`${path}.webhooks`, 'a list of { url, event_types }', hooks);
  return Object.freeze({
    id: identifier(v.id, `${path}.id`, true),
    key: identifier(v.key, `${path}.key`, false),
    secret: secretOf(v.secret, `${path}.secret`),
    enabled: bool(v.enabled, `${path}.enabled`, true),
    // On by default: Laravel Echo's whisper needs them, and they only ever reach channels the app's backend
    // authorized (private and presence).
    enable_client_messages: bool(v.enable_client_messages, `${path}.enable_client_messages`, true),
    limits: Object.freeze(limits),
    webhooks: Object.freeze((hooks ?? []).map((h: unknown, i: number) => webhook(h, `${path}.webhooks[${i}]`, unknownKeys))),
  });
}

/** Refuses two apps with one id or one key: a lookup must find exactly one app, and signatures one secret. */
function refuseDuplicates(apps: readonly PusherApp[], path: string): void {
  const ids = new Map<string, number>();
  const keys = new Map<string, number>();
  apps.forEach((a, i) => {
    const sameId = ids.get(a.id);
    if (sameId !== undefined) throw new PusherConfigError(`${path}[${i}].id: "${a.id}" is already the id of ${path}[${sameId}]`);
    const sameKey = keys.get(a.key);
    if (sameKey !== undefined) throw new PusherConfigError(`${path}[${i}].key: "${a.key}" is already the key of ${path}[${sameKey}]`);
    ids.set(a.id, i);
    keys.set(a.key, i);
  });
}

/**
 * Turns the `pusher.apps` value of a config file (parsed YAML or JSON, so untrusted) into apps. Throws
 * PusherConfigError naming the first wrong key; keys nobody defines are returned for a warning.
 */
export function parsePusherApps(value: unknown, path = 'pusher.apps'): ParsedPusherApps {
  if (value === undefined || value === null) return { apps: [], unknownKeys: [] };
  if (!Array.isArray(value)) fail(path, 'a list of apps', value);
  const unknownKeys: string[] = [];
  const apps = value.map((raw: unknown, i: number) => app(raw, `${path}[${i}]`, unknownKeys));
  refuseDuplicates(apps, path);
  return { apps, unknownKeys };
}

/**
 * One app from `--pusher-app ID:KEY:SECRET` or SWITCHBOARD_PUSHER_APP, with default limits and no webhooks. The
 * secret is everything after the second ':' (it may hold ':' itself).
 */
export function parsePusherAppFlag(value: string, source = '--pusher-app'): PusherApp {
  const first = value.indexOf(':');
  const second = first === -1 ? -1 : value.indexOf(':', first + 1);
  if (second === -1) throw new PusherConfigError(`${source}: expected ID:KEY:SECRET, got ${describe(value)}`);
  return app({ id: value.slice(0, first), key: value.slice(first + 1, second), secret: value.slice(second + 1) }, source, []);
}

/** Joins apps from several sources (config file, flag) and refuses the same id or key twice. */
export function combinePusherApps(apps: readonly PusherApp[], path = 'pusher apps'): PusherApp[] {
  refuseDuplicates(apps, path);
  return [...apps];
}

/** Apps by key (WebSocket endpoint, auth strings) and by id (HTTP API). Empty registry = the Pusher edge is off. */
export interface PusherAppRegistry {
  readonly size: number;
  byKey(key: string): PusherApp | undefined;
  byId(id: string): PusherApp | undefined;
  all(): readonly PusherApp[];
}

export function pusherAppRegistry(apps: readonly PusherApp[]): PusherAppRegistry {
  refuseDuplicates(apps, 'pusher apps');
  const list = Object.freeze([...apps]);
  // Maps, not objects: a key such as "__proto__" or "constructor" from a URL must find nothing.
  const keys = new Map(list.map((a) => [a.key, a] as const));
  const ids = new Map(list.map((a) => [a.id, a] as const));
  return {
    size: list.length,
    byKey: (key) => keys.get(key),
    byId: (id) => ids.get(id),
    all: () => list,
  };
}
