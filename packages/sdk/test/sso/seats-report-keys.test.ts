/**
 * The idempotency keys of seat reports name the count and the group's latest membership change
 * (`users.seats`): the same stored state gives the same key as before the count was an
 * aggregate. A login counts every active member but the placeholders of removals still being
 * written, and keys on the latest change of any membership of the group (removed ones and
 * placeholders included); a removal leaves the removed member out of both. Memberships of
 * other groups count for nothing. Times come from a stepped storage clock, so the keys are
 * literal.
 */
import { memoryAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { UNRECORDED_ROLE } from '../../src/core/types.js';
import { type Harness, removeMember, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100' };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('keys login and removal reports on the count and the latest change of the group', async () => {
  const t0 = Date.now();
  let at = t0;
  const storage = memoryAdapter({ clock: () => new Date(at) });
  const reports: string[] = [];
  h = await startHarness({
    storage,
    onSeatsChanged: (_company, change, ctx) => void reports.push(`${ctx.idempotencyKey} -> ${change.activeSeats}`),
  });
  const tenant = h.tenant;
  expect((await h.login(alice)).status).toBe(200);

  at = t0 + 1_000;
  await storage.users.upsertMembership(tenant, 'usr-m1', 'cld-100', 'Member');
  at = t0 + 2_000;
  await storage.users.upsertMembership(tenant, 'usr-m2', 'cld-100', 'Member');
  at = t0 + 3_000;
  await storage.users.setMembershipStatus(tenant, 'usr-m2', 'cld-100', 'removed');
  at = t0 + 4_000;
  await storage.users.upsertMembership(tenant, 'usr-m3', 'cld-100', UNRECORDED_ROLE);
  at = t0 + 5_000;
  await storage.users.upsertMembership(tenant, 'usr-m4', 'cld-200', 'Member');

  at = t0 + 6_000;
  expect((await h.login(bob)).status).toBe(200);
  at = t0 + 7_000;
  expect(await removeMember(h, bob.uid, 'cld-100')).toBe(200);

  expect(reports).toEqual([
    // The first member, of a group without memberships.
    `mno:membership:${tenant}:usr-alice:cld-100:seat:1:0 -> 1`,
    // alice and m1 (not the removed m2 nor the placeholder m3), and bob; m3's write is the latest.
    `mno:membership:${tenant}:usr-bob:cld-100:seat:3:${t0 + 4_000} -> 3`,
    // bob's membership (written at t0 + 6 000) is left out of the count and of the state.
    `mno:seats:${tenant}:usr-bob:cld-100:${t0 + 6_000}:removed:2:${t0 + 4_000} -> 2`,
  ]);
});
