// Pusher webhooks, the pure part: which receiver gets which events, the signed request bodies, and when to retry.
import type { PusherApp, PusherWebhook, WebhookEventType } from './apps';
import { webhookSignatureHeaders } from './signature';

/** One webhook event, with the fields Pusher documents for its type. */
export type WebhookEvent =
  | { readonly name: 'channel_occupied'; readonly channel: string }
  | { readonly name: 'channel_vacated'; readonly channel: string }
  | { readonly name: 'member_added'; readonly channel: string; readonly user_id: string }
  | { readonly name: 'member_removed'; readonly channel: string; readonly user_id: string }
  | {
      readonly name: 'client_event';
      readonly channel: string;
      /** The client event's name (`client-...`). */
      readonly event: string;
      /** The event data as relayed (a string). */
      readonly data: string;
      readonly socket_id: string;
      /** The sender's user id, on presence channels only. */
      readonly user_id?: string;
    };

/** A request ready to send: POST `body` to `url` with `headers`. */
export interface WebhookRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** How many events the body holds (for metrics and logs). */
  readonly events: number;
}

/** Events per request; Pusher batches too, and a receiver handles each request in one go. */
export const MAX_WEBHOOK_EVENTS_PER_REQUEST = 100;

/** The body Pusher sends: `{"time_ms": <ms>, "events": [...]}`, field order fixed so tests can compare bytes. */
export function webhookBody(events: readonly WebhookEvent[], timeMs: number): string {
  return JSON.stringify({ time_ms: timeMs, events: events.map(eventFields) });
}

function eventFields(e: WebhookEvent): Record<string, string> {
  switch (e.name) {
    case 'channel_occupied':
    case 'channel_vacated':
      return { name: e.name, channel: e.channel };
    case 'member_added':
    case 'member_removed':
      return { name: e.name, channel: e.channel, user_id: e.user_id };
    case 'client_event': {
      const out: Record<string, string> = { name: e.name, channel: e.channel, event: e.event, data: e.data, socket_id: e.socket_id };
      if (e.user_id !== undefined) out.user_id = e.user_id;
      return out;
    }
  }
}

/** The events of `events` that `webhook` asked for, in order. */
export function eventsFor(webhook: PusherWebhook, events: readonly WebhookEvent[]): WebhookEvent[] {
  const wanted: ReadonlySet<WebhookEventType> = new Set(webhook.event_types);
  return events.filter((e) => wanted.has(e.name));
}

/**
 * The signed requests that deliver `events` to every webhook of `app`: per receiver, only the types it asked
 * for, at most `maxPerRequest` events per body, each body signed with the app's key and secret.
 */
export function webhookRequests(app: PusherApp, events: readonly WebhookEvent[], timeMs: number, maxPerRequest = MAX_WEBHOOK_EVENTS_PER_REQUEST): WebhookRequest[] {
  const out: WebhookRequest[] = [];
  for (const hook of app.webhooks) {
    const mine = eventsFor(hook, events);
    for (let i = 0; i < mine.length; i += maxPerRequest) {
      const chunk = mine.slice(i, i + maxPerRequest);
      const body = webhookBody(chunk, timeMs);
      const headers = { ...hook.headers, 'Content-Type': 'application/json', ...webhookSignatureHeaders(app, body) };
      out.push({ url: hook.url, headers, body, events: chunk.length });
    }
  }
  return out;
}

// ---- retries ------------------------------------------------------------------------------------------------------

export interface RetryPolicy {
  /** Delay before the first retry, before jitter. */
  readonly baseMs: number;
  /** No delay grows beyond this. */
  readonly maxDelayMs: number;
  /** Attempts in all, the first delivery included; after the last one the events are given up. */
  readonly maxAttempts: number;
}

/**
 * Pusher retries a failed webhook with exponential backoff for about five minutes. 1 s doubling to a 60 s cap,
 * 12 attempts: the 11 waits are 1, 2, 4, 8, 16, 32, then 60 s five times, each cut by up to half by jitter —
 * between about 3 and 6 minutes in all.
 */
export const DEFAULT_WEBHOOK_RETRY: RetryPolicy = Object.freeze({ baseMs: 1000, maxDelayMs: 60_000, maxAttempts: 12 });

/**
 * How long to wait after failed attempt number `attempt` (1 = the first delivery failed), or null to give up.
 * Exponential with "equal jitter": half the step is fixed and half random, so receivers that came back are not
 * hit by every gateway at once and the wait never collapses to zero. `random` returns [0, 1).
 */
export function webhookRetryDelayMs(attempt: number, policy: RetryPolicy = DEFAULT_WEBHOOK_RETRY, random: () => number = Math.random): number | null {
  if (!Number.isInteger(attempt) || attempt < 1 || attempt >= policy.maxAttempts) return null;
  // 2 ** attempt overflows to Infinity long after the cap applies; min() keeps the step finite.
  const step = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (attempt - 1));
  const raw = random();
  const r = raw > 1 ? 1 : raw >= 0 ? raw : 0; // NaN and negatives count as 0
  return Math.round(step / 2 + (step / 2) * r);
}
