// Fuzz targets: each input decoder with a generator of hostile input and the property every answer must hold.
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import pino from 'pino';
import { decide, decodeFrame, decodeProtobufFrame, DocError, emptyDoc, methods, parseUpdate, type Decoded, type DocSnapshot } from '@switchboard/protocol';
import { MemoryBroker, MemoryDocStore } from '@switchboard/engine';
import { channelNameProblem, defaultChannelConfig, defaultNamespaceOptions, parsePusherEdgeAppFlag, startGateway, type Gateway } from '@switchboard/gateway';
import { ConfigError, parseConfigFile } from '@switchboard/server';
import { anyCodeUnits, interestingText, mutated } from './mutate';
import { protobufFrame } from './protobuf_frames';

/** A finding: the property an input broke. */
export class Finding extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Finding(what);
}

/** A rejection names what to change: a quoted field, or one of the nouns the decoders use for whole inputs. */
const NAMES_SOMETHING = /"[^"]*"|\b(id|method|command|JSON|body|channel|data|path|op|ops|value|base|key|levels|characters)\b/;

export interface Target {
  name: string;
  /** Starts what the property needs (a gateway, say); the returned function stops it. */
  setup?(): Promise<() => Promise<void>>;
  property(): fc.IRawProperty<unknown[], boolean>;
}

const seedFrames = [
  '{"id":1,"connect":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x","name":"js","version":"5.0.0","subs":{"chat:a":{"recover":true,"epoch":"e","offset":3}}}}',
  '{"id":2,"subscribe":{"channel":"chat:index","recover":true,"epoch":"xyz","offset":10,"positioned":true,"recoverable":true,"join_leave":true}}',
  '{"id":3,"publish":{"channel":"chat:index","data":{"text":"hello","n":[1,2,{"x":null}]}}}',
  '{"id":4,"history":{"channel":"chat:index","limit":10,"since":{"offset":2,"epoch":"e"},"reverse":true}}',
  '{"id":5,"presence":{"channel":"chat:index"}}\n{"id":6,"presence_stats":{"channel":"chat:index"}}',
  '{"id":7,"rpc":{"method":"doc.update","data":{"channel":"doc:a","base":3,"ops":[{"op":"set","path":"/a/b","value":1}],"key":"k"}}}',
  '{"id":8,"refresh":{"token":"t"}}\n{"id":9,"sub_refresh":{"channel":"chat:index","token":"t"}}',
  '{"send":{"data":{"x":1}}}',
  '{"id":10,"unsubscribe":{"channel":"chat:index"}}',
  '{}',
];

const fieldNames = ['channel', 'token', 'recover', 'epoch', 'offset', 'data', 'positioned', 'recoverable', 'join_leave', 'limit', 'since', 'reverse', 'method', 'subs', 'name', 'version', 'flag'];
const wildValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), interestingText, fc.constantFrom(-1, 1.5, 2 ** 53 + 2, Number.MAX_VALUE, '', '\ud800'));

/** A command built from the grammar: a known or unknown method, known field names with values of any type. */
const generatedCommand = fc
  .record({
    id: fc.oneof(fc.nat(), fc.constantFrom(-1, 0, 1.5, '1', null, 2 ** 53 + 2)),
    method: fc.oneof(fc.constantFrom(...methods), fc.constantFrom('nope', '__proto__', 'constructor', 'toString')),
    params: fc.oneof(fc.dictionary(fc.constantFrom(...fieldNames), wildValue, { maxKeys: 6 }), wildValue),
  })
  .map(({ id, method, params }) => JSON.stringify({ id, [method]: params }));

const frameText = fc.oneof(mutated(seedFrames), fc.array(generatedCommand, { minLength: 1, maxLength: 4 }).map((c) => c.join('\n')));

/** What both variants' decoders must hold: no error 100, every refusal says what to change, nothing after a fatal. */
function checkDecoded(items: Decoded[], input: string): void {
  items.forEach((item, i) => {
    if (item.kind === 'error') {
      check(item.error.code !== 100, `error 100 for ${input}`);
      check(NAMES_SOMETHING.test(item.error.message), `rejection names nothing: ${item.error.message}`);
    }
    if (item.kind === 'fatal') {
      check(NAMES_SOMETHING.test(item.reason), `fatal reason names nothing: ${item.reason}`);
      check(i === items.length - 1, `decoded on after a fatal command: ${input}`);
    }
    // A command's params travel on as JSON (publications, API calls): they must encode.
    if (item.kind === 'command') check(JSON.stringify(item.command.params) !== undefined, `params do not encode: ${input}`);
  });
}

