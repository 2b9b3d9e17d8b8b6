/**
 * A login that adds a member reports the seat (`onSeatsChanged`) before it writes the
 * membership, under the group's seats lock: a write whose answer is lost (committed, then a
 * connection dropped after COMMIT) answers 503 and the retry, finding the membership active,
 * has nothing left to report; a write that fails before committing answers 503 and the retry
 * reports again with the same idempotency key. The key names the group's membership state the
 * count came from: a retry after other members joined or left (the same count by chance) is a
 * new report, which an app honouring keys does not skip. A member removed before such a failed
 * login's retry holds no recorded membership, yet the app heard the seat: the removal reports.
 */
import { StorageError, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import type { TestUser } from '@org/maestrano-sdk/testing';
import { afterEach, expect, it } from 'vitest';
import { type Harness, removeMember, startHarness } from './harness.js';

const alice: TestUser = { uid: 'usr-alice', email: 'alice@doecorp.com', groupUid: 'cld-100' };
const bob: TestUser = { uid: 'usr-bob', email: 'bob@doecorp.com', groupUid: 'cld-100' };
const carol: TestUser = { uid: 'usr-carol', email: 'carol@doecorp.com', groupUid: 'cld-100' };
const dave: TestUser = { uid: 'usr-dave', email: 'dave@doecorp.com', groupUid: 'cld-100' };

/** memoryAdapter whose next `users.<operation>` fails: after committing (`lost`), or before. */
/** The app: idempotent by key (a key already processed is skipped), the last report wins. */
function keyHonouringApp() {
  const processed = new Set<string>();
  const app = {
    seats: -1,
    log: [] as string[],
    onSeatsChanged: (_company: unknown, change: { activeSeats: number }, ctx: { idempotencyKey: string }) => {
      app.log.push(`${ctx.idempotencyKey} -> ${change.activeSeats}`);
      if (processed.has(ctx.idempotencyKey)) return;
      processed.add(ctx.idempotencyKey);
      app.seats = change.activeSeats;
    },
  };
  return app;
}

function failingStorage(
  operation: 'upsertMembership' | 'setMembershipStatus' = 'upsertMembership',
  clock?: () => Date,
): { adapter: StorageAdapter; arm(when: 'lost' | 'before'): void } {
  const inner = memoryAdapter(clock ? { clock } : {});
  let armed: 'lost' | 'before' | null = null;
  const users = new Proxy(inner.users, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (property !== operation || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const when = armed;
        armed = null;
        const failure = () => new StorageError('connection lost', { adapterId: inner.id, operation: `users.${operation}` });
        if (when === 'before') throw failure();
        const result = await Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        if (when === 'lost') throw failure();
        return result;
      };
    },
  });
  return { adapter: { ...inner, users } as StorageAdapter, arm: (when) => (armed = when) };
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('reports the new seat after a login retried because its membership write answered an error', async () => {
  const storage = failingStorage();
  const reports: number[] = [];
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: (_company, change) => void reports.push(change.activeSeats) });
  expect((await h.login(alice)).status).toBe(200);
  expect(reports).toEqual([1]);

  storage.arm('lost');
  expect((await h.login(bob)).status).toBe(503); // storage_unavailable: "try again"
  expect((await h.login(bob)).status).toBe(200);
  const memberships = await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' });
  expect(memberships).toHaveLength(2);
  expect(reports).toEqual([1, 2]);
});

it('reports the seat again, with the same idempotency key, when the write failed before committing', async () => {
  const storage = failingStorage();
  const reports: { activeSeats: number; added: string[]; key: string }[] = [];
  h = await startHarness({
    storage: storage.adapter,
    onSeatsChanged: (_company, change, ctx) => void reports.push({ activeSeats: change.activeSeats, added: change.added, key: ctx.idempotencyKey }),
  });
  expect((await h.login(alice)).status).toBe(200);

  storage.arm('before');
  expect((await h.login(bob)).status).toBe(503);
  expect(await storage.adapter.users.listMemberships(h.tenant, { uid: 'usr-bob', groupId: 'cld-100' })).toEqual([]);
  expect((await h.login(bob)).status).toBe(200);
  // Nothing changed in the group between the two attempts: the same report, under the same key.
  const [first, second] = reports.slice(1);
  expect(first?.key).toMatch(new RegExp(`^mno:membership:${h.tenant}:usr-bob:cld-100:seat:2:\\d+$`));
  expect(reports.slice(1)).toEqual([
    { activeSeats: 2, added: ['usr-bob'], key: first?.key },
    { activeSeats: 2, added: ['usr-bob'], key: first?.key },
  ]);
  expect(second?.key).toBe(first?.key);
  // A role change of an active member is no seat change.
  expect((await h.login({ ...bob, groupRole: 'Member' })).status).toBe(200);
  expect(reports).toHaveLength(3);
});

