// A subscriber process: holds up to ~15k protocol connections, counts every delivery of the current step and
// records its latency from the payload's intended send time.
import { LatencyRecorder } from './latency';
import { serve } from './ipc';
import { connectionToken } from './jwt';
import { nowMicros, PLAIN_KEYS, scanDeliveries, type DeliveryVisitor } from './payload';
import { openClient, PAYLOAD_KEYS, type ClientHandlers, type Proto, type ProtoClient } from './protocols';

export interface ConnectArgs {
  proto: Proto;
  host: string;
  /** One entry per connection: the port to dial and the channels to subscribe. */
  clients: { port: number; channels: string[] }[];
  /** With a secret, each connection gets its own HS256 token for user `<userPrefix><n>`. */
  secret?: string;
  /** The Pusher app key, for `proto` 'pusher'. */
  appKey?: string;
  userPrefix: string;
  /** Connections being set up at once. */
  concurrency: number;
}

export interface ConnectResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Monotonic microseconds: when the first connection started and the last one finished setup. */
  startUs: number;
  endUs: number;
  /** Per-connection setup time (TCP + upgrade + connect + subscribe), encoded histogram. */
  setupHist: string;
}

export interface StepReport {
  received: number;
  /** Deliveries carrying another step's id (late ones from an earlier step). */
  stray: number;
  malformed: number;
  /** Connections closed since they were set up, by close code (cumulative until disconnect). */
  closes: Record<string, number>;
  hist: string;
  histCount: number;
  /** When the last delivery of the step arrived (monotonic µs; 0 when none did). */
  lastUs: number;
}

const clients: ProtoClient[] = [];
let step = -1;
let received = 0;
let stray = 0;
let malformed = 0;
let lastUs = 0;
let closes: Record<string, number> = {};
const latency = new LatencyRecorder();
/** Arrival time of the message being scanned: every payload in it arrived together. */
let arrivedUs = 0;
/** How the protocol of the current connections carries payloads (one protocol per process at a time). */
let payloadKeys = PLAIN_KEYS;

const visit: DeliveryVisitor = (_seq, intendedUs, payloadStep) => {
  if (payloadStep === step) {
    received++;
    lastUs = arrivedUs;
    latency.record(arrivedUs - intendedUs);
  } else {
    stray++;
  }
};

const handlers: ClientHandlers = {
  payloads(data) {
    arrivedUs = nowMicros();
    const n = scanDeliveries(data, 0, data.length, visit, payloadKeys);
    if (n >= 0) return n;
    malformed++;
    return -n - 1;
  },
  closed(code) {
    closes[code] = (closes[code] ?? 0) + 1;
  },
};

async function connect(args: ConnectArgs): Promise<ConnectResult> {
  const tokens = args.secret ? args.clients.map((_, i) => connectionToken(args.secret as string, `${args.userPrefix}${i}`)) : [];
  payloadKeys = PAYLOAD_KEYS[args.proto];
  const setup = new LatencyRecorder();
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  let next = 0;
  const startUs = nowMicros();
  const worker = async (): Promise<void> => {
    while (next < args.clients.length) {
      const i = next++;
      const plan = args.clients[i];
      const began = nowMicros();
      try {
        const client = await openClient(args.proto, { host: args.host, port: plan.port, channels: plan.channels, token: tokens[i], appKey: args.appKey }, handlers);
        clients.push(client);
        setup.record(nowMicros() - began);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, worker));
  return { ok, failed, errors, startUs, endUs: nowMicros(), setupHist: setup.encode() };
}

serve({
  connect: (args: ConnectArgs) => connect(args),
  step: (args: { step: number }) => {
    step = args.step;
    received = 0;
    stray = 0;
    malformed = 0;
    lastUs = 0;
    latency.reset();
  },
  count: () => ({ received, stray }),
  report: (): StepReport => ({ received, stray, malformed, closes, hist: latency.encode(), histCount: latency.count, lastUs }),
  /** Open connections: those the server closed are gone. */
  open: () => clients.filter((c) => c.isOpen).length,
  disconnect: () => {
    for (const c of clients) c.close();
    clients.length = 0;
    closes = {};
  },
});
