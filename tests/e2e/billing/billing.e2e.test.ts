/**
 * Billing and account webhooks end to end: the SDK with PostgreSQL storage (Prisma adapter)
 * against the sandbox platform over loopback HTTP. Provisioning goes through real SAML SSO,
 * subscriptions through the worker, webhooks are sent by the sandbox itself.
 */
import { prismaAdapter } from '@org/maestrano-adapter-prisma';
import {
  type BillingGroup,
  ChargeInProgressError,
  createAccountModule,
  createWorker,
  JobTypes,
  type StorageAdapter,
  subscriptionStart,
  ValidationFailedError,
} from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BillingHarness, basicAuth, ssoLogin, startBillingHarness } from './harness.js';

const DAY = 86_400_000;
let h: BillingHarness;

/** The plan: the app's own trial of 30 days for groups named "AppTrial…", none otherwise. */
function plan(group: BillingGroup) {
  return {
    priceCents: 4900,
    description: 'Team plan',
    currency: 'USD',
    period: 'Month' as const,
    ...(group.name?.startsWith('AppTrial') ? { appTrialDays: 30 } : {}),
  };
}

beforeAll(async () => {
  h = await startBillingHarness({
    onCompanyCreated: (_company, group) => (group.name === 'Free' ? null : plan(group)),
    charge: { waitMs: 20_000 },
  });
});
afterAll(async () => {
  await h?.close();
});

async function newGroup(name: string, freeTrialEndAt: Date | null) {
  const group = await h.sandbox.admin.createGroup({
    marketplace: h.tenant,
    name,
    currency: 'USD',
    ...(freeTrialEndAt ? { freeTrialEndAt: freeTrialEndAt.toISOString() } : {}),
  });
  const user = await h.sandbox.admin.createUser({ memberships: [{ groupId: group.id, role: 'Admin' }] });
  return { groupId: group.id, userId: user.id };
}

async function provisionAndSubscribe(name: string, trialEnd: Date | null) {
  const ids = await newGroup(name, trialEnd);
  const login = await ssoLogin(h, ids.userId, ids.groupId);
  expect(login.status).toBe(200);
  const stats = await createWorker(h.mno.runtime, h.mno.jobs).drain({ pollIntervalMs: 10 });
  expect(stats.deadLettered).toBe(0);
  const stored = await h.storage.groups.get(h.tenant, ids.groupId);
  expect(stored).not.toBeNull();
  return { ...ids, group: stored! };
}

const recurring = async (groupId: string) => h.sandbox.admin.listRecurringBills(groupId);

describe('subscription on company creation (SSO -> company.created -> billing.subscribe)', () => {
  it('starts at the group free-trial end when it is in the future', async () => {
    const trialEnd = new Date(Date.now() + 10 * DAY);
    const { groupId } = await provisionAndSubscribe('Trial', trialEnd);
    const bills = await recurring(groupId);
    expect(bills).toHaveLength(1);
    expect(Date.parse(String(bills[0]!.start_date))).toBe(trialEnd.getTime());
    expect(bills[0]).toMatchObject({ price_cents: 4900, currency: 'USD' });
    const entry = await h.storage.ledger.get(`recurring:${h.tenant}:${groupId}`);
    expect(entry).toMatchObject({ status: 'done', outcome: { recurringBillId: bills[0]!.id } });
  });

  it('starts now when the group trial is over', async () => {
    const before = Date.now();
    const { groupId } = await provisionAndSubscribe('Expired', new Date(before - 5 * DAY));
    const bills = await recurring(groupId);
    expect(bills).toHaveLength(1);
    const start = Date.parse(String(bills[0]!.start_date));
    expect(start).toBeGreaterThanOrEqual(before);
    expect(start).toBeLessThanOrEqual(Date.now());
  });

  it('starts at the app trial end when it is later than the group trial', async () => {
    const { groupId, group } = await provisionAndSubscribe('AppTrial', new Date(Date.now() + 10 * DAY));
    const bills = await recurring(groupId);
    const expected = new Date(group.createdAt.getTime() + 30 * DAY);
    expect(Date.parse(String(bills[0]!.start_date))).toBe(expected.getTime());
    expect(subscriptionStart({ now: new Date(), groupTrialEndsAt: null, appTrialEndsAt: expected })).toEqual(expected);
    expect((await h.storage.groups.get(h.tenant, groupId))!.trialEndsAt).toEqual(expected);
  });

  it('creates nothing for a group whose plan is null', async () => {
    const { groupId } = await provisionAndSubscribe('Free', null);
    expect(await recurring(groupId)).toEqual([]);
  });

  it('never creates a second recurring bill when the event is replayed or the job re-run', async () => {
    const { groupId, group } = await provisionAndSubscribe('Replayed', null);
    const payload = { tenant: h.tenant, groupId, companyId: group.companyId, group: { group_name: 'Replayed' } };
    await h.storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: h.tenant, groupId, payload, dedupeKey: `replay-1:${groupId}` });
    await h.storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: h.tenant, groupId, payload, dedupeKey: `replay-2:${groupId}` });
    await createWorker(h.mno.runtime, h.mno.jobs).drain({ pollIntervalMs: 10 });
    await Promise.all(Array.from({ length: 5 }, () => h.mno.billing.subscribe(payload).catch(() => null)));
    expect(await recurring(groupId)).toHaveLength(1);
  });
});

