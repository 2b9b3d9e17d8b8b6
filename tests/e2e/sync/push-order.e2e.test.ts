/**
 * The outbound half of the initial import pushes referenced entities first (`pushOrder`),
 * against the sandbox as Connec!. Entities are declared as the connector guide does
 * (`entities: [contacts, companies]`): contacts before the companies they reference.
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, defineConnector, defineEntity, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'push-order';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Org {
  id: string;
  name: string;
}
interface Person {
  id: string;
  firstName: string;
  lastName: string;
  companyId: string | null;
}

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

describe('outbound half of the initial import', () => {
  it('links a pushed contact to the Connec! organization its company was merged into (matching_fields)', async () => {
    sandbox = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', marketplaces: [TENANT] });
    const tenants = await tenantsFromDevPlatform({
      host: sandbox.url,
      key: sandbox.credentials.environment.apiKey,
      secret: sandbox.credentials.environment.apiSecret,
      refreshMs: 0,
    });
    const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Order Co' });
    const storage = memoryAdapter();
    const claim = await storage.groups.claim(TENANT, group.id, { owner: 'test', ttlMs: 60_000 });
    if (claim.state !== 'claimed') throw new Error('claim failed');
    await storage.groups.complete(TENANT, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });

    // Connec! already holds the organization "Acme" (another app created it).
    const acme = await sandbox.admin.createRecord(group.id, 'organizations', { name: 'Acme' });
    const acmeId = String(acme.id);

    // The app has the same company, and a contact working there.
    const orgs = new Map<string, Org>([['org-1', { id: 'org-1', name: 'Acme' }]]);
    const people = new Map<string, Person>([['per-1', { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', companyId: 'org-1' }]]);
    let seq = 10;
    const companies = defineEntity<'organizations', Org>({
      name: 'companies',
      connec: 'organizations',
      direction: 'both',
      matchingFields: ['name'],
      toLocal: (o) => ({ id: '', name: o.name ?? '' }),
      toConnec: (c) => ({ name: c.name }),
      localId: (c) => c.id,
      local: {
        create: async (data) => {
          const id = `org-${++seq}`;
          orgs.set(id, { ...data, id });
          return { id };
        },
        update: async (id, data) => {
          orgs.set(id, { ...data, id });
        },
        async *list() {
          yield [...orgs.values()];
        },
      },
    });
    const contacts = defineEntity<'people', Person>({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      references: { organization_id: 'companies' },
      toLocal: (p) => ({
        id: '',
        firstName: p.first_name ?? '',
        lastName: p.last_name ?? '',
        companyId: typeof p.organization_id === 'string' ? p.organization_id : null,
      }),
      toConnec: (c) => ({ first_name: c.firstName, last_name: c.lastName, organization_id: c.companyId }),
      localId: (c) => c.id,
      local: {
        create: async (data) => {
          const id = `per-${++seq}`;
          people.set(id, { ...data, id });
          return { id };
        },
        update: async (id, data) => {
          people.set(id, { ...data, id });
        },
        async *list() {
          yield [...people.values()];
        },
      },
    });
    const mno = createMaestrano({
      tenants,
      storage,
      provisioning: { createCompany: () => ({ id: 'co-1' }), createUser: () => ({ id: 'u-1' }) },
      onLogin: () => new Response('ok'),
      // Contacts declared before the companies they reference, as in the connector guide's example.
      connector: defineConnector({ entities: [contacts, companies] }),
      logger: silent,
    });

    const report = await mno.sync.importGroup({ tenant: TENANT, groupId: group.id });
    expect(report.status).toBe('complete');

    // The company was merged into Connec!'s Acme (no duplicate).
    const orgsInConnec = await sandbox.admin.listRecords(group.id, 'organizations', { externalIds: false });
    expect(orgsInConnec).toHaveLength(1);
    const orgMap = await storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'companies' }, { localId: 'org-1' });
    expect(orgMap?.connecId).toBe(acmeId);

    // The contact, pushed by the same import, must point at that organization in Connec!, so
    // that the company's other apps see Ada at Acme.
    const peopleInConnec = await sandbox.admin.listRecords(group.id, 'people', { externalIds: false });
    expect(peopleInConnec).toHaveLength(1);
    expect(peopleInConnec[0]?.organization_id).toBe(acmeId);
  });
});