export const frameTarget: Target = {
  name: 'frame',
  property: () =>
    fc.property(frameText, (text) => {
      checkDecoded(decodeFrame(text), JSON.stringify(text));
      return true;
    }),
};

export const protobufFrameTarget: Target = {
  name: 'protobuf-frame',
  property: () =>
    fc.property(protobufFrame, (frame) => {
      checkDecoded(decodeProtobufFrame(frame), Buffer.from(frame).toString('hex'));
      return true;
    }),
};

export const channelTarget: Target = {
  name: 'channel-name',
  property: () =>
    fc.property(anyCodeUnits, (name) => {
      const problem = channelNameProblem(name, 255);
      if (problem === undefined) {
        // One canonical string: what the permission check sees is what reaches Redis (UTF-8) and comes back.
        check(Buffer.from(name, 'utf8').toString('utf8') === name, `accepted a name that UTF-8 rewrites: ${JSON.stringify(name)}`);
        check(name.length <= 255, 'accepted an over-long name');
        check(!/[\u0000-\u001f\u007f]/.test(name), 'accepted a control character');
      } else {
        check(problem.startsWith('channel name'), `problem does not name the channel: ${problem}`);
      }
      return true;
    }),
};

const seedConfigs = [
  ['fuzz.yaml', 'client:\n  insecure: false\n  token:\n    hmac_secret_key: s\nhttp_api:\n  key: k\nhttp_server:\n  port: 8000\n  internal_port: 9000\nchannel:\n  without_namespace:\n    allow_subscribe_for_client: true\n  namespaces:\n    - name: chat\n      history_size: 10\n      history_ttl: 300s\n      presence: true\n      force_recovery: true\n    - name: doc\n      documents: true\n'],
  ['fuzz.json', '{"client":{"insecure":true},"log":{"level":"debug"},"channel":{"namespaces":[{"name":"a","history_size":5,"history_ttl":"60s","join_leave":true}]}}'],
] as const;

export const configTarget: Target = {
  name: 'config-file',
  property: () =>
    fc.property(fc.constantFrom(0, 1), mutated(seedConfigs.map(([, text]) => text)), (which, text) => {
      const file = seedConfigs[which][0];
      try {
        parseConfigFile(text, file);
      } catch (e) {
        check(e instanceof ConfigError, `not a ConfigError: ${(e as Error)?.stack ?? String(e)}`);
        check((e as Error).message.includes(file), `message does not name the file: ${(e as Error).message}`);
        check(!(e as Error).message.includes('\n'), `message is not one line: ${(e as Error).message}`);
      }
      return true;
    }),
};

const pointer = fc.oneof(
  fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c', '0', '1', '-', '~0', '~1', '__proto__'), interestingText), { minLength: 0, maxLength: 5 }).map((keys) => '/' + keys.join('/')),
  interestingText,
);
const rawOp = fc.record(
  { op: fc.oneof(fc.constantFrom('set', 'del', 'incr', 'add', 'remove', 'test'), interestingText), path: fc.oneof(pointer, wildValue), value: wildValue, extra: wildValue },
  { requiredKeys: ['op'] },
);
const rawUpdate = fc.record(
  {
    base: fc.oneof(fc.nat({ max: 6 }), fc.constantFrom(-1, 1.5, '1', null)),
    ops: fc.oneof(fc.array(rawOp, { maxLength: 6 }), wildValue),
    mode: fc.oneof(fc.constantFrom('merge', 'strict'), wildValue),
    key: fc.oneof(fc.string({ maxLength: 10 }), wildValue),
  },
  { requiredKeys: ['base', 'ops'] },
);

export const docTarget: Target = {
  name: 'doc-ops',
  property: () =>
    fc.property(fc.array(rawUpdate, { minLength: 1, maxLength: 8 }), (updates) => {
      // A document is built by the same updates in turn; every accepted one must merge or conflict, never throw.
      let doc: DocSnapshot = emptyDoc();
      for (const raw of updates) {
        let decision;
        try {
          decision = decide(doc, parseUpdate(raw));
        } catch (e) {
          check(e instanceof DocError, `not a DocError: ${(e as Error)?.stack ?? String(e)}`);
          check(NAMES_SOMETHING.test((e as Error).message), `rejection names nothing: ${(e as Error).message}`);
          continue;
        }
        if (decision.status !== 'conflict') {
          check(decision.doc.version === doc.version + 1, 'version did not advance by one');
          check(JSON.stringify(decision.doc.state) === decision.encoded, 'encoded state differs from the state');
          doc = decision.doc;
        }
      }
      return true;
    }),
};

