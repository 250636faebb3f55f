// The gateway process: uWS app with the WebSocket endpoint, HTTP API and health routes.
import type { GatewayOptions } from './options';

export interface Gateway {
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  isReady(): boolean;
  /** Drains: readiness fails, new connections are refused, clients get 3001, then the listener closes. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startGateway(_options: GatewayOptions): Promise<Gateway> {
  throw new Error('not implemented yet');
}
