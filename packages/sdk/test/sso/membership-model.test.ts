// A seeded, model-based randomized test of SSO logins and the account webhooks together.
// Random steps over three users and two groups: Maestrano adds a member (a response issued
// now), a member posts a response (fresh, an older one still valid, or one whose login
// failed), the app's hooks fail sometimes (`createUser`, `addMembership`, `onLogin`; before
// or after their effect), storage fails sometimes on a write (before it commits, or after:
// the answer lost), Maestrano removes a member or deletes a group (retried until 200), and
// the clock moves. Maestrano's view is a simple model; the app's is built from the hooks
// alone. Once every webhook has been answered 200, the invariants are checked. Real parts:
// the memory adapter (wrapped to fail), RSA-signed responses of the test IdP, the ACS and the
// webhooks through `mno.handler` on loopback HTTP, one clock the test moves.
import {
  type AppRecordRef,
  type CompanyHandle,
  memoryAdapter,
  type ProvisioningContext,
  type SsoGroup,
  type SsoUser,
  type StorageAdapter,
  StorageError,
  type UserHandle,
} from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { modelSeeds, rng } from '../model-run.js';
import { UNRECORDED_ROLE } from '../../src/core/types.js';
import { type Harness, startHarness } from './harness.js';

/**
 * Seed 299 (60 steps) found the removal that left a blocked user's re-activated app user active;
 * seed 66 (60 steps) a second removal of a membership already removed that let the response of
 * a failed re-add in afterwards.
 * Seeds 387 and 395 (60 steps) keep the model's (3) off a user whose last group a deletion took
 * after a failed login re-added the user in the app; seed 282 (60 steps) keeps (4) tolerant of
 * two unsettled logins of one group, one failed before its seat report and one after.
 */
const SEEDS = modelSeeds([...Array.from({ length: 18 }, (_, i): [number, number] => [i + 1, 40]), [66, 60], [115, 60], [282, 60], [299, 60], [387, 60], [395, 60]]);
const USERS = ['usr-a', 'usr-b', 'usr-c'];
const GROUPS = ['cld-1', 'cld-2'];
const START = Date.UTC(2026, 0, 5, 10, 0, 0);

const WRITES: Record<string, readonly string[]> = {
  users: ['complete', 'setStatus', 'upsertMembership', 'setMembershipStatus'],
  groups: ['complete', 'update', 'cancel'],
  cursors: ['advance', 'reset'],
  replay: ['remember', 'forget'],
  jobs: ['enqueue', 'enqueueMany'],
};

/** Fails the `nth` write of the next request (before it commits, or after: its answer lost). */
interface WriteFault {
  nth: number;
  after: boolean;
  hit?: string;
}

function flakyStorage(clock: () => Date): { storage: StorageAdapter; arm(fault: WriteFault | null): void; fault(): WriteFault | null } {
  const inner = memoryAdapter({ clock });
  let fault: WriteFault | null = null;
  let count = 0;
  const wrap = <T extends object>(repo: string, target: T): T =>
    new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== 'function' || !WRITES[repo]!.includes(String(prop))) return value;
        return async (...args: unknown[]) => {
          const f = fault;
          // Not the note a first login writes once `createUser` has answered, failing before it
          // commits: the app user it names is then in the company with no note for a removal to
          // find (a documented gap, as for the process dying there).
          const note = repo === 'cursors' && String((args[0] as { kind?: unknown } | undefined)?.kind).startsWith('user.pending:');
          if (f && !f.hit && !(note && !f.after) && ++count === f.nth) {
            f.hit = `${repo}.${String(prop)}`;
            const error = new StorageError(`${f.hit} failed: connection lost`, { adapterId: inner.id, operation: f.hit as `${string}.${string}` });
            if (!f.after) throw error;
            await (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
            throw error;
          }
          return (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
        };
      },
    });
  const storage: StorageAdapter = {
    ...inner,
    users: wrap('users', inner.users),
    groups: wrap('groups', inner.groups),
    cursors: wrap('cursors', inner.cursors),
    replay: wrap('replay', inner.replay),
    jobs: wrap('jobs', inner.jobs),
  };
  return {
    storage,
    arm: (f) => {
      fault = f;
      count = 0;
    },
    fault: () => fault,
  };
}