const apiMethods = ['publish', 'broadcast', 'history', 'history_remove', 'presence', 'presence_stats', 'channels', 'info', 'unsubscribe', 'disconnect', 'doc_get', 'doc_update', 'nope'];
const seedBodies = [
  '{"channel":"chat:a","data":{"text":"hi"},"idempotency_key":"k1"}',
  '{"channels":["chat:a","chat:b"],"data":[1,2,3]}',
  '{"channel":"chat:a","limit":10,"since":{"offset":1,"epoch":"e"},"reverse":true}',
  '{"pattern":"chat:*"}',
  '{"user":"u1","client":"c","disconnect":{"code":3500,"reason":"bye"}}',
  '{"channel":"doc:a","base":0,"ops":[{"op":"set","path":"/x","value":1}],"key":"k"}',
  '{}',
];

let apiPort = 0;
const API_KEY = 'fuzz-key';

export const apiTarget: Target = {
  name: 'http-api',
  async setup() {
    const broker = new MemoryBroker({ node: 'fuzz' });
    await broker.start();
    const channels = defaultChannelConfig();
    channels.without_namespace = { ...defaultNamespaceOptions, history_size: 10, history_ttl: 60, presence: true };
    channels.namespaces.chat = { ...defaultNamespaceOptions, history_size: 10, history_ttl: 60, presence: true };
    channels.namespaces.doc = { ...defaultNamespaceOptions, documents: true, history_size: 10, history_ttl: 60 };
    const gateway: Gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      internalPort: 0,
      broker,
      docs: new MemoryDocStore(broker),
      channels,
      auth: { insecure: false },
      apiKey: API_KEY,
      nodeId: 'fuzz',
      logger: pino({ level: 'silent' }),
    });
    apiPort = gateway.internalPort ?? 0;
    return async () => {
      await gateway.shutdown(0);
      await broker.close();
    };
  },
  property: () =>
    fc.asyncProperty(fc.constantFrom(...apiMethods), fc.oneof(mutated(seedBodies), fc.dictionary(fc.constantFrom('channel', 'channels', 'data', 'limit', 'since', 'user', 'pattern', 'base', 'ops'), wildValue).map((o) => JSON.stringify(o))), async (method, body) => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body });
      const text = await res.text();
      check([200, 400, 404, 413].includes(res.status), `status ${res.status} for ${method} ${JSON.stringify(body)}`);
      let reply: { error?: { code: number; message: string } };
      try {
        reply = JSON.parse(text);
      } catch {
        throw new Finding(`answer is not JSON: ${text}`);
      }
      if (reply.error) {
        check(reply.error.code !== 100, `error 100 for ${method} ${JSON.stringify(body)}: ${reply.error.message}`);
        check(NAMES_SOMETHING.test(reply.error.message), `rejection names nothing: ${reply.error.message}`);
      }
      return true;
    }),
};

const PUSHER_APP = { id: 'fuzz-app', key: 'fuzz-key', secret: 'fuzz-secret' };
let pusherPort = 0;

