// Local channel registry: one engine subscription per channel, fan-out, and the merge of pub/sub with history.
//
// A gateway learns a channel's stream in two ways: publications arriving over pub/sub, and positions read
// from history when a client subscribes. Pub/sub is at-most-once and may lag behind a history read, so:
// - a subscriber collects publications from the moment the engine subscription exists until its reply
//   is sent, then takes those after the position its reply named ("catching up"), and joins the shared
//   fan-out only once pub/sub has delivered up to that position, so it gets no publication twice;
// - a publication whose offset skips one, or whose epoch changed, means pub/sub lost something: no
//   subscriber gets it, all of them are told to resync (resubscribe and recover from history);
// - a periodic check compares the stream's top with what pub/sub delivered, for losses with no
//   later publication to reveal them;
// - an offset at or below one already delivered, or a stream top below it, means Redis itself lost
//   publications (a failover before the replica caught up) and is reusing their offsets: the channel's
//   epoch is forked, so every subscriber resyncs and is told it could not recover.
import { shardOf, type Broker, type JoinLeaveScope, type Publication } from '@switchboard/engine';
import { fossilDeltaIfSmaller, isDeltaPublication, jsonCodec, protobufCodec, type ClientCodec, type Frame, type StreamPosition, type TagFilter } from '@switchboard/protocol';
import type { Logger } from 'pino';
import type { WebSocket } from 'uWebSockets.js';
import type { GatewayMetrics } from './metrics';
import { channelTopic, joinLeaveTopic, protobufChannelTopic, protobufJoinLeaveTopic, type Topics } from './topics';

/**
 * How one edge's sockets get a channel's publications: the local topic they join and the frame they are sent.
 * Each encoding with local subscribers encodes a publication once; every subscriber of it gets the same bytes.
 */
export interface FanoutEncoding {
  topic(channel: string): string;
  /** A string goes out as a text message, bytes as a binary one. */
  publication(channel: string, pub: Publication): Frame | FrameExcept;
  /**
   * This edge's frame for a join or leave (`info`: the member's encoded ClientInfo; `scope`: of a connection, its
   * user, or both, see JoinLeaveScope), sent on `joinLeaveTopic(channel)` or else `topic(channel)`; undefined when
   * its sockets take none. Without the method the edge gets no join/leave at all.
   */
  joinLeave?(channel: string, kind: 'join' | 'leave', info: string, scope: JoinLeaveScope): Frame | FrameExcept | undefined;
  /** Where join/leave frames go when only some subscribers take them (Centrifugo's `join_leave` on subscribe). */
  joinLeaveTopic?(channel: string): string;
  /** For subscribers that negotiated delta: see ClientCodec.deltaPublicationPush. Without it, no delta. */
  deltaPublication?(channel: string, pub: Publication, dataText: string, delta?: Uint8Array): Frame | undefined;
}

/** A frame for every subscriber of the topic but one local socket (its sender, who must not get it back). */
export interface FrameExcept {
  frame: Frame;
  except: WebSocket<unknown>;
}

/** A variant of the Centrifugo client protocol: its codec, and its own topics so each variant encodes once. */
export interface CentrifugoEncoding extends FanoutEncoding {
  readonly codec: ClientCodec;
  joinLeaveTopic(channel: string): string;
}

function centrifugoEncoding(codec: ClientCodec, topic: (channel: string) => string, joinLeave: (channel: string) => string): CentrifugoEncoding {
  return {
    codec,
    topic,
    joinLeaveTopic: joinLeave,
    publication: (channel, pub) => codec.publicationPush(channel, pub),
    deltaPublication: (channel, pub, dataText, delta) => codec.deltaPublicationPush(channel, pub, dataText, delta),
    // Centrifugo announces connections: a user's join or leave without one is not for its clients.
    joinLeave: (channel, kind, info, scope) => (scope === 'user-only' ? undefined : codec.joinLeavePush(channel, kind, info)),
  };
}

/** The Centrifugo JSON variant's pushes (text frames). */
export const centrifugoJson: CentrifugoEncoding = centrifugoEncoding(jsonCodec, channelTopic, joinLeaveTopic);
/** The Centrifugo Protobuf variant's pushes (binary frames). */
export const centrifugoProtobuf: CentrifugoEncoding = centrifugoEncoding(protobufCodec, protobufChannelTopic, protobufJoinLeaveTopic);

