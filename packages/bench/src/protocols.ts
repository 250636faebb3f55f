// The client protocols the load generator speaks: Centrifugo v2 JSON (Switchboard and the minimal relay) and
// Protobuf (Switchboard), Socket.IO v5 over Engine.IO v4 (websocket transport only) and Pusher Channels protocol 7
// (Switchboard's Pusher edge and soketi). Setup uses JSON.parse; received payloads do not.
import { connectCommand, PONG_COMMAND, PROTOBUF_SUBPROTOCOL, subscribeCommand, walkReplies, type ReplyVisitor } from './centrifugo_protobuf';
import { ESCAPED_KEYS, PLAIN_KEYS, type PayloadKeys } from './payload';
import { PUSHER_EVENT } from './publish_api';
import { RawWebSocket } from './raw_ws';
import { OP_BINARY } from './ws_frames';

export type Proto = 'centrifugo' | 'centrifugo-protobuf' | 'socketio' | 'pusher';

/**
 * How each protocol carries a payload: as JSON (Protobuf: the published JSON's bytes in a binary message), or
 * (Pusher) as a JSON string whose quotes are escaped.
 */
export const PAYLOAD_KEYS: Record<Proto, PayloadKeys> = { centrifugo: PLAIN_KEYS, 'centrifugo-protobuf': PLAIN_KEYS, socketio: PLAIN_KEYS, pusher: ESCAPED_KEYS };

export interface ClientTarget {
  host: string;
  port: number;
  channels: string[];
  /** Connection JWT (Centrifugo) or handshake auth token (Socket.IO); omitted when the server takes none. */
  token?: string;
  /** The Pusher app key (`/app/{key}`). */
  appKey?: string;
}

export interface ClientHandlers {
  /** Scans a received message for payloads (hot path) and returns how many it found. */
  payloads(data: Buffer): number;
  /** The connection closed after setup; `code` is the WebSocket close code (1006 without one). */
  closed(code: number, reason: string): void;
}

export interface ProtoClient {
  close(): void;
  readonly isOpen: boolean;
}

const CENTRIFUGO_PATH = '/connection/websocket';
const SOCKETIO_PATH = '/socket.io/?EIO=4&transport=websocket';
const PING_LINE = Buffer.from('{}', 'latin1');
const NL_PING = Buffer.from('\n{}', 'latin1');
const CHAR_OPEN = 0x7b; // {
const CHAR_2 = 0x32;
const CHAR_4 = 0x34;

/** Opens a connection, authenticates and subscribes to every channel; resolves once all replies are in. */
export function openClient(proto: Proto, target: ClientTarget, handlers: ClientHandlers, timeoutMs = 15000): Promise<ProtoClient> {
  switch (proto) {
    case 'centrifugo':
      return openCentrifugo(target, handlers, timeoutMs);
    case 'centrifugo-protobuf':
      return openCentrifugoProtobuf(target, handlers, timeoutMs);
    case 'socketio':
      return openSocketIo(target, handlers, timeoutMs);
    case 'pusher':
      return openPusher(target, handlers, timeoutMs);
  }
}

/** Waits for replies matched by id during setup, and fails them all when the socket closes first. */
class Setup {
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  done = false;
  private readonly timer: NodeJS.Timeout;
  failure: Error | undefined;

  constructor(timeoutMs: number, what: string) {
    this.timer = setTimeout(() => this.fail(new Error(`${what} not finished within ${timeoutMs} ms`)), timeoutMs);
  }

