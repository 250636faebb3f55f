// The hub's fan-out per encoding: each publication is encoded once per protocol variant that has local
// subscribers, whatever their number, and Protobuf frames go out as binary messages.
import pino from 'pino';
import { MemoryBroker } from '@switchboard/engine';
import { encodePublicationBody, protobufCodec, type Frame } from '@switchboard/protocol';
import type { WebSocket } from 'uWebSockets.js';
import { centrifugoJson, centrifugoProtobuf, Hub, type FanoutEncoding, type HubSubscriber } from './hub';
import { GatewayMetrics } from './metrics';
import { SetTopics } from './topics';

/** A socket that records what it was sent and whether as binary. */
class FakeSocket {
  readonly got: { frame: Frame; binary: boolean }[] = [];
  send(frame: Frame, binary: boolean): void {
    this.got.push({ frame, binary });
  }
}

/** Counts the calls of an encoding's publication encoder. */
function counted(encoding: FanoutEncoding): { encoding: FanoutEncoding; calls: () => number } {
  let calls = 0;
  return {
    encoding: {
      ...encoding,
      publication: (channel, pub) => {
        calls++;
        return encoding.publication(channel, pub);
      },
      deltaPublication: (channel, pub, text, delta) => {
        calls++;
        return encoding.deltaPublication?.(channel, pub, text, delta);
      },
    },
    calls: () => calls,
  };
}

let broker: MemoryBroker;

beforeEach(async () => {
  broker = new MemoryBroker({ node: 'hub-test' });
  await broker.start();
});

afterEach(async () => {
  await broker.close();
});

it('encodes a publication once per variant with subscribers and sends Protobuf frames as binary', async () => {
  const topics = new SetTopics();
  const json = counted(centrifugoJson);
  const pb = counted(centrifugoProtobuf);
  const metrics = new GatewayMetrics({ connections: () => 0, subscriptions: () => 0, channels: () => 0 });
  const hub = new Hub(broker, topics, pino({ level: 'silent' }), metrics, [json.encoding, pb.encoding]);
  const channel = 'chat:x';

  const sockets: { socket: FakeSocket; encoding: FanoutEncoding }[] = [];
  for (const encoding of [json.encoding, json.encoding, json.encoding, pb.encoding, pb.encoding, pb.encoding]) {
    const socket = new FakeSocket();
    sockets.push({ socket, encoding });
    const sub: HubSubscriber = {
      encoding,
      send: (frame) => socket.send(frame, typeof frame !== 'string'),
      join: () => topics.join(socket as unknown as WebSocket<unknown>, encoding.topic(channel)),
      resync: () => undefined,
    };
    await hub.add(channel, sub);
    hub.start(channel, sub);
  }

  for (let i = 1; i <= 3; i++) await broker.publish(channel, encodePublicationBody(JSON.stringify({ i })), { historySize: 0, historyTtlSeconds: 0 });
  expect(json.calls()).toBe(3);
  expect(pb.calls()).toBe(3);
  for (const { socket, encoding } of sockets) {
    expect(socket.got).toHaveLength(3);
    if (encoding === pb.encoding) {
      expect(socket.got.every((g) => g.binary && g.frame instanceof Uint8Array)).toBe(true);
      // The very bytes every Protobuf subscriber got are the codec's push of that publication.
      expect(Buffer.from(socket.got[0].frame as Uint8Array)).toEqual(Buffer.from(protobufCodec.publicationPush(channel, { offset: 0, json: '{"data":{"i":1}}' }) as Uint8Array));
    } else {
      expect(socket.got.map((g) => g.frame)).toEqual([1, 2, 3].map((i) => `{"push":{"channel":"chat:x","pub":{"data":{"i":${i}}}}}`));
    }
  }
  // The same frame object for every subscriber of a variant: encoded once, not per subscriber.
  const pbFrames = sockets.filter((s) => s.encoding === pb.encoding).map((s) => s.socket.got[0].frame);
  expect(new Set(pbFrames).size).toBe(1);
});

it('does not encode for a variant without local subscribers', async () => {
  const topics = new SetTopics();
  const json = counted(centrifugoJson);
  const pb = counted(centrifugoProtobuf);
  const metrics = new GatewayMetrics({ connections: () => 0, subscriptions: () => 0, channels: () => 0 });
  const hub = new Hub(broker, topics, pino({ level: 'silent' }), metrics, [json.encoding, pb.encoding]);
  const socket = new FakeSocket();
  const sub: HubSubscriber = {
    encoding: json.encoding,
    send: (frame) => socket.send(frame, false),
    join: () => topics.join(socket as unknown as WebSocket<unknown>, json.encoding.topic('c')),
    resync: () => undefined,
  };
  await hub.add('c', sub);
  hub.start('c', sub);
  await broker.publish('c', encodePublicationBody('1'), { historySize: 0, historyTtlSeconds: 0 });
  expect([json.calls(), pb.calls()]).toEqual([1, 0]);
});

