// The connector control endpoints Maestrano calls (PROTOCOL §5.4): start a sync, read its
// status, switch a group's sync off and on, update_metadata. Requests go through `mno.handler`
// on loopback HTTP; every test also checks what storage holds.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMaestrano,
  type GroupSyncSettings,
  type JobRecord,
  JobTypes,
  type JsonObject,
  type Logger,
  type Maestrano,
  type MarketplaceInput,
  memoryAdapter,
  type StorageAdapter,
  staticTenants,
  type Tenant,
  toNodeListener,
} from '@org/maestrano-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONTROL_CURSOR, recordDiscardedFailure, recordSyncSuccess } from '../../src/sync/control.js';
import { groupSyncLockKey } from '../../src/sync/engine.js';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, C, drainer, GROUP, LocalApp, ORG_UID, silentLogger, TENANT, testTenant } from './harness.js';

let handler: (request: Request) => Promise<Response> = async () => new Response(null, { status: 503 });
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => void toNodeListener((request) => handler(request))(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Setup {
  mno: Maestrano;
  storage: StorageAdapter;
  app: LocalApp;
  connec: FakeConnec;
  drain: () => Promise<void>;
}

function setup(
  tenants: Tenant[] | MarketplaceInput[] = [testTenant()],
  options: { connector?: boolean; pollIntervalMs?: number; storage?: StorageAdapter; logger?: Logger; clock?: () => Date } = {},
): Setup {
  const storage = options.storage ?? memoryAdapter();
  const app = new LocalApp();
  const connec = new FakeConnec(ORG_UID);
  const list = tenants as unknown[];
  const isResolved = list.every((t) => typeof t === 'object' && t !== null && 'name' in t);
  const mno = createMaestrano({
    tenants: isResolved ? staticTenants(tenants as Tenant[]) : (tenants as MarketplaceInput[]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: options.logger ?? silentLogger,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.connector === false
      ? {}
      : { connector: buildConnector(app), sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}) } }),
  });
  handler = mno.handler;
  return { mno, storage, app, connec, drain: drainer(mno.worker, storage) };
}

async function provision(storage: StorageAdapter, tenant = TENANT, groupId = GROUP, settings: Record<string, unknown> = {}) {
  const claim = await storage.groups.claim(tenant, groupId, { owner: 'test', ttlMs: 60_000 });
  if (claim.state !== 'claimed') throw new Error('group already provisioned');
  return storage.groups.complete(tenant, groupId, 'test', { companyId: `co-${groupId}`, orgUid: ORG_UID, settings: JSON.parse(JSON.stringify(settings)) });
}

const basic = (id = API_ID, key = API_KEY) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;

