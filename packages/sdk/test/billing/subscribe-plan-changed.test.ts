// A subscription attempt that POSTed and died before recording its bill, retried after the app
// changed its plan (a deploy, a price change): the retry must not leave the earlier attempt's
// recurring bill live next to its own. "One recurring bill per company, always" (docs/billing.md).
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type BillingCompany, type BillingGroup, createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { crashingLedger, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
});

it('a retry whose plan changed after a crash between the POST and recording it leaves one live recurring bill', async () => {
  await provisionGroup(storage, TENANT, 'cld-1');
  let plan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };
  const crashing = crashingLedger(storage, 1);
  const { runtime } = makeRuntime(crashing, [makeTenant(api)], clock.now);
  const mod = createAccountModule(runtime, {
    billing: {
      onCompanyCreated: (_c: BillingCompany, _g: BillingGroup) => plan,
      subscription: { claimTtlMs: 30_000, retryDelayMs: 10 },
    },
  });
  const job = { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: {} };
  await expect(mod.billing.subscribe(job)).rejects.toThrow(/simulated crash/);
  expect([...api.recurringBills.values()]).toHaveLength(1);

  // The price changes before the retry, which runs once the dead attempt's claim expired.
  plan = { ...plan, priceCents: 3900 };
  clock.advance(30_001);
  const outcome = await mod.billing.subscribe(job);
  expect(outcome).toMatchObject({ status: 'subscribed' });
  const recorded = (outcome as { recurringBillId: string }).recurringBillId;

  const live = [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled');
  expect(live.map((b) => [b.id, b.price_cents])).toEqual([[recorded, 3900]]);
  expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'))).toMatchObject({ status: 'done', outcome: { recurringBillId: recorded } });
});