it('sends each variant its own join and leave frames, only on the topic of those that asked', async () => {
  const topics = new SetTopics();
  const metrics = new GatewayMetrics({ connections: () => 0, subscriptions: () => 0, channels: () => 0 });
  const hub = new Hub(broker, topics, pino({ level: 'silent' }), metrics, [centrifugoJson, centrifugoProtobuf]);
  const asked = { json: new FakeSocket(), pb: new FakeSocket() };
  const silent = new FakeSocket();
  const join = (socket: FakeSocket, topic: string) => topics.join(socket as unknown as WebSocket<unknown>, topic);
  const placeholder: HubSubscriber = { encoding: centrifugoJson, send: () => undefined, join: () => undefined, resync: () => undefined };
  await hub.add('c', placeholder);
  join(asked.json, centrifugoJson.joinLeaveTopic('c'));
  join(asked.pb, centrifugoProtobuf.joinLeaveTopic('c'));
  join(silent, centrifugoProtobuf.topic('c'));
  const info = '{"user":"u","client":"k"}';
  await broker.publishJoinLeave('c', 'join', info);
  // A user's join without a connection of its own is not for Centrifugo clients.
  await broker.publishJoinLeave('c', 'leave', info, 'user-only');
  expect(asked.json.got).toEqual([{ frame: '{"push":{"channel":"c","join":{"info":{"user":"u","client":"k"}}}}', binary: false }]);
  expect(asked.pb.got).toEqual([{ frame: protobufCodec.joinLeavePush('c', 'join', info), binary: true }]);
  expect(silent.got).toEqual([]);
});

it('puts a positioned subscriber of a channel with no publications yet into the shared fan-out at once', async () => {
  // Join and leave pushes go only to the shared fan-out: a subscriber left catching up on an empty stream got none
  // of them until the channel's first publication.
  const topics = new SetTopics();
  const metrics = new GatewayMetrics({ connections: () => 0, subscriptions: () => 0, channels: () => 0 });
  const hub = new Hub(broker, topics, pino({ level: 'silent' }), metrics, [centrifugoJson]);
  let joined = false;
  const sub: HubSubscriber = { encoding: centrifugoJson, send: () => undefined, join: () => (joined = true), resync: () => undefined };
  await hub.add('empty', sub);
  const { epoch, offset } = await broker.history('empty', { limit: 0 });
  expect(offset).toBe(0);
  hub.start('empty', sub, { epoch, offset });
  expect(joined).toBe(true);
});

it('serves delta and filtered subscribers one by one but encodes each frame once per publication', async () => {
  const topics = new SetTopics();
  const json = counted(centrifugoJson);
  const metrics = new GatewayMetrics({ connections: () => 0, subscriptions: () => 0, channels: () => 0 });
  const hub = new Hub(broker, topics, pino({ level: 'silent' }), metrics, [json.encoding]);
  const channel = 'd:x';
  const got = new Map<string, string[]>();
  const subscriber = (name: string, extra: Partial<HubSubscriber>): HubSubscriber => {
    got.set(name, []);
    return { encoding: json.encoding, send: (frame) => got.get(name)?.push(frame as string), join: () => undefined, resync: () => undefined, ...extra };
  };
  const subs = [
    subscriber('delta1', { delta: true }),
    subscriber('delta2', { delta: true }),
    subscriber('a', { filter: (tags) => tags?.kind === 'a' }),
    subscriber('b', { filter: (tags) => tags?.kind === 'b' }),
  ];
  for (const sub of subs) {
    await hub.add(channel, sub);
    hub.start(channel, sub);
  }
  const opts = { historySize: 0, historyTtlSeconds: 0 };
  const big = (n: number) => JSON.stringify({ n, text: 'x'.repeat(300) });
  await broker.publish(channel, encodePublicationBody(big(1), undefined, { kind: 'a' }), opts);
  await broker.publish(channel, encodePublicationBody(big(2), undefined, { kind: 'b' }, true), opts);
  // Per publication: one full (or delta) frame for both delta subscribers, one plain frame for both filtered ones.
  expect(json.calls()).toBe(4);
  const first = JSON.parse(got.get('delta1')?.[0] ?? '') as { push: { pub: { data: unknown; delta?: boolean } } };
  expect(first.push.pub).toEqual({ data: big(1), tags: { kind: 'a' } });
  const second = JSON.parse(got.get('delta1')?.[1] ?? '') as { push: { pub: { data: unknown; delta?: boolean } } };
  expect(second.push.pub.delta).toBe(true);
  // Not published with delta (no API `delta`, no namespace `delta_publish`): in full, even with a base.
  await broker.publish(channel, encodePublicationBody(big(3), undefined, { kind: 'c' }), opts);
  const third = JSON.parse(got.get('delta1')?.[2] ?? '') as { push: { pub: { data: unknown; delta?: boolean } } };
  expect(third.push.pub).toEqual({ data: big(3), tags: { kind: 'c' } });
  expect(got.get('delta2')).toEqual(got.get('delta1'));
  expect(got.get('a')?.map((f) => (JSON.parse(f) as { push: { pub: { tags: unknown } } }).push.pub.tags)).toEqual([{ kind: 'a' }]);
  expect(got.get('b')?.map((f) => (JSON.parse(f) as { push: { pub: { tags: unknown } } }).push.pub.tags)).toEqual([{ kind: 'b' }]);
});
