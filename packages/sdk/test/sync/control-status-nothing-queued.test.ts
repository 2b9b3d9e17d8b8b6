// The status endpoint (PROTOCOL §5.4) of a group for which nothing is queued, in the two cases
// where it used to answer `ENQUEUED` regardless: the company's set-up job (`company.created`,
// which enqueues the group's initial import) died, so no import was ever queued (`ERROR`, with
// that job's failure); and the group's import covers no entity (every one switched off for the
// group), so the import that ran had nothing to do (`SUCCESS`, with a message saying so).
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { setup as pushOnlySetup } from './catch-up-harness.js';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant, withoutGroupFilter } from './harness.js';

function setup(storage: StorageAdapter = memoryAdapter(), clock?: () => Date) {
  const connec = new FakeConnec(ORG_UID);
  const app = new LocalApp();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    ...(clock ? { clock } : {}),
    connector: buildConnector(app),
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
    app,
    mno,
    drain: drainer(mno.worker, storage),
    start: () => call('POST', '', { group_id: GROUP }),
    toggle: () => call('PUT', '/toggle_sync', { group_id: GROUP }),
    status: (groupId = GROUP) => call('GET', `/${groupId}`),
  };
}

async function provision(storage: StorageAdapter, groupId = GROUP, settings: object = {}) {
  const claim = await storage.groups.claim(TENANT, groupId, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  await storage.groups.complete(TENANT, groupId, 'test', { companyId: `co-${groupId}`, orgUid: ORG_UID, settings: JSON.parse(JSON.stringify(settings)) });
}

/** A `company.created` whose fan-out meets a storage outage until it is a dead letter. */
async function failSetUp(s: ReturnType<typeof setup>, down: { now: boolean }): Promise<void> {
  await companyCreated(s.storage);
  down.now = true;
  await s.drain();
  down.now = false;
}

/** A memory adapter whose `jobs.enqueueMany` fails while `down.now` (the fan-out of `company.created` uses it). */
function flakyAdapter(base: StorageAdapter = memoryAdapter()): { storage: StorageAdapter; down: { now: boolean } } {
  const down = { now: false };
  const storage: StorageAdapter = {
    ...base,
    jobs: {
      ...base.jobs,
      enqueueMany: (jobs) => (down.now ? Promise.reject(new Error(`storage unavailable: ${'x'.repeat(600)}`)) : base.jobs.enqueueMany(jobs)),
    },
  };
  return { storage, down };
}

/** What a first login enqueues once the company is created (`sso/provisioning.ts`). */
const companyCreated = (storage: StorageAdapter, groupId = GROUP) =>
  storage.jobs.enqueue({
    type: JobTypes.companyCreated,
    tenant: TENANT,
    groupId,
    dedupeKey: `company.created:${TENANT}:${groupId}`,
    payload: { tenant: TENANT, groupId, companyId: `co-${groupId}`, group: { uid: groupId } },
    maxAttempts: 2,
  });

describe('status of a group whose company set-up (company.created) died', () => {
  it.each([
    ['an adapter that filters dead letters by group', (s: StorageAdapter) => s],
    ['an adapter that ignores the groupId filter', withoutGroupFilter],
  ])('is ERROR with that job’s failure, not ENQUEUED: no import was ever queued (%s)', async (_name, view) => {
    const { storage, down } = flakyAdapter();
    const s = setup(view(storage));
    await provision(s.storage);
    await provision(s.storage, 'cld-other');
    await companyCreated(s.storage);
    // Not run yet: the import will be queued by it.
    expect(await s.status()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });

    down.now = true;
    await s.drain();
    down.now = false;
    const [dead, ...more] = await s.storage.jobs.listDead({ tenant: TENANT, groupId: GROUP });
    expect(more).toEqual([]);
    expect(dead?.type).toBe(JobTypes.companyCreated);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });

    const failed = await s.status();
    expect(failed).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'ERROR', updated_at: dead?.updatedAt.toISOString() });
    expect(String(failed.message)).toMatch(/^storage unavailable: x+$/);
    expect(String(failed.message)).toHaveLength(500);
    // Another group's failed set-up is not this one's.
    expect(await s.status('cld-other')).toEqual({ group_id: 'cld-other', sync_enabled: true, status: 'ENQUEUED' });
    // Switched off, DISABLED wins, with the failure as the last outcome.
    expect(await s.toggle()).toEqual({ ...failed, sync_enabled: false, status: 'DISABLED' });
    // Back on: the import is enqueued (what switching on does for a group never imported).
    expect(await s.toggle()).toMatchObject({ sync_enabled: true, status: 'ENQUEUED' });
    await s.drain();
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });

  it('a start enqueues the import: ENQUEUED, then SUCCESS once it ran', async () => {
    const { storage, down } = flakyAdapter();
    const s = setup(storage);
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await failSetUp(s, down);
    expect(await s.status()).toMatchObject({ status: 'ERROR' });

    expect(await s.start()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    expect(await s.status()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    await s.drain();
    expect(s.app.contacts.size).toBe(1);
    const after = await s.status();
    expect(after).toMatchObject({ status: 'SUCCESS' });
    expect(after).not.toHaveProperty('message');
    // The dead set-up job is still there (nobody retried or discarded it): the sync's outcome wins.
    expect(await s.storage.jobs.counts({ type: JobTypes.companyCreated })).toMatchObject({ dead: 1 });
  });

  it('a company.created whose dead letter is discarded stays ERROR (nothing was queued since)', async () => {
    const { storage, down } = flakyAdapter();
    const s = setup(storage);
    await provision(s.storage);
    await failSetUp(s, down);
    const failed = await s.status();
    expect(failed).toMatchObject({ status: 'ERROR' });
    const [dead] = await s.mno.worker.deadLetters({ type: JobTypes.companyCreated });
    expect(await s.mno.worker.discardDeadLetter(dead?.jobId ?? '')).toBe(true);
    expect(await s.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
    expect(await s.status()).toEqual(failed);
    // A start runs the import: its success wins.
    await s.start();
    await s.drain();
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });

  it('a company.created discarded, then a start whose import succeeds, all in the millisecond the job died: SUCCESS', async () => {
    // The clock runs until the job is dead, then stops at its death: the discard, the start and
    // the import share that millisecond (1 run in ~300 of the test above on a fast machine).
    // The success was noted after the discard, so it is the last outcome, not the failure.
    let frozen: number | null = null;
    const clock = () => new Date(frozen ?? Date.now());
    const { storage, down } = flakyAdapter(memoryAdapter({ clock }));
    const s = setup(storage, clock);
    await provision(s.storage);
    await failSetUp(s, down);
    const [dead] = await s.mno.worker.deadLetters({ type: JobTypes.companyCreated });
    const died = (await s.storage.jobs.get(dead?.jobId ?? ''))?.updatedAt.getTime() ?? null;
    expect(died).not.toBeNull();
    frozen = died;
    expect(await s.status()).toMatchObject({ status: 'ERROR' });
    expect(await s.mno.worker.discardDeadLetter(dead?.jobId ?? '')).toBe(true);
    await s.start();
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 1 });
    expect(await s.status()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'SUCCESS', updated_at: new Date(died ?? 0).toISOString() });
  });

  it('a company.created retried from its dead letter is ENQUEUED again (it queues the import)', async () => {
    const { storage, down } = flakyAdapter();
    const s = setup(storage);
    await provision(s.storage);
    await failSetUp(s, down);
    const [dead] = await s.mno.worker.deadLetters({ type: JobTypes.companyCreated });
    expect(await s.mno.worker.retryDeadLetter(dead?.jobId ?? '')).toBe(true);
    expect(await s.status()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 1 });
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });
});

