// A first login records its new (or email-linked) user only once the app has accepted the
// membership, so that a refused login records neither. But a login can fail after the app put
// its user in the company (`createUser` creates it inside, `addMembership` adds it) and before
// the SDK recorded the user: the seats lock timed out (503), `users.complete` failed. A member
// removal that arrives before the user's retry must still reach the app's `removeMembership`,
// or the app keeps that user in the company. Through the real ACS (RSA-signed responses) and
// the real removal webhook on loopback HTTP.
import { type CompanyHandle, memoryAdapter, type StorageAdapter, StorageError, type UserHandle } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { UNRECORDED_ROLE } from '../../src/core/types.js';
import { seatsLockKey, userLockKey } from '../../src/webhooks/locks.js';
import { type Harness, removeMember, startHarness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/**
 * A memory adapter whose next `failures.complete` calls of `users.complete` (and
 * `failures.upsert` calls of `users.upsertMembership`, `failures.remove` calls of
 * `users.setMembershipStatus` to `removed`) fail (the database down).
 */
function flakyStorage(clock?: () => Date): { storage: StorageAdapter; failures: { complete: number; upsert: number; remove: number } } {
  const inner = memoryAdapter(clock ? { clock } : {});
  const failures = { complete: 0, upsert: 0, remove: 0 };
  const refused = (operation: `${string}.${string}`) => new StorageError(`${operation} failed: connection refused`, { adapterId: inner.id, operation });
  const storage: StorageAdapter = {
    ...inner,
    users: {
      ...inner.users,
      complete: (...args) => {
        if (failures.complete > 0) {
          failures.complete--;
          return Promise.reject(refused('users.complete'));
        }
        return inner.users.complete(...args);
      },
      upsertMembership: (...args) => {
        if (failures.upsert > 0) {
          failures.upsert--;
          return Promise.reject(refused('users.upsertMembership'));
        }
        return inner.users.upsertMembership(...args);
      },
      setMembershipStatus: (...args) => {
        if (args[3] === 'removed' && failures.remove > 0) {
          failures.remove--;
          return Promise.reject(refused('users.setMembershipStatus'));
        }
        return inner.users.setMembershipStatus(...args);
      },
    },
  };
  return { storage, failures };
}

/** The app's `removeMembership`, as `<app user id>|<app company id>|<idempotency key>`. */
function removals(): { removed: string[]; hook: (user: UserHandle, company: CompanyHandle, ctx: { idempotencyKey: string }) => void } {
  const removed: string[] = [];
  return { removed, hook: (user, company, ctx) => void removed.push(`${user.id}|${company.id}|${ctx.idempotencyKey}`) };
}

describe('a member removal after a first login failed once the app had accepted the membership', () => {
  it('email-linked user, users.complete failed (503): the removal calls removeMembership for the linked app user', async () => {
    const { storage, failures } = flakyStorage();
    const { removed, hook } = removals();
    h = await startHarness({ storage, withFindUserByEmail: true, provisioning: { removeMembership: hook } });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    failures.complete = 1;
    const failed = await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(failed.status).toBe(503);
    // The app holds the membership; the SDK recorded neither the user nor the link.
    const companyId = (await h.storage.groups.get(h.tenant, 'cld-1'))!.companyId;
    expect(h.app.memberships.get(`legacy-1|${companyId}`)).toBeDefined();
    expect(await h.storage.users.get(h.tenant, 'usr-bob')).toBeNull();
    expect(await h.storage.users.findByUserId(h.tenant, 'legacy-1')).toEqual([]);

    // Maestrano removes him before he retries: the app must hear it.
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toEqual([`legacy-1|${companyId}|mno:remove-membership:${h.tenant}:usr-bob:cld-1:unrecorded`]);
    const [membership] = await h.storage.users.listMemberships(h.tenant, { uid: 'usr-bob', groupId: 'cld-1' });
    expect(membership?.status).toBe('removed');
    // Nothing about the user is recorded, and a replay of the removal asks nothing more.
    expect(await h.storage.users.get(h.tenant, 'usr-bob')).toBeNull();
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(1);
  });

  it('new user, the seats lock timed out (503): the removal calls removeMembership for the user createUser made', async () => {
    const { removed, hook } = removals();
    h = await startHarness({ provisioning: { removeMembership: hook }, onSeatsChanged: () => {}, sso: { allowIdpInitiated: true, provisioningClaimTtlMs: 1_000 } });
    // The group exists (its owner signed in); another seat change of it holds the seats lock.
    expect((await h.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-1' })).status).toBe(200);
    expect(await h.storage.locks.acquire(seatsLockKey(h.tenant, 'cld-1'), 'other-seat-change', 60_000)).toBe(true);
    const failed = await h.login({ uid: 'usr-new', email: 'new@corp.com', groupUid: 'cld-1' });
    expect(failed.status).toBe(503);
    await h.storage.locks.release(seatsLockKey(h.tenant, 'cld-1'), 'other-seat-change');
    const created = [...h.app.users].find(([, u]) => u.email === 'new@corp.com')?.[0];
    const companyId = (await h.storage.groups.get(h.tenant, 'cld-1'))!.companyId;
    expect(h.app.memberships.get(`${created}|${companyId}`)).toBeDefined();
    expect(await h.storage.users.get(h.tenant, 'usr-new')).toBeNull();

    expect(await removeMember(h, 'usr-new', 'cld-1')).toBe(200);
    expect(removed).toEqual([`${created}|${companyId}|mno:remove-membership:${h.tenant}:usr-new:cld-1:unrecorded`]);
    // The owner's seat is untouched.
    expect((await h.storage.users.listMemberships(h.tenant, { groupId: 'cld-1', status: 'active' })).map((m) => m.uid)).toEqual(['usr-owner']);
  });

  it('added back after an earlier removal, the login failed again after the app accepted: the second removal reaches the app too', async () => {
    let nowMs = Date.UTC(2026, 0, 5, 10, 0, 0);
    const clock = () => new Date(nowMs);
    const { storage, failures } = flakyStorage(clock);
    const { removed, hook } = removals();
    h = await startHarness({ storage, clock, withFindUserByEmail: true, provisioning: { removeMembership: hook } });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    expect((await h.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-1' }, { now: clock() })).status).toBe(200);

    // Removed before he ever signed in: the SDK records the removal, the app hears nothing.
    nowMs += 10_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toEqual([]);

    // Maestrano adds him back; his sign-in fails once the app has added him.
    nowMs += 10_000;
    failures.complete = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' }, { now: clock() })).status).toBe(503);
    const companyId = (await h.storage.groups.get(h.tenant, 'cld-1'))!.companyId;
    expect(h.app.memberships.get(`legacy-1|${companyId}`)).toBeDefined();

    // Removed again: the app hears this one.
    nowMs += 10_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(1);
    expect(removed[0]).toMatch(new RegExp(`^legacy-1\\|${companyId}\\|mno:remove-membership:${h.tenant}:usr-bob:cld-1:`));
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(1);
  });
});

/** The app's `blockUser`, as `<app user id>|<idempotency key>`. */
function blocks(): { blocked: string[]; hook: (user: UserHandle, company: CompanyHandle, ctx: { idempotencyKey: string }) => void } {
  const blocked: string[] = [];
  return { blocked, hook: (user, _company, ctx) => void blocked.push(`${user.id}|${ctx.idempotencyKey}`) };
}

// A user the SDK knows, removed from a group, whom Maestrano adds back: the login has the app
// add the membership back (`addMembership`) and can then fail before the SDK writes it active.
// The membership is still `removed` as of the first removal; a second removal must still reach
// the app, once (a replay asks nothing more), and the failed login's response must not sign the
// user in after it.
describe('a member removal after a known user was added back and the login failed once the app had accepted', () => {
  async function readded(options: { seatsLock: boolean; removalWriteFails?: boolean }) {
    let nowMs = Date.UTC(2026, 0, 5, 10, 0, 0);
    const clock = () => new Date(nowMs);
    const tick = () => {
      nowMs += 10_000;
    };
    const { storage, failures } = flakyStorage(clock);
    const { removed, hook } = removals();
    const { blocked, hook: blockUser } = blocks();
    const harness = await startHarness({
      storage,
      clock,
      provisioning: { removeMembership: hook, blockUser },
      ...(options.seatsLock ? { onSeatsChanged: () => {} } : {}),
      sso: { provisioningClaimTtlMs: 1_000 },
    });
    h = harness;
    const bob = { uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' };
    expect((await harness.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-1' }, { now: clock() })).status).toBe(200);
    const first = await harness.login(bob, { now: clock() });
    expect(first.status).toBe(200);
    const bobId = String(first.body.userId);
    const companyId = (await harness.storage.groups.get(harness.tenant, 'cld-1'))!.companyId;

    // Removed (his last group: blocked), then added back by Maestrano.
    tick();
    expect(await removeMember(harness, 'usr-bob', 'cld-1')).toBe(200);
    harness.app.memberships.delete(`${bobId}|${companyId}`);
    const [firstRemoval] = await harness.storage.users.listMemberships(harness.tenant, { uid: 'usr-bob', groupId: 'cld-1' });
    expect(firstRemoval?.status).toBe('removed');
    expect(removed).toHaveLength(1);
    expect(blocked).toHaveLength(1);

    // His sign-in fails once the app has added him back.
    tick();
    if (options.seatsLock) expect(await harness.storage.locks.acquire(seatsLockKey(harness.tenant, 'cld-1'), 'other-seat-change', 60_000)).toBe(true);
    else failures.upsert = 1;
    const started = await harness.init(harness.tenant, '?group_id=cld-1');
    const { samlResponse } = harness.idp.respondTo(started.location, bob, { now: clock() });
    expect((await harness.post(samlResponse, { cookie: started.cookie })).status).toBe(503);
    if (options.seatsLock) await harness.storage.locks.release(seatsLockKey(harness.tenant, 'cld-1'), 'other-seat-change');
    expect(harness.app.memberships.get(`${bobId}|${companyId}`)).toBeDefined();
    const [still] = await harness.storage.users.listMemberships(harness.tenant, { uid: 'usr-bob', groupId: 'cld-1' });
    expect(still?.status).toBe('removed');
    expect(still?.updatedAt.getTime()).toBe(firstRemoval!.updatedAt.getTime());

    // Removed again before he retries: the app hears it, and blocks him again (its
    // `addMembership` may have made him active; the SDK still holds him blocked).
    tick();
    removed.length = 0;
    blocked.length = 0;
    const key = `${harness.tenant}:usr-bob:cld-1:unrecorded-${firstRemoval!.updatedAt.getTime()}`;
    if (options.removalWriteFails) {
      // Its last write fails (500) once the placeholder is written: Maestrano retries it,
      // and the retry is the same removal (same keys), not another one.
      failures.remove = 1;
      expect(await removeMember(harness, 'usr-bob', 'cld-1')).toBe(500);
      tick();
    }
    expect(await removeMember(harness, 'usr-bob', 'cld-1')).toBe(200);
    const once = options.removalWriteFails ? 2 : 1;
    expect(removed).toEqual(Array(once).fill(`${bobId}|${companyId}|mno:remove-membership:${key}`));
    expect(blocked).toEqual(Array(once).fill(`${bobId}|mno:block-user:${key}`));
    expect((await harness.storage.users.get(harness.tenant, 'usr-bob'))?.status).toBe('blocked');
    // A replay asks nothing more, and the failed login's response no longer signs him in.
    expect(await removeMember(harness, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(once);
    expect(blocked).toHaveLength(once);
    expect((await harness.post(samlResponse, { cookie: started.cookie })).status).toBe(403);
    // The note is gone with the removal; the owner's seat is untouched.
    expect((await harness.storage.cursors.list(harness.tenant, 'cld-1')).filter((c) => c.kind.startsWith('user.pending:'))).toEqual([]);
    expect((await harness.storage.users.listMemberships(harness.tenant, { groupId: 'cld-1', status: 'active' })).map((m) => m.uid)).toEqual(['usr-owner']);
  }

  it('the seats lock timed out (503): the second removal calls removeMembership and blockUser', async () => {
    await readded({ seatsLock: true });
  });

  it('the membership write failed (503): the second removal calls removeMembership and blockUser', async () => {
    await readded({ seatsLock: false });
  });

  it('the second removal failed after writing its placeholder (500): its retry calls the hooks with the same keys', async () => {
    await readded({ seatsLock: false, removalWriteFails: true });
  });

  it('a login that wrote the membership drops its note: a known user signing in again writes none', async () => {
    let nowMs = Date.UTC(2026, 0, 5, 10, 0, 0);
    const clock = () => new Date(nowMs);
    h = await startHarness({ storage: memoryAdapter({ clock }), clock });
    const bob = { uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' };
    expect((await h.login(bob, { now: clock() })).status).toBe(200);
    nowMs += 10_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    nowMs += 10_000;
    expect((await h.login(bob, { now: clock() })).status).toBe(200);
    expect((await h.login(bob, { now: clock() })).status).toBe(200);
    expect((await h.storage.cursors.list(h.tenant, 'cld-1')).filter((c) => c.kind.startsWith('user.pending:'))).toEqual([]);
  });
});

// A known user's first membership in another group, whose write failed once the app accepted
// it: the removal finds no membership and takes the "unrecorded" path, which calls
// `removeMembership`. The user was blocked before (removed from the last group), and the app's
// `addMembership` may have made it active again: the removal blocks it again.
describe('a member removal after a blocked known user joined another group and the membership write failed', () => {
  it('calls removeMembership and blockUser', async () => {
    let nowMs = Date.UTC(2026, 0, 5, 10, 0, 0);
    const clock = () => new Date(nowMs);
    const { storage, failures } = flakyStorage(clock);
    const { removed, hook } = removals();
    const { blocked, hook: blockUser } = blocks();
    h = await startHarness({ storage, clock, provisioning: { removeMembership: hook, blockUser } });
    const first = await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' }, { now: clock() });
    expect(first.status).toBe(200);
    const bobId = String(first.body.userId);
    nowMs += 10_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect((await h.storage.users.get(h.tenant, 'usr-bob'))?.status).toBe('blocked');
    removed.length = 0;
    blocked.length = 0;

    nowMs += 10_000;
    expect((await h.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-2' }, { now: clock() })).status).toBe(200);
    failures.upsert = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-2' }, { now: clock() })).status).toBe(503);
    const companyId = (await h.storage.groups.get(h.tenant, 'cld-2'))!.companyId;
    expect(h.app.memberships.get(`${bobId}|${companyId}`)).toBeDefined();

    nowMs += 10_000;
    expect(await removeMember(h, 'usr-bob', 'cld-2')).toBe(200);
    const key = `${h.tenant}:usr-bob:cld-2:unrecorded`;
    expect(removed).toEqual([`${bobId}|${companyId}|mno:remove-membership:${key}`]);
    expect(blocked).toEqual([`${bobId}|mno:block-user:${key}`]);
    expect(await removeMember(h, 'usr-bob', 'cld-2')).toBe(200);
    expect(removed).toHaveLength(1);
    expect(blocked).toHaveLength(1);
  });
});

describe('the note for the removal webhook', () => {
  it('a retry whose clock reads earlier than the first try (stepped back, another instance) still writes its note: the second removal reaches the app', async () => {
    const base = Date.UTC(2026, 0, 5, 10, 0, 0);
    let nowMs = base;
    const clock = () => new Date(nowMs);
    const { storage, failures } = flakyStorage(clock);
    const { removed, hook } = removals();
    h = await startHarness({ storage, clock, withFindUserByEmail: true, provisioning: { removeMembership: hook } });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    expect((await h.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-1' }, { now: clock() })).status).toBe(200);
    // His first sign-in fails once the app has added him; Maestrano removes him: the app hears it.
    nowMs = base + 20_000;
    failures.complete = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' }, { now: clock() })).status).toBe(503);
    nowMs = base + 21_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(1);
    // Added back, he signs in through an instance whose clock is 6 s behind (or after an NTP
    // step back); the sign-in fails again once the app has added him.
    nowMs = base + 15_000;
    failures.complete = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' }, { now: new Date(base + 22_000) })).status).toBe(503);
    const companyId = (await h.storage.groups.get(h.tenant, 'cld-1'))!.companyId;
    expect(h.app.memberships.get(`legacy-1|${companyId}`)).toBeDefined();
    // Removed again: the app must hear this one as well.
    nowMs = base + 16_000;
    expect(await removeMember(h, 'usr-bob', 'cld-1')).toBe(200);
    expect(removed).toHaveLength(2);
    expect(removed[1]).toBe(`legacy-1|${companyId}|mno:remove-membership:${h.tenant}:usr-bob:cld-1:unrecorded-${base + 21_000}`);
  });

  it('is dropped once the login recorded the user: a group keeps no row per member who signed in', async () => {
    const { storage, failures } = flakyStorage();
    h = await startHarness({ storage, withFindUserByEmail: true });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    failures.complete = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' })).status).toBe(503);
    const notes = async () => (await h!.storage.cursors.list(h!.tenant, 'cld-1')).filter((c) => c.kind.startsWith('user.pending:')).map((c) => c.kind);
    expect(await notes()).toEqual(['user.pending:usr-bob']);
    // His retry records him (linked by email) and drops the note; so does a new user's first login.
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' })).status).toBe(200);
    expect((await h.login({ uid: 'usr-new', email: 'new@corp.com', groupUid: 'cld-1' })).status).toBe(200);
    expect(await h.storage.users.get(h.tenant, 'usr-bob')).not.toBeNull();
    expect(await notes()).toEqual([]);
  });
});

describe('a first login waiting for the user lock while a removal of that user runs', () => {
  it('is refused (403) before the app creates its user: no app user is left in the company that no removal will reach', async () => {
    const inner = memoryAdapter();
    // The removal pauses in its first write (the user lock held) until the login is seen waiting.
    let release!: () => void;
    const go = new Promise<void>((resolve) => (release = resolve));
    let paused!: () => void;
    const reached = new Promise<void>((resolve) => (paused = resolve));
    let pause = true;
    let loginWaiting!: () => void;
    const waiting = new Promise<void>((resolve) => (loginWaiting = resolve));
    const storage: StorageAdapter = {
      ...inner,
      users: {
        ...inner.users,
        upsertMembership: async (...args) => {
          if (args[3] === UNRECORDED_ROLE && pause) {
            pause = false;
            paused();
            await go;
          }
          return inner.users.upsertMembership(...args);
        },
      },
      locks: {
        ...inner.locks,
        acquire: async (key, owner, ttlMs) => {
          const ok = await inner.locks.acquire(key, owner, ttlMs);
          if (!ok && owner.includes(':sso-user:') && key === userLockKey('maestrano-test', 'usr-new')) loginWaiting();
          return ok;
        },
      },
    };
    const { removed, hook } = removals();
    h = await startHarness({ storage, provisioning: { removeMembership: hook } });
    expect((await h.login({ uid: 'usr-owner', email: 'owner@corp.com', groupUid: 'cld-1' })).status).toBe(200);
    // Maestrano removes a member who never signed in; he clicks the app meanwhile.
    const removal = removeMember(h, 'usr-new', 'cld-1');
    await reached;
    const login = h.login({ uid: 'usr-new', email: 'new@corp.com', groupUid: 'cld-1' });
    await waiting;
    release();
    expect(await removal).toBe(200);
    expect((await login).status).toBe(403);
    // The app was never asked to create him inside the company (nothing would remove him).
    expect([...h.app.users.values()].filter((u) => u.email === 'new@corp.com')).toEqual([]);
    expect(removed).toEqual([]);
  });
});

describe('a login refused before the app accepted the membership still records nothing about the user', () => {
  it('addMembership throws after the email match: no user, no link; the retry reports linkedByEmail', async () => {
    const { hook } = removals();
    h = await startHarness({ withFindUserByEmail: true, provisioning: { removeMembership: hook } });
    h.app.users.set('legacy-1', { email: 'bob@corp.com', firstName: 'Bob', key: 'pre-existing', companyId: null });
    h.app.failures.addMembership = 1;
    expect((await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' })).status).toBe(500);
    expect(await h.storage.users.get(h.tenant, 'usr-bob')).toBeNull();
    expect(await h.storage.users.findByUserId(h.tenant, 'legacy-1')).toEqual([]);
    const ok = await h.login({ uid: 'usr-bob', email: 'bob@corp.com', groupUid: 'cld-1' });
    expect(ok.body).toMatchObject({ userId: 'legacy-1', outcome: { linkedByEmail: true, userCreated: false } });
  });
});
