import { decodeDocReplies, encodeDocErrorReply, encodeDocReplies, encodeDocResultReply } from './docs_wire';

describe('document reply messages', () => {
  const applied = encodeDocResultReply('g1.a', '{"status":"applied","version":3}', false);
  const conflict = encodeDocResultReply('g1.b', '{"status":"conflict","version":4,"paths":["/x"],"state":{"x":1}}', true);
  const failed = encodeDocErrorReply('g1.c', { kind: 'doc', message: 'base ahead of the document' });

  it('a single reply travels as it is, and is read as one', () => {
    expect(encodeDocReplies([applied])).toBe(applied);
    expect(decodeDocReplies(applied)).toEqual([{ id: 'g1.a', result: { status: 'applied', version: 3 } }]);
  });

  it('several replies travel as one array and are read back in order', () => {
    const message = encodeDocReplies([applied, conflict, failed]);
    expect(message.startsWith('[')).toBe(true);
    expect(decodeDocReplies(message)).toEqual([
      { id: 'g1.a', result: { status: 'applied', version: 3 } },
      { id: 'g1.b', result: { status: 'conflict', version: 4, paths: ['/x'], state: '{"x":1}', duplicate: true } },
      { id: 'g1.c', error: { kind: 'doc', message: 'base ahead of the document' } },
    ]);
  });

  it.each([
    ['not JSON', 'oops'],
    ['an empty array', '[]'],
    ['an array with a reply lacking an id', `[${applied},{"result":{}}]`],
    ['a number', '7'],
  ])('refuses %s', (_, message) => {
    expect(() => decodeDocReplies(message)).toThrow();
  });
});