/** Every entity of the harness connector switched off for the group (its sync stays on). */
const NOTHING_ENABLED = {
  sync: {
    entities: {
      contacts: { inbound: false, outbound: false },
      companies: { inbound: false, outbound: false },
      invoices: { inbound: false },
      items: { inbound: false },
    },
  },
};

describe('status of a group whose import covers no entity', () => {
  it('is SUCCESS (nothing to synchronize, nothing failed) once its import ran, not ENQUEUED', async () => {
    const s = setup();
    await provision(s.storage, GROUP, NOTHING_ENABLED);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    // The import after the first login: queued, so ENQUEUED is true.
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    expect(await s.status()).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    await s.drain();
    expect(s.app.contacts.size).toBe(0);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ pending: 0, running: 0, done: 1 });
    const done = await s.status();
    expect(done).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'SUCCESS', message: 'No entity is enabled for this group: there is nothing to synchronize' });
    expect(Date.parse(String(done.updated_at))).not.toBeNaN();

    // A start queues another import (ENQUEUED while it waits), which ends the same way.
    await new Promise((r) => setTimeout(r, 5));
    expect(await s.start()).toMatchObject({ status: 'ENQUEUED' });
    await s.drain();
    const again = await s.status();
    expect(again).toMatchObject({ status: 'SUCCESS', message: done.message });
    expect(Date.parse(String(again.updated_at))).toBeGreaterThan(Date.parse(String(done.updated_at)));
    // The sync switched off as a whole is DISABLED still.
    expect(await s.toggle()).toMatchObject({ sync_enabled: false, status: 'DISABLED' });
  });

  it('with only a push-only entity on (outbound, no local.list): SUCCESS without the "no entity" message, and its pushes still go', async () => {
    const s = pushOnlySetup({ noList: true });
    const claim = await s.storage.groups.claim(TENANT, GROUP, { owner: 'test', ttlMs: 60_000 });
    expect(claim.state).toBe('claimed');
    await s.storage.groups.complete(TENANT, GROUP, 'test', { companyId: 'co', orgUid: ORG_UID, settings: { sync: { entities: { companies: { inbound: false } } } } });
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    const done = await s.status();
    expect(done.json).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'SUCCESS' });
    expect(done.json).not.toHaveProperty('message');
    // The entity is on: the app's change reaches Connec!.
    const record = { id: 'app-1', name: 'Acme', updatedAt: new Date() };
    s.rows.set('app-1', record);
    expect(await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record })).toMatchObject({ status: 'pushed' });
    expect(s.connec.all(GROUP, 'organizations').map((o) => o.name)).toEqual(['Acme']);
  });

  it('a dead import of such a group is still its ERROR', async () => {
    const s = setup();
    await provision(s.storage, GROUP, NOTHING_ENABLED);
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    // Its one attempt fails for good (say, the worker's process crashed it): a dead letter.
    const [job] = await s.storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: [JobTypes.syncImport] });
    expect(await s.storage.jobs.fail(job?.id ?? '', 'w', { error: { message: 'boom' }, retryAt: new Date(), final: true })).toBe('dead');
    expect(await s.status()).toMatchObject({ status: 'ERROR', message: 'boom' });
    await new Promise((r) => setTimeout(r, 5));
    expect(await s.start()).toMatchObject({ status: 'ENQUEUED' });
    await s.drain();
    expect(await s.status()).toMatchObject({ status: 'SUCCESS' });
  });
});
