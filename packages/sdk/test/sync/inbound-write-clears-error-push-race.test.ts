/**
 * An inbound write that lands clears the error its map held when the job read it (a failed
 * earlier attempt's). It awaits the app's `local.update` first: a push of the same record from
 * the app can fail in that window (Connec! answers 503, after applying the op or not). Its
 * failure is what makes the next push of the agreed content go out instead of being answered
 * `unchanged` (see retried-recheck-poison-mark-push-race.test.ts): the write must not clear it.
 */
import { describe, expect, it } from 'vitest';
import { type Contact, createHarness, GROUP, linkedJane, loseAnswers, provisionGroup, TENANT } from './harness.js';

describe('an inbound write racing a failed push of the record', () => {
  it('keeps the push failure: the app setting the written content back pushes it again', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, sync: { maxAttempts: 1 } });
    const { app, connec, connector, storage, sync, drain, notify } = h;
    const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
    await provisionGroup(storage);
    const { localId } = await linkedJane(h);
    const push = (record: Contact) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...record } });

    // Connec! applies the next op, then its answer is lost behind a 503.
    const lost = loseAnswers(connec);

    // Another app changes the title; the app's first write of it fails (recorded on the map).
    const contacts = connector.entity('contacts') as { inbound: { local: { update: (id: string, data: unknown, ctx: unknown) => Promise<unknown> } } };
    const update = contacts.inbound.local.update;
    let pushed: string | undefined;
    contacts.inbound.local.update = async () => {
      throw new Error('app database unavailable');
    };
    await notify({ people: [connec.edit(GROUP, 'people', 'p9', { job_title: 'Manager' })] });
    await drain();
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.message).toBe('app database unavailable');

    // Retried, the write lands; before it returns, the app's user changes the title and the app
    // pushes: Connec! applies it, the answer is a 503.
    contacts.inbound.local.update = async (id, data, ctx) => {
      const result = await update(id, data, ctx);
      now = new Date('2016-10-04T10:00:00Z');
      app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
      lost.count = 1;
      pushed = (await push(app.contacts.get(localId)!)).status;
      return result;
    };
    const [dead] = await sync.api.deadLetters({ tenant: TENANT });
    expect(await sync.api.retryDeadLetter(dead?.jobId ?? '')).toBe(true);
    await drain();
    expect(pushed).toBe('failed');
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'CTO' });
    // The failed push is still on record: Connec! may hold what it sent.
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.code).toBe('http_503');

    // The user sets the title back: the version both sides last agreed on is sent.
    now = new Date('2016-10-04T11:00:00Z');
    app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle: 'Manager', updatedAt: now });
    expect((await push(app.contacts.get(localId)!)).status).toBe('pushed');
    expect(connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'Manager' });
    expect((await storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError).toBeNull();
  });
});
