/**
 * A subscription recorded before its group was deleted is the deletion's to cancel or keep, and a
 * redelivered deletion stores its follow-ups before it needs the Account API.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan } from '../../src/billing/index.js';
import type { CompanyCreatedPayload, RouteHandler } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { StorageError } from '../../src/errors/index.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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

function setup(billing: Record<string, unknown> = {}, groupCancelledJobs?: string[]) {
  const tenant = makeTenant(api);
  const { runtime } = makeRuntime(storage, [tenant], clock.now);
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 }, ...billing },
    ...(groupCancelledJobs ? { groupCancelledJobs } : {}),
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
  return { mod, deleteGroup };
}

it('cancelRecurringBillsOnGroupDeleted: false keeps a subscription made long before the deletion, also when subscribe runs again', async () => {
  const { mod, deleteGroup } = setup({ cancelRecurringBillsOnGroupDeleted: false });
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
  const { deleteGroup } = setup({}, ['sync.purge']);
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
