// The gateway runs on the native uWS binary and refuses the pure-JS fallback unless told otherwise.
import { RawClient, startSwitchboard, runSwitchboard } from '@switchboard/testkit';
import { loadUws } from './uws';

it('loads the native uWS binary on this machine', () => {
  expect(loadUws().native).toBe(true);
});

it('refuses to start on the ws fallback: one line on stderr, exit 2', async () => {
  const { code, stderr } = await runSwitchboard(['standalone', '--port', '0'], { env: { UWS_USE_FALLBACK: '1' } });
  expect(code).toBe(2);
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/native binary did not load.*--allow-uws-fallback/);
});

it('runs on the fallback when --allow-uws-fallback is given, pub/sub included', async () => {
  const proc = await startSwitchboard('standalone', ['--dev', '--allow-uws-fallback'], { env: { UWS_USE_FALLBACK: '1' } });
  expect((await fetch(`${proc.url}/healthz`)).status).toBe(200);
  const [a, b] = await Promise.all([RawClient.open(proc.wsUrl), RawClient.open(proc.wsUrl)]);
  for (const c of [a, b]) {
    expect((await c.command('connect', {})).error).toBeUndefined();
    expect((await c.command('subscribe', { channel: 'room' })).error).toBeUndefined();
  }
  expect((await a.command('publish', { channel: 'room', data: { hi: 1 } })).error).toBeUndefined();
  await b.waitPush((p) => p.channel === 'room');
  expect(b.publications('room').map((p) => p.data)).toEqual([{ hi: 1 }]);
  a.sendRaw('not json');
  expect((await a.closed).code).toBe(3501);
  b.close();
  expect(await proc.stop()).toBe(0);
});
