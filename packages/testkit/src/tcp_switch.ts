// A TCP forwarder standing in for a load balancer: clients dial one port, the test picks the backend and cuts links.
import net from 'node:net';

export class TcpSwitch {
  private readonly links = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private target: number | undefined,
  ) {}

  /** Listens on a free port and forwards to `target` (undefined: refuse connections). */
  static async start(target?: number): Promise<TcpSwitch> {
    let sw: TcpSwitch | undefined;
    const server = net.createServer((client) => sw?.accept(client));
    sw = new TcpSwitch(server, target);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return sw;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  /** New connections go to this backend port; undefined refuses them. Existing links stay. */
  setTarget(target: number | undefined): void {
    this.target = target;
  }

  /** Drops every open link at once, as a dying balancer or network would. */
  cutAll(): void {
    for (const socket of this.links) socket.destroy();
    this.links.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.target === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      this.links.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.links.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
