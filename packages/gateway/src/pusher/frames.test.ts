import fc from 'fast-check';
import { MAX_JSON_DEPTH } from '@switchboard/protocol';
import { parsePusherApps, parsePusherAppFlag } from './apps';
import {
  checkConnectionQuery,
  clientFrameRules,
  decodeClientFrame,
  encodeChannelEvent,
  encodeConnectionEstablished,
  encodeError,
  encodeMemberAdded,
  encodeMemberRemoved,
  encodePresenceSubscriptionSucceeded,
  encodeSigninSuccess,
  encodeSubscriptionCount,
  encodeSubscriptionError,
  encodeSubscriptionSucceeded,
  parsePresenceChannelData,
  parseUserData,
  PING_FRAME,
  PONG_FRAME,
  type ClientFrameRules,
} from './frames';

const app = parsePusherAppFlag('1:key:secret');
const rules: ClientFrameRules = clientFrameRules(app);
const decode = (frame: unknown) => decodeClientFrame(typeof frame === 'string' ? frame : JSON.stringify(frame), rules);

/** What pusher-js does with a frame it receives (Protocol.decodeMessage): parse, then parse a string `data` once more. */
function asPusherJs(frame: string): { event: string; channel?: string; data: unknown; user_id?: string } {
  const m = JSON.parse(frame) as { event: string; channel?: string; data: unknown; user_id?: string };
  let data = m.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      // pusher-js keeps a string that is not JSON as it is
    }
  }
  return { ...m, data };
}

describe('checkConnectionQuery', () => {
  it('accepts protocol 7 as pusher-js sends it', () => {
    expect(checkConnectionQuery('protocol=7&client=js&version=8.6.0&flash=false')).toEqual({ ok: true, protocol: 7 });
  });

  it.each([
    ['client=js&version=8.6.0', 4008],
    ['', 4008],
    ['protocol=', 4008],
    ['protocol=6', 4007],
    ['protocol=8', 4007],
    ['protocol=07', 4007],
    ['protocol=seven', 4007],
    [`protocol=${'9'.repeat(100)}`, 4007],
  ])('%j → %d', (query, code) => {
    expect(checkConnectionQuery(query)).toMatchObject({ ok: false, code });
  });
});

describe('decodeClientFrame: what pusher-js sends', () => {
  it('ping and pong, whatever their data', () => {
    expect(decode({ event: 'pusher:ping', data: {} })).toEqual({ kind: 'ping' });
    expect(decode({ event: 'pusher:ping' })).toEqual({ kind: 'ping' });
    expect(decode({ event: 'pusher:pong', data: '{}' })).toEqual({ kind: 'pong' });
  });

  it('subscribe to a public channel (pusher-js sends auth: "")', () => {
    expect(decode({ event: 'pusher:subscribe', data: { auth: '', channel: 'orders' } })).toEqual({
      kind: 'subscribe',
      channel: 'orders',
      type: 'public',
      auth: undefined,
      channelData: undefined,
    });
  });

  it('subscribe to private and presence channels keeps auth and channel_data exactly', () => {
    const channelData = '{"user_id":"1","user_info":{"name":"Ann"}}';
    expect(decode({ event: 'pusher:subscribe', data: { auth: 'key:abc', channel_data: channelData, channel: 'presence-room' } })).toEqual({
      kind: 'subscribe',
      channel: 'presence-room',
      type: 'presence',
      auth: 'key:abc',
      channelData,
    });
    expect(decode({ event: 'pusher:subscribe', data: { auth: 'key:abc', channel: 'private-encrypted-x', channel_data: null } })).toMatchObject({ type: 'private-encrypted', channelData: undefined });
  });

  it('unsubscribe and signin', () => {
    expect(decode({ event: 'pusher:unsubscribe', data: { channel: 'private-a' } })).toEqual({ kind: 'unsubscribe', channel: 'private-a' });
    expect(decode({ event: 'pusher:signin', data: { auth: 'key:abc', user_data: '{"id":"1"}' } })).toEqual({ kind: 'signin', auth: 'key:abc', userData: '{"id":"1"}' });
  });

  it('client events: data as the canonical string receivers decode the same way', () => {
    expect(decode({ event: 'client-typing', channel: 'private-chat', data: { typing: true } })).toEqual({
      kind: 'client-event',
      event: 'client-typing',
      channel: 'private-chat',
      data: '{"typing":true}',
    });
    expect(decode({ event: 'client-x', channel: 'presence-room', data: 'plain' })).toMatchObject({ data: 'plain' });
    expect(decode({ event: 'client-x', channel: 'presence-room' })).toMatchObject({ data: 'null' });
    const relayed = encodeChannelEvent('client-x', 'private-chat', '{"typing":true}');
    expect(asPusherJs(relayed).data).toEqual({ typing: true });
  });
});

