// The webhook process and the worker each stamp with their own clock. A subscription recorded
// after its group's deletion by a worker whose clock is 1 s behind must still have its bill
// cancelled by the retry after a failed cancel (no timestamps of two processes are compared).
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan } from '../../src/billing/index.js';
import type { CompanyCreatedPayload, RouteHandler } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

const TENANT = 'maestrano-uat';
let api: AccountApiServer;
let clock: TestClock;
let storage: StorageAdapter;
beforeAll(async () => { api = await startAccountApiServer(); });
afterAll(async () => { await api.close(); });
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

it('worker clock 1 s behind the web process: the retry after a failed cancel still cancels the bill', async () => {
  let posting!: () => void;
  const posted = new Promise<void>((r) => (posting = r));
  let land!: () => void;
  const landing = new Promise<void>((r) => (land = r));
  const slowFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (request.method === 'POST' && request.url.includes('recurring_bills')) { posting(); await landing; }
    return fetch(request);
  }) as typeof fetch;
  const tenant = makeTenant(api);
  const { runtime } = makeRuntime(storage, [tenant], clock.now);
  runtime.fetch = slowFetch;
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
  });
  const groupDeleted = mod.contribution.routes!.groupDeleted as RouteHandler;
  const subscription = mod.billing.subscribe(payload);
  await posted;
  // The web process (clock T) handles the deletion while the POST is in flight.
  const res = await groupDeleted({
    request: new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(tenant.api.id, tenant.api.key) } }),
    tenant,
    params: { id: 'cld-1' },
  });
  expect(res.status).toBe(200);
  // The worker's clock reads 1 s less (ordinary skew between two hosts).
  clock.advance(-1_000);
  api.faults.push({ status: 500, times: 100, method: 'DELETE' });
  land();
  await expect(subscription).rejects.toThrow(); // its cancel failed: the job retries
  api.faults.length = 0;
  const retry = await mod.billing.subscribe(payload);
  expect({ retry, live: live() }).toEqual({ retry: { status: 'group_cancelled' }, live: [] });
});
