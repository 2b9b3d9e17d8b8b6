import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { A, C, GROUP, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

describe('§F13 singleton company and sparse nested shapes', () => {
  it('imports the singular company once, links it back with a put to the singular path, and never sends empty objects', async () => {
    const storage = memoryAdapter();
    const connec = new FakeConnec(ORG_UID);
    const runtime = testRuntime(storage, () => new Date(), 'singleton-test');
    type Settings = { id?: string; name: string; email: string | null; billingLine1: string | null };
    const rows = new Map<string, Settings>();
    const company = defineEntity({
      name: 'company',
      connec: 'company',
      direction: 'both',
      toLocal: (c: Record<string, unknown>): Settings => {
        const address = (c.address ?? {}) as { billing?: { line1?: string } };
        const email = (c.email ?? {}) as { address?: string };
        return { name: String(c.name ?? ''), email: email.address ?? null, billingLine1: address.billing?.line1 ?? null };
      },
      toConnec: (s: Settings) => ({
        name: s.name,
        email: { address: s.email ?? undefined },
        address: { billing: { line1: s.billingLine1 ?? undefined }, billing2: {}, shipping: {} },
      }),
      localId: (s: Settings) => s.id ?? '',
      local: {
        create: async (data) => {
          rows.set('settings-1', { ...data, id: 'settings-1' });
          return { id: 'settings-1' };
        },
        update: async (id, data) => {
          rows.set(id, { ...data, id });
          return undefined;
        },
      },
    });
    const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [company] }), sync: { connecPort: () => connec } });
    await provisionGroup(storage);
    connec.seed(
      GROUP,
      'company',
      {
        name: 'Acme',
        timezone: 'Australia/Sydney',
        email: { address: 'hi@acme.io' },
        website: { url: 'acme.io' },
        address: { billing: { line1: '1 George St' }, billing2: {}, shipping: {}, shipping2: {} },
      },
      'c1',
    );
    const report = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.company).toMatchObject({ fetched: 1, created: 1, linked: 1 });
    expect(rows.get('settings-1')).toEqual({ id: 'settings-1', name: 'Acme', email: 'hi@acme.io', billingLine1: '1 George St' });
    const link = connec.batches[0]?.[0];
    expect(link).toMatchObject({ method: 'put', collection: 'company', id: undefined });
    expect(link?.record.id).toEqual([C('c1'), A('settings-1')]);
    expect(await storage.idMaps.list({ tenant: TENANT, groupId: GROUP, entity: 'company' }, { limit: 5 })).toHaveLength(1);

    // a local change pushed back: a put to the singular path, with no empty sub-objects
    const pushed = await sync.api.push({
      tenant: TENANT,
      groupId: GROUP,
      entity: 'company',
      record: { id: 'settings-1', name: 'Acme Pty', email: null, billingLine1: null },
    });
    expect(pushed.status).toBe('pushed');
    const op = connec.batches.at(-1)?.[0];
    expect(op).toMatchObject({ method: 'put', collection: 'company', id: undefined });
    expect(op?.record).toEqual({ id: [C('c1'), A('settings-1')], name: 'Acme Pty' });
    // a second import does not fetch again
    const calls = connec.listCalls.length;
    await sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(connec.listCalls.length).toBe(calls);
  });
});
