/**
 * The `poisoned` mark a re-check clears (see retried-recheck-poison-mark.test.ts) is read
 * before the check awaits the app's `local.get`. A push of the same record from the app's own
 * code can fail in that window (Connec! answers 503, after applying the op or not): its failure
 * replaces the mark on the map, and is what makes the next push of the agreed content go out
 * instead of being answered `unchanged`. Clearing the mark must not clear that failure.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { A, C, type Contact, crashRuns, createHarness, GROUP, linkedJane, loseAnswers, provisionGroup, TENANT } from './harness.js';

describe('a poisoned record job whose check races a failed push of the record', () => {
  it('keeps the push failure: the app setting the agreed content back pushes it again', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, sync: { maxAttempts: 2 } });
    const { app, connec, connector, storage, sync, drain, notify } = h;
    const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
    await provisionGroup(storage);
    const { localId, seeded } = await linkedJane(h);
    const push = (record: Contact) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...record } });

    // Connec! applies the next op, then its answer is lost behind a 503.
    const lost = loseAnswers(connec);

    // The version is delivered again (with the app's id linked); each worker that claims its
    // job dies before writing anything.
    await notify({ people: [{ ...seeded, id: [C('p9'), A(localId)] }] });
    await crashRuns(storage, JobTypes.connecRecord, 2, () => {
      now = new Date(now.getTime() + 2_000);
    });
    await drain();
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.code).toBe('poisoned');

    // The operator requeues it. While its check reads the record (the agreed content), the
    // app's user changes the title and the app pushes: Connec! applies it, the answer is a 503.
    const contacts = connector.entity('contacts') as { inbound: { local: { get: (id: string, ctx: unknown) => Promise<Contact | null> } } };
    const get = contacts.inbound.local.get;
    let pushed: string | undefined;
    contacts.inbound.local.get = async (id, ctx) => {
      const held = await get(id, ctx);
      if (id === localId && pushed === undefined && held !== null) {
        now = new Date('2016-10-04T10:00:00Z');
        app.contacts.set(localId, { ...held, jobTitle: 'CTO', updatedAt: now });
        lost.count = 1;
        pushed = (await push(app.contacts.get(localId)!)).status;
      }
      return held;
    };
    const [deadJob] = await storage.jobs.listDead({});
    expect(await storage.jobs.requeue(deadJob!.id)).toBe(true);
    await drain();
    expect(pushed).toBe('failed');
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'CTO' });
    // The failed push is still on record: Connec! may hold what it sent.
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.code).toBe('http_503');

    // The user sets the title back: the push of the content both sides last agreed on is sent.
    now = new Date('2016-10-04T11:00:00Z');
    app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle: 'Engineer', updatedAt: now });
    expect((await push(app.contacts.get(localId)!)).status).toBe('pushed');
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'Engineer' });
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError).toBeNull();
  });
});
