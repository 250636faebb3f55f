import { payloadJson } from './payload';
import { publishRequest, pusherSignedQuery, type PusherCredentials } from './publish_api';

/** The `pusher` library's own signer (what its trigger() puts in the URL), from pusher 5.x's untyped internals. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createSignedQueryString } = require('pusher/lib/requests') as {
  createSignedQueryString(token: unknown, request: { method: string; path: string; body?: string }): string;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Token = require('pusher/lib/token') as new (key: string, secret: string) => unknown;

const APP: PusherCredentials = { id: 'bench', key: 'benchkey', secret: 'benchsecret' };

function librarySignature(method: string, path: string, body: string, timestamp: number): string {
  const now = jest.spyOn(Date, 'now').mockReturnValue(timestamp * 1000 + 123);
  try {
    return createSignedQueryString(new Token(APP.key, APP.secret), { method, path, body });
  } finally {
    now.mockRestore();
  }
}

describe('pusherSignedQuery', () => {
  it.each([64, 1024])('signs an events request with a %i B payload exactly as the pusher library does', (size) => {
    const payload = payloadJson({ seq: 42, intendedUs: 987654321012, step: 3, channel: 7 }, size);
    const body = JSON.stringify({ name: 'p', channel: 'bench-fan', data: payload });
    expect(pusherSignedQuery(APP, 'POST', '/apps/bench/events', body, 1764000000)).toBe(librarySignature('POST', '/apps/bench/events', body, 1764000000));
  });

  it('changes with the secret, the timestamp and the body', () => {
    const q = pusherSignedQuery(APP, 'POST', '/apps/bench/events', '{}', 1);
    expect(pusherSignedQuery({ ...APP, secret: 'other' }, 'POST', '/apps/bench/events', '{}', 1)).not.toBe(q);
    expect(pusherSignedQuery(APP, 'POST', '/apps/bench/events', '{}', 2)).not.toBe(q);
    expect(pusherSignedQuery(APP, 'POST', '/apps/bench/events', '{"a":1}', 1)).not.toBe(q);
  });
});

describe('publishRequest', () => {
  const payload = payloadJson({ seq: 1, intendedUs: 2, step: 3, channel: 4 }, 64);

  it('puts the payload as JSON into a Centrifugo publish', () => {
    const req = publishRequest({ kind: 'centrifugo' }, '"bench:fan"', payload, 0);
    expect(req.target).toBe('/api/publish');
    expect(JSON.parse(req.body)).toEqual({ channel: 'bench:fan', data: JSON.parse(payload) });
  });

  it('puts the payload as a string into a signed Pusher event whose body the library would sign the same', () => {
    const req = publishRequest({ kind: 'pusher', app: APP }, '"bench-fan"', payload, 1764000000);
    expect(JSON.parse(req.body)).toEqual({ name: 'p', channel: 'bench-fan', data: payload });
    const [path, query] = req.target.split('?');
    expect(path).toBe('/apps/bench/events');
    expect(query).toBe(librarySignature('POST', path, req.body, 1764000000));
  });
});