export interface HubSubscriber {
  /** The frames this subscriber takes. */
  readonly encoding: FanoutEncoding;
  /** Its socket, when an encoding may exclude one (FrameExcept). */
  readonly socket?: WebSocket<unknown>;
  /** Sends one frame to this subscriber alone (while it is not in the shared fan-out). */
  send(frame: Frame): void;
  /**
   * Puts the subscriber into the channel's fan-out: `shared` false for a direct subscriber (see `direct`), which
   * takes only join/leave pushes from the shared topics and its publications from the hub one by one.
   */
  join(shared: boolean): void;
  /** Fossil delta negotiated (its encoding has deltaPublication): full publications carry their data as JSON text. */
  readonly delta?: boolean;
  /** Its publication tags filter, when it sent one. */
  readonly filter?: TagFilter;
  /** The channel lost continuity for this subscriber: it must resubscribe and recover. */
  resync(): void;
}

interface Pending {
  /** Publications seen since the engine subscription, before `start`. */
  buffer: { epoch: string; pub: Publication }[] | undefined;
  /** Continuity was lost before `start`: resync right after the reply. */
  stale: boolean;
  /** The next offset this subscriber must get; 0 when it does not track offsets. */
  next: number;
  epoch: string;
}

/** What the hub keeps of a direct subscriber: the publication its client decodes the next delta against. */
interface Direct {
  base: Publication | undefined;
}

interface ChannelEntry {
  subscribers: Set<HubSubscriber>;
  /** Subscribers with a delta or a tags filter, in the fan-out but served one by one (they cannot share frames). */
  direct: Map<HubSubscriber, Direct>;
  /** The channel's previous publication (the base of this one's delta) and its data text, once computed. */
  prev: Publication | undefined;
  prevText: string | undefined;
  /** Subscribers not yet in the shared fan-out. */
  pending: Map<HubSubscriber, Pending>;
  /** Resolves once the engine delivers this channel to us. */
  ready: Promise<void>;
  epoch: string;
  /** Highest offset pub/sub delivered here (0: none yet). */
  delivered: number;
  /** Highest offset a subscriber was told (a history read may be ahead of pub/sub). */
  told: number;
  /** A position check saw the stream ahead of us; confirmed lost if still ahead at the next check. */
  suspect: StreamPosition | undefined;
  /** An epoch fork for reused offsets is in flight. */
  forking: boolean;
}

function isFrame(out: Frame | FrameExcept): out is Frame {
  return typeof out === 'string' || out instanceof Uint8Array;
}

/** Slices of the periodic position check (see startPositionChecks). */
const CHECK_SLICES = 10;

/** Told when this gateway's first local subscriber of a channel arrives (`present`) and after its last leaves. */
export type LocalChannelListener = (channel: string, present: boolean) => void;

