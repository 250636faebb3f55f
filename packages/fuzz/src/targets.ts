// Fuzz targets: each input decoder with a generator of hostile input and the property every answer must hold.
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import pino from 'pino';
import WebSocket from 'ws';
import { decide, decodeFrame, decodeProtobufFrame, DocError, emptyDoc, methods, parseUpdate, type Decoded, type DocSnapshot } from '@switchboard/protocol';
import { MemoryBroker, MemoryDocStore } from '@switchboard/engine';
import {
  channelNameProblem,
  defaultChannelConfig,
  defaultNamespaceOptions,
  parsePusherEdgeAppFlag,
  parsePusherEdgeApps,
  startGateway,
  type Gateway,
  type GatewayOptions,
  type NamespaceOptions,
} from '@switchboard/gateway';
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

/**
 * A gateway on the memory engine for a target that talks to one: channels without a namespace (history, presence,
 * plus `open`), `chat` likewise and `doc` for documents; `options` adds what the target needs (API key, Pusher apps).
 */
async function memoryGateway(node: string, open: Partial<NamespaceOptions>, options: Partial<GatewayOptions>): Promise<{ gateway: Gateway; stop(): Promise<void> }> {
  const broker = new MemoryBroker({ node });
  await broker.start();
  const channels = defaultChannelConfig();
  const kept = { ...defaultNamespaceOptions, history_size: 10, history_ttl: 60 };
  channels.without_namespace = { ...kept, presence: true, ...open };
  channels.namespaces.chat = { ...kept, presence: true };
  channels.namespaces.doc = { ...kept, documents: true };
  const gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    broker,
    docs: new MemoryDocStore(broker),
    channels,
    auth: { insecure: false },
    nodeId: node,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  return {
    gateway,
    stop: async () => {
      await gateway.shutdown(0);
      await broker.close();
    },
  };
}

let apiPort = 0;
const API_KEY = 'fuzz-key';

export const apiTarget: Target = {
  name: 'http-api',
  async setup() {
    const { gateway, stop } = await memoryGateway('fuzz', {}, { internalPort: 0, apiKey: API_KEY });
    apiPort = gateway.internalPort ?? 0;
    return stop;
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
    const app = parsePusherEdgeAppFlag(`${PUSHER_APP.id}:${PUSHER_APP.key}:${PUSHER_APP.secret}`, '--pusher-app');
    const { gateway, stop } = await memoryGateway('fuzz-pusher', {}, { pusherApps: [app] });
    pusherPort = gateway.port;
    return stop;
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

let sessionPort = 0;

/**
 * One WebSocket conversation with a gateway: `open` and `message` drive it; it ends when `message` calls `done`
 * (the client then closes) or the gateway closes the connection, whose close code is returned. A gateway that does
 * neither within 5 s is a finding (`missing` says what did not come).
 */
async function converse(
  url: string,
  missing: string,
  what: string,
  talk: { open?(ws: WebSocket): void; message(ws: WebSocket, text: string, done: () => void): void },
): Promise<number | undefined> {
  const ws = new WebSocket(url);
  let closeCode: number | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Finding(`${missing} and no close within 5 s after ${what}`)), 5000);
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      closeCode = code;
      finish();
    });
    ws.on('open', () => talk.open?.(ws));
    ws.on('message', (data) =>
      talk.message(ws, data.toString(), () => {
        ws.close();
        finish();
      }),
    );
  });
  return closeCode;
}

/** One step of a Pusher client: a frame from the grammar or a mutation of a real one; `sign` asks for a valid auth. */
interface SessionStep {
  frame: string;
  /** Subscribe to `channel` with an auth the app's secret signed (over `channelData` when given). */
  signed?: { channel: string; channelData?: string };
}

