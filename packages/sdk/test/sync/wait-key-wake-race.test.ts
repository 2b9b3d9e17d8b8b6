// A job deferred on a wait key whose wake came while it still ran (so the wake found nothing
// waiting) must not sleep for its whole retry: the sync module's other wait keys (a parked
// record waiting for a reference, an import waiting for the sync to be switched back on) look
// once more after the deferral is recorded, as the group-ready wait does. The interleaving is
// forced by running the other side inside `jobs.fail`, before the deferral is recorded.
import { createSyncModule, JobTypes, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { byName, provision, type Setup, setup } from './catch-up-harness.js';
import { FakeConnec } from './fake-connec.js';
import { buildConnector, C, drainer, GROUP, LocalApp, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

/** Memory storage whose `jobs.fail` runs `before` (once) ahead of recording a deferral on a key starting with `prefix`. */
function pausingFail(prefix: string, before: () => Promise<void>): { storage: StorageAdapter; ran: () => boolean } {
  const memory = memoryAdapter();
  let ran = false;
  const storage: StorageAdapter = {
    ...memory,
    jobs: {
      ...memory.jobs,
      fail: async (id, worker, failure) => {
        if (!ran && failure.error.code === 'deferred' && failure.waitKey?.startsWith(prefix)) {
          ran = true;
          await before();
        }
        return memory.jobs.fail(id, worker, failure);
      },
    },
  };
  return { storage, ran: () => ran };
}

describe('a wake sent while the deferred job still runs is not lost', () => {
  it('a parked record whose reference another worker creates before the deferral is recorded runs now, not at its park retry', async () => {
    const app = new LocalApp();
    const connec = new FakeConnec(ORG_UID);
    let other: (() => Promise<unknown>) | undefined;
    const { storage, ran } = pausingFail('sync.ref:', async () => {
      // Another worker runs the fetch of the organization the person waits for: it creates the
      // company and wakes the person's key, while the person's job is still running.
      await other?.();
    });
    const runtime = testRuntime(storage);
    // The SDK's default park retry (15 s): far beyond what this test waits.
    const sync = createSyncModule(runtime, { connector: buildConnector(app), sync: { connecPort: () => connec, parkRetryMs: 15_000, maxAttempts: 4 } });
    const second = createWorker(runtime, sync.jobs ?? {});
    other = () => second.drain({ pollIntervalMs: 1, concurrency: 1 });
    await provisionGroup(storage);
    connec.seed(GROUP, 'organizations', { name: 'Fetched Org' }, 'o88');
    connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p6');
    const notify = notifier(sync);
    expect((await notify({ people: [{ id: [C('p6')], first_name: 'Jane', last_name: 'Doe', organization_id: [C('o88')], group_id: GROUP, updated_at: '2016-10-04T00:36:23Z', created_at: '2016-10-04T00:36:23Z' }] })).status).toBe(200);

    // This worker, one job at a time: it parks the person and asks for o88.
    const first = createWorker(runtime, sync.jobs ?? {});
    await first.drain({ pollIntervalMs: 1, concurrency: 1 });
    expect(ran()).toBe(true);
    expect([...app.companies.values()].map((c) => c.name)).toEqual(['Fetched Org']);
    await drainer(first, storage)(50);

    const org = [...app.companies.values()][0];
    expect([...app.contacts.values()].map((c) => [c.lastName, c.companyId])).toEqual([['Doe', org?.id]]);
    expect(await storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('an import that found the sync off, switched on after its re-read and before its deferral is recorded, runs now, not in an hour', async () => {
    let s: Setup | undefined;
    const { storage, ran } = pausingFail('sync-enabled:', async () => {
      // The platform switches the sync back on: the wake finds the import still running.
      expect((await s?.toggle())?.json).toMatchObject({ sync_enabled: true });
    });
    s = setup({ storage });
    await provision(storage);
    s.connec.seed(GROUP, 'organizations', { name: 'Initech' }, 'o3');
    expect((await s.toggle()).json).toMatchObject({ sync_enabled: false });
    const { jobId } = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain(50);
    expect(ran()).toBe(true);
    expect(await storage.jobs.get(jobId)).toMatchObject({ status: 'done', attempts: 2 });
    expect(byName(s, 'Initech').name).toBe('Initech');
  });
});
