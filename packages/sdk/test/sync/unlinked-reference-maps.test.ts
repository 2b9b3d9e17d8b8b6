/**
 * The id map a push records for a record it names by our id alone (its target's push skipped,
 * or not made yet) vouches for that id in references read back, and for nothing else: it is
 * no create of ours in flight. A record of the target carrying that id (written by another app
 * of the group, which can put any entry in an id array) is not linked to the target's local
 * row through it, nor is a sibling entity of the same collection kept from linking its own
 * record carrying the same id (separate id sequences).
 */
import { ConnectionError, type ConnecPortBatchOp, createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, type Contact, createHarness, drainer, GROUP, type Harness, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const env = { group_id: GROUP, channel_id: ORG_UID };
const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

const setCompaniesOutbound = (h: Harness, on: boolean) =>
  h.sync.api.updateGroupSettings({
    tenant: TENANT,
    groupId: GROUP,
    update: (settings) => ({ ...settings, sync: { entities: { companies: { outbound: on } } } }) as typeof settings,
  });

describe('a reference to a company whose push was skipped', () => {
  it("does not let a record another app writes with the company's id of ours overwrite that company", async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await setCompaniesOutbound(h, false);
    // A company the app keeps to itself (its outbound switch off), named by a contact it pushes.
    h.app.companies.set('org-acme', { id: 'org-acme', name: 'Acme', code: 'A-1', updatedAt: new Date(0) });
    const contact: Contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: 'org-acme', updatedAt: new Date(0) };
    h.app.contacts.set(contact.id, contact);
    expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact })).toMatchObject({ status: 'pushed' });

    // Another app of the group writes an organization carrying our id for that company.
    await h.notify({ organizations: [{ id: [C('o-evil'), A('org-acme')], name: 'PWNED', code: 'X', ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect(h.app.companies.get('org-acme')).toMatchObject({ name: 'Acme', code: 'A-1' });
    expect((await h.storage.idMaps.find(scope('companies'), { connecId: 'o-evil' }))?.localId).not.toBe('org-acme');

    // The contact read back still names the company (what the reference map is for).
    const [person] = h.connec.all(GROUP, 'people');
    await h.notify({ people: [{ ...person, job_title: 'CTO', ...env, updated_at: '2099-01-01T00:00:00Z' }] });
    await h.drain();
    expect(h.app.contacts.get('per-1')).toMatchObject({ jobTitle: 'CTO', companyId: 'org-acme' });
  });

  it('once the company is pushed (its answer lost), its read-back is linked through our id', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await setCompaniesOutbound(h, false);
    const company = { id: 'org-acme', name: 'Acme', code: null, updatedAt: new Date(0) };
    h.app.companies.set(company.id, company);
    const contact: Contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: 'org-acme', updatedAt: new Date(0) };
    h.app.contacts.set(contact.id, contact);
    expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact })).toMatchObject({ status: 'pushed' });
    await setCompaniesOutbound(h, true);
    const batch = h.connec.batch.bind(h.connec);
    h.connec.batch = async (ops: ConnecPortBatchOp[]) => {
      await batch(ops);
      throw new ConnectionError('timed out', { service: 'connec', failure: 'timeout', method: 'POST', url: '/batch' });
    };
    expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: company })).toMatchObject({ status: 'failed' });
    h.connec.batch = batch;
    const [org] = h.connec.all(GROUP, 'organizations');
    expect(org?.id).toContainEqual(A('org-acme'));
    await h.notify({ organizations: [{ ...org, ...env }] });
    await h.drain();
    expect([...h.app.companies.keys()]).toEqual(['org-acme']);
    const connecId = ((org?.id ?? []) as { id: string; provider: string }[]).find((e) => e.provider === 'connec')?.id;
    expect((await h.storage.idMaps.find(scope('companies'), { localId: 'org-acme' }))?.connecId).toBe(connecId);
  });
});

describe('two entities on one collection with separate id sequences', () => {
  it("a reference to customer 1 does not keep lead 1's own record, read back after its answer was lost, from being linked to it", async () => {
    type Row = { id: string; name: string };
    const tables = { leads: new Map<string, Row>(), customers: new Map<string, Row>() };
    // Row 1 of each table exists already (set below).
    const seq = { leads: 1, customers: 1 };
    const person = (name: 'leads' | 'customers') =>
      defineEntity({
        name,
        connec: 'people',
        direction: 'both',
        filter: (p: Record<string, unknown>) => (name === 'customers') === (p.is_customer === true),
        toLocal: (p: Record<string, unknown>) => ({ id: '', name: String(p.first_name ?? '') }),
        toConnec: (row: Row) => ({ first_name: row.name, is_customer: name === 'customers' }),
        localId: (row: Row) => row.id,
        local: {
          create: async (data: Row) => {
            const id = String(++seq[name]);
            tables[name].set(id, { ...data, id });
            return { id };
          },
          update: async (id: string, data: Row) => {
            const row = tables[name].get(id);
            if (!row) return { gone: true as const };
            tables[name].set(id, { ...row, name: data.name });
            return undefined;
          },
        },
      });
    type Order = { id: string; customerId: string | null };
    const orders = defineEntity({
      name: 'orders',
      connec: 'sales_orders',
      direction: 'outbound',
      references: { person_id: 'customers' },
      toConnec: (o: Order) => ({ person_id: o.customerId }),
      localId: (o: Order) => o.id,
    });
    const connec = new FakeConnec(ORG_UID);
    const storage = memoryAdapter();
    const runtime = testRuntime(storage);
    const module = createSyncModule(runtime, {
      connector: defineConnector({ entities: [person('leads'), person('customers'), orders] }),
      sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, fetchMissingReferences: false },
    });
    const drain = drainer(createWorker(runtime, module.jobs ?? {}), storage);
    const notify = notifier(module);
    await provisionGroup(storage);
    tables.customers.set('1', { id: '1', name: 'Carl' });
    tables.leads.set('1', { id: '1', name: 'Lena' });
    // An order naming customer 1 before customer 1 is pushed.
    expect(await module.api.push({ tenant: TENANT, groupId: GROUP, entity: 'orders', record: { id: 'so-1', customerId: '1' } })).toMatchObject({ status: 'pushed' });
    // Lead 1 pushed, Connec!'s answer lost.
    const batch = connec.batch.bind(connec);
    connec.batch = async (ops: ConnecPortBatchOp[]) => {
      await batch(ops);
      throw new ConnectionError('timed out', { service: 'connec', failure: 'timeout', method: 'POST', url: '/batch' });
    };
    expect(await module.api.push({ tenant: TENANT, groupId: GROUP, entity: 'leads', record: tables.leads.get('1') })).toMatchObject({ status: 'failed' });
    connec.batch = batch;
    const lead = connec.all(GROUP, 'people').find((p) => p.first_name === 'Lena');
    expect(lead?.id).toContainEqual(A('1'));
    // Read back: linked to lead 1, not created a second time.
    await notify({ people: [{ ...lead, ...env }] });
    await drain();
    expect([...tables.leads.keys()]).toEqual(['1']);
    const connecId = ((lead?.id ?? []) as { id: string; provider: string }[]).find((e) => e.provider === 'connec')?.id;
    expect((await storage.idMaps.find(scope('leads'), { localId: '1' }))?.connecId).toBe(connecId);
  });
});