export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  private checkTimer: NodeJS.Timeout | undefined;
  private localChannelListener: LocalChannelListener | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly topics: Topics,
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
    /** Every edge's encoding; a publication is encoded once for each that has local subscribers. */
    private readonly encodings: readonly FanoutEncoding[] = [centrifugoJson, centrifugoProtobuf],
  ) {
    broker.onPublication((channel, pub, epoch) => this.deliver(channel, pub, epoch));
    // Join/leave is best effort, like in Centrifugo: only subscribers already in the fan-out get it.
    broker.onJoinLeave((channel, kind, info, scope) => {
      if (!this.channels.has(channel)) return;
      for (const encoding of this.encodings) {
        if (!encoding.joinLeave) continue;
        const topic = encoding.joinLeaveTopic?.(channel) ?? encoding.topic(channel);
        if (topics.count(topic) === 0) continue;
        const out = encoding.joinLeave(channel, kind, info, scope);
        if (out === undefined) continue;
        if (isFrame(out)) topics.publish(topic, out);
        else topics.publish(topic, out.frame, out.except);
      }
    });
    // Publications may have been lost while the engine was away: check every channel now.
    broker.onResubscribed((movedSlots) => {
      metrics.resubscribes.inc();
      if (movedSlots > 0) metrics.movedSlots.inc(movedSlots);
      void this.checkPositions();
    });
  }

  get channelCount(): number {
    return this.channels.size;
  }

  /** Sets the single listener of channels gaining their first and losing their last local subscriber. */
  onLocalChannel(listener: LocalChannelListener): void {
    this.localChannelListener = listener;
  }

  /** Channels with local subscribers. */
  localChannels(): IterableIterator<string> {
    return this.channels.keys();
  }

  /** Whether the channel has local subscribers. */
  hasLocal(channel: string): boolean {
    return this.channels.has(channel);
  }

  /** Channels with local subscribers and how many each has. */
  *channelCounts(): IterableIterator<[string, number]> {
    for (const [channel, entry] of this.channels) yield [channel, entry.subscribers.size];
  }

  /**
   * Registers a subscriber; it collects publications until `start`. Resolves once the engine subscription
   * is in place. On rejection the caller must still call `remove`.
   */
  add(channel: string, sub: HubSubscriber): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = {
        subscribers: new Set(),
        direct: new Map(),
        prev: undefined,
        prevText: undefined,
        pending: new Map(),
        ready: this.broker.subscribe([channel]),
        epoch: '',
        delivered: 0,
        told: 0,
        suspect: undefined,
        forking: false,
      };
      // The rejection reaches every waiting subscriber; this only keeps it from being unhandled.
      entry.ready.catch(() => undefined);
      this.channels.set(channel, entry);
      this.localChannelListener?.(channel, true);
    }
    entry.subscribers.add(sub);
    entry.pending.set(sub, { buffer: [], stale: false, next: 0, epoch: '' });
    return entry.ready;
  }

  /**
   * Called right after the subscriber's reply was sent. With a position, it gets the collected publications
   * after it and joins the fan-out once pub/sub caught up; without one, it gets everything collected.
   */
  start(channel: string, sub: HubSubscriber, position?: StreamPosition): void {
    const entry = this.channels.get(channel);
    const pending = entry?.pending.get(sub);
    if (!entry || !pending) return;
    const buffer = pending.buffer ?? [];
    pending.buffer = undefined;
    if (pending.stale) {
      entry.pending.delete(sub);
      this.metrics.resyncs.inc();
      sub.resync();
      return;
    }
    if (!position || (position.offset === 0 && position.epoch === '')) {
      for (const item of buffer) this.sendOne(sub, channel, item.pub);
      this.activate(entry, sub);
      return;
    }
    pending.next = position.offset + 1;
    pending.epoch = position.epoch;
    if (entry.epoch === '') entry.epoch = position.epoch;
    if (position.epoch !== entry.epoch) {
      // The stream was reset (e.g. Redis lost its data) and this is the first we hear of it.
      this.lost(channel, entry, position, false, 'a history read returned a new epoch', sub);
    }
    if (position.offset > entry.told) entry.told = position.offset;
    for (const item of buffer) {
      if (!this.offer(channel, entry, sub, pending, item.epoch, item.pub)) return;
    }
    this.joinIfCaughtUp(entry, sub, pending);
  }

  remove(channel: string, sub: HubSubscriber): void {
    const entry = this.channels.get(channel);
    if (!entry || !entry.subscribers.delete(sub)) return;
    entry.pending.delete(sub);
    entry.direct.delete(sub);
    if (entry.subscribers.size > 0) return;
    this.channels.delete(channel);
    this.localChannelListener?.(channel, false);
    this.broker.unsubscribe([channel]).catch((err: Error) => {
      this.logger.warn({ channel, err: err.message }, 'engine unsubscribe failed');
    });
  }

  /** Starts the periodic position check. */
  startPositionChecks(intervalMs: number): void {
    this.stopPositionChecks();
    // Each channel is checked once per interval, a tenth of them at a time, so a gateway with many channels does
    // not read every stream top at once; a random phase keeps gateways started together from checking together.
    const sliceMs = intervalMs / CHECK_SLICES;
    let slice = 0;
    const tick = (): void => {
      void this.checkPositions(slice);
      slice = (slice + 1) % CHECK_SLICES;
    };
    this.checkTimer = setTimeout(() => {
      tick();
      this.checkTimer = setInterval(tick, sliceMs);
      this.checkTimer.unref();
    }, Math.random() * sliceMs);
    this.checkTimer.unref();
  }

  stopPositionChecks(): void {
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = undefined;
  }

  // Hot path: the push frame is encoded once and the same bytes go to every subscriber in the fan-out.
  private deliver(channel: string, pub: Publication, epoch: string): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    if (pub.offset > 0) {
      if (entry.epoch === '') entry.epoch = epoch;
      // Before pub/sub delivered anything, the last position a subscriber was told is the reference.
      const last = entry.delivered > 0 ? entry.delivered : entry.told;
      if (epoch !== entry.epoch) {
        this.lost(channel, entry, { epoch, offset: pub.offset }, true, 'the epoch changed');
        return;
      }
      if (last > 0 && pub.offset > last + 1) {
        this.lost(channel, entry, { epoch, offset: pub.offset }, true, `pub/sub skipped from offset ${last} to ${pub.offset}`);
        return;
      }
      if (pub.offset <= entry.delivered) {
        // Pub/sub never repeats a message: an offset seen before was handed out again.
        this.forkEpoch(channel, entry, `offset ${pub.offset} arrived again after ${entry.delivered}`);
        return;
      }
      entry.delivered = pub.offset;
      if (pub.offset > entry.told) entry.told = pub.offset;
    }
    const started = performance.now();
    let deliveries = 0;
    let bytes = 0;
    for (const encoding of this.encodings) {
      const topic = encoding.topic(channel);
      const joined = this.topics.count(topic);
      if (joined === 0) continue;
      const out = encoding.publication(channel, pub);
      const frame = isFrame(out) ? out : out.frame;
      const n = this.topics.publish(topic, frame, isFrame(out) ? undefined : out.except, joined);
      deliveries += n;
      bytes += n * frame.length;
    }
    if (entry.direct.size > 0) {
      const frames = new DirectFrames(channel, entry, pub);
      for (const [sub, direct] of entry.direct) {
        const frame = frames.frameFor(sub, direct);
        if (frame === undefined) continue;
        sub.send(frame);
        deliveries++;
        bytes += frame.length;
      }
      entry.prevText = frames.dataTextIfComputed();
    } else {
      entry.prevText = undefined;
    }
    entry.prev = pub;
    this.metrics.fanoutSeconds.observe((performance.now() - started) / 1000);
    this.metrics.deliveries.inc(deliveries);
    this.metrics.bytesOut.inc(bytes);
    if (entry.pending.size === 0) return;
    for (const [sub, pending] of entry.pending) {
      if (pending.buffer) pending.buffer.push({ epoch, pub });
      else if (this.offer(channel, entry, sub, pending, epoch, pub)) this.joinIfCaughtUp(entry, sub, pending);
    }
  }

  /** A catching-up subscriber takes one publication; false when it had to resync. */
  private offer(channel: string, entry: ChannelEntry, sub: HubSubscriber, pending: Pending, epoch: string, pub: Publication): boolean {
    const offset = pub.offset;
    if (offset === 0) {
      this.sendOne(sub, channel, pub);
      return true;
    }
    if (epoch !== pending.epoch || offset > pending.next) {
      entry.pending.delete(sub);
      this.metrics.resyncs.inc();
      sub.resync();
      return false;
    }
    if (offset === pending.next) {
      this.sendOne(sub, channel, pub);
      pending.next++;
    }
    return true;
  }

  /** A publication to one subscriber still catching up, in its own encoding (counted like the shared fan-out). */
  private sendOne(sub: HubSubscriber, channel: string, pub: Publication): void {
    if (sub.filter && !sub.filter(publicationTags(pub))) return;
    if (sub.delta) {
      // Catching up is rare and short: a full publication each, never a delta.
      const frame = fullFrame(sub.encoding, channel, pub, dataText(pub));
      sub.send(frame);
      this.metrics.deliveries.inc();
      this.metrics.bytesOut.inc(frame.length);
      return;
    }
    const out = sub.encoding.publication(channel, pub);
    if (!isFrame(out) && out.except === sub.socket) return;
    const frame = isFrame(out) ? out : out.frame;
    sub.send(frame);
    this.metrics.deliveries.inc();
    this.metrics.bytesOut.inc(frame.length);
  }

  private joinIfCaughtUp(entry: ChannelEntry, sub: HubSubscriber, pending: Pending): void {
    // Every later publication has an offset above `delivered`; once that is all this subscriber still
    // needs, the shared fan-out serves it without a double. A stream that was empty when this subscriber read
    // its position (next 1) needs nothing pub/sub has not yet brought: it joins at once, join/leave pushes too.
    if (pending.epoch !== entry.epoch) return;
    if ((entry.delivered > 0 || pending.next === 1) && entry.delivered >= pending.next - 1) this.activate(entry, sub);
  }

  private activate(entry: ChannelEntry, sub: HubSubscriber): void {
    entry.pending.delete(sub);
    // Its first publication in the fan-out is full: whatever it got before is not the base the delta is made on.
    if (sub.delta || sub.filter) entry.direct.set(sub, { base: undefined });
    sub.join(!(sub.delta || sub.filter));
  }

  /**
   * Continuity is lost: every subscriber (but `except`, already on the new stream) resyncs. `viaPubSub`: the
   * position came over pub/sub (so it counts as delivered), not from a history read.
   */
  private lost(channel: string, entry: ChannelEntry, at: StreamPosition, viaPubSub: boolean, why: string, except?: HubSubscriber): void {
    this.logger.info({ channel, epoch: at.epoch, offset: at.offset, delivered: entry.delivered, knownEpoch: entry.epoch }, `resync: ${why}`);
    entry.epoch = at.epoch;
    entry.delivered = viaPubSub ? at.offset : 0;
    entry.told = at.offset;
    entry.suspect = undefined;
    for (const sub of [...entry.subscribers]) {
      if (sub === except) continue;
      const pending = entry.pending.get(sub);
      if (pending?.buffer) {
        // Not replied to yet: it resyncs right after its reply.
        pending.stale = true;
        pending.buffer.length = 0;
        continue;
      }
      entry.pending.delete(sub);
      entry.direct.delete(sub);
      this.metrics.resyncs.inc();
      sub.resync();
    }
  }

  /**
   * Redis lost publications this gateway delivered and reuses their offsets: fork the channel's epoch (once,
   * whichever gateway gets there first) and resync every subscriber, who then learns it could not recover.
   */
  private forkEpoch(channel: string, entry: ChannelEntry, why: string): void {
    if (entry.forking) return;
    entry.forking = true;
    const seen = { epoch: entry.epoch, offset: Math.max(entry.delivered, entry.told) };
    this.broker.history(channel, { limit: 0, seen }).then(
      (top) => {
        entry.forking = false;
        if (this.channels.get(channel) === entry && top.epoch !== entry.epoch) this.lost(channel, entry, top, false, `Redis lost publications: ${why}`);
      },
      // Redis is away again; the position check after it comes back repeats this.
      () => (entry.forking = false),
    );
  }

  /**
   * Compares each channel's stream top with what pub/sub delivered; a lag seen twice in a row is a loss. With a
   * `slice`, only the channels of that slice (one of CHECK_SLICES, by the channel's hash) are checked.
   */
  async checkPositions(slice?: number): Promise<void> {
    const due = (channel: string): boolean => slice === undefined || shardOf(channel, CHECK_SLICES) === slice;
    const checks = [...this.channels].filter(([channel, e]) => e.epoch !== '' && due(channel)).map(async ([channel, entry]) => {
      const known = Math.max(entry.delivered, entry.told);
      let top: StreamPosition;
      try {
        // `seen`: a stream top below what we know forks the epoch (see forkEpoch), and the check below resyncs.
        top = await this.broker.history(channel, { limit: 0, seen: { epoch: entry.epoch, offset: known } });
      } catch {
        return;
      }
      if (this.channels.get(channel) !== entry) return;
      if (top.epoch === entry.epoch && top.offset <= known) {
        entry.suspect = undefined;
        return;
      }
      // A new epoch means the stream was reset. Ahead once may be a publication in flight; still short of
      // that same position a check later is a loss.
      const previous = entry.suspect;
      if (top.epoch !== entry.epoch || (previous && previous.offset > known)) {
        this.lost(channel, entry, top, false, 'the stream is ahead of what pub/sub delivered');
        return;
      }
      entry.suspect = top;
    });
    await Promise.all(checks);
  }
}

