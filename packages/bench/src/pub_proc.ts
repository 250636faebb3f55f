// A publisher process: publishes over the HTTP API at a constant offered rate (open loop), each payload holding
// its intended send time, so queueing in the publisher or the server counts in the measured latency.
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

let pools: HttpPool[] = [];
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

serve({
  init: (args: PublisherInit) => {
    for (const p of pools) p.close();
    pools = args.ports.map((port) => new HttpPool(args.host, port, args.poolPerPort, args.headers));
    api = args.api;
  },
  run: (args: PublishRun) => run(args),
});
