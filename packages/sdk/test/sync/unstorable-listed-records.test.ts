/**
 * A record read from Connec! whose ids cannot key storage (an id over 255 characters, one
 * holding an unpaired UTF-16 surrogate or a NUL) fails on its own, as the notification route
 * refuses it: the import or poll applies the rest of its page, lists it among the report's
 * failures and goes on. It gets no job (its id cannot key one). A record with a usable id but
 * an unusable reference is read again from Connec! by the inbox, like one that does not match
 * its schema, until it is dead-lettered.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

const LONG_ID = 'x'.repeat(300);
const SURROGATE_ID = 'o-\uD800-bad';
const NUL_ID = 'o-\u0000-bad';

/** Seeds a page of organizations, three of them with unusable ids; returns the newest one's `updated_at`. */
function seedPage(h: Harness): unknown {
  h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
  h.connec.seed(GROUP, 'organizations', { name: 'Long' }, LONG_ID);
  h.connec.seed(GROUP, 'organizations', { name: 'Surrogate' }, SURROGATE_ID);
  h.connec.seed(GROUP, 'organizations', { name: 'Nul' }, NUL_ID);
  return h.connec.seed(GROUP, 'organizations', { name: 'Globex' }, 'o2').updated_at;
}

const expectedFailures = [
  { entity: 'companies', direction: 'inbound', connecId: null, message: 'A "organizations" record Connec! sent cannot be stored: id is longer than 255 characters' },
  { entity: 'companies', direction: 'inbound', connecId: null, message: 'A "organizations" record Connec! sent cannot be stored: contains a NUL character or an unpaired surrogate' },
  { entity: 'companies', direction: 'inbound', connecId: null, message: 'A "organizations" record Connec! sent cannot be stored: contains a NUL character or an unpaired surrogate' },
];

describe('listed records whose ids cannot be stored', () => {
  it('fail on their own in an import: the rest of the page is applied and the import completes', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    seedPage(h);

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    expect(report.entities.companies).toMatchObject({ fetched: 5, created: 2, failed: 3, deferred: 0, linked: 2 });
    expect(report.failures).toMatchObject(expectedFailures);
    expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['Acme', 'Globex']);
    expect(await h.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: 'companies', kind: 'import' })).toMatchObject({ complete: true, position: 5 });
    // No job for them, and no id map.
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, done: 0, dead: 0 });
    expect(await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId: LONG_ID })).toBeNull();
  });

  it('fail on their own in a poll, which moves its cursor past them', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    h.connec.setClock(new Date(Date.now() + 1_000).toISOString());
    const newest = seedPage(h);

    const report = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    expect(report.entities.companies).toMatchObject({ fetched: 5, created: 2, failed: 3, deferred: 0 });
    expect(report.failures).toMatchObject(expectedFailures);
    expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['Acme', 'Globex']);
    const cursor = await h.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: 'companies', kind: 'poll' });
    expect(cursor?.data.since).toBe(newest);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0 });
  });

  it('a record referencing an id that cannot be stored is read again by the inbox until dead-lettered', async () => {
    const h = await createHarness({ sync: { maxAttempts: 2 } });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Odd', organization_id: [C(LONG_ID)] }, 'p1');
    h.connec.seed(GROUP, 'people', { first_name: 'Bob', last_name: 'Fine' }, 'p2');

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    expect(report.entities.contacts).toMatchObject({ fetched: 2, created: 1, failed: 1, deferred: 1 });
    expect(report.failures).toMatchObject([
      { entity: 'contacts', connecId: 'p1', message: 'A "people" record Connec! sent cannot be stored: organization_id is longer than 255 characters' },
    ]);
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Fine']);

    await h.drain();
    const dead = await h.sync.api.deadLetters();
    expect(dead.map((d) => ({ entity: d.entity, connecId: d.connecId, message: d.error?.message }))).toEqual([
      { entity: 'contacts', connecId: 'p1', message: 'A "people" record Connec! sent cannot be stored: organization_id is longer than 255 characters' },
    ]);
    expect(h.connec.fetchCalls).toContainEqual({ collection: 'people', id: 'p1' });
  });
});
