/**
 * The sync engine over the real Connec! port (@org/connec-client over loopback HTTP to the
 * sandbox): pages shorter than `$top` with more to come, `sync.batchSize` above the client's
 * default chunk, and a batch call that gets no answer.
 */
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import {
  createMaestrano,
  defineConnector,
  defineEntity,
  type Maestrano,
  memoryAdapter,
  type StorageAdapter,
  type SyncModuleConfig,
  tenantsFromDevPlatform,
} from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';

const TENANT = 'port-e2e';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface Org {
  id: string;
  name: string;
}

async function setup(options: { fetch: typeof fetch; sync?: SyncModuleConfig }) {
  const sandbox = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9', marketplaces: [TENANT] });
  const tenants = await tenantsFromDevPlatform({
    host: sandbox.url,
    key: sandbox.credentials.environment.apiKey,
    secret: sandbox.credentials.environment.apiSecret,
    refreshMs: 0,
  });
  const group = await sandbox.admin.createGroup({ marketplace: TENANT, name: 'Port Co' });
  const storage = memoryAdapter();
  const claim = await storage.groups.claim(TENANT, group.id, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('claim failed');
  await storage.groups.complete(TENANT, group.id, 'test', { companyId: 'co-1', orgUid: group.orgUid });
  const orgs = new Map<string, Org>();
  let seq = 0;
  const companies = defineEntity<'organizations', Org>({
    name: 'companies',
    connec: 'organizations',
    direction: 'both',
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
    },
  });
  const mno: Maestrano = createMaestrano({
    tenants,
    storage,
    fetch: options.fetch,
    provisioning: { createCompany: () => ({ id: 'co-1' }), createUser: () => ({ id: 'u-1' }) },
    onLogin: () => new Response('ok'),
    connector: defineConnector({ entities: [companies] }),
    logger: silent,
    ...(options.sync ? { sync: options.sync } : {}),
  });
  return { sandbox, storage: storage as StorageAdapter, mno, groupId: group.id, orgs };
}

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.stop();
  sandbox = undefined;
});

