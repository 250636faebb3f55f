// Limits, slow clients and draining, on standalone processes started with the limit flags an operator would use.
import { readFileSync } from 'node:fs';
import { RawClient, startSwitchboard, waitFor, type SwitchboardProcess } from '@switchboard/testkit';

const API_KEY = 'limits-key';
const running: SwitchboardProcess[] = [];
const clients: RawClient[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(running.map((p) => p.stop()));
});

async function standalone(args: string[]): Promise<SwitchboardProcess> {
  const p = await startSwitchboard('standalone', ['--dev', '--api-key', API_KEY, '--log-level', 'warn', ...args]);
  running.push(p);
  return p;
}

async function open(p: SwitchboardProcess): Promise<RawClient> {
  const c = await RawClient.open(p.wsUrl);
  clients.push(c);
  expect((await c.command('connect', {})).error).toBeUndefined();
  return c;
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
  return Number(line.replace(/\D+/g, '')) * 1024;
}

async function publish(p: SwitchboardProcess, channel: string, data: unknown): Promise<void> {
  const r = await fetch(`${p.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify({ channel, data }) });
  if (r.status !== 200) throw new Error(`publish: ${r.status}`);
}

describe('each limit is hit and answered with its documented code', () => {
  let p: SwitchboardProcess;
  beforeAll(async () => {
    p = await standalone(['--max-connections', '3', '--max-channels-per-connection', '2', '--max-message-size', '2048', '--commands-per-second', '5']);
  });

  it('--max-connections: the connection over the limit is closed with 3504, and there is room again after one leaves', async () => {
    const three = [await open(p), await open(p), await open(p)];
    const fourth = await RawClient.open(p.wsUrl);
    expect((await fourth.closed).code).toBe(3504);
    three[0].close();
    await three[0].closed;
    await waitFor(async () => {
      const again = await RawClient.open(p.wsUrl);
      const ok = (await Promise.race([again.command('connect', {}).then(() => true), again.closed.then(() => false)])) as boolean;
      again.close();
      return ok;
    });
    for (const c of three) c.close();
    await Promise.all(three.map((c) => c.closed));
  });

  it('--max-channels-per-connection: the subscription over the limit gets 106', async () => {
    const c = await open(p);
    expect((await c.command('subscribe', { channel: 'a' })).error).toBeUndefined();
    expect((await c.command('subscribe', { channel: 'b' })).error).toBeUndefined();
    expect((await c.command('subscribe', { channel: 'c' })).error).toMatchObject({ code: 106, message: expect.stringContaining('at most 2 channels') });
    c.close();
    await c.closed;
  });

  it('--max-message-size: a larger frame closes the connection with 1009', async () => {
    const c = await open(p);
    c.sendRaw(JSON.stringify({ id: 2, publish: { channel: 'a', data: 'x'.repeat(3000) } }));
    expect((await c.closed).code).toBe(1009);
  });

  it('--commands-per-second: over the rate 111, far over it close 3013', async () => {
    const c = await open(p);
    // The burst is twice the rate (10); the connect used one.
    const replies = await Promise.all(Array.from({ length: 12 }, () => c.command('history', { channel: 'x', limit: 0 })));
    expect(replies.filter((r) => r.error?.code === 111).length).toBeGreaterThan(0);
    for (let i = 0; i < 30; i++) c.sendRaw(JSON.stringify({ id: 100 + i, history: { channel: 'x' } }));
    expect((await c.closed).code).toBe(3013);
  });
});

it('a client that does not read is closed with 3008; the others keep receiving; gateway memory stays bounded', async () => {
  const p = await standalone(['--max-backpressure', String(256 * 1024)]);
  const fast = await open(p);
  const slow = await open(p);
  for (const c of [fast, slow]) expect((await c.command('subscribe', { channel: 'firehose' })).error).toBeUndefined();
  // Stop reading: the kernel buffers fill, then the gateway's queue for this client grows.
  (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

  const rssBefore = rssBytes(p.pid);
  const payload = 'x'.repeat(8 * 1024);
  const total = 6000; // ~48 MiB offered to the slow client
  let sent = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < total) {
        const n = sent++;
        await publish(p, 'firehose', { n, payload });
      }
    }),
  );
  await waitFor(() => fast.publications('firehose').length === total, { timeoutMs: 20000, message: 'fast client got everything' });
  const growth = rssBytes(p.pid) - rssBefore;
  // Unbounded queueing would hold ~48 MiB for the slow client; the cap is 4 x 256 KiB plus allocator noise.
  expect(growth).toBeLessThan(32 * 1024 * 1024);

  // The gateway closed it with 3008; a client that never reads never sees that frame, so the server's count is the evidence.
  const metrics = await (await fetch(`${p.url}/metrics`)).text();
  expect(metrics).toMatch(/^switchboard_slow_disconnects_total 1$/m);
  expect(metrics).toMatch(/^switchboard_connections_closed_total\{code="3008"\} 1$/m);
  (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  await slow.closed;
  expect(slow.publications('firehose').length).toBeLessThan(total);
}, 60000);

it('SIGTERM: readiness fails first, clients are disconnected with 3001 in batches, the process exits 0', async () => {
  const p = await startSwitchboard('standalone', ['--dev', '--log-level', 'warn', '--shutdown-grace', '4']);
  const conns = await Promise.all(Array.from({ length: 1000 }, () => RawClient.open(p.wsUrl)));
  await Promise.all(conns.map((c) => c.command('connect', {})));
  const closedAt: number[] = [];
  const codes = conns.map((c) =>
    c.closed.then((closed) => {
      closedAt.push(Date.now());
      return closed.code;
    }),
  );
  const exit = p.stop('SIGTERM');
  await waitFor(async () => (await fetch(`${p.url}/readyz`).then((r) => r.status, () => 0)) !== 200, { timeoutMs: 2000, intervalMs: 5 });
  expect(new Set(await Promise.all(codes))).toEqual(new Set([3001]));
  // Spread over time rather than all at once: a drained node does not cause a reconnect storm.
  expect(Math.max(...closedAt) - Math.min(...closedAt)).toBeGreaterThan(300);
  expect(await exit).toBe(0);
}, 30000);
