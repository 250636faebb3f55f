import fc from 'fast-check';
import { closeAdvice, PusherErrorCode, pusherErrorMessages } from './codes';
import { allowsClientEvents, eventNameProblem, needsChannelAuth, pusherChannelNameProblem, pusherChannelType, serverToUserChannel, userIdProblem } from './names';

describe('pusherChannelType', () => {
  it.each([
    ['orders', 'public'],
    ['private-orders', 'private'],
    ['private-encrypted-orders', 'private-encrypted'],
    ['presence-room', 'presence'],
    ['#server-to-user-42', 'server-to-user'],
    ['privateorders', 'public'],
    ['presence', 'public'],
    ['private-cache-x', 'private'],
  ])('%s is %s', (name, type) => {
    expect(pusherChannelType(name)).toBe(type);
  });

  it('auth and client events per kind', () => {
    expect(['public', 'private', 'private-encrypted', 'presence', 'server-to-user'].map((t) => needsChannelAuth(t as never))).toEqual([false, true, true, true, false]);
    expect(['public', 'private', 'private-encrypted', 'presence', 'server-to-user'].map((t) => allowsClientEvents(t as never))).toEqual([false, true, false, true, false]);
  });
});

describe('pusherChannelNameProblem', () => {
  it('accepts the whole alphabet A-Z a-z 0-9 _ - = @ , . ; up to the limit', () => {
    expect(pusherChannelNameProblem('AZaz09_-=@,.;', 200)).toBeUndefined();
    expect(pusherChannelNameProblem('private-App.Models.User.1', 200)).toBeUndefined();
    expect(pusherChannelNameProblem('a'.repeat(200), 200)).toBeUndefined();
    expect(pusherChannelNameProblem('#server-to-user-some user ✓', 200)).toBeUndefined();
  });

  it.each<[unknown, string]>([
    ['', 'channel name must not be empty'],
    ['a'.repeat(201), 'channel name longer than 200 characters'],
    ['chat:room', 'channel name may hold only letters, digits and _ - = @ , . ; (found ":" at 4)'],
    ['a b', 'found " " at 1'],
    ['a#b', 'found "#" at 1'],
    ['#other', 'found "#" at 0'],
    ['{chan}', 'found "{" at 0'],
    ['é', 'found "é" at 0'],
    ['a\u0000', 'found "\\u0000" at 1'],
    ['\uD800', 'found "\\ud800" at 0'],
    ['#server-to-user-', 'channel #server-to-user-<user id>: user id must not be empty'],
    ['#server-to-user-\uD800', 'user id is not well-formed Unicode'],
    ['#server-to-user-a\nb', 'user id holds a control character'],
    [42, 'channel name must be a string'],
    [null, 'channel name must be a string'],
  ])('refuses %j', (name, message) => {
    expect(pusherChannelNameProblem(name, 200)).toContain(message);
  });

  it('agrees with the pusher library’s own check on every string (property)', () => {
    // The library's rule (lib/pusher.js validateChannel): non-empty, ≤ 200, only [A-Za-z0-9_\-=@,.;].
    const libraryAccepts = (s: string) => s !== '' && s.length <= 200 && !/[^A-Za-z0-9_\-=@,.;]/.test(s);
    const names = fc.oneof(fc.string({ maxLength: 220 }), fc.stringMatching(/^[A-Za-z0-9_\-=@,.;:#]{0,210}$/));
    fc.assert(
      fc.property(names, (s) => {
        if (s.startsWith('#server-to-user-')) return;
        expect(pusherChannelNameProblem(s, 200) === undefined).toBe(libraryAccepts(s));
      }),
    );
  });

  it('is linear: a long hostile name is refused at once', () => {
    const start = process.hrtime.bigint();
    const hostile = 'a'.repeat(1_000_000) + '!';
    for (let i = 0; i < 20; i++) expect(pusherChannelNameProblem(hostile, 2_000_000)).toContain('at 1000000');
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeLessThan(5000);
  });
});

describe('eventNameProblem and userIdProblem', () => {
  it('accepts Laravel-style event names and refuses reserved, empty, long and ill-formed ones', () => {
    expect(eventNameProblem('App\\Events\\OrderShipped', 200)).toBeUndefined();
    expect(eventNameProblem('.message.sent', 200)).toBeUndefined();
    expect(eventNameProblem('client-typing', 200)).toBeUndefined();
    expect(eventNameProblem('pusher:subscribe', 200)).toContain('reserved');
    expect(eventNameProblem('pusher_internal:member_added', 200)).toContain('reserved');
    expect(eventNameProblem('', 200)).toContain('empty');
    expect(eventNameProblem('e'.repeat(201), 200)).toContain('longer than 200');
    expect(eventNameProblem('a\u0007', 200)).toContain('control character');
    expect(eventNameProblem('a\uDC00', 200)).toContain('lone surrogate');
    expect(eventNameProblem(7, 200)).toContain('must be a string');
  });

  it('user ids: 1–128 well-formed characters without control characters', () => {
    expect(userIdProblem('42')).toBeUndefined();
    expect(userIdProblem('ü'.repeat(128))).toBeUndefined();
    expect(userIdProblem('x'.repeat(129))).toContain('longer than 128');
    expect(userIdProblem('')).toContain('empty');
    expect(userIdProblem(42)).toContain('must be a string');
    expect(userIdProblem('a\u007f')).toContain('control character');
    expect(serverToUserChannel('42')).toBe('#server-to-user-42');
  });
});

describe('error codes', () => {
  it('has the protocol’s code for each documented meaning', () => {
    expect(PusherErrorCode).toEqual({
      SslOnly: 4000,
      AppNotFound: 4001,
      AppDisabled: 4003,
      OverConnectionQuota: 4004,
      PathNotFound: 4005,
      InvalidVersionFormat: 4006,
      UnsupportedProtocol: 4007,
      NoProtocolVersion: 4008,
      Unauthorized: 4009,
      OverCapacity: 4100,
      GenericReconnect: 4200,
      PongNotReceived: 4201,
      ClosedAfterInactivity: 4202,
      ClientEventRejected: 4301,
    });
    for (const code of Object.values(PusherErrorCode)) expect(pusherErrorMessages[code]).toEqual(expect.any(String));
  });

  it('closeAdvice mirrors pusher-js Protocol.getCloseAction for codes ≥ 4000', () => {
    expect([4000, 4001, 4009, 4099, 4100, 4199, 4200, 4201, 4299, 4300, 4301, 4999].map(closeAdvice)).toEqual([
      'tls-only',
      'refused',
      'refused',
      'refused',
      'backoff',
      'backoff',
      'retry',
      'retry',
      'retry',
      'refused',
      'refused',
      'refused',
    ]);
  });
});
