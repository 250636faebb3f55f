// `npm start` as a user runs it: it prints where to go, and SIGTERM to the npm process stops the server with it
// (npm's shell would otherwise leave the node process running, holding the port).
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { freePort, waitFor } from '@switchboard/testkit';

const root = path.resolve(__dirname, '..', '..', '..');

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

it('npm start prints the URL to open, and SIGTERM to npm stops the server and frees the port', async () => {
  const port = await freePort();
  const npm = spawn('npm', ['start', '--silent', '--', '--port', String(port)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  npm.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  try {
    await waitFor(() => output.includes(`open http://localhost:${port}/ in a browser`), { timeoutMs: 60000, message: `npm start to listen; it printed:\n${output}` });
    expect(await portOpen(port)).toBe(true);
    npm.kill('SIGTERM');
    await exited;
    await waitFor(async () => !(await portOpen(port)), { timeoutMs: 10000, message: 'the port to be free after SIGTERM' });
  } finally {
    npm.kill('SIGKILL');
  }
}, 90000);
