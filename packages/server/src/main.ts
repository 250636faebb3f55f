// The switchboard CLI: loads the config, starts the engine and the gateway of the chosen role, and stops them on signals.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { createBroker, startDocStore, type Broker, type DocStore } from '@switchboard/engine';
import { startGateway, UwsFallbackError, type Gateway } from '@switchboard/gateway';
import { serveWorkerHttp, startWorker, type Worker, type WorkerHttp } from '@switchboard/worker';
import { ConfigError, loadConfig, type Config } from './config';

/** Exit code for anything the user can fix: bad flags or config, Redis unreachable, port taken. */
const EXIT_USAGE = 2;

/** Runs the CLI with `argv` (without node and script); user errors exit 2 with one line on stderr. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) exitWith(EXIT_USAGE, err.message);
    throw err;
  }
  if (loaded.action !== 'run') {
    process.stdout.write(loaded.text);
    return;
  }
  const { config, warnings } = loaded;
  const logger = processLogger(config);
  // Unique per process (names may repeat): control messages and document replies are addressed by it.
  const nodeId = randomUUID();
  if (config.role === 'worker') await serveWorker(config, warnings, logger, nodeId);
  else await serveGateway(config, warnings, logger, nodeId);
}

function processLogger(config: Config): Logger {
  // Synchronous writes: the fatal line before a crash exit must not be lost in a buffer.
  const base = { pid: process.pid, hostname: hostname(), ...(config.nodeName ? { node: config.nodeName } : {}) };
  const logger = pino({ level: config.logLevel, base }, pino.destination({ dest: 1, sync: true }));
  // A process in an unknown state must not keep serving: log and exit, the orchestrator restarts it.
  process.on('uncaughtException', (err) => crash(logger, err, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => crash(logger, reason, 'unhandled rejection'));
  return logger;
}

async function serveGateway(config: Config, warnings: string[], logger: Logger, nodeId: string): Promise<void> {
  let broker: Broker;
  let docs: DocStore;
  try {
    const engine = { redis: config.redis, node: nodeId, onError: (err: Error) => logger.error({ err }, 'engine error') };
    broker = createBroker(engine);
    // The engine's message already names the unreachable address (without its password).
    await broker.start();
    docs = await startDocStore(broker, { ...engine, partitions: config.docPartitions });
  } catch (err) {
    exitWith(EXIT_USAGE, errorMessage(err));
  }

  let gateway: Gateway;
  try {
    gateway = await startGateway({
      host: config.host,
      port: config.port,
      internalPort: config.internalPort,
      broker,
      docs,
      channels: config.channels,
      auth: config.auth,
      apiKey: config.apiKey,
      logger,
      allowUwsFallback: config.allowUwsFallback,
      demo: config.role === 'standalone' || config.dev,
      dev: config.dev,
      admin: config.admin,
      node: config.nodeName,
      nodeId,
      positionCheckIntervalMs: config.positionCheckIntervalMs,
      presenceTtlMs: config.presenceTtlMs,
      limits: config.limits,
      pusherApps: config.pusherApps,
    });
  } catch (err) {
    await Promise.all([docs.close(), broker.close()]).catch(() => undefined);
    if (err instanceof UwsFallbackError) exitWith(EXIT_USAGE, err.message);
    exitWith(EXIT_USAGE, `cannot start the gateway: ${errorMessage(err)}`);
  }

  logger.info({ port: gateway.port, internalPort: gateway.internalPort, role: config.role, engine: broker.kind, config: config.configFile }, 'listening');
  process.stderr.write(`${readyLine(config, gateway.port)}\n`);
  printWarnings(warnings);
  // The engine still has to close after the drain: keep part of the grace period for it.
  const graceMs = config.shutdownGraceMs;
  stopOnSignals(graceMs, logger, async () => {
    await gateway.shutdown(Math.max(0, graceMs - Math.min(2000, graceMs / 5)));
    await docs.close();
    await broker.close();
  });
}

async function serveWorker(config: Config, warnings: string[], logger: Logger, nodeId: string): Promise<void> {
  let worker: Worker;
  try {
    worker = await startWorker({ redis: config.redis, partitions: config.docPartitions, leaseMs: config.docLeaseMs, waitReplicas: config.docWaitReplicas, logger, nodeId });
  } catch (err) {
    exitWith(EXIT_USAGE, errorMessage(err));
  }
  let endpoints: WorkerHttp;
  try {
    endpoints = await serveWorkerHttp(worker, config.host, config.port, logger);
  } catch (err) {
    await worker.stop().catch(() => undefined);
    exitWith(EXIT_USAGE, errorMessage(err));
  }
  logger.info({ port: endpoints.port, role: 'worker', worker: worker.id, partitions: config.docPartitions }, 'listening');
  printWarnings(warnings);
  stopOnSignals(config.shutdownGraceMs, logger, async () => {
    // Finishes the requests in hand and hands its partitions back, so another worker takes them at once.
    await worker.stop();
    await endpoints.close();
  });
}

/** Where to go, in plain words, once the gateway listens (the JSON log line says the same for machines). */
function readyLine(config: Config, port: number): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const base = `http://${host}:${port}`;
  const ws = `ws://${host}:${port}/connection/websocket`;
  const consoleUrl = config.admin ? `; the console is ${base}/console` : '';
  if (config.role === 'standalone') {
    return `switchboard: standalone node running: open ${base}/ in a browser for the demo; clients connect to ${ws}${consoleUrl}; stop with Ctrl-C`;
  }
  const demo = config.dev ? `the demo is ${base}/, ` : '';
  return `switchboard: gateway running on ${base}: ${demo}clients connect to ${ws}, the server API is ${base}/api, health ${base}/readyz, metrics ${base}/metrics${consoleUrl}`;
}

/** Only after a successful start: a start that fails prints exactly one line on stderr, the reason. */
function printWarnings(warnings: string[]): void {
  for (const warning of warnings) process.stderr.write(`switchboard: warning: ${oneLine(warning)}\n`);
}

/** SIGTERM/SIGINT run `shutdown` once; exit 1 if it fails or outlasts the grace period. */
function stopOnSignals(graceMs: number, logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    // Ctrl-C under `npm start` delivers SIGINT twice (terminal and npm): later signals change nothing.
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs }, 'shutting down');
    setTimeout(() => {
      logger.error({ graceMs }, 'shutdown did not finish within the grace period');
      process.exit(1);
    }, graceMs).unref();
    try {
      await shutdown();
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

function crash(logger: Logger, reason: unknown, what: string): never {
  logger.fatal({ err: reason }, what);
  process.exit(1);
}

/** Exactly one line on stderr, then exit: what scripts and orchestrators show the operator. */
function exitWith(code: number, message: string): never {
  process.stderr.write(`switchboard: ${oneLine(message)}\n`);
  process.exit(code);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
