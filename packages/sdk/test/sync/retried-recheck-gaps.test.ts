/**
 * A record job killed (SIGKILL) right after the app's write committed, on its last attempt: the
 * next claim dead-letters it as poisoned instead of running it, and its requeue starts its
 * attempts over, so it is no retry (`attempts > 1`) and skipped, as stale, the version its dead
 * attempt may have written while a push raced it (see push-raced-killed-write.test.ts). The
 * poisoned mark on the id map makes its requeue, or the record's next job, re-check it.
 */
import { createSyncModule } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { A, buildConnector, C, createHarness, GROUP, provisionGroup, TENANT, testRuntime, dyingView, linkedJane } from './harness.js';

describe('a push raced by an inbound write killed on its last attempt', () => {
  it('the dead-lettered job, requeued, ends both sides on the same version', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const h = await createHarness({ clock, contactConflict: 'connec-wins', sync: { maxAttempts: 1 } });
    await provisionGroup(h.storage);
    const { localId } = await linkedJane(h);

    now = new Date('2016-10-04T10:00:00Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
    const edited = { ...h.app.contacts.get(localId)! };
    await h.notify({ people: [h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' })] });
    let dead = false;
    const set = h.app.contacts.set.bind(h.app.contacts);
    h.app.contacts.set = (key, value) => {
      h.app.contacts.set = set;
      set(key, value);
      dead = true;
      return h.app.contacts;
    };
    const dyingRuntime = testRuntime(dyingView(h.storage, () => dead), clock, 'dying-instance');
    const dying = createSyncModule(dyingRuntime, {
      connector: buildConnector(h.app, { contactConflict: 'connec-wins' }),
      sync: { connecPort: () => h.connec, parkRetryMs: 5, maxAttempts: 1 },
    });
    void createWorker(dyingRuntime, dying.jobs ?? {}).drain({ pollIntervalMs: 1, concurrency: 1, leaseMs: 1_000 });
    for (let i = 0; i < 2_000 && !dead; i++) await new Promise((r) => setTimeout(r, 5));
    expect(dead).toBe(true);
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: edited })).status).toBe('pushed');
    const echo = { ...h.connec.find(GROUP, 'people', 'p9'), id: [C('p9'), A(localId)] };

    // The lease lapses: the job, past its attempts, is dead-lettered; the operator requeues it.
    now = new Date('2016-10-04T11:00:00Z');
    await h.notify({ people: [echo] });
    await h.drain();
    const [deadJob] = await h.storage.jobs.listDead({});
    expect(deadJob).toBeDefined();
    expect(await h.storage.jobs.requeue(deadJob!.id)).toBe(true);
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    const inConnec = h.connec.find(GROUP, 'people', 'p9');
    const inApp = h.app.contacts.get(localId);
    expect({ firstName: inApp?.firstName, jobTitle: inApp?.jobTitle }).toEqual({ firstName: inConnec?.first_name, jobTitle: inConnec?.job_title });
  });
});