/** A publication's `data` as JSON text (the bytes a delta subscriber's client keeps as its base). */
function dataText(pub: Publication): string {
  return JSON.stringify((JSON.parse(pub.json) as { data?: unknown }).data ?? null);
}

function publicationTags(pub: Publication): Record<string, string> | undefined {
  // Cheap test first: most publications carry no tags.
  if (!pub.json.includes('"tags"')) return undefined;
  return (JSON.parse(pub.json) as { tags?: Record<string, string> }).tags;
}

/**
 * The frames of one publication for the direct subscribers of its channel. Hot path: the delta is computed once, and
 * each frame (full or delta per encoding, plain per encoding) is built at most once per publication, whatever the
 * number of subscribers taking it.
 */
class DirectFrames {
  private text: string | undefined;
  /** The fossil delta against the channel's previous publication; null when none or not smaller. */
  private deltaBytes: Uint8Array | null | undefined;
  private readonly full = new Map<FanoutEncoding, Frame>();
  private readonly deltas = new Map<FanoutEncoding, Frame | undefined>();
  private readonly plain = new Map<FanoutEncoding, Frame | FrameExcept>();
  private tags: Record<string, string> | undefined | null = null;

  constructor(
    private readonly channel: string,
    private readonly entry: ChannelEntry,
    private readonly pub: Publication,
  ) {}

