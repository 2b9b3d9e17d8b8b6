/**
 * Discarding a dead `billing.check_duplicates` job (`mno.worker.discardDeadLetter`) while the
 * duplicate it looks for may be live: a charge's first POST was lost and landed after the retry
 * charged, and every run of the check failed to cancel the twin (the Account API refused its
 * DELETE). Nothing else looks for that twin again, so the dead letter is the only handle on a
 * customer billed twice.
 */
import { describe, expect, it } from 'vitest';
import { ChargeOutcomeUnknownError, chargeLedgerKey, createAccountModule } from '../../src/billing/index.js';
import { JobTypes } from '../../src/core/types.js';
import { BillingError } from '../../src/errors/index.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';
import { losingFirstPost, makeRuntime, makeTenant, useAccountApi } from './helpers.js';

const api = useAccountApi('cld-1');
const TENANT = 'maestrano-uat';
const CHARGE = {
  tenant: TENANT,
  groupId: 'cld-1',
  priceCents: 450,
  currency: 'USD',
  description: 'SMS credits (May)',
  idempotencyKey: 'sms-2030-05-cld-1',
};

/** A charge billed twice (its lost POST landed late) and a dead duplicate check that could not cancel the twin. */
async function deadDuplicateCheck() {
  let refuseCancels = true;
  const lost = losingFirstPost(async (req) =>
    req.method === 'DELETE' && refuseCancels
      ? new Response('{"errors":[{"title":"maintenance"}]}', { status: 503, headers: { 'content-type': 'application/json' } })
      : fetch(req),
  );
  const clock = createTestClock(Date.now());
  const storage = memoryAdapter({ clock: clock.now });
  const { runtime, logger } = makeRuntime(storage, [makeTenant(api())], clock.now);
  runtime.fetch = lost.fetch;
  const mod = createAccountModule(runtime, {
    billing: { duplicateCheckDelayMs: 600_000, charge: { claimTtlMs: 60_000 }, accountApi: { retry: { limit: 0, backoffLimitMs: 5 } } },
  });
  await expect(mod.billing.charge(CHARGE)).rejects.toBeInstanceOf(ChargeOutcomeUnknownError);
  clock.advance(60_001);
  const charged = await mod.billing.charge(CHARGE);
  expect((await lost.land()).ok).toBe(true);
  const live = () => [...api().bills.values()].filter((b) => b.status !== 'cancelled').map((b) => b.id);
  const [twin] = live().filter((id) => id !== charged.billId);
  expect(live()).toHaveLength(2);

  const worker = createWorker(runtime, mod.contribution.jobs ?? {});
  clock.advance(600_001);
  for (let round = 0; round < 30 && (await storage.jobs.counts({ type: JobTypes.billingCheckDuplicates })).dead === 0; round++) {
    await worker.drain({ pollIntervalMs: 5, backoff: { baseMs: 1, maxMs: 1 } });
    clock.advance(3_600_000);
  }
  const [dead, ...more] = await worker.deadLetters({ type: JobTypes.billingCheckDuplicates });
  expect(more).toEqual([]);
  expect(dead).toMatchObject({ type: JobTypes.billingCheckDuplicates, tenant: TENANT, groupId: 'cld-1' });
  expect(live().sort()).toEqual([charged.billId, twin].sort());
  return {
    storage,
    worker,
    logged: logger.entries,
    jobId: dead?.jobId ?? '',
    chargedBillId: charged.billId,
    twin,
    live,
    allowCancels: () => void (refuseCancels = false),
  };
}

describe('billing.check_duplicates dead letter with the duplicate maybe live', () => {
  it('discardDeadLetter refuses it (BillingError naming the recorded bill and the way out), the dead letter stays; retried, it cancels the twin', async () => {
    const s = await deadDuplicateCheck();
    const refusal = await s.worker.discardDeadLetter(s.jobId).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    expect(refusal).toEqual({ error: expect.any(BillingError) });
    const message = (refusal as { error: Error }).error.message;
    expect(message).toContain(`beside the recorded ${s.chargedBillId}`);
    expect(message).toMatch(/group cld-1 \(tenant maestrano-uat\).*retryDeadLetter.*force: true/s);
    expect(await s.storage.jobs.get(s.jobId)).toMatchObject({ status: 'dead' });
    expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([]);

    s.allowCancels();
    expect(await s.worker.retryDeadLetter(s.jobId)).toBe(true);
    expect((await s.worker.drain({ pollIntervalMs: 5 })).deadLettered).toBe(0);
    expect(await s.storage.jobs.get(s.jobId)).toMatchObject({ status: 'done' });
    expect(s.live()).toEqual([s.chargedBillId]);
    expect(await s.storage.ledger.get(chargeLedgerKey(TENANT, CHARGE.idempotencyKey))).toMatchObject({ status: 'done', outcome: { billId: s.chargedBillId } });
    expect(await s.worker.discardDeadLetter(s.jobId)).toBe(false);
  });

  it('force: true discards it anyway, with a warning naming the group; the twin stays live (the operator took it on)', async () => {
    const s = await deadDuplicateCheck();
    expect(await s.worker.discardDeadLetter(s.jobId, { force: true })).toBe(true);
    expect(await s.storage.jobs.get(s.jobId)).toBeNull();
    expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([
      {
        level: 'warn',
        message: expect.stringMatching(/forced: the duplicate check of its group did not run; a second bill .* may be live/),
        fields: { jobId: s.jobId, type: JobTypes.billingCheckDuplicates, groupId: 'cld-1' },
      },
    ]);
    expect(s.live().sort()).toEqual([s.chargedBillId, s.twin].sort());
  });
});
