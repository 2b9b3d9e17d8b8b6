import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { groupPayload } from '../../src/sso/attributes.js';
import {
  appTrialEnd,
  billingGroupFrom,
  type BillingCompany,
  type BillingGroup,
  createAccountModule,
  type SubscriptionPlan,
  subscriptionLedgerKey,
  subscriptionStart,
} from '../../src/billing/index.js';
import { type CompanyCreatedPayload, JobDeferral, JobTypes, PermanentJobError } from '../../src/core/types.js';
import { BillingError, ConfigError, ConnectionError } from '../../src/errors/index.js';
import type { JsonObject, StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { crashingLedger, losingFirstPost, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

const DAY = 86_400_000;
const TENANT = 'maestrano-uat';
let api: AccountApiServer;
let clock: TestClock;
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
  // The platform validates start dates against its own (real) clock, so ours starts there.
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
});

const basePlan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };

function setup(plan: SubscriptionPlan | null | ((c: BillingCompany, g: BillingGroup) => SubscriptionPlan | null), store = storage) {
  const calls: { company: BillingCompany; group: BillingGroup }[] = [];
  const { runtime, logger } = makeRuntime(store, [makeTenant(api)], clock.now);
  const mod = createAccountModule(runtime, {
    billing: {
      onCompanyCreated: (company: BillingCompany, group: BillingGroup) => {
        calls.push({ company, group });
        return typeof plan === 'function' ? plan(company, group) : plan;
      },
      subscription: { claimTtlMs: 30_000, retryDelayMs: 10 },
    },
  });
  return { mod, calls, runtime, logger };
}

function payload(groupTrialEnd: Date | null, groupId = 'cld-1'): CompanyCreatedPayload {
  return {
    tenant: TENANT,
    groupId,
    companyId: `company-${groupId}`,
    group: {
      group_uid: groupId,
      group_name: 'DoeCorp',
      group_end_free_trial: groupTrialEnd ? groupTrialEnd.toISOString() : '',
      group_has_credit_card: 'true',
      group_currency: 'USD',
    },
  };
}

const rbills = () => [...api.recurringBills.values()];

describe('trial-aware start date (pure)', () => {
  const now = new Date('2030-01-10T00:00:00Z');
  it('takes the latest of now, the group trial end and the app trial end', () => {
    expect(subscriptionStart({ now, groupTrialEndsAt: new Date('2030-01-01T00:00:00Z'), appTrialEndsAt: null })).toEqual(now);
    expect(subscriptionStart({ now, groupTrialEndsAt: new Date('2030-02-01T00:00:00Z'), appTrialEndsAt: null })).toEqual(
      new Date('2030-02-01T00:00:00Z'),
    );
    expect(
      subscriptionStart({
        now,
        groupTrialEndsAt: new Date('2030-02-01T00:00:00Z'),
        appTrialEndsAt: new Date('2030-03-01T00:00:00Z'),
      }),
    ).toEqual(new Date('2030-03-01T00:00:00Z'));
  });
  it('computes the app trial from days after creation and/or an explicit end, the later winning', () => {
    const created = new Date('2030-01-01T00:00:00Z');
    expect(appTrialEnd({ appTrialDays: 14 }, created)).toEqual(new Date('2030-01-15T00:00:00Z'));
    expect(appTrialEnd({ appTrialDays: 14, appTrialEndsAt: new Date('2030-01-20T00:00:00Z') }, created)).toEqual(
      new Date('2030-01-20T00:00:00Z'),
    );
    expect(appTrialEnd({}, created)).toBeNull();
  });
});

