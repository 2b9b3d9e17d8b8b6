/**
 * Edges of the CONNECTORS §F scenarios found by replaying them: two filtered entities on one
 * collection, `importSince` with references and full imports, a clock-skewed app database
 * under `local-wins`, waking parked records when a reference is linked through our own id,
 * and references to records deleted in the app.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, type SyncEvent, type SyncModuleConfig } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, createHarness, GROUP, drainer, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

type AnyEntityDefinition = ReturnType<typeof defineEntity>;
const env = { group_id: GROUP, channel_id: ORG_UID };
const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

async function custom(entities: AnyEntityDefinition[], sync: SyncModuleConfig = {}) {
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter();
  const runtime = testRuntime(storage);
  const module = createSyncModule(runtime, { connector: defineConnector({ entities }), sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, ...sync } });
  const drain = drainer(createWorker(runtime, module.jobs ?? {}), storage);
  await provisionGroup(storage);
  const events: SyncEvent[] = [];
  module.api.on((e) => events.push(e));
  return { connec, storage, sync: module, drain, notify: notifier(module), events };
}

interface Row {
  id: string;
  name: string;
}

/** `leads` and `customers` on `people`, told apart by `is_customer`. */
function leadsAndCustomers(direction: 'both' | 'inbound') {
  const tables = { leads: new Map<string, Row>(), customers: new Map<string, Row>() };
  let n = 0;
  const make = (name: 'leads' | 'customers') =>
    defineEntity({
      name,
      connec: 'people',
      direction,
      filter: (p: Record<string, unknown>) => (name === 'customers') === (p.is_customer === true),
      toLocal: (p: Record<string, unknown>) => ({ id: '', name: String(p.first_name ?? '') }),
      ...(direction === 'both' ? { toConnec: (row: Row) => ({ first_name: row.name, is_customer: name === 'customers' }), localId: (row: Row) => row.id } : {}),
      local: {
        create: async (data: Row) => {
          const id = `${name}-${++n}`;
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
    } as never) as AnyEntityDefinition;
  return { tables, leads: make('leads'), customers: make('customers') };
}

describe('two filtered entities on one collection', () => {
  it('a lead that becomes a customer is created as a customer, not linked to the lead', async () => {
    const { tables, leads, customers } = leadsAndCustomers('both');
    const h = await custom([leads, customers]);
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', is_customer: false }, 'p1');
    await h.notify({ people: [{ ...h.connec.find(GROUP, 'people', 'p1'), ...env }] });
    await h.drain();
    expect([...tables.leads.keys()]).toEqual(['leads-1']);
    // Connec!'s id array now carries our id for the lead.
    expect(h.connec.find(GROUP, 'people', 'p1')?.id).toContainEqual(A('leads-1'));

    await h.notify({ people: [{ ...h.connec.edit(GROUP, 'people', 'p1', { is_customer: true }), ...env }] });
    await h.drain();
    expect([...tables.customers.values()]).toEqual([{ id: 'customers-2', name: 'Jane' }]);
    const map = await h.storage.idMaps.find(scope('customers'), { connecId: 'p1' });
    expect(map).toMatchObject({ localId: 'customers-2', tombstonedAt: null });
    expect(h.events.some((e) => e.type === 'record.skipped' && e.reason === 'tombstoned')).toBe(false);
  });

  it("a reference to customers is not resolved to a lead's id", async () => {
    const { tables, leads, customers } = leadsAndCustomers('inbound');
    const orders = new Map<string, { id: string; customerId: string | null }>();
    const ordersEntity = defineEntity({
      name: 'orders',
      connec: 'sales_orders',
      direction: 'inbound',
      references: { person_id: 'customers' },
      toLocal: (o: Record<string, unknown>) => ({ customerId: typeof o.person_id === 'string' ? o.person_id : null }),
      local: {
        create: async (data: { customerId: string | null }) => {
          const id = `so-${orders.size + 1}`;
          orders.set(id, { ...data, id });
          return { id };
        },
        update: async () => undefined,
      },
    }) as AnyEntityDefinition;
    const h = await custom([leads, customers, ordersEntity]);
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', is_customer: false }, 'p1');
    await h.notify({ people: [{ ...h.connec.find(GROUP, 'people', 'p1'), ...env }] });
    await h.drain();
    expect([...tables.leads.keys()]).toEqual(['leads-1']);
    const personIds = h.connec.find(GROUP, 'people', 'p1')?.id;
    h.connec.seed(GROUP, 'sales_orders', { person_id: personIds } as never, 'so1');
    await h.notify({ sales_orders: [{ ...h.connec.find(GROUP, 'sales_orders', 'so1'), ...env }] });
    await h.drain();
    expect([...orders.values()]).toEqual([{ id: 'so-1', customerId: null }]);
  });
});

describe('importSince', () => {
  it('a record referenced by a new one is fetched and applied even when older than importSince', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { importSince: '2016-07-28T00:00:00Z' } });
    h.connec.seed(GROUP, 'organizations', { name: 'Old Co', created_at: '2015-01-01T00:00:00Z', updated_at: '2015-01-01T00:00:00Z' }, 'o-old');
    h.connec.setClock('2016-10-04T00:00:00Z');
    const person = h.connec.seed(GROUP, 'people', { first_name: 'New', last_name: 'Person', organization_id: [C('o-old')] }, 'p1');
    await h.notify({ people: [{ ...person, ...env }] });
    await h.drain();
    expect(h.connec.fetchCalls).toEqual([{ collection: 'organizations', id: 'o-old' }]);
    const [company] = [...h.app.companies.values()];
    expect(company?.name).toBe('Old Co');
    expect([...h.app.contacts.values()].map((c) => [c.firstName, c.companyId])).toEqual([['New', company?.id]]);
    expect(await h.sync.api.deadLetters()).toEqual([]);
  });

  it('a record a full import deferred is applied by its retry, not skipped by importSince', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { importSince: '2016-07-28T00:00:00Z' } });
    const old = { created_at: '2015-01-01T00:00:00Z', updated_at: '2015-01-01T00:00:00Z' };
    h.connec.seed(GROUP, 'people', { first_name: 'Old', last_name: 'Flaky', ...old }, 'p-old');
    h.connec.seed(GROUP, 'people', { first_name: 'Old', last_name: 'Fine', ...old }, 'p-old2');
    h.app.poisonLastName = 'Flaky';
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(report.entities.contacts).toMatchObject({ created: 1, failed: 1, deferred: 1 });
    h.app.poisonLastName = null;
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.lastName).sort()).toEqual(['Fine', 'Flaky']);
  });
});

