/**
 * The map a push records for a reference by our id alone (`<target>:referenced`) vouches for
 * that id, not for whatever Connec! record carries it: when several entities share a
 * collection (leads and customers on `people`, separate id sequences), our id 1 in a
 * reference read back may be lead 1's record, named by its Connec! id. Such a reference is not
 * customer 1, as with the target's own map.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const env = { group_id: GROUP, channel_id: ORG_UID };
const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

describe('a reference by our id alone to a customer, read back naming the lead of the same id', () => {
  it('does not resolve to the customer', async () => {
    type Row = { id: string; name: string };
    const tables = { leads: new Map<string, Row>(), customers: new Map<string, Row>() };
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
    type Order = { id: string; title: string; customerId: string | null };
    const orderRows = new Map<string, Order>();
    const orders = defineEntity({
      name: 'orders',
      connec: 'sales_orders',
      direction: 'both',
      references: { person_id: 'customers' },
      toLocal: (o: Record<string, unknown>) => ({ id: '', title: String(o.title ?? ''), customerId: (o.person_id as string | null) ?? null }),
      toConnec: (o: Order) => ({ title: o.title, person_id: o.customerId }),
      localId: (o: Order) => o.id,
      local: {
        create: async (data: Order) => {
          const id = `so-${orderRows.size + 1}`;
          orderRows.set(id, { ...data, id });
          return { id };
        },
        update: async (id: string, data: Order) => {
          const row = orderRows.get(id);
          if (!row) return { gone: true as const };
          orderRows.set(id, { ...row, title: data.title, customerId: data.customerId });
          return undefined;
        },
      },
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
    // Lead 1 pushed and linked.
    expect(await module.api.push({ tenant: TENANT, groupId: GROUP, entity: 'leads', record: tables.leads.get('1') })).toMatchObject({ status: 'pushed' });
    const leadConnecId = (await storage.idMaps.find(scope('leads'), { localId: '1' }))?.connecId;
    expect(leadConnecId).toEqual(expect.any(String));
    // An order naming customer 1, not pushed yet (a reference by our id alone).
    const order: Order = { id: 'so-1', title: 'First order', customerId: '1' };
    orderRows.set(order.id, order);
    expect(await module.api.push({ tenant: TENANT, groupId: GROUP, entity: 'orders', record: order })).toMatchObject({ status: 'pushed' });
    expect(await storage.idMaps.find(scope('customers'), { localId: '1' })).toBeNull();
    const orderConnecId = (await storage.idMaps.find(scope('orders'), { localId: 'so-1' }))?.connecId as string;

    // Read back naming the placeholder Connec! reserved for our id 1: still customer 1.
    const stored = connec.find(GROUP, 'sales_orders', orderConnecId);
    await notify({ sales_orders: [{ ...stored, title: 'Renamed', person_id: [C('placeholder-1'), A('1')], ...env, updated_at: '2098-01-01T00:00:00Z' }] });
    await drain();
    expect(orderRows.get('so-1')).toMatchObject({ title: 'Renamed', customerId: '1' });

    // Another app moves the order to Lena, lead 1's record: its reference carries our id 1.
    await notify({
      sales_orders: [{ ...stored, title: 'Moved to Lena', person_id: [C(leadConnecId as string), A('1')], ...env, updated_at: '2099-01-01T00:00:00Z' }],
    });
    await drain();
    // Lena is no customer: the order names no customer, not Carl (customer 1).
    expect(orderRows.get('so-1')).toMatchObject({ title: 'Moved to Lena', customerId: null });
  });
});
