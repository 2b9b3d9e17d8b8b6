/**
 * Regressions of the import audit: an id collision in the outbound half, a 5xx in the outbound
 * half, `importSince` on linked records, and per-record locks outliving slow local writes.
 */
import {
  createSyncModule,
  defineConnector,
  defineEntity,
  ImportFailedError,
  JobDeferral,
  JobTypes,
  memoryAdapter,
  type StorageAdapter,
  type SyncModule,
} from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { groupSyncLockKey } from '../../src/sync/engine.js';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, createHarness, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('outbound half of the initial import', () => {
  it('two local records merged into one Connec! record: the second is a link_conflict failure, the rest of the batch and the import carry on', async () => {
    const h = await createHarness({ sync: { pageSize: 2 } });
    await provisionGroup(h.storage);
    h.app.companies.set('org-a', { id: 'org-a', name: 'Acme Pty', code: null, updatedAt: new Date() });
    h.app.companies.set('org-b', { id: 'org-b', name: 'Acme Pty', code: null, updatedAt: new Date() });
    h.app.companies.set('org-c', { id: 'org-c', name: 'Other', code: null, updatedAt: new Date() });
    h.connec.seed(GROUP, 'organizations', { name: 'Acme Pty' }, 'o1');
    h.connec.seed(GROUP, 'people', { first_name: 'P', last_name: 'X' }, 'p1');

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    expect(report.failures).toEqual([
      expect.objectContaining({ entity: 'companies', direction: 'outbound', localId: 'org-b', code: 'link_conflict', message: expect.stringContaining('o1') }),
    ]);
    expect(report.entities.companies).toMatchObject({ pushed: 2, failed: 1 });
    // the op after the conflicting one is recorded; the first one stays linked
    expect((await h.storage.idMaps.find(scope('companies'), { connecId: 'o1' }))?.localId).toBe('org-a');
    const other = await h.storage.idMaps.find(scope('companies'), { localId: 'org-c' });
    expect(other?.connecId).not.toBeNull();
    expect(other?.lastPushedHash).not.toBeNull();
    expect((await h.storage.idMaps.find(scope('companies'), { localId: 'org-b' }))?.lastError).toMatchObject({ code: 'link_conflict' });
    // the inbound half ran
    expect(h.app.contacts.size).toBe(1);
    expect(await h.storage.cursors.get({ ...scope('contacts'), kind: 'import' })).toMatchObject({ complete: true });

    // a later push of the duplicate reports the conflict instead of throwing
    const again = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: h.app.companies.get('org-b') });
    expect(again).toMatchObject({ localId: 'org-b', status: 'failed', code: 'link_conflict' });
  });

  it('the sync.import job with a merged duplicate completes instead of dead-lettering', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-a', { id: 'org-a', name: 'Acme Pty', code: null, updatedAt: new Date() });
    h.app.companies.set('org-b', { id: 'org-b', name: 'Acme Pty', code: null, updatedAt: new Date() });
    await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await h.drain(50);
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect(await h.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 1, dead: 0 });
  });

  it.each([503, 429, 0])('a push failing with %s stops the import before the inbound half; the retry links, no duplicate', async (status) => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-local', { id: 'org-local', name: 'Acme Pty', code: 'ACME', updatedAt: new Date() });
    h.connec.seed(GROUP, 'organizations', { name: 'Acme Pty', code: 'OR1' }, 'o1');
    let fail = true;
    h.connec.rejectOp = (op) => (fail && op.method === 'post' ? { status, error: 'unavailable' } : null);

    const error = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportFailedError);
    const partial = (error as ImportFailedError).report;
    expect(partial.status).toBe('partial');
    expect(partial.failures).toEqual([expect.objectContaining({ localId: 'org-local', code: `http_${status}` })]);
    expect(await h.storage.cursors.get({ ...scope('companies'), kind: 'import.outbound' })).toBeNull();
    expect(await h.storage.cursors.get({ ...scope('companies'), kind: 'import' })).toBeNull();
    expect(h.app.companies.size).toBe(1);

    fail = false;
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(report.entities.companies).toMatchObject({ pushed: 1, failed: 0 });
    expect([...h.app.companies.keys()]).toEqual(['org-local']);
    expect((await h.storage.idMaps.find(scope('companies'), { connecId: 'o1' }))?.localId).toBe('org-local');
  });

  it('a push refused with a 4xx is a per-record failure: the import completes', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-local', { id: 'org-local', name: 'Acme Pty', code: 'ACME', updatedAt: new Date() });
    h.connec.rejectOp = (op) => (op.method === 'post' ? { status: 400, error: 'name is invalid' } : null);
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(report.failures).toEqual([expect.objectContaining({ localId: 'org-local', code: 'http_400' })]);
    expect(await h.storage.cursors.get({ ...scope('companies'), kind: 'import.outbound' })).toMatchObject({ complete: true });
  });
});

