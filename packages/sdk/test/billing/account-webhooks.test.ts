import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule } from '../../src/billing/index.js';
import type { RouteHandler, Tenant } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import {
  type AccountCompanyRef,
  type AccountSeatsChange,
  type AccountUserRef,
  type AccountWebhookHooks,
  createAccountWebhooks,
  maskUser,
  unmaskUser,
} from '../../src/webhooks/account.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer } from './helpers.js';

const TENANT = 'maestrano-uat';
let api: AccountApiServer;
let storage: StorageAdapter;

beforeAll(async () => {
  api = await startAccountApiServer();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  resetServer(api);
  api.addGroup('cld-1');
  api.addGroup('cld-2');
  storage = memoryAdapter();
});

interface Calls {
  cancelCompany: AccountCompanyRef[];
  removeMembership: { user: AccountUserRef; company: AccountCompanyRef; key: string }[];
  blockUser: { user: AccountUserRef; company: AccountCompanyRef; key: string }[];
  onSeatsChanged: { company: AccountCompanyRef; change: AccountSeatsChange }[];
}

function setup(
  options: {
    creationMode?: 'real' | 'virtual';
    billing?: unknown;
    fail?: Partial<Record<keyof Calls, boolean>>;
    groupCancelledJobs?: string[];
    /** Delay (ms) inside removeMembership: the app's own write takes a moment. */
    removeMembershipDelayMs?: number;
  } = {},
) {
  const tenant = makeTenant(api, { creationMode: options.creationMode ?? 'real' });
  const { runtime, logger } = makeRuntime(storage, [tenant]);
  const calls: Calls = { cancelCompany: [], removeMembership: [], blockUser: [], onSeatsChanged: [] };
  const fail = options.fail ?? {};
  const hooks: AccountWebhookHooks = {
    cancelCompany: (company) => {
      if (fail.cancelCompany) throw new Error('app database down');
      calls.cancelCompany.push(company);
    },
    removeMembership: async (user, company, ctx) => {
      if (options.removeMembershipDelayMs) await new Promise((resolve) => setTimeout(resolve, options.removeMembershipDelayMs));
      if (fail.removeMembership) throw new Error('app database down');
      calls.removeMembership.push({ user, company, key: ctx.idempotencyKey });
    },
    blockUser: (user, company, ctx) => {
      if (fail.blockUser) throw new Error('app database down');
      calls.blockUser.push({ user, company, key: ctx.idempotencyKey });
    },
    onSeatsChanged: (company, change) => {
      if (fail.onSeatsChanged) throw new Error('seat billing failed');
      calls.onSeatsChanged.push({ company, change });
    },
  };
  const mod = createAccountModule(runtime, { billing: options.billing, hooks, groupCancelledJobs: options.groupCancelledJobs });
  const routes = mod.contribution.routes!;
  // The same webhooks with a short wait for locks and in-flight provisioning (default 10 s).
  const shortWait = createAccountWebhooks({
    storage,
    logger,
    hooks,
    account: (t) => mod.account(t.name),
    cancelRecurringBills: true,
    instanceId: 'test-instance',
    lockWaitMs: 100,
  });
  return { tenant, mod, calls, logger, groupDeleted: routes.groupDeleted!, groupUserDeleted: routes.groupUserDeleted!, shortWait };
}

/** A provisioning claim as SSO's first login holds it while `createCompany` runs. */
async function ssoClaim(groupId: string, ttlMs = 30_000) {
  const claim = await storage.groups.claim(TENANT, groupId, { owner: 'sso-login', ttlMs });
  expect(claim).toEqual({ state: 'claimed', takeover: false });
}

/** What another caller's claim finds: `pending` while a live claim is held, `claimed` without one. */
async function claimStateOf(groupId: string) {
  const probe = await storage.groups.claim(TENANT, groupId, { owner: 'probe', ttlMs: 1_000 });
  if (probe.state === 'claimed') await storage.groups.release(TENANT, groupId, 'probe');
  return probe;
}

function call(handler: RouteHandler, tenant: Tenant, path: string, params: Record<string, string>, auth?: string | null) {
  const headers = new Headers();
  const value = auth === undefined ? basicAuth(tenant.api.id, tenant.api.key) : auth;
  if (value !== null) headers.set('authorization', value);
  const request = new Request(`http://127.0.0.1${path}/${tenant.name}`, { method: 'DELETE', headers });
  return handler({ request, tenant, params });
}

