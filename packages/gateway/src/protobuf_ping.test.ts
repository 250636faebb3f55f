// Pings of the Protobuf variant on an in-process gateway with a two-second ping: the server sends an empty Reply as a
// binary message, the SDK's Protobuf build answers with an empty Command and stays connected; a socket that does
// not answer is closed with 3012, as a silent JSON one is.
import pino from 'pino';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge/build/protobuf';
import { MemoryBroker, MemoryDocStore } from '@switchboard/engine';
import { hmacToken, waitFor } from '@switchboard/testkit';
import { defaultChannelConfig } from './channels';
import { startGateway, type Gateway } from './server';

const SECRET = 'ping-secret';

let gateway: Gateway;
let broker: MemoryBroker;
let url: string;

beforeAll(async () => {
  broker = new MemoryBroker({ node: 'ping-node' });
  await broker.start();
  gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    broker,
    docs: new MemoryDocStore(broker),
    channels: defaultChannelConfig(),
    auth: { hmacSecret: SECRET, insecure: false },
    nodeId: 'ping-node',
    logger: pino({ level: 'silent' }),
    limits: { pingIntervalSeconds: 2, pongTimeoutSeconds: 1 },
  });
  url = `ws://127.0.0.1:${gateway.port}/connection/websocket`;
});

afterAll(async () => {
  await gateway.shutdown(100);
  await broker.close();
});

/** The SDK's encoder of commands (internal to the SDK; the instance never connects). */
const sdkCodec = (new Centrifuge('ws://127.0.0.1:1/connection/websocket', { websocket: WebSocket }) as unknown as { _codec: { encodeCommands(c: object[]): Uint8Array } })._codec;

/** A raw socket that connects, counts server pings and answers them only when told to. */
async function rawSocket(protocol: 'json' | 'protobuf', answer: boolean): Promise<{ ws: WebSocket; pings: () => number; closed: Promise<number> }> {
  const ws = protocol === 'protobuf' ? new WebSocket(url, 'centrifuge-protobuf') : new WebSocket(url);
  await new Promise((resolve) => ws.once('open', resolve));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const token = await hmacToken(SECRET, { sub: 'raw' });
  ws.send(protocol === 'json' ? JSON.stringify({ id: 1, connect: { token } }) : sdkCodec.encodeCommands([{ id: 1, connect: { token } }]));
  let pings = 0;
  let replied = false;
  ws.on('message', (data, binary) => {
    const isPing = protocol === 'protobuf' ? binary && (data as Buffer).equals(Buffer.from([0])) : data.toString() === '{}';
    if (!isPing) {
      replied = true;
      return;
    }
    pings++;
    if (answer) ws.send(protocol === 'protobuf' ? Buffer.from([0]) : '{}');
  });
  await waitFor(() => replied, { message: 'connect replied' });
  return { ws, pings: () => pings, closed };
}

it('the Protobuf SDK answers binary pings and stays connected', async () => {
  const client = new Centrifuge(url, { websocket: WebSocket, token: await hmacToken(SECRET, { sub: 'sdk' }) });
  const states: string[] = [];
  client.on('state', (ctx) => states.push(ctx.newState));
  client.connect();
  await client.ready();
  // Pings go to every socket at once. A socket that does not answer is closed a pong timeout (1 s) after a ping,
  // well before the next one: by a raw socket's third ping, the SDK answered two.
  const answering = await rawSocket('protobuf', true);
  await waitFor(() => answering.pings() >= 3, { timeoutMs: 10000 });
  expect(states).toEqual(['connecting', 'connected']);
  answering.ws.close();
  client.disconnect();
});

it('a silent socket of either variant is closed with 3012', async () => {
  const [pb, json] = await Promise.all([rawSocket('protobuf', false), rawSocket('json', false)]);
  expect(await Promise.all([pb.closed, json.closed])).toEqual([3012, 3012]);
  expect([pb.pings(), json.pings()].every((n) => n >= 1)).toBe(true);
});
