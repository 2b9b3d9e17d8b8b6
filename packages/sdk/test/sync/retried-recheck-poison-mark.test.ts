/**
 * The `poisoned` mark a record job dead-lettered unrun leaves on the id map makes the record's
 * jobs re-check a version the map would skip (see retried-recheck-gaps.test.ts). Once a check
 * finds the app holding the content both sides agree on, the dead attempt wrote nothing that
 * needs repair: the mark must not stay, or a much later first-attempt job (an old notification
 * Connec! delivers again) re-writes Connec!'s version over an edit the app's user made since.
 */
import { createSyncModule, JobTypes, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, buildConnector, C, crashRuns, createHarness, drainer, GROUP, LocalApp, notifier, ORG_UID, provisionGroup, TENANT, testRuntime, linkedJane } from './harness.js';

describe('a poisoned record job whose check finds the app in sync', () => {
  it('clears the mark: a later old notification does not overwrite a local edit made since', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const h = await createHarness({ clock, contactConflict: 'connec-wins', sync: { maxAttempts: 2 } });
    await provisionGroup(h.storage);
    const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
    const { localId, seeded } = await linkedJane(h);

    // The app's user edits the record; the app pushes it, and its echo is skipped.
    now = new Date('2016-10-04T10:00:00Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'CTO', updatedAt: now });
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } })).status).toBe('pushed');
    const echo = { ...h.connec.find(GROUP, 'people', 'p9')!, id: [C('p9')] };
    await h.notify({ people: [echo] });
    await h.drain();

    // The echo is delivered again (with the app's id linked); each worker that claims its job
    // dies before writing anything.
    await h.notify({ people: [{ ...echo, id: [C('p9'), A(localId)] }] });
    await crashRuns(h.storage, JobTypes.connecRecord, 2, () => {
      now = new Date(now.getTime() + 2_000);
    });
    await h.drain();
    expect((await h.storage.idMaps.find(ids, { connecId: 'p9' }))?.lastError?.code).toBe('poisoned');
    // The operator requeues it: the check finds the app holding the agreed content.
    const [deadJob] = await h.storage.jobs.listDead({});
    expect(await h.storage.jobs.requeue(deadJob!.id)).toBe(true);
    await h.drain();
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(h.app.contacts.get(localId)?.jobTitle).toBe('CTO');

    // Later, the app's user sets the title back; the app has not pushed it yet. Connec!
    // delivers its first version again (a webhook retried on its side).
    now = new Date('2016-10-04T11:00:00Z');
    h.app.contacts.set(localId, { ...h.app.contacts.get(localId)!, jobTitle: 'Engineer', updatedAt: now });
    const writes = h.app.writes.update;
    await h.notify({ people: [{ ...seeded, id: [C('p9'), A(localId)] }] });
    await h.drain();
    expect({ jobTitle: h.app.contacts.get(localId)?.jobTitle, writes: h.app.writes.update - writes }).toEqual({ jobTitle: 'Engineer', writes: 0 });

    // The app pushes the edit: both sides hold it.
    expect((await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...h.app.contacts.get(localId)! } })).status).toBe('pushed');
    expect(h.connec.find(GROUP, 'people', 'p9')).toMatchObject({ job_title: 'Engineer' });
  });
});

describe('a poisoned record job of an app that cannot be read (no local.get)', () => {
  it('its requeue skips a stale version as before: a local edit is kept', async () => {
    let now = new Date('2016-10-04T09:00:00Z');
    const clock = () => now;
    const app = new LocalApp();
    const connec = new FakeConnec(ORG_UID);
    const storage = memoryAdapter({ clock });
    const runtime = testRuntime(storage, clock);
    const connector = buildConnector(app);
    const contacts = connector.entity('contacts') as { inbound?: { local: { get?: unknown } } } | undefined;
    if (contacts?.inbound) delete contacts.inbound.local.get;
    const sync = createSyncModule(runtime, { connector, sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 2 } });
    const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
    const notify = notifier(sync);
    await provisionGroup(storage);
    connec.setClock('2016-10-04T08:59:59Z');
    const seeded = connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', job_title: 'Engineer' }, 'p9');
    await notify({ people: [seeded] });
    await drain();
    const localId = (await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.localId ?? '';

    // Another app renames Jane, applied; then the first version is delivered again and every
    // worker that claims its job dies.
    now = new Date('2016-10-04T09:30:00Z');
    await notify({ people: [connec.edit(GROUP, 'people', 'p9', { first_name: 'Janet' })] });
    await drain();
    await notify({ people: [{ ...seeded, id: [C('p9'), A(localId)] }] });
    await crashRuns(storage, JobTypes.connecRecord, 2, () => {
      now = new Date(now.getTime() + 2_000);
    });
    await drain();
    expect((await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' }))?.lastError?.code).toBe('poisoned');

    // The app's user edits the record (not pushed yet); the operator requeues the dead letter.
    app.contacts.set(localId, { ...app.contacts.get(localId)!, jobTitle: 'VP Sales' });
    const [deadJob] = await storage.jobs.listDead({});
    expect(await storage.jobs.requeue(deadJob!.id)).toBe(true);
    const writes = app.writes.update;
    await drain();
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect({ record: app.contacts.get(localId), writes: app.writes.update - writes }).toMatchObject({ record: { firstName: 'Janet', jobTitle: 'VP Sales' }, writes: 0 });
  });
});