describe('link-backs that fail during the import', () => {
  it("are reported as link_failed failures and counted in `deferred`; the inbox job links them later", async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme Pty' }, 'o1');
    h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee', organization_id: 'o1' }, 'p1');
    h.connec.seed(GROUP, 'people', { first_name: 'Bob', last_name: 'Ng', organization_id: 'o1' }, 'p2');
    let fail = true;
    h.connec.rejectOp = (op) => (fail && op.method === 'put' && op.id === 'p2' ? { status: 503, error: 'Service Unavailable' } : null);

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    expect(report.entities.contacts).toMatchObject({ fetched: 2, created: 2, linked: 1, deferred: 1, failed: 0 });
    // The failure names the local record created for p2 (its id is known: the record was applied).
    const p2Local = (await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p2' }))?.localId;
    expect(p2Local).toBeTruthy();
    expect(report.failures).toEqual([expect.objectContaining({ entity: 'contacts', direction: 'outbound', connecId: 'p2', localId: p2Local, code: 'link_failed' })]);
    // Both records are created locally once; p2's link-back waits in the inbox.
    expect(h.app.contacts.size).toBe(2);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 1 });
    const ids = (r: { id?: unknown } | undefined) => (Array.isArray(r?.id) ? (r.id as { provider: string }[]) : []);
    expect(ids(h.connec.find(GROUP, 'people', 'p2')).some((e) => e.provider !== 'connec')).toBe(false);

    fail = false;
    await h.drain(20);
    expect(ids(h.connec.find(GROUP, 'people', 'p2')).some((e) => e.provider !== 'connec')).toBe(true);
    expect(h.app.contacts.size).toBe(2);
    expect(await h.sync.api.deadLetters()).toEqual([]);
  });
});

describe('importSince', () => {
  it('applies updates to a record created before the cutoff once it is linked; unknown older records are still skipped', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { importSince: '2016-07-28T00:00:00Z' } });
    h.app.companies.set('org-local', { id: 'org-local', name: 'Acme Pty', code: null, updatedAt: new Date() });
    h.connec.setClock('2015-01-01T00:00:00Z');
    h.connec.seed(GROUP, 'organizations', { name: 'Acme Pty' }, 'o1');
    h.connec.seed(GROUP, 'organizations', { name: 'Old Co' }, 'o-old');
    h.connec.setClock('2020-01-01T00:00:00Z');
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect((await h.storage.idMaps.find(scope('companies'), { connecId: 'o1' }))?.localId).toBe('org-local');
    expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['Acme Pty']);

    // known id: updated
    const edited = h.connec.edit(GROUP, 'organizations', 'o1', { name: 'Acme Pty Ltd' });
    expect((await h.notify({ organizations: [edited] })).status).toBe(200);
    await h.drain();
    expect(h.app.companies.get('org-local')?.name).toBe('Acme Pty Ltd');
    // the import's inbound half applied the record its push merged into (200), then this update
    expect(h.sync.api.counters()).toMatchObject({ updated: 2, skippedOther: 1 });

    // unknown id created before the cutoff: still not created (outside a full import)
    const old = h.connec.edit(GROUP, 'organizations', 'o-old', { name: 'Old Co 2' });
    await h.notify({ organizations: [old] });
    await h.drain();
    expect([...h.app.companies.values()].map((c) => c.name)).not.toContain('Old Co 2');
    expect(await h.storage.idMaps.find(scope('companies'), { connecId: 'o-old' })).toBeNull();
  });
});

