/**
 * A record an import or poll hands to the inbox (a per-record failure, a missing reference) is
 * retried there even when a job of the same content already finished without applying it: the
 * notification job skipped while the group's sync was off, or skipped as older than
 * `importSince` before a full import. A record read again while its job still waits is not
 * queued twice.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

/** The app's next create of a contact throws (the database dropped its connection once). */
function failNextContactCreate(h: Harness): void {
  const create = h.app.create.bind(h.app);
  let fail = true;
  h.app.create = ((table, prefix, data, key) => {
    if (fail && prefix === 'per') {
      fail = false;
      throw new Error('database connection reset');
    }
    return create(table, prefix, data, key);
  }) as typeof h.app.create;
}

const recordJobs = (h: Harness) => h.storage.jobs.counts({ type: JobTypes.connecRecord });
const lastNames = (h: Harness) => [...h.app.contacts.values()].map((c) => c.lastName);

describe('records handed to the inbox by a poll or an import', () => {
  it('a poll after the sync is switched back on retries a record whose notification was skipped while it was off', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    h.connec.setClock(new Date().toISOString());

    // Switched off: the notification's job ends done, skipped as `disabled`.
    await h.sync.api.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (s) => ({ ...s, sync: { enabled: false } }) });
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    expect(await (await h.notify({ people: [person] })).json()).toMatchObject({ stored: 1 });
    await h.drain();
    expect(await recordJobs(h)).toMatchObject({ pending: 0, done: 1 });
    expect(h.app.contacts.size).toBe(0);

    // Switched on: the poll reads the same version, and the app's create fails once.
    await h.sync.api.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (s) => ({ ...s, sync: { enabled: true } }) });
    failNextContactCreate(h);
    const report = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.contacts).toMatchObject({ fetched: 1, created: 0, failed: 1, deferred: 1 });
    expect(report.failures).toMatchObject([{ entity: 'contacts', connecId: 'p1', message: 'database connection reset' }]);
    expect(await recordJobs(h)).toMatchObject({ pending: 1, done: 1 });

    await h.drain();
    expect(lastNames(h)).toEqual(['Doe']);
    expect(await recordJobs(h)).toMatchObject({ pending: 0, done: 2, dead: 0 });
  });

  it('a full import retries a record whose notification was skipped as older than importSince', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { importSince: '2020-01-01T00:00:00Z' } });
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    // Created in 2016: the notification's job ends done, skipped as `before_import_since`.
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Old', last_name: 'Timer' }, 'p1');
    await h.notify({ people: [person] });
    await h.drain();
    expect(h.app.contacts.size).toBe(0);

    // A full import applies it whatever importSince says; its create fails once.
    failNextContactCreate(h);
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(report.entities.contacts).toMatchObject({ fetched: 1, failed: 1, deferred: 1 });
    expect(await recordJobs(h)).toMatchObject({ pending: 1, done: 1 });

    // Its job keeps ignoring importSince when it runs.
    await h.drain();
    expect(lastNames(h)).toEqual(['Timer']);
  });

  it('a record read again while its job still waits in the inbox is not queued a second time', async () => {
    const h = await createHarness({ sync: { fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    h.connec.setClock(new Date().toISOString());
    // Its organization never arrives: the person is parked.
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', organization_id: [C('o-missing')] }, 'p1');

    const first = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(first.entities.contacts).toMatchObject({ fetched: 1, deferred: 1 });
    // The next poll re-reads it (its overlap): the job already waiting holds it.
    const second = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(second.entities.contacts).toMatchObject({ fetched: 1, deferred: 1 });
    expect(await recordJobs(h)).toMatchObject({ pending: 1, running: 0, done: 0, dead: 0 });
  });
});
