// What `npm start` runs (standalone --dev, memory engine): the demo page, its SDK bundle and anonymous chat.
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { startSwitchboard, type SwitchboardProcess } from '@switchboard/testkit';

let proc: SwitchboardProcess;

beforeAll(async () => {
  proc = await startSwitchboard('standalone', ['--dev']);
});

afterAll(async () => {
  await proc?.stop();
});

it('serves the demo page and the SDK bundle it loads', async () => {
  const page = await fetch(`${proc.url}/`);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain('Switchboard demo chat');
  expect(html).toContain('src="/centrifuge.js"');
  const sdk = await fetch(`${proc.url}/centrifuge.js`);
  expect(sdk.status).toBe(200);
  expect(await sdk.text()).toContain('Centrifuge');
});

it('lets anonymous clients chat with history, as the demo page does', async () => {
  const make = () => new Centrifuge(proc.wsUrl, { websocket: WebSocket });
  const alice = make();
  const bob = make();
  const got: unknown[] = [];
  const subA = alice.newSubscription('chat', { recoverable: true, positioned: true });
  const subB = bob.newSubscription('chat', { recoverable: true, positioned: true });
  subB.on('publication', (ctx) => got.push(ctx.data));
  const ready = Promise.all([subA, subB].map((s) => new Promise((r) => s.once('subscribed', r))));
  for (const s of [subA, subB]) s.subscribe();
  alice.connect();
  bob.connect();
  await ready;
  await subA.publish({ name: 'alice', text: 'hello' });
  await new Promise<void>((resolve) => {
    const check = () => (got.length > 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  expect(got).toEqual([{ name: 'alice', text: 'hello' }]);
  const hist = await subB.history({ limit: 20 });
  expect(hist.publications.map((p) => p.data)).toEqual([{ name: 'alice', text: 'hello' }]);
  alice.disconnect();
  bob.disconnect();
});

it('warns on stderr that dev mode is not for production', () => {
  expect(proc.output()).toMatch(/dev mode/i);
});