  /** The frame for this subscriber, undefined when its filter skips the publication. */
  frameFor(sub: HubSubscriber, direct: Direct): Frame | undefined {
    if (sub.filter) {
      if (this.tags === null) this.tags = publicationTags(this.pub);
      if (!sub.filter(this.tags)) return undefined;
    }
    if (!sub.delta) {
      let out = this.plain.get(sub.encoding);
      if (out === undefined) {
        out = sub.encoding.publication(this.channel, this.pub);
        this.plain.set(sub.encoding, out);
      }
      if (isFrame(out)) return out;
      return out.except === sub.socket ? undefined : out.frame;
    }
    // Only a publication published with delta (API `delta: true`, namespace `delta_publish`) goes as a delta.
    const delta = direct.base !== undefined && direct.base === this.entry.prev && isDeltaPublication(this.pub.json) ? this.deltaFrame(sub.encoding) : undefined;
    direct.base = this.pub;
    return delta ?? this.fullFrame(sub.encoding);
  }

  dataTextIfComputed(): string | undefined {
    return this.text;
  }

  private dataText(): string {
    if (this.text === undefined) this.text = dataText(this.pub);
    return this.text;
  }

  private fullFrame(encoding: FanoutEncoding): Frame {
    let frame = this.full.get(encoding);
    if (frame === undefined) {
      frame = fullFrame(encoding, this.channel, this.pub, this.dataText());
      this.full.set(encoding, frame);
    }
    return frame;
  }

  private deltaFrame(encoding: FanoutEncoding): Frame | undefined {
    if (this.deltas.has(encoding)) return this.deltas.get(encoding);
    if (this.deltaBytes === undefined) {
      const prev = this.entry.prev;
      const prevText = prev === undefined ? undefined : (this.entry.prevText ?? dataText(prev));
      this.deltaBytes = prevText === undefined ? null : fossilDeltaIfSmaller(utf8.encode(prevText), utf8.encode(this.dataText()));
    }
    const frame = this.deltaBytes === null ? undefined : encoding.deltaPublication?.(this.channel, this.pub, this.dataText(), this.deltaBytes);
    this.deltas.set(encoding, frame);
    return frame;
  }
}

/** A full publication for a delta subscriber: its data as JSON text, the base of the next delta. */
function fullFrame(encoding: FanoutEncoding, channel: string, pub: Publication, text: string): Frame {
  const frame = encoding.deltaPublication?.(channel, pub, text);
  if (frame === undefined) throw new Error('a delta subscriber on an encoding without deltaPublication');
  return frame;
}

const utf8 = new TextEncoder();