describe('ad-hoc charges (PostgreSQL ledger)', () => {
  it('creates exactly one bill for 20 concurrent calls with one key', async () => {
    const { groupId } = await newGroup('Charged', null);
    const input = {
      tenant: h.tenant,
      groupId,
      priceCents: 1999,
      currency: 'USD',
      description: 'SMS pack',
      units: 2,
      thirdParty: true,
      idempotencyKey: `sms-${groupId}`,
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => h.mno.billing.charge(input)));
    const bills = await h.sandbox.admin.listBills(groupId);
    expect(bills).toHaveLength(1);
    expect(new Set(results.map((r) => r.billId))).toEqual(new Set([bills[0]!.id]));
    expect(results.filter((r) => r.status === 'created')).toHaveLength(1);
    expect(bills[0]).toMatchObject({ price_cents: 1999, third_party: true, status: 'submitted' });
    const entry = await h.storage.ledger.get(`charge:${h.tenant}:sms-${groupId}`);
    expect(entry).toMatchObject({ status: 'done', outcome: { billId: bills[0]!.id } });
  });

  it('reconciles a crash between the POST and recording the result into the one bill', async () => {
    const { groupId } = await newGroup('Crashed', null);
    const clock = createTestClock(Date.now());
    const clocked = prismaAdapter(h.prisma, { clock: clock.now });
    let crash = true;
    const crashing: StorageAdapter = {
      ...clocked,
      ledger: {
        get: (k) => clocked.ledger.get(k),
        claim: (k, o) => clocked.ledger.claim(k, o),
        release: (k, o) => clocked.ledger.release(k, o),
        complete: async (k, owner, outcome) => {
          if (crash) {
            crash = false;
            throw new Error('process killed after the POST');
          }
          return clocked.ledger.complete(k, owner, outcome);
        },
      },
    };
    const runtime = { ...h.mno.runtime, storage: crashing };
    const mod = createAccountModule(runtime, { billing: { charge: { claimTtlMs: 60_000 } } });
    const input = { tenant: h.tenant, groupId, priceCents: 500, currency: 'USD', description: 'Overage', idempotencyKey: `over-${groupId}` };
    await expect(mod.billing.charge(input)).rejects.toThrow(/process killed/);
    expect(await h.sandbox.admin.listBills(groupId)).toHaveLength(1);
    // While the dead owner's claim is live, a caller that will not wait is told it is in progress.
    const impatient = createAccountModule(runtime, { billing: { charge: { claimTtlMs: 60_000, waitMs: 0 } } });
    await expect(impatient.billing.charge(input)).rejects.toBeInstanceOf(ChargeInProgressError);

    clock.advance(60_001);
    const results = await Promise.all(Array.from({ length: 5 }, () => mod.billing.charge(input)));
    const bills = await h.sandbox.admin.listBills(groupId);
    expect(bills).toHaveLength(1);
    expect(new Set(results.map((r) => r.billId))).toEqual(new Set([bills[0]!.id]));
    expect(results.filter((r) => r.status === 'reconciled')).toHaveLength(1);
    expect(await h.storage.ledger.get(`charge:${h.tenant}:over-${groupId}`)).toMatchObject({
      status: 'done',
      outcome: { billId: bills[0]!.id },
    });
  });

  it('surfaces the platform validation and leaves the key reusable', async () => {
    const input = { tenant: h.tenant, groupId: 'cld-unknown', priceCents: 100, currency: 'USD', description: 'x', idempotencyKey: 'bad-group' };
    const error = await h.mno.billing.charge(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect((error as ValidationFailedError).errors.map((e) => e.field)).toContain('group_id');
    expect(await h.storage.ledger.get(`charge:${h.tenant}:bad-group`)).toBeNull();
  });
});

