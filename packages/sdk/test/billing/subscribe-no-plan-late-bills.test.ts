// A subscription job that takes over a claim whose attempt had a plan, on a run where
// onCompanyCreated returns none. The retry records "no plan"; the earlier attempt's recurring
// bill must not stay live and unrecorded (the company billed every month although the ledger
// says it has no subscription): the late owner cancels it when it finds "no plan" recorded, a
// retry that takes over a claim with a plan's intent cancels a bill matching it before
// recording, a cancel that fails once does not end the job "done" with the bill live and the
// key claimed for good (the job is deferred until the claim can be taken over, then cancels
// again), and that attempt's POST landing after "no plan" was recorded is checked for later
// and cancelled (docs/billing.md, "Late duplicates").
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule, type SubscriptionPlan, subscriptionLedgerKey } from '../../src/billing/index.js';
import { type CompanyCreatedPayload, JobTypes } from '../../src/core/types.js';
import type { JsonObject, StorageAdapter } from '../../src/storage/adapter.js';
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
  clock = createTestClock(Date.now());
  storage = memoryAdapter({ clock: clock.now });
});

const basePlan: SubscriptionPlan = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' };

function moduleWith(plan: SubscriptionPlan | null, store: StorageAdapter, fetchImpl?: typeof fetch) {
  const { runtime } = makeRuntime(store, [makeTenant(api)], clock.now);
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

const live = () => [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);

describe('billing.subscribe: a failed cancel in the no-plan paths', () => {
  it('no-plan takeover: a cancel that fails once does not end the job with the bill live and the key claimed forever', async () => {
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
    expect(live()).toHaveLength(1);
    clock.advance(31_000);

    // The retry (now no plan) runs as the durable job; the platform fails the DELETE once (500).
    const { mod, runtime } = moduleWith(null, storage);
    const { id } = await storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: TENANT, groupId: 'cld-1', payload: payload as unknown as JsonObject, maxAttempts: 8 });
    api.faults.push({ status: 500, times: 1, method: 'DELETE' });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });
    // The failed attempt still holds the claim: the job is deferred, not done.
    expect((await storage.jobs.get(id))?.status).toBe('pending');
    expect(live()).toHaveLength(1);
    // Once that claim has lapsed, the job takes it over and cancels again.
    clock.advance(10 * 60_000);
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });

    const job = await storage.jobs.get(id);
    const entry = await storage.ledger.get(key);
    // Expected: once the job is done, the earlier attempt's bill is cancelled and "no plan" recorded.
    expect({ job: job?.status, ledger: entry?.status, live: live() }).toEqual({ job: 'done', ledger: 'done', live: [] });
  });

  it('no-plan takeover: the earlier attempt’s lost POST landing later is checked for, as after a plan takeover (docs/billing.md "Late duplicates")', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const key = subscriptionLedgerKey(TENANT, 'cld-1');
    // The first attempt's POST is sent and its answer lost (the claim stays until it expires).
    const lost = losingFirstPost();
    const first = moduleWith(basePlan, storage, lost.fetch);
    await expect(first.mod.billing.subscribe(payload)).rejects.toThrow();
    expect(lost.sent).toBe(true);
    clock.advance(31_000);
    // The retry finds no plan now and records none.
    const retry = moduleWith(null, storage);
    expect(await retry.mod.billing.subscribe(payload)).toEqual({ status: 'no_plan' });
    // Then the lost POST reaches the platform.
    expect((await lost.land()).ok).toBe(true);
    expect(live()).toHaveLength(1);
    // Whatever was scheduled runs, long after (the duplicate-check delay and more).
    clock.advance(24 * 3_600_000);
    await createWorker(retry.runtime, retry.mod.contribution.jobs ?? {}).drain({ pollIntervalMs: 5 });
    const entry = await storage.ledger.get(key);
    // Expected: the ledger says "no subscription", so no recurring bill of the company stays live.
    expect({ outcome: entry?.outcome, live: live() }).toEqual({ outcome: { recurringBillId: null, plan: null }, live: [] });
  });
});

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
