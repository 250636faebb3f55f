// The Document helper with the real centrifuge SDK against a standalone Switchboard process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { startSwitchboard, waitFor, type SwitchboardProcess } from '@switchboard/testkit';
import { ConflictError, Document } from './document';

let server: SwitchboardProcess;
const clients: Centrifuge[] = [];

beforeAll(async () => {
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-client-')), 'config.yaml');
  writeFileSync(
    config,
    ['channel:', '  namespaces:', '    - name: doc', '      documents: true', '      history_size: 1000', '      history_ttl: 300s', '      force_recovery: true'].join('\n'),
  );
  server = await startSwitchboard('standalone', ['--dev', '--config', config, '--log-level', 'warn']);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop();
});

function connect(): Centrifuge {
  const c = new Centrifuge(server.wsUrl, { websocket: WebSocket });
  clients.push(c);
  c.connect();
  return c;
}

it('loads, updates, and follows what others write, in version order', async () => {
  const reader = new Document(connect(), 'doc:follow');
  const changes: number[] = [];
  reader.follow((d) => changes.push(d.version));
  const writer = await new Document(connect(), 'doc:follow').load();
  expect(writer.version).toBe(0);

  expect(await writer.update([{ op: 'set', path: '/title', value: 'draft' }])).toEqual({ status: 'applied', version: 1 });
  expect(writer.state).toEqual({ title: 'draft' });
  await writer.update([{ op: 'add', path: '/tags', value: 'new' }]);
  await writer.update([{ op: 'incr', path: '/views', value: 3 }]);

  await waitFor(() => reader.version === 3, { message: 'reader followed to version 3' });
  expect(reader.state).toEqual({ title: 'draft', tags: ['new'], views: 3 });
  expect(changes[changes.length - 1]).toBe(3);
  reader.unfollow();
});

it('change() re-runs on the fresh state after a conflict, and gives up after maxAttempts', async () => {
  const a = await new Document(connect(), 'doc:race').load();
  const b = await new Document(connect(), 'doc:race', { maxAttempts: 3 }).load();
  await a.update([{ op: 'set', path: '/counter', value: 10 }]);

  // b still believes version 0: its first strict attempt conflicts, the retry sees counter 10.
  const seen: unknown[] = [];
  const result = await b.change(
    (state) => {
      seen.push(state.counter);
      return [{ op: 'set', path: '/counter', value: ((state.counter as number) ?? 0) + 1 }];
    },
    { mode: 'strict' },
  );
  expect(seen).toEqual([undefined, 10]);
  expect(result).toEqual({ status: 'applied', version: 2 });
  expect(b.state).toEqual({ counter: 11 });

  // A precondition that never holds conflicts on every attempt: bounded, then ConflictError.
  let attempts = 0;
  await expect(
    b.change(() => {
      attempts++;
      return [
        { op: 'test', path: '/counter', value: -1 },
        { op: 'set', path: '/counter', value: 0 },
      ];
    }),
  ).rejects.toBeInstanceOf(ConflictError);
  expect(attempts).toBe(3);
});
