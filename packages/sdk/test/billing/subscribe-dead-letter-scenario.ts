/**
 * A `billing.subscribe` job dead-lettered after a POST whose outcome is unknown (the platform
 * created the recurring bill, its answer was lost, and the listing that would have found it
 * failed too): the group's ledger claim is left unrecorded with the plan as its intent, and the
 * bill is live on the platform. Shared by the SDK's memory test and adapter-prisma's PostgreSQL one.
 *
 * Only a run of the subscription reconciles that claim (no sweep reads the ledger, nothing else
 * enqueues `billing.subscribe` for a provisioned group), so the dead letter is its last handle:
 * discarding it left the group billed with no subscription recorded, for good (until a deletion
 * of the group cancelled its bills).
 */
import { expect } from 'vitest';
import { createAccountModule, subscriptionLedgerKey } from '../../src/billing/index.js';
import { JobTypes } from '../../src/core/types.js';
import { BillingError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { createWorker, type Worker } from '../../src/worker/index.js';
import type { AccountApiServer } from './account-api-server.js';
import { type CapturedLog, makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

export const TENANT = 'maestrano-uat';
export const GROUP = 'cld-dead-sub';
export const CLAIM_TTL_MS = 60_000;
const PLAN = { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' } as const;
const RECURRING = '/api/v1/account/recurring_bills';

export interface DeadSubscription {
  storage: StorageAdapter;
  worker: Worker;
  /** `mno.billing.subscribe` of the same module. */
  subscribe: ReturnType<typeof createAccountModule>['billing']['subscribe'];
  logged: CapturedLog[];
  jobId: string;
  /** Moves the clock (of the SDK and of the storage) forward. */
  advance(ms: number): void;
}

/** Sets the scene: one dead `billing.subscribe` job whose bill is live and unrecorded. */
export async function deadSubscription(api: AccountApiServer, makeStorage: (clock: () => Date) => Promise<StorageAdapter>): Promise<DeadSubscription> {
  resetServer(api);
  api.addGroup(GROUP);
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const storage = await makeStorage(clock);
  await provisionGroup(storage, TENANT, GROUP);
  const { runtime, logger } = makeRuntime(storage, [makeTenant(api)], clock);
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => PLAN, subscription: { claimTtlMs: CLAIM_TTL_MS }, accountApi: { retry: { limit: 0 } } },
  });
  const worker = createWorker(runtime, mod.contribution.jobs ?? {});
  // As the company.created fan-out enqueues it; one attempt stands for the last of them.
  const { id: jobId } = await storage.jobs.enqueue({
    type: JobTypes.billingSubscribe,
    tenant: TENANT,
    groupId: GROUP,
    dedupeKey: `${JobTypes.billingSubscribe}:${TENANT}:${GROUP}`,
    payload: { tenant: TENANT, groupId: GROUP, companyId: `company-${GROUP}`, group: { group_uid: GROUP, group_name: 'DoeCorp', group_currency: 'USD' } },
    maxAttempts: 1,
  });
  // The platform creates the bill and the answer is lost; the listing that would find it fails.
  api.faults.push({ status: 500, times: 1, method: 'POST', pathPrefix: RECURRING, afterProcessing: true });
  api.faults.push({ status: 500, times: 1, method: 'GET', pathPrefix: RECURRING });
  await worker.drain({ pollIntervalMs: 5 });

  expect(await storage.jobs.get(jobId)).toMatchObject({ status: 'dead' });
  expect([...api.recurringBills.values()].map((b) => b.status)).not.toContain('cancelled');
  expect(api.recurringBills.size).toBe(1);
  const entry = await storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP));
  expect(entry).toMatchObject({ status: 'pending', intent: { kind: 'recurring', priceCents: 2900 } });
  return { storage, worker, subscribe: mod.billing.subscribe, logged: logger.entries, jobId, advance: (ms) => void (offset += ms) };
}

/**
 * The operator tries to discard the dead letter: refused (a `BillingError` naming the way out),
 * the job stays dead; retried instead, it adopts the live bill. One bill, recorded.
 */
export async function discardRefusedThenRetryReconciles(api: AccountApiServer, makeStorage: (clock: () => Date) => Promise<StorageAdapter>): Promise<void> {
  const s = await deadSubscription(api, makeStorage);
  const refusal = await s.worker.discardDeadLetter(s.jobId).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  expect(refusal).toEqual({ error: expect.any(BillingError) });
  expect(String((refusal as { error: Error }).error.message)).toMatch(/may have created a recurring bill.*retryDeadLetter/s);
  expect(await s.storage.jobs.get(s.jobId)).toMatchObject({ status: 'dead' });
  expect((await s.worker.deadLetters({ type: JobTypes.billingSubscribe })).map((d) => d.jobId)).toEqual([s.jobId]);
  expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([]);

  // Retried once the dead attempt's claim has expired: it reconciles first and adopts the bill.
  s.advance(CLAIM_TTL_MS + 1_000);
  expect(await s.worker.retryDeadLetter(s.jobId)).toBe(true);
  await s.worker.drain({ pollIntervalMs: 5 });
  const [bill, ...more] = [...api.recurringBills.values()];
  expect(more).toEqual([]);
  expect(bill?.status).not.toBe('cancelled');
  expect(await s.storage.jobs.get(s.jobId)).toMatchObject({ status: 'done' });
  expect(await s.storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'done', outcome: { recurringBillId: bill?.id } });
  expect(api.requests.filter((r) => r.method === 'POST' && r.path === RECURRING)).toHaveLength(1);
  // Nothing left to discard: the dead letter was settled by its retry.
  expect(await s.worker.discardDeadLetter(s.jobId)).toBe(false);
}