async function snapshot(uids: string[], groupIds: string[]) {
  const users = await Promise.all(uids.map((u) => storage.users.get(TENANT, u)));
  const memberships = await Promise.all(uids.map((u) => storage.users.listMemberships(TENANT, { uid: u })));
  const groups = await Promise.all(groupIds.map((g) => storage.groups.get(TENANT, g)));
  return JSON.stringify({ users, memberships, groups });
}

function activeRecurringBill(id: string, groupId: string) {
  api.recurringBills.set(id, {
    id,
    object: 'account_recurring_bill',
    group_id: groupId,
    price_cents: 2900,
    description: 'Pro',
    currency: 'USD',
    period: 'month',
    status: 'active',
  });
}

describe('DELETE /maestrano/account/groups/:id/:tenant', () => {
  beforeEach(async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    activeRecurringBill('rbill-1', 'cld-1');
    activeRecurringBill('rbill-2', 'cld-2');
    api.recurringBills.set('rbill-3', { ...api.recurringBills.get('rbill-1')!, id: 'rbill-3', status: 'cancelled' });
  });

  it('cancels the group, its recurring bills and the company; answers {"success":true}', async () => {
    const { tenant, groupDeleted, calls } = setup();
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    const group = await storage.groups.get(TENANT, 'cld-1');
    expect(group).toMatchObject({ status: 'cancelled' });
    expect(group!.cancelledAt).toBeInstanceOf(Date);
    expect(api.recurringBills.get('rbill-1')!.status).toBe('cancelled');
    expect(api.recurringBills.get('rbill-2')!.status).toBe('active');
    expect(calls.cancelCompany).toEqual([{ id: 'company-cld-1', tenant: TENANT, groupId: 'cld-1' }]);
    const deletes = api.requests.filter((r) => r.method === 'DELETE').map((r) => r.path);
    expect(deletes).toEqual(['/api/v1/account/recurring_bills/rbill-1']);
  });

  it('answers a replay with success and changes nothing', async () => {
    const { tenant, groupDeleted, calls } = setup();
    await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    const before = await snapshot([], ['cld-1']);
    const requests = api.requests.length;
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await snapshot([], ['cld-1'])).toBe(before);
    expect(calls.cancelCompany).toHaveLength(1);
    // Only the recurring-bill pass every delivery makes once the group is cancelled (a
    // subscription POST in flight during the deletion may have landed since): a listing.
    expect(api.requests.slice(requests).map((r) => `${r.method} ${r.path}`)).toEqual([expect.stringMatching(/^GET .*recurring_bills$/)]);
  });

  it('runs concurrent deliveries once', async () => {
    const { tenant, groupDeleted, calls } = setup();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(calls.cancelCompany).toHaveLength(1);
  });

  it('answers success without changes for an unknown group', async () => {
    const { tenant, groupDeleted, calls } = setup();
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-404', { id: 'cld-404' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await storage.groups.get(TENANT, 'cld-404')).toBeNull();
    // No claim is left behind, only the mark that refuses a later first login into the group.
    expect(await claimStateOf('cld-404')).toEqual({ state: 'claimed', takeover: false });
    expect(await storage.cursors.list(TENANT, 'cld-404')).toEqual([
      expect.objectContaining({ entity: '*', kind: 'group.deleted', complete: true }),
    ]);
    expect(calls.cancelCompany).toHaveLength(0);
    expect(api.requests).toHaveLength(0);
  });

  it('an unknown group whose mark cannot be stored: 500 (the platform retries), no claim left', async () => {
    const { runtime } = makeRuntime(storage, [makeTenant(api)]);
    const failing: StorageAdapter = {
      ...storage,
      cursors: { ...storage.cursors, advance: () => Promise.reject(new Error('database is down')) },
    };
    const { tenant } = setup();
    const webhooks = createAccountWebhooks({
      storage: failing,
      logger: runtime.logger,
      hooks: {},
      account: () => {
        throw new Error('not called');
      },
      cancelRecurringBills: false,
      instanceId: 'test',
    });
    const res = await call(webhooks.groupDeleted, tenant, '/maestrano/account/groups/cld-404', { id: 'cld-404' });
    expect(res.status).toBe(500);
    expect(await storage.cursors.list(TENANT, 'cld-404')).toEqual([]);
    expect(await claimStateOf('cld-404')).toEqual({ state: 'claimed', takeover: false });
  });

  describe('while an SSO login is still provisioning the group', () => {
    it('answers 503 with Retry-After and changes nothing; the retry once provisioning completed cancels the group', async () => {
      const { tenant, shortWait, calls, logger } = setup();
      activeRecurringBill('rbill-9', 'cld-9');
      await ssoClaim('cld-9');
      const res = await call(shortWait.groupDeleted, tenant, '/maestrano/account/groups/cld-9', { id: 'cld-9' });
      expect(res.status).toBe(503);
      // The claim's remaining lifetime (30 s), in seconds.
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(29);
      expect(retryAfter).toBeLessThanOrEqual(30);
      expect(await res.json()).toEqual({
        success: false,
        error: 'provisioning_in_progress',
        message: 'The group is still being provisioned; please retry',
      });
      expect(calls.cancelCompany).toHaveLength(0);
      expect(api.requests).toHaveLength(0);
      expect(await storage.groups.get(TENANT, 'cld-9')).toBeNull();
      // The login's claim is untouched: it still owns it and completes it.
      expect((await claimStateOf('cld-9')).state).toBe('pending');
      expect(logger.entries).toContainEqual(
        expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ groupId: 'cld-9', retryAfterSeconds: retryAfter }) }),
      );

      await storage.groups.complete(TENANT, 'cld-9', 'sso-login', { companyId: 'company-cld-9' });
      const retry = await call(shortWait.groupDeleted, tenant, '/maestrano/account/groups/cld-9', { id: 'cld-9' });
      expect(retry.status).toBe(200);
      expect(await retry.json()).toEqual({ success: true });
      expect((await storage.groups.get(TENANT, 'cld-9'))!.status).toBe('cancelled');
      expect(calls.cancelCompany).toEqual([{ id: 'company-cld-9', tenant: TENANT, groupId: 'cld-9' }]);
      expect(api.recurringBills.get('rbill-9')!.status).toBe('cancelled');
    });

    it('caps Retry-After at 60 s for a long claim', async () => {
      const { tenant, shortWait } = setup();
      await ssoClaim('cld-9', 600_000);
      const res = await call(shortWait.groupDeleted, tenant, '/maestrano/account/groups/cld-9', { id: 'cld-9' });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('60');
    });

    it('waits for a login that completes meanwhile and cancels the group it provisioned', async () => {
      const { tenant, groupDeleted, calls } = setup();
      await ssoClaim('cld-9');
      const answer = call(groupDeleted, tenant, '/maestrano/account/groups/cld-9', { id: 'cld-9' });
      await new Promise((resolve) => setTimeout(resolve, 150));
      await storage.groups.complete(TENANT, 'cld-9', 'sso-login', { companyId: 'company-cld-9' });
      const res = await answer;
      expect(res.status).toBe(200);
      expect((await storage.groups.get(TENANT, 'cld-9'))!.status).toBe('cancelled');
      expect(calls.cancelCompany).toEqual([{ id: 'company-cld-9', tenant: TENANT, groupId: 'cld-9' }]);
    });

    it('an expired (abandoned) claim is an unknown group: 200, nothing called, no claim left', async () => {
      const { tenant, shortWait, calls } = setup();
      await ssoClaim('cld-9', 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const res = await call(shortWait.groupDeleted, tenant, '/maestrano/account/groups/cld-9', { id: 'cld-9' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
      expect(calls.cancelCompany).toHaveLength(0);
      expect(await storage.groups.get(TENANT, 'cld-9')).toBeNull();
      expect(await claimStateOf('cld-9')).toEqual({ state: 'claimed', takeover: false });
      expect((await storage.cursors.list(TENANT, 'cld-9')).map((c) => c.kind)).toEqual(['group.deleted']);
    });
  });

  it.each([
    ['wrong key', (t: Tenant) => basicAuth(t.api.id, 'not-the-key')],
    ['wrong id', (t: Tenant) => basicAuth('app-other', t.api.key)],
    ['missing', () => null],
    ['garbled', () => 'Basic !!!'],
    ['bearer', () => 'Bearer abc'],
  ])('refuses %s credentials with 401 {"error":"Invalid credentials"} and changes nothing', async (_name, auth) => {
    const { tenant, groupDeleted, calls } = setup();
    const before = await snapshot([], ['cld-1']);
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' }, auth(tenant));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'Invalid credentials' });
    expect(await snapshot([], ['cld-1'])).toBe(before);
    expect(calls.cancelCompany).toHaveLength(0);
    expect(api.recurringBills.get('rbill-1')!.status).toBe('active');
  });

  it('answers 5xx with the state exactly as before when cancelCompany throws; the retry succeeds', async () => {
    const failing = setup({ fail: { cancelCompany: true } });
    const before = await snapshot([], ['cld-1']);
    const res = await call(failing.groupDeleted, failing.tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(res.status).toBe(500);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.success).toBe(false);
    expect(JSON.stringify(body)).not.toContain('app database down');
    expect(await snapshot([], ['cld-1'])).toBe(before);
    expect(failing.logger.entries.some((e) => e.level === 'error' && String(e.fields?.step) === 'cancelCompany')).toBe(true);

    const working = setup();
    const retry = await call(working.groupDeleted, working.tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(retry.status).toBe(200);
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
    expect(working.calls.cancelCompany).toHaveLength(1);
  });

  it('answers 502 and changes nothing when the Account API fails; the retry succeeds', async () => {
    const { tenant, groupDeleted, calls } = setup({ billing: { accountApi: { retry: { limit: 0 } } } });
    api.faults.push({ status: 503, times: 1 });
    const before = await snapshot([], ['cld-1']);
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(res.status).toBe(502);
    expect(await snapshot([], ['cld-1'])).toBe(before);
    expect(calls.cancelCompany).toHaveLength(0);
    const retry = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(retry.status).toBe(200);
    expect(api.recurringBills.get('rbill-1')!.status).toBe('cancelled');
  });

  it('stores the follow-up jobs only once the group is cancelled: none when a hook throws, one per type after the retry, none more on a replay', async () => {
    const groupCancelledJobs = ['sync.purge', 'app.cleanup'];
    const failingHook = setup({ fail: { cancelCompany: true }, groupCancelledJobs });
    const failed = await call(failingHook.groupDeleted, failingHook.tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(failed.status).toBe(500);
    expect(await storage.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });

    const { tenant, groupDeleted } = setup({ groupCancelledJobs });
    expect((await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' })).status).toBe(200);
    expect((await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' })).status).toBe(200);
    expect((await call(groupDeleted, tenant, '/maestrano/account/groups/cld-404', { id: 'cld-404' })).status).toBe(200);
    const jobs = await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 1000 });
    expect(jobs.map((j) => [j.type, j.tenant, j.groupId, j.dedupeKey, j.payload]).sort()).toEqual([
      ['app.cleanup', TENANT, 'cld-1', `app.cleanup:${TENANT}:cld-1`, { tenant: TENANT, groupId: 'cld-1' }],
      ['sync.purge', TENANT, 'cld-1', `sync.purge:${TENANT}:cld-1`, { tenant: TENANT, groupId: 'cld-1' }],
    ]);
  });

  it('leaves recurring bills alone when cancelRecurringBillsOnGroupDeleted is false', async () => {
    const { tenant, groupDeleted, calls } = setup({ billing: { cancelRecurringBillsOnGroupDeleted: false } });
    const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
    expect(res.status).toBe(200);
    expect(api.recurringBills.get('rbill-1')!.status).toBe('active');
    expect(api.requests).toHaveLength(0);
    expect(calls.cancelCompany).toHaveLength(1);
    expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
  });
});

describe('DELETE /maestrano/account/groups/:group_id/users/:id/:tenant', () => {
  it('normalises uids for the identity mode (mask_user / unmask_user)', () => {
    expect(unmaskUser('usr-1.cld-1')).toBe('usr-1');
    expect(maskUser('usr-1.cld-9', 'cld-1', 'real')).toBe('usr-1');
    expect(maskUser('usr-1', 'cld-1', 'virtual')).toBe('usr-1.cld-1');
    expect(maskUser('usr-1.cld-1', 'cld-1', 'virtual')).toBe('usr-1.cld-1');
  });

  describe('real mode', () => {
    beforeEach(async () => {
      await provisionGroup(storage, TENANT, 'cld-1');
      await provisionGroup(storage, TENANT, 'cld-2');
      await provisionUser(storage, TENANT, 'usr-1', ['cld-1', 'cld-2']);
      await provisionUser(storage, TENANT, 'usr-2', ['cld-1']);
    });

    it('removes the membership, ends access to that company, keeps a user with another group active, and reports the seats', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-1', {
        group_id: 'cld-1',
        id: 'usr-1',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
      const memberships = await storage.users.listMemberships(TENANT, { uid: 'usr-1' });
      expect(memberships.map((m) => [m.groupId, m.status]).sort()).toEqual([
        ['cld-1', 'removed'],
        ['cld-2', 'active'],
      ]);
      expect((await storage.users.get(TENANT, 'usr-1'))!.status).toBe('active');
      // The app is told on every removal: the user loses company cld-1 and keeps cld-2.
      expect(calls.blockUser).toHaveLength(0);
      expect(calls.removeMembership).toEqual([
        {
          user: { id: 'user-usr-1', tenant: TENANT, uid: 'usr-1' },
          company: { id: 'company-cld-1', tenant: TENANT, groupId: 'cld-1' },
          key: expect.stringMatching(new RegExp(`^mno:remove-membership:${TENANT}:usr-1:cld-1:\\d+$`)),
        },
      ]);
      expect(calls.onSeatsChanged).toEqual([
        { company: { id: 'company-cld-1', tenant: TENANT, groupId: 'cld-1' }, change: { activeSeats: 1, added: [], removed: ['usr-1'] } },
      ]);
    });

    it('concurrent removals from one group report the seats one after the other: the last report is the real count', async () => {
      await provisionUser(storage, TENANT, 'usr-3', ['cld-1']);
      const { tenant, groupUserDeleted, calls } = setup({ removeMembershipDelayMs: 100 });
      const answers = await Promise.all(
        ['usr-2', 'usr-3'].map((id) => call(groupUserDeleted, tenant, `/maestrano/account/groups/cld-1/users/${id}`, { group_id: 'cld-1', id })),
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      const left = await storage.users.listMemberships(TENANT, { groupId: 'cld-1', status: 'active' });
      expect(left.map((m) => m.uid)).toEqual(['usr-1']);
      expect(calls.onSeatsChanged.map((c) => c.change.activeSeats)).toEqual([2, 1]);
      expect(calls.onSeatsChanged.flatMap((c) => c.change.removed).sort()).toEqual(['usr-2', 'usr-3']);
    });

    it('blocks the user once no active membership is left (a virtual uid in the path is unmasked)', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-1', { group_id: 'cld-1', id: 'usr-1' });
      const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-1.cld-2', {
        group_id: 'cld-2',
        id: 'usr-1.cld-2',
      });
      expect(res.status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-1'))!.status).toBe('blocked');
      expect(calls.removeMembership.map((c) => c.company.groupId)).toEqual(['cld-1', 'cld-2']);
      expect(calls.blockUser.map((c) => c.company.groupId)).toEqual(['cld-2']);
      expect(calls.blockUser[0]!.key).toMatch(new RegExp(`^mno:block-user:${TENANT}:usr-1:cld-2:\\d+$`));
      expect(calls.onSeatsChanged.at(-1)!.change).toEqual({ activeSeats: 0, added: [], removed: ['usr-1'] });
    });

    it('blocks the user when the only other membership left is in a cancelled group', async () => {
      const { tenant, groupUserDeleted, groupDeleted, calls } = setup();
      const cancelled = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-2', { id: 'cld-2' });
      expect(cancelled.status).toBe(200);
      expect((await storage.groups.get(TENANT, 'cld-2'))!.status).toBe('cancelled');
      const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-1', { group_id: 'cld-1', id: 'usr-1' });
      expect(res.status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-1'))!.status).toBe('blocked');
      expect(calls.blockUser.map((c) => c.company.groupId)).toEqual(['cld-1']);
    });

    it('a membership removed, added back and removed again ends access again, under a new idempotency key', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      const path = '/maestrano/account/groups/cld-1/users/usr-2';
      expect((await call(groupUserDeleted, tenant, path, { group_id: 'cld-1', id: 'usr-2' })).status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('blocked');
      // Maestrano adds the user back; the next SSO login reactivates the membership and the user.
      await new Promise((resolve) => setTimeout(resolve, 2));
      await storage.users.upsertMembership(TENANT, 'usr-2', 'cld-1', 'Member');
      await storage.users.setStatus(TENANT, 'usr-2', 'active');
      expect((await call(groupUserDeleted, tenant, path, { group_id: 'cld-1', id: 'usr-2' })).status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('blocked');
      expect(calls.blockUser).toHaveLength(2);
      expect(calls.blockUser[0]!.key).not.toBe(calls.blockUser[1]!.key);
    });

    it('answers a replay and an unknown user or group with success, calling no hook and changing no user, group or granted membership; the unknown ones are recorded as removed', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-2', { group_id: 'cld-1', id: 'usr-2' });
      const before = await snapshot(['usr-1', 'usr-2'], ['cld-1', 'cld-2']);
      const granted = async () => JSON.stringify(await Promise.all(['usr-1', 'usr-2'].map((u) => storage.users.listMemberships(TENANT, { uid: u }))));
      const membershipsBefore = await granted();
      const hookCalls = calls.removeMembership.length + calls.blockUser.length + calls.onSeatsChanged.length;
      for (let delivery = 0; delivery < 2; delivery++) {
        for (const [groupId, id] of [
          ['cld-1', 'usr-2'],
          ['cld-1', 'usr-404'],
          ['cld-404', 'usr-1'],
        ] as const) {
          const res = await call(groupUserDeleted, tenant, `/maestrano/account/groups/${groupId}/users/${id}`, {
            group_id: groupId,
            id,
          });
          expect(res.status).toBe(200);
          expect(await res.json()).toEqual({ success: true });
        }
      }
      // The memberships the app never granted are recorded as removed (a response issued
      // before the removal is refused); nothing else moved, and a second delivery added nothing.
      const [ghost] = await storage.users.listMemberships(TENANT, { uid: 'usr-404', groupId: 'cld-1' });
      const [elsewhere] = await storage.users.listMemberships(TENANT, { uid: 'usr-1', groupId: 'cld-404' });
      expect([ghost?.status, elsewhere?.status]).toEqual(['removed', 'removed']);
      expect(await storage.users.get(TENANT, 'usr-404')).toBeNull();
      expect(await storage.groups.get(TENANT, 'cld-404')).toBeNull();
      expect((await storage.users.get(TENANT, 'usr-1'))?.status).toBe('active');
      expect((await storage.users.listMemberships(TENANT, { groupId: 'cld-1', status: 'active' })).map((m) => m.uid).sort()).not.toContain('usr-404');
      const strip = (json: string) => JSON.stringify((JSON.parse(json) as { groupId: string }[][]).map((list) => list.filter((m) => m.groupId !== 'cld-404')));
      expect(strip(await granted())).toBe(strip(membershipsBefore));
      expect(JSON.parse(await snapshot(['usr-1', 'usr-2'], ['cld-1', 'cld-2'])).users).toEqual(JSON.parse(before).users);
      expect(JSON.parse(await snapshot(['usr-1', 'usr-2'], ['cld-1', 'cld-2'])).groups).toEqual(JSON.parse(before).groups);
      expect(calls.removeMembership.length + calls.blockUser.length + calls.onSeatsChanged.length).toBe(hookCalls);
    });

    it('a known user and group without a membership record: the hooks hear the removal (the app may hold one), the seats are reported, a removed membership recorded', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      // usr-3 as a login whose membership write failed leaves it: recorded, no membership.
      await provisionUser(storage, TENANT, 'usr-3', []);
      const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' });
      expect(res.status).toBe(200);
      expect(calls.removeMembership).toEqual([
        { user: { id: 'user-usr-3', tenant: TENANT, uid: 'usr-3' }, company: expect.objectContaining({ groupId: 'cld-2' }), key: `mno:remove-membership:${TENANT}:usr-3:cld-2:unrecorded` },
      ]);
      expect(calls.blockUser.map((c) => c.key)).toEqual([`mno:block-user:${TENANT}:usr-3:cld-2:unrecorded`]);
      // That login reported usr-3's seat before its membership write failed: the real count (usr-1).
      expect(calls.onSeatsChanged.map((c) => c.change)).toEqual([{ activeSeats: 1, added: [], removed: ['usr-3'] }]);
      expect((await storage.users.listMemberships(TENANT, { uid: 'usr-3' })).map((m) => [m.groupId, m.status])).toEqual([['cld-2', 'removed']]);
      expect((await storage.users.get(TENANT, 'usr-3'))!.status).toBe('blocked');
      // A replay finds the removal recorded: success, no hook.
      expect((await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' })).status).toBe(200);
      expect(calls.removeMembership).toHaveLength(1);

      // usr-2 (a member of cld-1 only) removed from cld-2: heard, not blocked.
      expect((await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-2', { group_id: 'cld-2', id: 'usr-2' })).status).toBe(200);
      expect(calls.removeMembership.at(-1)!.key).toBe(`mno:remove-membership:${TENANT}:usr-2:cld-2:unrecorded`);
      expect(calls.blockUser).toHaveLength(1);
      expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('active');
      expect((await storage.users.listMemberships(TENANT, { uid: 'usr-2' })).map((m) => [m.groupId, m.status]).sort()).toEqual([
        ['cld-1', 'active'],
        ['cld-2', 'removed'],
      ]);
    });

    it('an unrecorded removal whose block write fails: 5xx, and the retry blocks the user', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      await provisionUser(storage, TENANT, 'usr-3', []);
      const original = storage.users.setStatus;
      storage.users.setStatus = async () => {
        throw new Error('storage down');
      };
      const first = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' });
      storage.users.setStatus = original;
      expect(first.status).toBe(500);
      expect((await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' })).status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-3'))!.status).toBe('blocked');
      expect((await storage.users.listMemberships(TENANT, { uid: 'usr-3' })).map((m) => m.status)).toEqual(['removed']);
      expect(new Set(calls.removeMembership.map((c) => c.key))).toEqual(new Set([`mno:remove-membership:${TENANT}:usr-3:cld-2:unrecorded`]));
    });

    it('an unrecorded removal whose status write fails: the retry finds the placeholder and finishes the same removal (same keys, the same count)', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      await provisionUser(storage, TENANT, 'usr-3', []);
      const original = storage.users.setMembershipStatus;
      storage.users.setMembershipStatus = async () => {
        throw new Error('storage down');
      };
      const first = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' });
      storage.users.setMembershipStatus = original;
      expect(first.status).toBe(500);
      const retry = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-2/users/usr-3', { group_id: 'cld-2', id: 'usr-3' });
      expect(retry.status).toBe(200);
      expect((await storage.users.listMemberships(TENANT, { uid: 'usr-3' })).map((m) => [m.groupId, m.status])).toEqual([['cld-2', 'removed']]);
      // The placeholder left active between the writes is no seat: both attempts count usr-1 only.
      expect(calls.onSeatsChanged.map((c) => c.change.activeSeats)).toEqual([1, 1]);
      expect(new Set(calls.removeMembership.map((c) => c.key))).toEqual(new Set([`mno:remove-membership:${TENANT}:usr-3:cld-2:unrecorded`]));
      expect((await storage.users.get(TENANT, 'usr-3'))!.status).toBe('blocked');
    });

    it.each(['removeMembership', 'blockUser', 'onSeatsChanged'] as const)(
      'answers 5xx with the state exactly as before when %s throws; the retry succeeds',
      async (hook) => {
        const failing = setup({ fail: { [hook]: true } });
        const before = await snapshot(['usr-2'], ['cld-1']);
        const [membership] = await storage.users.listMemberships(TENANT, { uid: 'usr-2', groupId: 'cld-1' });
        const removedAt = membership!.updatedAt.getTime();
        const res = await call(failing.groupUserDeleted, failing.tenant, '/maestrano/account/groups/cld-1/users/usr-2', {
          group_id: 'cld-1',
          id: 'usr-2',
        });
        expect(res.status).toBe(500);
        expect(await snapshot(['usr-2'], ['cld-1'])).toBe(before);

        const working = setup();
        const retry = await call(working.groupUserDeleted, working.tenant, '/maestrano/account/groups/cld-1/users/usr-2', {
          group_id: 'cld-1',
          id: 'usr-2',
        });
        expect(retry.status).toBe(200);
        expect((await storage.users.get(TENANT, 'usr-2'))!.status).toBe('blocked');
        expect(working.calls.removeMembership).toHaveLength(1);
        expect(working.calls.blockUser).toHaveLength(1);
        // The retry is the same logical operation: the same idempotency keys.
        expect(working.calls.blockUser[0]!.key).toBe(`mno:block-user:${TENANT}:usr-2:cld-1:${removedAt}`);
      },
    );

    it('restores the membership when blocking the user fails in storage (5xx, state as before)', async () => {
      const { tenant, groupUserDeleted } = setup();
      const original = storage.users.setStatus;
      storage.users.setStatus = async () => {
        throw new Error('storage down');
      };
      try {
        const before = await snapshot(['usr-2'], ['cld-1']).then((s) => JSON.parse(s));
        const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-2', {
          group_id: 'cld-1',
          id: 'usr-2',
        });
        expect(res.status).toBe(500);
        const after = JSON.parse(await snapshot(['usr-2'], ['cld-1']));
        expect(after.users).toEqual(before.users);
        expect(after.memberships[0].map((m: { status: string; role: string }) => [m.status, m.role])).toEqual([['active', 'Member']]);
      } finally {
        storage.users.setStatus = original;
      }
    });

    it('refuses wrong or missing credentials with 401 and changes nothing', async () => {
      const { tenant, groupUserDeleted, calls } = setup();
      const before = await snapshot(['usr-1'], ['cld-1']);
      for (const auth of [basicAuth(tenant.api.id, 'wrong'), null]) {
        const res = await call(
          groupUserDeleted,
          tenant,
          '/maestrano/account/groups/cld-1/users/usr-1',
          { group_id: 'cld-1', id: 'usr-1' },
          auth,
        );
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ error: 'Invalid credentials' });
      }
      expect(await snapshot(['usr-1'], ['cld-1'])).toBe(before);
      expect(calls.onSeatsChanged).toHaveLength(0);
    });
  });

  describe('virtual mode', () => {
    beforeEach(async () => {
      await provisionGroup(storage, TENANT, 'cld-1');
      await provisionUser(storage, TENANT, 'usr-1.cld-1', ['cld-1']);
      await provisionUser(storage, TENANT, 'usr-1.cld-2', ['cld-2']);
    });

    it('keys the real uid from the path to the group-scoped virtual uid and blocks that user only', async () => {
      const { tenant, groupUserDeleted, calls } = setup({ creationMode: 'virtual' });
      const res = await call(groupUserDeleted, tenant, '/maestrano/account/groups/cld-1/users/usr-1', {
        group_id: 'cld-1',
        id: 'usr-1',
      });
      expect(res.status).toBe(200);
      expect((await storage.users.get(TENANT, 'usr-1.cld-1'))!.status).toBe('blocked');
      expect((await storage.users.get(TENANT, 'usr-1.cld-2'))!.status).toBe('active');
      expect(calls.blockUser.map((c) => c.user.uid)).toEqual(['usr-1.cld-1']);
    });

    it('group deletion also blocks the group\'s (group-scoped) users; a failing blockUser changes nothing', async () => {
      await provisionUser(storage, TENANT, 'usr-2.cld-1', ['cld-1']);
      const failing = setup({ creationMode: 'virtual', billing: { cancelRecurringBillsOnGroupDeleted: false }, fail: { blockUser: true } });
      const uids = ['usr-1.cld-1', 'usr-2.cld-1', 'usr-1.cld-2'];
      const before = await snapshot(uids, ['cld-1']);
      const failed = await call(failing.groupDeleted, failing.tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
      expect(failed.status).toBe(500);
      expect(await snapshot(uids, ['cld-1'])).toBe(before);

      const { tenant, groupDeleted, calls } = setup({ creationMode: 'virtual', billing: { cancelRecurringBillsOnGroupDeleted: false } });
      const res = await call(groupDeleted, tenant, '/maestrano/account/groups/cld-1', { id: 'cld-1' });
      expect(res.status).toBe(200);
      expect(calls.blockUser.map((c) => c.user.uid).sort()).toEqual(['usr-1.cld-1', 'usr-2.cld-1']);
      expect((await storage.users.get(TENANT, 'usr-1.cld-1'))!.status).toBe('blocked');
      expect((await storage.users.get(TENANT, 'usr-2.cld-1'))!.status).toBe('blocked');
      expect((await storage.users.get(TENANT, 'usr-1.cld-2'))!.status).toBe('active');
      expect((await storage.users.listMemberships(TENANT, { groupId: 'cld-1', status: 'active' })).length).toBe(0);
      expect((await storage.groups.get(TENANT, 'cld-1'))!.status).toBe('cancelled');
      expect(calls.cancelCompany).toHaveLength(1);
    });
  });
});