it('an app that honours onSeatsChanged idempotency keys ends with the real number of seats', async () => {
  const storage = failingStorage();
  const app = keyHonouringApp();
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: app.onSeatsChanged });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200); // alice, bob: 2

  storage.arm('before');
  expect((await h.login(carol)).status).toBe(503); // reported 3 (carol), write failed: not a member

  // Maestrano removes bob (reports 1), dave joins (reports 2).
  expect(await removeMember(h, 'usr-bob', 'cld-100')).toBe(200);
  expect((await h.login(dave)).status).toBe(200);

  // carol retries: alice, dave, carol = 3 active members.
  expect((await h.login(carol)).status).toBe(200);
  const active = await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' });
  expect(active).toHaveLength(3);
  // Keyed by the count alone, the retry's report (3) carried the key of the first attempt's
  // report, made for another membership set: the app skipped it and kept 2.
  expect({ appSeats: app.seats, log: app.log }).toEqual({ appSeats: 3, log: expect.any(Array) });
});

it('a member removal retried after other members joined reports under a new key, so an app honouring keys ends with the real count', async () => {
  const storage = failingStorage('setMembershipStatus');
  const app = keyHonouringApp();
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: app.onSeatsChanged });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200); // alice, bob: 2
  const removeBob = () => removeMember(h as Harness, 'usr-bob', 'cld-100');

  // The removal reports 1 seat, then its membership write fails: 500, bob is still a member.
  storage.arm('before');
  expect(await removeBob()).toBe(500);
  // carol joins meanwhile: alice, bob, carol = 3.
  expect((await h.login(carol)).status).toBe(200);
  // Maestrano retries the removal: alice, carol = 2.
  expect(await removeBob()).toBe(200);
  const active = await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' });
  expect(active.map((m) => m.uid).sort()).toEqual(['usr-alice', 'usr-carol']);
  // Keyed by the removal alone, the retry's report (2) carried the key of the first attempt's
  // report (1), made for another membership set: the app skipped it and kept carol's 3.
  expect({ appSeats: app.seats, log: app.log }).toEqual({ appSeats: 2, log: expect.any(Array) });
});

it('a member removed after a login that reported their seat failed to write the membership: the removal reports the real count', async () => {
  const storage = failingStorage();
  const reports: { activeSeats: number; key: string }[] = [];
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: (_company, change, ctx) => void reports.push({ activeSeats: change.activeSeats, key: ctx.idempotencyKey }) });
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200); // alice, bob: 2

  // carol's login reports 3, then its membership write fails: 503, carol is recorded, her membership not.
  storage.arm('before');
  expect((await h.login(carol)).status).toBe(503);
  expect(reports.at(-1)?.activeSeats).toBe(3);

  // Maestrano removes carol before she retries: alice, bob = 2, and the app must hear it.
  expect(await removeMember(h, 'usr-carol', 'cld-100')).toBe(200);
  const active = await storage.adapter.users.listMemberships(h.tenant, { groupId: 'cld-100', status: 'active' });
  expect(active.map((m) => m.uid).sort()).toEqual(['usr-alice', 'usr-bob']);
  expect(reports.at(-1)?.activeSeats).toBe(2);
});

it('a member added back by a login that reported the seat and failed to write it, then removed again: the removal reports the real count', async () => {
  // Storage writes its times 10 s behind the IdP, so that a response issued right after the
  // removal reads as issued after it (the IdP writes whole seconds).
  const storage = failingStorage('upsertMembership', () => new Date(Date.now() - 10_000));
  const reports: number[] = [];
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: (_company, change) => void reports.push(change.activeSeats) });
  const removeBob = () => removeMember(h as Harness, 'usr-bob', 'cld-100');
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200);
  expect(await removeBob()).toBe(200); // alice: 1
  // Maestrano adds bob back (a response issued after the removal): reported 2, the write fails.
  storage.arm('before');
  expect((await h.login(bob)).status).toBe(503);
  expect(reports.at(-1)).toBe(2);
  // ... and removes him again before he retries: alice alone.
  expect(await removeBob()).toBe(200);
  expect(reports.at(-1)).toBe(1);
});

it('a removal of a member whose membership was never recorded, retried after its placeholder write answered an error, reports again under the same key', async () => {
  const storage = failingStorage();
  const reports: { activeSeats: number; key: string }[] = [];
  h = await startHarness({ storage: storage.adapter, onSeatsChanged: (_company, change, ctx) => void reports.push({ activeSeats: change.activeSeats, key: ctx.idempotencyKey }) });
  const removeCarol = () => removeMember(h as Harness, 'usr-carol', 'cld-100');
  expect((await h.login(alice)).status).toBe(200);
  expect((await h.login(bob)).status).toBe(200); // alice, bob: 2
  storage.arm('before');
  expect((await h.login(carol)).status).toBe(503); // reported 3, carol recorded, her membership not
  const before = reports.length;

  // The removal reports 2, then its placeholder write commits and answers an error: 500.
  storage.arm('lost');
  expect(await removeCarol()).toBe(500);
  // Maestrano retries: nothing changed in the group (carol's own placeholder is no seat and
  // no member's change), so the same report under the same key, not a second seat change.
  expect(await removeCarol()).toBe(200);
  const [first, second] = reports.slice(before);
  expect(reports.slice(before)).toHaveLength(2);
  expect(first?.activeSeats).toBe(2);
  expect(second).toEqual(first);
});