async function call(
  method: string,
  path: string,
  body?: Record<string, unknown> | string,
  auth: string | null = basic(),
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  let payload: string | undefined;
  if (typeof body === 'string') {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const SYNC = `/maestrano/${TENANT}/synchronizations`;
const start = (body: Record<string, unknown> | string = { group_id: GROUP }, auth?: string | null) => call('POST', SYNC, body, auth);
const status = (groupId = GROUP, auth?: string | null) => call('GET', `${SYNC}/${encodeURIComponent(groupId)}`, undefined, auth);
const toggle = (body: Record<string, unknown> | string = { group_id: GROUP }, auth?: string | null) => call('PUT', `${SYNC}/toggle_sync`, body, auth);
const updateMetadata = (body: Record<string, unknown> | string = { group_id: GROUP, metadata: { organization_name: 'Acme' } }, auth?: string | null) =>
  call('PUT', `${SYNC}/update_metadata`, body, auth);

const person = (id: string, lastName: string) => ({
  id: [C(id)],
  first_name: 'Jane',
  last_name: lastName,
  group_id: GROUP,
  channel_id: ORG_UID,
  resource_type: 'people',
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
});
const notify = (body: unknown, tenant = TENANT) =>
  fetch(`${base}/maestrano/connec/notifications/${tenant}`, {
    method: 'POST',
    headers: { authorization: basic(), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** Every job of the store by status (all types). */
const jobCounts = (storage: StorageAdapter, type?: string) => storage.jobs.counts(type ? { type } : {});
const noJobs = { pending: 0, running: 0, done: 0, dead: 0 };
const trackedJob = async (storage: StorageAdapter, tenant = TENANT, groupId = GROUP) => {
  const cursor = await storage.cursors.get({ tenant, groupId, ...CONTROL_CURSOR });
  return typeof cursor?.data.jobId === 'string' ? storage.jobs.get(cursor.data.jobId) : null;
};

describe('POST …/synchronizations (start) and GET …/synchronizations/:group_id (status)', () => {
  let s: Setup;
  beforeEach(async () => {
    s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    s.connec.seed(GROUP, 'people', { first_name: 'John', last_name: 'Roe' }, 'p2');
  });

  it('enqueues the group import, which the worker runs; the status goes ENQUEUED then SUCCESS', async () => {
    expect(await status()).toEqual({ status: 200, json: { group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' } });
    const started = await start();
    expect(started).toEqual({ status: 201, json: { group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' } });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, pending: 1 });
    const job = await trackedJob(s.storage);
    expect(job).toMatchObject({ type: JobTypes.syncImport, tenant: TENANT, groupId: GROUP, payload: { full: false }, status: 'pending' });
    expect((await status()).json.status).toBe('ENQUEUED');
    expect(s.app.contacts.size).toBe(0);

    await s.drain();
    expect([...s.app.contacts.values()].map((c) => c.lastName).sort()).toEqual(['Doe', 'Roe']);
    expect(s.app.companies.size).toBe(1);
    const after = await status();
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'SUCCESS' });
    expect(Date.parse(String(after.json.updated_at))).not.toBeNaN();
    expect(after.json.message).toBeUndefined();
  });

  it('after the initial import, a start enqueues an incremental poll that applies what changed', async () => {
    await start();
    await s.drain();
    // Connec! stamps the edit after the import began (what the poll reads from).
    s.connec.setClock(new Date(Date.now() + 60_000).toISOString());
    s.connec.edit(GROUP, 'people', 'p1', { last_name: 'Doe-Smith' });
    expect((await start()).json.status).toBe('ENQUEUED');
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toEqual({ ...noJobs, pending: 1 });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, done: 1 });
    expect((await trackedJob(s.storage))?.type).toBe(JobTypes.syncPoll);
    await s.drain();
    expect([...s.app.contacts.values()].map((c) => c.lastName).sort()).toEqual(['Doe-Smith', 'Roe']);
    expect((await status()).json.status).toBe('SUCCESS');
  });

  it('opts.full_sync (a form body) enqueues a full import, even after the initial import', async () => {
    await start();
    await s.drain();
    const listsBefore = s.connec.listCalls.length;
    const res = await start(`group_id=${GROUP}&opts%5Bfull_sync%5D=true`);
    // The answer carries the last sync's time too (the initial import's).
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    expect(Date.parse(String(res.json.updated_at))).not.toBeNaN();
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toEqual(noJobs);
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, pending: 1, done: 1 });
    expect(await trackedJob(s.storage)).toMatchObject({ type: JobTypes.syncImport, payload: { full: true } });
    await s.drain();
    // A full import reads every collection again from the first page.
    expect(s.connec.listCalls.slice(listsBefore).filter((c) => c.skip === 0 && c.filter === undefined).map((c) => c.collection)).toEqual(
      expect.arrayContaining(['organizations', 'people']),
    );
    expect((await status()).json.status).toBe('SUCCESS');
  });

  it('opts.full_sync in a JSON body asks for a full import; false does not', async () => {
    await start({ group_id: GROUP, opts: { full_sync: false } });
    expect(await trackedJob(s.storage)).toMatchObject({ payload: { full: false } });
    await s.drain();
    await start({ group_id: GROUP, opts: { full_sync: true } });
    expect(await trackedJob(s.storage)).toMatchObject({ type: JobTypes.syncImport, payload: { full: true } });
  });

  it('answers RUNNING while the sync is leased, and a start then enqueues nothing more', async () => {
    await start();
    const [claimed] = await s.storage.jobs.claim({ worker: 'busy-worker', limit: 1, leaseMs: 60_000, types: [JobTypes.syncImport] });
    expect(claimed?.type).toBe(JobTypes.syncImport);
    expect((await status()).json.status).toBe('RUNNING');
    const again = await start({ group_id: GROUP, opts: { full_sync: true } });
    expect(again).toEqual({ status: 201, json: { group_id: GROUP, sync_enabled: true, status: 'RUNNING' } });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, running: 1 });
  });

  it('a second start while the first waits enqueues nothing more', async () => {
    await start();
    expect((await start()).json.status).toBe('ENQUEUED');
    expect(await jobCounts(s.storage)).toEqual({ ...noJobs, pending: 1 });
  });

  it('answers ERROR with the message once the sync failed every attempt', async () => {
    s.connec.failLists = 1_000;
    await start();
    await s.drain();
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, dead: 1 });
    const res = await status();
    expect(res.json).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'ERROR' });
    expect(String(res.json.message)).toContain('Connec! unavailable');
    expect(Date.parse(String(res.json.updated_at))).not.toBeNaN();
  });

  it('reports the dead import that followed a first login (not started by the endpoint) as ERROR', async () => {
    s.connec.failLists = 1_000;
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect((await status()).json.status).toBe('ERROR');
    // A start then runs a new import (the stored one has ended), which succeeds.
    s.connec.failLists = 0;
    expect((await start()).json.status).toBe('ENQUEUED');
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, pending: 1, dead: 1 });
    await s.drain();
    expect(s.app.contacts.size).toBe(2);
    expect((await status()).json.status).toBe('SUCCESS');
  });

  // Discarding dismisses the dead letter from the listings: the failed sync neither succeeded nor
  // is queued again, so the status stays the ERROR it was (not `ENQUEUED`, nothing being queued).
  it.each(['sync', 'worker'] as const)('a dead import discarded with mno.%s.discardDeadLetter stays the ERROR it was until a start succeeds', async (api) => {
    s.connec.failLists = 1_000;
    await start();
    await s.drain();
    const failed = (await status()).json;
    expect(failed).toMatchObject({ group_id: GROUP, sync_enabled: true, status: 'ERROR' });
    expect(String(failed.message)).toContain('Connec! unavailable');
    const [dead, ...more] = await s.mno.sync.deadLetters({ groupId: GROUP });
    expect(more).toEqual([]);
    expect(dead?.type).toBe(JobTypes.syncImport);

    expect(await s.mno[api].discardDeadLetter(dead?.jobId ?? '')).toBe(true);
    expect(await s.mno.worker.deadLetters()).toEqual([]);
    expect(await jobCounts(s.storage)).toEqual(noJobs);
    expect(await status()).toEqual({ status: 200, json: failed });
    // Switched off, DISABLED wins, with the failure still as the last outcome.
    const off = await toggle();
    expect(off.json).toEqual({ ...failed, sync_enabled: false, status: 'DISABLED' });
    await toggle(); // on again: the import is enqueued again (ENQUEUED), and fails again
    expect((await status()).json.status).toBe('ENQUEUED');
    await s.drain();
    const again = await s.mno.sync.deadLetters({ groupId: GROUP });
    expect(again.map((d) => d.type)).toEqual([JobTypes.syncImport]);
    expect(await s.mno[api].discardDeadLetter(again[0]?.jobId ?? '')).toBe(true);
    expect((await status()).json).toMatchObject({ status: 'ERROR', message: failed.message });

    s.connec.failLists = 0;
    expect((await start()).json).toMatchObject({ status: 'ENQUEUED' });
    await s.drain();
    expect(s.app.contacts.size).toBe(2);
    const after = (await status()).json;
    expect(after).toMatchObject({ status: 'SUCCESS' });
    expect(after.message).toBeUndefined();
  });

  it('a dead poll discarded after the import succeeded stays the ERROR it was (not the import\'s SUCCESS) until a poll succeeds', async () => {
    await start();
    await s.drain();
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
    s.connec.failLists = 1_000;
    await new Promise((r) => setTimeout(r, 5));
    await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    const failed = (await status()).json;
    expect(failed).toMatchObject({ status: 'ERROR' });
    expect(String(failed.message)).toContain('Connec! unavailable');
    const [dead] = await s.mno.worker.deadLetters({ type: JobTypes.syncPoll });
    expect(await s.mno.worker.discardDeadLetter(dead?.jobId ?? '')).toBe(true);
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toEqual(noJobs);
    expect(await status()).toEqual({ status: 200, json: failed });

    s.connec.failLists = 0;
    await new Promise((r) => setTimeout(r, 5));
    expect((await start()).json).toMatchObject({ status: 'ENQUEUED' });
    await s.drain();
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  it('a dead import of a deleted group is discarded without a note (its status is a 404; a note written after its purge would bring a cursor back)', async () => {
    s.connec.failLists = 1_000;
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    const [dead] = await s.mno.sync.deadLetters({ groupId: GROUP });
    expect(dead?.type).toBe(JobTypes.syncImport);
    expect((await s.storage.groups.cancel(TENANT, GROUP)).changed).toBe(true);
    const before = await s.storage.cursors.list(TENANT, GROUP);

    expect(await s.mno.worker.discardDeadLetter(dead?.jobId ?? '')).toBe(true);
    expect(await s.storage.jobs.get(dead?.jobId ?? '')).toBeNull();
    expect(await s.storage.cursors.list(TENANT, GROUP)).toEqual(before);
    expect(before.some((c) => c.kind === 'sync.discarded')).toBe(false);
  });

  it('a discard that lost to a retry leaves no ERROR behind: the import queued again is what the status tells', async () => {
    s.connec.failLists = 1_000;
    await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    const [dead] = await s.storage.jobs.listDead({ tenant: TENANT, groupId: GROUP });
    expect(dead?.type).toBe(JobTypes.syncImport);
    // The discard noted the failure, then found the dead letter retried meanwhile.
    await recordDiscardedFailure(s.storage, dead as JobRecord);
    expect(await s.mno.sync.retryDeadLetter(dead?.id ?? '')).toBe(true);
    expect(await s.storage.jobs.discard(dead?.id ?? '')).toBe(false);
    expect((await status()).json).toEqual({ group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' });
    s.connec.failLists = 0;
    await s.drain();
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });
});

describe('PUT …/synchronizations/toggle_sync', () => {
  it('switches the group sync off (DISABLED, notifications skipped) and on again (applied)', async () => {
    const s = setup();
    await provision(s.storage);
    const off = await toggle();
    expect(off).toEqual({ status: 200, json: { group_id: GROUP, sync_enabled: false, status: 'DISABLED' } });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ sync: { enabled: false } });
    expect((await status()).json).toEqual({ group_id: GROUP, sync_enabled: false, status: 'DISABLED' });

    // A notification for the group is taken in, and skipped by the worker.
    expect((await notify({ people: [person('p1', 'Off')] })).status).toBe(200);
    await s.drain();
    expect(s.app.contacts.size).toBe(0);
    expect(await s.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p1' })).toBeNull();
    // So is a push, and a start enqueues nothing.
    const [pushed] = await s.mno.sync.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [{ id: 'local-1', firstName: 'A', lastName: 'B', jobTitle: null, email: null, companyId: null, updatedAt: new Date() }] });
    expect(pushed?.status).toBe('skipped');
    expect(s.connec.batches).toEqual([]);
    const startedOff = await start();
    expect(startedOff.status).toBe(201);
    expect(startedOff.json).toMatchObject({ group_id: GROUP, sync_enabled: false, status: 'DISABLED' });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual(noJobs);

    const on = await toggle(`group_id=${GROUP}`);
    expect(on.status).toBe(200);
    expect(on.json).toMatchObject({ group_id: GROUP, sync_enabled: true });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ sync: { enabled: true } });
    expect((await notify({ people: [person('p2', 'On')] })).status).toBe(200);
    await s.drain();
    expect([...s.app.contacts.values()].map((c) => c.lastName)).toEqual(['On']);
  });

  it('keeps the other settings of the group, per-entity switches included', async () => {
    const s = setup();
    const settings = { plan: 'gold', sync: { entities: { items: { inbound: false } }, importSince: '2020-01-01T00:00:00Z' } };
    await provision(s.storage, TENANT, GROUP, settings);
    await toggle();
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold', sync: { ...settings.sync, enabled: false } });
    await toggle();
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold', sync: { ...settings.sync, enabled: true } });
  });

  it("a toggle arriving while the app changes the group's settings (mno.sync.updateGroupSettings) waits for it: neither change is lost", async () => {
    const memory = memoryAdapter();
    let refusals = 0;
    let refused: () => void = () => undefined;
    const toggleWaiting = new Promise<void>((resolve) => {
      refused = resolve;
    });
    const storage: StorageAdapter = {
      ...memory,
      locks: {
        ...memory.locks,
        acquire: async (key, owner, ttlMs) => {
          const ok = await memory.locks.acquire(key, owner, ttlMs);
          if (!ok && key.startsWith('group-settings:')) {
            refusals++;
            refused();
          }
          return ok;
        },
      },
    };
    const s = setup([testTenant()], { storage });
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The app switches the items entity off; its update is slow (it read the settings already).
    const appUpdate = s.mno.sync.updateGroupSettings({
      tenant: TENANT,
      groupId: GROUP,
      update: async (settings) => {
        await gate;
        const sync = (settings.sync ?? {}) as Record<string, unknown>;
        return { ...settings, sync: { ...sync, entities: { items: { inbound: false } } } };
      },
    });
    const platformToggle = toggle();
    await toggleWaiting; // the toggle found the settings lock taken
    release();
    const updated = await appUpdate;
    expect(updated.settings).toEqual({ plan: 'gold', sync: { entities: { items: { inbound: false } } } });
    expect(await platformToggle).toMatchObject({ status: 200, json: { sync_enabled: false } });
    expect(refusals).toBeGreaterThan(0);
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold', sync: { entities: { items: { inbound: false } }, enabled: false } });
  });

  it('mno.sync.updateGroupSettings whose lock lapsed while its update ran (a paused process) writes nothing over a toggle made meanwhile', async () => {
    let offset = 0;
    const realNow = Date.now.bind(Date);
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    try {
      const s = setup([testTenant()], { storage: memoryAdapter({ clock: () => new Date(Date.now()) }) });
      await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
      let toggled = 0;
      const app = s.mno.sync.updateGroupSettings({
        tenant: TENANT,
        groupId: GROUP,
        update: async (settings) => {
          offset += 31_000; // paused past the lock's 30 s: another instance toggles meanwhile
          toggled = (await toggle()).status;
          return { ...settings, mine: true };
        },
      });
      await expect(app).rejects.toMatchObject({ name: 'SyncError', message: expect.stringMatching(/retry/) });
      expect(toggled).toBe(200);
      expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold', sync: { enabled: false } });
    } finally {
      spy.mockRestore();
    }
  });

  it.each<[string, JsonObject, string]>([
    ['an importSince that is no timestamp (nothing would be held back)', { importSince: 'last tuesday' }, 'sync.importSince must be an ISO-8601 timestamp'],
    ['an entity name the connector does not define (a typo switches nothing off)', { entities: { item: { inbound: false } } }, 'sync.entities.item is not an entity of the connector'],
    ['a switch that is not a boolean (ignored)', { entities: { items: { inbound: 'false' } } }, 'sync.entities.items.inbound must be true or false'],
    ['an enabled flag that is not a boolean', { enabled: 'no' }, 'sync.enabled must be true or false'],
  ])('mno.sync.updateGroupSettings refuses %s with a PayloadValidationError naming it, and writes nothing', async (_what, sync, message) => {
    const s = setup();
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    const update = s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (settings) => ({ ...settings, sync }) });
    await expect(update).rejects.toMatchObject({ name: 'PayloadValidationError', message: expect.stringContaining(message) });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold' });
    // The lock is free again: a valid change goes through.
    const valid = { importSince: '2016-07-28 00:00:00', entities: { items: { inbound: false } } };
    expect((await s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (settings) => ({ ...settings, sync: valid }) })).settings).toEqual({ plan: 'gold', sync: valid });
  });

  it('mno.sync.updateGroupSettings keeps the switch of an entity since removed from the connector (it must not block other changes)', async () => {
    const s = setup();
    await provision(s.storage, TENANT, GROUP, { sync: { entities: { retired: { inbound: false } } } });
    const updated = await s.mno.sync.updateGroupSettings({
      tenant: TENANT,
      groupId: GROUP,
      update: (settings) => ({ ...settings, sync: { ...(settings.sync as object), importSince: '2016-07-28T00:00:00Z' } }),
    });
    expect(updated.settings).toEqual({ sync: { entities: { retired: { inbound: false } }, importSince: '2016-07-28T00:00:00Z' } });
  });

  it('mno.sync.updateGroupSettings keeps values an earlier release stored without checking them (they must not block other changes)', async () => {
    const s = setup();
    // Stored before settings were checked: an epoch-ms importSince and a string switch.
    const earlier = { importSince: 1469664000000, entities: { items: { inbound: 'no' } } };
    await provision(s.storage, TENANT, GROUP, { sync: earlier });
    const updated = await s.mno.sync.updateGroupSettings({
      tenant: TENANT,
      groupId: GROUP,
      update: (settings) => ({ ...settings, sync: { ...(settings.sync as object), entities: { ...earlier.entities, companies: { outbound: false } } } }),
    });
    expect(updated.settings).toEqual({ sync: { importSince: 1469664000000, entities: { items: { inbound: 'no' }, companies: { outbound: false } } } });
    // A new invalid value is still refused.
    await expect(
      s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (settings) => ({ ...settings, sync: { ...(settings.sync as object), importSince: 'yesterday' } }) }),
    ).rejects.toThrow(/importSince/);
  });

  it('the exported GroupSyncSettings types what updateGroupSettings stores, the enabled switch included', async () => {
    const s = setup();
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    // Built before the call (a settings form, an admin action): typed with the SDK's own type.
    const sync: GroupSyncSettings = { enabled: false, entities: { companies: { outbound: true } }, importSince: '2016-07-28T00:00:00Z' };
    const updated = await s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: (settings) => ({ ...settings, sync }) });
    expect(updated.settings).toEqual({ plan: 'gold', sync });
    // `enabled: false` is the switch the platform's toggle flips: the group's sync is off.
    expect((await status()).json).toMatchObject({ sync_enabled: false, status: 'DISABLED' });
    expect(await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: { id: 'org-1', name: 'Acme', code: null, updatedAt: new Date() } })).toMatchObject({
      status: 'skipped',
    });
  });

  it('an app edit pushed while the sync is off (skipped) reaches Connec! once the sync is switched back on; unchanged records are not sent', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    s.connec.seed(GROUP, 'organizations', { name: 'Globex' }, 'o2');
    await start();
    await s.drain();
    expect([...s.app.companies.values()].map((c) => c.name).sort()).toEqual(['Acme', 'Globex']);
    expect((await toggle()).json).toMatchObject({ sync_enabled: false });

    // The app renames Acme while the sync is off: the push is skipped.
    const acme = [...s.app.companies.values()].find((c) => c.name === 'Acme');
    if (!acme) throw new Error('Acme was not imported');
    s.app.companies.set(acme.id, { ...acme, name: 'Acme Ltd' });
    const skipped = await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: { ...acme, name: 'Acme Ltd' } });
    expect(skipped.status).toBe('skipped');
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme');

    const batchesBefore = s.connec.batches.length;
    expect((await toggle()).json).toMatchObject({ sync_enabled: true });
    await s.drain();
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Ltd');
    expect(s.connec.find(GROUP, 'organizations', 'o2')?.name).toBe('Globex');
    // Only the renamed record was sent.
    const sent = s.connec.batches.slice(batchesBefore).flat();
    expect(sent.map((op) => ({ method: op.method, collection: op.collection, name: op.record.name }))).toEqual([{ method: 'put', collection: 'organizations', name: 'Acme Ltd' }]);
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toMatchObject({ dead: 0, pending: 0 });
    // The initial import is still reported complete (the catch-up keeps a cursor of its own).
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  it('mno.sync.pushChanged pushes what changed since the last push, and only that', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    await start();
    await s.drain();
    const acme = [...s.app.companies.values()][0];
    if (!acme) throw new Error('Acme was not imported');
    const quiet = await s.mno.sync.pushChanged({ tenant: TENANT, groupId: GROUP });
    expect(quiet.entities.companies).toMatchObject({ pushed: 0, failed: 0 });
    s.app.companies.set(acme.id, { ...acme, name: 'Acme Holdings' });
    const report = await s.mno.sync.pushChanged({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.companies).toMatchObject({ pushed: 1, failed: 0 });
    expect(s.connec.find(GROUP, 'organizations', 'o1')?.name).toBe('Acme Holdings');
  });

  it('mno.sync.updateGroupSettings: an unknown or cancelled group is a SyncError and nothing is stored', async () => {
    const s = setup();
    await expect(s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: 'cld-none', update: (x) => x })).rejects.toMatchObject({
      name: 'SyncError',
      message: expect.stringMatching(/cld-none/),
    });
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    await s.storage.groups.cancel(TENANT, GROUP);
    await expect(s.mno.sync.updateGroupSettings({ tenant: TENANT, groupId: GROUP, update: () => ({ plan: 'silver' }) })).rejects.toMatchObject({ name: 'SyncError' });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold' });
  });
});

