// A publisher process: publishes over the HTTP API at a constant offered rate (open loop), each payload holding
// its intended send time, so queueing in the publisher or the server counts in the measured latency; or, for the
// API throughput scenario, keeps every request slot of its pools busy for a while (closed loop).
import { HttpPool } from './http_pool';
import { serve } from './ipc';
import { LatencyRecorder } from './latency';
import { nowMicros, payloadJson } from './payload';
import { publishRequest, type PublishApi } from './publish_api';

export interface PublisherInit {
  host: string;
  ports: number[];
  /** Keep-alive connections per port. */
  poolPerPort: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining); 1 waits for each response before the next request. */
  depth: number;
  headers: Record<string, string>;
  /** Which publish API the system speaks. */
  api: PublishApi;
}

export interface PublishRun {
  step: number;
  /** Publications per second, offered whatever the server does. */
  rate: number;
  durationMs: number;
  channels: string[];
  /** `cycle`: channels in turn; `random`: a random channel each time. */
  pick: 'cycle' | 'random';
  size: number;
  /** How long to wait for the last responses after the schedule ends. */
  settleMs?: number;
}

export interface PublishResult {
  /** Requests written (all of the schedule). */
  sent: number;
  /** Answered 200 without an error body. */
  ok: number;
  failed: number;
  /** Successful publishes per channel index. */
  perChannel: number[];
  errors: string[];
  /** How far behind its schedule the publisher fell at worst (µs): above a few ms it could not offer the rate. */
  maxLagUs: number;
  /** Requests still waiting for a free connection at the end of the schedule. */
  queuedAtEnd: number;
  startUs: number;
  endUs: number;
  /** Publish request latency (sent → answered), encoded histogram: where publisher-side queueing shows. */
  responseHist: string;
}

/** A closed-loop run: every request slot (connections × depth on each port) sends its next publish when answered. */
export interface ClosedLoopRun {
  step: number;
  durationMs: number;
  channels: string[];
  size: number;
  /** How long to wait for the last responses after the duration. */
  settleMs?: number;
}

export interface ClosedLoopResult {
  /** Requests written. */
  sent: number;
  /** Answered 200 without an error body. */
  ok: number;
  /** Answered otherwise, failed on the connection, or unanswered by the end of the settle time. */
  failed: number;
  errors: string[];
  /** From the first request to the last answer (or the end of the settle time). */
  startUs: number;
  endUs: number;
  /** Latency of the requests answered OK (posted → answered), encoded histogram. */
  responseHist: string;
}

let pools: HttpPool[] = [];
let slotsPerPool = 0;
let api: PublishApi = { kind: 'centrifugo' };

function run(args: PublishRun): Promise<PublishResult> {
  const total = Math.max(1, Math.round((args.rate * args.durationMs) / 1000));
  const intervalUs = 1e6 / args.rate;
  const perChannel = new Array<number>(args.channels.length).fill(0);
  const errors: string[] = [];
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let maxLagUs = 0;
  let queuedAtEnd = 0;
  const startUs = nowMicros() + 2000;
  const channelJson = args.channels.map((c) => JSON.stringify(c));
  let endUs = 0;
  const responses = new LatencyRecorder();

  return new Promise((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      failed += sent - ok - failed; // unanswered by the deadline
      resolve({ sent, ok, failed, perChannel, errors, maxLagUs, queuedAtEnd, startUs, endUs, responseHist: responses.encode() });
    };
    const tick = (): void => {
      const now = nowMicros();
      const nowSeconds = Math.floor(Date.now() / 1000);
      while (sent < total) {
        const intended = startUs + sent * intervalUs;
        if (intended > now) break;
        const lag = now - intended;
        if (lag > maxLagUs) maxLagUs = lag;
        const c = args.pick === 'cycle' ? sent % args.channels.length : Math.floor(Math.random() * args.channels.length);
        const payload = payloadJson({ seq: sent, intendedUs: Math.round(intended), step: args.step, channel: c }, args.size);
        const req = publishRequest(api, channelJson[c], payload, nowSeconds);
        const pool = pools[sent % pools.length];
        sent++;
        const postedUs = nowMicros();
        pool.post(req.target, req.body, (status, resBody, err) => {
          if (finished) return;
          responses.record(nowMicros() - postedUs);
          if (!err && status === 200 && resBody !== undefined && !resBody.includes('"error"')) {
            ok++;
            perChannel[c]++;
          } else {
            failed++;
            if (errors.length < 5) errors.push(err ? err.message : `HTTP ${status}: ${resBody?.toString('utf8').slice(0, 200)}`);
          }
          if (sent === total && ok + failed === total) finish();
        });
      }
      if (sent < total) {
        setTimeout(tick, 1);
        return;
      }
      endUs = nowMicros();
      queuedAtEnd = pools.reduce((n, p) => n + p.queued, 0);
      setTimeout(finish, args.settleMs ?? 15000);
    };
    setTimeout(tick, 1);
  });
}

/**
 * A closed-loop slot whose request failed on its connection waits this long before the next: a server that closes
 * every pipelined connection (uWS) would otherwise get reconnects as fast as the load generator can open them,
 * tens of thousands a second, filling the machine's port range with TIME_WAIT sockets.
 */
const FAILED_SLOT_PAUSE_MS = 10;

function closedLoop(args: ClosedLoopRun): Promise<ClosedLoopResult> {
  const errors: string[] = [];
  const channelJson = args.channels.map((c) => JSON.stringify(c));
  const responses = new LatencyRecorder();
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let running = pools.length * slotsPerPool;
  const startUs = nowMicros();
  const deadlineUs = startUs + args.durationMs * 1000;

  return new Promise((resolve) => {
    let finished = false;
    let settleTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (settleTimer) clearTimeout(settleTimer);
      const endUs = nowMicros();
      failed += sent - ok - failed; // unanswered by the end of the settle time
      resolve({ sent, ok, failed, errors, startUs, endUs, responseHist: responses.encode() });
    };
    // One chain per request slot: publish, and on the answer publish again until the duration is over.
    const next = (pool: HttpPool): void => {
      const postedUs = nowMicros();
      if (postedUs >= deadlineUs) {
        if (--running === 0) finish();
        return;
      }
      const c = Math.floor(Math.random() * args.channels.length);
      const payload = payloadJson({ seq: sent, intendedUs: Math.round(postedUs), step: args.step, channel: c }, args.size);
      const req = publishRequest(api, channelJson[c], payload, Math.floor(Date.now() / 1000));
      sent++;
      pool.post(req.target, req.body, (status, resBody, err) => {
        if (finished) return;
        if (!err && status === 200 && resBody !== undefined && !resBody.includes('"error"')) {
          ok++;
          responses.record(nowMicros() - postedUs);
        } else {
          failed++;
          if (errors.length < 5) errors.push(err ? err.message : `HTTP ${status}: ${resBody?.toString('utf8').slice(0, 200)}`);
        }
        if (err) setTimeout(() => next(pool), FAILED_SLOT_PAUSE_MS);
        else next(pool);
      });
    };
    for (const pool of pools) for (let i = 0; i < slotsPerPool; i++) next(pool);
    settleTimer = setTimeout(finish, args.durationMs + (args.settleMs ?? 10000));
  });
}

serve({
  init: (args: PublisherInit) => {
    for (const p of pools) p.close();
    pools = args.ports.map((port) => new HttpPool(args.host, port, args.poolPerPort, args.headers, args.depth));
    slotsPerPool = args.poolPerPort * args.depth;
    api = args.api;
  },
  run: (args: PublishRun) => run(args),
  closedLoop: (args: ClosedLoopRun) => closedLoop(args),
});