/** Percent-encodes any string; one that is not well-formed UTF-16 goes as its UTF-8 bytes (lone surrogates as U+FFFD). */
function pct(text: string): string {
  if (text.isWellFormed()) return encodeURIComponent(text);
  return [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}
/** Path segments as they may arrive: encoded names, and raw escapes that do not decode (bad UTF-8, a lone '%'). */
const rawSegment = (names: string[]) => fc.oneof(fc.oneof(fc.constantFrom(...names), interestingText).map(pct), fc.constantFrom('%', '%E0%A4', '%ED%A0%80', '%00', '%2F'));

/** The Pusher HTTP API's endpoints, with fuzzed names in their paths (percent-encoded as a client would send them). */
const pusherEndpoint = fc.oneof(
  fc.constant({ method: 'POST', rest: 'events' }),
  fc.constant({ method: 'POST', rest: 'batch_events' }),
  fc.constant({ method: 'GET', rest: 'channels' }),
  rawSegment(['presence-room', 'private-a', 'news', 'doc:a']).map((c) => ({ method: 'GET', rest: `channels/${c}` })),
  rawSegment(['presence-room', 'news']).map((c) => ({ method: 'GET', rest: `channels/${c}/users` })),
  rawSegment(['u1', '']).map((u) => ({ method: 'POST', rest: `users/${u}/terminate_connections` })),
  fc.record({ method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'), rest: fc.oneof(fc.constantFrom('', 'nope', 'channels/a/b/c', '..%2Fevents'), interestingText) }),
);

const seedPusherBodies = [
  '{"name":"ev","channel":"news","data":"{\\"x\\":1}"}',
  '{"name":"ev","channels":["news","presence-room","private-a"],"data":"text","socket_id":"123.456","info":"subscription_count,user_count"}',
  '{"batch":[{"channel":"news","name":"e","data":"1"},{"channel":"private-a","name":"e","data":"{}","socket_id":"1.2"}]}',
  '{"name":"ev","channel":"doc:a","data":"{}"}',
  '{}',
];
const pusherFields = ['name', 'channel', 'channels', 'data', 'socket_id', 'info', 'batch'];
const pusherBody = fc.oneof(
  mutated(seedPusherBodies),
  fc.dictionary(fc.constantFrom(...pusherFields), fc.oneof(wildValue, fc.array(wildValue, { maxLength: 12 })), { maxKeys: 5 }).map((o) => JSON.stringify(o)),
  fc.constant(''),
);
/** Extra query parameters (lower-case keys, as signed), beside the auth_* ones. */
const pusherQuery = fc.dictionary(fc.constantFrom('info', 'filter_by_prefix', 'auth_key', 'body_md5', 'x'), fc.oneof(fc.constantFrom('user_count', 'subscription_count', 'user_count,subscription_count', 'presence-', ''), interestingText), { maxKeys: 2 });

/** A request signed as the `pusher` libraries sign it: the signature covers METHOD, path and the sorted parameters. */
function signedPusherUrl(method: string, path: string, extra: Record<string, string>, body: string): string {
  const params: Record<string, string> = { ...extra, auth_key: PUSHER_APP.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body !== '') params.body_md5 = createHash('md5').update(body, 'utf8').digest('hex');
  const keys = Object.keys(params).sort();
  const signed = `${method}\n${path}\n${keys.map((k) => `${k}=${params[k]}`).join('&')}`;
  const signature = createHmac('sha256', PUSHER_APP.secret).update(signed, 'utf8').digest('hex');
  return `${path}?${keys.map((k) => `${k}=${pct(params[k])}`).join('&')}&auth_signature=${signature}`;
}

export const pusherApiTarget: Target = {
  name: 'pusher-api',
  async setup() {
    const broker = new MemoryBroker({ node: 'fuzz-pusher' });
    await broker.start();
    const channels = defaultChannelConfig();
    channels.without_namespace = { ...defaultNamespaceOptions, history_size: 10, history_ttl: 60, presence: true };
    channels.namespaces.doc = { ...defaultNamespaceOptions, documents: true, history_size: 10, history_ttl: 60 };
    const gateway: Gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      broker,
      docs: new MemoryDocStore(broker),
      channels,
      auth: { insecure: false },
      nodeId: 'fuzz-pusher',
      logger: pino({ level: 'silent' }),
      pusherApps: [parsePusherEdgeAppFlag(`${PUSHER_APP.id}:${PUSHER_APP.key}:${PUSHER_APP.secret}`, '--pusher-app')],
    });
    pusherPort = gateway.port;
    return async () => {
      await gateway.shutdown(0);
      await broker.close();
    };
  },
  property: () =>
    fc.asyncProperty(pusherEndpoint, pusherBody, pusherQuery, fc.constantFrom('signed', 'signed', 'signed', 'tampered', 'unsigned'), async (endpoint, rawBody, extra, signing) => {
      const body = endpoint.method === 'GET' ? '' : rawBody;
      const path = `/apps/${PUSHER_APP.id}/${endpoint.rest}`;
      let url = signing === 'unsigned' ? path : signedPusherUrl(endpoint.method, path, extra, body);
      if (signing === 'tampered') url = url.replace(/auth_signature=(.)/, (_, c: string) => `auth_signature=${c === '0' ? '1' : '0'}`);
      const res = await fetch(`http://127.0.0.1:${pusherPort}${url}`, { method: endpoint.method, body: endpoint.method === 'GET' ? undefined : body });
      const text = await res.text();
      const what = `${endpoint.method} ${url} ${JSON.stringify(body)}`;
      // A refusal is a client error with a message; never a server error, whatever arrives.
      check([200, 400, 401, 403, 404, 413].includes(res.status), `status ${res.status} for ${what}: ${text}`);
      if (signing !== 'signed') check(res.status === 401 || res.status === 400 || res.status === 404, `an unsigned or forged request got ${res.status}: ${what}`);
      if (res.status === 200) {
        try {
          JSON.parse(text);
        } catch {
          throw new Finding(`a 200 answer is not JSON: ${text} for ${what}`);
        }
      } else {
        check(text.length > 0 && !text.includes('\n'), `refusal without a one-line message: ${JSON.stringify(text)} for ${what}`);
      }
      return true;
    }),
};

export const targets: readonly Target[] = [frameTarget, protobufFrameTarget, channelTarget, configTarget, docTarget, apiTarget, pusherApiTarget];
