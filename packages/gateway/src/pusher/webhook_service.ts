// Pusher webhooks on one gateway, wired: what is observed here goes to the cluster's outbox, and whichever gateway
// holds the outbox's lease sends it on. Started only when some app has webhooks.
import { createOccupancy, createOutbox, type Broker } from '@switchboard/engine';
import type { Logger } from 'pino';
import type { ChannelCore } from '../core';
import type { Hub } from '../hub';
import type { GatewayMetrics } from '../metrics';
import type { PresenceTracker } from '../presence';
import type { PusherEdgeApp } from './edge_apps';
import { WebhookEmitter } from './webhook_events';
import { WebhookMetrics } from './webhook_metrics';
import { OccupancyTracker } from './webhook_occupancy';
import { DEFAULT_SENDER_OPTIONS, WebhookSender, type WebhookSenderOptions } from './webhook_sender';

/** Events the outbox keeps for receivers that are behind (down); beyond it the oldest go, counted as dropped. */
export const MAX_QUEUED_WEBHOOK_EVENTS = 100_000;
/** How long a standalone gateway shutting down keeps sending what is queued. */
const MEMORY_DRAIN_MS = 2000;
/** The outbox's name in the engine. */
const OUTBOX = 'pusher-webhooks';

export interface WebhookDeps {
  apps: readonly PusherEdgeApp[];
  broker: Broker;
  hub: Hub;
  presenceTracker: PresenceTracker;
  core: ChannelCore;
  /** This gateway's id in the cluster. */
  node: string;
  logger: Logger;
  metrics: GatewayMetrics;
  /** The presence TTL: a dead gateway's channels are vacated, and its members leave, this long after it stopped. */
  ttlMs: number;
  /** Overrides of the sender's timing (tests). */
  sender?: Partial<Omit<WebhookSenderOptions, 'node' | 'duty'>>;
}

export interface Webhooks {
  /** Hands what this gateway observed to the outbox and lets the lease go (after its subscribers were closed). */
  stop(): Promise<void>;
}

export function startWebhooks(deps: WebhookDeps): Webhooks | undefined {
  const apps = deps.apps.filter((a) => a.app.webhooks.length > 0);
  if (apps.length === 0) return undefined;
  const logger = deps.logger.child({ part: 'webhooks' });
  const metrics = new WebhookMetrics(deps.metrics.registry);
  const outbox = createOutbox(deps.broker, OUTBOX, { maxLength: MAX_QUEUED_WEBHOOK_EVENTS });
  const emitter = new WebhookEmitter(apps, outbox, logger, metrics);

  if (emitter.wants(['client_event'])) deps.core.onPublished((channel, data, opts) => emitter.published(channel, data, opts));
  deps.presenceTracker.onMembers({
    joined: (channel, info) => emitter.member(channel, 'member_added', info),
    left: (channel, info) => emitter.member(channel, 'member_removed', info),
  });
  // Members are tracked with occupancy too: the sweep of a dead gateway's channels is what announces its members' leaves.
  const occupancy = emitter.wants(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'])
    ? new OccupancyTracker(createOccupancy(deps.broker, deps.node), deps.hub, deps.presenceTracker, emitter, logger, deps.ttlMs)
    : undefined;

  const options: WebhookSenderOptions = {
    ...DEFAULT_SENDER_OPTIONS,
    // A lease no longer than the presence TTL, so a dead sender's duty is taken over about as fast as it is needed.
    leaseMs: Math.max(2000, Math.min(DEFAULT_SENDER_OPTIONS.leaseMs, deps.ttlMs)),
    dutyIntervalMs: Math.max(200, Math.min(DEFAULT_SENDER_OPTIONS.dutyIntervalMs, deps.ttlMs / 3)),
    ...deps.sender,
    node: deps.node,
    duty: occupancy && (() => occupancy.sweep()),
  };
  const sender = new WebhookSender(
    apps.map((a) => a.app),
    outbox,
    logger,
    metrics,
    options,
  );
  sender.start();
  logger.info({ apps: apps.map((a) => a.app.id), receivers: apps.reduce((n, a) => n + a.app.webhooks.length, 0) }, 'pusher webhooks on');

  return {
    async stop() {
      occupancy?.stop();
      await Promise.all([occupancy?.settled(), deps.presenceTracker.settled()]);
      await emitter.stop();
      // Redis keeps the outbox for the next holder; the memory engine's goes with this process, so send it first.
      await sender.stop(deps.broker.kind === 'memory' ? MEMORY_DRAIN_MS : 0);
    },
  };
}