describe('the sync engine over the real Connec! port', () => {
  it('keeps paging when Connec! answers fewer records than $top but announces a next page', async () => {
    const CAP = 25;
    const tops: number[] = [];
    // A Connec! that caps `$top` at 25 (its maximum is not documented) and says so through
    // `pagination.next` and `total`.
    const capped: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const top = url.searchParams.get('$top');
      if (top !== null && url.pathname.endsWith('/organizations')) {
        tops.push(Number(top));
        if (Number(top) > CAP) url.searchParams.set('$top', String(CAP));
        return globalThis.fetch(input instanceof Request ? new Request(url, input) : url, init);
      }
      return globalThis.fetch(input, init);
    };
    const h = await setup({ fetch: capped });
    sandbox = h.sandbox;
    for (let i = 0; i < 60; i++) await h.sandbox.admin.createRecord(h.groupId, 'organizations', { name: `Org ${i}` });

    const report = await h.mno.sync.importGroup({ tenant: TENANT, groupId: h.groupId });
    expect(report.status).toBe('complete');
    expect(report.entities.companies).toMatchObject({ fetched: 60, created: 60 });
    expect(h.orgs.size).toBe(60);
    expect(new Set([...h.orgs.values()].map((o) => o.name)).size).toBe(60);
    // Asked for 100 each time, got 25, 25, 10.
    expect(tops.length).toBeGreaterThanOrEqual(3);
    const cursor = await h.storage.cursors.get({ tenant: TENANT, groupId: h.groupId, entity: 'companies', kind: 'import' });
    expect(cursor).toMatchObject({ position: 60, complete: true });
  });

  it('sends `sync.batchSize` ops per Connec! batch call, above the client default of 50', async () => {
    const sizes: number[] = [];
    const spy: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/batch')) sizes.push((JSON.parse(String(init?.body)) as { ops: unknown[] }).ops.length);
      return globalThis.fetch(input, init);
    };
    const h = await setup({ fetch: spy, sync: { batchSize: 200 } });
    sandbox = h.sandbox;
    const records = Array.from({ length: 120 }, (_, i) => ({ id: `org-${i}`, name: `Pushed ${i}` }));
    const results = await h.mno.sync.pushMany({ tenant: TENANT, groupId: h.groupId, entity: 'companies', records });
    expect(results.filter((r) => r.status === 'pushed')).toHaveLength(120);
    expect(sizes).toEqual([120]);
    const stored = await h.sandbox.admin.listRecords(h.groupId, 'organizations');
    expect(stored).toHaveLength(120);
  });

  it('a create whose answer was lost (Connec! applied it, then 409 on the retry) is found, linked and updated', async () => {
    let dropped = 0;
    // The first batch call reaches Connec!, which applies it; its answer never comes back.
    const lossy: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      const response = await globalThis.fetch(input, init);
      if (url.endsWith('/batch') && dropped === 0) {
        dropped++;
        await response.arrayBuffer();
        throw new TypeError('fetch failed: socket hang up');
      }
      return response;
    };
    const h = await setup({ fetch: lossy });
    sandbox = h.sandbox;
    const record = { id: 'org-1', name: 'Acme' };
    const pushed = await h.mno.sync.push({ tenant: TENANT, groupId: h.groupId, entity: 'companies', record });
    expect(dropped).toBe(1);
    const stored = await h.sandbox.admin.listRecords(h.groupId, 'organizations');
    expect(stored).toHaveLength(1);
    const connecId = String(stored[0]?.id);
    expect(pushed).toMatchObject({ status: 'pushed', connecId });
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: h.groupId, entity: 'companies' }, { localId: 'org-1' });
    expect(map).toMatchObject({ connecId, lastError: null });

    // Later edits go out as updates of that record, not as creates refused again.
    const edited = await h.mno.sync.push({ tenant: TENANT, groupId: h.groupId, entity: 'companies', record: { id: 'org-1', name: 'Acme Ltd' } });
    expect(edited).toMatchObject({ status: 'pushed', connecId });
    const after = await h.sandbox.admin.listRecords(h.groupId, 'organizations');
    expect(after.map((r) => r.name)).toEqual(['Acme Ltd']);
  });

  it('a batch call that gets no answer fails its ops with code push_failed, and a retry pushes them', async () => {
    let down = true;
    const flaky: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (down && url.endsWith('/batch')) throw new TypeError('fetch failed: connection reset');
      return globalThis.fetch(input, init);
    };
    const h = await setup({ fetch: flaky });
    sandbox = h.sandbox;
    const record = { id: 'org-1', name: 'Unlucky' };
    const failed = await h.mno.sync.push({ tenant: TENANT, groupId: h.groupId, entity: 'companies', record });
    expect(failed).toMatchObject({ status: 'failed', code: 'push_failed', httpStatus: null, connecId: null });
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: h.groupId, entity: 'companies' }, { localId: 'org-1' });
    expect(map?.lastError?.code).toBe('push_failed');
    expect(await h.sandbox.admin.listRecords(h.groupId, 'organizations')).toHaveLength(0);

    down = false;
    const pushed = await h.mno.sync.push({ tenant: TENANT, groupId: h.groupId, entity: 'companies', record });
    expect(pushed.status).toBe('pushed');
    expect(await h.sandbox.admin.listRecords(h.groupId, 'organizations')).toHaveLength(1);
  });

  it('a batch call Connec! refuses as a whole carries its status to each op (http_<status>), not "no answer"', async () => {
    const h = await setup({ fetch: globalThis.fetch });
    sandbox = h.sandbox;
    for (const status of [400, 401, 503]) {
      await h.sandbox.admin.clearFaults();
      await h.sandbox.admin.addFault({ path: '/batch', kind: 'status', status });
      const record = { id: `org-${status}`, name: `Refused ${status}` };
      const failed = await h.mno.sync.push({ tenant: TENANT, groupId: h.groupId, entity: 'companies', record });
      expect(failed).toMatchObject({ status: 'failed', code: `http_${status}`, httpStatus: status });
      const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: h.groupId, entity: 'companies' }, { localId: record.id });
      expect(map?.lastError?.code).toBe(`http_${status}`);
    }
    await h.sandbox.admin.clearFaults();
    expect(await h.sandbox.admin.listRecords(h.groupId, 'organizations')).toHaveLength(0);
  });
});
