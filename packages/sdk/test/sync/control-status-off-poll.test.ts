// The status endpoint after a start whose poll ran while the sync was off: that poll read
// nothing (done, no success noted), so it must not be reported SUCCESS over an earlier real
// failure; a poll that really succeeds still is.
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

function setup() {
  const storage = memoryAdapter();
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
    const text = await res.text();
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  };
  return {
    storage,
    connec,
    mno,
    drain: drainer(mno.worker, storage),
    start: () => call('POST', '', { group_id: GROUP }),
    toggle: () => call('PUT', '/toggle_sync', { group_id: GROUP }),
    status: () => call('GET', `/${GROUP}`),
  };
}

async function provision(storage: StorageAdapter) {
  const claim = await storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co', orgUid: ORG_UID, settings: {} });
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** An imported group whose last poll died (Connec! down): status ERROR. */
async function failedPoll(s: ReturnType<typeof setup>) {
  await provision(s.storage);
  s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
  await s.start();
  await s.drain();
  expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  s.connec.failLists = 1_000_000;
  await tick();
  await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP });
  await s.drain();
  expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ dead: 1 });
  expect(await s.status()).toMatchObject({ status: 'ERROR' });
}

describe('status after a start whose poll ran while the sync was off', () => {
  it('is not SUCCESS: the earlier failure stays the last outcome', async () => {
    const s = setup();
    await failedPoll(s);
    // The platform starts a sync (a poll) and switches the sync off before a worker runs it.
    await tick();
    expect(await s.start()).toMatchObject({ status: 'ENQUEUED' });
    await s.toggle(); // off
    await s.drain(); // the poll finds the sync off: it reads nothing and is done
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 1, dead: 1 });
    expect(await s.status()).toMatchObject({ status: 'DISABLED' });
    const listCalls = s.connec.listCalls.length;
    // Back on, Connec! still down: nothing has succeeded since the dead poll.
    const on = await s.toggle();
    expect(s.connec.listCalls.length).toBe(listCalls);
    expect(on).toMatchObject({ sync_enabled: true, status: 'ERROR' });
    expect(await s.status()).toMatchObject({ status: 'ERROR' });
  });

  it("a start's poll that does run and succeed is still SUCCESS", async () => {
    const s = setup();
    await failedPoll(s);
    s.connec.failLists = 0;
    await tick();
    expect(await s.start()).toMatchObject({ status: 'ENQUEUED' });
    await s.drain();
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });
});

describe('status after the on-call engineer recovers a group by hand', () => {
  it('a successful mno.sync.pollGroup() after a dead poll is SUCCESS (it stayed ERROR until the next scheduled poll)', async () => {
    const s = setup();
    await failedPoll(s);
    // Connec! is back; the engineer polls the group now rather than wait for the next poll.
    s.connec.failLists = 0;
    await tick();
    const report = await s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
    expect(await s.status()).not.toHaveProperty('message');
  });

  it('a successful mno.sync.importGroup() after a dead poll is SUCCESS', async () => {
    const s = setup();
    await failedPoll(s);
    s.connec.failLists = 0;
    await tick();
    expect((await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP, full: true })).status).toBe('complete');
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });

  it('a pollGroup() that fails leaves it ERROR', async () => {
    const s = setup();
    await failedPoll(s);
    await tick();
    await expect(s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP })).rejects.toThrow();
    expect(await s.status()).toMatchObject({ status: 'ERROR' });
  });
});

describe('status after a manual run that did nothing', () => {
  it('an mno.sync.importGroup() of a group already imported (not repeated: nothing read) leaves a dead poll ERROR', async () => {
    const s = setup();
    await failedPoll(s);
    // Connec! is still down. The import completed long ago, so it is not repeated: the call
    // reads nothing from Connec! and resolves; it is no evidence that the group syncs again.
    await tick();
    const listCalls = s.connec.listCalls.length;
    expect((await s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');
    expect(s.connec.listCalls.length).toBe(listCalls);
    expect(await s.status()).toMatchObject({ status: 'ERROR' });
    expect(await s.status()).toHaveProperty('message');
  });
});