describe('PUT …/synchronizations/update_metadata', () => {
  it('answers 200 with the group state and stores nothing', async () => {
    const s = setup();
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    const res = await updateMetadata();
    expect(res).toEqual({ status: 200, json: { group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' } });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ plan: 'gold' });
    expect(await jobCounts(s.storage)).toEqual(noJobs);
  });
});

describe('refusals', () => {
  it('answers 401 to wrong or missing credentials on every control route and changes nothing', async () => {
    const s = setup();
    await provision(s.storage, TENANT, GROUP, { plan: 'gold' });
    const before = await s.storage.groups.get(TENANT, GROUP);
    for (const auth of [basic(API_ID, 'wrong'), basic('someone', API_KEY), null, 'Bearer token']) {
      for (const res of [await start(undefined, auth), await status(GROUP, auth), await toggle(undefined, auth), await updateMetadata(undefined, auth)]) {
        expect(res).toEqual({ status: 401, json: { error: 'Invalid credentials' } });
      }
    }
    expect(await s.storage.groups.get(TENANT, GROUP)).toEqual(before);
    expect(await jobCounts(s.storage)).toEqual(noJobs);
    expect(await s.storage.cursors.list(TENANT, GROUP)).toEqual([]);
  });

  it('answers 404 Organization not found for an unknown or cancelled group', async () => {
    const s = setup();
    await provision(s.storage, TENANT, 'cld-gone');
    await s.storage.groups.cancel(TENANT, 'cld-gone');
    const notFound = { status: 404, json: { errors: [{ message: 'Organization not found', code: 404 }] } };
    for (const groupId of ['cld-unknown', 'cld-gone']) {
      expect(await start({ group_id: groupId })).toEqual(notFound);
      expect(await status(groupId)).toEqual(notFound);
      expect(await toggle({ group_id: groupId })).toEqual(notFound);
      expect(await updateMetadata({ group_id: groupId })).toEqual(notFound);
    }
    expect(await s.storage.groups.get(TENANT, 'cld-unknown')).toBeNull();
    expect((await s.storage.groups.get(TENANT, 'cld-gone'))?.settings).toEqual({});
    expect(await jobCounts(s.storage)).toEqual(noJobs);
  });

  it('answers 400 for a missing or invalid group_id or body, and changes nothing', async () => {
    const s = setup();
    await provision(s.storage);
    const cases: [Promise<{ status: number; json: Record<string, unknown> }>, string][] = [
      [start({}), 'group_id is required'],
      [start({ group_id: '' }), 'group_id is required'],
      [start({ group_id: 42 }), 'group_id must be a string'],
      [start({ group_id: 'x'.repeat(300) }), 'group_id is longer than 255 characters'],
      [start({ group_id: 'cld-\u0001' }), 'group_id contains control characters'],
      [toggle({}), 'group_id is required'],
      [toggle('opts%5Bfull_sync%5D=true'), 'group_id is required'],
      [updateMetadata({ metadata: {} }), 'group_id is required'],
    ];
    for (const [pending, message] of cases) {
      expect(await pending).toEqual({ status: 400, json: { errors: [{ message, code: 400 }] } });
    }
    const invalidJson = await fetch(`${base}${SYNC}`, { method: 'POST', headers: { authorization: basic(), 'content-type': 'application/json' }, body: '{"group_id":' });
    expect(invalidJson.status).toBe(400);
    expect(await invalidJson.json()).toEqual({ errors: [{ message: 'The request body is not valid JSON', code: 400 }] });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({});
    expect(await jobCounts(s.storage)).toEqual(noJobs);
  });

  it('without a connector, the control paths are not routes (404) and nothing is stored', async () => {
    const s = setup([testTenant()], { connector: false });
    await provision(s.storage);
    expect((await start()).status).toBe(404);
    expect((await status()).status).toBe(404);
    expect((await toggle()).status).toBe(404);
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({});
    expect(await jobCounts(s.storage)).toEqual(noJobs);
  });
});

describe('configured paths and several tenants', () => {
  const market = (name: string, apiId: string, apiKey: string, app: Record<string, string> = {}): MarketplaceInput => ({
    marketplace: name,
    app: { host: 'http://127.0.0.1:3000', ...app },
    api: { id: apiId, key: apiKey, host: 'http://127.0.0.1:1' },
    sso: { enabled: false },
    connec: { host: 'http://127.0.0.1:1' },
  });

  it('serves the synchronization paths a tenant config gives, and not the defaults', async () => {
    const s = setup([
      market(TENANT, API_ID, API_KEY, {
        synchronization_start_path: `/connector/${TENANT}/sync`,
        synchronization_toggle_path: `/connector/${TENANT}/sync/switch`,
        synchronization_status_path: `/connector/${TENANT}/sync/status/:cld-uid`,
      }),
    ]);
    await provision(s.storage);
    expect((await start()).status).toBe(404);
    expect((await toggle()).status).toBe(404);
    expect(await jobCounts(s.storage)).toEqual(noJobs);

    const started = await call('POST', `/connector/${TENANT}/sync`, { group_id: GROUP });
    expect(started).toEqual({ status: 201, json: { group_id: GROUP, sync_enabled: true, status: 'ENQUEUED' } });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toEqual({ ...noJobs, pending: 1 });
    expect((await call('GET', `/connector/${TENANT}/sync/status/${GROUP}`)).json).toMatchObject({ group_id: GROUP, status: 'ENQUEUED' });
    const off = await call('PUT', `/connector/${TENANT}/sync/switch`, { group_id: GROUP });
    expect(off.json).toMatchObject({ group_id: GROUP, sync_enabled: false, status: 'DISABLED' });
    expect((await s.storage.groups.get(TENANT, GROUP))?.settings).toEqual({ sync: { enabled: false } });
    // update_metadata, which the platform does not configure, sits under the start path.
    expect((await call('PUT', `/connector/${TENANT}/sync/update_metadata`, { group_id: GROUP })).status).toBe(200);
  });

  it("one tenant's credentials cannot toggle or start another tenant's group", async () => {
    const s = setup([market('tenant-a', 'app-a', 'key-a'), market('tenant-b', 'app-b', 'key-b')]);
    await provision(s.storage, 'tenant-a', GROUP);
    await provision(s.storage, 'tenant-b', GROUP);
    const asA = basic('app-a', 'key-a');
    const asB = basic('app-b', 'key-b');
    expect(await call('PUT', '/maestrano/tenant-b/synchronizations/toggle_sync', { group_id: GROUP }, asA)).toEqual({ status: 401, json: { error: 'Invalid credentials' } });
    expect((await call('POST', '/maestrano/tenant-b/synchronizations', { group_id: GROUP }, asA)).status).toBe(401);
    expect((await call('GET', `/maestrano/tenant-b/synchronizations/${GROUP}`, undefined, asA)).status).toBe(401);
    expect((await s.storage.groups.get('tenant-b', GROUP))?.settings).toEqual({});
    expect(await jobCounts(s.storage)).toEqual(noJobs);

    const own = await call('PUT', '/maestrano/tenant-a/synchronizations/toggle_sync', { group_id: GROUP }, asA);
    expect(own.json).toMatchObject({ sync_enabled: false });
    expect((await s.storage.groups.get('tenant-a', GROUP))?.settings).toEqual({ sync: { enabled: false } });
    expect((await s.storage.groups.get('tenant-b', GROUP))?.settings).toEqual({});
    expect((await call('GET', `/maestrano/tenant-b/synchronizations/${GROUP}`, undefined, asB)).json).toMatchObject({ sync_enabled: true });
  });

  it('on a tenant-less path several tenants configure, the credentials pick the tenant', async () => {
    const paths = { synchronization_start_path: '/sync', synchronization_toggle_path: '/sync/toggle_sync', synchronization_status_path: '/sync/:group_id' };
    const s = setup([market('tenant-a', 'app-a', 'key-a', paths), market('tenant-b', 'app-b', 'key-b', paths)]);
    await provision(s.storage, 'tenant-a', GROUP);
    await provision(s.storage, 'tenant-b', GROUP);
    expect((await call('PUT', '/sync/toggle_sync', { group_id: GROUP }, basic('app-b', 'key-b'))).json).toMatchObject({ sync_enabled: false });
    expect((await s.storage.groups.get('tenant-b', GROUP))?.settings).toEqual({ sync: { enabled: false } });
    expect((await s.storage.groups.get('tenant-a', GROUP))?.settings).toEqual({});
    expect((await call('PUT', '/sync/toggle_sync', { group_id: GROUP }, basic('app-a', 'key-b'))).status).toBe(401);
    expect((await s.storage.groups.get('tenant-a', GROUP))?.settings).toEqual({});
    expect((await call('GET', `/sync/${GROUP}`, undefined, basic('app-a', 'key-a'))).json).toMatchObject({ sync_enabled: true, status: 'ENQUEUED' });
  });
});

describe('control endpoints: review regressions', () => {
  it('form and query keys naming a prototype are ignored: Object.prototype stays clean', async () => {
    const s = setup();
    await provision(s.storage);
    const polluted = () => ({}) as Record<string, unknown>;
    const st = await call('GET', `${SYNC}/${GROUP}?__proto__[polluted]=yes&constructor[prototype][also]=yes`);
    expect(st.status).toBe(200);
    const off = await toggle(`group_id=${GROUP}&__proto__%5Bsync_enabled%5D=1&prototype%5Bx%5D=1`);
    expect(off.json).toMatchObject({ group_id: GROUP, sync_enabled: false });
    expect(polluted().polluted).toBeUndefined();
    expect(polluted().also).toBeUndefined();
    expect(polluted().sync_enabled).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it("an import that finds the group's sync off waits (not done, no poll chain); switched back on, it runs and merges (no duplicate)", async () => {
    const s = setup(undefined, { pollIntervalMs: 60_000 });
    await provision(s.storage);
    s.app.companies.set('org-local', { id: 'org-local', name: 'Acme Pty', code: null, updatedAt: new Date() });
    s.connec.seed(GROUP, 'organizations', { name: 'Acme Pty' }, 'o1');
    expect((await toggle()).json).toMatchObject({ sync_enabled: false, status: 'DISABLED' });
    const { jobId } = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    // Deferred on the switch's wait key, its attempt counted, nothing imported, no poll chained.
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'pending', waitKey: `sync-enabled:${TENANT}:${GROUP}`, attempts: 1 });
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toEqual(noJobs);
    expect((await s.storage.cursors.list(TENANT, GROUP)).filter((c) => c.kind === 'import' || c.kind === 'poll' || c.kind === 'sync.succeeded')).toEqual([]);
    expect(s.connec.listCalls).toEqual([]);

    // Switched on: the waiting import is woken (and tracked), not duplicated.
    const on = await toggle();
    expect(on.json).toMatchObject({ sync_enabled: true, status: 'ENQUEUED' });
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toMatchObject({ pending: 1, done: 0 });
    await s.drain();
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'done' });
    // The import's outbound half merged the local company with o1: one company, linked.
    expect([...s.app.companies.keys()]).toEqual(['org-local']);
    expect((await s.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId: 'o1' }))?.localId).toBe('org-local');
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  it('switched off and on by the app itself (storage.groups.update), the waiting import runs at its next retry', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    const group = await s.storage.groups.get(TENANT, GROUP);
    await s.storage.groups.update(TENANT, GROUP, { settings: { ...group?.settings, sync: { enabled: false } } });
    const { jobId } = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'pending' });
    await s.storage.groups.update(TENANT, GROUP, { settings: { ...group?.settings, sync: { enabled: true } } });
    // Its retry is an hour later: here made due now, as that hour passing would.
    await s.storage.jobs.wake(`sync-enabled:${TENANT}:${GROUP}`);
    await s.drain();
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'done' });
    expect(s.app.contacts.size).toBe(1);
  });

  it('a poll while the sync is off reads nothing and records no success; the chain goes on', async () => {
    // The SDK's clock runs 10 minutes ahead while the poll runs (storage keeps real time), so
    // the poll it chains falls in a later one-minute slot than the import's pending one and
    // is a job of its own. The poll enqueued here is due an hour ago, a slot no other poll
    // uses: due "now", it merged with the import's chained poll whenever a minute boundary
    // passed between the import and this line (that chain's slot is the next minute's).
    let aheadMs = 0;
    const s = setup(undefined, { pollIntervalMs: 60_000, clock: () => new Date(Date.now() + aheadMs) });
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await start();
    await s.drain();
    const before = await s.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: '*', kind: 'sync.succeeded' });
    await toggle();
    const calls = s.connec.listCalls.length;
    const polls = await jobCounts(s.storage, JobTypes.syncPoll);
    expect(polls).toMatchObject({ pending: 1, dead: 0 }); // the import's chain
    await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP, runAt: new Date(Date.now() - 3_600_000) });
    aheadMs = 10 * 60_000;
    await s.drain();
    // The poll ran (done) without reading Connec!.
    expect((await jobCounts(s.storage, JobTypes.syncPoll)).done).toBe(polls.done + 1);
    expect(s.connec.listCalls.length).toBe(calls);
    expect(await s.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: '*', kind: 'sync.succeeded' })).toEqual(before);
    // It chained its own next poll beside the import's.
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toMatchObject({ pending: 2, dead: 0 });
  });

  it('a start whose import ran while the sync was off is not reported SUCCESS', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await start();
    await toggle(); // off before any worker ran
    await s.drain();
    expect(s.app.contacts.size).toBe(0);
    expect((await status()).json).toMatchObject({ status: 'DISABLED' });
    // Back on: the import is enqueued again and only its run is a success.
    expect((await toggle()).json).toMatchObject({ sync_enabled: true, status: 'ENQUEUED' });
    await s.drain();
    expect(s.app.contacts.size).toBe(1);
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  // Also when the last success was noted by a replica whose clock runs a minute ahead (or by
  // this one before its clock was stepped back): the success cursor sits past this clock.
  it.each([
    ['', false],
    [' also when a replica whose clock runs ahead noted the last success', true],
  ])('a poll that succeeds after a dead one clears the ERROR, even when it read no change%s', async (_title, aheadSuccess) => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await start();
    await s.drain();
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
    if (aheadSuccess) await recordSyncSuccess(s.storage, new Date(Date.now() + 60_000), TENANT, GROUP);
    s.connec.failLists = 1_000;
    await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toMatchObject({ dead: 1 });
    expect((await status()).json).toMatchObject({ status: 'ERROR' });
    s.connec.failLists = 0;
    await new Promise((r) => setTimeout(r, 5));
    await s.mno.sync.enqueuePoll({ tenant: TENANT, groupId: GROUP, runAt: new Date(Date.now() + 1) });
    await new Promise((r) => setTimeout(r, 5));
    await s.drain();
    expect(await jobCounts(s.storage, JobTypes.syncPoll)).toMatchObject({ dead: 1, done: 1 });
    expect((await status()).json).toMatchObject({ status: 'SUCCESS' });
  });

  it('a storage error while noting the success is logged; the import itself stays done', async () => {
    const memory = memoryAdapter();
    let failReads = false;
    const storage: StorageAdapter = {
      ...memory,
      groups: {
        ...memory.groups,
        get: (tenant, groupId) => (failReads ? Promise.reject(new Error('database is down')) : memory.groups.get(tenant, groupId)),
      },
    };
    const warnings: Array<{ message: string; meta: unknown }> = [];
    const logger: Logger = { ...silentLogger, warn: (message, meta) => void warnings.push({ message, meta }) };
    const s = setup([testTenant()], { storage, logger });
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await start();
    const create = s.app.create.bind(s.app);
    s.app.create = ((...args: Parameters<typeof create>) => {
      failReads = true; // the database goes away once the import has written its record
      return create(...args);
    }) as typeof create;
    await s.drain();
    failReads = false;
    expect(s.app.contacts.size).toBe(1);
    expect(await jobCounts(s.storage, JobTypes.syncImport)).toMatchObject({ done: 1, dead: 0 });
    expect(await s.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: '*', kind: 'sync.succeeded' })).toBeNull();
    expect(warnings).toContainEqual({
      message: 'sync: could not record a successful run for the status endpoint',
      meta: { tenant: TENANT, groupId: GROUP, error: 'database is down' },
    });
  });

  it('a configured status path without a parameter takes group_id from the query', async () => {
    const t = testTenant();
    const s = setup([{ ...t, app: { ...t.app, synchronization: { startPath: '/sync', statusPath: '/sync/status', togglePath: '/sync/toggle_sync' } } }]);
    await provision(s.storage);
    const r = await call('GET', `/sync/status?group_id=${GROUP}`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ group_id: GROUP, sync_enabled: true });
  });

  it('a queued fetch of a referenced record does not call Connec! while the sync is off', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'organizations', { name: 'Acme Pty' }, 'o1');
    expect((await toggle()).json).toMatchObject({ sync_enabled: false });
    await s.storage.jobs.enqueue({ type: JobTypes.connecRecord, tenant: TENANT, groupId: GROUP, payload: { entity: 'companies', collection: 'organizations', fetchId: 'o1' } });
    await s.drain();
    expect(s.connec.fetchCalls).toEqual([]);
    expect(s.app.companies.size).toBe(0);
    expect(await jobCounts(s.storage, JobTypes.connecRecord)).toMatchObject({ done: 1, dead: 0 });
  });

  it('switched on while the import that read "off" runs (the wake finds it running): it retries within seconds, not an hour', async () => {
    const s = setup();
    await provision(s.storage);
    s.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await toggle(); // off
    const { jobId } = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    const locks = s.storage.locks;
    const acquire = locks.acquire.bind(locks);
    let toggled = false;
    locks.acquire = async (key, owner, ttlMs) => {
      // The run has read the settings (off); the platform switches the sync on now.
      if (!toggled && key === groupSyncLockKey(TENANT, GROUP)) {
        toggled = true;
        expect((await toggle()).json).toMatchObject({ sync_enabled: true });
      }
      return acquire(key, owner, ttlMs);
    };
    // drain() waits for jobs due within its rounds (seconds), not for one due in an hour.
    await s.drain();
    expect(toggled).toBe(true);
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'done', attempts: 2 });
    expect(s.app.contacts.size).toBe(1);
  });

  it('an import that waited while the sync was off ends cleanly once the group is cancelled (no dead letter)', async () => {
    const s = setup();
    await provision(s.storage);
    await toggle(); // off
    const { jobId } = await s.mno.sync.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await s.drain();
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'pending' });
    expect((await s.storage.groups.cancel(TENANT, GROUP)).changed).toBe(true);
    await s.storage.jobs.wake(`sync-enabled:${TENANT}:${GROUP}`);
    await s.drain();
    expect(await s.storage.jobs.get(jobId)).toMatchObject({ status: 'done' });
    expect(await s.mno.sync.deadLetters()).toEqual([]);
  });
});
