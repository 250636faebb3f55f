// End to end in headless Chromium: the demo page on a standalone --dev node (chat, presence, history, document
// merge and conflict, failures shown as failures) and the console on two gateways over one Redis.
// Screenshots go to test-artifacts/e2e/ at the repository root.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { hmacToken, RawClient, startRedis, startSwitchboard, waitFor, type RedisServer, type SwitchboardProcess } from '@switchboard/testkit';

const CHROMIUM = process.env.SWITCHBOARD_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', '..', 'test-artifacts', 'e2e');
/** Without the background-networking switches Chromium keeps calling home, which a closed network refuses. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set SWITCHBOARD_TEST_CHROMIUM`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  // playwright gives the browser a fresh temporary profile (--user-data-dir) and removes it on close.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
});

async function newPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  (page as Page & { scriptErrors?: string[] }).scriptErrors = errors;
  await page.goto(url);
  return page;
}

function scriptErrors(page: Page): string[] {
  return (page as Page & { scriptErrors?: string[] }).scriptErrors ?? [];
}

/** Waits until an element `selector` matches holds `text` (a substring, or a pattern); CSP-safe, unlike page functions. */
async function waitText(page: Page, selector: string, text: string | RegExp): Promise<void> {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: 10000 });
  } catch (err) {
    const actual = await page.locator(selector).allTextContents();
    throw new Error(`${selector} never held ${String(text)}; it holds ${JSON.stringify(actual)}`, { cause: err });
  }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe('the demo page on a standalone --dev node', () => {
  let node: SwitchboardProcess;
  let context: BrowserContext;
  let alice: Page;
  let bob: Page;

  beforeAll(async () => {
    node = await startSwitchboard('standalone', ['--dev', '--log-level', 'warn']);
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  });

  afterAll(async () => {
    await context?.close();
    await node?.stop();
  });

  it('connects two tabs that chat both ways and see each other online', async () => {
    [alice, bob] = await Promise.all([newPage(context, `${node.url}/?name=alice`), newPage(context, `${node.url}/?name=bob`)]);
    for (const page of [alice, bob]) await page.waitForSelector('#status[data-level="ok"]');
    await alice.fill('#text', 'hello from alice');
    await alice.click('#send');
    await waitText(bob, '#log', 'hello from alice');
    await bob.fill('#text', 'hello from bob');
    await bob.click('#send');
    await waitText(alice, '#log', 'hello from bob');
    await waitText(alice, '#online', 'bob');
    await waitText(bob, '#online', 'alice');
    expect(await alice.locator('#online li').count()).toBe(2);
    await shot(alice, 'demo-chat');
    const icon = await fetch(`${node.url}/favicon.svg`);
    expect([icon.status, icon.headers.get('content-type')]).toEqual([200, 'image/svg+xml']);
    // No console unless it is enabled.
    expect((await fetch(`${node.url}/console`)).status).toBe(404);
  });

  it('shows a late joiner the history, lists it online, and takes it off the list when its tab closes', async () => {
    const carol = await newPage(context, `${node.url}/?name=carol`);
    await carol.waitForSelector('#status[data-level="ok"]');
    await waitText(carol, '#log', 'hello from alice');
    await waitText(carol, '#log', 'hello from bob');
    expect(await carol.locator('#log .msg.earlier').count()).toBe(2);
    const carolId = await carol.getAttribute('#whoami', 'data-client');
    expect(carolId).toBeTruthy();
    await alice.waitForSelector(`#online li[data-client="${carolId}"]`);
    await waitText(alice, '#log', 'joined');
    await shot(carol, 'demo-late-joiner');
    await carol.close();
    await alice.waitForSelector(`#online li[data-client="${carolId}"]`, { state: 'detached' });
    expect(await alice.locator('#online li').count()).toBe(2);
    await waitText(alice, '#log', 'left');
  });

  it('merges an edit made on an old version, and shows a conflicting one with the current value and a retry', async () => {
    await alice.fill('#task-title', 'Write the README');
    await alice.click('#add-task');
    const row = '#tasks li';
    await waitText(bob, `${row} .title`, 'Write the README');

    // Merge: bob starts renaming on the current version; alice marks the task done meanwhile (another path).
    await bob.click(`${row} .edit`);
    await alice.click(`${row} input.done`);
    await bob.waitForSelector('#tasks li input.done:checked');
    await bob.fill(`${row} input.edit-title`, 'Write the README and CHANGELOG');
    await bob.click(`${row} .save`);
    await bob.waitForSelector('#doc-notice[data-kind="merged"]');
    await waitText(bob, '#doc-notice', 'Merged');
    await waitText(alice, `${row} .title`, 'Write the README and CHANGELOG');
    expect(await alice.isChecked(`${row} input.done`)).toBe(true);
    await shot(bob, 'demo-merged');

    // Conflict: both start renaming the same title; alice saves first, bob's save meets her title.
    await alice.click(`${row} .edit`);
    await bob.click(`${row} .edit`);
    await alice.fill(`${row} input.edit-title`, 'Title from alice');
    await alice.click(`${row} .save`);
    await alice.waitForSelector('#doc-notice[data-kind="applied"]');
    await waitText(bob, `${row} .hint`, 'saving merges, or shows a conflict');
    await bob.fill(`${row} input.edit-title`, 'Title from bob');
    await bob.click(`${row} .save`);
    await bob.waitForSelector('#doc-notice[data-kind="conflict"]');
    await waitText(bob, '#doc-notice .current', 'current value: "Title from alice"');
    await waitText(bob, '#doc-notice .mine', 'yours: "Title from bob"');
    await waitText(bob, `${row} .title`, 'Title from alice');
    await shot(bob, 'demo-conflict');

    await bob.click('#doc-notice button.retry');
    await bob.waitForSelector('#doc-notice[data-kind="applied"]');
    await waitText(alice, `${row} .title`, 'Title from bob');
    expect(scriptErrors(alice).concat(scriptErrors(bob))).toEqual([]);
  });

  it('shows an unknown room as an error, never as connected', async () => {
    const page = await newPage(context, `${node.url}/?room=nope:x&name=dan`);
    await page.waitForSelector('#status[data-level="error"]');
    await waitText(page, '#status', 'chat room failed');
    await waitText(page, '#problems', 'unknown namespace "nope"');
    await waitText(page, '#chat-state', 'unknown namespace "nope"');
    expect(await page.isDisabled('#send')).toBe(true);
    await shot(page, 'demo-unknown-room');
    await page.close();
  });
});

