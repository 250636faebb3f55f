// One Redis shard: a command connection (scripts) and a pub/sub connection, their readiness and their errors.
import type Redis from 'ioredis';
import { BrokerUnavailableError } from './errors';
import { closeConnection, redisConnection } from './redis_connection';
import type { ShardAddress } from './redis_url';
import { withScripts, type ScriptedRedis } from './redis_scripts';
import { ShardSubscriber } from './redis_subscriber';

export interface ShardEvents {
  message(channel: string, payload: string): void;
  /** A message on a control channel (subscribed on shard 0 only). */
  control(payload: string): void;
  /** The pub/sub connection restored its subscriptions after a loss. */
  restored(): void;
  /** The command connection is ready (again). */
  commandReady(): void;
  error(err: Error): void;
}

export class RedisShard {
  /** The URL without its password, for messages and logs. */
  readonly label: string;
  readonly subscriber: ShardSubscriber;
  private readonly cmd: ScriptedRedis;
  private readonly sub: Redis;
  private started = false;
  private lastError: Error | undefined;

  constructor(address: ShardAddress, prefix: string, connectTimeoutMs: number, events: ShardEvents) {
    this.label = address.label;
    this.cmd = withScripts(redisConnection(address, { name: 'switchboard', autoPipelining: true, connectTimeoutMs }));
    this.sub = redisConnection(address, { name: 'switchboard-pubsub', connectTimeoutMs });
    this.subscriber = new ShardSubscriber(this.sub, prefix, this.label, events);
    this.cmd.on('ready', () => events.commandReady());
    this.watchErrors(this.cmd, 'command', events);
    this.watchErrors(this.sub, 'pub/sub', events);
  }

  /** Connects both connections or rejects, naming the URL, within `timeoutMs`. */
  async connect(timeoutMs: number): Promise<void> {
    const connected = Promise.all([this.cmd.connect(), this.sub.connect()]);
    connected.catch(() => undefined); // the timeout may win the race
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([connected, timeout]);
      this.started = true;
    } catch (err) {
      this.cmd.disconnect();
      this.sub.disconnect();
      const cause = this.lastError?.message ?? (err as Error).message;
      throw new Error(`cannot connect to Redis at ${this.label}: ${cause}`);
    } finally {
      clearTimeout(timer);
    }
  }

  isReady(): boolean {
    return this.cmd.status === 'ready' && this.subscriber.isReady();
  }

  /** The command connection, or a BrokerUnavailableError right away while it is down. */
  commands(): ScriptedRedis {
    if (this.cmd.status !== 'ready') throw new BrokerUnavailableError(`redis ${this.label} is unavailable (${this.cmd.status})`);
    return this.cmd;
  }

  /** Turns a failed command into BrokerUnavailableError unless Redis itself answered with an error. */
  commandError(err: unknown): Error {
    if (!(err instanceof Error)) return new Error(String(err));
    if (err.name === 'ReplyError' || err instanceof BrokerUnavailableError) return err;
    return new BrokerUnavailableError(`redis ${this.label}: ${err.message}`);
  }

  async close(): Promise<void> {
    this.started = false; // closing on purpose is no outage to report
    this.subscriber.close();
    this.sub.disconnect();
    // QUIT lets publishes already sent get their replies; a connection that is down (or never started) just goes.
    await closeConnection(this.cmd);
  }

  /**
   * Reports each outage once, by its first error or by the close (a server shutting down closes cleanly), not
   * every retry's error; listening also keeps ioredis from printing "Unhandled error event".
   */
  private watchErrors(conn: Redis, role: string, events: ShardEvents): void {
    let reported = false;
    const report = (what: string): void => {
      if (!this.started || reported) return;
      reported = true;
      events.error(new Error(`redis ${this.label} (${role} connection): ${what}`));
    };
    conn.on('ready', () => (reported = false));
    conn.on('error', (err: Error) => {
      this.lastError = err;
      report(err.message);
    });
    conn.on('close', () => report('connection lost'));
  }
}