type HookName = 'createUser' | 'addMembership' | 'onLogin';

/** The app, as its hooks build it. */
class AppModel {
  companies = new Map<string, { groupId: string; key: string; cancelled: boolean }>();
  users = new Map<string, { uid: string; key: string; blocked: boolean }>();
  members = new Map<string, Set<string>>();
  seats = new Map<string, number>();
  seatKeys = new Set<string>();
  /** One upcoming failure per hook: before its effect, or after it. */
  failures: Partial<Record<HookName, 'before' | 'after'>> = {};
  used: string[] = [];
  seq = 0;

  membersOf(companyId: string): Set<string> {
    let set = this.members.get(companyId);
    if (!set) this.members.set(companyId, (set = new Set()));
    return set;
  }

  async run<T>(hook: HookName, effect: () => T): Promise<T> {
    const mode = this.failures[hook];
    delete this.failures[hook];
    if (mode) this.used.push(`${hook} threw ${mode}`);
    if (mode === 'before') throw new Error(`${hook} failed on purpose`);
    const value = effect();
    if (mode === 'after') throw new Error(`${hook} failed on purpose after its effect`);
    return value;
  }

  userOf(uid: string): string | null {
    for (const [id, u] of this.users) if (u.uid === uid) return id;
    return null;
  }

  companyOf(groupId: string): string | null {
    for (const [id, c] of this.companies) if (c.groupId === groupId) return id;
    return null;
  }

  hooks = {
    createCompany: (group: SsoGroup, ctx: ProvisioningContext): AppRecordRef => {
      for (const [id, c] of this.companies) if (c.key === ctx.idempotencyKey) return { id };
      const id = `co-${++this.seq}`;
      this.companies.set(id, { groupId: group.uid, key: ctx.idempotencyKey, cancelled: false });
      return { id };
    },
    createUser: (user: SsoUser, company: CompanyHandle, ctx: ProvisioningContext): Promise<AppRecordRef> =>
      this.run('createUser', () => {
        let id = [...this.users].find(([, u]) => u.key === ctx.idempotencyKey)?.[0];
        if (!id) {
          id = `u-${++this.seq}`;
          this.users.set(id, { uid: user.uid, key: ctx.idempotencyKey, blocked: false });
        }
        // Created inside the company.
        this.membersOf(company.id).add(id);
        this.users.get(id)!.blocked = false;
        return { id };
      }),
    addMembership: (user: UserHandle, company: CompanyHandle): Promise<void> =>
      this.run('addMembership', () => {
        this.membersOf(company.id).add(user.id);
        this.users.get(user.id)!.blocked = false;
      }),
    removeMembership: (user: { id: string }, company: { id: string }): void => {
      this.membersOf(company.id).delete(user.id);
    },
    blockUser: (user: { id: string }): void => {
      this.users.get(user.id)!.blocked = true;
    },
    cancelCompany: (company: { id: string }): void => {
      this.companies.get(company.id)!.cancelled = true;
    },
    onSeatsChanged: (company: { id: string }, change: { activeSeats: number }, ctx: { idempotencyKey: string }): void => {
      if (this.seatKeys.has(ctx.idempotencyKey)) return;
      this.seatKeys.add(ctx.idempotencyKey);
      this.seats.set(company.id, change.activeSeats);
    },
  };
}

interface Issued {
  id: string;
  uid: string;
  groupId: string;
  issuedAt: number;
  saml: string;
  failedOnce: boolean;
}

interface MnoMembership {
  member: boolean;
  addedAt: number;
  removedAt: number | null;
  /** When the SDK answered 200 to the (last) removal. */
  removalDeliveredAt: number | null;
  /** A 200 login since the last add. */
  signedIn: boolean;
}

