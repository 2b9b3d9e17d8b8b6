/**
 * A login reports its seat before writing the membership. Its idempotency key names the group's
 * membership state the count came from: a retry after a write that failed, once other members
 * joined and left (the same count by chance), is a new report. Keyed by the count alone, an app
 * that honours the key (skips a key it has processed) dropped it and kept a wrong seat count.
 */
import { StorageError, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const user = (name: string): TestUser => ({ uid: `usr-${name}`, email: `${name}@doecorp.com`, groupUid: 'cld-100' });
const [alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(user) as [TestUser, TestUser, TestUser, TestUser];

/** memoryAdapter whose next `users.upsertMembership` fails before committing. */
function failingStorage(): { adapter: StorageAdapter; arm(): void } {
  const inner = memoryAdapter();
  let armed = false;
  const users = new Proxy(inner.users, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property !== 'upsertMembership' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (armed) {
          armed = false;
          throw new StorageError('connection lost', { adapterId: inner.id, operation: 'users.upsertMembership' });
        }
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
  return { adapter: { ...inner, users } as StorageAdapter, arm: () => (armed = true) };
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('an app that honours onSeatsChanged idempotency keys ends with the real number of seats', async () => {
  const storage = failingStorage();
  // The app: idempotent by key (a key already processed is skipped), last report wins.
  const processed = new Set<string>();
  let appSeats = -1;
  const log: string[] = [];
  h = await startHarness({
    storage: storage.adapter,
    onSeatsChanged: (_company, change, ctx) => {
      log.push(`${ctx.idempotencyKey} -> ${change.activeSeats}`);
      if (processed.has(ctx.idempotencyKey)) return;
      processed.add(ctx.idempotencyKey);
      appSeats = change.activeSeats;
    },
  });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200); // alice, bob: 2

  storage.arm();
  expect((await h.login(carol)).status).toBe(503); // reported 3 (carol), write failed: not a member

  // Maestrano removes bob (reports 1), dave joins (reports 2).
  const removal = await fetch(`${h.baseUrl}/maestrano/account/groups/cld-100/users/usr-bob/${h.tenant}`, {
    method: 'DELETE',
    headers: { authorization: `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}` },
  });
  expect(removal.status).toBe(200);
  expect((await h.login(dave)).status).toBe(200);

  // carol retries: alice, dave, carol = 3 active members.
  expect((await h.login(carol)).status).toBe(200);
  const active = await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' });
  expect(active).toHaveLength(3);
  // Fails: the retry's report (3) carries the key of the first attempt's report, made for
  // another membership set, so the app skips it and keeps 2.
  expect({ appSeats, log }).toEqual({ appSeats: 3, log: expect.any(Array) });
});
