// Tests of flag, environment and config-file parsing, their precedence, and the errors bad input produces.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNamespaceOptions } from '@switchboard/gateway';
import { ConfigError, loadConfig, type Config } from './config';
import { parseDurationMs, parseSeconds } from './values';

// Created at load time: the test tables below write their files while jest collects them.
const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes a temp file and returns its path; the extension picks JSON or YAML. */
function file(extension: string, text: string): string {
  const path = join(dir, `config-${++fileCount}.${extension}`);
  writeFileSync(path, text);
  return path;
}

function run(argv: string[], env: NodeJS.ProcessEnv = {}): { config: Config; warnings: string[] } {
  const result = loadConfig(argv, env);
  if (result.action !== 'run') throw new Error(`expected a run, got ${result.action}`);
  return result;
}

function configOf(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  return run(argv, env).config;
}

function configError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaSpki = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rsaPkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ecSpki = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ecP384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('defaults', () => {
  it('runs standalone on 0.0.0.0:8000 with the memory engine and no auth', () => {
    const { config, warnings } = run([]);
    expect(config).toEqual({
      role: 'standalone',
      host: '0.0.0.0',
      port: 8000,
      redis: [],
      auth: { hmacSecret: undefined, publicKeys: [], insecure: false },
      apiKey: undefined,
      channels: { without_namespace: { ...defaultNamespaceOptions }, namespaces: {} },
      logLevel: 'info',
      allowUwsFallback: false,
      nodeName: undefined,
      shutdownGraceMs: 25000,
      positionCheckIntervalMs: 10000,
      presenceTtlMs: 60000,
      docPartitions: 16,
      docLeaseMs: 10000,
      docWaitReplicas: 0,
      limits: { maxConnections: 0, maxChannelsPerConnection: 128, maxMessageSize: 65536, commandsPerSecond: 100, commandBurst: 200, maxBackpressure: 4194304 },
      configFile: undefined,
      pusherApps: [],
      dev: false,
      admin: undefined,
    });
    expect(warnings).toEqual([expect.stringContaining('no client can connect')]);
  });

  it.each([
    [['standalone'], 'standalone'],
    [['gateway', '--redis', 'redis://127.0.0.1:7000'], 'gateway'],
    [['worker', '--redis', 'redis://127.0.0.1:7000'], 'worker'],
  ])('%j runs the role %s', (argv, role) => {
    expect(configOf(argv).role).toBe(role);
  });
});

