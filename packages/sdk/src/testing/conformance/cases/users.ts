import { expect } from 'vitest';
import { StorageError } from '../../../errors/index.js';
import type { StorageAdapter } from '../../../storage/adapter.js';
import { UNRECORDED_ROLE } from '../../../storage/validation.js';
import type { StorageCases } from '../types.js';
import { expectConflict, expectDate, GROUP, needs, OTHER_GROUP, OTHER_TENANT, race, rejection, sorted, TENANT } from './helpers.js';

const TTL = 30_000;
const UID = 'usr-fbb1';

async function provision(adapter: StorageAdapter, uid: string, userId: string, tenant = TENANT) {
  const claim = await adapter.users.claim(tenant, uid, { owner: `o-${uid}`, ttlMs: TTL });
  expect(claim.state).toBe('claimed');
  return adapter.users.complete(tenant, uid, `o-${uid}`, { userId });
}

export const userCases: StorageCases = {
  'claim, complete, then exists: the user starts active': async ({ adapter, clock }) => {
    expect(await adapter.users.get(TENANT, UID)).toBeNull();
    expect(await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL })).toEqual({
      state: 'claimed',
      takeover: false,
    });
    expect(await adapter.users.get(TENANT, UID)).toBeNull();
    clock.advance(250);
    const user = await adapter.users.complete(TENANT, UID, 'w1', { userId: 'local-7' });
    expect(user).toMatchObject({ tenant: TENANT, uid: UID, userId: 'local-7', status: 'active' });
    expectDate(user.updatedAt, clock.ms());
    expectDate(user.createdAt);
    expect(await adapter.users.get(TENANT, UID)).toEqual(user);
    expect(await adapter.users.claim(TENANT, UID, { owner: 'w2', ttlMs: TTL })).toEqual({ state: 'exists', record: user });
  },

  'a live claim of another owner is pending with its expiry': async ({ adapter, clock }) => {
    const start = clock.ms();
    await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL });
    const pending = await adapter.users.claim(TENANT, UID, { owner: 'w2', ttlMs: TTL });
    expect(pending.state).toBe('pending');
    if (pending.state === 'pending') expectDate(pending.claimExpiresAt, start + TTL);
  },

  '20 concurrent first logins of one user: exactly one claimed': needs(['concurrency'], async (context) => {
    const results = await race(context, 20, (adapter, i) => adapter.users.claim(TENANT, UID, { owner: `w${i}`, ttlMs: TTL }));
    expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'pending')).toHaveLength(19);
  }),

  'an expired user claim is taken over; the old owner gets StorageConflictError': needs(['clock'], async ({ adapter, clock }) => {
    await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL });
    clock.advance(TTL + 1);
    expect(await adapter.users.claim(TENANT, UID, { owner: 'w2', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: true });
    await expectConflict(adapter.users.complete(TENANT, UID, 'w1', { userId: 'stale' }), 'users.complete');
    expect((await adapter.users.complete(TENANT, UID, 'w2', { userId: 'fresh' })).userId).toBe('fresh');
    expect((await adapter.users.get(TENANT, UID))?.userId).toBe('fresh');
  }),

  'a user claim has expired once its expiry instant is reached; the owner claiming again is no takeover': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL });
      clock.advance(TTL / 2);
      expect(await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: false });
      clock.advance(TTL - 1);
      expect((await adapter.users.claim(TENANT, UID, { owner: 'w2', ttlMs: TTL })).state).toBe('pending');
      clock.advance(1);
      expect(await adapter.users.claim(TENANT, UID, { owner: 'w2', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: true });
      await expectConflict(adapter.users.complete(TENANT, UID, 'w1', { userId: 'stale' }), 'users.complete');
    },
  ),

  'complete by a non-owner throws StorageConflictError and provisions nothing': async ({ adapter }) => {
    await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL });
    await expectConflict(adapter.users.complete(TENANT, UID, 'w2', { userId: 'x' }), 'users.complete');
    expect(await adapter.users.get(TENANT, UID)).toBeNull();
    expect(await adapter.users.findByUserId(TENANT, 'x')).toEqual([]);
  },

  'release leaves no row and lets the next caller claim': needs(['inspect'], async ({ adapter, inspect }) => {
    await adapter.users.claim(TENANT, UID, { owner: 'w1', ttlMs: TTL });
    expect((await inspect.user(TENANT, UID))?.claimOwner).toBe('w1');
    await adapter.users.release(TENANT, UID, 'w2');
    expect((await inspect.user(TENANT, UID))?.claimOwner).toBe('w1');
    await adapter.users.release(TENANT, UID, 'w1');
    expect(await inspect.user(TENANT, UID)).toBeNull();
    expect(await adapter.users.claim(TENANT, UID, { owner: 'w3', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: false });
  }),

  'findByUserId returns every uid linked to one app user, and only those': async ({ adapter }) => {
    await provision(adapter, 'usr-1', 'local-1');
    await provision(adapter, 'usr-2.cld-1001', 'local-1');
    await provision(adapter, 'usr-3', 'local-2');
    await provision(adapter, 'usr-4', 'local-1', OTHER_TENANT);
    await adapter.users.claim(TENANT, 'usr-5', { owner: 'w', ttlMs: TTL });
    const linked = await adapter.users.findByUserId(TENANT, 'local-1');
    expect(sorted(linked, (u) => u.uid).map((u) => u.uid)).toEqual(['usr-1', 'usr-2.cld-1001']);
    expect(await adapter.users.findByUserId(TENANT, 'nobody')).toEqual([]);
  },

  'setStatus is a compare-and-set': async ({ adapter, clock }) => {
    await provision(adapter, UID, 'local-1');
    clock.advance(1_000);
    const blocked = await adapter.users.setStatus(TENANT, UID, 'blocked');
    expect(blocked.changed).toBe(true);
    expect(blocked.user).toMatchObject({ uid: UID, status: 'blocked' });
    expectDate(blocked.user?.updatedAt, clock.ms());
    const again = await adapter.users.setStatus(TENANT, UID, 'blocked');
    expect(again).toMatchObject({ changed: false, user: { status: 'blocked' } });
    expect((await adapter.users.setStatus(TENANT, UID, 'active')).changed).toBe(true);
    expect((await adapter.users.get(TENANT, UID))?.status).toBe('active');
    expect(await adapter.users.setStatus(TENANT, 'usr-unknown', 'blocked')).toEqual({ changed: false, user: null });
  },

  'upsertMembership reports created and changed': async ({ adapter, clock }) => {
    const first = await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Admin');
    expect(first).toMatchObject({ created: true, changed: true });
    expect(first.membership).toMatchObject({ tenant: TENANT, uid: UID, groupId: GROUP, role: 'Admin', status: 'active' });
    expectDate(first.membership.createdAt, clock.ms());
    clock.advance(1_000);
    const same = await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Admin');
    expect(same).toMatchObject({ created: false, changed: false, membership: { role: 'Admin' } });
    const role = await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Power User');
    expect(role).toMatchObject({ created: false, changed: true, membership: { role: 'Power User', status: 'active' } });
    expectDate(role.membership.updatedAt, clock.ms());
    expectDate(role.membership.createdAt, first.membership.createdAt);
  },

  'upsertMembership reactivates a removed membership': async ({ adapter }) => {
    await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Member');
    await adapter.users.setMembershipStatus(TENANT, UID, GROUP, 'removed');
    const back = await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Member');
    expect(back).toMatchObject({ created: false, changed: true, membership: { status: 'active', role: 'Member' } });
  },

  '10 concurrent upserts of one membership create it exactly once': needs(['concurrency'], async (context) => {
    const results = await race(context, 10, (adapter) => adapter.users.upsertMembership(TENANT, UID, GROUP, 'Member'));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await context.adapter.users.listMemberships(TENANT, { uid: UID })).toHaveLength(1);
  }),

  'setMembershipStatus is a compare-and-set; unknown memberships give null': async ({ adapter }) => {
    await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Member');
    const removed = await adapter.users.setMembershipStatus(TENANT, UID, GROUP, 'removed');
    expect(removed).toMatchObject({ changed: true, membership: { status: 'removed', role: 'Member' } });
    expect((await adapter.users.setMembershipStatus(TENANT, UID, GROUP, 'removed')).changed).toBe(false);
    expect(await adapter.users.setMembershipStatus(TENANT, UID, OTHER_GROUP, 'removed')).toEqual({
      changed: false,
      membership: null,
    });
  },

  'listMemberships filters by uid, group and status within one tenant': async ({ adapter }) => {
    await adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, 'Admin');
    await adapter.users.upsertMembership(TENANT, 'usr-1', OTHER_GROUP, 'Member');
    await adapter.users.upsertMembership(TENANT, 'usr-2', GROUP, 'Member');
    await adapter.users.upsertMembership(OTHER_TENANT, 'usr-1', GROUP, 'Admin');
    await adapter.users.setMembershipStatus(TENANT, 'usr-2', GROUP, 'removed');
    const key = (m: { uid: string; groupId: string }) => `${m.uid}/${m.groupId}`;
    expect(sorted(await adapter.users.listMemberships(TENANT, { uid: 'usr-1' }), key).map(key)).toEqual([
      'usr-1/cld-1001',
      'usr-1/cld-1002',
    ]);
    expect(sorted(await adapter.users.listMemberships(TENANT, { groupId: GROUP }), key).map(key)).toEqual([
      'usr-1/cld-1001',
      'usr-2/cld-1001',
    ]);
    expect(
      (await adapter.users.listMemberships(TENANT, { groupId: GROUP, status: 'active' })).map(key),
    ).toEqual(['usr-1/cld-1001']);
    expect(sorted(await adapter.users.listMemberships(TENANT, {}), key)).toHaveLength(3);
    expect(await adapter.users.listMemberships(OTHER_TENANT, { uid: 'usr-1' })).toHaveLength(1);
  },

  'seats of a group without memberships: none active, no latest change': async ({ adapter }) => {
    expect(await adapter.users.seats(TENANT, GROUP)).toEqual({ active: 0, latestChange: null });
    // Other groups and tenants hold members; the group's only member is left out.
    await adapter.users.upsertMembership(TENANT, 'usr-1', OTHER_GROUP, 'Member');
    await adapter.users.upsertMembership(OTHER_TENANT, 'usr-1', GROUP, 'Member');
    await adapter.users.upsertMembership(TENANT, 'usr-2', GROUP, 'Member');
    expect(await adapter.users.seats(TENANT, 'cld-none')).toEqual({ active: 0, latestChange: null });
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-2' })).toEqual({ active: 0, latestChange: null });
  },

  'seats count active memberships, not removed ones nor placeholders; the latest change is of any membership': async ({
    adapter,
    clock,
  }) => {
    await adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, 'Member');
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-2', GROUP, 'Admin');
    clock.advance(1_111);
    // A removal's placeholder, active between its two writes, holds no seat.
    await adapter.users.upsertMembership(TENANT, 'usr-3', GROUP, UNRECORDED_ROLE);
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-4', GROUP, 'Member');
    clock.advance(1_111);
    const removed = await adapter.users.setMembershipStatus(TENANT, 'usr-4', GROUP, 'removed');
    const removedAt = clock.ms();
    expectDate(removed.membership?.updatedAt, removedAt);
    expect(await adapter.users.seats(TENANT, GROUP)).toEqual({ active: 2, latestChange: new Date(removedAt) });
    // Later changes of other groups and tenants are neither counted nor the group's latest.
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-5', OTHER_GROUP, 'Member');
    await adapter.users.upsertMembership(OTHER_TENANT, 'usr-5', GROUP, 'Member');
    await adapter.users.upsertMembership(TENANT, 'usr-1', OTHER_GROUP, 'Member');
    expect(await adapter.users.seats(TENANT, GROUP)).toEqual({ active: 2, latestChange: new Date(removedAt) });
    expect(await adapter.users.seats(TENANT, OTHER_GROUP)).toEqual({ active: 2, latestChange: new Date(clock.ms()) });
    expect(await adapter.users.seats(OTHER_TENANT, GROUP)).toEqual({ active: 1, latestChange: new Date(clock.ms()) });
    // A role change is a change; the placeholder given a real role holds a seat.
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-3', GROUP, 'Member');
    expect(await adapter.users.seats(TENANT, GROUP)).toEqual({ active: 3, latestChange: new Date(clock.ms()) });
  },

  'seats leave the exceptUid membership out of the count and of the latest change': async ({ adapter, clock }) => {
    await adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, 'Member');
    const first = clock.ms();
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-2', GROUP, 'Member');
    const second = clock.ms();
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-3', GROUP, 'Member');
    const third = clock.ms();
    // The same uid in another group or tenant is another membership.
    clock.advance(1_111);
    await adapter.users.upsertMembership(TENANT, 'usr-1', OTHER_GROUP, 'Member');
    await adapter.users.upsertMembership(OTHER_TENANT, 'usr-1', GROUP, 'Member');
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-3' })).toEqual({ active: 2, latestChange: new Date(second) });
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-1' })).toEqual({ active: 2, latestChange: new Date(third) });
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-unknown' })).toEqual({ active: 3, latestChange: new Date(third) });
    expect(await adapter.users.seats(TENANT, GROUP, {})).toEqual({ active: 3, latestChange: new Date(third) });
    clock.advance(1_111);
    await adapter.users.setMembershipStatus(TENANT, 'usr-3', GROUP, 'removed');
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-3' })).toEqual({ active: 2, latestChange: new Date(second) });
    expect(await adapter.users.seats(TENANT, GROUP)).toEqual({ active: 2, latestChange: new Date(clock.ms()) });
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-2' })).toEqual({ active: 1, latestChange: new Date(clock.ms()) });
    expect(first).toBeLessThan(second);
  },

  'seats refuse an exceptUid that is not a string (null from untyped JavaScript) instead of counting nobody or everybody': async ({ adapter }) => {
    await adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, 'Member');
    await adapter.users.upsertMembership(TENANT, 'usr-2', GROUP, 'Member');
    for (const bad of [null, 42, { $ne: 'usr-1' }]) {
      const error = await rejection(adapter.users.seats(TENANT, GROUP, { exceptUid: bad } as unknown as { exceptUid: string }));
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'storage_error', operation: 'users.seats' });
      expect(String((error as Error).message)).toContain('exceptUid');
    }
    expect(await adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-1' })).toMatchObject({ active: 1 });
  },

  'seats agree with a count of the listed memberships after any sequence of membership writes': async ({ adapter, clock }) => {
    // A fixed pseudo-random sequence: adds, role changes (to and from the placeholder), removals
    // and re-adds over two tenants and groups, the clock moving forward, standing still (ties)
    // and backward, across the storable range (fixed-width text compares as the instants do).
    let seed = 20261202;
    const next = (n: number): number => {
      // xorshift32: the low bits of a power-of-two LCG cycle too soon to reach every move.
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const tenants = [TENANT, OTHER_TENANT];
    const groups = [GROUP, OTHER_GROUP];
    const uids = ['usr-1', 'usr-2', 'usr-3', 'usr-4', 'usr-5'];
    const roles = ['Member', 'Admin', UNRECORDED_ROLE];
    const instants = [Date.UTC(800, 5, 1), Date.UTC(1969, 11, 31, 23, 59, 59, 999), Date.UTC(2031, 0, 15, 12), Date.UTC(9999, 11, 31)];
    for (let step = 0; step < 40; step++) {
      const move = next(6);
      if (move === 0) clock.set(instants[next(instants.length)] as number);
      else if (move === 1) clock.advance(-next(5_000));
      else if (move < 5) clock.advance(next(2_000));
      const [tenant, groupId, uid] = [tenants[next(2)] as string, groups[next(2)] as string, uids[next(uids.length)] as string];
      if (next(3) === 0) await adapter.users.setMembershipStatus(tenant, uid, groupId, next(2) === 0 ? 'removed' : 'active');
      else await adapter.users.upsertMembership(tenant, uid, groupId, roles[next(roles.length)] as string);
      for (const t of tenants) {
        for (const g of groups) {
          const exceptUid = next(2) === 0 ? undefined : uids[next(uids.length)];
          const counted = (await adapter.users.listMemberships(t, { groupId: g })).filter((m) => m.uid !== exceptUid);
          const latest = counted.reduce<number | null>((max, m) => (max === null ? m.updatedAt.getTime() : Math.max(max, m.updatedAt.getTime())), null);
          expect(await adapter.users.seats(t, g, exceptUid === undefined ? undefined : { exceptUid })).toEqual({
            active: counted.filter((m) => m.status === 'active' && m.role !== UNRECORDED_ROLE).length,
            latestChange: latest === null ? null : new Date(latest),
          });
        }
      }
    }
  },

  'stored user and membership rows hold timestamps and the given values': needs(
    ['inspect'],
    async ({ adapter, inspect, clock }) => {
      await provision(adapter, UID, 'local-1');
      await adapter.users.upsertMembership(TENANT, UID, GROUP, 'Super Admin');
      const user = await inspect.user(TENANT, UID);
      expect(user).toMatchObject({ tenant: TENANT, uid: UID, userId: 'local-1', status: 'active' });
      expectDate(user?.createdAt);
      expectDate(user?.updatedAt, clock.ms());
      const membership = await inspect.membership(TENANT, UID, GROUP);
      expect(membership).toMatchObject({ role: 'Super Admin', status: 'active', groupId: GROUP });
      expectDate(membership?.createdAt, clock.ms());
      expectDate(membership?.updatedAt, clock.ms());
    },
  ),
};