describe('decodeClientFrame: refusals', () => {
  it.each<[string, unknown, number, string, string?]>([
    ['not JSON', '{"event":', 4200, 'Invalid message format: frame is not JSON'],
    ['an array', '[1]', 4200, 'frame must be a JSON object'],
    ['a string', '"pusher:ping"', 4200, 'frame must be a JSON object'],
    ['no event', { data: {} }, 4200, '"event" must be a non-empty string'],
    ['a numeric event', { event: 7 }, 4200, '"event" must be a non-empty string'],
    ['an unknown pusher: event', { event: 'pusher:cache_miss' }, 4200, 'unknown event "pusher:cache_miss"'],
    ['a pusher_internal: event from a client', { event: 'pusher_internal:member_added', channel: 'presence-a', data: {} }, 4200, 'unknown event'],
    ['an event without client- prefix', { event: 'message', channel: 'private-a', data: {} }, 4301, 'events sent by a client must begin with "client-"'],
    ['subscribe without data', { event: 'pusher:subscribe' }, 4200, 'pusher:subscribe needs "data"'],
    ['subscribe with string data', { event: 'pusher:subscribe', data: '{"channel":"a"}' }, 4200, 'pusher:subscribe needs "data"'],
    ['subscribe without channel', { event: 'pusher:subscribe', data: {} }, 4009, 'channel name must be a string'],
    ['subscribe to a bad name', { event: 'pusher:subscribe', data: { channel: 'a:b' } }, 4009, 'channel name may hold only', 'a:b'],
    ['subscribe to a long name', { event: 'pusher:subscribe', data: { channel: 'a'.repeat(201) } }, 4009, 'longer than 200', 'a'.repeat(201)],
    ['subscribe with numeric auth', { event: 'pusher:subscribe', data: { channel: 'private-a', auth: 1 } }, 4009, '"auth" must be a string', 'private-a'],
    ['subscribe with long auth', { event: 'pusher:subscribe', data: { channel: 'private-a', auth: 'k:' + 'a'.repeat(600) } }, 4009, '"auth" longer than 512', 'private-a'],
    ['subscribe with object channel_data', { event: 'pusher:subscribe', data: { channel: 'presence-a', auth: 'k:a', channel_data: { user_id: 1 } } }, 4009, '"channel_data" must be a string', 'presence-a'],
    ['subscribe with oversized channel_data', { event: 'pusher:subscribe', data: { channel: 'presence-a', auth: 'k:a', channel_data: JSON.stringify({ user_id: '1', user_info: 'x'.repeat(1100) }) } }, 4009, '"channel_data" larger than 1024 bytes', 'presence-a'],
    ['unsubscribe from a bad name', { event: 'pusher:unsubscribe', data: { channel: '' } }, 4009, 'channel name must not be empty'],
    ['signin without auth', { event: 'pusher:signin', data: { user_data: '{}' } }, 4009, 'needs an "auth" string'],
    ['signin with object user_data', { event: 'pusher:signin', data: { auth: 'k:a', user_data: { id: '1' } } }, 4009, 'needs a "user_data" string'],
    ['signin with oversized user_data', { event: 'pusher:signin', data: { auth: 'k:a', user_data: JSON.stringify({ id: '1', x: 'é'.repeat(600) }) } }, 4009, '"user_data" larger than 1024 bytes'],
    ['a client event on a public channel', { event: 'client-x', channel: 'orders', data: {} }, 4301, 'not on public channels', 'orders'],
    ['a client event on an encrypted channel', { event: 'client-x', channel: 'private-encrypted-a', data: {} }, 4301, 'not on private-encrypted channels', 'private-encrypted-a'],
    ['a client event on a user channel', { event: 'client-x', channel: '#server-to-user-1', data: {} }, 4301, 'not on server-to-user channels', '#server-to-user-1'],
    ['a client event without channel', { event: 'client-x', data: {} }, 4301, 'client event: channel name must be a string'],
    ['a client event with a long name', { event: 'client-' + 'x'.repeat(200), channel: 'private-a', data: {} }, 4301, 'event name longer than 200', 'private-a'],
    ['a client event with a control character in its name', { event: 'client-\u0000', channel: 'private-a', data: {} }, 4301, 'control character', 'private-a'],
    ['a client event over 10 KB', { event: 'client-x', channel: 'private-a', data: 'x'.repeat(10 * 1024 + 1) }, 4301, 'client event data larger than 10240 bytes', 'private-a'],
    ['a client event over 10 KB of UTF-8', { event: 'client-x', channel: 'private-a', data: 'é'.repeat(5121) }, 4301, 'larger than 10240 bytes', 'private-a'],
  ])('%s', (_, frame, code, message, channel = undefined) => {
    const result = decode(frame);
    expect(result).toMatchObject({ kind: 'error', code, message: expect.stringContaining(message) });
    if (result.kind === 'error') expect(result.channel).toBe(channel);
  });

  it('accepts a client event of exactly the payload limit', () => {
    expect(decode({ event: 'client-x', channel: 'private-a', data: 'x'.repeat(10 * 1024) })).toMatchObject({ kind: 'client-event' });
  });

  it('refuses client events when the app turned them off', () => {
    const off = clientFrameRules(parsePusherApps([{ id: '1', key: 'k', secret: 's', enable_client_messages: false }]).apps[0]);
    expect(decodeClientFrame(JSON.stringify({ event: 'client-x', channel: 'private-a', data: {} }), off)).toMatchObject({
      code: 4301,
      message: 'client events are not enabled for this app',
      channel: 'private-a',
    });
  });

  it('refuses an oversized frame unread and a deep one before parsing', () => {
    expect(decode('x'.repeat(rules.maxFrameBytes + 1))).toMatchObject({ code: 4200, message: `Invalid message format: frame larger than ${rules.maxFrameBytes} bytes` });
    expect(decode(`{"event":"client-x","channel":"private-a","data":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`)).toMatchObject({
      code: 4200,
      message: `Invalid message format: frame nests deeper than ${MAX_JSON_DEPTH} levels`,
    });
    expect(decode('['.repeat(1_000_000))).toMatchObject({ code: 4200 });
    expect(decodeClientFrame(42 as unknown as string, rules)).toMatchObject({ code: 4200, message: 'Invalid message format: frames must be text' });
  });

  it('scales its frame limit with the app’s payload and member limits', () => {
    const big = clientFrameRules(parsePusherApps([{ id: '1', key: 'k', secret: 's', max_event_payload_in_kb: 100, max_presence_member_size_in_kb: 2 }]).apps[0]);
    expect(big).toEqual({ maxFrameBytes: 6 * 102400 + 4096, maxChannelNameLength: 200, maxEventNameLength: 200, maxEventPayloadBytes: 102400, maxUserDataBytes: 2048, clientEvents: true });
    // A payload of escaped control characters still fits the frame and is measured by its decoded size.
    const data = '\u0001'.repeat(10 * 1024);
    expect(decode({ event: 'client-x', channel: 'private-a', data })).toMatchObject({ kind: 'client-event', data });
  });

  it('never throws, on any text or any object shaped like a command (property)', () => {
    const field = fc.oneof(fc.string(), fc.constantFrom('pusher:ping', 'pusher:subscribe', 'pusher:unsubscribe', 'pusher:signin', 'client-x', 'private-a', 'presence-a', '#server-to-user-1'), fc.jsonValue({ maxDepth: 3 }));
    const commandLike = fc.record({ event: field, channel: field, data: fc.oneof(field, fc.record({ channel: field, auth: field, channel_data: field, user_data: field })) }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), commandLike.map((c) => JSON.stringify(c))), (text) => {
        const result = decodeClientFrame(text, rules);
        expect(typeof result.kind).toBe('string');
      }),
      { numRuns: 500 },
    );
  });
});