describe('each setting as a flag and as an environment variable', () => {
  const keyPath = file('pem', rsaSpki);
  // [flag, env variable, text, what the config holds]; roles that need Redis get it from the row when relevant.
  const rows: [string, string, string, (config: Config) => unknown, unknown][] = [
    ['--port', 'SWITCHBOARD_PORT', '9100', (c) => c.port, 9100],
    ['--host', 'SWITCHBOARD_HOST', '127.0.0.1', (c) => c.host, '127.0.0.1'],
    ['--token-hmac-secret', 'SWITCHBOARD_TOKEN_HMAC_SECRET', 's3cret', (c) => c.auth.hmacSecret, 's3cret'],
    ['--token-public-key', 'SWITCHBOARD_TOKEN_PUBLIC_KEY', rsaSpki, (c) => c.auth.publicKeys, [rsaSpki]],
    ['--token-public-key', 'SWITCHBOARD_TOKEN_PUBLIC_KEY', keyPath, (c) => c.auth.publicKeys, [rsaSpki]],
    ['--token-public-key', 'SWITCHBOARD_TOKEN_PUBLIC_KEY', ecSpki, (c) => c.auth.publicKeys, [ecSpki]],
    ['--api-key', 'SWITCHBOARD_API_KEY', 'k', (c) => c.apiKey, 'k'],
    ['--insecure', 'SWITCHBOARD_INSECURE', 'true', (c) => c.auth.insecure, true],
    ['--log-level', 'SWITCHBOARD_LOG_LEVEL', 'debug', (c) => c.logLevel, 'debug'],
    ['--log-level', 'SWITCHBOARD_LOG_LEVEL', 'none', (c) => c.logLevel, 'silent'],
    ['--allow-uws-fallback', 'SWITCHBOARD_ALLOW_UWS_FALLBACK', 'true', (c) => c.allowUwsFallback, true],
    ['--dev', 'SWITCHBOARD_DEV', 'true', (c) => c.auth.insecure, true],
    ['--node-name', 'SWITCHBOARD_NODE_NAME', 'gw-1', (c) => c.nodeName, 'gw-1'],
    ['--shutdown-grace', 'SWITCHBOARD_SHUTDOWN_GRACE', '10', (c) => c.shutdownGraceMs, 10000],
    ['--shutdown-grace', 'SWITCHBOARD_SHUTDOWN_GRACE', '1m30s', (c) => c.shutdownGraceMs, 90000],
    ['--shutdown-grace', 'SWITCHBOARD_SHUTDOWN_GRACE', '500ms', (c) => c.shutdownGraceMs, 500],
    [
      '--pusher-app',
      'SWITCHBOARD_PUSHER_APP',
      'app1:key1:se:cret',
      (c) => c.pusherApps.map((a) => [a.app.id, a.app.key, a.app.secret, a.namespace]),
      [['app1', 'key1', 'se:cret', undefined]],
    ],
  ];
  const isSwitch = (flag: string): boolean => ['--insecure', '--allow-uws-fallback', '--dev'].includes(flag);

  it.each(rows)('%s / %s %j', (flag, env, text, read, expected) => {
    const flagArgs = isSwitch(flag) ? [flag] : [flag, text];
    expect(read(configOf(flagArgs))).toEqual(expected);
    expect(read(configOf([`${flag}=${text}`]))).toEqual(expected);
    expect(read(configOf([], { [env]: text }))).toEqual(expected);
  });

  it('--doc-wait-replicas / SWITCHBOARD_DOC_WAIT_REPLICAS takes a whole number', () => {
    expect(configOf(['worker', '--redis', 'redis://h:1', '--doc-wait-replicas', '1']).docWaitReplicas).toBe(1);
    expect(configOf(['worker', '--redis', 'redis://h:1'], { SWITCHBOARD_DOC_WAIT_REPLICAS: '2' }).docWaitReplicas).toBe(2);
    expect(() => configOf(['worker', '--redis', 'redis://h:1', '--doc-wait-replicas', 'one'])).toThrow(/^--doc-wait-replicas: expected a whole number of at least 0, got "one"$/);
  });

  it('--redis / SWITCHBOARD_REDIS_URL takes comma-separated shards', () => {
    const urls = 'redis://127.0.0.1:7000, rediss://user:pw@redis.example:6380/2';
    const expected = ['redis://127.0.0.1:7000', 'rediss://user:pw@redis.example:6380/2'];
    expect(configOf(['gateway', '--redis', urls]).redis).toEqual(expected);
    expect(configOf(['gateway', `--redis=${urls}`]).redis).toEqual(expected);
    expect(configOf(['gateway'], { SWITCHBOARD_REDIS_URL: urls }).redis).toEqual(expected);
  });

  it('--redis takes a Redis Cluster address as one, for gateways and workers', () => {
    expect(configOf(['gateway', '--redis', 'redis+cluster://h1:7000,h2:7001?addr=h3:7002']).redis).toEqual(['redis+cluster://h1:7000,h2:7001?addr=h3:7002']);
    expect(configOf(['worker', '--redis', 'rediss+cluster://u:p@h1:7000']).redis).toEqual(['rediss+cluster://u:p@h1:7000']);
  });

  it('--redis takes Sentinel addresses in Centrifugo\'s forms, alone or as shards', () => {
    const sentinel = 'redis+sentinel://:pw@s1:26379,s2:26380?sentinel_master_name=mymaster&sentinel_password=x';
    expect(configOf(['gateway', '--redis', sentinel]).redis).toEqual([sentinel]);
    const twoGroups = `${sentinel},redis+sentinel://s3?sentinel_master_name=other&addr=s4:26379`;
    expect(configOf(['worker', '--redis', twoGroups]).redis).toEqual([sentinel, 'redis+sentinel://s3?sentinel_master_name=other&addr=s4:26379']);
  });

  it('--config / SWITCHBOARD_CONFIG names the file', () => {
    const path = file('yaml', 'http_api:\n  key: from-file\n');
    expect(configOf(['--config', path])).toMatchObject({ apiKey: 'from-file', configFile: path });
    expect(configOf([], { SWITCHBOARD_CONFIG: path })).toMatchObject({ apiKey: 'from-file', configFile: path });
  });

  it.each([
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
    ['TRUE', true],
  ])('boolean variables accept %s', (text, expected) => {
    expect(configOf([], { SWITCHBOARD_INSECURE: text }).auth.insecure).toBe(expected);
    expect(configOf([`--insecure=${text}`]).auth.insecure).toBe(expected);
  });

  it('treats an empty variable as unset', () => {
    expect(configOf([], { SWITCHBOARD_PORT: '', SWITCHBOARD_REDIS_URL: '' })).toMatchObject({ port: 8000, redis: [] });
  });

  it('turns a PKCS#1 RSA key into SPKI and reads literal \\n in a variable', () => {
    expect(configOf(['--token-public-key', rsaPkcs1]).auth.publicKeys).toEqual([rsaSpki]);
    const escaped = ecSpki.trim().replace(/\n/g, '\\n');
    expect(configOf([], { SWITCHBOARD_TOKEN_PUBLIC_KEY: escaped }).auth.publicKeys).toEqual([ecSpki]);
  });

  it('lets the last of a repeated flag win and takes the role anywhere', () => {
    expect(configOf(['--port', '1', '--port', '2'])).toMatchObject({ port: 2 });
    expect(configOf(['--redis', 'redis://h:1', 'gateway'])).toMatchObject({ role: 'gateway' });
  });
});

describe('precedence: flags over environment over file over defaults', () => {
  const path = file('yaml', 'http_server:\n  port: 7000\n  address: 10.0.0.1\nlog:\n  level: warn\n');
  it.each([
    [[], {}, 7000],
    [[], { SWITCHBOARD_PORT: '7001' }, 7001],
    [['--port', '7002'], { SWITCHBOARD_PORT: '7001' }, 7002],
  ] as [string[], NodeJS.ProcessEnv, number][])('flags %j env %j → port %d', (argv, env, port) => {
    const config = configOf(['--config', path, ...argv], env);
    expect(config.port).toBe(port);
    expect(config.host).toBe('10.0.0.1');
    expect(config.logLevel).toBe('warn');
  });

  it('replaces the file token keys with the flag key', () => {
    const path = file('json', JSON.stringify({ client: { token: { rsa_public_key: rsaSpki, ecdsa_public_key: ecSpki } } }));
    expect(configOf(['--config', path]).auth.publicKeys).toEqual([rsaSpki, ecSpki]);
    expect(configOf(['--config', path, '--token-public-key', ecSpki]).auth.publicKeys).toEqual([ecSpki]);
  });

  it('lets a flag turn off what the file turns on', () => {
    const path = file('yaml', 'client:\n  insecure: true\n');
    expect(configOf(['--config', path]).auth.insecure).toBe(true);
    expect(configOf(['--config', path, '--insecure=false']).auth.insecure).toBe(false);
  });
});

