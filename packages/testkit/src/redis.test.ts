import net from 'node:net';
import { startRedis } from './redis';

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('startRedis', () => {
  it('starts a private server, restarts it empty on the same port, and stops it', async () => {
    const server = await startRedis();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.port).not.toBe(6379);

    const client = server.client();
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');

    await server.restart();
    expect(await client.get('k')).toBeNull();
    await client.quit();

    await server.stop();
    expect(await refusesConnections(server.port)).toBe(true);
    await server.stop(); // a second stop is harmless
  });

  it('passes extra arguments and reports a server that cannot start', async () => {
    const server = await startRedis({ args: ['--maxmemory', '12mb'] });
    const client = server.client();
    expect(await client.config('GET', 'maxmemory')).toEqual(['maxmemory', String(12 * 1024 * 1024)]);
    await client.quit();
    await server.stop();

    await expect(startRedis({ args: ['--no-such-option', 'x'] })).rejects.toThrow(/exited before accepting connections/);
  });
});
