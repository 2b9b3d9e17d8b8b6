/**
 * A group deletion that arrives while the group's subscription is being set up. The subscription
 * checks the group's status once, before its POST; the deletion lists and cancels the group's
 * recurring bills before it marks the group cancelled. Whatever the order, no recurring bill of
 * the cancelled group stays live: the subscription looks at the group again once it has recorded
 * its bill (and cancels it), the deletion makes a last pass after marking the group cancelled,
 * and a POST whose outcome was unknown, landing after both, is caught by a later
 * `billing.check_duplicates` job. A live group's bill is never touched.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import { type CompanyCreatedPayload, JobTypes, type RouteHandler } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import type { AccountCompanyRef } from '../../src/webhooks/account.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, losingFirstPost, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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
beforeEach(async () => {
  resetServer(api);
  api.addGroup('cld-1');
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
  await provisionGroup(storage, TENANT, 'cld-1');
});

const plan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };
const payload: CompanyCreatedPayload = { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: {} };
const live = () => [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);

function setup(options: { fetch?: typeof fetch; cancelCompany?: (company: AccountCompanyRef) => Promise<void> | void } = {}) {
  const tenant = makeTenant(api);
  const { runtime } = makeRuntime(storage, [tenant], clock.now);
  if (options.fetch) runtime.fetch = options.fetch;
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
    hooks: { ...(options.cancelCompany ? { cancelCompany: options.cancelCompany } : {}) },
  });
  const groupDeleted = mod.contribution.routes!.groupDeleted as RouteHandler;
  const deleteGroup = () =>
    groupDeleted({
      request: new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/${TENANT}`, {
        method: 'DELETE',
        headers: { authorization: basicAuth(tenant.api.id, tenant.api.key) },
      }),
      tenant,
      params: { id: 'cld-1' },
    });
  const drain = () => createWorker(runtime, mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
  return { mod, deleteGroup, drain };
}

/** A fetch whose recurring-bill POST waits (on the wire) until `land()`. */
function slowPost() {
  let posting!: () => void;
  const posted = new Promise<void>((r) => (posting = r));
  let land!: () => void;
  const landing = new Promise<void>((r) => (land = r));
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (request.method === 'POST' && request.url.includes('recurring_bills')) {
      posting();
      await landing;
    }
    return fetch(request);
  }) as typeof fetch;
  return { fetch: fetchImpl, posted, land };
}

it('a deletion that runs whole while the POST is in flight: the subscription cancels its bill once recorded', async () => {
  const post = slowPost();
  const { mod, deleteGroup } = setup({ fetch: post.fetch });
  const subscription = mod.billing.subscribe(payload);
  await post.posted;
  expect((await deleteGroup()).status).toBe(200); // never redelivered
  post.land();
  expect(await subscription).toEqual({ status: 'group_cancelled' });
  expect(api.recurringBills.size).toBe(1);
  expect(live()).toEqual([]);
  // The ledger keeps the bill it recorded; a replay of the job finds it cancelled and stays so.
  const [bill] = [...api.recurringBills.keys()];
  expect((await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1')))?.outcome).toMatchObject({ recurringBillId: bill });
  expect(await mod.billing.subscribe(payload)).toEqual({ status: 'group_cancelled' });
  expect(live()).toEqual([]);
});

it('a bill recorded while the group is still live is cancelled by the deletion’s last pass', async () => {
  const post = slowPost();
  let subscription: Promise<unknown> | undefined;
  const ctx = setup({
    fetch: post.fetch,
    // The deletion's first pass has listed no bill; the subscription lands, records its bill
    // and looks at the group (still live) before the deletion marks it cancelled.
    cancelCompany: async () => {
      post.land();
      expect(await subscription).toMatchObject({ status: 'subscribed' });
      expect(live()).toHaveLength(1);
    },
  });
  subscription = ctx.mod.billing.subscribe(payload);
  await post.posted;
  expect((await ctx.deleteGroup()).status).toBe(200);
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
  expect(live()).toEqual([]);
});

it('a cancel that fails after the bill is recorded fails the job; its retry cancels the bill', async () => {
  const post = slowPost();
  const { mod, deleteGroup } = setup({ fetch: post.fetch });
  const subscription = mod.billing.subscribe(payload);
  await post.posted;
  expect((await deleteGroup()).status).toBe(200);
  api.faults.push({ status: 500, times: 100, method: 'DELETE' });
  post.land();
  await expect(subscription).rejects.toThrow();
  expect(live()).toHaveLength(1);
  api.faults.length = 0;
  expect(await mod.billing.subscribe(payload)).toEqual({ status: 'group_cancelled' });
  expect(live()).toEqual([]);
});

it('a POST whose outcome was unknown, landing after the deletion, is cancelled by the check scheduled by the retry', async () => {
  const lost = losingFirstPost();
  const first = setup({ fetch: lost.fetch });
  await expect(first.mod.billing.subscribe(payload)).rejects.toThrow();
  expect(lost.sent).toBe(true);
  const { mod, deleteGroup, drain } = setup();
  expect((await deleteGroup()).status).toBe(200);
  // The job's retry stops at the cancelled group (the earlier attempt's claim is still unrecorded)...
  expect(await mod.billing.subscribe(payload)).toEqual({ status: 'group_cancelled' });
  // ...then the lost POST reaches the platform.
  expect((await lost.land()).ok).toBe(true);
  expect(live()).toHaveLength(1);
  await drain(); // not due yet: the claim has not expired
  expect(live()).toHaveLength(1);
  clock.advance(30_000 + 60_000 + 1_000);
  await drain();
  expect(live()).toEqual([]);
});

it('the check of an ended group leaves a live group’s bills alone', async () => {
  const lost = losingFirstPost();
  const first = setup({ fetch: lost.fetch });
  await expect(first.mod.billing.subscribe(payload)).rejects.toThrow();
  expect((await lost.land()).ok).toBe(true);
  const { drain } = setup();
  // As if a run had found the group ended (on the platform) while the claim was unrecorded.
  await storage.jobs.enqueue({ type: JobTypes.billingCheckDuplicates, tenant: TENANT, groupId: 'cld-1', payload: { kind: 'ended-group', tenant: TENANT, groupId: 'cld-1' } });
  await drain();
  expect(live()).toHaveLength(1);
  // Ended on the platform (its deletion webhook late): the late bill is cancelled.
  api.groups.get('cld-1')!.status = 'terminated';
  await storage.jobs.enqueue({ type: JobTypes.billingCheckDuplicates, tenant: TENANT, groupId: 'cld-1', payload: { kind: 'ended-group', tenant: TENANT, groupId: 'cld-1' } });
  await drain();
  expect(live()).toEqual([]);
});

it('without a deletion, the subscription keeps its bill', async () => {
  const { mod, deleteGroup } = setup();
  expect(await mod.billing.subscribe(payload)).toMatchObject({ status: 'subscribed' });
  expect(await mod.billing.subscribe(payload)).toMatchObject({ status: 'already_subscribed' });
  expect(live()).toHaveLength(1);
  expect((await deleteGroup()).status).toBe(200);
  expect(live()).toEqual([]);
});
