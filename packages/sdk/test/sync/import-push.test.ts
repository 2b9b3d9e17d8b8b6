import { ConnectorDefinitionError, defineConnector, defineEntity, ImportBusyError, ImportFailedError, JobTypes, type SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { A, C, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

describe('initial import (CONNECTORS §F1, §F11)', () => {
  it('§F1 pushes local records with matching_fields first, then imports in reference order, paged, linking back, once', async () => {
    const h = await createHarness({ sync: { pageSize: 2 } });
    await provisionGroup(h.storage);
    h.app.companies.set('org-local', { id: 'org-local', name: 'Acme Pty', code: 'ACME', updatedAt: new Date() });
    const orgIds = ['o1', 'o2', 'o3', 'o4', 'o5'];
    h.connec.seed(GROUP, 'organizations', { name: 'Acme Pty', code: 'OR1' }, 'o1');
    for (const id of orgIds.slice(1)) h.connec.seed(GROUP, 'organizations', { name: `Org ${id}` }, id);
    for (const [i, org] of ['o1', 'o2', 'o3'].entries()) {
      h.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'X', organization_id: [C(org)] }, `p${i}`);
    }
    const progress: { entity: string; done: number; total: number | null }[] = [];
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, onProgress: (p) => progress.push(p) });

    expect(report.status).toBe('complete');
    // smart merge: the local Acme was pushed with matching_fields and linked, not duplicated
    const firstBatch = h.connec.batches[0] ?? [];
    expect(firstBatch[0]).toMatchObject({ method: 'post', record: { name: 'Acme Pty', opts: { matching_fields: ['name'] } } });
    expect(h.app.companies.size).toBe(5);
    expect([...h.app.companies.values()].filter((c) => c.name === 'Acme Pty')).toHaveLength(1);
    const acmeMap = await h.storage.idMaps.find(scope('companies'), { connecId: 'o1' });
    expect(acmeMap?.localId).toBe('org-local');
    // dependency order: every organization page before any people page
    const order = h.connec.listCalls.map((c) => c.collection);
    expect(order.lastIndexOf('organizations')).toBeLessThan(order.indexOf('people'));
    expect(h.connec.listCalls.filter((c) => c.collection === 'organizations').map((c) => c.skip)).toEqual([0, 2, 4]);
    // people linked to their local organizations
    for (const contact of h.app.contacts.values()) {
      expect(h.app.companies.has(contact.companyId ?? '')).toBe(true);
    }
    // exactly one id map per record, and every created record linked back with A(...)
    const orgMaps = await h.storage.idMaps.list(scope('companies'), { limit: 100 });
    expect(orgMaps.map((m) => m.connecId).sort()).toEqual(orgIds);
    for (const map of orgMaps) {
      expect(h.connec.find(GROUP, 'organizations', map.connecId ?? '')?.id).toContainEqual(A(map.localId ?? ''));
    }
    const peopleMaps = await h.storage.idMaps.list(scope('contacts'), { limit: 100 });
    expect(peopleMaps).toHaveLength(3);
    expect(report.entities.companies).toMatchObject({ fetched: 5, created: 4, pushed: 1, failed: 0 });
    expect(report.entities.contacts).toMatchObject({ fetched: 3, created: 3, linked: 3 });
    expect(progress.filter((p) => p.entity === 'contacts').at(-1)).toEqual({ entity: 'contacts', done: 3, total: 3 });
    expect(progress.some((p) => p.entity === 'companies' && p.done === 2 && p.total === 5)).toBe(true);

    // a second run does not re-import
    const calls = h.connec.listCalls.length;
    const writes = { ...h.app.writes };
    const again = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(again.entities.companies?.fetched ?? 0).toBe(0);
    expect(h.connec.listCalls.length).toBe(calls);
    expect(h.app.writes).toEqual(writes);
  });

  it('§F11 a 5xx mid-import stops with a partial report; the retry resumes from the checkpoint without re-creating', async () => {
    const h = await createHarness({ sync: { pageSize: 2 } });
    await provisionGroup(h.storage);
    for (let i = 0; i < 6; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}` }, `it${i}`);
    // first page of organizations (empty) and people (empty) succeed; items page 2 fails
    const original = h.connec.listPage.bind(h.connec);
    let itemPages = 0;
    h.connec.listPage = async (groupId, collection, options) => {
      if (collection === 'items' && ++itemPages === 2) h.connec.failLists = 1;
      return original(groupId, collection, options);
    };
    const error = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportFailedError);
    expect((error as ImportFailedError).report.status).toBe('partial');
    expect(h.app.items.size).toBe(2);
    const cursor = await h.storage.cursors.get({ ...scope('items'), kind: 'import' });
    expect(cursor).toMatchObject({ position: 2, complete: false });

    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(h.app.items.size).toBe(6);
    expect(h.app.writes.create).toBe(6);
    expect(h.connec.listCalls.filter((c) => c.collection === 'items').map((c) => c.skip)).toEqual([0, 2, 2, 4]);
    expect(await h.storage.cursors.get({ ...scope('items'), kind: 'import' })).toMatchObject({ position: 6, complete: true });
  });

  it('runs as a durable sync.import job through the worker, with progress events', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'items', { name: 'Widget' }, 'it1');
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    const first = await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    const second = await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    expect(first.created).toBe(true);
    expect(second).toEqual({ jobId: first.jobId, created: false });
    await h.drain();
    expect([...h.app.items.values()].map((i) => i.name)).toEqual(['Widget']);
    expect(events.some((e) => e.type === 'import.progress' && e.entity === 'items' && e.done === 1)).toBe(true);
    expect(events.some((e) => e.type === 'import.completed')).toBe(true);
    expect((await h.storage.jobs.get(first.jobId))?.status).toBe('done');
  });

  it('§F15 an import and a notification racing on one new record create it once, with one id map', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'items', { name: 'Contended' }, 'it-race');
    await h.notify({ items: [seeded] });
    await Promise.all([h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }), h.drain()]);
    await h.drain();
    expect(h.app.items.size).toBe(1);
    expect(await h.storage.idMaps.list(scope('items'), { limit: 10 })).toHaveLength(1);
    expect(h.connec.find(GROUP, 'items', 'it-race')?.id).toHaveLength(2);
  });

  it('§F15 two imports of one group at once: the second is refused by the lease lock (the job form waits and retries)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    for (let i = 0; i < 5; i++) h.connec.seed(GROUP, 'items', { name: `I${i}` }, `it${i}`);
    const results = await Promise.allSettled([
      h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }),
      h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }),
    ]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ImportBusyError);
    expect(h.app.items.size).toBe(5);
    expect(h.app.writes.create).toBe(5);
  });

  it('§F14 switches: inbound disabled per group ignores records; importSince skips older records', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { entities: { items: { inbound: false } }, importSince: '2016-07-28T00:00:00Z' } });
    h.connec.seed(GROUP, 'items', { name: 'Ignored item' }, 'it1');
    h.connec.seed(GROUP, 'organizations', { name: 'Old', created_at: '2016-01-01T00:00:00Z' }, 'o-old');
    h.connec.seed(GROUP, 'organizations', { name: 'New', created_at: '2016-09-01T00:00:00Z' }, 'o-new');
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(h.app.items.size).toBe(0);
    expect(report.entities.items).toBeUndefined();
    expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['New']);
    await h.notify({ items: [h.connec.all(GROUP, 'items')[0]] });
    await h.drain();
    expect(h.app.items.size).toBe(0);
  });
});

describe('push (CONNECTORS §F7, §F9, §F12)', () => {
  const contact = (id: string, over: Record<string, unknown> = {}) => ({
    id,
    firstName: 'Ann',
    lastName: id,
    jobTitle: null,
    email: `${id}@x.io`,
    companyId: null,
    updatedAt: new Date(),
    ...over,
  });

  it('§F7 one sequential batch with our ids; partial failure recorded; only the failed op is retried', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    // per-55 already known to Connec! (an update), per-60 new, per-61 invalid
    h.connec.seed(GROUP, 'people', { first_name: 'Old', id: [A('per-55')] }, 'p55');
    await h.storage.idMaps.insert({ ...scope('contacts'), connecId: 'p55', localId: 'per-55' });
    h.connec.rejectOp = (op) => (op.record.last_name === 'per-61' ? { status: 400, error: 'email is invalid' } : null);
    const results = await h.sync.api.pushMany({
      tenant: TENANT,
      groupId: GROUP,
      entity: 'contacts',
      records: [contact('per-60'), contact('per-55'), contact('per-61', { email: 'bad' })],
    });
    expect(h.connec.batches).toHaveLength(1);
    const ops = h.connec.batches[0] ?? [];
    expect(ops.map((o) => [o.method, o.id ?? null])).toEqual([
      ['post', null],
      ['put', 'p55'],
      ['post', null],
    ]);
    expect(ops[0]?.record.id).toEqual([A('per-60')]);
    expect(ops[1]?.record.id).toEqual([C('p55'), A('per-55')]);
    expect(results.map((r) => r.status)).toEqual(['pushed', 'pushed', 'failed']);
    const newMap = await h.storage.idMaps.find(scope('contacts'), { localId: 'per-60' });
    expect(newMap?.connecId).toBe(results[0]?.connecId);
    const failed = await h.storage.idMaps.find(scope('contacts'), { localId: 'per-61' });
    expect(failed?.lastError).toMatchObject({ code: 'http_400', message: 'email is invalid' });

    h.connec.rejectOp = null;
    const retry = await h.sync.api.pushMany({
      tenant: TENANT,
      groupId: GROUP,
      entity: 'contacts',
      records: [contact('per-60'), contact('per-55'), contact('per-61', { email: 'bad' })],
    });
    expect(retry.map((r) => r.status)).toEqual(['unchanged', 'unchanged', 'pushed']);
    expect(h.connec.batches[1]?.map((o) => o.record.last_name)).toEqual(['per-61']);
    expect((await h.storage.idMaps.find(scope('contacts'), { localId: 'per-61' }))?.lastError).toBeNull();
  });

  it('folds references to id arrays with the Connec! id when known', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.storage.idMaps.insert({ ...scope('companies'), connecId: 'o1', localId: 'org-17' });
    await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact('per-1', { companyId: 'org-17' }) });
    const op = h.connec.batches[0]?.[0];
    expect(op?.record.organization_id).toEqual([C('o1'), A('org-17')]);
  });

  it('§F9 echo of our own push (same content, newer updated_at, other code) is not written locally nor re-pushed', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.contacts.set('per-55', contact('per-55', { updatedAt: new Date(0) }));
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.app.contacts.get('per-55')] });
    const cid = pushed?.connecId ?? '';
    const echo = h.connec.edit(GROUP, 'people', cid, { code: 'PE9' });
    const batches = h.connec.batches.length;
    await h.notify({ people: [echo] });
    await h.drain();
    expect(h.app.writes).toEqual({ create: 0, update: 0 });
    expect(h.connec.batches.length).toBe(batches);
    expect(h.sync.api.counters().skippedEcho).toBe(1);
    // a real change after the echo is applied
    const change = h.connec.edit(GROUP, 'people', cid, { job_title: 'CTO' });
    await h.notify({ people: [change] });
    await h.drain();
    expect(h.app.contacts.get('per-55')?.jobTitle).toBe('CTO');
  });

  it('§F12 a local record that is gone tombstones its id map: no more updates, no more pushes', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.contacts.set('per-55', contact('per-55', { updatedAt: new Date(0) }));
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.app.contacts.get('per-55')] });
    h.app.deleted.add('per-55');
    const change = h.connec.edit(GROUP, 'people', pushed?.connecId ?? '', { job_title: 'CEO' });
    await h.notify({ people: [change] });
    await h.drain();
    const map = await h.storage.idMaps.find(scope('contacts'), { localId: 'per-55' });
    expect(map?.tombstonedAt).toBeInstanceOf(Date);
    const again = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact('per-55', { jobTitle: 'X' }) });
    expect(again).toMatchObject({ status: 'skipped', error: 'tombstoned' });
  });

  it('a per-record opt-out (shouldPush) and an outbound switch keep records out of Connec!', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP, { sync: { entities: { contacts: { outbound: false } } } });
    const r = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact('per-1') });
    expect(r.status).toBe('skipped');
    expect(h.connec.batches).toHaveLength(0);
  });
});

describe('conflicts (CONNECTORS §F8)', () => {
  const at = (iso: string) => new Date(iso);

  async function setup(conflict?: Parameters<typeof createHarness>[0] extends infer O ? O extends { contactConflict?: infer C } ? C : never : never) {
    // storage clock in the past so that the local edit (10:03) is "after the last sync"
    let now = at('2016-10-04T09:00:00Z');
    const h = await createHarness({ clock: () => now, ...(conflict ? { contactConflict: conflict } : {}) });
    const setNow = (iso: string) => {
      now = at(iso);
    };
    await provisionGroup(h.storage);
    h.app.contacts.set('per-55', {
      id: 'per-55',
      firstName: 'Jane',
      lastName: 'Doe',
      jobTitle: 'VP Eng',
      email: null,
      companyId: null,
      updatedAt: at('2016-10-04T10:03:00Z'),
    });
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe', id: [A('per-55')] }, 'p9');
    await h.storage.idMaps.insert({ ...scope('contacts'), connecId: 'p9', localId: 'per-55', lastAppliedAt: at('2016-10-04T08:00:00Z') });
    const incoming = (updatedAt: string) => ({
      id: [C('p9'), A('per-55')],
      first_name: 'Jane',
      last_name: 'Doe',
      job_title: 'CTO',
      group_id: GROUP,
      updated_at: updatedAt,
    });
    return { h, incoming, setNow };
  }

  it('newest-wins (default): the later Connec! version wins and the conflict is recorded', async () => {
    const { h, incoming } = await setup();
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    await h.notify({ people: [incoming('2016-10-04T10:05:00Z')] });
    await h.drain();
    expect(h.app.contacts.get('per-55')?.jobTitle).toBe('CTO');
    expect(events.find((e) => e.type === 'conflict')).toMatchObject({ winner: 'connec', connecId: 'p9', localId: 'per-55' });
    expect(h.sync.api.counters().conflicts).toBe(1);
  });

  it('newest-wins: a later local version wins and is pushed to Connec!', async () => {
    const { h, incoming } = await setup();
    await h.notify({ people: [incoming('2016-10-04T10:00:00Z')] });
    await h.drain();
    expect(h.app.contacts.get('per-55')?.jobTitle).toBe('VP Eng');
    const put = h.connec.batches.flat().find((op) => op.id === 'p9');
    expect(put?.record.job_title).toBe('VP Eng');
  });

  it('within the skew tolerance the tie-breaker decides', async () => {
    const { h, incoming } = await setup({ strategy: 'newest-wins', skewMs: 5 * 60_000, tieBreaker: 'local' });
    await h.notify({ people: [incoming('2016-10-04T10:05:00Z')] });
    await h.drain();
    expect(h.app.contacts.get('per-55')?.jobTitle).toBe('VP Eng');
  });

  it('a merge function making the app authoritative for job_title keeps the app value and pushes it', async () => {
    const { h, incoming } = await setup({ merge: ({ connec, local }) => ({ ...connec, jobTitle: local.jobTitle }) });
    await h.notify({ people: [{ ...incoming('2016-10-04T10:05:00Z'), first_name: 'Janet' }] });
    await h.drain();
    const row = h.app.contacts.get('per-55');
    expect(row).toMatchObject({ firstName: 'Janet', jobTitle: 'VP Eng' });
    const put = h.connec.batches.flat().find((op) => op.id === 'p9');
    expect(put?.record).toMatchObject({ first_name: 'Janet', job_title: 'VP Eng' });
  });

  it('a merge whose push-back fails (Connec! 503): the attempt fails and its retry pushes the merge', async () => {
    const { h, incoming, setNow } = await setup({ merge: ({ connec, local }) => ({ ...connec, jobTitle: local.jobTitle }) });
    h.connec.rejectOp = (op) => (op.id === 'p9' ? { status: 503, error: 'Service Unavailable' } : null);
    await h.notify({ people: [{ ...incoming('2016-10-04T10:05:00Z'), first_name: 'Janet' }] });
    await h.drain(3);
    // Merged locally, not in Connec!: the version is not marked handled, the job is retried.
    expect(h.app.contacts.get('per-55')).toMatchObject({ firstName: 'Janet', jobTitle: 'VP Eng' });
    expect(h.connec.find(GROUP, 'people', 'p9')?.job_title ?? null).toBeNull();
    expect(await h.storage.idMaps.find(scope('contacts'), { connecId: 'p9' })).toMatchObject({ lastAppliedAt: at('2016-10-04T08:00:00Z'), lastError: { code: 'http_503' } });
    expect((await h.storage.jobs.counts()).pending).toBe(1);

    h.connec.rejectOp = null;
    setNow('2016-10-04T09:10:00Z');
    await h.drain();
    expect(h.connec.find(GROUP, 'people', 'p9')).toMatchObject({ first_name: 'Janet', job_title: 'VP Eng' });
    expect(await h.storage.idMaps.find(scope('contacts'), { connecId: 'p9' })).toMatchObject({ lastError: null });
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('connec-wins ignores the local change', async () => {
    const { h, incoming } = await setup('connec-wins');
    await h.notify({ people: [incoming('2016-10-04T09:30:00Z')] });
    await h.drain();
    expect(h.app.contacts.get('per-55')?.jobTitle).toBe('CTO');
    expect(h.sync.api.counters().conflicts).toBe(0);
  });
});

describe('defineConnector checks', () => {
  const base = {
    toLocal: () => ({}),
    local: { create: async () => ({ id: 'x' }), update: async () => undefined },
  };
  it('rejects unknown reference targets, duplicate names and bad paths with ConnectorDefinitionError', () => {
    const a = defineEntity({ name: 'a', connec: 'people', direction: 'inbound', references: { 'lines/item_id': 'nope' }, ...base });
    expect(() => defineConnector({ entities: [a] })).toThrow(ConnectorDefinitionError);
    expect(() => defineConnector({ entities: [a] })).toThrow(/lines\/item_id.*unknown entity "nope"/);
    const b = defineEntity({ name: 'b', connec: 'people', direction: 'inbound', ...base });
    expect(() => defineConnector({ entities: [b, b] })).toThrow(/Duplicate entity name "b"/);
    expect(() => defineEntity({ name: 'c', connec: 'people', direction: 'inbound', references: { 'lines//id': 'b' }, ...base })).toThrow(
      ConnectorDefinitionError,
    );
    expect(() => defineEntity({ name: 'has:colon', connec: 'people', direction: 'inbound', ...base })).toThrow(ConnectorDefinitionError);
    const c = defineEntity({ name: 'c', connec: 'people', direction: 'inbound', ...base });
    expect(() => defineConnector({ entities: [b, c] })).toThrow(/share collection "people"/);
  });

  it('refuses a conflict policy that could never apply, and a catalog collection not spelt as in the API', () => {
    for (const conflict of ['local-wins', 'newest-wins', { merge: ({ connec }: { connec: unknown }) => connec }] as const) {
      // Inbound only: no localUpdatedAt, so the policy would be ignored and local edits lost.
      // @ts-expect-error refused at compile time too (only connec-wins types for an inbound entity)
      expect(() => defineEntity({ name: 'p', connec: 'people', direction: 'inbound', conflict, ...base, local: { ...base.local, get: async () => null } })).toThrow(
        /conflict policy needs localUpdatedAt/,
      );
    }
    const both = {
      name: 'p',
      connec: 'people',
      direction: 'both' as const,
      ...base,
      toConnec: () => ({}),
      localId: () => 'x',
      localUpdatedAt: () => new Date(),
    };
    expect(() => defineEntity({ ...both, conflict: 'local-wins' })).toThrow(/needs local\.get/);
    expect(defineEntity({ ...both, conflict: 'local-wins', local: { ...base.local, get: async () => null } }).inbound?.conflict.strategy).toBe('local-wins');
    // Connec!-wins needs nothing, and the default stays accepted everywhere.
    expect(defineEntity({ name: 'p', connec: 'people', direction: 'inbound', conflict: 'connec-wins', ...base }).name).toBe('p');
    expect(defineEntity({ name: 'p', connec: 'people', direction: 'inbound', ...base }).name).toBe('p');
    // `Person` would be put in every import, poll and push URL as is (404).
    expect(() => defineEntity({ name: 'p', connec: 'Person', direction: 'inbound', ...base })).toThrow(/API name "people", not "Person"/);
    expect(() => defineEntity({ name: 'c', connec: 'Company', direction: 'inbound', ...base })).toThrow(/API name "company"/);
    // A collection outside the catalog is taken as written.
    expect(defineEntity({ name: 'x', connec: 'my_custom', direction: 'inbound', ...base }).connec).toBe('my_custom');
  });

  it('logs that an import started, its progress per entity at most every 10 s, and each entity done', async () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const lines: { message: string; fields: Record<string, unknown> }[] = [];
    const logger = { debug() {}, info: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields: fields ?? {} }), warn() {}, error() {} };
    const h = await createHarness({ sync: { pageSize: 2 }, clock: () => new Date(now), logger });
    await provisionGroup(h.storage);
    for (let i = 0; i < 10; i++) h.connec.seed(GROUP, 'organizations', { name: `Org ${i}` }, `o${i}`);
    for (let i = 0; i < 3; i++) h.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'X' }, `p${i}`);
    // Every committed page takes 4 s by the engine's clock.
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, onProgress: () => (now += 4_000) });
    const sync = lines
      .filter((l) => l.message.startsWith('sync: import') && (l.fields.entity === undefined || l.fields.entity === 'companies' || l.fields.entity === 'contacts'))
      .map((l) => [l.message, l.fields.entity ?? null, l.fields.done ?? null, l.fields.total ?? null]);
    expect(sync).toEqual([
      ['sync: import started', null, null, null],
      ['sync: import progress', 'companies', 6, 10],
      ['sync: import of an entity done', 'companies', 10, 10],
      ['sync: import of an entity done', 'contacts', 3, 3],
      ['sync: import completed', null, null, null],
    ]);
    expect(lines.find((l) => l.message === 'sync: import of an entity done')?.fields).toMatchObject({ tenant: TENANT, groupId: GROUP, created: 10, updated: 0, failed: 0 });
  });

  it('a routine poll logs at debug, not one info line per group and interval', async () => {
    const lines: { level: string; message: string }[] = [];
    const at = (level: string) => (message: string) => lines.push({ level, message });
    const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    const h = await createHarness({ logger });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    lines.length = 0;
    // What every poll interval does for every synced group: nothing changed.
    for (let i = 0; i < 3; i++) await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(lines.filter((l) => l.message.startsWith('sync: poll')).map((l) => `${l.level} ${l.message}`)).toEqual(
      Array.from({ length: 3 }, () => ['debug sync: poll started', 'debug sync: poll completed']).flat(),
    );
  });

  it('orders inbound entities so referenced ones come first (cycles allowed)', () => {
    const invoices = defineEntity({ name: 'invoices', connec: 'invoices', direction: 'inbound', references: { person_id: 'people', 'lines/item_id': 'items' }, ...base });
    const people = defineEntity({ name: 'people', connec: 'people', direction: 'inbound', references: { organization_id: 'orgs' }, ...base });
    // A path outside the catalog (the catalog's `assignee_id` points at app_users) closes the cycle.
    const orgs = defineEntity({ name: 'orgs', connec: 'organizations', direction: 'inbound', references: { primary_contact_id: 'people' }, ...base });
    const items = defineEntity({ name: 'items', connec: 'items', direction: 'inbound', ...base });
    const connector = defineConnector({ entities: [invoices, people, orgs, items] });
    const order = connector.importOrder.map((e) => e.name);
    expect(order.indexOf('items')).toBeLessThan(order.indexOf('invoices'));
    expect(order.indexOf('people')).toBeLessThan(order.indexOf('invoices'));
    expect(connector.forCollection('Person').map((e) => e.name)).toEqual(['people']);
    expect(connector.forCollection('Invoice').map((e) => e.name)).toEqual(['invoices']);
  });

  it('types: direction narrows what is required', () => {
    expect(() =>
      // @ts-expect-error an inbound entity cannot declare toConnec (and the runtime check agrees)
      defineEntity({ name: 'x', connec: 'people', direction: 'inbound', toConnec: () => ({}), ...base }),
    ).toThrow('"toConnec" is only used by outbound sync');
    // @ts-expect-error an outbound entity needs localId (and the runtime check agrees)
    expect(() => defineEntity({ name: 'y', connec: 'people', direction: 'outbound', toConnec: () => ({}) })).toThrow(/localId is required/);
    expect(JobTypes.connecRecord).toBe('connec.record');
  });

  it('types: mappers get the typed record of their collection, a loose one outside the catalog', () => {
    interface Contact {
      id: string;
      name: string;
    }
    const seen: unknown[] = [];
    const people = defineEntity<'people', Contact>({
      name: 'typed-people',
      connec: 'people',
      direction: 'both',
      toLocal: (person) => {
        expectTypeOf(person.first_name).toEqualTypeOf<string | null | undefined>();
        expectTypeOf(person.email).toMatchTypeOf<{ address?: string | null | undefined } | null | undefined>();
        seen.push(person.first_name);
        return { id: '', name: person.first_name ?? '' };
      },
      // @ts-expect-error first_name is a string in Connec!'s person schema
      toConnec: (contact) => ({ first_name: contact.name.length }),
      localId: (contact) => contact.id,
      local: { create: async () => ({ id: 'c1' }), update: async () => undefined },
    });
    const custom = defineEntity({
      name: 'custom',
      connec: 'custom_things',
      direction: 'inbound',
      toLocal: (record) => {
        expectTypeOf(record.anything).toEqualTypeOf<unknown>();
        return { anything: record.anything };
      },
      local: { create: async () => ({ id: 'x1' }), update: async () => undefined },
    });
    const ctx = { tenant: TENANT, groupId: GROUP, entity: 'typed-people', connecId: 'p1', localId: null, isCreate: true, settings: {} };
    expect(people.inbound?.toLocal({ id: 'p1', first_name: 'Ada' }, ctx)).toEqual({ id: '', name: 'Ada' });
    expect(custom.inbound?.toLocal({ id: 'x', anything: 3 }, { ...ctx, entity: 'custom' })).toEqual({ anything: 3 });
    expect(seen).toEqual(['Ada']);
  });
});