describe('Account API client against the sandbox', () => {
  it('covers groups, users, bills and recurring bills, with typed errors', async () => {
    const { groupId, userId } = await newGroup('Client', new Date('2031-01-01T00:00:00Z'));
    const account = h.mno.account(h.tenant);
    expect((await account.groups.retrieve(groupId)).freeTrialEndAt).toEqual(new Date('2031-01-01T00:00:00Z'));
    expect((await account.groups.list()).map((g) => g.id)).toContain(groupId);
    expect((await account.users.list({ groupId })).map((u) => u.id)).toEqual([userId]);
    expect((await account.users.retrieve(userId)).id).toBe(userId);
    await expect(account.groups.retrieve('cld-nope')).rejects.toMatchObject({ code: 'api_not_found' });

    const bill = await account.bills.create({ groupId, priceCents: 300, description: 'One-off', currency: 'USD' });
    expect((await account.bills.retrieve(bill.id)).priceCents).toBe(300);
    expect((await account.bills.list({ groupId })).map((b) => b.id)).toEqual([bill.id]);
    await h.sandbox.admin.invoiceBill(bill.id);
    await expect(account.bills.cancel(bill.id)).rejects.toBeInstanceOf(ValidationFailedError);

    const rbill = await account.recurringBills.create({ groupId, priceCents: 900, description: 'Addon', period: 'Week', cycles: 4 });
    expect(rbill).toMatchObject({ priceCents: 900, cycles: 4 });
    expect((await account.recurringBills.list({ groupId })).map((r) => r.id)).toEqual([rbill.id]);
    expect((await account.recurringBills.cancel(rbill.id)).status).toBe('cancelled');
    await expect(account.bills.cancel('bill-nope')).rejects.toMatchObject({ code: 'api_not_found' });
  });

  it('checks a user password (users.authenticate): the user for the right one, null for a wrong password or an unknown user', async () => {
    const { groupId } = await newGroup('Passwords', new Date('2031-01-01T00:00:00Z'));
    const user = await h.sandbox.admin.createUser({ email: 'pat@example.com', password: 'correct horse 🐎', memberships: [{ groupId, role: 'Member' }] });
    const users = h.mno.account(h.tenant).users;
    expect(await users.authenticate({ email: 'pat@example.com', password: 'correct horse 🐎' })).toMatchObject({ id: user.id, email: 'pat@example.com' });
    expect(await users.authenticate({ id: user.id, password: 'correct horse 🐎' })).toMatchObject({ id: user.id });
    expect(await users.authenticate({ email: 'pat@example.com', password: 'correct horse' })).toBeNull();
    expect(await users.authenticate({ email: 'nobody@example.com', password: 'correct horse 🐎' })).toBeNull();
    expect(await users.authenticate({ id: 'usr-nope', password: 'correct horse 🐎' })).toBeNull();
    // Any other failure throws, without the password (or what was sent for it) in the error.
    await h.sandbox.admin.addFault({ path: '/api/v1/account/users/authenticate', kind: 'status', status: 500, count: 1 });
    const failure = await users.authenticate({ email: 'pat@example.com', password: 'correct horse 🐎' }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'api_server', status: 500 });
    expect(`${String(failure)} ${JSON.stringify(failure)}`).not.toMatch(/correct horse|[A-Za-z0-9+/]{22}==--/);
    await h.sandbox.admin.clearFaults();
  });

  it('maps bad credentials to AuthenticationError', async () => {
    const tenant = h.mno.tenants.get(h.tenant)!;
    const wrong = createAccountModule(
      { ...h.mno.runtime, tenants: { get: () => ({ ...tenant, api: { ...tenant.api, key: 'wrong' } }), list: () => [] } },
      { billing: {} },
    );
    await expect(wrong.account(h.tenant).groups.list()).rejects.toMatchObject({ code: 'api_authentication', status: 401 });
  });
});

