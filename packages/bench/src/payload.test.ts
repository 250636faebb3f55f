import { ESCAPED_KEYS, nowMicros, payloadJson, scanDeliveries } from './payload';

type Seen = [seq: number, t: number, step: number, channel: number];

function scan(text: string, start = 0, end?: number, keys?: typeof ESCAPED_KEYS): { n: number; seen: Seen[] } {
  const buf = Buffer.from(text, 'latin1');
  const seen: Seen[] = [];
  const n = scanDeliveries(buf, start, end ?? buf.length, (s, t, k, c) => seen.push([s, t, k, c]), keys);
  return { n, seen };
}

describe('payloadJson', () => {
  it.each([64, 1024])('is exactly %i bytes of JSON holding the fields', (size) => {
    const json = payloadJson({ seq: 123456, intendedUs: 987654321012, step: 17, channel: 999 }, size);
    expect(Buffer.byteLength(json)).toBe(size);
    expect(JSON.parse(json)).toMatchObject({ s: 123456, t: 987654321012, k: 17, c: 999 });
  });

  it('is as small as its fields allow when asked for less', () => {
    const json = payloadJson({ seq: 1, intendedUs: 2, step: 3, channel: 4 }, 8);
    expect(JSON.parse(json)).toEqual({ s: 1, t: 2, k: 3, c: 4, p: '' });
  });
});

describe('scanDeliveries', () => {
  const a = payloadJson({ seq: 1, intendedUs: 1000, step: 5, channel: 0 }, 64);
  const b = payloadJson({ seq: 2, intendedUs: 2000, step: 5, channel: 3 }, 1024);

  it('finds every publication of a Centrifugo frame holding several pushes', () => {
    const frame = [
      `{"push":{"channel":"bench:fan","pub":{"offset":7,"data":${a}}}}`,
      `{"push":{"channel":"bench:m3","pub":{"offset":1,"data":${b}}}}`,
    ].join('\n');
    expect(scan(frame)).toEqual({
      n: 2,
      seen: [
        [1, 1000, 5, 0],
        [2, 2000, 5, 3],
      ],
    });
  });

  it('finds the payload of a Socket.IO event packet and of a relay push', () => {
    expect(scan(`42["p",${a}]`).seen).toEqual([[1, 1000, 5, 0]]);
    expect(scan(`{"push":{"channel":"c","pub":{"data":${b}}}}`).seen).toEqual([[2, 2000, 5, 3]]);
  });

  it('finds the payload inside the data string of a Pusher channel event, its quotes escaped', () => {
    // As both Pusher servers encode an event from the HTTP API: the payload's JSON as a JSON string.
    const frame = JSON.stringify({ event: 'p', channel: 'bench-m3', data: b });
    expect(scan(frame, 0, undefined, ESCAPED_KEYS)).toEqual({ n: 1, seen: [[2, 2000, 5, 3]] });
    expect(scan(frame).n).toBe(0);
    expect(scan(`{"event":"p","channel":"c","data":"{\\"s\\":9,\\"x\\":1}"}`, 0, undefined, ESCAPED_KEYS).n).toBe(-1);
  });

  it('finds nothing in replies and pings', () => {
    expect(scan('{}').n).toBe(0);
    expect(scan('{"id":1,"connect":{"client":"x","version":"1","ping":25,"pong":true}}').n).toBe(0);
    expect(scan('2').n).toBe(0);
  });

  it('stays within the given range', () => {
    const text = `${a}\n${b}`;
    expect(scan(text, 0, a.length).seen).toEqual([[1, 1000, 5, 0]]);
    expect(scan(text, a.length).seen).toEqual([[2, 2000, 5, 3]]);
  });

  it('reports a malformed payload as a negative count of what came before it', () => {
    expect(scan(`${a}\n{"s":9,"x":1}`).n).toBe(-2);
    expect(scan('{"s":,"t":1}').n).toBe(-1);
  });
});

describe('nowMicros', () => {
  it('follows the system-wide monotonic clock that other processes read', () => {
    const hr = Number(process.hrtime.bigint() / 1000n);
    expect(Math.abs(nowMicros() - hr)).toBeLessThan(5000);
  });
});
