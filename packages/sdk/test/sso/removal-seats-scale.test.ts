/**
 * A member removal reads what it removes, not the whole group: only a seat report
 * (`onSeatsChanged`) needs the group's memberships (the count). Without that hook, removing one
 * member of a group of thousands read every membership of the group, once per removal, just to
 * log a count nobody asked for. Counted with a storage wrapper (rows `listMemberships` returns),
 * never timed.
 */
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { type Harness, removeMember, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100' };

/** memoryAdapter counting the membership rows `users.listMemberships` returns. */
function countingStorage(): { adapter: StorageAdapter; rows: { read: number } } {
  const inner = memoryAdapter();
  const rows = { read: 0 };
  const users = new Proxy(inner.users, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property !== 'listMemberships' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const found = (await Reflect.apply(value as (...a: unknown[]) => unknown, target, args)) as unknown[];
        rows.read += found.length;
        return found;
      };
    },
  });
  return { adapter: { ...inner, users } as StorageAdapter, rows };
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Membership rows one removal of bob reads, in cld-100 holding `others` members besides alice and bob. */
async function rowsReadByRemoval(others: number, onSeatsChanged?: (company: unknown, change: { activeSeats: number }) => void): Promise<{ read: number; active: string[] }> {
  const storage = countingStorage();
  h = await startHarness({ storage: storage.adapter, ...(onSeatsChanged ? { onSeatsChanged } : {}) });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200);
  for (let i = 0; i < others; i++) await storage.adapter.users.upsertMembership(h.tenant, `usr-m${i}`, 'cld-100', 'Member');
  storage.rows.read = 0;
  expect(await removeMember(h, bob.uid, 'cld-100')).toBe(200);
  const read = storage.rows.read;
  const active = (await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' })).map((m) => m.uid);
  await h.close();
  h = undefined;
  return { read, active };
}

it('removes a member without reading the rest of the group when no seats are reported', async () => {
  const small = await rowsReadByRemoval(0);
  const large = await rowsReadByRemoval(2_000);
  expect(small.active).toEqual([alice.uid]);
  expect(large.active).toHaveLength(2_001);
  expect(large.active).not.toContain(bob.uid);
  // The removed member's own rows only, whatever the size of the group.
  expect(large.read).toBe(small.read);
  expect(large.read).toBeLessThan(10);
});

it('still counts the group, and reports the seats, when onSeatsChanged is set', async () => {
  const reports: number[] = [];
  const { read, active } = await rowsReadByRemoval(50, (_company, change) => void reports.push(change.activeSeats));
  expect(active).toHaveLength(51);
  // alice's and bob's logins, then bob's removal: alice and the 50 others hold seats.
  expect(reports).toEqual([1, 2, 51]);
  expect(read).toBeGreaterThanOrEqual(52);
});
