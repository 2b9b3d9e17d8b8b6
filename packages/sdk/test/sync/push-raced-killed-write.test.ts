/**
 * A push raced by an inbound write of the same record whose worker died (SIGKILL) right after
 * the app's write committed: the worker recorded nothing (no `lastError`, no applied version),
 * so the push's answer was taken as agreed, its echo skipped, and the dead attempt's retry
 * skipped as stale. The app kept the other app's version while Connec! held the pushed one, for
 * good. Staged in process as a crash leaves storage: the dying worker runs the engine over a
 * view of the storage that stops answering the moment the app's write commits (no write, no
 * lease or lock renewal, no release from then on), and its job lease and record lock lapse.
 * tests/reliability/worker-kill-push-race.test.ts kills a real worker process the same way.
 */
import { createSyncModule } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { A, buildConnector, C, createHarness, GROUP, provisionGroup, TENANT, testRuntime, dyingView, linkedJane } from './harness.js';

describe('a push raced by an inbound write whose worker was killed after the app committed it', () => {
  for (const when of ['notified version', 'notified version, echo polled before the retry'] as const) {
    it(`${when}: app and Connec! end on the same version`, async () => {
      let now = new Date('2016-10-04T09:00:00Z');
      const clock = () => now;
      const h = await createHarness({ clock, contactConflict: 'connec-wins' });
      await provisionGroup(h.storage);
      const { localId } = await linkedJane(h);
      expect(h.app.contacts.get(localId)?.jobTitle).toBe('Engineer');

      // The app's user edits the job title; the app will push that record.
      now = new Date('2016-10-04T10:00:00Z');
      h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
      const edited = { ...h.app.contacts.get(localId)! };

      // Another app renames Jane. A worker process writes that version in the app, and dies as
      // the write commits: from then on its storage calls never reach storage.
      const other = h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' });
      await h.notify({ people: [other] });
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
        sync: { connecPort: () => h.connec, parkRetryMs: 5, maxAttempts: 4 },
      });
      void createWorker(dyingRuntime, dying.jobs ?? {}).drain({ pollIntervalMs: 1, concurrency: 1, leaseMs: 1_000 });
      for (let i = 0; i < 2_000 && !dead; i++) await new Promise((r) => setTimeout(r, 5));
      expect(dead).toBe(true);
      expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });

      // The app pushes its user's edit (read before the rename reached it); Connec! answers.
      const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: edited });
      expect(result.status).toBe('pushed');
      const held = h.connec.find(GROUP, 'people', 'p9');
      expect(held).toMatchObject({ first_name: 'Jane', job_title: 'CTO' });
      const echo = { ...held, id: [C('p9'), A(localId)] };

      // The dead worker's job lease and locks lapse.
      now = new Date('2016-10-04T11:00:00Z');
      if (when === 'notified version, echo polled before the retry') {
        // A poll (not ordered with the inbox) brings the push's version before the retry runs.
        await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
        expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });
      }
      await h.notify({ people: [echo] });
      await h.drain();
      expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });

      // Both sides hold the same version.
      const inConnec = h.connec.find(GROUP, 'people', 'p9');
      const inApp = h.app.contacts.get(localId);
      expect({ firstName: inApp?.firstName, jobTitle: inApp?.jobTitle }).toEqual({ firstName: inConnec?.first_name, jobTitle: inConnec?.job_title });
    });
  }
});