describe('config file', () => {
  const yaml = `
client:
  insecure: false
  token:
    hmac_secret_key: yaml-secret
    rsa_public_key: |
${rsaSpki.trim().replace(/^/gm, '      ')}
http_api:
  key: yaml-api-key
log:
  level: debug
channel:
  without_namespace:
    presence: true
    history_size: 10
    history_ttl: 300s
  namespaces:
    - name: chat
      join_leave: true
      force_push_join_leave: true
      history_size: 50
      history_ttl: 1h30m
      force_recovery: true
      allow_subscribe_for_client: true
      allow_publish_for_subscriber: true
    - name: docs.v1
      documents: true
      history_size: 1000
      history_ttl: 86400
`;
  const expected = {
    auth: { hmacSecret: 'yaml-secret', publicKeys: [rsaSpki], insecure: false },
    apiKey: 'yaml-api-key',
    logLevel: 'debug',
    channels: {
      without_namespace: { ...defaultNamespaceOptions, presence: true, history_size: 10, history_ttl: 300 },
      namespaces: {
        chat: {
          ...defaultNamespaceOptions,
          join_leave: true,
          force_push_join_leave: true,
          history_size: 50,
          history_ttl: 5400,
          force_recovery: true,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
        },
        'docs.v1': { ...defaultNamespaceOptions, documents: true, history_size: 1000, history_ttl: 86400 },
      },
    },
  };

  it('reads YAML with Centrifugo v6 names', () => {
    const { config, warnings } = run(['--config', file('yaml', yaml)]);
    expect(config).toMatchObject(expected);
    expect(warnings).toEqual([]);
  });

  it('reads the same config as JSON', () => {
    const json = {
      client: { insecure: false, token: { hmac_secret_key: 'yaml-secret', rsa_public_key: rsaSpki } },
      http_api: { key: 'yaml-api-key' },
      log: { level: 'debug' },
      channel: {
        without_namespace: { presence: true, history_size: 10, history_ttl: '300s' },
        namespaces: [
          {
            name: 'chat',
            join_leave: true,
            force_push_join_leave: true,
            history_size: 50,
            history_ttl: '1h30m',
            force_recovery: true,
            allow_subscribe_for_client: true,
            allow_publish_for_subscriber: true,
          },
          { name: 'docs.v1', documents: true, history_size: 1000, history_ttl: 86400 },
        ],
      },
    };
    expect(configOf(['--config', file('json', JSON.stringify(json))])).toMatchObject(expected);
  });

  it('reads a public key from a file path', () => {
    const keyPath = file('pem', ecSpki);
    const path = file('yaml', `client:\n  token:\n    ecdsa_public_key: ${keyPath}\n`);
    expect(configOf(['--config', path]).auth.publicKeys).toEqual([ecSpki]);
  });

  it('treats an empty file, empty sections and empty strings as unset', () => {
    expect(configOf(['--config', file('yaml', '')]).channels.namespaces).toEqual({});
    const config = configOf(['--config', file('yaml', 'client:\nchannel:\nhttp_api:\n  key: ""\n')]);
    expect(config.apiKey).toBeUndefined();
  });

  it('reads allowed_delta_types and allow_tags_filter, and refuses a delta type other than fossil', () => {
    const path = file('json', JSON.stringify({ channel: { namespaces: [{ name: 'd', allowed_delta_types: ['fossil'], allow_tags_filter: true }] } }));
    const options = configOf(['--config', path, '--insecure']).channels.namespaces.d;
    expect(options.allowed_delta_types).toEqual(['fossil']);
    expect(options.allow_tags_filter).toBe(true);
    expect(configOf(['--insecure']).channels.without_namespace.allowed_delta_types).toEqual([]);
    const bad = file('json', JSON.stringify({ channel: { namespaces: [{ name: 'd', allowed_delta_types: ['xdelta'] }] } }));
    expect(configError(['--config', bad, '--insecure'])).toContain('unknown delta type "xdelta"');
    const notList = file('json', JSON.stringify({ channel: { namespaces: [{ name: 'd', allowed_delta_types: 'fossil' }] } }));
    expect(configError(['--config', notList, '--insecure'])).toContain('must be a list');
  });

  it('reads delta_publish, false by default, and refuses a non-boolean', () => {
    const path = file('yaml', 'channel:\n  namespaces:\n    - name: d\n      allowed_delta_types: [fossil]\n      delta_publish: true\n    - name: e\n');
    const { namespaces, without_namespace } = configOf(['--config', path, '--insecure']).channels;
    expect(namespaces.d.delta_publish).toBe(true);
    expect(namespaces.e.delta_publish).toBe(false);
    expect(without_namespace.delta_publish).toBe(false);
    const bad = file('json', JSON.stringify({ channel: { namespaces: [{ name: 'd', delta_publish: 'yes' }] } }));
    expect(configError(['--config', bad, '--insecure'])).toContain('delta_publish');
  });

  it('names every unknown key in one warning and carries on', () => {
    const path = file(
      'yaml',
      [
        'consumers:',
        '  - name: kafka',
        'client:',
        '  allowed_origins: ["*"]',
        '  token:',
        '    audience: x',
        'channel:',
        '  without_namespace:',
        '    keep_latest_publication: true',
        '  namespaces:',
        '    - name: a',
        '      channel_regex: "^a$"',
        '      presence: true',
      ].join('\n'),
    );
    const { config, warnings } = run(['--config', path, '--insecure']);
    expect(warnings).toEqual([
      `config file ${path}: ignoring keys Switchboard does not know: consumers, client.allowed_origins, client.token.audience, ` +
        'channel.without_namespace.keep_latest_publication, channel.namespaces[0].channel_regex',
    ]);
    expect(config.channels.namespaces.a.presence).toBe(true);
  });
});