describe('per-record locks during slow local writes', () => {
  function setup(options: { storage?: StorageAdapter; importConcurrency?: number; clock?: () => Date } = {}) {
    const storage = options.storage ?? memoryAdapter();
    const runtime = testRuntime(storage, options.clock);
    const connec = new FakeConnec(ORG_UID);
    const local = new Map<string, { name: string }>([
      ['org-1', { name: 'v0' }],
      ['org-2', { name: 'v0' }],
    ]);
    const gates = new Map<string, Promise<void>>();
    const entered = new Set<string>();
    const companies = defineEntity({
      name: 'companies',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o: Record<string, unknown>) => ({ name: String(o.name) }),
      local: {
        create: async (d: { name: string }) => {
          local.set('new', d);
          return { id: 'new' };
        },
        update: async (id: string, d: { name: string }) => {
          entered.add(id);
          const gate = gates.get(id);
          if (gate) {
            gates.delete(id);
            await gate;
          }
          local.set(id, d);
        },
      },
    });
    const sync: SyncModule = createSyncModule(runtime, {
      connector: defineConnector({ entities: [companies] }),
      sync: { connecPort: () => connec, lockTtlMs: 1_000, importConcurrency: options.importConcurrency ?? 4, parkRetryMs: 5 },
    });
    const worker = createWorker(runtime, sync.jobs ?? {});
    const drain = async (untilMs: number) => {
      const end = Date.now() + untilMs;
      while (Date.now() < end) {
        await worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
        const counts = await storage.jobs.counts({ type: JobTypes.connecRecord });
        if (counts.pending === 0 && counts.running === 0) return;
        await sleep(50);
      }
    };
    const notify = notifier(sync);
    const gate = (id: string) => {
      let open = () => {};
      gates.set(
        id,
        new Promise<void>((r) => {
          open = r;
        }),
      );
      return () => open();
    };
    return { storage, connec, local, sync, drain, notify, gate, entered };
  }

  it('a write slower than lockTtlMs keeps its lock: a newer notification waits and is applied last', async () => {
    // The storage's (and the SDK's) clock stands still unless the test moves it: the write
    // outlasts its first lease by the test moving the clock past it (a renewal in between), and
    // the lock cannot lapse because a loaded machine delayed a renewal in real time.
    let nowMs = Date.now();
    const clock = () => new Date(nowMs);
    const base = memoryAdapter({ clock });
    let renewals = 0;
    const storage: StorageAdapter = {
      ...base,
      locks: {
        ...base.locks,
        refresh: async (key, owner, ttl) => {
          const ok = await base.locks.refresh(key, owner, ttl);
          if (ok && key.startsWith('sync.record:')) renewals++;
          return ok;
        },
      },
    };
    const t = setup({ storage, clock });
    await provisionGroup(t.storage);
    t.connec.setClock('2024-01-01T00:00:00Z');
    t.connec.seed(GROUP, 'organizations', { name: 'v1', id: [A('org-1')] }, 'o1');
    await t.storage.idMaps.insert({ ...scope('companies'), connecId: 'o1', localId: 'org-1', lastAppliedAt: new Date('2023-01-01') });
    const open = t.gate('org-1');

    const importing = t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    while (!t.entered.has('org-1')) await sleep(5);
    // 0.6 s after the take (the first lease still live), a renewal: its lease runs 1 s from then.
    nowMs += 600;
    const renewed = renewals;
    await expect.poll(() => renewals > renewed).toBe(true);
    nowMs += 600; // past lockTtlMs: without renewal the lock would have expired
    const v2 = t.connec.edit(GROUP, 'organizations', 'o1', { name: 'v2' });
    expect((await t.notify({ organizations: [v2] }))?.status).toBe(200);
    await t.drain(300);
    // the notification did not write under the import's feet
    expect(t.local.get('org-1')).toEqual({ name: 'v0' });
    open();
    const report = await importing;
    expect(report).toMatchObject({ status: 'complete' });
    // The notification's retry (deferred while the record was busy) is due.
    nowMs += 60_000;
    await t.drain(10_000);
    expect(t.local.get('org-1')).toEqual({ name: 'v2' });
    const map = await t.storage.idMaps.find(scope('companies'), { connecId: 'o1' });
    expect(map?.lastAppliedAt?.toISOString()).toBe(v2.updated_at);
    expect(await t.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, dead: 0 });
  }, 20_000);

  it('records whose lock was lost are not written; they are deferred and applied later', async () => {
    const base = memoryAdapter();
    let refreshes = 0;
    let stealing = true;
    // Lock renewals refused while `stealing` (another worker took the locks over).
    const storage: StorageAdapter = {
      ...base,
      locks: {
        ...base.locks,
        refresh: async (key, owner, ttl) => {
          refreshes++;
          return stealing ? false : base.locks.refresh(key, owner, ttl);
        },
      },
    };
    const t = setup({ storage, importConcurrency: 1 });
    await provisionGroup(t.storage);
    t.connec.seed(GROUP, 'organizations', { name: 'v1', id: [A('org-1')] }, 'o1');
    t.connec.seed(GROUP, 'organizations', { name: 'v1', id: [A('org-2')] }, 'o2');
    await t.storage.idMaps.insert({ ...scope('companies'), connecId: 'o1', localId: 'org-1', lastAppliedAt: new Date('2000-01-01') });
    await t.storage.idMaps.insert({ ...scope('companies'), connecId: 'o2', localId: 'org-2', lastAppliedAt: new Date('2000-01-01') });
    const open = t.gate('org-1');

    const importing = t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    while (!t.entered.has('org-1')) await sleep(5);
    const until = Date.now() + 3_000;
    while (refreshes === 0 && Date.now() < until) await sleep(20);
    open();
    const report = await importing;
    expect(report.entities.companies).toMatchObject({ updated: 1, deferred: 1 });
    expect(t.local.get('org-2')).toEqual({ name: 'v0' });
    expect(t.entered.has('org-2')).toBe(false);

    stealing = false;
    await t.drain(5_000);
    expect(t.local.get('org-2')).toEqual({ name: 'v1' });
  }, 20_000);

  it('a write whose version was overtaken meanwhile is not reported applied, and the map does not claim the newer version', async () => {
    const t = setup();
    await provisionGroup(t.storage);
    t.connec.setClock('2024-01-01T00:00:00Z');
    t.connec.seed(GROUP, 'organizations', { name: 'v1', id: [A('org-1')] }, 'o1');
    await t.storage.idMaps.insert({ ...scope('companies'), connecId: 'o1', localId: 'org-1', lastAppliedAt: new Date('2023-01-01') });
    const open = t.gate('org-1');
    const importing = t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    while (!t.entered.has('org-1')) await sleep(5);
    // Another writer (whose lock this one's expiry let in) applied v2 meanwhile.
    const v2 = t.connec.edit(GROUP, 'organizations', 'o1', { name: 'v2' });
    t.local.set('org-1', { name: 'v2' });
    expect(await t.storage.idMaps.markApplied(scope('companies'), { connecId: 'o1' }, new Date(String(v2.updated_at)), 'h-v2')).toBe(true);
    open();
    const report = await importing;
    expect(report.entities.companies).toMatchObject({ updated: 0, deferred: 1 });
    // v1 landed last: the map must not say v2 is applied, so v2 delivered again is written
    const map = await t.storage.idMaps.find(scope('companies'), { connecId: 'o1' });
    expect(map?.lastAppliedAt?.getTime()).toBeLessThan(Date.parse(String(v2.updated_at)));
    await t.notify({ organizations: [v2] });
    await t.drain(5_000);
    expect(t.local.get('org-1')).toEqual({ name: 'v2' });
  }, 20_000);
});

