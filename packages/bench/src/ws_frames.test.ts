import { closeCode, encodeClientClose, encodeClientFrame, FrameParseError, FrameParser, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT } from './ws_frames';

/** A server frame (unmasked unless a mask key is given). */
function serverFrame(opcode: number, payload: Buffer, fin = true, mask?: number[]): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head[1] = maskBit | len;
  else if (len < 65536) {
    head[1] = maskBit | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = maskBit | 127;
    head.writeUInt32BE(0, 2);
    head.writeUInt32BE(len, 6);
  }
  let body = payload;
  if (mask) {
    mask.forEach((b, i) => (head[2 + ext + i] = b));
    body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
  }
  return Buffer.concat([head, body]);
}

function collect(): { parser: FrameParser; messages: [number, string][]; controls: [number, Buffer][] } {
  const messages: [number, string][] = [];
  const controls: [number, Buffer][] = [];
  const parser = new FrameParser({
    message: (op, data) => messages.push([op, data.toString('utf8')]),
    control: (op, data) => controls.push([op, Buffer.from(data)]),
  });
  return { parser, messages, controls };
}

describe('FrameParser', () => {
  const sizes = [0, 5, 125, 126, 1000, 65535, 65536, 70000];

  it.each(sizes)('parses a %i-byte text frame, whole or split at any point', (size) => {
    const text = 'x'.repeat(size);
    const frame = serverFrame(OP_TEXT, Buffer.from(text));
    const whole = collect();
    whole.parser.push(frame);
    expect(whole.messages).toEqual([[OP_TEXT, text]]);

    for (const cut of [1, 2, 3, 4, 9, 10, frame.length - 1].filter((c) => c > 0 && c < frame.length)) {
      const split = collect();
      split.parser.push(frame.subarray(0, cut));
      expect(split.messages).toEqual([]);
      split.parser.push(frame.subarray(cut));
      expect(split.messages).toEqual([[OP_TEXT, text]]);
      expect(split.parser.buffered).toBe(0);
    }
  });

  it('parses many frames fed one byte at a time, in order', () => {
    const texts = ['a', '{"push":{}}', 'y'.repeat(300), ''];
    const stream = Buffer.concat(texts.map((t) => serverFrame(OP_TEXT, Buffer.from(t))));
    const { parser, messages } = collect();
    for (let i = 0; i < stream.length; i++) parser.push(stream.subarray(i, i + 1));
    expect(messages.map(([, t]) => t)).toEqual(texts);
  });

  it('parses several frames in one chunk', () => {
    const { parser, messages } = collect();
    parser.push(Buffer.concat([serverFrame(OP_TEXT, Buffer.from('one')), serverFrame(OP_BINARY, Buffer.from('two')), serverFrame(OP_TEXT, Buffer.from('three'))]));
    expect(messages).toEqual([
      [OP_TEXT, 'one'],
      [OP_BINARY, 'two'],
      [OP_TEXT, 'three'],
    ]);
  });

  it('does not keep a view into a chunk the caller may reuse', () => {
    const { parser, messages } = collect();
    const frame = serverFrame(OP_TEXT, Buffer.from('hello world'));
    const chunk = Buffer.from(frame.subarray(0, 7));
    parser.push(chunk);
    chunk.fill(0); // the caller's read buffer gets overwritten by the next read
    parser.push(frame.subarray(7));
    expect(messages).toEqual([[OP_TEXT, 'hello world']]);
  });

  it('joins fragments and passes control frames between them', () => {
    const { parser, messages, controls } = collect();
    parser.push(serverFrame(OP_TEXT, Buffer.from('hel'), false));
    parser.push(serverFrame(OP_PING, Buffer.from('p')));
    parser.push(serverFrame(OP_CONTINUATION, Buffer.from('lo '), false));
    parser.push(serverFrame(OP_CONTINUATION, Buffer.from('there'), true));
    expect(messages).toEqual([[OP_TEXT, 'hello there']]);
    expect(controls).toEqual([[OP_PING, Buffer.from('p')]]);
  });

  it('unmasks a masked frame', () => {
    const { parser, messages } = collect();
    parser.push(serverFrame(OP_TEXT, Buffer.from('masked text'), true, [1, 2, 3, 250]));
    expect(messages).toEqual([[OP_TEXT, 'masked text']]);
  });

  it('reports a close frame with its code', () => {
    const { parser, controls } = collect();
    parser.push(serverFrame(OP_CLOSE, Buffer.from([0x0b, 0xbb, 0x61])));
    expect(controls[0][0]).toBe(OP_CLOSE);
    expect(closeCode(controls[0][1])).toBe(3003);
    expect(closeCode(Buffer.alloc(0))).toBe(1005);
  });

  it('rejects broken streams', () => {
    expect(() => collect().parser.push(serverFrame(OP_CONTINUATION, Buffer.from('x')))).toThrow(FrameParseError);
    expect(() => collect().parser.push(serverFrame(OP_PING, Buffer.alloc(126)))).toThrow(FrameParseError);
    expect(() => collect().parser.push(serverFrame(0x3, Buffer.from('x')))).toThrow(/unknown opcode 3/);
    const p = collect().parser;
    p.push(serverFrame(OP_TEXT, Buffer.from('a'), false));
    expect(() => p.push(serverFrame(OP_TEXT, Buffer.from('b')))).toThrow(/before the fragmented one ended/);
  });
});

describe('encodeClientFrame', () => {
  it.each([0, 1, 125, 126, 65535, 65536])('builds a masked %i-byte frame the parser reads back', (size) => {
    const payload = Buffer.alloc(size, 'z');
    const frame = encodeClientFrame(OP_TEXT, payload);
    expect(frame[0]).toBe(0x80 | OP_TEXT);
    expect(frame[1] & 0x80).toBe(0x80); // clients must mask
    const { parser, messages } = collect();
    parser.push(frame);
    expect(messages).toEqual([[OP_TEXT, payload.toString()]]);
  });

  it('builds a close frame with a code', () => {
    const { parser, controls } = collect();
    parser.push(encodeClientClose(1000));
    expect(closeCode(controls[0][1])).toBe(1000);
  });
});