describe('config file: pusher apps', () => {
  it('reads apps with limits and a namespace, and warns about keys nobody defines', () => {
    const path = file(
      'yaml',
      'channel:\n  namespaces:\n    - name: pusher\n      presence: true\npusher:\n  apps:\n    - id: 1\n      key: k\n      secret: s\n      namespace: pusher\n      max_event_payload_in_kb: 20\n      colour: red\n',
    );
    const { config, warnings } = run(['--config', path]);
    expect(config.pusherApps).toHaveLength(1);
    const [{ app, namespace }] = config.pusherApps;
    expect([app.id, app.key, app.secret, namespace, app.limits.max_event_payload_in_kb]).toEqual(['1', 'k', 's', 'pusher', 20]);
    expect(warnings).toEqual(expect.arrayContaining([expect.stringContaining('pusher.apps[0].colour')]));
  });

  it('adds the flag app to the file apps', () => {
    const path = file('yaml', 'pusher:\n  apps:\n    - {id: a, key: ka, secret: s}\n');
    expect(configOf(['--config', path, '--pusher-app', 'b:kb:t']).pusherApps.map((a) => a.app.key)).toEqual(['ka', 'kb']);
  });

  it('gives the worker no apps (it has no client port)', () => {
    expect(configOf(['worker', '--redis', 'redis://h:1'], { SWITCHBOARD_PUSHER_APP: 'a:k:s' }).pusherApps).toEqual([]);
  });
});

describe('config file: engine (Centrifugo v6 names)', () => {
  const redisOf = (text: string, role = 'gateway'): string[] => configOf([role, '--config', file('yaml', text)]).redis;

  it('reads engine.redis.address as one address or a list of shards, URL or host:port', () => {
    expect(redisOf('engine:\n  type: redis\n  redis:\n    address: redis://r1:6379\n')).toEqual(['redis://r1:6379']);
    expect(redisOf('engine:\n  redis:\n    address: [r1:6379, r2:6380]\n    password: "p@ss"\n    db: 2\n', 'worker')).toEqual([
      'redis://:p%40ss@r1:6379/2',
      'redis://:p%40ss@r2:6380/2',
    ]);
  });

  it('reads cluster_address and sentinel_address into the matching URL forms', () => {
    expect(redisOf('engine:\n  type: redis\n  redis:\n    cluster_address: [c1:7000, c2:7001]\n    user: app\n    password: pw\n    tls:\n      enabled: true\n')).toEqual([
      'rediss+cluster://app:pw@c1:7000,c2:7001',
    ]);
    const sentinel = redisOf(
      'engine:\n  type: redis\n  redis:\n    sentinel_address: [s1:26379, s2:26379]\n    sentinel_master_name: mymaster\n    sentinel_password: "s&p"\n',
    );
    expect(sentinel).toEqual(['redis+sentinel://s1:26379,s2:26379?sentinel_master_name=mymaster&sentinel_password=s%26p']);
  });

  it('lets --redis and SWITCHBOARD_REDIS_URL override the file, and type memory means no Redis', () => {
    const path = file('yaml', 'engine:\n  redis:\n    address: r1:6379\n');
    expect(configOf(['gateway', '--config', path, '--redis', 'redis://other:1']).redis).toEqual(['redis://other:1']);
    expect(configOf(['gateway', '--config', path], { SWITCHBOARD_REDIS_URL: 'redis://env:2' }).redis).toEqual(['redis://env:2']);
    expect(configOf(['--config', file('yaml', 'engine:\n  type: memory\n')]).redis).toEqual([]);
    // Centrifugo's default address when the type is redis and no address is given.
    expect(redisOf('engine:\n  type: redis\n')).toEqual(['redis://127.0.0.1:6379']);
    expect(redisOf('engine:\n  redis:\n    password: x\n')).toEqual(['redis://:x@127.0.0.1:6379']);
  });

  it('names unknown engine keys in the warning', () => {
    const { warnings } = run(['gateway', '--config', file('yaml', 'engine:\n  redis:\n    address: r1:6379\n    prefix: app\n    io_timeout: 4s\n')]);
    expect(warnings[0]).toMatch(/ignoring keys Switchboard does not know: engine\.redis\.prefix, engine\.redis\.io_timeout$/);
  });

  const bad: [string, string, RegExp][] = [
    ['an unknown engine type', 'engine:\n  type: nats\n', /: engine\.type: expected "memory" or "redis", got "nats"$/],
    ['two kinds of address', 'engine:\n  redis:\n    address: a:1\n    cluster_address: [b:2]\n', /: engine\.redis: give one of address and cluster_address, not both$/],
    ['a sentinel without its master name', 'engine:\n  redis:\n    sentinel_address: [s:26379]\n', /: engine\.redis\.sentinel_master_name: required with sentinel_address$/],
    ['a master name without sentinels', 'engine:\n  redis:\n    address: a:1\n    sentinel_master_name: m\n', /: engine\.redis\.sentinel_master_name: only used with sentinel_address$/],
    ['a URL among cluster seeds', 'engine:\n  redis:\n    cluster_address: ["redis://u:pw@c:1"]\n', /: engine\.redis\.cluster_address: expected host:port, got "redis:\/\/u:pw@c:1"/],
    ['a database on a cluster', 'engine:\n  redis:\n    cluster_address: [c:1]\n    db: 3\n', /: engine\.redis\.db: Redis Cluster has only database 0$/],
    ['credentials beside a URL', 'engine:\n  redis:\n    address: redis://a:1\n    password: x\n', /: engine\.redis\.address: a URL carries its own credentials/],
    ['a bad port, password masked', 'engine:\n  redis:\n    address: a:99999\n    password: secret\n', /: engine\.redis\.address: redis:\/\/:\*\*\*@a:99999: port "99999" is not a port number$/],
    ['a list item not a string', 'engine:\n  redis:\n    address: [a:1, 7]\n', /: engine\.redis\.address\[1\]: expected a string, got 7$/],
    ['an empty list', 'engine:\n  redis:\n    cluster_address: []\n', /: engine\.redis\.cluster_address: expected host:port addresses, got a list$/],
    ['a negative db', 'engine:\n  redis:\n    address: a:1\n    db: -1\n', /: engine\.redis\.db: expected a non-negative integer, got -1$/],
    ['tls not a boolean', 'engine:\n  redis:\n    address: a:1\n    tls:\n      enabled: "yes"\n', /: engine\.redis\.tls\.enabled: expected true or false/],
  ];
  it.each(bad)('refuses %s', (_what, text, message) => {
    expect(configError(['gateway', '--config', file('yaml', text)])).toMatch(message);
  });
});

