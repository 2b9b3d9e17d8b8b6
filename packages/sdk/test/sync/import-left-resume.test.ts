// A manual mno.sync.importGroup() after an import that stopped part way resumes it, and its
// success clears the group's ERROR (it read from Connec!); interrupted at each stage.
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

function setup() {
  const storage = memoryAdapter();
  const connec = new FakeConnec(ORG_UID);
  const app = new LocalApp();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: buildConnector(app),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 2, pageSize: 1 },
  });
  const status = async () => {
    const res = await mno.handler(
      new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations/${GROUP}`, {
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}` },
      }),
    );
    return (await res.json()) as Record<string, unknown>;
  };
  return { storage, connec, app, mno, status, drain: drainer(mno.worker, storage) };
}

async function provision(storage: StorageAdapter) {
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co', orgUid: ORG_UID, settings: {} });
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('a manual importGroup() after an import that stopped', () => {
  it('resumes a dead import job stopped mid-entity, and is SUCCESS', async () => {
    const s = setup();
    await provision(s.storage);
    for (let i = 0; i < 3; i++) s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Doe' }, `p${i}`);
    // The second page of people and everything after fails every attempt.
    let pages = 0;
    const importing = s.mno.sync.importGroup({
      tenant: TENANT,
      groupId: GROUP,
      onProgress: ({ entity }) => {
        if (entity === 'contacts' && ++pages === 1) s.connec.failLists = 1_000;
      },
    });
    await expect(importing).rejects.toThrow();
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ dead: 1 });
    expect(await s.status()).toMatchObject({ status: 'ERROR' });
    s.connec.failLists = 0;
    await tick();
    expect((await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');
    expect(s.app.contacts.size).toBe(3);
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });

  it('resumes a full import stopped in a later entity', async () => {
    const s = setup();
    await provision(s.storage);
    for (let i = 0; i < 3; i++) {
      s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Doe' }, `p${i}`);
      s.connec.seed(GROUP, 'organizations', { name: `Org${i}` }, `o${i}`);
    }
    expect((await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');
    const abort = new AbortController();
    const full = s.mno.sync.importGroup({
      tenant: TENANT,
      groupId: GROUP,
      full: true,
      signal: abort.signal,
      onProgress: () => abort.abort(new Error('deploy')),
    });
    await expect(full).rejects.toThrow();
    const complete = (await s.storage.cursors.list(TENANT, GROUP)).filter((c) => c.kind === 'import' && c.complete);
    expect(complete.length).toBeLessThan(4);
    const calls = s.connec.listCalls.length;
    expect((await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');
    expect(s.connec.listCalls.length).toBeGreaterThan(calls);
    expect((await s.storage.cursors.list(TENANT, GROUP)).filter((c) => c.kind === 'import' && c.complete)).toHaveLength(4);
  });
});
