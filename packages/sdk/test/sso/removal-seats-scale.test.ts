/**
 * A member removal reads what it removes, not the whole group. Without `onSeatsChanged`,
 * removing one member of a group of thousands read every membership of the group, once per
 * removal, just to log a count nobody asked for. With it, the seat count (of a removal and of a
 * new member's login) is one aggregate read (`users.seats`): listing the group read tens of
 * thousands of rows under the group's seats lock. Counted with a storage wrapper (rows
 * `listMemberships` returns, calls of `seats`), never timed.
 */
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { type Harness, removeMember, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100' };

/** memoryAdapter counting the membership rows `users.listMemberships` returns, and the `users.seats` calls. */
function countingStorage(): { adapter: StorageAdapter; rows: { read: number; seats: number } } {
  const inner = memoryAdapter();
  const rows = { read: 0, seats: 0 };
  const users = new Proxy(inner.users, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if ((property !== 'listMemberships' && property !== 'seats') || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const found = (await Reflect.apply(value as (...a: unknown[]) => unknown, target, args)) as unknown;
        if (Array.isArray(found)) rows.read += found.length;
        else rows.seats++;
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

type SeatsReport = (company: unknown, change: { activeSeats: number }) => void;

/** Membership rows one removal of bob reads, in cld-100 holding `others` members besides alice and bob. */
async function rowsReadByRemoval(others: number, onSeatsChanged?: SeatsReport): Promise<{ read: number; seats: number; active: string[] }> {
  const storage = countingStorage();
  h = await startHarness({ storage: storage.adapter, ...(onSeatsChanged ? { onSeatsChanged } : {}) });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200);
  for (let i = 0; i < others; i++) await storage.adapter.users.upsertMembership(h.tenant, `usr-m${i}`, 'cld-100', 'Member');
  storage.rows.read = 0;
  storage.rows.seats = 0;
  expect(await removeMember(h, bob.uid, 'cld-100')).toBe(200);
  const { read, seats } = storage.rows;
  const active = (await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' })).map((m) => m.uid);
  await h.close();
  h = undefined;
  return { read, seats, active };
}

/** Membership rows bob's first login reads, in cld-100 holding `others` members besides alice. */
async function rowsReadByLogin(others: number, onSeatsChanged: SeatsReport): Promise<{ read: number; seats: number; active: string[] }> {
  const storage = countingStorage();
  h = await startHarness({ storage: storage.adapter, onSeatsChanged });
  expect((await h.login(alice)).status).toBe(200);
  for (let i = 0; i < others; i++) await storage.adapter.users.upsertMembership(h.tenant, `usr-m${i}`, 'cld-100', 'Member');
  storage.rows.read = 0;
  storage.rows.seats = 0;
  expect((await h.login(bob)).status).toBe(200);
  const { read, seats } = storage.rows;
  const active = (await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' })).map((m) => m.uid);
  await h.close();
  h = undefined;
  return { read, seats, active };
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
  expect(large.seats).toBe(0);
});

it('counts the seats of a removal without listing the group when onSeatsChanged is set', async () => {
  const reports: number[] = [];
  const small = await rowsReadByRemoval(0, (_company, change) => void reports.push(change.activeSeats));
  const large = await rowsReadByRemoval(2_000, (_company, change) => void reports.push(change.activeSeats));
  expect(large.active).toHaveLength(2_001);
  // Per run: alice's and bob's logins, then bob's removal (alice and the others hold seats).
  expect(reports).toEqual([1, 2, 1, 1, 2, 2_001]);
  expect(large.read).toBe(small.read);
  expect(large.read).toBeLessThan(10);
  expect(large.seats).toBe(1);
});

it("counts the seats of a new member's login without listing the group when onSeatsChanged is set", async () => {
  const reports: number[] = [];
  const small = await rowsReadByLogin(0, (_company, change) => void reports.push(change.activeSeats));
  const large = await rowsReadByLogin(2_000, (_company, change) => void reports.push(change.activeSeats));
  expect(large.active).toHaveLength(2_002);
  // Per run: alice's login, then bob's (alice, the others and bob).
  expect(reports).toEqual([1, 2, 1, 2_002]);
  expect(large.read).toBe(small.read);
  expect(large.read).toBeLessThan(10);
  expect(large.seats).toBe(1);
});