describe('sync.import of a tenant missing from the tenant list', () => {
  it('waits 10 minutes per attempt (deferred) for the tenant to come back instead of failing its attempts', async () => {
    const h = await createHarness();
    // The group was provisioned while its marketplace was configured.
    await h.storage.groups.claim('gone-marketplace', GROUP, { owner: 'test', ttlMs: 60_000 });
    await h.storage.groups.complete('gone-marketplace', GROUP, 'test', { companyId: 'co-1', orgUid: ORG_UID });
    const { id } = await h.storage.jobs.enqueue({ type: JobTypes.syncImport, tenant: 'gone-marketplace', groupId: GROUP, payload: {} });
    await createWorker(h.runtime, h.sync.jobs ?? {}).drain({ pollIntervalMs: 5 });
    const job = await h.storage.jobs.get(id);
    expect(job).toMatchObject({ status: 'pending', attempts: 1, lastError: { code: 'deferred' } });
    expect(job!.runAt.getTime() - Date.now()).toBeGreaterThan(590_000);
  });
});

describe('an import whose group lock a killed worker still holds', () => {
  it('backs off past the lock TTL before its attempts run out, instead of dead-lettering the only import', async () => {
    const h = await createHarness({ sync: { maxAttempts: 8 } });
    await provisionGroup(h.storage);
    // A worker SIGKILLed mid-import: its lock lives until the TTL (120 s by default).
    expect(await h.storage.locks.acquire(groupSyncLockKey(TENANT, GROUP), 'killed-worker', 120_000)).toBe(true);
    const handler = h.sync.jobs?.[JobTypes.syncImport];
    if (!handler) throw new Error('no import handler');
    const { id } = await h.storage.jobs.enqueue({ type: JobTypes.syncImport, tenant: TENANT, groupId: GROUP, payload: {} });
    const job = await h.storage.jobs.get(id);
    if (!job) throw new Error('job not stored');
    const ctx = { signal: new AbortController().signal, heartbeat: async () => true, logger: h.runtime.logger };
    const waits: number[] = [];
    for (let attempt = 1; attempt < job.maxAttempts; attempt++) {
      const deferral = await handler({ ...job, attempts: attempt }, ctx).then(
        () => null,
        (error: unknown) => error,
      );
      expect(deferral).toBeInstanceOf(JobDeferral);
      waits.push((deferral as JobDeferral).retryInMs ?? 0);
    }
    // Every wait before the last attempt, together, outlasts the lock; none exceeds its TTL.
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThan(120_000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(120_000);
    expect(waits[0]).toBe(5_000);
  });
});

describe('sync.importOrderBy', () => {
  it('refuses updated_at (the import changes it while it pages by offset: records would be skipped); accepts created_at', () => {
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p: Record<string, unknown>) => ({ name: String(p.first_name ?? '') }),
      local: { create: async () => ({ id: 'x' }), update: async () => {} },
    });
    const connector = defineConnector({ entities: [contacts] });
    const runtime = testRuntime(memoryAdapter());
    for (const orderBy of ['updated_at asc', 'UPDATED_AT DESC', 'created_at asc, updated_at desc']) {
      expect(() => createSyncModule(runtime, { connector, sync: { importOrderBy: orderBy } })).toThrow(
        expect.objectContaining({ name: 'ConfigError', issues: [expect.objectContaining({ path: 'sync.importOrderBy' })] }),
      );
    }
    expect(() => createSyncModule(runtime, { connector, sync: { importOrderBy: 'created_at ASC' } })).not.toThrow();
  });
});
