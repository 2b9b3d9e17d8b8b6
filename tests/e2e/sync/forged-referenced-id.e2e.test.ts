/**
 * Against the sandbox as Connec!: a contact naming a company the app keeps to itself (the
 * group's outbound switch for companies off) is pushed; Connec! reserves a placeholder for the
 * company's id of ours. Another app of the group then creates an organization carrying that id
 * (any app can write any id entry). A poll reads it: it must not be linked to the app's
 * company, nor overwrite it (the push's map for the reference vouches for references only).
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, defineConnector, defineEntity, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'forged-ref';
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

describe('an organization another app writes with the id of ours a contact named a never-pushed company by', () => {
  it('is not linked to that company and leaves it alone', async () => {
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
    orgs.set('org-1', { id: 'org-1', name: 'Acme' });
    const ada: Person = { id: 'per-1', firstName: 'Ada', companyId: 'org-1' };
    people.set('per-1', ada);
    expect(await mno.sync.push({ tenant: TENANT, groupId: group.id, entity: 'contacts', record: ada })).toMatchObject({ status: 'pushed' });
    const [person] = await sandbox.admin.listRecords(group.id, 'people', { externalIds: true });
    const ours = ((person?.organization_id ?? []) as { id: string; provider: string; realm: string }[]).find((e) => e.provider !== 'connec');
    expect(ours?.id).toBe('org-1');

    const other = await sandbox.admin.createOtherApp({ groupIds: [group.id] });
    const forged = await fetch(`${sandbox.url}/api/v2/${group.id}/organizations`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${other.apiId}:${other.apiKey}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ organizations: { name: 'PWNED', id: [ours] } }),
    });
    expect(forged.status).toBe(201);

    expect((await mno.sync.pollGroup({ tenant: TENANT, groupId: group.id })).status).toBe('complete');
    expect(orgs.get('org-1')).toEqual({ id: 'org-1', name: 'Acme' });
    const map = await storage.idMaps.find({ tenant: TENANT, groupId: group.id, entity: 'companies' }, { localId: 'org-1' });
    expect(map).toBeNull();
    expect([...orgs.values()].map((o) => o.name).sort()).toEqual(['Acme', 'PWNED']);
  });
});