describe('conflicts', () => {
  it("an app database clock ahead of the worker's does not make an unchanged record a local edit (local-wins)", async () => {
    const skewMs = 3_000;
    const rows = new Map<string, { id: string; title: string | null; updatedAt: Date }>();
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      conflict: 'local-wins',
      toLocal: (p: Record<string, unknown>) => ({ title: typeof p.job_title === 'string' ? p.job_title : null }),
      toConnec: (c: { title: string | null }) => ({ job_title: c.title }),
      localId: (c: { id?: string }) => c.id ?? '',
      localUpdatedAt: (c: { updatedAt?: Date }) => c.updatedAt ?? null,
      local: {
        create: async (data: { title: string | null }) => {
          const id = `per-${rows.size + 1}`;
          rows.set(id, { ...data, id, updatedAt: new Date(Date.now() + skewMs) });
          return { id };
        },
        update: async (id: string, data: { title: string | null }) => {
          const row = rows.get(id);
          if (row) rows.set(id, { ...row, ...data, updatedAt: new Date(Date.now() + skewMs) });
        },
        get: async (id: string) => rows.get(id) ?? null,
      },
    } as never) as AnyEntityDefinition;
    const h = await custom([contacts]);
    h.connec.seed(GROUP, 'people', { job_title: 'Eng' }, 'p9');
    await h.notify({ people: [{ ...h.connec.find(GROUP, 'people', 'p9'), ...env }] });
    await h.drain();
    h.connec.setClock(new Date(Date.now() + 3_600_000).toISOString());
    await h.notify({ people: [{ ...h.connec.edit(GROUP, 'people', 'p9', { job_title: 'CTO' }), ...env }] });
    await h.drain();
    expect([...rows.values()].map((r) => r.title)).toEqual(['CTO']);
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title).toBe('CTO');
    expect(h.events.filter((e) => e.type === 'conflict')).toEqual([]);

    // A real local edit still wins.
    const [row] = [...rows.values()];
    if (row) rows.set(row.id, { ...row, title: 'Founder', updatedAt: new Date(Date.now() + 7_200_000) });
    h.connec.setClock(new Date(Date.now() + 3_700_000).toISOString());
    await h.notify({ people: [{ ...h.connec.edit(GROUP, 'people', 'p9', { job_title: 'Intern' }), ...env }] });
    await h.drain();
    expect([...rows.values()].map((r) => r.title)).toEqual(['Founder']);
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title).toBe('Founder');
    expect(h.events.filter((e) => e.type === 'conflict').map((e) => (e as { winner: string }).winner)).toEqual(['local']);
  });
});

describe('parked records', () => {
  it('are woken when their reference is linked through our own id (a push whose answer was lost)', async () => {
    const h = await createHarness({ sync: { parkRetryMs: 3_600_000, fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    await h.notify({ people: [{ id: [C('p1')], first_name: 'Jane', last_name: 'Doe', organization_id: [C('o77')], ...env, updated_at: '2016-10-04T00:36:23Z' }] });
    await h.drain();
    expect(h.app.contacts.size).toBe(0);
    // The app has the company; Connec! carries our id for it but we never got its Connec! id.
    h.app.companies.set('org-50', { id: 'org-50', name: 'Acme', code: null, updatedAt: new Date(0) });
    // The map the push wrote before sending the create (the Connec! id never came back).
    await h.storage.idMaps.insert({ ...scope('companies'), connecId: null, localId: 'org-50' });
    await h.notify({ organizations: [{ id: [C('o77'), A('org-50')], name: 'Acme', ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.companyId)).toEqual(['org-50']);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0 });
  });

  it('a reference to a record deleted in the app is left empty instead of parking until dead-lettered', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    await h.notify({ organizations: [{ ...h.connec.find(GROUP, 'organizations', 'o1'), ...env }] });
    await h.drain();
    const [orgId] = [...h.app.companies.keys()];
    h.app.companies.delete(orgId ?? '');
    await h.notify({ organizations: [{ ...h.connec.edit(GROUP, 'organizations', 'o1', { name: 'Acme 2' }), ...env }] });
    await h.drain();
    expect((await h.storage.idMaps.find(scope('companies'), { connecId: 'o1' }))?.tombstonedAt).not.toBeNull();

    h.connec.seed(GROUP, 'people', { first_name: 'New', last_name: 'Hire', organization_id: [C('o1')] }, 'p5');
    await h.notify({ people: [{ ...h.connec.find(GROUP, 'people', 'p5'), ...env }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => [c.lastName, c.companyId])).toEqual([['Hire', null]]);
    expect(await h.sync.api.deadLetters()).toEqual([]);
  });
});
