/**
 * A contact naming a company Connec! does not know yet (the company's push answered `skipped`:
 * the group's outbound switch for companies is off), pushed with its answer lost, then read
 * back by a poll. The reference comes back carrying only our id (or our id and the Connec! id
 * of the placeholder Connec! reserved for it). The push that sent our id for the company
 * vouches for it (an id map), so the reference resolves to the company: the version, the
 * echo of our push, must not empty the contact's companyId in the app.
 * Found by the seeded sync model (seed 162, 120 steps).
 */
import { ConnectionError, type ConnecPortBatchOp } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { A, C, type Contact, createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

const setCompaniesOutbound = (h: Harness, on: boolean) =>
  h.sync.api.updateGroupSettings({
    tenant: TENANT,
    groupId: GROUP,
    update: (settings) => ({ ...settings, sync: { entities: { companies: { outbound: on } } } }) as typeof settings,
  });

/** The company (push skipped) and a contact naming it, whose push Connec! applies but whose answer is lost. */
async function contactWithLostAnswer(h: Harness): Promise<{ contact: Contact; connecId: string }> {
  await provisionGroup(h.storage);
  await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
  // Connec!'s writes from now on are stamped after the import began (the poll reads them).
  h.connec.setClock('2099-01-01T00:00:00.000Z');
  await setCompaniesOutbound(h, false);
  const company = { id: 'org-1', name: 'Acme', code: null, updatedAt: new Date() };
  h.app.companies.set(company.id, company);
  expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: company })).toMatchObject({ status: 'skipped' });
  const contact: Contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Engineer', email: null, companyId: 'org-1', updatedAt: new Date('2016-10-03T00:00:00Z') };
  h.app.contacts.set(contact.id, contact);
  const batch = h.connec.batch.bind(h.connec);
  h.connec.batch = async (ops: ConnecPortBatchOp[]) => {
    await batch(ops);
    throw new ConnectionError('timed out', { service: 'connec', failure: 'timeout', method: 'POST', url: '/batch' });
  };
  expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact })).toMatchObject({ status: 'failed' });
  h.connec.batch = batch;
  const [person] = h.connec.all(GROUP, 'people');
  if (!person) throw new Error('Connec! did not apply the contact');
  expect(person.organization_id).toEqual([A('org-1')]);
  const connecId = (person.id as { id: string; provider: string }[]).find((e) => e.provider === 'connec')?.id ?? '';
  return { contact, connecId };
}

describe('a contact naming a company whose push was skipped, its own push answer lost', () => {
  it('read back with the reference carrying only our id, keeps its companyId in the app', async () => {
    const h = await createHarness();
    const { contact } = await contactWithLostAnswer(h);

    const poll = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(poll.status).toBe('complete');
    await h.drain();
    expect(h.app.contacts.get('per-1')).toEqual(contact);

    // Once the switch is back on, the company is pushed and both sides name it.
    await setCompaniesOutbound(h, true);
    await h.sync.api.pushChanged({ tenant: TENANT, groupId: GROUP });
    expect(await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { localId: 'org-1' })).toMatchObject({ connecId: expect.any(String) });
    expect(h.app.contacts.get('per-1')?.companyId).toBe('org-1');
  });

  it('read back with the reference naming the placeholder Connec! reserved for our id, keeps its companyId and is not parked', async () => {
    const h = await createHarness();
    const { contact, connecId } = await contactWithLostAnswer(h);
    // What real Connec! stores for a reference by our id alone: a reserved Connec! id that
    // carries ours (no record behind it until the company is pushed).
    Object.assign(h.connec.find(GROUP, 'people', connecId) ?? {}, { organization_id: [C('placeholder-1'), A('org-1')] });

    const poll = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(poll.status).toBe('complete');
    await h.drain();
    expect(h.app.contacts.get('per-1')).toEqual(contact);
    // Nothing waits on the placeholder, and nothing ends as a dead letter.
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'per-1' });
    expect(map).toMatchObject({ connecId, lastError: null });
  });

  it('a version naming another company by our id alone, without a map, is not an echo: it is applied (reference empty)', async () => {
    const h = await createHarness();
    const { connecId } = await contactWithLostAnswer(h);
    // Another app moves the contact to a company named by an id of ours no map vouches for.
    h.connec.edit(GROUP, 'people', connecId, { organization_id: [A('org-99')] });

    await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    await h.drain();
    expect(h.app.contacts.get('per-1')?.companyId).toBeNull();
  });
});
