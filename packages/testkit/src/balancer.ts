// A round-robin TCP balancer for fault tests: spreads connections over live backends, skips ones that refuse.
import net from 'node:net';

export class TcpBalancer {
  private backends: number[] = [];
  private next = 0;
  private readonly links = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(backends: number[]): Promise<TcpBalancer> {
    let lb: TcpBalancer | undefined;
    const server = net.createServer((client) => lb?.accept(client));
    lb = new TcpBalancer(server);
    lb.setBackends(backends);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return lb;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  setBackends(ports: number[]): void {
    this.backends = [...ports];
  }

  private accept(client: net.Socket, tried = 0): void {
    client.pause();
    this.links.add(client);
    client.on('error', () => undefined);
    if (this.backends.length === 0 || tried >= this.backends.length) {
      client.destroy();
      return;
    }
    const port = this.backends[this.next++ % this.backends.length];
    const upstream = net.connect(port, '127.0.0.1');
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.links.add(upstream);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    upstream.on('error', () => {
      // A backend that refuses (killed, restarting): like a balancer's passive health check, try the next one.
      if (!connected) this.accept(client, tried + 1);
    });
    const drop = (): void => {
      this.links.delete(client);
      this.links.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    upstream.once('close', () => connected && drop());
    client.once('close', drop);
  }

  /** Stops listening and cuts every link (its clients see the balancer go away). */
  async stop(): Promise<void> {
    this.backends = [];
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.links) s.destroy();
    await closed;
  }
}