describe('the group handed to onCompanyCreated', () => {
  it('reads the payload SSO provisioning enqueues (groupPayload) and raw SAML attribute names alike', () => {
    const fromSso = billingGroupFrom(
      'cld-7',
      groupPayload({
        uid: 'cld-7',
        name: 'DoeCorp',
        endFreeTrial: new Date('2030-02-01T00:00:00Z'),
        hasCreditCard: true,
        email: 'admin@doecorp.example',
        currency: 'EUR',
        timezone: 'Europe/Paris',
        country: 'FR',
        city: 'Paris',
        orgUid: 'org-7',
        resellerId: 'rsl-1',
      }),
    );
    expect(fromSso).toMatchObject({
      uid: 'cld-7',
      name: 'DoeCorp',
      endFreeTrial: new Date('2030-02-01T00:00:00Z'),
      hasCreditCard: true,
      email: 'admin@doecorp.example',
      currency: 'EUR',
      timezone: 'Europe/Paris',
      country: 'FR',
      city: 'Paris',
      orgUid: 'org-7',
      resellerId: 'rsl-1',
    });
    const raw = billingGroupFrom('cld-8', {
      group_name: 'Raw',
      group_end_free_trial: '2030-03-01T00:00:00Z',
      group_has_credit_card: 'false',
      group_reseller_id: '',
    });
    expect(raw).toMatchObject({ name: 'Raw', endFreeTrial: new Date('2030-03-01T00:00:00Z'), hasCreditCard: false, resellerId: null });
    // A trial end written without a zone is UTC, whatever the server's time zone.
    const tz = process.env.TZ;
    process.env.TZ = 'Australia/Sydney';
    try {
      expect(billingGroupFrom('cld-9', { group_end_free_trial: '2030-06-01T00:00:00' }).endFreeTrial?.toISOString()).toBe('2030-06-01T00:00:00.000Z');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});

describe('billing.subscribe', () => {
  it("reports the recorded recurring bill, not its own, when its claim was taken over and the new owner recorded another", async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const inner = storage;
    const key = subscriptionLedgerKey(TENANT, 'cld-1');
    // Just before this call records its bill, its claim lapses and another worker takes the
    // key over and records a bill of its own (it listed before ours existed).
    const takenOver: StorageAdapter = {
      ...inner,
      ledger: {
        ...inner.ledger,
        complete: async (k, owner, outcome) => {
          if (k === key) {
            clock.advance(31_000);
            const other = await inner.ledger.claim(k, { owner: 'other-worker', ttlMs: 30_000, intent: {} });
            expect(other.state).toBe('claimed');
            await inner.ledger.complete(k, 'other-worker', { recurringBillId: 'rb-other', startDate: new Date(clock.ms()).toISOString() });
          }
          return inner.ledger.complete(k, owner, outcome);
        },
      },
    };
    const { mod } = setup(basePlan, takenOver);
    const outcome = await mod.billing.subscribe(payload(new Date(clock.ms() - 5 * DAY)));
    expect(rbills()).toHaveLength(1); // this call's own bill, a twin the duplicate check handles
    expect(outcome).toEqual({ status: 'already_subscribed', recurringBillId: 'rb-other' });
  });

  it('starts now when the group trial is over', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod, calls } = setup(basePlan);
    const outcome = await mod.billing.subscribe(payload(new Date(clock.ms() - 5 * DAY)));
    expect(outcome.status).toBe('subscribed');
    expect(rbills()).toHaveLength(1);
    expect(Date.parse(String(rbills()[0]!.start_date))).toBe(clock.ms());
    expect(rbills()[0]).toMatchObject({ group_id: 'cld-1', price_cents: 2900, currency: 'USD', period: 'month' });
    expect(calls[0]!.company).toEqual({ id: 'company-cld-1', tenant: TENANT, groupId: 'cld-1' });
    expect(calls[0]!.group).toMatchObject({ uid: 'cld-1', name: 'DoeCorp', hasCreditCard: true, currency: 'USD' });
    const entry = await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'));
    expect(entry).toMatchObject({ status: 'done', outcome: { recurringBillId: rbills()[0]!.id } });
  });

  it('starts at the group free-trial end when it is in the future, and records the trial end on the group', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const trialEnd = new Date(clock.ms() + 10 * DAY);
    const { mod, calls } = setup(basePlan);
    await mod.billing.subscribe(payload(trialEnd));
    expect(calls[0]!.group.endFreeTrial).toEqual(trialEnd);
    expect(rbills()[0]!.start_date).toBe(trialEnd.toISOString());
    expect((await storage.groups.get(TENANT, 'cld-1'))!.trialEndsAt).toEqual(trialEnd);
  });

  it("starts at the platform's current free-trial end when the trial was extended after the login", async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const atLogin = new Date(clock.ms() + 2 * DAY);
    const extended = new Date(clock.ms() + 20 * DAY);
    api.addGroup('cld-1', { free_trial_end_at: extended.toISOString() });
    const { mod, calls } = setup(basePlan);
    await mod.billing.subscribe(payload(atLogin));
    expect(calls[0]!.group.endFreeTrial).toEqual(extended);
    expect(rbills()[0]!.start_date).toBe(extended.toISOString());
    expect((await storage.groups.get(TENANT, 'cld-1'))!.trialEndsAt).toEqual(extended);
  });

  it('keeps the trial end of the login when the platform has an earlier one, or does not know the group (404)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await provisionGroup(storage, TENANT, 'cld-9');
    const atLogin = new Date(clock.ms() + 10 * DAY);
    api.addGroup('cld-1', { free_trial_end_at: new Date(clock.ms() + DAY).toISOString() });
    const { mod, logger } = setup(basePlan);
    await mod.billing.subscribe(payload(atLogin));
    expect(rbills()[0]!.start_date).toBe(atLogin.toISOString());
    // cld-9 is unknown to the Account API: it goes on with the login's trial end (a warning) and
    // POSTs (which this platform then refuses: the group is not its).
    await mod.billing.subscribe(payload(atLogin, 'cld-9')).catch(() => null);
    expect(logger.entries.some((e) => e.level === 'warn' && /does not know the group/.test(e.message))).toBe(true);
    const post = api.requests.find((r) => r.method === 'POST' && (r.body as { group_id?: string }).group_id === 'cld-9');
    expect((post?.body as { start_date?: string } | undefined)?.start_date).toBe(atLogin.toISOString());
  });

  it('retries (throws) when the Account API cannot say what the trial end is', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    api.faults.push({ status: 503, times: 3, method: 'GET' });
    const { mod } = setup(basePlan);
    const error = await mod.billing.subscribe(payload(null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(rbills()).toHaveLength(0);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toBeNull();
  });

  it('starts at the app trial end when it is later than the group trial', async () => {
    const group = await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = setup({ ...basePlan, appTrialDays: 30 });
    await mod.billing.subscribe(payload(new Date(clock.ms() + 10 * DAY)));
    const expected = new Date(group.createdAt.getTime() + 30 * DAY);
    expect(rbills()[0]!.start_date).toBe(expected.toISOString());
    expect((await storage.groups.get(TENANT, 'cld-1'))!.trialEndsAt).toEqual(expected);
  });

  it('counts the app trial from when the company was created, not from a claim abandoned days before', async () => {
    // Ten days ago a first login claimed the group and died inside createCompany (no release).
    clock = createTestClock(Date.now() - 10 * DAY);
    storage = memoryAdapter({ clock: clock.now });
    expect((await storage.groups.claim(TENANT, 'cld-1', { owner: 'crashed-login', ttlMs: 60_000 })).state).toBe('claimed');
    // Today the user comes back: the login takes the expired claim over and creates the company.
    clock.advance(10 * DAY);
    expect(await storage.groups.claim(TENANT, 'cld-1', { owner: 'login', ttlMs: 60_000 })).toEqual({ state: 'claimed', takeover: true });
    await storage.groups.complete(TENANT, 'cld-1', 'login', { companyId: 'company-cld-1' });
    const createdAt = clock.ms();
    const { mod } = setup({ ...basePlan, appTrialDays: 14 });
    expect(await mod.billing.subscribe(payload(null))).toMatchObject({ status: 'subscribed' });
    expect(rbills()[0]!.start_date).toBe(new Date(createdAt + 14 * DAY).toISOString());
    expect((await storage.groups.get(TENANT, 'cld-1'))!.trialEndsAt).toEqual(new Date(createdAt + 14 * DAY));
  });

  it('keeps the group trial when it is later than the app trial', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const groupEnd = new Date(clock.ms() + 40 * DAY);
    const { mod } = setup({ ...basePlan, appTrialEndsAt: new Date(clock.ms() + 20 * DAY) });
    await mod.billing.subscribe(payload(groupEnd));
    expect(rbills()[0]!.start_date).toBe(groupEnd.toISOString());
  });

  it('records "no plan" when onCompanyCreated returns null, and never asks again', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod, calls } = setup(null);
    expect(await mod.billing.subscribe(payload(null))).toEqual({ status: 'no_plan' });
    expect(await mod.billing.subscribe(payload(null))).toMatchObject({ status: 'already_subscribed', recurringBillId: null });
    expect(calls).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it('never creates a second recurring bill on replays or concurrent runs', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = setup(basePlan);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => mod.billing.subscribe(payload(null))));
    await mod.billing.subscribe(payload(null));
    await mod.billing.subscribe(payload(null));
    expect(rbills()).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const fulfilled = outcomes.filter((o) => o.status === 'fulfilled');
    const deferred = outcomes.filter((o) => o.status === 'rejected');
    expect(fulfilled.length + deferred.length).toBe(5);
    for (const d of deferred) expect((d as PromiseRejectedResult).reason).toBeInstanceOf(JobDeferral);
  });

  it('retries (JobDeferral) while the group is not provisioned, then subscribes', async () => {
    const { mod } = setup(basePlan);
    const error = await mod.billing.subscribe(payload(null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobDeferral);
    expect(api.recurringBills.size).toBe(0);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toBeNull();
    await provisionGroup(storage, TENANT, 'cld-1');
    expect((await mod.billing.subscribe(payload(null))).status).toBe('subscribed');
    expect(api.recurringBills.size).toBe(1);
  });

  it('skips a group cancelled before its subscription ran', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    await storage.groups.cancel(TENANT, 'cld-1');
    const { mod, calls } = setup(basePlan);
    expect(await mod.billing.subscribe(payload(null))).toEqual({ status: 'group_cancelled' });
    expect(calls).toHaveLength(0);
    expect(api.recurringBills.size).toBe(0);
  });

  it('reconciles after a crash between the POST and recording it: one recurring bill', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const crashing = crashingLedger(storage, 1);
    const { mod } = setup(basePlan, crashing);
    await expect(mod.billing.subscribe(payload(null))).rejects.toThrow(/simulated crash/);
    expect(rbills()).toHaveLength(1);
    // Within the claim's lifetime another run waits.
    await expect(mod.billing.subscribe(payload(null))).rejects.toBeInstanceOf(JobDeferral);
    clock.advance(30_001);
    const outcome = await mod.billing.subscribe(payload(null));
    expect(outcome).toEqual({ status: 'reconciled', recurringBillId: rbills()[0]!.id });
    expect(rbills()).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('caps the recurring bill POST below subscription.claimTtlMs, so no takeover overlaps it', async () => {
    // Claims expire on the test clock, which stands still: the claim below lives until we advance it.
    await provisionGroup(storage, TENANT, 'cld-1');
    const claimedAt = clock.now().getTime();
    api.faults.push({ status: 500, times: 1, method: 'POST', hold: true }); // stuck on its way to the platform
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    const mod = createAccountModule(runtime, {
      billing: { onCompanyCreated: () => basePlan, subscription: { claimTtlMs: 1_000 } },
    });
    const error = await mod.billing.subscribe(payload(null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toMatch(/after 750 ms/);
    expect(api.held.map((h) => [h.method, h.path])).toEqual([['POST', '/api/v1/account/recurring_bills']]);
    // The POST was cut, not left running: a round trip to the platform after subscribe() gave
    // up finds the held request's connection already closed, unanswered.
    await fetch(`${api.url}/api/v1/account/groups`).then((r) => r.body?.cancel());
    expect(api.held[0]?.closedUnanswered).toBe(true);
    // ...while its claim is still live (on the test clock): nobody could have taken it over yet.
    const ledgerKey = subscriptionLedgerKey(TENANT, 'cld-1');
    expect(await storage.ledger.get(ledgerKey)).toMatchObject({ status: 'pending', claimExpiresAt: new Date(claimedAt + 1_000) });
    await expect(mod.billing.subscribe(payload(null))).rejects.toBeInstanceOf(JobDeferral);
    expect(rbills()).toHaveLength(0);
    // Once the claim expired, the takeover subscribes: one recurring bill.
    clock.advance(1_001);
    expect(await mod.billing.subscribe(payload(null))).toMatchObject({ status: 'subscribed' });
    expect(rbills()).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });

  it('refreshes the claim before POSTing after a reconciliation that outlived it (one recurring bill)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // A dead worker's claim, nothing created.
    const dead = setup(basePlan);
    api.faults.push({ status: 503, times: 1, method: 'POST' });
    await expect(dead.mod.billing.subscribe(payload(null))).rejects.toThrow();
    clock.advance(30_001);
    // The recovering run's listing (nothing found) outlives its claim; another run takes over and subscribes.
    let duringList: (() => Promise<unknown>) | null = null;
    let other: unknown;
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const response = await fetch(input, init);
      const run = method.toUpperCase() === 'GET' ? duringList : null;
      duringList = null;
      if (run) await run();
      return response;
    }) as typeof fetch;
    const mod = createAccountModule(runtime, {
      billing: { onCompanyCreated: () => basePlan, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
    });
    duringList = async () => {
      clock.advance(30_001);
      other = await mod.billing.subscribe(payload(null));
    };
    const recovering = await mod.billing.subscribe(payload(null));
    expect(other).toMatchObject({ status: 'subscribed' });
    expect(recovering).toEqual({ status: 'already_subscribed', recurringBillId: (other as { recurringBillId: string }).recurringBillId });
    expect(rbills()).toHaveLength(1);
  });

  it('cancels the duplicate left by a POST that landed after the retry subscribed (billing.check_duplicates)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // The first POST leaves but its answer is lost; the platform only receives it much later.
    const lost = losingFirstPost();
    const { runtime, logger } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = lost.fetch;
    const mod = createAccountModule(runtime, {
      billing: { onCompanyCreated: () => basePlan, duplicateCheckDelayMs: 600_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
    });
    await expect(mod.billing.subscribe(payload(null))).rejects.toBeInstanceOf(ConnectionError);
    clock.advance(30_001);
    const outcome = await mod.billing.subscribe(payload(null));
    expect(outcome).toMatchObject({ status: 'subscribed' });
    const kept = (outcome as { recurringBillId: string }).recurringBillId;
    // Now the lost POST lands: two active recurring bills for one company.
    const late = await lost.land();
    expect(late.ok).toBe(true);
    expect(rbills().filter((b) => b.status !== 'cancelled')).toHaveLength(2);
    // A recurring bill of another plan (an add-on the app sold) is none of the check's business.
    const addOn = await mod.billing.recurringBills.create(TENANT, { groupId: 'cld-1', priceCents: 500, description: 'Extra seats', currency: 'USD', period: 'Month' });

    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    // Not before its delay: nothing is cancelled yet.
    await worker.drain({ pollIntervalMs: 5 });
    expect(rbills().filter((b) => b.status !== 'cancelled')).toHaveLength(3);
    clock.advance(600_001);
    const stats = await worker.drain({ pollIntervalMs: 5 });
    expect(stats.deadLettered).toBe(0);
    expect(await storage.jobs.counts({ type: JobTypes.billingCheckDuplicates })).toMatchObject({ done: 1 });
    const active = rbills().filter((b) => b.status !== 'cancelled');
    expect(active.map((b) => b.id).sort()).toEqual([kept, addOn.id].sort());
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toMatchObject({ status: 'done', outcome: { recurringBillId: kept } });
    expect(logger.entries.some((r) => r.level === 'warn' && /duplicate recurring bill cancelled/.test(r.message))).toBe(true);
  });

  it("every retry after a lost POST sends the first attempt's start date, so two lost POSTs landing late are both cancelled", async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // The first two POSTs leave but their answers are lost; the platform receives them later.
    const stuck: Request[] = [];
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      if (req.method === 'POST' && stuck.length < 2) {
        stuck.push(req.clone());
        throw new TypeError('fetch failed');
      }
      return fetch(req);
    }) as typeof fetch;
    const mod = createAccountModule(runtime, {
      billing: { onCompanyCreated: () => basePlan, duplicateCheckDelayMs: 600_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
    });
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(mod.billing.subscribe(payload(null))).rejects.toBeInstanceOf(ConnectionError);
      clock.advance(30_001);
    }
    const outcome = await mod.billing.subscribe(payload(null));
    expect(outcome).toMatchObject({ status: 'subscribed' });
    const kept = (outcome as { recurringBillId: string }).recurringBillId;
    for (const late of stuck) expect((await fetch(late)).ok).toBe(true);
    expect(rbills().filter((b) => b.status !== 'cancelled')).toHaveLength(3);
    // One start date for the three bills: the first attempt's.
    expect(new Set(rbills().map((b) => String(b.start_date))).size).toBe(1);

    clock.advance(600_001);
    expect((await createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 })).deadLettered).toBe(0);
    expect(rbills().filter((b) => b.status !== 'cancelled').map((b) => b.id)).toEqual([kept]);
  });

  it('skips a group the platform already ended (its deletion webhook late or lost): no subscription, no retries', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    api.addGroup('cld-1', { status: 'terminated' });
    const { mod, calls } = setup(basePlan);
    expect(await mod.billing.subscribe(payload(null))).toEqual({ status: 'group_cancelled' });
    expect(calls).toHaveLength(0);
    expect(rbills()).toHaveLength(0);
  });

  it("gives onCompanyCreated the platform's group data when the job carries none (mno.billing.subscribe)", async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    api.addGroup('cld-1', { currency: 'EUR', has_credit_card: true, name: 'Platform Co' });
    const { mod, calls } = setup((_company, group) => ({ ...basePlan, currency: group.currency ?? 'AUD' }));
    expect(await mod.billing.subscribe({ tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1' })).toMatchObject({ status: 'subscribed' });
    expect(calls[0]?.group).toMatchObject({ currency: 'EUR', hasCreditCard: true, name: 'Platform Co' });
    expect(rbills().map((b) => b.currency)).toEqual(['EUR']);
    // An empty value on the platform is no value: null, as from the login's attributes.
    await provisionGroup(storage, TENANT, 'cld-2');
    api.addGroup('cld-2', { currency: '', name: '' });
    expect(await mod.billing.subscribe({ tenant: TENANT, groupId: 'cld-2', companyId: 'company-cld-2' })).toMatchObject({ status: 'subscribed' });
    expect(calls[1]?.group).toMatchObject({ currency: null, name: null });
  });

  it('refuses a plan the platform always refuses (frequency × period over a year, SemiMonth × 2), naming the path', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    for (const plan of [
      { ...basePlan, period: 'Month' as const, frequency: 13 },
      { ...basePlan, period: 'SemiMonth' as const, frequency: 2 },
      { ...basePlan, period: 'Year' as const, frequency: 2 },
    ]) {
      const { mod } = setup(plan);
      await expect(mod.billing.subscribe(payload(null))).rejects.toThrow(/plan\.frequency: frequency × period must not exceed one year/);
    }
    expect(rbills()).toHaveLength(0);
  });

  it('the duplicate check leaves alone a recurring bill of the same plan the app created itself (another start date)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // The first attempt dies after its claim, before any POST.
    const crashing = { ...storage, groups: { ...storage.groups, update: async () => Promise.reject(new Error('worker killed')) } };
    const trialEnd = new Date(clock.ms() + DAY);
    const first = setup(basePlan, crashing as StorageAdapter);
    await expect(first.mod.billing.subscribe(payload(trialEnd))).rejects.toThrow(/worker killed/);
    clock.advance(30_001);
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    const mod = createAccountModule(runtime, { billing: { onCompanyCreated: () => basePlan, duplicateCheckDelayMs: 600_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } } });
    const outcome = await mod.billing.subscribe(payload(trialEnd));
    expect(outcome).toMatchObject({ status: 'subscribed' });
    // A second seat sold on the same plan, starting now.
    const seat = await mod.billing.recurringBills.create(TENANT, { groupId: 'cld-1', ...basePlan, startDate: new Date(clock.ms() + 60_000) });
    clock.advance(600_001);
    await createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    expect(await storage.jobs.counts({ type: JobTypes.billingCheckDuplicates })).toMatchObject({ done: 1 });
    expect(rbills().filter((b) => b.status !== 'cancelled').map((b) => b.id).sort()).toEqual([(outcome as { recurringBillId: string }).recurringBillId, seat.id].sort());
  });

  it('keeps a taken-over claim when the platform refuses the POST: the next run reconciles (and checks for a late twin)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const dead = setup(basePlan);
    api.faults.push({ status: 503, times: 1, method: 'POST' });
    await expect(dead.mod.billing.subscribe(payload(null))).rejects.toThrow();
    clock.advance(30_001);
    const { mod } = setup({ ...basePlan, period: 'Month', frequency: 13 });
    await expect(mod.billing.subscribe(payload(null))).rejects.toThrow(/frequency/);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toMatchObject({ status: 'pending' });
  });

  it('schedules no duplicate check for a subscription set up on its first attempt', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = setup(basePlan);
    await mod.billing.subscribe(payload(null));
    expect(await storage.jobs.counts({ type: JobTypes.billingCheckDuplicates })).toMatchObject({ pending: 0, done: 0 });
  });

  it('waits (JobDeferral, 10 min) for a tenant missing from the tenant list instead of failing its attempts', async () => {
    await provisionGroup(storage, 'gone-marketplace', 'cld-1');
    const { mod, runtime } = setup(basePlan);
    const direct = await mod.billing.subscribe({ ...payload(null), tenant: 'gone-marketplace' }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(JobDeferral);
    expect((direct as JobDeferral).retryInMs).toBe(600_000);
    const { id } = await storage.jobs.enqueue({
      type: JobTypes.billingSubscribe,
      tenant: 'gone-marketplace',
      groupId: 'cld-1',
      payload: { ...payload(null), tenant: 'gone-marketplace' } as unknown as JsonObject,
    });
    await createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    const job = await storage.jobs.get(id);
    expect(job).toMatchObject({ status: 'pending', attempts: 1 });
    expect(job!.runAt.getTime() - clock.ms()).toBeGreaterThanOrEqual(599_000);
    expect(rbills()).toHaveLength(0);
  });

  it('fails on an invalid plan with a PermanentJobError (cause: BillingError), creating and storing nothing', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = setup({ priceCents: 0, description: '' });
    const error = await mod.billing.subscribe(payload(null)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect((error as Error).cause).toBeInstanceOf(BillingError);
    expect((error as Error).message).toMatch(/plan\.priceCents/);
    expect(api.recurringBills.size).toBe(0);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toBeNull();
  });

  it('an invalid plan is a dead letter after one attempt (onCompanyCreated called once), and runs again once fixed', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    let plan: SubscriptionPlan = { priceCents: 0, description: '' };
    const { mod, runtime, calls } = setup(() => plan);
    const { id } = await storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: TENANT, groupId: 'cld-1', payload: payload(null) as unknown as JsonObject, maxAttempts: 8 });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});

    const stats = await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });

    expect(stats).toMatchObject({ deadLettered: 1, retried: 0 });
    expect(calls).toHaveLength(1);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead', attempts: 1, lastError: { message: expect.stringMatching(/invalid plan.*plan\.priceCents.*retry this dead letter/), code: 'billing_failed' } });
    expect(api.recurringBills.size).toBe(0);

    plan = basePlan;
    expect(await worker.retryDeadLetter(id)).toBe(true);
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'done' });
    expect(rbills()).toHaveLength(1);
  });

  it('releases the claim when the platform refuses the recurring bill (4xx)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod } = setup({ ...basePlan, period: 'Month', frequency: 13 });
    await expect(mod.billing.subscribe(payload(null))).rejects.toThrow(/frequency/);
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toBeNull();
  });

  it('runs as the durable billing.subscribe job fanned out from company.created', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { mod, runtime } = setup({ ...basePlan, appTrialDays: 14 });
    expect(Object.keys(mod.contribution.jobs ?? {})).toEqual([JobTypes.billingSubscribe, JobTypes.billingCheckDuplicates]);
    const event = payload(new Date(clock.ms() + DAY));
    await storage.jobs.enqueue({
      type: JobTypes.companyCreated,
      tenant: TENANT,
      groupId: 'cld-1',
      payload: event as unknown as JsonObject,
      dedupeKey: `company.created:${TENANT}:cld-1`,
    });
    // A replayed event is deduplicated by the fan-out and by the ledger.
    await storage.jobs.enqueue({
      type: JobTypes.companyCreated,
      tenant: TENANT,
      groupId: 'cld-1',
      payload: event as unknown as JsonObject,
      dedupeKey: `company.created:${TENANT}:cld-1:replay`,
    });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    const stats = await worker.drain({ pollIntervalMs: 5 });
    expect(stats.deadLettered).toBe(0);
    expect(rbills()).toHaveLength(1);
    const counts = await storage.jobs.counts({ type: JobTypes.billingSubscribe });
    expect(counts.done).toBe(1);
  });

  it('contributes no subscription job when onCompanyCreated is not configured (charges still get their duplicate check)', () => {
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    const mod = createAccountModule(runtime, { billing: undefined });
    expect(Object.keys(mod.contribution.jobs ?? {})).toEqual([JobTypes.billingCheckDuplicates]);
    expect(mod.config.cancelRecurringBillsOnGroupDeleted).toBe(true);
  });

  it('validates the billing section strictly (ConfigError, paths under billing.)', () => {
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    const bad = [
      [{ onCompanyCreated: 'nope' }, 'billing.onCompanyCreated'],
      [{ cancelRecurringBillsOnGroupDeleted: 'yes' }, 'billing.cancelRecurringBillsOnGroupDeleted'],
      [{ charge: { waitMs: -1 } }, 'billing.charge.waitMs'],
      [{ chrage: {} }, 'billing'],
    ] as const;
    for (const [billing, path] of bad) {
      const error = (() => {
        try {
          createAccountModule(runtime, { billing });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toContain(path);
    }
  });

  it('tells a wrong type from a missing key in billing config errors, without echoing the value', () => {
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
    const error = (() => {
      try {
        createAccountModule(runtime, { billing: { charge: { claimTtlMs: '120000' }, accountApi: { timeoutMs: 'secret-ish' } } });
      } catch (e) {
        return e;
      }
    })() as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { path: 'billing.charge.claimTtlMs', message: 'expected number, received string' },
        { path: 'billing.accountApi.timeoutMs', message: 'expected number, received string' },
      ]),
    );
    expect(error.message).not.toContain('secret-ish');
    expect(error.message).not.toContain('required');
  });
});
