// The deletion's two last passes run whatever the other did: an app `blockUser` hook that fails
// for a user whose login wrote its membership concurrently (virtual mode) must not leave live the
// recurring bill a subscription recorded between the first bill pass and the group's cancel.
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan } from '../../src/billing/index.js';
import type { CompanyCreatedPayload, RouteHandler } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, provisionUser, resetServer } from './helpers.js';

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
  await provisionUser(storage, TENANT, 'usr-a', ['cld-1']);
});
const plan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };
const payload: CompanyCreatedPayload = { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: {} };
const live = () => [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);

it('virtual mode: a blockUser failure after groups.cancel does not leave the in-flight bill live', async () => {
  let posting!: () => void;
  const posted = new Promise<void>((r) => (posting = r));
  let land!: () => void;
  const landing = new Promise<void>((r) => (land = r));
  const tenant = makeTenant(api, { creationMode: 'virtual' });
  const { runtime } = makeRuntime(storage, [tenant], clock.now);
  runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (request.method === 'POST' && request.url.includes('recurring_bills')) { posting(); await landing; }
    return fetch(request);
  }) as typeof fetch;
  let subscription: Promise<unknown> | undefined;
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
    hooks: {
      // The deletion's first pass has listed no bill; the subscription lands and records it
      // while the group is still live (as in subscribe-vs-group-deletion.test.ts).
      cancelCompany: async () => {
        land();
        expect(await subscription).toMatchObject({ status: 'subscribed' });
      },
      blockUser: async (user) => {
        // A login of usr-late writes its membership meanwhile (it holds no group lock)...
        if (user.uid === 'usr-a') await provisionUser(storage, TENANT, 'usr-late', ['cld-1']);
        // ...and the app cannot block that user (yet): its hook fails.
        if (user.uid === 'usr-late') throw new Error('app: no such user');
      },
    },
  });
  const groupDeleted = mod.contribution.routes!.groupDeleted as RouteHandler;
  const deleteGroup = () =>
    groupDeleted({
      request: new Request(`http://127.0.0.1/maestrano/account/groups/cld-1/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(tenant.api.id, tenant.api.key) } }),
      tenant,
      params: { id: 'cld-1' },
    });
  subscription = mod.billing.subscribe(payload);
  await posted;
  const first = await deleteGroup();
  const redelivery = await deleteGroup(); // Maestrano retries the 500 (if it does)
  expect((await storage.groups.get(TENANT, 'cld-1'))?.status).toBe('cancelled');
  // The cancelled company must not be billed every month, whatever the app's blockUser hook does.
  expect({ first: first.status, redelivery: redelivery.status, live: live() }).toEqual({ first: 500, redelivery: 500, live: [] });
});
