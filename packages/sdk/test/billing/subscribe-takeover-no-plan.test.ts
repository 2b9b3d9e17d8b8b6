// A subscription whose claim was taken over by a retry on which onCompanyCreated returned no
// plan. The retry records "no plan"; the earlier attempt's recurring bill must not stay live
// and unrecorded (the company billed every month although the ledger says it has no
// subscription): the late owner cancels it when it finds "no plan" recorded, and a retry
// that takes over a claim with a plan's intent cancels a bill matching it before recording.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import type { CompanyCreatedPayload } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock, type TestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

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

const basePlan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };

function moduleWith(plan: SubscriptionPlan | null, store: StorageAdapter) {
  const { runtime } = makeRuntime(store, [makeTenant(api)], clock.now);
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

describe('billing.subscribe: claim taken over by a retry that found no plan', () => {
  it('leaves no live recurring bill that the ledger does not record', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const inner = storage;
    const key = subscriptionLedgerKey(TENANT, 'cld-1');
    const retry = moduleWith(null, inner);
    let retryOutcome: unknown;
    // This call's claim lapses right after its POST (a stalled process); a retry of the job takes
    // the key over, and onCompanyCreated now returns no plan.
    const stalled: StorageAdapter = {
      ...inner,
      ledger: {
        ...inner.ledger,
        complete: async (k, owner, outcome) => {
          if (k === key && retryOutcome === undefined) {
            clock.advance(31_000);
            retryOutcome = await retry.mod.billing.subscribe(payload);
          }
          return inner.ledger.complete(k, owner, outcome);
        },
      },
    };
    const first = moduleWith(basePlan, stalled);
    const outcome = await first.mod.billing.subscribe(payload);
    expect(retryOutcome).toEqual({ status: 'no_plan' });
    const ours = [...api.recurringBills.values()];
    expect(ours).toHaveLength(1);
    // Any duplicate check scheduled meanwhile runs.
    clock.advance(120_000);
    await createWorker(first.runtime, first.mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    const entry = await inner.ledger.get(key);
    const active = [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);
    const recorded = (entry?.outcome as { recurringBillId?: string | null } | null)?.recurringBillId ?? null;
    // Expected: every active recurring bill of the company is the recorded one (none here).
    expect({ outcome, active, recorded }).toEqual({ outcome: expect.anything(), active: recorded === null ? [] : [recorded], recorded });
  });

  it('the retry itself cancels a matching bill of the attempt it took over (that attempt never records)', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const key = subscriptionLedgerKey(TENANT, 'cld-1');
    // The first attempt POSTs its bill, then its process dies before recording anything.
    const dying: StorageAdapter = {
      ...storage,
      ledger: {
        ...storage.ledger,
        complete: async (k, owner, outcome) => {
          if (k === key) throw new Error('process killed');
          return storage.ledger.complete(k, owner, outcome);
        },
      },
    };
    await moduleWith(basePlan, dying).mod.billing.subscribe(payload).catch(() => undefined);
    expect([...api.recurringBills.values()].filter((b) => b.status !== 'cancelled')).toHaveLength(1);
    clock.advance(31_000);
    expect(await moduleWith(null, storage).mod.billing.subscribe(payload)).toEqual({ status: 'no_plan' });
    expect([...api.recurringBills.values()].filter((b) => b.status !== 'cancelled')).toEqual([]);
    expect((await storage.ledger.get(key))?.outcome).toEqual({ recurringBillId: null, plan: null });
  });
});
