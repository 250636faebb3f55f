import { channelKeys, channelOfPubSub, idempotencyKey, redisPubSubChannel, shardOf } from './redis_keys';

/** Reference FNV-1a over Buffer's UTF-8 encoding. */
function reference(channel: string, shards: number): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(channel, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0) % shards;
}

describe('redis keys', () => {
  it('gives every key of a channel the same hash tag and inverts the pub/sub name', () => {
    const keys = channelKeys('news:{x}', 'app');
    expect(keys).toEqual({ meta: 'app:{news:{x}}:m', history: 'app:{news:{x}}:h', pubsub: 'app:{news:{x}}' });
    expect(idempotencyKey('news', 'sb', 'k1')).toBe('sb:{news}:i:k1');
    expect(redisPubSubChannel('a b')).toBe('sb:{a b}');
    for (const ch of ['', 'a', '{}', 'x}y{', '日本 😀']) {
      expect(channelOfPubSub(redisPubSubChannel(ch, 'p:q'), 'p:q')).toBe(ch);
    }
  });

  it('shards by FNV-1a of the UTF-8 name', () => {
    const names = ['', 'a', 'news', 'é', '日本語', '😀x', 'x\ud800y', 'chat:room:42'];
    for (let i = 0; i < 200; i++) names.push(`ch${i}`);
    for (const name of names) expect(shardOf(name, 7)).toBe(reference(name, 7));
    expect(shardOf('anything', 1)).toBe(0);
    // FNV-1a of "a" is 0xe40c292c.
    expect(shardOf('a', 2 ** 32 - 1)).toBe(0xe40c292c % (2 ** 32 - 1));
  });
});
