/**
 * A tenant missing from the tenant list for a while (a marketplaces document refreshed
 * without it): accepted records and the polling chain wait for it instead of being dropped.
 */
import { createSyncModule, JobTypes, memoryAdapter, staticTenants, type TenantRegistry } from '@org/maestrano-sdk';
import { groupReadyWaitKey } from '../../src/core/types.js';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { buildConnector, C, GROUP, LocalApp, notifier, ORG_UID, provisionGroup, silentLogger, TENANT, testTenant } from './harness.js';

async function setup(clock: () => Date, options: Record<string, unknown> = {}) {
  const tenant = testTenant();
  let present = true;
  const tenants: TenantRegistry = { get: (name) => (present && name === tenant.name ? tenant : undefined), list: () => (present ? [tenant] : []) };
  const app = new LocalApp();
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter({ clock });
  const runtime = { tenants, storage, logger: silentLogger, clock, instanceId: 'test', fetch: globalThis.fetch };
  const sync = createSyncModule(runtime, { connector: buildConnector(app), sync: { connecPort: () => connec, maxAttempts: 3, ...options } });
  const worker = createWorker(runtime, sync.jobs ?? {});
  // One pass over what is due now; failed attempts come back an hour later.
  const runDue = () => worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 3_600_000, maxMs: 3_600_000 } });
  await provisionGroup(storage);
  return { app, connec, storage, sync, runDue, notify: notifier(sync), setPresent: (value: boolean) => (present = value) };
}

describe('a tenant missing from the tenant list', () => {
  it('keeps the records it accepted and applies them once the tenant is back', async () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const h = await setup(() => new Date(now));
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Kept', last_name: 'Record' }, 'p1');
    expect((await h.notify({ people: [{ ...person, id: [C('p1')] }] })).status).toBe(200);

    h.setPresent(false);
    await h.runDue();
    expect(h.app.contacts.size).toBe(0);
    const [job] = await h.storage.jobs.listDead();
    expect(job).toBeUndefined();
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 1, done: 0 });

    h.setPresent(true);
    now += 3_600_000;
    await h.runDue();
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Record']);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, done: 1 });
  });

  it('keeps the polling chain: a poll that finds no tenant is retried, and its last attempt schedules the next poll', async () => {
    let now = Date.parse('2030-01-01T00:00:10.000Z');
    const h = await setup(() => new Date(now), { pollIntervalMs: 60_000 });
    const poll = await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    const polls = async () => (await h.storage.jobs.counts({ type: JobTypes.syncPoll })).pending;

    h.setPresent(false);
    await h.runDue();
    expect((await h.storage.jobs.get(poll.jobId))?.status).toBe('pending');
    expect(await polls()).toBe(1);
    // Retried with backoff until its attempts are spent (a poll job has its own maxAttempts).
    for (let i = 0; i < 20 && (await h.storage.jobs.get(poll.jobId))?.status === 'pending'; i++) {
      now += 7_200_000;
      await h.runDue();
    }
    // Dead-lettered (listed for an operator), but the chain goes on: the next poll is scheduled.
    expect((await h.storage.jobs.get(poll.jobId))?.status).toBe('dead');
    expect(await polls()).toBe(1);

    h.setPresent(true);
    now += 3_600_000;
    await h.runDue();
    expect(h.connec.listCalls.some((c) => c.filter?.startsWith('updated_at gte'))).toBe(true);
    expect(await polls()).toBe(1);
  });
});

describe('an import queued before its group was recorded', () => {
  it('waits for the group (not dead-lettered), and runs once the group is provisioned and its wait key woken', async () => {
    const now = Date.parse('2030-01-01T00:00:00.000Z');
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const app = new LocalApp();
    const connec = new FakeConnec(ORG_UID);
    connec.seed(GROUP, 'organizations', { name: 'Waiting Co' }, 'o1');
    const runtime = { tenants: staticTenants([testTenant()]), storage, logger: silentLogger, clock, instanceId: 'test', fetch: globalThis.fetch };
    const sync = createSyncModule(runtime, { connector: buildConnector(app), sync: { connecPort: () => connec, maxAttempts: 2 } });
    const worker = createWorker(runtime, sync.jobs ?? {});
    const runDue = () => worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 1, maxMs: 1 } });

    const { jobId } = await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await runDue();
    await runDue();
    // Deferred on the group's wait key, far in the future: not retried to death meanwhile.
    expect(await storage.jobs.get(jobId)).toMatchObject({ status: 'pending', attempts: 1, waitKey: groupReadyWaitKey(TENANT, GROUP) });
    expect(app.companies.size).toBe(0);

    // What SSO provisioning does once it records the group.
    await provisionGroup(storage);
    await storage.jobs.wake(groupReadyWaitKey(TENANT, GROUP));
    await runDue();
    expect((await storage.jobs.get(jobId))?.status).toBe('done');
    expect([...app.companies.values()].map((c) => c.name)).toEqual(['Waiting Co']);
  });
});
