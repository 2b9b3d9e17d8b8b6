/**
 * Connec! may answer a batch op with a record envelope holding little more than the record's
 * id array (CONNECTORS §A7's example: `{status: 201, body: {people: {id: [C(new), A(per-60)]}}}`).
 * Such an answer links the Connec! id, but it says nothing of the content Connec! holds: it must
 * not be taken as that content (its echo then was not recognised and written over the app's
 * record), nor written in the app as a merged record's content.
 */
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

/** Connec! applies every op but answers each with the record's id only. */
function answerIdsOnly(h: Harness): void {
  const batch = h.connec.batch.bind(h.connec);
  h.connec.batch = async (ops) => (await batch(ops)).map((r) => (r.record ? { ...r, record: { id: r.record.id } } : r));
}

describe('a push Connec! answers with the record id only', () => {
  it('links the Connec! id, and its echo is not written in the app', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.contacts.set('per-60', { id: 'per-60', firstName: 'Jane', lastName: 'Doe', jobTitle: 'CEO', email: null, companyId: null, updatedAt: new Date(0) });
    answerIdsOnly(h);
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.app.contacts.get('per-60')] });
    expect(pushed).toMatchObject({ status: 'pushed', httpStatus: 201 });
    const cid = pushed?.connecId ?? '';
    expect(h.connec.find(GROUP, 'people', cid)).toBeDefined();
    const echo = h.connec.edit(GROUP, 'people', cid, { code: 'PE9' });
    await h.notify({ people: [echo] });
    await h.drain();
    expect(h.app.writes).toEqual({ create: 0, update: 0 });
    expect(h.sync.api.counters().skippedEcho).toBe(1);
  });

  it('with connec-wins, a local edit made after the push is not overwritten by its echo', async () => {
    const h = await createHarness({ contactConflict: 'connec-wins' });
    await provisionGroup(h.storage);
    h.app.contacts.set('per-60', { id: 'per-60', firstName: 'Jane', lastName: 'Doe', jobTitle: 'CEO', email: null, companyId: null, updatedAt: new Date(0) });
    answerIdsOnly(h);
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.app.contacts.get('per-60')] });
    const cid = pushed?.connecId ?? '';
    // The user edits the record after the push, before its echo is delivered.
    h.app.contacts.set('per-60', { ...(h.app.contacts.get('per-60') as NonNullable<ReturnType<typeof h.app.contacts.get>>), jobTitle: 'CTO', updatedAt: new Date() });
    const echo = h.connec.edit(GROUP, 'people', cid, { code: 'PE9' });
    await h.notify({ people: [echo] });
    await h.drain();
    expect(h.app.contacts.get('per-60')?.jobTitle).toBe('CTO');
  });

  it('a create Connec! merged into a record it holds (200) does not write the id-only answer in the app', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    // Matched on `name` (the companies' matching field): the push is merged into it.
    h.connec.seed(GROUP, 'organizations', { name: 'Acme', industry: 'Retail' });
    h.app.companies.set('org-1', { id: 'org-1', name: 'Acme', code: null, updatedAt: new Date(0) });
    answerIdsOnly(h);
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'companies', records: [h.app.companies.get('org-1')] });
    expect(pushed).toMatchObject({ status: 'pushed', httpStatus: 200 });
    await h.drain();
    expect(h.app.companies.get('org-1')?.name).toBe('Acme');
  });
});