describe('the demo page on a --dev node with a token secret', () => {
  const SECRET = 'demo-token-secret';
  let node: SwitchboardProcess;
  let context: BrowserContext;

  beforeAll(async () => {
    node = await startSwitchboard('standalone', ['--dev', '--token-hmac-secret', SECRET, '--api-key', 'k', '--log-level', 'warn']);
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  });

  afterAll(async () => {
    await context?.close();
    await node?.stop();
  });

  it('gets a short-lived token from the dev server, shows the user online, and shows a server disconnect as one', async () => {
    // With a token secret, dev mode still wants tokens: an anonymous connect is refused.
    const raw = await RawClient.open(node.wsUrl);
    expect((await raw.command('connect', {})).error?.code).toBe(101);
    raw.close();
    const page = await newPage(context, `${node.url}/?name=tess`);
    await page.waitForSelector('#status[data-level="ok"]');
    await waitText(page, '#whoami', 'signed in as "tess"');
    await waitText(page, '#online li.me', 'tess');

    const r = await fetch(`${node.url}/api/disconnect`, { method: 'POST', headers: { 'X-API-Key': 'k' }, body: JSON.stringify({ user: 'tess' }) });
    expect(r.status).toBe(200);
    await page.waitForSelector('#status[data-level="error"]');
    await waitText(page, '#status', 'disconnected by the server');
    await shot(page, 'demo-token-disconnected');
    await page.click('#problems button');
    await page.waitForSelector('#status[data-level="ok"]');
  });
});

