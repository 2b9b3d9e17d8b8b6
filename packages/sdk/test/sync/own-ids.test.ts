/**
 * Our own id entries in Connec! records (`{ provider: <our api id>, realm, id }`) are only as
 * trustworthy as the id maps behind them: anyone who can write Connec! records in a group can
 * put such an entry in an id array. The engine uses one as a local id only when an id map of
 * the same tenant, group and entity holds it, so a forged entry can neither update nor be
 * linked to a record of another company. Pushes write that map before a create is sent.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, createHarness, drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const env = { group_id: GROUP, channel_id: ORG_UID };
const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

describe('our id in inbound records', () => {
  it('a record naming, through a forged id entry, a local record this group never mapped creates its own record and leaves that one alone', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    // Another company's row in the same app database (another group, or another marketplace).
    h.app.companies.set('org-victim', { id: 'org-victim', name: 'Victim Ltd', code: 'V-1', updatedAt: new Date(0) });
    await h.notify({ organizations: [{ id: [C('o-evil'), A('org-victim')], name: 'PWNED', ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect(h.app.companies.get('org-victim')).toMatchObject({ name: 'Victim Ltd', code: 'V-1' });
    const map = await h.storage.idMaps.find(scope('companies'), { connecId: 'o-evil' });
    expect(map?.localId).not.toBe('org-victim');
    expect(h.app.companies.get(map?.localId ?? '')).toMatchObject({ name: 'PWNED' });
    expect(await h.storage.idMaps.find(scope('companies'), { localId: 'org-victim' })).toBeNull();
  });

  it('a reference naming, through a forged id entry, a local record this group never mapped is not resolved to it', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-victim', { id: 'org-victim', name: 'Victim Ltd', code: null, updatedAt: new Date(0) });
    await h.notify({ people: [{ id: [C('p1')], first_name: 'Eve', last_name: 'Forger', organization_id: [A('org-victim')], ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => [c.lastName, c.companyId])).toEqual([['Forger', null]]);
  });

  it('a reference carrying our id and a mapped Connec! id resolves through the map', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-1', { id: 'org-1', name: 'Acme', code: null, updatedAt: new Date(0) });
    h.app.companies.set('org-victim', { id: 'org-victim', name: 'Victim Ltd', code: null, updatedAt: new Date(0) });
    await h.storage.idMaps.insert({ ...scope('companies'), connecId: 'o1', localId: 'org-1' });
    // The Connec! id is ours to resolve; a forged entry next to it changes nothing.
    await h.notify({ people: [{ id: [C('p1')], last_name: 'Doe', organization_id: [C('o1'), A('org-victim')], ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.companyId)).toEqual(['org-1']);
  });

  it("a reference carrying our id whose map names another Connec! id (the target's push was merged into an existing record) resolves to our id", async () => {
    const h = await createHarness({ sync: { fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    h.app.companies.set('org-1', { id: 'org-1', name: 'Acme', code: null, updatedAt: new Date(0) });
    // The contact was pushed first (Connec! reserved o-U for org-1), then org-1's push merged into o-V.
    await h.storage.idMaps.insert({ ...scope('companies'), connecId: 'o-V', localId: 'org-1' });
    h.connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p1');
    await h.notify({ people: [{ id: [C('p1')], last_name: 'Doe', job_title: 'CTO', organization_id: [C('o-U'), A('org-1')], ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.companyId)).toEqual(['org-1']);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('a push cut off after Connec! took the create (process gone, nothing recorded after the send) is still linked when the record comes back', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-9', { id: 'org-9', name: 'Pushed Co', code: null, updatedAt: new Date(0) });
    const abort = new AbortController();
    const batch = h.connec.batch.bind(h.connec);
    h.connec.batch = async (ops) => {
      await batch(ops); // Connec! applies the create...
      abort.abort(new Error('process stopping')); // ...and the pushing process goes away before the answer
      throw new Error('aborted');
    };
    const pushed = h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: h.app.companies.get('org-9'), signal: abort.signal });
    await expect(pushed).rejects.toThrow();
    h.connec.batch = batch;
    const created = h.connec.data.get(GROUP)?.get('organizations')?.[0];
    expect(created?.id).toContainEqual(A('org-9'));
    // The record comes back (a notification): linked to org-9, not created a second time.
    await h.notify({ organizations: [{ ...created, ...env }] });
    await h.drain();
    expect([...h.app.companies.keys()]).toEqual(['org-9']);
    const connecEntry = ((created?.id ?? []) as { id: string; provider: string }[]).find((e) => e.provider === 'connec');
    expect(connecEntry).toBeDefined();
    expect((await h.storage.idMaps.find(scope('companies'), { localId: 'org-9' }))?.connecId).toBe(connecEntry?.id);
  });

  it('a reference to customers carrying our id of a lead (two tables, two id sequences: the same local id) is not resolved to that customer', async () => {
    type Row = { id: string; name: string };
    const tables = { leads: new Map<string, Row>(), customers: new Map<string, Row>() };
    const seq = { leads: 0, customers: 0 };
    const person = (name: 'leads' | 'customers') =>
      defineEntity({
        name,
        connec: 'people',
        direction: 'inbound',
        filter: (p: Record<string, unknown>) => (name === 'customers') === (p.is_customer === true),
        toLocal: (p: Record<string, unknown>) => ({ name: String(p.first_name ?? '') }),
        local: {
          create: async (data: { name: string }) => {
            const id = String(++seq[name]);
            tables[name].set(id, { ...data, id });
            return { id };
          },
          update: async () => undefined,
        },
      });
    const orders = new Map<string, { customerId: string | null }>();
    const salesOrders = defineEntity({
      name: 'orders',
      connec: 'sales_orders',
      direction: 'inbound',
      references: { person_id: 'customers' },
      toLocal: (o: Record<string, unknown>) => ({ customerId: typeof o.person_id === 'string' ? o.person_id : null }),
      local: {
        create: async (d: { customerId: string | null }) => {
          orders.set(`so-${orders.size + 1}`, d);
          return { id: `so-${orders.size}` };
        },
        update: async () => undefined,
      },
    });
    const connec = new FakeConnec(ORG_UID);
    const storage = memoryAdapter();
    const runtime = testRuntime(storage);
    const module = createSyncModule(runtime, {
      connector: defineConnector({ entities: [person('leads'), person('customers'), salesOrders] }),
      sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, fetchMissingReferences: false },
    });
    const drain = drainer(createWorker(runtime, module.jobs ?? {}), storage);
    const notify = notifier(module);
    await provisionGroup(storage);
    connec.seed(GROUP, 'people', { first_name: 'Carl', is_customer: true }, 'p-cust');
    connec.seed(GROUP, 'people', { first_name: 'Lena', is_customer: false }, 'p-lead');
    await notify({ people: [{ ...connec.find(GROUP, 'people', 'p-cust'), ...env }, { ...connec.find(GROUP, 'people', 'p-lead'), ...env }] });
    await drain();
    expect([[...tables.customers.keys()], [...tables.leads.keys()]]).toEqual([['1'], ['1']]);
    // The lead's id array now carries our id "1" (linked back); an order names the lead.
    const leadIds = connec.find(GROUP, 'people', 'p-lead')?.id;
    expect(leadIds).toContainEqual(A('1'));
    await notify({ sales_orders: [{ id: [C('so1')], person_id: leadIds, ...env, updated_at: '2016-10-04T00:36:24Z' }] });
    await drain();
    expect([...orders.values()]).toEqual([{ customerId: null }]);
  });
});
