/**
 * A push raced by an inbound write of the same record that failed after committing (see
 * push-raced-failed-write.test.ts), when the app's own error carries a code shaped like a push
 * failure's: its `local.update` calls some HTTP API and rethrows that API's `http_503`. The
 * failure was read as a failed push of the record (`isPushFailure`), so the push answered
 * meanwhile was taken as agreed: its echo was skipped and the app kept the overwritten version.
 */
import { describe, expect, it } from 'vitest';
import { A, C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

describe('a push raced by an inbound write that failed with an app error coded like a push failure', () => {
  for (const code of ['http_503', 'push_failed', 'mapper_error']) {
    it(`(${code}) is not taken as agreed: its echo writes the pushed version in the app`, async () => {
      let now = new Date('2016-10-04T09:00:00Z');
      const h = await createHarness({ clock: () => now, contactConflict: 'connec-wins' });
      await provisionGroup(h.storage);
      h.connec.setClock('2016-10-04T08:59:59Z');
      const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
      await h.notify({ people: [seeded] });
      await h.drain();
      const localId = (await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';

      now = new Date('2016-10-04T10:00:00Z');
      h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
      const batch = h.connec.batch.bind(h.connec);
      const set = h.app.contacts.set.bind(h.app.contacts);
      h.connec.batch = async (ops) => {
        h.connec.batch = batch;
        const other = h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' });
        h.app.contacts.set = (key, value) => {
          h.app.contacts.set = set;
          set(key, value);
          throw Object.assign(new Error('search index: 503 Service Unavailable'), { code });
        };
        await h.notify({ people: [other] });
        await h.drain(1);
        expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Janet', jobTitle: 'Engineer' });
        // Recorded as the app's failure, not as a failed push of the record.
        expect((await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.lastError?.code).toBe(`app_${code}`);
        return batch(ops);
      };
      const pushed = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)!, firstName: 'Jane', jobTitle: 'CTO' } });
      expect(pushed.status).toBe('pushed');
      const held = h.connec.find(GROUP, 'people', 'p9');
      expect(held).toMatchObject({ first_name: 'Jane', job_title: 'CTO' });

      now = new Date('2016-10-04T10:05:00Z');
      await h.notify({ people: [{ ...held, id: [C('p9'), A(localId)] }] });
      await h.drain();
      expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
      expect(h.app.contacts.get(localId)).toMatchObject({ firstName: 'Jane', jobTitle: 'CTO' });
    });
  }

  it('is no failed push: the unchanged record is not sent again over the version the retry will write', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, contactConflict: 'connec-wins' });
    await provisionGroup(h.storage);
    h.connec.setClock('2016-10-04T08:59:59Z');
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
    await h.notify({ people: [seeded] });
    await h.drain();
    const localId = (await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';

    // Another app renames Jane; the app's write of it fails (nothing written) with its own http_503.
    now = new Date('2016-10-04T10:00:00Z');
    const set = h.app.contacts.set.bind(h.app.contacts);
    h.app.contacts.set = () => {
      h.app.contacts.set = set;
      throw Object.assign(new Error('search index: 503 Service Unavailable'), { code: 'http_503' });
    };
    await h.notify({ people: [h.connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' })] });
    await h.drain(1);
    expect(h.app.contacts.get(localId)?.firstName).toBe('Jane');

    // The app saves the record unchanged: both sides agreed on it, nothing is sent.
    const pushed = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: h.app.contacts.get(localId)! });
    expect(pushed.status).toBe('unchanged');
    expect(h.connec.find(GROUP, 'people', 'p9')).toMatchObject({ first_name: 'Janet' });
    now = new Date('2016-10-04T10:05:00Z');
    await h.drain();
    expect(h.app.contacts.get(localId)?.firstName).toBe('Janet');
  });
});
