/**
 * Against the sandbox as Connec!, references a push sends by our id alone: a contact naming a
 * company the app does not push (the group's outbound switch for companies off). Connec! keeps
 * such a reference on a placeholder it reserves for our id.
 * - Its push answer lost (`truncate` fault) and read back by a poll, the contact keeps its
 *   company in the app without waiting on the placeholder, and once the company is pushed both
 *   sides name the same organization.
 * - Another app of the group then creating an organization carrying that id of ours (any app can
 *   write any id entry): a poll must not link it to the app's company, nor overwrite it (the
 *   push's map for the reference vouches for references only).
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { createMaestrano, defineConnector, defineEntity, memoryAdapter, tenantsFromDevPlatform } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

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

/** A sandbox with one group of `tenant`, imported (nothing in it); companies and contacts in memory. */
async function start(tenant: string, name: string) {
  sandbox = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', marketplaces: [tenant] });
  const tenants = await tenantsFromDevPlatform({
    host: sandbox.url,
    key: sandbox.credentials.environment.apiKey,
    secret: sandbox.credentials.environment.apiSecret,
    refreshMs: 0,
  });
  const group = await sandbox.admin.createGroup({ marketplace: tenant, name });
  const storage = memoryAdapter();
  const claim = await storage.groups.claim(tenant, group.id, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('claim failed');
  await storage.groups.complete(tenant, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });

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
  expect((await mno.sync.importGroup({ tenant: tenant, groupId: group.id })).status).toBe('complete');
  const outbound = (on: boolean) =>
    mno.sync.updateGroupSettings({
      tenant: tenant,
      groupId: group.id,
      update: (settings) => ({ ...settings, sync: { entities: { companies: { outbound: on } } } }) as typeof settings,
    });
  return { sandbox, group, storage, orgs, people, mno, outbound };
}

describe('a contact naming a company whose push was skipped, its answer lost', () => {
  it('read back by a poll, keeps its company; pushed later, the company is the one the contact names', async () => {
    const TENANT = 'skipped-ref';
    const { sandbox, group, storage, orgs, people, mno, outbound } = await start(TENANT, 'Skip Co');

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

describe('an organization another app writes with the id of ours a contact named a never-pushed company by', () => {
  it('is not linked to that company and leaves it alone', async () => {
    const TENANT = 'forged-ref';
    const { sandbox, group, storage, orgs, people, mno, outbound } = await start(TENANT, 'Skip Co');

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