  expect(id: number): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  answer(id: number, value: unknown, error?: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (error) w.reject(error);
    else w.resolve(value);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  finish(): void {
    this.done = true;
    clearTimeout(this.timer);
  }
}

async function openCentrifugo(target: ClientTarget, handlers: ClientHandlers, timeoutMs: number): Promise<ProtoClient> {
  const setup = new Setup(timeoutMs, `connect and subscribe on port ${target.port}`);
  let ws: RawWebSocket | undefined;
  const slowPath = (data: Buffer): void => {
    for (const line of data.toString('utf8').split('\n')) {
      if (line === '') continue;
      if (line === '{}') {
        ws?.send('{}'); // the answer to a server ping
        continue;
      }
      if (line.startsWith('{"push"')) continue; // publications were counted by the scan
      let msg: { id?: number; error?: { code: number; message: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        setup.fail(new Error(`unparseable line from the server: ${line.slice(0, 200)}`));
        continue;
      }
      if (typeof msg.id === 'number') {
        setup.answer(msg.id, msg, msg.error ? new Error(`error ${msg.error.code}: ${msg.error.message}`) : undefined);
      }
    }
  };
  ws = await RawWebSocket.open(target.host, target.port, CENTRIFUGO_PATH, {
    message: (data) => {
      // Hot path: a frame of pushes only. Anything else (replies, pings) also takes the slow path.
      const n = handlers.payloads(data);
      if (n > 0 && data[0] === CHAR_OPEN && data.indexOf(NL_PING) === -1 && !data.subarray(0, 2).equals(PING_LINE)) return;
      slowPath(data);
    },
    close: (code, reason) => {
      if (!setup.done) setup.fail(new Error(`closed during setup: ${code} ${reason}`));
      else handlers.closed(code, reason);
    },
  });
  const socket = ws;
  return handshake(setup, socket, async () => {
    const connected = setup.expect(1);
    socket.send(JSON.stringify({ id: 1, connect: target.token ? { token: target.token } : {} }));
    await connected;
    if (target.channels.length > 0) {
      const replies = target.channels.map((_, i) => setup.expect(i + 2));
      socket.send(target.channels.map((channel, i) => JSON.stringify({ id: i + 2, subscribe: { channel } })).join('\n'));
      await Promise.all(replies);
    }
  });
}

const CONNECT_ID = 1;

/**
 * Centrifugo's Protobuf variant, negotiated as the SDK's Protobuf build does (subprotocol `centrifuge-protobuf`):
 * length-delimited Commands and Replies in binary messages. Every message is scanned for payloads, then its Replies
 * are walked for pings and setup replies.
 */
async function openCentrifugoProtobuf(target: ClientTarget, handlers: ClientHandlers, timeoutMs: number): Promise<ProtoClient> {
  const setup = new Setup(timeoutMs, `Protobuf connect and subscribe on port ${target.port}`);
  let ws: RawWebSocket | undefined;
  /** The connect result's `pong`: the SDK answers pings only when the server asked for it. */
  let pong = false;
  const replies: ReplyVisitor = {
    ping: () => {
      if (pong) ws?.sendBinary(PONG_COMMAND);
    },
    reply: (r) => {
      if (r.id === CONNECT_ID && !r.error) pong = r.pong;
      setup.answer(r.id, r, r.error ? new Error(`error ${r.error.code}: ${r.error.message}`) : undefined);
    },
  };
  ws = await RawWebSocket.open(
    target.host,
    target.port,
    CENTRIFUGO_PATH,
    {
      message: (data, opcode) => {
        // A text message is not this protocol: throwing drops the connection (1002), which the step counts.
        if (opcode !== OP_BINARY) throw new Error('a text message on a Protobuf connection');
        handlers.payloads(data); // hot path: the publications' JSON bytes are found where they lie
        walkReplies(data, replies);
      },
      close: (code, reason) => {
        if (!setup.done) setup.fail(new Error(`closed during setup: ${code} ${reason}`));
        else handlers.closed(code, reason);
      },
    },
    { subprotocol: PROTOBUF_SUBPROTOCOL },
  );
  const socket = ws;
  return handshake(setup, socket, async () => {
    const connected = setup.expect(CONNECT_ID);
    socket.sendBinary(connectCommand(CONNECT_ID, target.token));
    await connected;
    if (target.channels.length > 0) {
      const subscribed = target.channels.map((_, i) => setup.expect(CONNECT_ID + 1 + i));
      socket.sendBinary(Buffer.concat(target.channels.map((channel, i) => subscribeCommand(CONNECT_ID + 1 + i, channel))));
      await Promise.all(subscribed);
    }
  });
}

async function openSocketIo(target: ClientTarget, handlers: ClientHandlers, timeoutMs: number): Promise<ProtoClient> {
  const setup = new Setup(timeoutMs, `Socket.IO handshake and subscribe on port ${target.port}`);
  let ws: RawWebSocket | undefined;
  const OPEN = 0;
  const CONNECTED = -1;
  const slowPath = (text: string): void => {
    if (text === '2') {
      ws?.send('3'); // Engine.IO ping → pong
    } else if (text.startsWith('0{')) {
      setup.answer(OPEN, text);
    } else if (text.startsWith('40')) {
      setup.answer(CONNECTED, text);
    } else if (text.startsWith('44')) {
      setup.answer(CONNECTED, text, new Error(`Socket.IO connect refused: ${text}`));
    } else if (text.startsWith('43')) {
      const bracket = text.indexOf('[');
      setup.answer(Number(text.slice(2, bracket)), text);
    } else if (text === '1' || text.startsWith('41')) {
      ws?.close();
    }
  };
  const opened = setup.expect(OPEN);
  const connected = setup.expect(CONNECTED);
  ws = await RawWebSocket.open(target.host, target.port, SOCKETIO_PATH, {
    message: (data) => {
      // Hot path: an event packet `42[...]` holding a payload.
      if (data[0] === CHAR_4 && data[1] === CHAR_2 && handlers.payloads(data) > 0) return;
      if (data.length === 1 && data[0] === CHAR_2) {
        ws?.send('3');
        return;
      }
      slowPath(data.toString('utf8'));
    },
    close: (code, reason) => {
      if (!setup.done) setup.fail(new Error(`closed during setup: ${code} ${reason}`));
      else handlers.closed(code, reason);
    },
  });
  const socket = ws;
  return handshake(setup, socket, async () => {
    await opened;
    socket.send(target.token ? `40${JSON.stringify({ token: target.token })}` : '40');
    await connected;
    const acks = target.channels.map((channel, i) => {
      const ack = setup.expect(i + 1);
      socket.send(`42${i + 1}${JSON.stringify(['sub', channel])}`);
      return ack;
    });
    await Promise.all(acks);
  });
}

/** The query pusher-js 8.4 sends; both servers check `protocol` (7 is the only one they speak). */
const PUSHER_QUERY = '?protocol=7&client=js&version=8.4.0';
/** The opening bytes of a channel event published by the benchmark: `{"event":"p",...}`. */
const PUSHER_EVENT_START = Buffer.from(`{"event":${JSON.stringify(PUSHER_EVENT)},`, 'latin1');
const PUSHER_PONG = '{"event":"pusher:pong","data":{}}';

interface PusherFrame {
  event?: unknown;
  channel?: unknown;
  data?: unknown;
}

function startsWith(data: Buffer, prefix: Buffer): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

async function openPusher(target: ClientTarget, handlers: ClientHandlers, timeoutMs: number): Promise<ProtoClient> {
  if (target.appKey === undefined) throw new Error('a Pusher client needs the app key');
  const setup = new Setup(timeoutMs, `Pusher connect and subscribe on port ${target.port}`);
  let ws: RawWebSocket | undefined;
  const ESTABLISHED = 0;
  // Setup waits on ids: 0 for connection_established, i + 1 for the subscription of channels[i].
  const ids = new Map(target.channels.map((channel, i) => [channel, i + 1]));
  const slowPath = (text: string): void => {
    let frame: PusherFrame;
    try {
      frame = JSON.parse(text) as PusherFrame;
    } catch {
      setup.fail(new Error(`unparseable frame from the server: ${text.slice(0, 200)}`));
      return;
    }
    const channel = typeof frame.channel === 'string' ? frame.channel : '';
    switch (frame.event) {
      case 'pusher:ping':
        ws?.send(PUSHER_PONG); // as pusher-js answers
        break;
      case 'pusher:connection_established':
        setup.answer(ESTABLISHED, frame.data);
        break;
      case 'pusher_internal:subscription_succeeded':
        setup.answer(ids.get(channel) ?? -1, frame.data);
        break;
      case 'pusher:subscription_error':
        setup.answer(ids.get(channel) ?? -1, frame.data, new Error(`subscription to ${channel} refused: ${JSON.stringify(frame.data)}`));
        break;
      case 'pusher:error':
        setup.fail(new Error(`pusher:error ${JSON.stringify(frame.data)}`));
        break;
      default: // publications were counted by the scan; anything else is not the benchmark's
    }
  };
  // Expected before the upgrade: the server sends it right after the 101.
  const established = setup.expect(ESTABLISHED);
  try {
    ws = await RawWebSocket.open(target.host, target.port, `/app/${encodeURIComponent(target.appKey)}${PUSHER_QUERY}`, {
      message: (data) => {
        // Hot path: a channel event of the benchmark holds exactly one payload.
        if (startsWith(data, PUSHER_EVENT_START) && handlers.payloads(data) > 0) return;
        slowPath(data.toString('utf8'));
      },
      close: (code, reason) => {
        if (!setup.done) setup.fail(new Error(`closed during setup: ${code} ${reason}`));
        else handlers.closed(code, reason);
      },
    });
  } catch (err) {
    setup.finish(); // nobody will await `established`: its timeout must not reject it unheard
    throw err;
  }
  const socket = ws;
  return handshake(setup, socket, async () => {
    await established;
    const replies = target.channels.map((channel, i) => {
      const reply = setup.expect(i + 1);
      socket.send(JSON.stringify({ event: 'pusher:subscribe', data: { auth: '', channel } }));
      return reply;
    });
    await Promise.all(replies);
  });
}

/** Runs a protocol's connect-and-subscribe steps on an open socket; on failure the socket is dropped. */
async function handshake(setup: Setup, socket: RawWebSocket, steps: () => Promise<void>): Promise<ProtoClient> {
  try {
    await steps();
  } catch (err) {
    setup.finish();
    socket.destroy();
    throw err;
  }
  setup.finish();
  return {
    close: () => socket.close(),
    get isOpen() {
      return socket.isOpen;
    },
  };
}
