/**
 * Discarding a dead `billing.subscribe` job (`mno.worker.discardDeadLetter`) while its group's
 * ledger claim is unrecorded: an attempt POSTed a recurring bill whose outcome is unknown, and
 * only a run of the subscription reconciles it. See `subscribe-dead-letter-scenario.ts`;
 * adapter-prisma runs the same scenario on PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { createAccountModule, subscriptionLedgerKey } from '../../src/billing/index.js';
import { JobTypes, type RouteHandler } from '../../src/core/types.js';
import { BillingError } from '../../src/errors/index.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';
import { basicAuth, makeRuntime, makeTenant, provisionGroup, useAccountApi } from './helpers.js';
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

/**
 * An attempt finds no plan, claims the group and fails to record "no plan"; the next attempt,
 * past that claim, has a plan: its POST creates the bill, the answer is lost, and the listing
 * that would find it fails. The job dies. (`plan` is what `onCompanyCreated` answers from the
 * second call on.)
 */
async function noPlanThenLostPost() {
  api().addGroup(GROUP);
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const memoryStorage = memoryAdapter({ clock });
  let failCompletes = 1;
  const storage = {
    ...memoryStorage,
    ledger: {
      ...memoryStorage.ledger,
      complete: async (...args: Parameters<typeof memoryStorage.ledger.complete>) => {
        if (failCompletes-- > 0) throw new Error('storage unavailable');
        return memoryStorage.ledger.complete(...args);
      },
    },
  };
  await provisionGroup(storage, TENANT, GROUP);
  const { runtime } = makeRuntime(storage, [makeTenant(api())], clock);
  // While `losing`: a recurring bill POST reaches the platform and its answer is lost; the
  // listings after it fail.
  let losing = false;
  let posted = false;
  runtime.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const bills = new URL(req.url).pathname.startsWith('/api/v1/account/recurring_bills');
    if (losing && bills && req.method === 'POST') {
      await fetch(req);
      posted = true;
      throw new TypeError('fetch failed');
    }
    if (losing && bills && posted) return new Response('{"errors":[{"title":"unavailable"}]}', { status: 503, headers: { 'content-type': 'application/json' } });
    return fetch(req);
  }) as typeof fetch;
  let calls = 0;
  const state: { plan: { priceCents: number; description: string; currency: string; period: string } | null } = {
    plan: { priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' },
  };
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => (calls++ === 0 ? null : state.plan), subscription: { claimTtlMs: CLAIM_TTL_MS }, accountApi: { retry: { limit: 0 } } },
  });
  const worker = createWorker(runtime, mod.contribution.jobs ?? {});
  const { id } = await storage.jobs.enqueue({
    type: JobTypes.billingSubscribe,
    tenant: TENANT,
    groupId: GROUP,
    payload: { tenant: TENANT, groupId: GROUP, companyId: `company-${GROUP}` },
    maxAttempts: 2,
  });
  await worker.drain({ pollIntervalMs: 5 });
  expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 1 });
  expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'pending', intent: null });

  offset += CLAIM_TTL_MS + 60_000;
  losing = true;
  await worker.drain({ pollIntervalMs: 5 });
  losing = false;
  expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead' });
  expect(api().recurringBills.size).toBe(1);
  // The attempt with a plan took the claim afresh before its POST: the claim says what it sent.
  expect(await storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'pending', intent: { kind: 'recurring', priceCents: 2900 } });
  await expect(worker.discardDeadLetter(id)).rejects.toBeInstanceOf(BillingError);
  expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead' });
  return { storage, worker, mod, runtime, id, state, advance: (ms: number) => void (offset += ms) };
}

describe('billing.subscribe dead letter whose claim was first taken without a plan', () => {
  it('is refused too (the attempt with a plan claimed afresh before POSTing); retried, it adopts the bill', async () => {
    const s = await noPlanThenLostPost();
    s.advance(CLAIM_TTL_MS + 1_000);
    expect(await s.worker.retryDeadLetter(s.id)).toBe(true);
    await s.worker.drain({ pollIntervalMs: 5 });
    const [bill, ...more] = [...api().recurringBills.values()];
    expect(more).toEqual([]);
    expect(bill?.status).not.toBe('cancelled');
    expect(await s.storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'done', outcome: { recurringBillId: bill?.id } });
  });

  it('retried when onCompanyCreated answers no plan again, it cancels the bill the dead attempt created and records no plan', async () => {
    const s = await noPlanThenLostPost();
    s.state.plan = null;
    s.advance(CLAIM_TTL_MS + 1_000);
    expect(await s.worker.retryDeadLetter(s.id)).toBe(true);
    await s.worker.drain({ pollIntervalMs: 5 });
    expect(await s.storage.jobs.get(s.id)).toMatchObject({ status: 'done' });
    expect([...api().recurringBills.values()].map((b) => b.status)).toEqual(['cancelled']);
    expect(await s.storage.ledger.get(subscriptionLedgerKey(TENANT, GROUP))).toMatchObject({ status: 'done', outcome: { recurringBillId: null } });
  });

  it('the group deleted meanwhile: the deletion has the bill of the unrecorded attempt cancelled', async () => {
    const s = await noPlanThenLostPost();
    const tenant = makeTenant(api());
    const groupDeleted = s.mod.contribution.routes?.groupDeleted as RouteHandler;
    const res = await groupDeleted({
      request: new Request(`http://127.0.0.1/maestrano/account/groups/${GROUP}/${TENANT}`, { method: 'DELETE', headers: { authorization: basicAuth(tenant.api.id, tenant.api.key) } }),
      tenant,
      params: { id: GROUP },
    });
    expect(res.status).toBe(200);
    // The check runs once the dead attempt's claim has expired and its delay has passed.
    s.advance(CLAIM_TTL_MS + 3_600_000);
    await s.worker.drain({ pollIntervalMs: 5 });
    expect([...api().recurringBills.values()].map((b) => b.status)).toEqual(['cancelled']);
  });
});
