import { SessionRegistry } from './registry';
import type { ClientSession } from './session';

const session = (id: string, user: string) => ({ id, user, subscriptionCount: 1 }) as unknown as ClientSession;

it('finds sessions by user and client as users gain and lose connections', () => {
  const r = new SessionRegistry();
  const [a1, a2, a3, b] = [session('1', 'alice'), session('2', 'alice'), session('3', 'alice'), session('4', 'bob')];
  for (const s of [a1, a2, a3, b]) r.add(s);
  expect(r.find('alice').map((s) => s.id).sort()).toEqual(['1', '2', '3']);
  expect(r.find('alice', '2')).toEqual([a2]);
  expect(r.find('bob', '2')).toEqual([]);
  expect([r.clientCount, r.userCount, r.subscriptionCount()]).toEqual([4, 2, 4]);
  r.remove(a1);
  r.remove(a3);
  expect(r.find('alice')).toEqual([a2]);
  r.remove(a2);
  r.remove(a2);
  expect(r.find('alice')).toEqual([]);
  expect([r.clientCount, r.userCount]).toEqual([1, 1]);
  r.add(a1);
  expect(r.find('alice')).toEqual([a1]);
});