type Webhook = { kind: 'remove'; uid: string; groupId: string } | { kind: 'delete'; groupId: string };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function runSeed(seed: number, STEPS: number, withSeats: boolean): Promise<{ violations: string[]; trace: string[] }> {
  const r = rng(seed);
  let nowMs = START;
  const clock = () => new Date(nowMs);
  const flaky = flakyStorage(clock);
  const app = new AppModel();
  const harness = await startHarness({
    storage: flaky.storage,
    clock,
    sso: { allowIdpInitiated: true },
    provisioning: {
      ...app.hooks,
      ...(withSeats ? { onSeatsChanged: app.hooks.onSeatsChanged } : {}),
    },
    extraConfig: {
      // No Account API here (no recurring bills to cancel).
      billing: { cancelRecurringBillsOnGroupDeleted: false },
      onLogin: (args: { user: { id: string } }) => app.run('onLogin', () => Response.json({ userId: args.user.id })),
    } as never,
  });
  h = harness;
  const trace: string[] = [];
  const violations: string[] = [];
  const alive = new Map(GROUPS.map((g) => [g, true]));
  const lostByRemoval = new Map<string, boolean>();
  const mno = new Map<string, MnoMembership>();
  const key = (uid: string, groupId: string) => `${uid}|${groupId}`;
  const issued: Issued[] = [];
  const sessions = new Map<string, number>();
  const queue: Webhook[] = [];
  let seq = 0;

  const respond = (uid: string, groupId: string): Issued => {
    const id = `_s${seed}-${++seq}`;
    const saml = harness.idp.response(
      { uid, email: `${uid}@corp.com`, groupUid: groupId, groupRole: 'Member' },
      { acsUrl: harness.acsUrl, inResponseTo: null, now: clock(), assertionId: id },
    );
    const item = { id, uid, groupId, issuedAt: nowMs, saml, failedOnce: false };
    issued.push(item);
    return item;
  };

  const maybeFaults = () => {
    flaky.arm(r.chance(0.2) ? { nth: 1 + r.int(6), after: r.chance(0.5) } : null);
    // `createUser` fails before its effect only: one that creates the user and then throws
    // leaves an app user whose id the SDK never learns, which no removal can name.
    if (r.chance(0.12)) app.failures.createUser = 'before';
    if (r.chance(0.12)) app.failures.addMembership = r.chance(0.5) ? 'before' : 'after';
    if (r.chance(0.1)) app.failures.onLogin = r.chance(0.5) ? 'before' : 'after';
  };
  const faultNote = () => {
    const f = flaky.fault();
    flaky.arm(null);
    app.failures = {};
    const used = app.used;
    app.used = [];
    return [f?.hit ? `storage ${f.hit} failed ${f.after ? 'after commit' : 'before'}` : '', ...used].filter(Boolean).join(', ');
  };

  const post = async (item: Issued) => {
    maybeFaults();
    const t0 = performance.now();
    const res = await harness.post(item.saml);
    const took = performance.now() - t0;
    if (took > 300) trace.push(`SLOW ${Math.round(took)}ms`);
    const note = faultNote();
    trace.push(`t+${(nowMs - START) / 1000}s post ${item.id} (${item.uid} ${item.groupId}, issued t+${(item.issuedAt - START) / 1000}s) -> ${res.status}${note ? ` [${note}]` : ''}`);
    if (res.status === 200) {
      sessions.set(item.id, (sessions.get(item.id) ?? 0) + 1);
      const m = mno.get(key(item.uid, item.groupId));
      if (m && !m.member && m.removedAt !== null && m.removalDeliveredAt !== null && item.issuedAt < m.removedAt) {
        violations.push(`(1) ${item.uid} signed in to ${item.groupId} after the removal at t+${(m.removedAt - START) / 1000}s with ${item.id} issued before it`);
      }
      if (m?.member && item.issuedAt >= m.addedAt) m.signedIn = true;
      lostByRemoval.set(item.uid, false);
    } else if (res.status >= 500) {
      item.failedOnce = true;
    }
  };

  const deliver = async (webhook: Webhook): Promise<number> => {
    maybeFaults();
    const path =
      webhook.kind === 'remove'
        ? `${harness.baseUrl}/maestrano/account/groups/${webhook.groupId}/users/${webhook.uid}/${harness.tenant}`
        : `${harness.baseUrl}/maestrano/account/groups/${webhook.groupId}/${harness.tenant}`;
    const t0 = performance.now();
    const res = await fetch(path, { method: 'DELETE', headers: { authorization: `Basic ${Buffer.from('app-test-1:test-api-key-1').toString('base64')}` } });
    await res.arrayBuffer();
    const took = performance.now() - t0;
    if (took > 300) trace.push(`SLOW ${Math.round(took)}ms`);
    const note = faultNote();
    trace.push(`t+${(nowMs - START) / 1000}s ${webhook.kind} ${webhook.kind === 'remove' ? `${webhook.uid} ` : ''}${webhook.groupId} -> ${res.status}${note ? ` [${note}]` : ''}`);
    if (res.status === 200 && webhook.kind === 'remove') mno.get(key(webhook.uid, webhook.groupId))!.removalDeliveredAt = nowMs;
    return res.status;
  };

  const flush = async () => {
    let attempts = 0;
    while (queue.length > 0) {
      const status = await deliver(queue[0]!);
      if (status === 200) {
        queue.shift();
        attempts = 0;
      } else if (++attempts >= 5) {
        violations.push(`${queue[0]!.kind} ${JSON.stringify(queue[0])} never answered 200 (last ${status})`);
        queue.shift();
      }
    }
  };

  const liveGroups = (uid: string) => GROUPS.filter((g) => alive.get(g) && mno.get(key(uid, g))?.member);
  /** Whether the user is still in a live group the user signed in to. */
  const known = (uid: string) => GROUPS.some((g) => alive.get(g) && mno.get(key(uid, g))?.member && mno.get(key(uid, g))?.signedIn);

  const check = async (step: number) => {
    for (const uid of USERS) {
      const appUser = app.userOf(uid);
      for (const groupId of GROUPS) {
        const m = mno.get(key(uid, groupId));
        const companyId = app.companyOf(groupId);
        if (!m || !alive.get(groupId) || !companyId || !appUser) continue;
        const isMember = app.membersOf(companyId).has(appUser);
        if (!m.member && m.removedAt !== null && isMember) violations.push(`step ${step}: (1) ${uid} removed from ${groupId} is still a member of ${companyId} in the app`);
        if (m.member && m.signedIn && (!isMember || app.users.get(appUser)!.blocked)) {
          violations.push(`step ${step}: (2) ${uid} member of ${groupId} who signed in is ${isMember ? 'blocked' : 'not a member'} in the app`);
        }
      }
      const recorded = await harness.storage.users.get(harness.tenant, uid);
      if (appUser && recorded && liveGroups(uid).length === 0 && lostByRemoval.get(uid) && !app.users.get(appUser)!.blocked) {
        violations.push(`step ${step}: (3) ${uid} has no live group and is not blocked in the app`);
      }
    }
    if (withSeats) {
      for (const groupId of GROUPS) {
        const companyId = app.companyOf(groupId);
        if (!companyId || !alive.get(groupId) || !app.seats.has(companyId)) continue;
        const active = (await harness.storage.users.listMemberships(harness.tenant, { groupId, status: 'active' })).filter((m) => m.role !== UNRECORDED_ROLE);
        // The SDK's active members, or the app's: a login reports the new seat before it writes
        // the membership, and one whose write failed leaves the seat reported (and the member
        // in the app) until the user's retry, or a removal, settles it. A login that failed
        // after the app added the member but before the report (`users.complete` or the seats
        // lock failing) leaves an app member no report counts yet: with both kinds unsettled at
        // once, the report lies between the two counts (the SDK's plus the reported unwritten
        // seats, the app's minus the unreported ones), and the retries settle it.
        const inApp = app.membersOf(companyId).size;
        const reported = app.seats.get(companyId)!;
        if (reported < Math.min(active.length, inApp) || reported > Math.max(active.length, inApp)) {
          violations.push(`step ${step}: (4) last seat report of ${groupId} is ${app.seats.get(companyId)}, ${active.length} active members (${inApp} in the app)`);
        }
      }
    }
    for (const [id, n] of sessions) if (n > 1) violations.push(`step ${step}: (5) ${id} granted ${n} sessions`);
  };

  for (let step = 0; step < STEPS && violations.length === 0; step++) {
    // Events are ordered in time: a removal comes at least a millisecond after a response.
    nowMs += 1;
    const roll = r.next();
    const uid = r.pick(USERS);
    const groupId = r.pick(GROUPS);
    const m = mno.get(key(uid, groupId));
    const pendingFor = (u: string, g: string) => queue.some((w) => w.groupId === g && (w.kind === 'delete' || w.uid === u));
    if (roll < 0.25) {
      // Maestrano adds the user (or the member signs in again): a response issued now, posted.
      if (!alive.get(groupId) || pendingFor(uid, groupId)) continue;
      if (!m?.member) {
        mno.set(key(uid, groupId), { member: true, addedAt: nowMs, removedAt: m?.removedAt ?? null, removalDeliveredAt: m?.removalDeliveredAt ?? null, signedIn: false });
        trace.push(`t+${(nowMs - START) / 1000}s maestrano adds ${uid} to ${groupId}`);
      }
      await post(respond(uid, groupId));
    } else if (roll < 0.45) {
      // The user posts an older response (maybe one whose login failed).
      const candidates = issued.filter((i) => i.uid === uid && nowMs - i.issuedAt < 400_000);
      const failed = candidates.filter((i) => i.failedOnce);
      const item = failed.length > 0 && r.chance(0.6) ? r.pick(failed) : candidates.length > 0 ? r.pick(candidates) : null;
      if (item) await post(item);
    } else if (roll < 0.6) {
      if (!m?.member || !alive.get(groupId)) continue;
      m.member = false;
      m.removedAt = nowMs;
      m.removalDeliveredAt = null;
      // (3) follows the groups the app heard of: the user lost the last one by a removal.
      if (m.signedIn && !known(uid)) lostByRemoval.set(uid, true);
      m.signedIn = false;
      trace.push(`t+${(nowMs - START) / 1000}s maestrano removes ${uid} from ${groupId}`);
      queue.push({ kind: 'remove', uid, groupId });
      if ((await deliver(queue[queue.length - 1]!)) === 200) queue.pop();
    } else if (roll < 0.65) {
      if (!alive.get(groupId) || r.chance(0.5)) continue;
      alive.set(groupId, false);
      // A deletion does not block in real mode (documented): a user whose last group the app
      // heard of goes this way is out of (3). Heard of by a 200 login, or by a login that failed
      // after the app re-added the user (`addMembership` or `onLogin` throwing after its effect):
      // the app user, blocked by an earlier removal, is active again in the deleted company.
      const companyId = app.companyOf(groupId);
      for (const u of USERS) {
        const appUser = app.userOf(u);
        const heard = mno.get(key(u, groupId))?.signedIn || (mno.get(key(u, groupId))?.member && companyId !== null && appUser !== null && app.membersOf(companyId).has(appUser));
        if (heard && !known(u)) lostByRemoval.set(u, false);
      }
      trace.push(`t+${(nowMs - START) / 1000}s maestrano deletes ${groupId}`);
      queue.push({ kind: 'delete', groupId });
      if ((await deliver(queue[queue.length - 1]!)) === 200) queue.pop();
    } else if (roll < 0.8) {
      nowMs += r.pick([0, 400, 1_000, 5_000, 30_000, 100_000, 250_000]);
    } else if (queue.length > 0) {
      await flush();
    }
    if (queue.length === 0) await check(step);
  }
  await flush();
  await check(STEPS);
  return { violations, trace };
}

describe('SSO logins and account webhooks against a model of Maestrano and of the app', () => {
  // One test per seed (not one for all): each stays far from the test timeout on a loaded
  // 2-core CI machine (all seeds in one test took 19-30 s there), and a failure names its seed.
  for (const withSeats of [false, true]) {
    for (const [seed, steps] of SEEDS) {
      it(`keeps the invariants: seed ${seed}, ${steps} steps${withSeats ? ' (onSeatsChanged)' : ''}`, async () => {
        const { violations, trace } = await runSeed(seed, steps, withSeats);
        if (process.env['MODEL_TRACE']) console.log(`seed ${seed}\n${trace.join('\n')}`);
        expect(violations, `seed ${seed}:\n  ${violations.join('\n  ')}\n  trace:\n    ${trace.join('\n    ')}`).toEqual([]);
      });
    }
  }
});
