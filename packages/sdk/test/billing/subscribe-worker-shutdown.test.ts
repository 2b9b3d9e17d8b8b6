/**
 * A worker shut down (SIGTERM on a deploy) while a `billing.subscribe` or
 * `billing.check_duplicates` job waits for the Account API. The job's `ctx.signal` aborts at the
 * end of the grace period: the SDK's own billing jobs must stop their Account API call then and
 * be given back to the queue, uncounted. Ignoring it, the call ran on (up to the 30 s connect
 * timeout, plus retries and their backoff); the worker left the job behind as lost, and
 * `run()` resolved while the job was still running: the app then closed its storage under it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccountModule, subscriptionLedgerKey } from '../../src/billing/index.js';
import { JobTypes } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerStats } from '../../src/worker/index.js';
import { type AccountApiServer, startAccountApiServer } from './account-api-server.js';
import { makeRuntime, makeTenant, provisionGroup, resetServer } from './helpers.js';

const TENANT = 'maestrano-uat';
let api: AccountApiServer;
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
  storage = memoryAdapter();
});

/** Runs the worker until the Account API holds one request, then shuts it down. */
async function shutDownWhileHeld(): Promise<WorkerStats> {
  const { runtime } = makeRuntime(storage, [makeTenant(api)]);
  const mod = createAccountModule(runtime, {
    billing: { onCompanyCreated: () => ({ priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' }) },
  });
  const worker = createWorker(runtime, mod.contribution.jobs ?? {});
  const controller = new AbortController();
  const running = worker.run({ signal: controller.signal, pollIntervalMs: 5, shutdownGraceMs: 20 });
  while (api.held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  controller.abort();
  const stats = await running;
  // A round trip after run() resolved: the server has seen whatever the client did with the held request.
  await fetch(`${api.url}/api/v1/account/groups`).then((r) => r.body?.cancel());
  return stats;
}

describe('billing jobs – worker shutdown while the Account API is slow', () => {
  it('billing.subscribe stops its Account API call at ctx.signal and is given back, not left running', async () => {
    await provisionGroup(storage, TENANT, 'cld-1');
    const { id } = await storage.jobs.enqueue({
      type: JobTypes.billingSubscribe,
      tenant: TENANT,
      groupId: 'cld-1',
      payload: { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: { group_uid: 'cld-1', group_name: 'DoeCorp', group_currency: 'USD' } },
    });
    api.faults.push({ status: 500, times: 1, hold: true }); // the platform stops answering
    const stats = await shutDownWhileHeld();
    expect(api.held).toHaveLength(1);
    expect(api.held[0]?.closedUnanswered).toBe(true);
    expect(stats).toMatchObject({ claimed: 1, released: 1, lost: 0 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it('billing.check_duplicates stops its Account API call at ctx.signal and is given back, not left running', async () => {
    // A subscription attempt whose outcome is unknown (a worker that died after its POST):
    // the check asks the platform whether the group ended.
    const intent = { kind: 'recurring', tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month', frequency: 1, cycles: null, initialCents: null, startDate: new Date().toISOString() };
    await storage.ledger.claim(subscriptionLedgerKey(TENANT, 'cld-1'), { owner: 'dead-worker', ttlMs: 60_000, intent });
    const { id } = await storage.jobs.enqueue({
      type: JobTypes.billingCheckDuplicates,
      tenant: TENANT,
      groupId: 'cld-1',
      payload: { kind: 'ended-group', tenant: TENANT, groupId: 'cld-1' },
    });
    api.faults.push({ status: 500, times: 1, hold: true });
    const stats = await shutDownWhileHeld();
    expect(api.held).toHaveLength(1);
    expect(api.held[0]?.closedUnanswered).toBe(true);
    expect(stats).toMatchObject({ claimed: 1, released: 1, lost: 0 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});

describe('billing.subscribe – a shutdown between the bill POST and its answer', () => {
  it('the retry adopts the bill the interrupted POST created: one bill, starting at the trial end', async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    storage = memoryAdapter({ clock });
    const trialEnd = new Date(Date.now() + 14 * 86_400_000);
    trialEnd.setUTCMilliseconds(0);
    await provisionGroup(storage, TENANT, 'cld-1', { trialEndsAt: trialEnd });
    const { id } = await storage.jobs.enqueue({
      type: JobTypes.billingSubscribe,
      tenant: TENANT,
      groupId: 'cld-1',
      payload: { tenant: TENANT, groupId: 'cld-1', companyId: 'company-cld-1', group: { group_uid: 'cld-1', group_name: 'DoeCorp', group_currency: 'USD' } },
    });
    // The platform takes its time over the POST and creates the bill after the client gave up.
    api.faults.push({ status: 500, times: 1, method: 'POST', pathPrefix: '/api/v1/account/recurring_bills', delayMs: 300, afterProcessing: true });
    const { runtime } = makeRuntime(storage, [makeTenant(api)], clock);
    const mod = createAccountModule(runtime, {
      billing: { onCompanyCreated: () => ({ priceCents: 2900, description: 'Pro plan', currency: 'USD', period: 'Month' }) },
    });
    const worker = createWorker(runtime, mod.contribution.jobs ?? {});
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 5, shutdownGraceMs: 20 });
    const posts = () => api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/recurring_bills'));
    while (posts().length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    expect(await running).toMatchObject({ claimed: 1, released: 1, lost: 0 });
    await expect.poll(() => api.recurringBills.size).toBe(1); // the late POST landed
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });

    // Past the interrupted attempt's claim: the next worker takes it over and reconciles.
    offset += 121_000;
    await worker.drain({ pollIntervalMs: 5 });
    expect(posts()).toHaveLength(1);
    const live = [...api.recurringBills.values()].filter((b) => b.status !== 'cancelled');
    expect(live).toHaveLength(1);
    expect(live[0]?.start_date).toBe(trialEnd.toISOString());
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'done' });
    const entry = await storage.ledger.get(subscriptionLedgerKey(TENANT, 'cld-1'));
    expect(entry).toMatchObject({ status: 'done', outcome: { recurringBillId: live[0]?.id } });
  });
});