describe('account webhooks sent by the sandbox', () => {
  const webhook = (path: string, auth: string | null) =>
    fetch(`${h.appUrl}${path}`, { method: 'DELETE', headers: auth ? { authorization: auth } : {} });
  const creds = () => {
    const m = h.sandbox.credentials.marketplaces[0]!;
    return basicAuth(m.apiId, m.apiKey);
  };

  it('group deletion: cancels the group, its recurring bills and the company; replays change nothing', async () => {
    const { groupId, group } = await provisionAndSubscribe('ToCancel', null);
    expect(await recurring(groupId)).toHaveLength(1);

    // Wrong and missing credentials first: 401, nothing changed.
    for (const auth of [basicAuth('app-x', 'nope'), null]) {
      const res = await webhook(`/maestrano/account/groups/${groupId}/${h.tenant}`, auth);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'Invalid credentials' });
    }
    expect((await h.storage.groups.get(h.tenant, groupId))!.status).toBe('active');

    const { delivery } = await h.sandbox.admin.cancelGroup(groupId, { webhook: true });
    expect(delivery).not.toBeNull();
    await h.sandbox.admin.waitForDeliveries();
    const delivered = (await h.sandbox.admin.deliveries()).find((d) => d.id === delivery!.id)!;
    expect(delivered.state).toBe('delivered');
    expect(delivered.attempts.at(-1)!.status).toBe(200);

    const stored = await h.storage.groups.get(h.tenant, groupId);
    expect(stored).toMatchObject({ status: 'cancelled' });
    expect((await recurring(groupId)).map((b) => b.status)).toEqual(['cancelled']);
    expect(h.hooks.cancelCompany.filter((id) => id === group.companyId)).toHaveLength(1);

    const replay = await webhook(`/maestrano/account/groups/${groupId}/${h.tenant}`, creds());
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ success: true });
    expect(h.hooks.cancelCompany.filter((id) => id === group.companyId)).toHaveLength(1);
    expect(await h.storage.groups.get(h.tenant, groupId)).toEqual(stored);
  });

  it('unknown group -> success without changes; unknown tenant -> 404', async () => {
    const before = h.hooks.cancelCompany.length;
    const res = await webhook(`/maestrano/account/groups/cld-unknown/${h.tenant}`, creds());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await h.storage.groups.get(h.tenant, 'cld-unknown')).toBeNull();
    expect(h.hooks.cancelCompany.length).toBe(before);
    const unknownTenant = await webhook('/maestrano/account/groups/cld-unknown/no-such-market', creds());
    expect(unknownTenant.status).toBe(404);
  });

  it('a failing cancelCompany answers 5xx with the state as before; the platform retry succeeds', async () => {
    const { groupId, group } = await provisionAndSubscribe('Flaky', null);
    h.failing.add('cancelCompany');
    try {
      const { delivery } = await h.sandbox.admin.cancelGroup(groupId, { webhook: true });
      // Wait for at least one failed attempt.
      for (let i = 0; i < 500; i++) {
        const d = (await h.sandbox.admin.deliveries()).find((x) => x.id === delivery!.id)!;
        if (d.attempts.length > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const d = (await h.sandbox.admin.deliveries()).find((x) => x.id === delivery!.id)!;
      expect(d.attempts[0]!.status).toBe(500);
      expect((await h.storage.groups.get(h.tenant, groupId))!.status).toBe('active');
    } finally {
      h.failing.delete('cancelCompany');
    }
    await h.sandbox.admin.waitForDeliveries();
    expect((await h.storage.groups.get(h.tenant, groupId))!.status).toBe('cancelled');
    expect(h.hooks.cancelCompany.filter((id) => id === group.companyId)).toHaveLength(1);
  });

  it('member removal: membership removed, user blocked once no membership is left, seats reported', async () => {
    const { groupId, userId, group } = await provisionAndSubscribe('Members', null);
    const other = await h.sandbox.admin.createUser({ memberships: [{ groupId, role: 'Member' }] });
    expect((await ssoLogin(h, other.id, groupId)).status).toBe(200);

    const wrong = await webhook(`/maestrano/account/groups/${groupId}/users/${other.id}/${h.tenant}`, basicAuth('a', 'b'));
    expect(wrong.status).toBe(401);
    expect((await h.storage.users.listMemberships(h.tenant, { uid: other.id }))[0]!.status).toBe('active');

    h.failing.add('blockUser');
    const failed = await webhook(`/maestrano/account/groups/${groupId}/users/${other.id}/${h.tenant}`, creds());
    h.failing.delete('blockUser');
    expect(failed.status).toBe(500);
    expect((await h.storage.users.listMemberships(h.tenant, { uid: other.id }))[0]!.status).toBe('active');
    expect((await h.storage.users.get(h.tenant, other.id))!.status).toBe('active');

    await h.sandbox.admin.removeMember(groupId, other.id, { webhook: true });
    await h.sandbox.admin.waitForDeliveries();
    expect((await h.storage.users.listMemberships(h.tenant, { uid: other.id }))[0]!.status).toBe('removed');
    const otherUser = await h.storage.users.get(h.tenant, other.id);
    expect(otherUser!.status).toBe('blocked');
    expect(h.hooks.blockUser).toContainEqual({ userId: otherUser!.userId, companyId: group.companyId });
    expect(h.hooks.onSeatsChanged).toContainEqual({ companyId: group.companyId, activeSeats: 1, removed: [other.id] });

    const replay = await webhook(`/maestrano/account/groups/${groupId}/users/${other.id}/${h.tenant}`, creds());
    expect(replay.status).toBe(200);
    expect(h.hooks.blockUser.filter((b) => b.userId === otherUser!.userId)).toHaveLength(1);
    // The remaining member is untouched.
    expect((await h.storage.users.get(h.tenant, userId))!.status).toBe('active');
  });
});
