import { encodeCommand, RespError, RespReader } from './resp';

describe('RESP', () => {
  it('encodes a command as an array of bulk strings, by UTF-8 length', () => {
    expect(encodeCommand(['SSUBSCRIBE', 'sb:{é}']).toString()).toBe('*2\r\n$10\r\nSSUBSCRIBE\r\n$7\r\nsb:{é}\r\n');
  });

  it('reads every reply shape a pub/sub connection gets, in any chunking', () => {
    const wire = Buffer.from('+OK\r\n-MOVED 12 127.0.0.1:7001\r\n:3\r\n$-1\r\n*3\r\n$8\r\nsmessage\r\n$6\r\nsb:{a}\r\n$9\r\n1 e {"x"}\r\n*0\r\n');
    const expected = ['OK', new RespError('MOVED 12 127.0.0.1:7001'), 3, null, ['smessage', 'sb:{a}', '1 e {"x"}'], []];
    expect(new RespReader().push(wire)).toEqual(expected);
    for (const size of [1, 2, 3, 7]) {
      const reader = new RespReader();
      const out = [];
      for (let i = 0; i < wire.length; i += size) out.push(...reader.push(wire.subarray(i, i + size)));
      expect(out).toEqual(expected);
    }
  });

  it('keeps a payload with CR LF inside whole (bulk strings are read by length)', () => {
    expect(new RespReader().push(Buffer.from('$4\r\na\r\nb\r\n'))).toEqual(['a\r\nb']);
  });

  it('throws on bytes that are not RESP', () => {
    expect(() => new RespReader().push(Buffer.from('?what\r\n'))).toThrow(/unexpected reply type/);
    expect(() => new RespReader().push(Buffer.from(':x\r\n'))).toThrow(/not an integer/);
  });
});
