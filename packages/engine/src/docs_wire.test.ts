import { decodeDocReplies, decodeDocRequests, encodeDocErrorReply, encodeDocReplies, encodeDocRequest, encodeDocRequestBatch, encodeDocResultReply } from './docs_wire';

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

describe('document request entries', () => {
  const request = { id: 'g1.a', channel: 'doc:"quoted"\u00e9', update: '{"base":0,"ops":[{"op":"set","path":"/a","value":"x"}]}', historySize: 100, historyTtlSeconds: 60 };

  it('a batch entry carries its requests in order, updates embedded as JSON', () => {
    const fields = encodeDocRequestBatch({ node: 'gw1', timeoutMs: 5000, requests: [request, { ...request, id: 'g1.b', historySize: 1 }] });
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual(['n', 't', 'q']);
    expect(decodeDocRequests(fields)).toEqual([
      { ...request, update: JSON.parse(request.update), node: 'gw1', timeoutMs: 5000, batched: true },
      { ...request, id: 'g1.b', historySize: 1, update: JSON.parse(request.update), node: 'gw1', timeoutMs: 5000, batched: true },
    ]);
  });

  it('a single entry, as earlier gateways write them, is read as one request to answer on its own', () => {
    const fields = encodeDocRequest({ ...request, node: 'gw0', timeoutMs: 2000 });
    expect(decodeDocRequests(fields)).toEqual([{ ...request, update: JSON.parse(request.update), node: 'gw0', timeoutMs: 2000, batched: false }]);
  });

  const batch = (q: string, extra: string[] = []): string[] => ['n', 'gw1', 't', '5000', 'q', q, ...extra];
  it.each([
    ['a batch that is not JSON', batch('[{"r":')],
    ['an empty batch', batch('[]')],
    ['a batch that is not an array', batch('{"r":"a","c":"d","u":{}}')],
    ['a request without an id', batch('[{"c":"d","hs":1,"ht":1,"u":{}}]')],
    ['a request without an update', batch('[{"r":"a","c":"d","hs":1,"ht":1}]')],
    ['a negative history size', batch('[{"r":"a","c":"d","hs":-1,"ht":1,"u":{}}]')],
    ['a fractional history TTL', batch('[{"r":"a","c":"d","hs":1,"ht":0.5,"u":{}}]')],
    ['a batch without its node', ['t', '5000', 'q', '[{"r":"a","c":"d","hs":1,"ht":1,"u":{}}]']],
    ['a batch with a bad timeout', ['n', 'gw1', 't', 'soon', 'q', '[{"r":"a","c":"d","hs":1,"ht":1,"u":{}}]']],
    ['a single entry whose update is not JSON', encodeDocRequest({ ...request, update: '{', node: 'gw0', timeoutMs: 1 })],
    ['a single entry without a channel', ['r', 'a', 'u', '{}', 'n', 'gw', 't', '1', 'hs', '1', 'ht', '1']],
    ['an entry no gateway wrote', ['junk', '1']],
  ])('refuses %s', (_, fields) => {
    expect(() => decodeDocRequests(fields)).toThrow(/document request/);
  });
});