const seedPusherFrames = [
  '{"event":"pusher:subscribe","data":{"channel":"news"}}',
  '{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"fuzz-key:00"}}',
  '{"event":"pusher:subscribe","data":{"channel":"presence-room","auth":"fuzz-key:00","channel_data":"{\\"user_id\\":\\"u1\\",\\"user_info\\":{\\"n\\":1}}"}}',
  '{"event":"pusher:unsubscribe","data":{"channel":"news"}}',
  '{"event":"pusher:signin","data":{"auth":"fuzz-key:00","user_data":"{\\"id\\":\\"u1\\"}"}}',
  '{"event":"client-typing","channel":"private-a","data":{"x":1}}',
  '{"event":"client-typing","channel":"presence-room","data":"text"}',
  '{"event":"pusher:ping","data":{}}',
];
const sessionChannel = fc.oneof(fc.constantFrom('news', 'private-a', 'presence-room', 'private-encrypted-x', '#server-to-user-u1', 'doc:a'), interestingText);
const channelData = fc.oneof(
  fc.record({ user_id: fc.oneof(fc.constantFrom('u1', 'u2'), wildValue), user_info: wildValue }, { requiredKeys: ['user_id'] }).map((o) => JSON.stringify(o)),
  interestingText,
);
const sessionStep: fc.Arbitrary<SessionStep> = fc.oneof(
  mutated(seedPusherFrames).map((frame) => ({ frame })),
  fc
    .record({ event: fc.oneof(fc.constantFrom('pusher:subscribe', 'pusher:unsubscribe', 'pusher:signin', 'pusher:ping', 'pusher:pong', 'client-x', 'pusher_internal:x', 'other'), interestingText), channel: sessionChannel, data: wildValue })
    .map((f) => ({ frame: JSON.stringify(f) })),
  fc.record({ channel: sessionChannel, channelData: fc.option(channelData, { nil: undefined }) }).map((signed) => ({ frame: '', signed })),
);

/**
 * A Pusher WebSocket session against a real gateway: connect, play the steps, then ping; everything the gateway
 * sends until the pong (or the close) is checked.
 */
