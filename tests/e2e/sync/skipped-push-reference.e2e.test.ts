/**
 * Against the sandbox as Connec!: a contact naming a company whose push was skipped (the
 * group's outbound switch for companies off), its push answer lost (`truncate` fault), read
 * back by a poll. Connec! keeps the reference by our id alone on a placeholder it reserves;
 * the read-back must keep the contact's company in the app without waiting on the
 * placeholder, and once the company is pushed both sides name the same organization.
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, defineConnector, defineEntity, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'skipped-ref';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Org {
  id: string;
  name: string;
}
interface Person {
  id: string;
  firstName: string;
  companyId: string | null;
}

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

describe('a contact naming a company whose push was skipped, its answer lost', () => {
  it('read back by a poll, keeps its company; pushed later, the company is the one the contact names', async () => {
    sandbox = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', marketplaces: [TENANT] });
    const tenants = await tenantsFromDevPlatform({
      host: sandbox.url,
      key: sandbox.credentials.environment.apiKey,
      secret: sandbox.credentials.environment.apiSecret,
      refreshMs: 0,
    });
    const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Skip Co' });
    const storage = memoryAdapter();
    const claim = await storage.groups.claim(TENANT, group.id, { owner: 'test', ttlMs: 60_000 });
    if (claim.state !== 'claimed') throw new Error('claim failed');
    await storage.groups.complete(TENANT, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });

    const orgs = new Map<string, Org>();
    const people = new Map<string, Person>();
    const companies = defineEntity<'organizations', Org>({
      name: 'companies',
      connec: 'organizations',
      direction: 'both',
      toLocal: (o) => ({ id: '', name: o.name ?? '' }),
      toConnec: (c) => ({ name: c.name }),
      localId: (c) => c.id,
      local: {
        create: async (data) => {
          const id = `org-in-${orgs.size + 1}`;
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
      toLocal: (p) => ({ id: '', firstName: p.first_name ?? '', companyId: typeof p.organization_id === 'string' ? p.organization_id : null }),
      toConnec: (c) => ({ first_name: c.firstName, organization_id: c.companyId }),
      localId: (c) => c.id,
      local: {
        create: async (data) => {
          const id = `per-in-${people.size + 1}`;
          people.set(id, { ...data, id });
          return { id };
        },
        update: async (id, data) => {
          people.set(id, { ...data, id });
        },
      },
    });
    const mno = createMaestrano({
      tenants,
      storage,
      provisioning: { createCompany: () => ({ id: 'co-1' }), createUser: () => ({ id: 'u-1' }) },
      onLogin: () => new Response('ok'),
      connector: defineConnector({ entities: [companies, contacts] }),
      logger: silent,
    });
    expect((await mno.sync.importGroup({ tenant: TENANT, groupId: group.id })).status).toBe('complete');
    const outbound = (on: boolean) =>
      mno.sync.updateGroupSettings({
        tenant: TENANT,
        groupId: group.id,
        update: (settings) => ({ ...settings, sync: { entities: { companies: { outbound: on } } } }) as typeof settings,
      });

    await outbound(false);
    const acme: Org = { id: 'org-1', name: 'Acme' };
    orgs.set('org-1', acme);
    expect(await mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'companies', record: acme })).toMatchObject({ status: 'skipped' });
    const ada: Person = { id: 'per-1', firstName: 'Ada', companyId: 'org-1' };
    people.set('per-1', ada);
    await sandbox.admin.addFault({ path: '/batch', kind: 'truncate', count: 1 });
    expect(await mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'contacts', record: ada })).toMatchObject({ status: 'failed' });
    expect(await sandbox.admin.listRecords(group.id, 'people', { externalIds: false })).toHaveLength(1);

    const poll = await mno.sync.pollGroup({ tenant: TENANT, groupId: group.id });
    expect(poll.status).toBe('complete');
    expect(people.get('per-1')).toEqual({ id: 'per-1', firstName: 'Ada', companyId: 'org-1' });
    // Read back naming the company by our id (and the placeholder's Connec! id): resolved by the
    // map the contact's push recorded, not parked on a placeholder that is no record (a dead
    // letter if the company's switch stays off).
    expect(poll.entities.contacts).toMatchObject({ fetched: 1, deferred: 0 });
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0 });

    await outbound(true);
    expect((await mno.sync.pushChanged({ tenant: TENANT, groupId: group.id })).status).toBe('complete');
    const orgMap = await storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'companies' }, { localId: 'org-1' });
    const [person] = await sandbox.admin.listRecords(group.id, 'people', { externalIds: false });
    expect(orgMap?.connecId).toBeTruthy();
    expect(person?.organization_id).toBe(orgMap?.connecId);
    expect(people.get('per-1')?.companyId).toBe('org-1');
  });
});
