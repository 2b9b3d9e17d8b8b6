// The platform stores a recurring bill's `start_date` to the second: its answers read
// `"start_date": "2016-08-01T15:30:20.000Z"` (PROTOCOL §4.4's Java fixture, recurring-bill.json),
// as it stores a bill's period bounds (Rails on MySQL). A late POST of a taken-over subscription
// attempt whose start date had milliseconds must still be recognised by the duplicate check.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import type { CompanyCreatedPayload } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { losingFirstPost, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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
  // The platform validates start dates against its own (real) clock; ours starts there, at .123 ms.
  const now = Date.now();
  clock = createTestClock(now - (now % 1000) + 123);
  storage = memoryAdapter({ clock: clock.now });
});

const basePlan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };

function moduleWith(plan: SubscriptionPlan | null, fetchImpl?: typeof fetch) {
  const { runtime } = makeRuntime(storage, [makeTenant(api)], clock.now);
  if (fetchImpl) runtime.fetch = fetchImpl;
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => plan, duplicateCheckDelayMs: 60_000, subscription: { claimTtlMs: 30_000, retryDelayMs: 10 } },
  });
  return { mod, runtime };
}

const payload: CompanyCreatedPayload = {
  tenant: TENANT,
  groupId: 'cld-1',
  companyId: 'company-cld-1',
  group: { group_uid: 'cld-1', group_name: 'DoeCorp', group_end_free_trial: '', group_has_credit_card: 'true', group_currency: 'USD' },
};

/** What the platform does with a start date: keeps it to the second. */
function storeToTheSecond(): void {
  for (const row of api.recurringBills.values()) {
    const ms = Date.parse(String(row.start_date));
    row.start_date = new Date(ms - (ms % 1000)).toISOString();
    row.next_execution_at = row.start_date;
  }
}

const live = () => [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);

describe('billing.check_duplicates: start dates the platform stored to the second', () => {
  it('a lost POST landing after the retry recorded "no plan" is cancelled, its start date read to the second', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    // The first attempt's POST is sent and its answer lost (the claim stays until it expires).
    const lost = losingFirstPost();
    await expect(moduleWith(basePlan, lost.fetch).mod.billing.subscribe(payload)).rejects.toThrow();
    expect(lost.sent).toBe(true);
    clock.advance(31_000);
    // The retry finds no plan now and records none.
    const retry = moduleWith(null);
    expect(await retry.mod.billing.subscribe(payload)).toEqual({ status: 'no_plan' });
    // Then the lost POST reaches the platform, which keeps its start date to the second.
    expect((await lost.land()).ok).toBe(true);
    storeToTheSecond();
    expect(live()).toHaveLength(1);

    clock.advance(24 * 3_600_000);
    await createWorker(retry.runtime, retry.mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    const entry = await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'));
    // The ledger says "no subscription": no recurring bill of the company stays live.
    expect({ outcome: entry?.outcome, live: live() }).toEqual({ outcome: { recurringBillId: null, plan: null }, live: [] });
  });
});