describe('presence channel_data and sign-in user_data', () => {
  it('parses members, making a numeric user id a string', () => {
    expect(parsePresenceChannelData('{"user_id":10,"user_info":{"name":"Mr. Channels"}}')).toEqual({ ok: true, value: { user_id: '10', user_info: { name: 'Mr. Channels' } } });
    expect(parsePresenceChannelData('{"user_id":"u1"}')).toEqual({ ok: true, value: { user_id: 'u1', user_info: null } });
  });

  it.each([
    ['not JSON', '{', '"channel_data" is not JSON'],
    ['an array', '[]', 'must be a JSON object'],
    ['no user id', '{"user_info":{}}', 'needs a "user_id"'],
    ['a fractional id', '{"user_id":1.5}', 'needs a "user_id"'],
    ['an empty id', '{"user_id":""}', 'user id must not be empty'],
    ['a long id', JSON.stringify({ user_id: 'x'.repeat(129) }), 'longer than 128'],
    ['a deep user_info', `{"user_id":"1","user_info":${'['.repeat(70)}${']'.repeat(70)}}`, 'nests deeper than 64'],
  ])('refuses %s with 4009', (_, text, message) => {
    expect(parsePresenceChannelData(text)).toEqual({ ok: false, code: 4009, message: expect.stringContaining(message) });
  });

  it('parses user_data as pusher-js requires it (an "id" string) and keeps the exact string', () => {
    const userData = '{"id":"42","user_info":{"name":"Ann"},"watchlist":["7"]}';
    expect(parseUserData(userData)).toEqual({ ok: true, value: { id: '42', user_info: { name: 'Ann' }, userData } });
    expect(parseUserData('{"id":42}')).toMatchObject({ ok: false, message: '"user_data" needs an "id" string' });
    expect(parseUserData('{"id":""}')).toMatchObject({ ok: false, code: 4009 });
    expect(parseUserData('null')).toMatchObject({ ok: false, code: 4009 });
  });

  it('never throws (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        expect(typeof parsePresenceChannelData(text).ok).toBe('boolean');
        expect(typeof parseUserData(text).ok).toBe('boolean');
      }),
    );
  });
});