describe('durations', () => {
  it.each([
    ['0', 0],
    ['300s', 300_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['2h45m30s', 9_930_000],
    ['1500us', 1.5],
  ])('parses %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBeCloseTo(ms);
  });

  it.each(['', '5', 's', '5x', '-5s', '5 s', '1h 30m', 'h1'])('rejects %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it.each([
    [300, 300],
    ['300', 300],
    ['300s', 300],
    ['5m', 300],
  ] as [unknown, number][])('history_ttl %j is %d seconds', (value, seconds) => {
    expect(parseSeconds(value, 'x', { wholeSeconds: true })).toBe(seconds);
  });
});

describe('dev mode', () => {
  it('makes standalone insecure and lets clients do everything, with history on the default namespace', () => {
    const path = file('yaml', 'channel:\n  namespaces:\n    - name: chat\n');
    const { config, warnings } = run(['standalone', '--dev', '--config', path]);
    const open = {
      allow_subscribe_for_client: true,
      allow_publish_for_client: true,
      allow_history_for_client: true,
      allow_presence_for_client: true,
    };
    expect(config.auth.insecure).toBe(true);
    expect(config.channels.without_namespace).toEqual({ ...defaultNamespaceOptions, ...open, history_size: 100, history_ttl: 300 });
    expect(config.channels.namespaces.chat).toEqual({ ...defaultNamespaceOptions, ...open });
    expect(warnings).toEqual([expect.stringMatching(/dev mode.*anonymous.*publish.*production/)]);
  });

  it('keeps the history the file gives the default namespace', () => {
    const path = file('yaml', 'channel:\n  without_namespace:\n    history_size: 0\n');
    expect(configOf(['--dev', '--config', path]).channels.without_namespace.history_size).toBe(0);
  });

  it('adds the namespaces the demo page uses (chat with presence and history, doc with documents) unless the file has them', () => {
    const { namespaces } = configOf(['--dev']).channels;
    expect(namespaces.chat).toMatchObject({ presence: true, join_leave: true, history_size: 100, history_ttl: 300, allow_publish_for_client: true });
    expect(namespaces.doc).toMatchObject({ documents: true, history_size: 100, allow_publish_for_client: true });
    const path = file('yaml', 'channel:\n  namespaces:\n    - name: doc\n');
    expect(configOf(['--dev', '--config', path]).channels.namespaces.doc.documents).toBe(false);
    expect(configOf([]).channels.namespaces).toEqual({});
  });

  it('runs on a gateway too, and keeps tokens required when a token key is set', () => {
    const gateway = run(['gateway', '--redis', 'redis://h:1', '--dev']);
    expect(gateway.config).toMatchObject({ dev: true, auth: { insecure: true } });
    expect(gateway.config.channels.namespaces.chat.presence).toBe(true);
    const tokens = run(['--dev', '--token-hmac-secret', 's']);
    expect(tokens.config).toMatchObject({ dev: true, auth: { insecure: false, hmacSecret: 's' } });
    expect(tokens.warnings).toEqual([expect.stringMatching(/dev mode: anyone may get a connection token from \/demo\/token.*production/)]);
    expect(configOf(['--dev', '--token-hmac-secret', 's', '--insecure']).auth.insecure).toBe(true);
  });

  it('warns about missing tokens everywhere but standalone --dev and worker', () => {
    expect(run(['--dev']).warnings.join()).not.toContain('no client can connect');
    expect(run(['--insecure']).warnings).toEqual([]);
    expect(run(['--token-hmac-secret', 's']).warnings).toEqual([]);
    expect(run(['worker', '--redis', 'redis://h:1']).warnings).toEqual([]);
    expect(run(['gateway', '--redis', 'redis://h:1']).warnings).toEqual([expect.stringContaining('no client can connect')]);
  });
});

