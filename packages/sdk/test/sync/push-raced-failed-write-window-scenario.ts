/**
 * A push raced by an inbound write of the same record that failed after committing, when the
 * push's answer is recorded before the failure is. The worker recorded a failed record job's
 * error on the id map only once the job was settled: after the whole claimed batch ran, the
 * record locks were released and the batch's link-back call answered. A push whose answer
 * was recorded in between (another process, or another request of this one) saw no error
 * and was taken as agreed: its echo was skipped, the failed job's retry was stale, and the
 * app kept the other app's version while Connec! held the pushed one, for good.
 */
import type { IdMapPatch, StorageAdapter } from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { A, C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

/**
 * The app pushes an edit of Jane; before Connec! applies it another app renames her, the worker
 * writes that in the app and `local.update` throws after its write committed. The push is
 * answered once `answerAfter` (the worker's next step) is reached, and that step then waits
 * for the push to be recorded.
 */
export async function raceFailedWrite(answerAfter: 'failure recorded' | 'locks released', storage?: StorageAdapter): Promise<void> {
  {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, contactConflict: 'connec-wins', ...(storage ? { storage } : {}) });
    await provisionGroup(h.storage);
    h.connec.setClock('2016-10-04T08:59:59Z');
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
    await h.notify({ people: [seeded] });
    await h.drain();
    const localId = (await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('Engineer');

    // The app edits the job title and pushes it.
    now = new Date('2016-10-04T10:00:00Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
    const batch = h.connec.batch.bind(h.connec);
    const set = h.app.contacts.set.bind(h.app.contacts);
    let pushDone: () => void = () => {};
    const pushed = new Promise<void>((resolve) => {
      pushDone = resolve;
    });
    let reached: () => void = () => {};
    const stepReached = new Promise<void>((resolve) => {
      reached = resolve;
    });
    if (answerAfter === 'failure recorded') {
      // The inbound failure is recorded on the id map only once the push has recorded its answer.
      const update = h.storage.idMaps.update.bind(h.storage.idMaps);
      h.storage.idMaps.update = async (scope, key, patch: IdMapPatch) => {
        if (patch.lastError && !patch.lastError.code.startsWith('http_')) {
          reached();
          await pushed;
        }
        return update(scope, key, patch);
      };
    } else {
      // The worker releases the batch's record locks once the push has recorded its answer.
      const releaseMany = h.storage.locks.releaseMany.bind(h.storage.locks);
      h.storage.locks.releaseMany = async (keys, owner) => {
        reached();
        await pushed;
        return releaseMany(keys, owner);
      };
    }
    let draining: Promise<void> = Promise.resolve();
    h.connec.batch = async (ops) => {
      h.connec.batch = batch;
      // Before Connec! applies the push: another app renames Jane, the worker writes it in the
      // app, and local.update throws after its write committed.
      const other = h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' });
      h.app.contacts.set = (key, value) => {
        h.app.contacts.set = set;
        set(key, value);
        throw new Error('app DB: connection lost after commit');
      };
      await h.notify({ people: [other] });
      draining = h.drain(1);
      await stepReached;
      return batch(ops);
    };
    const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)!, firstName: 'Jane', jobTitle: 'CTO' } });
    pushDone();
    await draining;
    expect(result.status).toBe('pushed');
    const held = h.connec.find(GROUP, 'people', 'p9');
    expect(held).toMatchObject({ first_name: 'Jane', job_title: 'CTO' });

    // The failed job is retried and Connec! notifies the push (its echo).
    now = new Date('2016-10-04T10:05:00Z');
    await h.notify({ people: [{ ...held, id: [C('p9'), A(localId)] }] });
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
    // Both sides hold the same version.
    expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Jane', jobTitle: 'CTO' });
  }
}