describe('encoders, read back as pusher-js reads them', () => {
  it('connection_established: data is a string holding socket_id and activity_timeout', () => {
    const frame = encodeConnectionEstablished('1.2');
    expect(typeof JSON.parse(frame).data).toBe('string');
    expect(asPusherJs(frame)).toEqual({ event: 'pusher:connection_established', data: { socket_id: '1.2', activity_timeout: 120 } });
    expect(asPusherJs(encodeConnectionEstablished('1.2', 30)).data).toEqual({ socket_id: '1.2', activity_timeout: 30 });
  });

  it('pusher:error: data is an object {code, message}', () => {
    expect(JSON.parse(encodeError(4001, 'App key x does not exist'))).toEqual({ event: 'pusher:error', data: { code: 4001, message: 'App key x does not exist' } });
    expect(JSON.parse(encodeError(null, 'm', 'private-a'))).toEqual({ event: 'pusher:error', channel: 'private-a', data: { code: null, message: 'm' } });
  });

  it('ping and pong', () => {
    expect(asPusherJs(PING_FRAME)).toEqual({ event: 'pusher:ping', data: {} });
    expect(asPusherJs(PONG_FRAME)).toEqual({ event: 'pusher:pong', data: {} });
  });

  it('subscription_succeeded, plain and with the presence roster (one entry per user)', () => {
    expect(asPusherJs(encodeSubscriptionSucceeded('private-a'))).toEqual({ event: 'pusher_internal:subscription_succeeded', channel: 'private-a', data: {} });
    const frame = encodePresenceSubscriptionSucceeded('presence-r', [
      { user_id: '1', user_info: { name: 'Ann' } },
      { user_id: '__proto__', user_info: null },
      { user_id: '1', user_info: { name: 'Ann (second tab)' } },
      { user_id: '2', user_info: [1, 2] },
    ]);
    expect(asPusherJs(frame).data).toEqual({
      presence: { ids: ['1', '__proto__', '2'], hash: JSON.parse('{"1":{"name":"Ann"},"__proto__":null,"2":[1,2]}'), count: 3 },
    });
    const data = asPusherJs(frame).data as { presence: { hash: Record<string, unknown> } };
    expect(Object.prototype.hasOwnProperty.call(data.presence.hash, '__proto__')).toBe(true);
    expect(asPusherJs(encodePresenceSubscriptionSucceeded('presence-r', [])).data).toEqual({ presence: { ids: [], hash: {}, count: 0 } });
  });

  it('member_added, member_removed, subscription_count', () => {
    expect(asPusherJs(encodeMemberAdded('presence-r', { user_id: '3', user_info: { n: 1 } }))).toEqual({
      event: 'pusher_internal:member_added',
      channel: 'presence-r',
      data: { user_id: '3', user_info: { n: 1 } },
    });
    expect(asPusherJs(encodeMemberRemoved('presence-r', '3'))).toEqual({ event: 'pusher_internal:member_removed', channel: 'presence-r', data: { user_id: '3' } });
    expect(asPusherJs(encodeSubscriptionCount('a', 5))).toEqual({ event: 'pusher_internal:subscription_count', channel: 'a', data: { subscription_count: 5 } });
  });

  it('subscription_error carries {type, error, status} for Echo’s error callback', () => {
    expect(JSON.parse(encodeSubscriptionError('private-a', 'AuthError', 'invalid signature', 401))).toEqual({
      event: 'pusher:subscription_error',
      channel: 'private-a',
      data: { type: 'AuthError', error: 'invalid signature', status: 401 },
    });
  });

  it('signin_success: user_data stays the string the backend signed', () => {
    const userData = '{"id":"42","user_info":{"name":"Ann"}}';
    const data = asPusherJs(encodeSigninSuccess(userData)).data as { user_data: string };
    expect(data.user_data).toBe(userData);
  });

  it('channel events: data string as given, user_id only when given', () => {
    expect(JSON.parse(encodeChannelEvent('App\\Events\\X', 'orders', '{"id":1}'))).toEqual({ event: 'App\\Events\\X', channel: 'orders', data: '{"id":1}' });
    expect(asPusherJs(encodeChannelEvent('client-x', 'presence-r', 'hi', '7'))).toEqual({ event: 'client-x', channel: 'presence-r', data: 'hi', user_id: '7' });
    expect(JSON.parse(encodeChannelEvent('e', 'c', '\uD800\u2028"'))).toMatchObject({ data: '\uD800\u2028"' });
  });
});