async function playSession(steps: SessionStep[]): Promise<{ frames: string[]; closeCode: number | undefined }> {
  const frames: string[] = [];
  const closeCode = await converse(`ws://127.0.0.1:${sessionPort}/app/${PUSHER_APP.key}?protocol=7&client=js&version=8.4.0`, 'no pong', JSON.stringify(steps), {
    message(ws, text, done) {
      frames.push(text);
      if (frames.length === 1) {
        let socketId = '';
        try {
          socketId = JSON.parse(JSON.parse(text).data).socket_id;
        } catch {
          // Checked below with every other frame.
        }
        for (const step of steps) {
          if (!step.signed) {
            ws.send(step.frame);
            continue;
          }
          const { channel, channelData: cd } = step.signed;
          const signedText = cd === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${cd}`;
          const auth = `${PUSHER_APP.key}:${createHmac('sha256', PUSHER_APP.secret).update(signedText, 'utf8').digest('hex')}`;
          ws.send(JSON.stringify({ event: 'pusher:subscribe', data: cd === undefined ? { channel, auth } : { channel, auth, channel_data: cd } }));
        }
        ws.send('{"event":"pusher:ping","data":{}}');
      } else if (text.includes('"pusher:pong"')) {
        done();
      }
    },
  });
  return { frames, closeCode };
}

export const pusherSessionTarget: Target = {
  name: 'pusher-session',
  async setup() {
    // Small limits, so that generated frames reach them.
    const { apps } = parsePusherEdgeApps([{ ...PUSHER_APP, max_event_payload_in_kb: 1, max_presence_member_size_in_kb: 1, max_channel_name_length: 40, max_client_events_per_second: 1000 }]);
    const open = { join_leave: true, allow_subscribe_for_anonymous: true, allow_subscribe_for_client: true };
    const { gateway, stop } = await memoryGateway('fuzz-session', open, { pusherApps: apps });
    sessionPort = gateway.port;
    return stop;
  },
  property: () =>
    fc.asyncProperty(fc.array(sessionStep, { minLength: 1, maxLength: 8 }), async (steps) => {
      const { frames, closeCode } = await playSession(steps);
      const what = JSON.stringify(steps);
      check(frames.length > 0 && frames[0].includes('pusher:connection_established'), `no connection_established: ${JSON.stringify(frames[0])}`);
      for (const text of frames) {
        let frame: { event?: unknown; data?: unknown };
        try {
          frame = JSON.parse(text);
        } catch {
          throw new Finding(`a frame that is not JSON: ${text} after ${what}`);
        }
        check(typeof frame.event === 'string', `a frame without an event: ${text}`);
        if (frame.event === 'pusher:error') {
          const code = (frame.data as { code?: unknown } | null)?.code;
          check(code === null || (typeof code === 'number' && code >= 4000 && code <= 4301), `pusher:error with code ${String(code)}: ${text} after ${what}`);
        }
      }
      // The gateway closes a connection only with a Pusher close code (4000-4301), or normally; never 1006/1011.
      if (closeCode !== undefined) check(closeCode === 1000 || closeCode === 1005 || (closeCode >= 4000 && closeCode <= 4301), `closed with ${closeCode} after ${what}`);
      return true;
    }),
};

let clientPort = 0;
/** The id of the last command of a session: its reply (or a close) says the gateway answered everything before. */
const LAST_ID = 2_000_000_000;

/**
 * A Centrifugo JSON session against a real gateway in insecure mode (every permission passes, so commands reach
 * the channel core): a connect, up to 6 frames of the `frame` target's language, then one last command.
 */
async function playClientSession(frames: string[]): Promise<{ lines: string[]; closeCode: number | undefined }> {
  const lines: string[] = [];
  const closeCode = await converse(`ws://127.0.0.1:${clientPort}/connection/websocket`, 'no last reply', JSON.stringify(frames), {
    open(ws) {
      for (const frame of frames) ws.send(frame);
      ws.send(JSON.stringify({ id: LAST_ID, presence_stats: { channel: 'chat:index' } }));
    },
    message(_ws, text, done) {
      for (const line of text.split('\n')) {
        lines.push(line);
        if (line.includes(`"id":${LAST_ID}`)) done();
      }
    },
  });
  return { lines, closeCode };
}

const connectFrame = fc.oneof(
  fc.constant('{"id":1,"connect":{"name":"fuzz","version":"1"}}'),
  fc.constant('{"id":1,"connect":{"subs":{"chat:index":{"recover":true,"epoch":"x","offset":3}}}}'),
  mutated(['{"id":1,"connect":{"name":"js","subs":{"chat:a":{"recover":true,"epoch":"e","offset":1}},"data":{"x":1}}}']),
);

/** Mostly frames a session can carry on after (a mutated frame that is not JSON ends it with 3501 at once). */
const sessionFrame = fc.oneof(
  { arbitrary: fc.constantFrom(...seedFrames.slice(1)), weight: 2 },
  { arbitrary: generatedCommand, weight: 3 },
  { arbitrary: frameText, weight: 1 },
);

export const sessionTarget: Target = {
  name: 'client-session',
  async setup() {
    const { gateway, stop } = await memoryGateway('fuzz-session-c', { join_leave: true, force_recovery: true }, { auth: { insecure: true } });
    clientPort = gateway.port;
    return stop;
  },
  property: () =>
    fc.asyncProperty(connectFrame, fc.array(sessionFrame, { maxLength: 6 }), async (connect, rest) => {
      const frames = [connect, ...rest];
      const { lines, closeCode } = await playClientSession(frames);
      const what = JSON.stringify(frames);
      for (const line of lines) {
        if (line === '{}') continue; // a ping
        let reply: { error?: { code?: unknown; message?: unknown } };
        try {
          reply = JSON.parse(line);
        } catch {
          throw new Finding(`a line that is not JSON: ${line} after ${what}`);
        }
        check(typeof reply === 'object' && reply !== null && !Array.isArray(reply), `a line that is not an object: ${line}`);
        if (reply.error) {
          check(reply.error.code !== 100, `error 100 (internal) after ${what}: ${line}`);
          check(typeof reply.error.message === 'string' && NAMES_SOMETHING.test(reply.error.message), `rejection names nothing: ${line}`);
        }
      }
      // A gateway closes a connection with a Centrifugo disconnect code (3000-4999) or normally; never 1006/1011.
      if (closeCode !== undefined) check(closeCode === 1000 || closeCode === 1005 || (closeCode >= 3000 && closeCode <= 4999), `closed with ${closeCode} after ${what}`);
      return true;
    }),
};

export const targets: readonly Target[] = [frameTarget, protobufFrameTarget, channelTarget, configTarget, docTarget, apiTarget, pusherApiTarget, pusherSessionTarget, sessionTarget];
