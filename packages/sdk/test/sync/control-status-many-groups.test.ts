// The status endpoint (PROTOCOL §5.4) of a group in a tenant where many other groups failed:
// the group's own last dead import or poll stays its last outcome (ERROR) however many dead
// jobs other groups of the tenant have since. With a storage adapter written before
// `jobs.listDead` took a `groupId` (it ignores the filter), other groups' dead jobs are never
// taken for the group's, and its own failure is still found among the tenant's newest ones.
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant, withoutGroupFilter } from './harness.js';

function setup(storage: StorageAdapter = memoryAdapter()) {
  const connec = new FakeConnec(ORG_UID);
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: buildConnector(new LocalApp()),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4 },
  });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await mno.handler(
      new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations${path}`, {
        method,
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }),
    );
    expect(res.status).toBeLessThan(300);
    const text = await res.text();
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  };
  return {
    storage,
    connec,
    mno,
    drain: drainer(mno.worker, storage),
    start: () => call('POST', '', { group_id: GROUP }),
    status: () => call('GET', `/${GROUP}`),
  };
}

/** A memory adapter whose `jobs.listDead` ignores `groupId`, like one written before it existed. */
function adapterWithoutGroupFilter(): StorageAdapter {
  return withoutGroupFilter(memoryAdapter());
}

async function provision(storage: StorageAdapter) {
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co', orgUid: ORG_UID, settings: {} });
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** `count` other groups of the tenant get a dead job of `type`, each failing after the group's. */
async function otherGroupsFail(storage: StorageAdapter, type: string, count: number) {
  await tick();
  for (let n = 0; n < count; n++) {
    const groupId = `cld-other-${n}`;
    await storage.jobs.enqueue({ type, tenant: TENANT, groupId, payload: { tenant: TENANT, groupId }, maxAttempts: 1 });
  }
  const claimed = await storage.jobs.claim({ worker: 'w', limit: count + 10, leaseMs: 60_000, types: [type] });
  expect(claimed).toHaveLength(count);
  for (const job of claimed) {
    expect(await storage.jobs.fail(job.id, 'w', { error: { message: 'Connec! unavailable' }, retryAt: new Date() })).toBe('dead');
  }
}

/** The group's import after its first login dies (Connec! down): status ERROR. */
async function failedFirstImport(s: ReturnType<typeof setup>) {
  await provision(s.storage);
  s.connec.failLists = 1_000;
  await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
  await s.drain();
  expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ dead: 1, pending: 0, running: 0 });
  expect(await s.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });
}

/** The group is imported (SUCCESS), then its poll dies (Connec! down): status ERROR. */
async function failedPoll(s: ReturnType<typeof setup>, others = 0) {
  await provision(s.storage);
  s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
  await s.start();
  await s.drain();
  expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  if (others > 0) {
    // Other groups' dead polls are not the group's: it stays SUCCESS.
    await otherGroupsFail(s.storage, JobTypes.syncPoll, others);
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  }
  s.connec.failLists = 1_000_000;
  await tick();
  await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP });
  await s.drain();
  expect(await s.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });
}

describe('GET …/synchronizations/:group_id in a tenant where many groups failed', () => {
  it('stays ERROR after a dead first import when 101 other groups of the tenant have dead imports since', async () => {
    const s = setup();
    await failedFirstImport(s);
    // Other companies of the same marketplace signed up during the outage.
    await otherGroupsFail(s.storage, JobTypes.syncImport, 101);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ dead: 102, pending: 0, running: 0 });
    // Nothing is queued for the group: not ENQUEUED, but its last sync's ERROR.
    expect(await s.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });
  });

  it("stays ERROR after a dead poll when 101 other groups' polls died since", async () => {
    const s = setup();
    await failedPoll(s);
    await otherGroupsFail(s.storage, JobTypes.syncPoll, 101);
    // Nothing of the group ran since its dead poll: not SUCCESS.
    expect(await s.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });
  });

  it('with an adapter that ignores the groupId filter: other groups never count, the own failure is found', async () => {
    const imports = setup(adapterWithoutGroupFilter());
    await failedFirstImport(imports);
    await otherGroupsFail(imports.storage, JobTypes.syncImport, 5);
    expect(await imports.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });

    const polls = setup(adapterWithoutGroupFilter());
    await failedPoll(polls, 3);
    await otherGroupsFail(polls.storage, JobTypes.syncPoll, 5);
    expect(await polls.status()).toMatchObject({ group_id: GROUP, status: 'ERROR' });
  });
});