describe('console (admin)', () => {
  it('is off by default', () => {
    expect(configOf([]).admin).toBeUndefined();
  });

  it.each([
    ['flags', ['--admin', '--admin-password', 'pw', '--admin-secret', 'sec'], {}],
    ['environment', [], { SWITCHBOARD_ADMIN: 'true', SWITCHBOARD_ADMIN_PASSWORD: 'pw', SWITCHBOARD_ADMIN_SECRET: 'sec' }],
    ['config file', ['--config', file('yaml', 'admin:\n  enabled: true\n  password: pw\n  secret: sec\n')], {}],
    ['config file and environment', ['--config', file('json', '{"admin": {"enabled": true}}')], { SWITCHBOARD_ADMIN_PASSWORD: 'pw', SWITCHBOARD_ADMIN_SECRET: 'sec' }],
  ] as [string, string[], NodeJS.ProcessEnv][])('is enabled with its password and secret from %s', (_from, argv, env) => {
    const { config, warnings } = run(['gateway', '--redis', 'redis://h:1', '--token-hmac-secret', 't', ...argv], env);
    expect(config.admin).toEqual({ password: 'pw', secret: 'sec' });
    expect(warnings).toEqual([]);
  });

  it('stays off without admin.enabled / --admin, and says so when a password or secret is set', () => {
    const { config, warnings } = run(['--insecure', '--admin-password', 'pw', '--admin-secret', 'sec']);
    expect(config.admin).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/console is off .* enable it with --admin/)]);
    expect(configOf(['--admin=false', '--admin-password', 'pw', '--admin-secret', 'sec']).admin).toBeUndefined();
  });

  it('lets a flag override the file, and names Centrifugo admin keys it does not use', () => {
    const path = file('yaml', 'admin:\n  enabled: true\n  password: from-file\n  secret: sec\n  web_path: /tmp/web\n');
    const { config, warnings } = run(['--config', path, '--admin-password', 'from-flag']);
    expect(config.admin).toEqual({ password: 'from-flag', secret: 'sec' });
    expect(warnings.join()).toContain('admin.web_path');
  });

  it('gives the worker none (it serves no console)', () => {
    expect(configOf(['worker', '--redis', 'redis://h:1', '--admin', '--admin-password', 'pw', '--admin-secret', 'sec']).admin).toBeUndefined();
  });
});

describe('help and version', () => {
  it.each([['--help'], ['-h'], ['gateway', '--bogus', '--help']])('%j prints usage', (...argv) => {
    const result = loadConfig(argv, {});
    expect(result.action).toBe('help');
    if (result.action === 'help') {
      for (const flag of ['--port', '--redis', '--token-public-key', '--shutdown-grace', 'SWITCHBOARD_CONFIG']) {
        expect(result.text).toContain(flag);
      }
    }
  });

  it('--version prints the package version', () => {
    expect(loadConfig(['--version'], {})).toEqual({ action: 'version', text: expect.stringMatching(/^switchboard \d+\.\d+\.\d+\n$/) });
  });
});

