// Redis key and pub/sub names of a channel, and which shard a channel lives on.

export const DEFAULT_PREFIX = 'sb';

/**
 * The pub/sub channel of a channel: `<prefix>:{<channel>}`. Every key of the channel starts with this too, so
 * they share one Redis Cluster hash tag (the tag ends at the first `}`, which lies inside this common part even
 * when the channel name holds braces).
 */
export function redisPubSubChannel(channel: string, prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:{${channel}}`;
}

export interface ChannelKeys {
  /** Hash: e = epoch, o = top offset, s = history size of the last publish with history. */
  meta: string;
  /** Stream: entry id = offset, field d = the publication JSON. */
  history: string;
  pubsub: string;
}

export function channelKeys(channel: string, prefix: string): ChannelKeys {
  const base = redisPubSubChannel(channel, prefix);
  return { meta: `${base}:m`, history: `${base}:h`, pubsub: base };
}

/**
 * Presence of a channel: a hash (client id → info JSON), a sorted set (client id → expiry, ms since 1970) and a
 * hash (user → number of entries), which tells a user's first and last entry apart.
 */
export interface PresenceKeys {
  entries: string;
  expiry: string;
  users: string;
}

export function presenceKeys(channel: string, prefix: string): PresenceKeys {
  const base = redisPubSubChannel(channel, prefix);
  return { entries: `${base}:p`, expiry: `${base}:pz`, users: `${base}:pu` };
}

/** Occupancy of a channel: a sorted set (node id → expiry, ms since 1970) of the nodes with local subscribers. */
export function occupancyKey(channel: string, prefix: string): string {
  return `${redisPubSubChannel(channel, prefix)}:o`;
}

/**
 * Names that are no client channel but live where a channel would (a shard, a Cluster slot): their keys carry the
 * name as hash tag. They begin with U+0001 like the Cluster control channels, a character no client channel holds.
 */
export const OCCUPANCY_INDEX = '\u0001occupancy';

/** The index of occupied channels (channel → latest expiry), one per prefix. */
export function occupancyIndexKey(prefix: string): string {
  return `${redisPubSubChannel(OCCUPANCY_INDEX, prefix)}:i`;
}

/** The pseudo-channel an outbox lives on (see OCCUPANCY_INDEX). */
export function outboxChannel(name: string): string {
  return `\u0001outbox.${name}`;
}

/** An outbox's keys: its stream, sequence counter, readers' cursors and delivery lease, under one hash tag. */
export interface OutboxKeys {
  stream: string;
  sequence: string;
  cursors: string;
  lease: string;
}

export function outboxKeys(name: string, prefix: string): OutboxKeys {
  const base = redisPubSubChannel(outboxChannel(name), prefix);
  return { stream: `${base}:s`, sequence: `${base}:n`, cursors: `${base}:c`, lease: `${base}:l` };
}

/**
 * Pub/sub channels of control messages: `<prefix>:control` reaches every node, `<prefix>:node:<id>` one node.
 * Neither has a `{` after the prefix, so no channel's pub/sub name can be one of them.
 */
export function controlChannel(prefix: string): string {
  return `${prefix}:control`;
}

export function nodeChannel(prefix: string, node: string): string {
  return `${prefix}:node:${node}`;
}

/**
 * On Redis Cluster control messages use sharded pub/sub on channels spread over the slots, placed like any
 * channel's subscription (`redisPubSubChannel` of these names). They begin with U+0001, a control character no
 * client channel may hold (a leading `}` would empty the hash tag, and clients may not use it either).
 */
export const CLUSTER_CONTROL_SHARDS = 16;
const CONTROL_MARK = '\u0001';

export function clusterControlChannel(shard: number): string {
  return `${CONTROL_MARK}control.${shard}`;
}

export function clusterNodeChannel(node: string): string {
  return `${CONTROL_MARK}node.${node}`;
}

/** On Redis Cluster a gateway's document replies come on this sharded channel (its slot depends on the node id). */
export function clusterDocReplyChannel(node: string): string {
  return `${CONTROL_MARK}docs.reply.${node}`;
}

export function isClusterControlChannel(channel: string): boolean {
  return channel.startsWith(CONTROL_MARK);
}

export function idempotencyKey(channel: string, prefix: string, key: string): string {
  return `${redisPubSubChannel(channel, prefix)}:i:${key}`;
}

/** Inverse of `redisPubSubChannel` for a known prefix: strips `<prefix>:{` and `}` without a lookup. */
export function channelOfPubSub(pubsub: string, prefix: string): string {
  return pubsub.slice(prefix.length + 2, -1);
}

/**
 * Shard of a channel: FNV-1a (32 bit) over the UTF-8 bytes of its name, modulo the shard count. Stable across
 * processes and versions: every gateway and worker must agree, and any language can reproduce it.
 */
export function shardOf(channel: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  const byte = (b: number): void => {
    h = Math.imul(h ^ b, 0x01000193);
  };
  for (let i = 0; i < channel.length; i++) {
    let c = channel.charCodeAt(i);
    if (c < 0x80) {
      byte(c);
    } else if (c < 0x800) {
      byte(0xc0 | (c >> 6));
      byte(0x80 | (c & 0x3f));
    } else {
      const next = i + 1 < channel.length ? channel.charCodeAt(i + 1) : 0;
      if (c >= 0xd800 && c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        byte(0xf0 | (c >> 18));
        byte(0x80 | ((c >> 12) & 0x3f));
      } else {
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate encodes as U+FFFD, as Buffer does
        byte(0xe0 | (c >> 12));
      }
      byte(0x80 | ((c >> 6) & 0x3f));
      byte(0x80 | (c & 0x3f));
    }
  }
  return (h >>> 0) % shards;
}