describe('the console on two gateways', () => {
  const PASSWORD = 'console-password';
  const TOKEN_SECRET = 'client-token-secret';
  let redis: RedisServer;
  let gateways: SwitchboardProcess[];
  let context: BrowserContext;
  const clients: Centrifuge[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-console-')), 'config.yaml');
    writeFileSync(
      config,
      [
        'admin:',
        '  enabled: true',
        `  password: ${PASSWORD}`,
        '  secret: console-session-secret',
        'channel:',
        '  namespaces:',
        '    - name: news',
        '      allow_subscribe_for_client: true',
        '      presence: true',
        '      history_size: 10',
        '      history_ttl: 60s',
      ].join('\n'),
    );
    const args = (name: string): string[] => ['--redis', redis.url, '--config', config, '--token-hmac-secret', TOKEN_SECRET, '--node-name', name, '--log-level', 'warn'];
    gateways = await Promise.all([startSwitchboard('gateway', args('gw-1')), startSwitchboard('gateway', args('gw-2'))]);
    context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  });

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await context?.close();
    await Promise.all((gateways ?? []).map((g) => g.stop()));
    await redis?.stop();
  });

  it('answers a wrong password with 401, and has no dev token endpoint', async () => {
    const r = await fetch(`${gateways[0].url}/console/login`, { method: 'POST', body: JSON.stringify({ password: 'wrong' }) });
    expect(r.status).toBe(401);
    const api = await fetch(`${gateways[0].url}/console/api/info`, { method: 'POST', headers: { Authorization: 'Bearer not-a-token' } });
    expect(api.status).toBe(401);
    expect((await fetch(`${gateways[0].url}/demo/token?user=x`)).status).toBe(404);
  });

  it('logs in, lists both nodes, counts a new client live, publishes to a subscriber and disconnects a user', async () => {
    const page = await newPage(context, `${gateways[0].url}/console`);
    await page.fill('#password', 'wrong');
    await page.click('#login-button');
    await waitText(page, '#login-error', 'Wrong password');
    await page.fill('#password', PASSWORD);
    await page.click('#login-button');
    await page.waitForSelector('#nodes tbody tr[data-node="gw-1"]');
    await page.waitForSelector('#nodes tbody tr[data-node="gw-2"]');
    await waitText(page, '#total-nodes', /^2$/);
    const before = Number(await page.textContent('#total-clients'));

    // A subscriber on the other gateway: the count goes up, and the console's publication reaches it.
    const got: unknown[] = [];
    const token = await hmacToken(TOKEN_SECRET, { sub: 'dave' });
    const dave = new Centrifuge(gateways[1].wsUrl, { websocket: WebSocket, token });
    clients.push(dave);
    const sub = dave.newSubscription('news:today');
    sub.on('publication', (ctx) => got.push(ctx.data));
    const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    dave.connect();
    await subscribed;
    await waitText(page, '#total-clients', new RegExp(`^${before + 1}$`));
    await page.waitForSelector('#channels tbody tr[data-channel="news:today"]');

    await page.fill('#publish-channel', 'news:today');
    await page.fill('#publish-data', '{"text": "from the console"}');
    await page.click('#publish-button');
    await waitFor(() => got.length > 0, { message: 'the console publication did not reach the subscriber' });
    expect(got).toEqual([{ text: 'from the console' }]);
    await waitText(page, '#publish-result', 'at offset 1');

    await page.click('#channels tbody tr[data-channel="news:today"]');
    await waitText(page, '#presence', 'user dave');
    await waitText(page, '#history', 'from the console');
    await shot(page, 'console');

    const disconnected = new Promise<{ code: number }>((resolve) => dave.once('disconnected', resolve));
    await page.fill('#disconnect-user', 'dave');
    await page.click('#disconnect-button');
    expect((await disconnected).code).toBe(3503);
    await waitText(page, '#disconnect-result', 'Disconnected every connection of user dave');
    await waitText(page, '#total-clients', new RegExp(`^${before}$`));
    expect(scriptErrors(page)).toEqual([]);
  });

  it('refuses further logins from an address after five wrong passwords, even with the right one', async () => {
    const login = (password: string) => fetch(`${gateways[1].url}/console/login`, { method: 'POST', body: JSON.stringify({ password }) });
    for (let i = 0; i < 5; i++) expect((await login('wrong')).status).toBe(401);
    const refused = await login(PASSWORD);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another gateway keeps its own count: the console there still logs in.
    const elsewhere = await fetch(`${gateways[0].url}/console/login`, { method: 'POST', body: JSON.stringify({ password: PASSWORD }) });
    expect(elsewhere.status).toBe(200);
  });
});
