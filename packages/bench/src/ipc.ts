// Request/response over the Node IPC channel between the orchestrator and its load-generator processes.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

interface CallMessage {
  id: number;
  cmd: string;
  args: unknown;
}

interface ReplyMessage {
  id: number;
  result?: unknown;
  error?: string;
}

/** The compiled entry point of a bench process; from src/ (jest) or dist/ alike, it lives in dist/. */
export function benchScript(name: string): string {
  return path.resolve(__dirname, '..', 'dist', `${name}.js`);
}

export class ChildLink {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exitError: Error | undefined;
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (raw) => {
      const msg = raw as ReplyMessage;
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.error !== undefined) w.reject(new Error(`${name}: ${msg.error}`));
      else w.resolve(msg.result);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitError = new Error(`${name} exited (${signal ?? code})`);
        for (const w of this.waiting.values()) w.reject(this.exitError);
        this.waiting.clear();
        resolve();
      });
    });
  }

  /** Forks `dist/<script>.js`; `execArgv` adds node flags (e.g. a larger heap). */
  static start(script: string, name: string, execArgv: string[] = []): ChildLink {
    const child = fork(benchScript(script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    const link = new ChildLink(name, child);
    process.once('exit', () => child.kill('SIGKILL'));
    return link;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args } satisfies CallMessage);
    });
  }

  /** Asks the process to exit and waits for it (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.exitError) return;
    this.call('exit').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export type Handlers = Record<string, (args: never) => unknown>;

/** The child side: answers each call with its handler's (awaited) result. `exit` ends the process. */
export function serve(handlers: Handlers): void {
  process.on('message', (raw) => {
    const msg = raw as CallMessage;
    if (msg.cmd === 'exit') {
      process.exit(0);
    }
    const handler = handlers[msg.cmd];
    const reply = (r: ReplyMessage): void => {
      process.send?.(r);
    };
    if (!handler) {
      reply({ id: msg.id, error: `unknown command ${msg.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg.args as never))
      .then(
        (result) => reply({ id: msg.id, result: result ?? null }),
        (err: unknown) => reply({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  // The orchestrator died: nothing left to report to.
  process.on('disconnect', () => process.exit(0));
}
