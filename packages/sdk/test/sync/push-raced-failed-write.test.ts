/**
 * A push raced by an inbound write of the same record that failed after its write committed
 * (found by the sync model test, seed 110). The app edits a contact and pushes it; while the
 * push is on its way, another app's edit of that person is notified and the worker writes it
 * in the app, but `local.update` throws after the write landed (the connection dropped on its
 * answer). Connec! then applies the push. The app's row holds the other app's version, Connec!
 * the pushed one: the push must not be taken as agreed, so that its echo writes Connec!'s
 * version in the app. Taken as agreed, the echo was skipped, the failed job's retry was stale
 * (older than the push), and the app kept the overwritten version for good.
 */
import { describe, expect, it } from 'vitest';
import { A, C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

describe('a push raced by an inbound write that failed after committing', () => {
  it('is not taken as agreed: its echo writes the pushed version in the app', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, contactConflict: 'connec-wins' });
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
      await h.drain(1);
      expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });
      return batch(ops);
    };
    const pushed = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)!, firstName: 'Jane', jobTitle: 'CTO' } });
    expect(pushed.status).toBe('pushed');
    // Connec! holds the push (it overwrote the other app's edit).
    const held = h.connec.find(GROUP, 'people', 'p9');
    expect(held).toMatchObject({ first_name: 'Jane', job_title: 'CTO' });

    // The failed job is retried and Connec! notifies the push (its echo).
    now = new Date('2016-10-04T10:05:00Z');
    await h.notify({ people: [{ ...held, id: [C('p9'), A(localId)] }] });
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
    // Both sides hold the same version.
    expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Jane', jobTitle: 'CTO' });
  });
});
