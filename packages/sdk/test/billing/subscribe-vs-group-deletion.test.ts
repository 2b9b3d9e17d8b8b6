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
import { StorageError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import type { AccountCompanyRef, AccountUserRef } from '../../src/webhooks/account.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, losingFirstPost, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer } from './helpers.js';

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

function setup(
  options: {
    fetch?: typeof fetch;
    cancelCompany?: (company: AccountCompanyRef) => Promise<void> | void;
    blockUser?: (user: AccountUserRef) => Promise<void> | void;
    billing?: Record<string, unknown>;
    groupCancelledJobs?: string[];
    virtual?: boolean;
  } = {},
) {
  const tenant = options.virtual ? makeTenant(api, { creationMode: 'virtual' }) : makeTenant(api);
  const { runtime } = makeRuntime(storage, [tenant], clock.now);
  if (options.fetch) runtime.fetch = options.fetch;
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 }, ...options.billing },
    hooks: {
      ...(options.cancelCompany ? { cancelCompany: options.cancelCompany } : {}),
      ...(options.blockUser ? { blockUser: options.blockUser } : {}),
    },
    ...(options.groupCancelledJobs ? { groupCancelledJobs: options.groupCancelledJobs } : {}),
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

it('worker clock 1 s behind the web process: the retry after a failed cancel still cancels the bill', async () => {
  // The webhook process and the worker each stamp with their own clock: no timestamps of two
  // processes are compared.
  const post = slowPost();
  const { mod, deleteGroup } = setup({ fetch: post.fetch });
  const subscription = mod.billing.subscribe(payload);
  await post.posted;
  // The web process (clock T) handles the deletion while the POST is in flight.
  expect((await deleteGroup()).status).toBe(200);
  // The worker's clock reads 1 s less (ordinary skew between two hosts).
  clock.advance(-1_000);
  api.faults.push({ status: 500, times: 100, method: 'DELETE' });
  post.land();
  await expect(subscription).rejects.toThrow(); // its cancel failed: the job retries
  api.faults.length = 0;
  const retry = await mod.billing.subscribe(payload);
  expect({ retry, live: live() }).toEqual({ retry: { status: 'group_cancelled' }, live: [] });
});

it('virtual mode: a blockUser failure after groups.cancel does not leave the in-flight bill live', async () => {
  // The deletion's two last passes run whatever the other did.
  await provisionUser(storage, TENANT, 'usr-a', ['cld-1']);
  const post = slowPost();
  let subscription: Promise<unknown> | undefined;
  const { mod, deleteGroup } = setup({
    fetch: post.fetch,
    virtual: true,
    // The deletion's first pass has listed no bill; the subscription lands and records it
    // while the group is still live.
    cancelCompany: async () => {
      post.land();
      expect(await subscription).toMatchObject({ status: 'subscribed' });
    },
    blockUser: async (user) => {
      // A login of usr-late writes its membership meanwhile (it holds no group lock)...
      if (user.uid === 'usr-a') await provisionUser(storage, TENANT, 'usr-late', ['cld-1']);
      // ...and the app cannot block that user (yet): its hook fails.
      if (user.uid === 'usr-late') throw new Error('app: no such user');
    },
  });
  subscription = mod.billing.subscribe(payload);
  await post.posted;
  const first = await deleteGroup();
  const redelivery = await deleteGroup(); // Maestrano retries the 500 (if it does)
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
  // The cancelled company must not be billed every month, whatever the app's blockUser hook does.
  expect({ first: first.status, redelivery: redelivery.status, live: live() }).toEqual({ first: 500, redelivery: 500, live: [] });
});

it('cancelRecurringBillsOnGroupDeleted: false keeps a subscription made long before the deletion, also when subscribe runs again', async () => {
  const { mod, deleteGroup } = setup({ billing: { cancelRecurringBillsOnGroupDeleted: false } });
  expect(await mod.billing.subscribe(payload)).toMatchObject({ status: 'subscribed' });
  expect(live()).toHaveLength(1);
  clock.advance(40 * 24 * 3600_000); // weeks later, Maestrano deletes the group
  expect((await deleteGroup()).status).toBe(200);
  expect(live()).toHaveLength(1); // the app asked the SDK to keep its bills
  // Any later run of the same subscription (a replayed job, the app calling the documented
  // mno.billing.subscribe, e.g. a back-fill over its companies) must change nothing.
  const again = await mod.billing.subscribe(payload);
  expect({ again, live: live().length }).toEqual({ again: expect.objectContaining({ status: 'already_subscribed' }), live: 1 });
});

it('a redelivered deletion stores the group\'s follow-up jobs even while the Account API fails', async () => {
  // First delivery: everything commits (bills cancelled, group cancelled) but storing the
  // follow-ups fails once (a storage blip): 500, Maestrano redelivers.
  const inner = storage;
  let failEnqueue = 1;
  storage = {
    ...inner,
    jobs: new Proxy(inner.jobs, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'enqueueMany' || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (failEnqueue-- > 0) throw new StorageError('connection lost', { adapterId: inner.id, operation: 'jobs.enqueueMany' });
          return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        };
      },
    }),
  } as StorageAdapter;
  const { deleteGroup } = setup({ groupCancelledJobs: ['sync.purge'] });
  expect((await deleteGroup()).status).toBe(500);
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');

  // The Account API is having an outage when the redelivery comes.
  api.faults.push({ status: 503, times: 1_000 });
  const redelivery = await deleteGroup();
  const counts = await storage.jobs.counts({ tenant: TENANT, type: 'sync.purge' });
  const stored = Object.values(counts).reduce((a, b) => a + b, 0);
  // The follow-ups are stored before the recurring-bill pass, which needs the Account API:
  // the redelivery stores them, then answers 502 for the pass (retried until the API is back).
  expect({ status: redelivery.status, stored }).toEqual({ status: 502, stored: 1 });
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
