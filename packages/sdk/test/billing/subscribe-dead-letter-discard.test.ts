/**
 * Discarding a dead `billing.subscribe` job (`mno.worker.discardDeadLetter`) while its group's
 * ledger claim is unrecorded: an attempt POSTed a recurring bill whose outcome is unknown, and
 * only a run of the subscription reconciles it. See `subscribe-dead-letter-scenario.ts`;
 * adapter-prisma runs the same scenario on PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { createAccountModule, subscriptionLedgerKey } from '../../src/billing/index.js';
import { JobTypes } from '../../src/core/types.js';
import { BillingError } from '../../src/errors/index.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';
import { makeRuntime, makeTenant, provisionGroup, useAccountApi } from './helpers.js';
import { CLAIM_TTL_MS, deadSubscription, discardRefusedThenRetryReconciles, GROUP, TENANT } from './subscribe-dead-letter-scenario.js';

const api = useAccountApi();
const memory = async (clock: () => Date) => memoryAdapter({ clock });

describe('billing.subscribe dead letter with an unrecorded claim', () => {
  it('discardDeadLetter refuses it (BillingError), the dead letter stays; retried, it adopts the bill its dead attempt created', async () => {
    await discardRefusedThenRetryReconciles(api(), memory);
  });

  it('a later subscription of the group (mno.billing.subscribe) adopts that bill, never a second one; the dead letter can be discarded then', async () => {
    const s = await deadSubscription(api(), memory);
    s.advance(CLAIM_TTL_MS + 1_000);
    const outcome = await s.subscribe({ tenant: TENANT, groupId: GROUP, companyId: `company-${GROUP}` });
    const [bill, ...more] = [...api().recurringBills.values()];
    expect(more).toEqual([]);
    expect(outcome).toEqual({ status: 'reconciled', recurringBillId: bill?.id });
    expect(await s.storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'done', outcome: { recurringBillId: bill?.id } });

    // Recorded: nothing is left for the dead letter to reconcile.
    expect(await s.worker.discardDeadLetter(s.jobId)).toBe(true);
    expect(await s.storage.jobs.get(s.jobId)).toBeNull();
    expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([
      { level: 'info', message: 'worker: dead letter discarded', fields: { jobId: s.jobId, type: JobTypes.billingSubscribe } },
    ]);
    await s.worker.drain({ pollIntervalMs: 5 });
    expect(api().recurringBills.size).toBe(1);
  });

  it('force: true discards it anyway, with a warning naming the group; the claim stays for a later subscription to reconcile', async () => {
    const s = await deadSubscription(api(), memory);
    expect(await s.worker.discardDeadLetter(s.jobId, { force: true })).toBe(true);
    expect(await s.storage.jobs.get(s.jobId)).toBeNull();
    expect(s.logged.filter((l) => /dead letter discarded/.test(l.message))).toEqual([
      { level: 'warn', message: expect.stringMatching(/forced.*in doubt/), fields: { jobId: s.jobId, type: JobTypes.billingSubscribe, groupId: GROUP } },
    ]);
    expect(await s.storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'pending' });
    // A string "true" from untyped JavaScript is not a force.
    const other = await deadSubscription(api(), memory);
    await expect(other.worker.discardDeadLetter(other.jobId, { force: 'true' } as unknown as { force: boolean })).rejects.toBeInstanceOf(BillingError);
    expect(await other.storage.jobs.get(other.jobId)).toMatchObject({ status: 'dead' });
  });

  it('a dead letter whose attempts never claimed the group (an invalid plan) is discarded as before', async () => {
    api().addGroup(GROUP);
    const storage = memoryAdapter();
    await provisionGroup(storage, TENANT, GROUP);
    const { runtime } = makeRuntime(storage, [makeTenant(api())]);
    const mod = createAccountModule(runtime, { billing: { onCompanyCreated: () => ({ priceCents: 0, description: 'Free?', period: 'Month' }) } });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    const { id } = await storage.jobs.enqueue({
      type: JobTypes.billingSubscribe,
      tenant: TENANT,
      groupId: GROUP,
      payload: { tenant: TENANT, groupId: GROUP, companyId: `company-${GROUP}` },
    });
    await worker.drain({ pollIntervalMs: 5 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead' });
    expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toBeNull();

    expect(await worker.discardDeadLetter(id)).toBe(true);
    expect(await storage.jobs.get(id)).toBeNull();
    expect(api().recurringBills.size).toBe(0);
  });
});
