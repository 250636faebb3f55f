import {
  combinePusherApps,
  DEFAULT_PUSHER_LIMITS,
  parsePusherAppFlag,
  parsePusherApps,
  pusherAppRegistry,
  PusherConfigError,
  type PusherApp,
} from './apps';

const minimal = { id: 'app-1', key: 'key-1', secret: 's3cret' };

function parseOne(raw: Record<string, unknown>): PusherApp {
  return parsePusherApps([raw]).apps[0];
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PusherConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a PusherConfigError');
}

describe('parsePusherApps', () => {
  it('fills in Pusher defaults, enables the app and client events, no webhooks', () => {
    const app = parseOne(minimal);
    expect(app).toEqual({ ...minimal, enabled: true, enable_client_messages: true, limits: DEFAULT_PUSHER_LIMITS, webhooks: [] });
    expect(app.limits.max_connections).toBe(Infinity);
    expect(app.limits.max_channel_name_length).toBe(200);
    expect(app.limits.max_event_payload_in_kb).toBe(10);
    expect(Object.isFrozen(app) && Object.isFrozen(app.limits)).toBe(true);
  });

  it('reads every limit and webhook field', () => {
    const app = parseOne({
      ...minimal,
      enabled: false,
      enable_client_messages: false,
      max_connections: 0,
      max_client_events_per_second: 5,
      max_presence_members_per_channel: 50,
      max_presence_member_size_in_kb: 2.5,
      max_channel_name_length: 164,
      max_event_name_length: 100,
      max_event_payload_in_kb: 100,
      max_event_channels_at_once: 10,
      max_event_batch_size: 20,
      webhooks: [
        { url: 'https://hooks.example.test/pusher', event_types: ['channel_occupied', 'channel_vacated', 'channel_occupied'] },
        { url: 'http://127.0.0.1:9000/x', event_types: ['client_event'], headers: { 'X-Token': 'abc' } },
      ],
    });
    expect(app.enabled).toBe(false);
    expect(app.enable_client_messages).toBe(false);
    expect(app.limits).toEqual({
      max_connections: 0,
      max_client_events_per_second: 5,
      max_presence_members_per_channel: 50,
      max_presence_member_size_in_kb: 2.5,
      max_channel_name_length: 164,
      max_event_name_length: 100,
      max_event_payload_in_kb: 100,
      max_event_channels_at_once: 10,
      max_event_batch_size: 20,
    });
    expect(app.webhooks).toEqual([
      { url: 'https://hooks.example.test/pusher', event_types: ['channel_occupied', 'channel_vacated'], headers: {} },
      { url: 'http://127.0.0.1:9000/x', event_types: ['client_event'], headers: { 'X-Token': 'abc' } },
    ]);
  });

  it("accepts soketi's camelCase names, a numeric id (YAML `id: 12345`) and -1/null for unlimited", () => {
    const app = parseOne({ id: 12345, key: 'k', secret: 's', maxConnections: -1, maxClientEventsPerSecond: null, maxEventPayloadInKb: 50, enableClientMessages: false });
    expect(app.id).toBe('12345');
    expect(app.limits.max_connections).toBe(Infinity);
    expect(app.limits.max_client_events_per_second).toBe(Infinity);
    expect(app.limits.max_event_payload_in_kb).toBe(50);
    expect(app.enable_client_messages).toBe(false);
  });

  it('returns keys nobody defines by full path, for one warning', () => {
    const { unknownKeys } = parsePusherApps([{ ...minimal, cluster: 'mt1', webhooks: [{ url: 'http://h.test/', event_types: ['member_added'], filter: {} }] }]);
    expect(unknownKeys).toEqual(['pusher.apps[0].cluster', 'pusher.apps[0].webhooks[0].filter']);
  });

  it('treats an absent list as no apps (the edge stays off)', () => {
    expect(parsePusherApps(undefined).apps).toEqual([]);
    expect(parsePusherApps(null).apps).toEqual([]);
    expect(parsePusherApps([]).apps).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['not a list', { id: 1 }, 'pusher.apps: expected a list of apps'],
    ['an app that is not an object', ['x'], 'pusher.apps[0]: expected an object'],
    ['a missing id', [{ key: 'k', secret: 's' }], 'pusher.apps[0].id: expected a non-empty string'],
    ['an id with a slash', [{ ...minimal, id: 'a/b' }], 'pusher.apps[0].id: expected a non-empty string of at most 200 letters'],
    ['a key with a space', [{ ...minimal, key: 'a b' }], 'pusher.apps[0].key: expected'],
    ['a numeric key', [{ ...minimal, key: 123 }], 'pusher.apps[0].key: expected a non-empty string'],
    ['an empty secret', [{ ...minimal, secret: '' }], 'pusher.apps[0].secret: expected a non-empty secret, got ""'],
    ['a missing secret', [{ id: 'a', key: 'b' }], 'pusher.apps[0].secret: expected a string'],
    ['a numeric secret', [{ ...minimal, secret: 1234 }], 'pusher.apps[0].secret: expected a string (quote it in YAML'],
    ['a string boolean', [{ ...minimal, enabled: 'yes' }], 'pusher.apps[0].enabled: expected true or false, got "yes"'],
    ['a negative limit', [{ ...minimal, max_connections: -2 }], 'pusher.apps[0].max_connections: expected a non-negative integer'],
    ['a fractional count', [{ ...minimal, max_event_batch_size: 1.5 }], 'pusher.apps[0].max_event_batch_size: expected a positive integer up to 1000, got 1.5'],
    ['-1 where unlimited makes no sense', [{ ...minimal, max_channel_name_length: -1 }], 'pusher.apps[0].max_channel_name_length: expected a positive integer up to 1000, got -1'],
    ['a limit over its ceiling', [{ ...minimal, max_event_payload_in_kb: 1e9 }], 'pusher.apps[0].max_event_payload_in_kb: expected a positive number up to 10240'],
    ['a zero payload', [{ ...minimal, max_event_payload_in_kb: 0 }], 'pusher.apps[0].max_event_payload_in_kb: expected a positive number'],
    ['a string limit', [{ ...minimal, max_connections: '10' }], 'pusher.apps[0].max_connections: expected a non-negative integer'],
    ['webhooks not a list', [{ ...minimal, webhooks: {} }], 'pusher.apps[0].webhooks: expected a list'],
    ['a webhook without url', [{ ...minimal, webhooks: [{ event_types: ['client_event'] }] }], 'pusher.apps[0].webhooks[0].url: expected an http:// or https:// URL'],
    ['a webhook to a file: URL', [{ ...minimal, webhooks: [{ url: 'file:///etc/passwd', event_types: ['client_event'] }] }], 'pusher.apps[0].webhooks[0].url: expected an http'],
    ['a webhook with no event types', [{ ...minimal, webhooks: [{ url: 'http://h.test/', event_types: [] }] }], 'pusher.apps[0].webhooks[0].event_types: expected a non-empty list'],
    ['an unknown event type', [{ ...minimal, webhooks: [{ url: 'http://h.test/', event_types: ['cache_miss'] }] }], 'pusher.apps[0].webhooks[0].event_types[0]: expected one of channel_occupied'],
    ['a header with CRLF', [{ ...minimal, webhooks: [{ url: 'http://h.test/', event_types: ['client_event'], headers: { 'X-A': 'a\r\nX-B: b' } }] }], 'pusher.apps[0].webhooks[0].headers.X-A: expected a header value without control characters'],
    ['a header name with a colon', [{ ...minimal, webhooks: [{ url: 'http://h.test/', event_types: ['client_event'], headers: { 'X:A': 'a' } }] }], 'pusher.apps[0].webhooks[0].headers.X:A: expected a header name'],
    ['a header that would forge the signature', [{ ...minimal, webhooks: [{ url: 'http://h.test/', event_types: ['client_event'], headers: { 'x-pusher-signature': 'a' } }] }], 'expected a header the webhook sender does not set itself'],
    ['both spellings of one setting', [{ ...minimal, maxConnections: 1, max_connections: 2 }], 'pusher.apps[0]: "maxConnections" and "max_connections" name the same setting; keep one'],
    ['two apps with one id', [minimal, { ...minimal, key: 'other' }], 'pusher.apps[1].id: "app-1" is already the id of pusher.apps[0]'],
    ['two apps with one key', [minimal, { ...minimal, id: 'other' }], 'pusher.apps[1].key: "key-1" is already the key of pusher.apps[0]'],
  ])('refuses %s, naming the key and what was expected', (_, value, message) => {
    expect(errorOf(() => parsePusherApps(value))).toContain(message);
  });

  it('never echoes a long value whole', () => {
    expect(errorOf(() => parsePusherApps([{ ...minimal, enabled: 'x'.repeat(10_000) }]))).toBe('pusher.apps[0].enabled: expected true or false, got a 10000-character string');
  });
});

