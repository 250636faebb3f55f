import { parseRedisAddress, parseShardAddress, redactUrl, RedisAddressError, type RedisAddress } from './redis_url';

const shards = (a: RedisAddress) => (a.kind === 'shards' ? a.shards : []);

describe('parseRedisAddress', () => {
  it('reads a plain URL with credentials, db and TLS', () => {
    const [s] = shards(parseRedisAddress('rediss://user:p%40ss@redis.example:6380/2'));
    expect(s.connection).toEqual({ host: 'redis.example', port: 6380, username: 'user', password: 'p@ss', db: 2, tls: {} });
    expect(s.label).toBe('rediss://user:***@redis.example:6380/2');
    expect(shards(parseRedisAddress('redis://h'))[0].connection).toMatchObject({ host: 'h', port: 6379, db: 0 });
  });

  it('reads comma-separated URLs as client-side shards, in order', () => {
    const list = shards(parseRedisAddress('redis://a:1, redis://b:2,,rediss://c:3'));
    expect(list.map((s) => [s.url, s.connection.host, s.connection.port])).toEqual([
      ['redis://a:1', 'a', 1],
      ['redis://b:2', 'b', 2],
      ['rediss://c:3', 'c', 3],
    ]);
  });

  it('reads Sentinel in both of Centrifugo\'s forms', () => {
    const commaForm = shards(parseRedisAddress('redis+sentinel://:pw@s1:26379,s2?sentinel_master_name=mymaster&sentinel_password=spw&db=1'));
    expect(commaForm).toHaveLength(1);
    expect(commaForm[0].connection).toMatchObject({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      password: 'pw',
      sentinelPassword: 'spw',
      db: 1,
    });
    expect(commaForm[0].label).toBe('redis+sentinel://:***@s1:26379,s2?sentinel_master_name=mymaster&sentinel_password=***&db=1');
    const addrForm = shards(parseRedisAddress('redis+sentinel://s1:1?addr=s2:2&addr=s3:3&sentinel_master_name=m'));
    expect(addrForm[0].connection.sentinels).toEqual([
      { host: 's1', port: 1 },
      { host: 's2', port: 2 },
      { host: 's3', port: 3 },
    ]);
  });

  it('takes several Sentinel groups as shards', () => {
    const list = shards(parseRedisAddress('redis+sentinel://a:1,b:2?sentinel_master_name=x,redis+sentinel://c:3?sentinel_master_name=y'));
    expect(list.map((s) => s.connection.name)).toEqual(['x', 'y']);
    expect(list[0].connection.sentinels).toHaveLength(2);
  });

  it('reads a Redis Cluster from comma-separated or addr= seeds, IPv6 included', () => {
    const a = parseRedisAddress('redis+cluster://u:pw@h1:7000,h2:7001?addr=[::1]:7002');
    expect(a).toEqual({
      kind: 'cluster',
      cluster: {
        label: 'redis+cluster://u:***@h1:7000,h2:7001?addr=[::1]:7002',
        seeds: [
          { host: 'h1', port: 7000 },
          { host: 'h2', port: 7001 },
          { host: '::1', port: 7002 },
        ],
        username: 'u',
        password: 'pw',
        tls: false,
      },
    });
    expect(parseRedisAddress('rediss+cluster://h1:7000')).toMatchObject({ kind: 'cluster', cluster: { tls: true } });
  });

  it.each([
    ['', /no Redis address given/],
    ['localhost:6379', /unknown scheme/],
    ['http://h:1', /unknown scheme/],
    ['redis://', /no host/],
    ['redis://h:0', /port "0" is not a port number/],
    ['redis://h:abc', /port "abc" is not a port number/],
    ['redis://h:1/x', /database "x" is not a number/],
    ['redis://a:1,b:2', /one host per redis:\/\/ URL/],
    ['redis://h:1?timeout=3', /unknown parameter "timeout"/],
    ['redis://h:1#x', /no #fragment/],
    ['redis+sentinel://h:1', /"sentinel_master_name" is required/],
    ['redis+cluster://h:1/2', /only database 0/],
    ['redis+cluster://h:1?sentinel_master_name=x', /unknown parameter "sentinel_master_name"/],
    ['redis+cluster://h:1,redis://h:2', /cannot be combined/],
    ['redis://[::1:1', /no closing \]/],
    ['redis://u:%zz@h', /percent-encoding/],
  ])('refuses %j', (text, message) => {
    expect(() => parseRedisAddress(text)).toThrow(RedisAddressError);
    expect(() => parseRedisAddress(text)).toThrow(message);
  });

  it('never puts a password in an error message', () => {
    for (const text of ['redis://u:hunter2@h:0', 'redis+sentinel://:hunter2@h?sentinel_password=hunter2', 'redis://:hunter2@h:1?x=1']) {
      expect(() => parseRedisAddress(text)).toThrow(RedisAddressError);
      try {
        parseRedisAddress(text);
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2');
      }
    }
  });

  it('parseShardAddress takes one shard and refuses a cluster', () => {
    expect(parseShardAddress('redis://h:1').connection).toMatchObject({ host: 'h', port: 1 });
    expect(() => parseShardAddress('redis+cluster://h:1')).toThrow(/a shard is a redis:\/\//);
  });
});

describe('redactUrl', () => {
  it.each([
    ['redis://h:1', 'redis://h:1'],
    ['redis://:pw@h:1', 'redis://:***@h:1'],
    ['redis://user@h:1', 'redis://user@h:1'],
    ['redis://u:p@ss@h:1/0', 'redis://u:***@h:1/0'],
    ['redis+sentinel://h?sentinel_password=x&sentinel_master_name=m', 'redis+sentinel://h?sentinel_password=***&sentinel_master_name=m'],
    ['not a url', 'not a url'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});