describe('bad input', () => {
  const yaml = (text: string): string[] => ['--config', file('yaml', text)];
  const keyFile = (pem: string): string => file('pem', pem);
  // [what, argv, env, the message must match]
  const cases: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    ['unknown flag', ['--prot', '80'], {}, /^unknown flag --prot /],
    ['unknown short flag', ['-p', '80'], {}, /^unknown flag -p /],
    ['unknown role', ['server'], {}, /^unknown role "server": expected standalone, gateway, worker$/],
    ['two roles', ['gateway', 'worker'], {}, /^unexpected argument "worker"/],
    ['a worker without Redis', ['worker'], {}, /^the worker role needs --redis/],
    ['zero document partitions', ['--doc-partitions', '0'], {}, /^--doc-partitions: expected a whole number from 1 to 4096, got "0"$/],
    ['fractional document partitions', ['--doc-partitions', '2.5'], {}, /^--doc-partitions: expected a whole number/],
    ['a zero document lease', ['--doc-lease', '0'], {}, /^--doc-lease: expected more than 0 seconds/],
    ['a negative connection limit', ['--max-connections', '-1'], {}, /^--max-connections: expected a whole number of at least 0, got "-1"$/],
    ['a tiny message size', ['--max-message-size', '10'], {}, /^--max-message-size: expected a whole number of at least 1024/],
    ['a non-numeric command rate', [], { SWITCHBOARD_COMMANDS_PER_SECOND: 'fast' }, /^SWITCHBOARD_COMMANDS_PER_SECOND: expected a whole number of at least 1, got "fast"$/],
    ['flag without value', ['--port'], {}, /^--port needs a value/],
    ['flag followed by a flag', ['--host', '--port', '1'], {}, /^--host needs a value/],
    ['port not a number', ['--port', 'http'], {}, /^--port: expected a port number from 0 to 65535, got "http"$/],
    ['port out of range', ['--port=65536'], {}, /^--port: expected a port number/],
    ['port from env', [], { SWITCHBOARD_PORT: '-1' }, /^SWITCHBOARD_PORT: expected a port number/],
    ['empty flag value', ['--api-key='], {}, /^--api-key: expected a non-empty value$/],
    ['bad boolean env', [], { SWITCHBOARD_INSECURE: 'yes' }, /^SWITCHBOARD_INSECURE: expected true, false, 1 or 0, got "yes"$/],
    ['bad boolean flag', ['--dev=on'], {}, /^--dev: expected true, false, 1 or 0/],
    ['bad log level', ['--log-level', 'verbose'], {}, /^--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"$/],
    ['redis not a URL', ['gateway', '--redis', 'localhost:6379'], {}, /^--redis: localhost:6379: unknown scheme; expected redis:\/\/\[user:password@\]host:port/],
    ['redis wrong protocol', ['gateway', '--redis', 'http://h:1'], {}, /^--redis: http:\/\/h:1: unknown scheme/],
    ['redis one bad shard', [], { SWITCHBOARD_REDIS_URL: 'redis://a:1,nope' }, /^SWITCHBOARD_REDIS_URL: redis:\/\/a:1,nope: one host per redis:\/\/ URL/],
    ['redis empty list', ['gateway', '--redis', ','], {}, /^--redis: no Redis address given/],
    ['redis bad port, password not echoed', ['gateway', '--redis', 'redis://u:secret@h:99999'], {}, /^--redis: redis:\/\/u:\*\*\*@h:99999: port "99999" is not a port number$/],
    ['sentinel without a master name', ['gateway', '--redis', 'redis+sentinel://h:26379'], {}, /^--redis: .*"sentinel_master_name" is required/],
    ['an unknown URL parameter', ['gateway', '--redis', 'redis://h:1?timeout=5'], {}, /^--redis: .*unknown parameter "timeout"/],
    ['gateway without redis', ['gateway'], {}, /gateway role needs --redis.*standalone/],
    ['standalone with redis', ['--redis', 'redis://h:1'], {}, /standalone runs the in-memory engine/],
    ['dev on the worker', ['worker', '--redis', 'redis://h:1', '--dev'], {}, /^--dev \/ SWITCHBOARD_DEV is for the standalone and gateway roles, not worker/],
    ['console without its secret', ['--admin', '--admin-password', 'pw'], {}, /^the console is enabled .* but --admin-secret is not set/],
    ['console without its password', [], { SWITCHBOARD_ADMIN: '1', SWITCHBOARD_ADMIN_SECRET: 's' }, /^the console is enabled .* but --admin-password is not set/],
    ['console with neither', yaml('admin:\n  enabled: true\n'), {}, /^the console is enabled .* but --admin-password and --admin-secret are not set/],
    ['console secret equal to the token secret', ['--admin', '--admin-password', 'pw', '--admin-secret', 's', '--token-hmac-secret', 's'], {}, /^--admin-secret must differ from --token-hmac-secret/],
    ['admin.enabled not a boolean', yaml('admin:\n  enabled: "yes"\n'), {}, /: admin\.enabled: expected true or false, got "yes"$/],
    ['shutdown grace zero', ['--shutdown-grace', '0'], {}, /^--shutdown-grace: expected more than 0 seconds/],
    ['shutdown grace junk', [], { SWITCHBOARD_SHUTDOWN_GRACE: 'soon' }, /^SWITCHBOARD_SHUTDOWN_GRACE: expected a number of seconds/],
    ['public key garbage', ['--token-public-key', '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'], {}, /^--token-public-key: not a valid PEM public key/],
    ['public key missing file', ['--token-public-key', '/nonexistent/key.pem'], {}, /^--token-public-key: expected PEM text or the path of a PEM file; cannot read "\/nonexistent\/key.pem"/],
    ['public key on P-384', ['--token-public-key', ecP384], {}, /^--token-public-key: expected an RSA or EC P-256 public key, got an EC key on secp384r1$/],
    ['private key', ['--token-public-key', rsaPrivate], {}, /^--token-public-key: this is a private key/],
    ['config file missing', ['--config', '/nonexistent/switchboard.yaml'], {}, /^cannot read config file \/nonexistent\/switchboard.yaml: ENOENT/],
    ['invalid YAML', yaml('channel:\n  namespaces: [\n'), {}, /\.yaml: invalid YAML: [^\n]+$/],
    ['duplicate YAML key', yaml('log:\n  level: info\nlog:\n  level: debug\n'), {}, /invalid YAML: Map keys must be unique at line 3, column 1$/],
    ['invalid JSON', ['--config', file('json', '{"client": }')], {}, /\.json: invalid JSON: /],
    ['top level not a mapping', yaml('- a\n- b\n'), {}, /: the top level: expected a mapping of keys to values, got a list$/],
    ['section not a mapping', yaml('client: true\n'), {}, /: client: expected a mapping of keys to values, got true$/],
    ['string for a boolean', yaml('client:\n  insecure: "true"\n'), {}, /: client\.insecure: expected true or false, got "true"$/],
    ['yes for a boolean', yaml('channel:\n  without_namespace:\n    presence: yes\n'), {}, /: channel\.without_namespace\.presence: expected true or false, got "yes"$/],
    ['number for a string', yaml('http_api:\n  key: 42\n'), {}, /: http_api\.key: expected a string, got 42$/],
    ['file port out of range', yaml('http_server:\n  port: 70000\n'), {}, /: http_server\.port: expected a port number from 0 to 65535, got 70000$/],
    ['file log level', yaml('log:\n  level: loud\n'), {}, /: log\.level: expected one of trace/],
    ['file rsa key is EC', yaml(`client:\n  token:\n    rsa_public_key: ${keyFile(ecSpki)}\n`), {}, /: client\.token\.rsa_public_key: expected an RSA public key, got an EC key on prime256v1$/],
    ['file ecdsa key is RSA', yaml(`client:\n  token:\n    ecdsa_public_key: ${keyFile(rsaSpki)}\n`), {}, /: client\.token\.ecdsa_public_key: expected an EC P-256 public key, got an RSA key$/],
    ['negative history_size', yaml('channel:\n  without_namespace:\n    history_size: -1\n'), {}, /: channel\.without_namespace\.history_size: expected a non-negative integer, got -1$/],
    ['fractional history_size', yaml('channel:\n  without_namespace:\n    history_size: 1.5\n'), {}, /history_size: expected a non-negative integer, got 1.5$/],
    ['history_size without ttl', yaml('channel:\n  namespaces:\n    - name: a\n      history_size: 10\n'), {}, /: channel\.namespaces\[0\]: history_size 10 needs a history_ttl above 0/],
    ['history_ttl without size', yaml('channel:\n  without_namespace:\n    history_ttl: 60s\n'), {}, /: channel\.without_namespace: history_ttl needs a history_size above 0$/],
    ['force_recovery without history', yaml('channel:\n  without_namespace:\n    force_recovery: true\n'), {}, /force_recovery needs history/],
    ['bad duration', yaml('channel:\n  without_namespace:\n    history_size: 1\n    history_ttl: 5 minutes\n'), {}, /history_ttl: expected a whole number of seconds or a duration like "300s".*got "5 minutes"$/],
    ['sub-second history_ttl', yaml('channel:\n  without_namespace:\n    history_size: 1\n    history_ttl: 500ms\n'), {}, /history_ttl: expected a whole number of seconds.*got "500ms"$/],
    ['negative history_ttl', yaml('channel:\n  without_namespace:\n    history_size: 1\n    history_ttl: -5\n'), {}, /history_ttl: expected a whole number of seconds.*got -5$/],
    ['namespaces not a list', yaml('channel:\n  namespaces:\n    chat: {}\n'), {}, /: channel\.namespaces: expected a list of namespaces, got an object$/],
    ['namespace without name', yaml('channel:\n  namespaces:\n    - presence: true\n'), {}, /: channel\.namespaces\[0\]\.name: expected a namespace name .* got undefined$/],
    ['namespace bad name', yaml('channel:\n  namespaces:\n    - name: "chat:room"\n'), {}, /: channel\.namespaces\[0\]\.name: expected a namespace name .* got "chat:room"$/],
    ['namespace __proto__', yaml('channel:\n  namespaces:\n    - name: __proto__\n'), {}, /: channel\.namespaces\[0\]\.name: expected a namespace name .* got "__proto__"$/],
    ['namespace twice', yaml('channel:\n  namespaces:\n    - name: chat\n    - name: chat\n'), {}, /: channel\.namespaces\[1\]\.name: namespace "chat" is defined twice$/],
    ['pusher app flag without secret', ['--pusher-app', 'app1:key1'], {}, /^--pusher-app: expected ID:KEY:SECRET, got "app1:key1"$/],
    ['pusher app flag with an empty secret', [], { SWITCHBOARD_PUSHER_APP: 'app1:key1:' }, /^SWITCHBOARD_PUSHER_APP\.secret: expected a non-empty secret/],
    ['pusher app key with a slash', ['--pusher-app', 'app1:k/1:s'], {}, /^--pusher-app\.key: expected a non-empty string of at most 200 letters/],
    ['pusher apps not a list', yaml('pusher:\n  apps: {}\n'), {}, /: pusher\.apps: expected a list of apps, got an? object$/],
    ['pusher app without secret', yaml('pusher:\n  apps:\n    - id: a\n      key: k\n'), {}, /: pusher\.apps\[0\]\.secret: expected a string/],
    ['pusher app limit out of range', yaml('pusher:\n  apps:\n    - {id: a, key: k, secret: s, max_event_payload_in_kb: 0}\n'), {}, /: pusher\.apps\[0\]\.max_event_payload_in_kb: expected a positive number/],
    ['pusher app id twice', yaml('pusher:\n  apps:\n    - {id: a, key: k1, secret: s}\n    - {id: a, key: k2, secret: s}\n'), {}, /: pusher\.apps\[1\]\.id: "a" is already the id of pusher\.apps\[0\]$/],
    ['pusher app in file and flag', [...yaml('pusher:\n  apps:\n    - {id: a, key: k, secret: s}\n'), '--pusher-app', 'b:k:s'], {}, /^pusher apps .*\[1\]\.key: "k" is already the key of/],
    ['pusher app namespace unknown', yaml('pusher:\n  apps:\n    - {id: a, key: k, secret: s, namespace: chat}\n'), {}, /: pusher\.apps\[0\]\.namespace: no namespace "chat" in channel\.namespaces; define it there first$/],
    ['pusher app namespace with a colon', yaml('pusher:\n  apps:\n    - {id: a, key: k, secret: s, namespace: "a:b"}\n'), {}, /: pusher\.apps\[0\]\.namespace: expected a namespace name .* got "a:b"$/],
  ];

  it.each(cases)('%s', (_what, argv, env, message) => {
    expect(configError(argv, env)).toMatch(message);
  });

  it('puts the config file path in front of file errors', () => {
    const path = file('yaml', 'client:\n  insecure: 1\n');
    expect(configError(['--config', path])).toBe(`${path}: client.insecure: expected true or false, got 1`);
  });
});