describe('parsePusherAppFlag', () => {
  it('reads ID:KEY:SECRET, the secret keeping any further colons', () => {
    const app = parsePusherAppFlag('42:abc:se:cr:et');
    expect([app.id, app.key, app.secret]).toEqual(['42', 'abc', 'se:cr:et']);
    expect(app.limits).toEqual(DEFAULT_PUSHER_LIMITS);
    expect(app.webhooks).toEqual([]);
  });

  it.each([
    ['42:abc', '--pusher-app: expected ID:KEY:SECRET, got "42:abc"'],
    ['', '--pusher-app: expected ID:KEY:SECRET'],
    ['42:abc:', '--pusher-app.secret: expected a non-empty secret'],
    [':abc:s', '--pusher-app.id: expected a non-empty string'],
    ['42::s', '--pusher-app.key: expected a non-empty string'],
  ])('refuses %j', (value, message) => {
    expect(errorOf(() => parsePusherAppFlag(value))).toContain(message);
  });

  it('names the source it came from', () => {
    expect(errorOf(() => parsePusherAppFlag('x', 'SWITCHBOARD_PUSHER_APP'))).toContain('SWITCHBOARD_PUSHER_APP: expected ID:KEY:SECRET');
  });
});

describe('combinePusherApps and pusherAppRegistry', () => {
  const a = parsePusherAppFlag('1:key-a:sa');
  const b = parsePusherAppFlag('2:key-b:sb');

  it('refuses a flag app that repeats a config app', () => {
    expect(combinePusherApps([a, b])).toEqual([a, b]);
    expect(errorOf(() => combinePusherApps([a, parsePusherAppFlag('1:key-c:sc')]))).toContain('"1" is already the id');
  });

  it('finds apps by key and by id, and nothing for prototype names', () => {
    const registry = pusherAppRegistry([a, b]);
    expect(registry.size).toBe(2);
    expect(registry.byKey('key-b')).toBe(b);
    expect(registry.byId('1')).toBe(a);
    expect(registry.byKey('1')).toBeUndefined();
    expect(registry.byId('key-a')).toBeUndefined();
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(registry.byKey(name)).toBeUndefined();
      expect(registry.byId(name)).toBeUndefined();
    }
    expect(registry.all()).toEqual([a, b]);
  });

  it('an empty registry means the edge is off', () => {
    expect(pusherAppRegistry([]).size).toBe(0);
  });
});
