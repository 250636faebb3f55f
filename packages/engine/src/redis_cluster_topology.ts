// Redis Cluster: commands through ioredis's Cluster (slot routing, MOVED/ASK), publications over sharded pub/sub
// subscribed per primary on our own connections (control messages too, on channels spread over the slots), and
// channels placed again whenever their slot moves.
import type { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { BrokerUnavailableError } from './errors';
import { clusterConnection } from './redis_connection';
import {
  channelOfPubSub,
  CLUSTER_CONTROL_SHARDS,
  clusterControlChannel,
  clusterNodeChannel,
  isClusterControlChannel,
  redisPubSubChannel,
  shardOf,
} from './redis_keys';
import { withScripts, type ChannelCommands } from './redis_scripts';
import type { ChannelConnection, RedisTopology, TopologyEvents } from './redis_topology';
import type { ClusterAddress } from './redis_url';
import { ShardedSubscriber } from './sharded_subscriber';

/** Delay before placing channels again after a loss; doubles up to the maximum while the cluster settles. */
const REPAIR_MIN_MS = 100;
const REPAIR_MAX_MS = 1000;

export class ClusterTopology implements RedisTopology, ChannelConnection {
  readonly publishCommand = 'spublish' as const;
  private readonly cmd: Cluster & ChannelCommands;
  /** Spreads control messages without an order key over the shards. */
  private nextControlShard = 0;
  private readonly label: string;
  /** One sharded pub/sub connection per primary, by `host:port`. */
  private readonly subscribers = new Map<string, Promise<ShardedSubscriber>>();
  private readonly desired = new Set<string>();
  /** Channel → the node whose connection holds its subscription. */
  private readonly placed = new Map<string, string>();
  /** Wanted channels that lost their subscription (slot moved, node gone) and wait for `repair`. */
  private readonly unplaced = new Set<string>();
  /** Channel → the node it lost its subscription on, until placed again: tells a moved slot from a reconnect. */
  private readonly lostFrom = new Map<string, string>();
  /** Slots whose channels were placed on another node since the last `restored`. */
  private readonly movedSlots = new Set<number>();
  private repairTimer: NodeJS.Timeout | undefined;
  private repairDelayMs = REPAIR_MIN_MS;
  private started = false;
  private closing = false;

  constructor(
    private readonly address: ClusterAddress,
    private readonly prefix: string,
    private readonly connectTimeoutMs: number,
    private readonly events: TopologyEvents,
  ) {
    this.label = address.label;
    this.cmd = withScripts(clusterConnection(address, { name: 'switchboard', autoPipelining: true, connectTimeoutMs }));
    this.cmd.on('error', (err: Error) => {
      if (this.started) events.error(new Error(`redis ${this.label} (command connection): ${err.message}`));
    });
  }

  async start(node: string | undefined): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    });
    const connected = (async () => {
      await this.cmd.connect();
      // Control channels are placed, moved and repaired like any channel's subscription.
      if (node !== undefined) {
        const control = Array.from({ length: CLUSTER_CONTROL_SHARDS }, (_, i) => clusterControlChannel(i));
        await this.subscribe([...control, clusterNodeChannel(node)]);
      }
    })();
    connected.catch(() => undefined); // the timeout may win the race
    try {
      await Promise.race([connected, timeout]);
      this.started = true;
    } catch (err) {
      this.cmd.disconnect();
      void this.closeSubscribers();
      throw new Error(`cannot connect to Redis Cluster at ${this.label}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.started = false;
    this.closing = true;
    clearTimeout(this.repairTimer);
    await this.closeSubscribers();
    if (this.cmd.status === 'ready') await this.cmd.quit().catch(() => undefined);
    this.cmd.disconnect();
  }

  private async closeSubscribers(): Promise<void> {
    const subs = await Promise.allSettled(this.subscribers.values());
    for (const s of subs) if (s.status === 'fulfilled') s.value.close();
    this.subscribers.clear();
  }

  isReady(): boolean {
    return this.started && this.cmd.status === 'ready' && this.unplaced.size === 0;
  }

  connectionFor(): ChannelConnection {
    return this;
  }

  commands(): ChannelCommands {
    if (this.cmd.status !== 'ready') throw new BrokerUnavailableError(`redis ${this.label} is unavailable (${this.cmd.status})`);
    return this.cmd;
  }

  commandError(err: unknown): Error {
    if (!(err instanceof Error)) return new Error(String(err));
    if (err instanceof BrokerUnavailableError) return err;
    // A script's own error is Redis answering; a cluster in transition is not.
    if (err.name === 'ReplyError' && !/^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|READONLY|MASTERDOWN)\b/.test(err.message)) return err;
    return new BrokerUnavailableError(`redis ${this.label}: ${err.message}`);
  }

  async subscribe(channels: string[]): Promise<void> {
    for (const channel of channels) this.desired.add(channel);
    const failed = await this.place(channels);
    if (failed.length === 0) return;
    // The slot map may be stale (a slot moved, a failover): refresh it and try once more before giving up.
    await this.refreshSlots();
    const still = await this.place(failed);
    if (still.length === 0) return;
    for (const channel of still) {
      this.desired.delete(channel);
      this.unplaced.delete(channel);
      this.lostFrom.delete(channel);
    }
    throw new BrokerUnavailableError(`redis ${this.label}: cannot subscribe ${still.length} channel(s) on their slot's primary`);
  }

  async unsubscribe(channels: string[]): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const channel of channels) {
      this.desired.delete(channel);
      this.unplaced.delete(channel);
      this.lostFrom.delete(channel);
      const node = this.placed.get(channel);
      if (node === undefined) continue;
      this.placed.delete(channel);
      const list = byNode.get(node);
      if (list) list.push(channel);
      else byNode.set(node, [channel]);
    }
    await Promise.all(
      [...byNode].map(async ([node, list]) => {
        const sub = await this.subscribers.get(node)?.catch(() => undefined);
        // A lost connection has dropped its subscriptions anyway.
        await sub?.sunsubscribe(list.map((c) => redisPubSubChannel(c, this.prefix))).catch(() => undefined);
      }),
    );
  }

  async publishControl(message: string, toNode: string | undefined, orderKey?: string): Promise<void> {
    // One shard channel per order key: its messages go through one node and keep their order.
    const shard = orderKey === undefined ? this.nextControlShard++ % CLUSTER_CONTROL_SHARDS : shardOf(orderKey, CLUSTER_CONTROL_SHARDS);
    const target = toNode === undefined ? clusterControlChannel(shard) : clusterNodeChannel(toNode);
    try {
      await this.commands().spublish(redisPubSubChannel(target, this.prefix), message);
    } catch (err) {
      throw this.commandError(err);
    }
  }

  /** SSUBSCRIBEs each channel on the primary that owns its slot; returns the channels that could not be placed. */
  private async place(channels: string[]): Promise<string[]> {
    const byNode = new Map<string, string[]>();
    const failed: string[] = [];
    for (const channel of channels) {
      if (!this.desired.has(channel) || this.placed.has(channel)) continue;
      const node = this.ownerOf(channel);
      if (node === undefined) {
        failed.push(channel);
        continue;
      }
      const list = byNode.get(node);
      if (list) list.push(channel);
      else byNode.set(node, [channel]);
    }
    await Promise.all(
      [...byNode].map(async ([node, list]) => {
        try {
          const sub = await this.subscriberFor(node);
          await sub.ssubscribe(list.map((c) => redisPubSubChannel(c, this.prefix)));
          for (const channel of list) {
            if (this.desired.has(channel)) {
              this.placed.set(channel, node);
              this.unplaced.delete(channel);
              const from = this.lostFrom.get(channel);
              if (from !== undefined) {
                this.lostFrom.delete(channel);
                if (from !== node) this.movedSlots.add(this.slotOf(channel));
              }
            }
          }
        } catch {
          failed.push(...list);
        }
      }),
    );
    for (const channel of failed) this.unplaced.add(channel);
    return failed;
  }

  /** `host:port` of the primary serving the channel's slot, from the driver's slot map. */
  private ownerOf(channel: string): string | undefined {
    return this.cmd.slots[this.slotOf(channel)]?.[0];
  }

  private slotOf(channel: string): number {
    return calculateSlot(redisPubSubChannel(channel, this.prefix));
  }

  private subscriberFor(node: string): Promise<ShardedSubscriber> {
    let sub = this.subscribers.get(node);
    if (sub) return sub;
    const colon = node.lastIndexOf(':');
    const host = node.slice(0, colon);
    const port = Number(node.slice(colon + 1));
    sub = ShardedSubscriber.connect({ host, port, username: this.address.username, password: this.address.password, tls: this.address.tls }, 'switchboard-spubsub', this.connectTimeoutMs, {
      message: (name, payload) => {
        const channel = channelOfPubSub(name, this.prefix);
        // Messages still arrive between SUNSUBSCRIBE and its confirmation; the caller asked for none.
        if (this.placed.get(channel) !== node) return;
        if (isClusterControlChannel(channel)) this.events.control(payload);
        else this.events.message(channel, payload);
      },
      dropped: (names) => this.lost(node, names.map((n) => channelOfPubSub(n, this.prefix))),
      moved: () => undefined, // the failed SSUBSCRIBE is retried by `place`'s caller
      closed: () => {
        if (this.subscribers.get(node) === sub) this.subscribers.delete(node);
        this.lost(node, [...this.placed].filter(([, n]) => n === node).map(([c]) => c));
      },
    });
    this.subscribers.set(node, sub);
    sub.catch(() => {
      if (this.subscribers.get(node) === sub) this.subscribers.delete(node);
    });
    return sub;
  }

  /** Subscriptions the node no longer holds (slot moved, node gone): place them again once the map settles. */
  private lost(node: string, channels: string[]): void {
    if (this.closing) return;
    let any = false;
    for (const channel of channels) {
      if (this.placed.get(channel) !== node) continue;
      this.placed.delete(channel);
      if (this.desired.has(channel)) {
        this.unplaced.add(channel);
        this.lostFrom.set(channel, node);
        any = true;
      }
    }
    if (any) this.scheduleRepair();
  }

  private scheduleRepair(): void {
    if (this.repairTimer || this.closing) return;
    this.repairTimer = setTimeout(() => void this.repair(), this.repairDelayMs);
  }

  private async repair(): Promise<void> {
    this.repairTimer = undefined;
    await this.refreshSlots();
    const failed = await this.place([...this.unplaced]);
    if (failed.length > 0 || this.unplaced.size > 0) {
      this.repairDelayMs = Math.min(this.repairDelayMs * 2, REPAIR_MAX_MS);
      this.scheduleRepair();
      return;
    }
    this.repairDelayMs = REPAIR_MIN_MS;
    const moved = this.movedSlots.size;
    this.movedSlots.clear();
    // Publications may have gone by while the channels had no subscription: the broker checks their positions.
    this.events.restored(moved);
  }

  private refreshSlots(): Promise<void> {
    return new Promise((resolve) => {
      this.cmd.refreshSlotsCache(() => resolve());
    });
  }
}
