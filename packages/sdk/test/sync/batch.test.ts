/**
 * Batched application: import pages and inbox jobs claimed together go through
 * `applyBatch`, with a constant number of storage round trips and one link-back call.
 */
import {
  createSyncModule,
  defineConnector,
  defineEntity,
  memoryAdapter,
  type StorageAdapter,
} from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

/** Counts every storage call by `repository.method`. */
function counting(storage: StorageAdapter): { storage: StorageAdapter; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  for (const repoName of ['idMaps', 'locks', 'jobs', 'cursors', 'groups'] as const) {
    const repo = storage[repoName] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const [name, fn] of Object.entries(repo)) {
      repo[name] = (...args: unknown[]) => {
        calls.set(`${repoName}.${name}`, (calls.get(`${repoName}.${name}`) ?? 0) + 1);
        return fn.apply(repo, args);
      };
    }
  }
  return { storage, calls };
}

interface Row {
  id: string;
  name: string;
  orgId: string | null;
  parentId: string | null;
}

function setup(options: { createMany?: boolean } = {}) {
  const { storage, calls } = counting(memoryAdapter());
  const rows = new Map<string, Row>();
  const byKey = new Map<string, string>();
  const createCalls: number[] = [];
  let seq = 0;
  const insert = (data: Omit<Row, 'id'>, key: string) => {
    const existing = byKey.get(key);
    if (existing) return { id: existing };
    const id = `row-${++seq}`;
    rows.set(id, { ...data, id });
    byKey.set(key, id);
    return { id };
  };
  const store = {
    create: async (data: Omit<Row, 'id'>, ctx: { idempotencyKey: string }) => {
      createCalls.push(1);
      return insert(data, ctx.idempotencyKey);
    },
    update: async (id: string, data: Omit<Row, 'id'>) => {
      const row = rows.get(id);
      if (!row) return { gone: true };
      rows.set(id, { ...row, ...data, id });
      return undefined;
    },
    ...(options.createMany
      ? {
          createMany: async (items: { data: Omit<Row, 'id'>; ctx: { idempotencyKey: string } }[]) => {
            createCalls.push(items.length);
            return items.map((item) => insert(item.data, item.ctx.idempotencyKey));
          },
        }
      : {}),
  };
  const ref = (value: unknown) => (typeof value === 'string' ? value : null);
  const orgs = defineEntity({
    name: 'orgs',
    connec: 'organizations',
    direction: 'inbound',
    references: { parent_id: 'orgs' },
    toLocal: (o: Record<string, unknown>) => ({ name: String(o.name ?? ''), orgId: null, parentId: ref(o.parent_id) }),
    local: store,
  });
  const people = defineEntity({
    name: 'people',
    connec: 'people',
    direction: 'inbound',
    references: { organization_id: 'orgs' },
    toLocal: (p: Record<string, unknown>) => ({ name: String(p.last_name ?? ''), orgId: ref(p.organization_id), parentId: null }),
    local: store,
  });
  const connec = new FakeConnec(ORG_UID);
  const runtime = testRuntime(storage, () => new Date(), 'batch-test');
  const sync = createSyncModule(runtime, {
    connector: defineConnector({ entities: [people, orgs] }),
    sync: { connecPort: () => connec, parkRetryMs: 60_000, pageSize: 50 },
  });
  const worker = createWorker(runtime, sync.jobs ?? {});
  const notify = notifier(sync);
  /** Notifies records that also exist in the fake Connec! (so link-backs find them). */
  const deliver = (body: Record<string, Record<string, unknown>[]>) => {
    for (const [collection, list] of Object.entries(body)) {
      for (const record of list) {
        const { id, ...fields } = record;
        const cid = (id as { id: string }[])[0]?.id ?? '';
        if (!connec.data.get(GROUP)?.get(collection)?.some((r) => (r.id as { id: string }[])[0]?.id === cid)) connec.seed(GROUP, collection, fields, cid);
      }
    }
    return notify(body);
  };
  return { storage, calls, rows, createCalls, connec, sync, worker, notify: deliver };
}

const stamp = '2016-10-04T00:36:23Z';
const org = (n: number, parent?: number) => ({
  id: [C(`o${n}`)],
  name: `Org ${n}`,
  ...(parent === undefined ? {} : { parent_id: [C(`o${parent}`)] }),
  group_id: GROUP,
  channel_id: ORG_UID,
  created_at: stamp,
  updated_at: stamp,
});
const person = (n: number, orgN: number) => ({
  id: [C(`p${n}`)],
  first_name: 'Jane',
  last_name: `Doe ${n}`,
  organization_id: [C(`o${orgN}`)],
  group_id: GROUP,
  channel_id: ORG_UID,
  created_at: stamp,
  updated_at: stamp,
});

describe('batched inbox records', () => {
  it('people and their organizations claimed together: organizations first, nothing parked, one link-back call, constant storage round trips', async () => {
    const t = setup();
    await provisionGroup(t.storage);
    // People first in the body, organizations after: the batch still applies organizations first.
    const people = Array.from({ length: 30 }, (_, i) => person(i, i % 10));
    const orgs = Array.from({ length: 10 }, (_, i) => org(i));
    expect((await t.notify({ people, organizations: orgs })).status).toBe(200);
    t.calls.clear();

    const stats = await t.worker.drain({ concurrency: 128, pollIntervalMs: 5 });

    expect(stats).toMatchObject({ claimed: 40, completed: 40, deferred: 0, retried: 0 });
    expect(t.rows.size).toBe(40);
    const orgIds = new Map([...t.rows.values()].filter((r) => r.name.startsWith('Org')).map((r) => [r.name, r.id]));
    for (const row of t.rows.values()) {
      if (!row.name.startsWith('Doe')) continue;
      const n = Number(row.name.split(' ')[1]);
      expect(row.orgId).toBe(orgIds.get(`Org ${n % 10}`));
    }
    expect(t.sync.api.counters().parked).toBe(0);
    expect(t.connec.batches).toHaveLength(1);
    expect(t.connec.batches[0]).toHaveLength(40);
    const maps = await t.storage.idMaps.findManyByConnecIds({ tenant: TENANT, groupId: GROUP, entity: 'people' }, people.map((_, i) => `p${i}`));
    expect(maps.every((m) => m.localId !== null && m.lastReceivedHash !== null)).toBe(true);
    // One lock, one insert, one release per entity; never one call per record.
    expect(t.calls.get('locks.acquireMany')).toBe(2);
    expect(t.calls.get('idMaps.insertMany')).toBe(2);
    expect(t.calls.get('locks.releaseMany')).toBe(2);
    expect(t.calls.get('jobs.completeMany')).toBe(1);
    expect(t.calls.get('locks.acquire') ?? 0).toBe(0);
    expect(t.calls.get('idMaps.insert') ?? 0).toBe(0);
    expect(t.calls.get('jobs.complete') ?? 0).toBe(0);
  });

  it('a replayed batch changes nothing, and a newer version of a known record is an update', async () => {
    const t = setup();
    await provisionGroup(t.storage);
    const people = Array.from({ length: 5 }, (_, i) => person(i, 0));
    await t.notify({ organizations: [org(0)], people });
    await t.worker.drain({ concurrency: 128, pollIntervalMs: 5 });
    const before = structuredClone([...t.rows.values()]);
    const changed = { ...person(2, 0), last_name: 'Renamed', updated_at: '2016-10-05T00:00:00Z' };
    // The link-back added our ids; Connec! now sends them along (a replay of p0, a change of p2).
    const ours = (n: number) => [C(`p${n}`), A(before.find((r) => r.name === `Doe ${n}`)?.id ?? '')];
    await t.notify({ people: [{ ...person(0, 0), id: ours(0), first_name: 'x' }, { ...changed, id: ours(2) }] });
    await t.worker.drain({ concurrency: 128, pollIntervalMs: 5 });
    expect(t.rows.size).toBe(6);
    expect([...t.rows.values()].find((r) => r.id === before.find((b) => b.name === 'Doe 2')?.id)?.name).toBe('Renamed');
    expect(t.sync.api.counters().created).toBe(6);
    expect(t.sync.api.counters().updated).toBe(1);
    expect(t.sync.api.counters().skippedStale + t.sync.api.counters().skippedReplay).toBe(1);
  });

  it('an organization whose parent arrives in the same batch is applied in a second pass, not parked', async () => {
    const t = setup();
    await provisionGroup(t.storage);
    await t.notify({ organizations: [org(2, 1), org(1)] });
    const stats = await t.worker.drain({ concurrency: 128, pollIntervalMs: 5 });
    expect(stats).toMatchObject({ completed: 2, deferred: 0 });
    const child = [...t.rows.values()].find((r) => r.name === 'Org 2');
    const parent = [...t.rows.values()].find((r) => r.name === 'Org 1');
    expect(child?.parentId).toBe(parent?.id);
    expect(t.sync.api.counters().parked).toBe(0);
  });
});

describe('batched import pages', () => {
  it('uses local.createMany once per page when the entity has it, and resumes nothing twice', async () => {
    const t = setup({ createMany: true });
    await provisionGroup(t.storage);
    for (let i = 0; i < 20; i++) t.connec.seed(GROUP, 'organizations', { name: `Org ${i}` }, `o${i}`);
    for (let i = 0; i < 120; i++) {
      t.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: `Doe ${i}`, organization_id: [C(`o${i % 20}`)] }, `p${i}`);
    }
    const report = await t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.people).toMatchObject({ fetched: 120, created: 120, failed: 0, deferred: 0 });
    expect(report.entities.orgs).toMatchObject({ fetched: 20, created: 20 });
    // Pages of 50: organizations 1 page, people 3 pages -> 4 createMany calls, no single creates.
    expect(t.createCalls).toEqual([20, 50, 50, 20]);
    expect(t.rows.size).toBe(140);
    expect([...t.rows.values()].filter((r) => r.name.startsWith('Doe')).every((r) => r.orgId?.startsWith('row-'))).toBe(true);
    const again = await t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(again.entities.people).toMatchObject({ created: 0, skipped: 120 });
    expect(t.rows.size).toBe(140);
  });

  it('a createMany that returns the wrong number of results fails those records with a clear error and creates no id map', async () => {
    const t = setup({ createMany: true });
    await provisionGroup(t.storage);
    for (let i = 0; i < 3; i++) t.connec.seed(GROUP, 'organizations', { name: `Org ${i}` }, `o${i}`);
    const orgs = t.sync.engine.connector.entity('orgs');
    if (!orgs?.inbound) throw new Error('no orgs entity');
    const original = orgs.inbound.local.createMany;
    (orgs.inbound.local as { createMany?: unknown }).createMany = async () => [{ id: 'only-one' }];
    try {
      const report = await t.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
      expect(report.entities.orgs).toMatchObject({ fetched: 3, created: 0, failed: 3 });
      expect(report.failures[0]?.message).toContain('must resolve to one result per item (3 expected, got 1)');
      expect(await t.storage.idMaps.findManyByConnecIds({ tenant: TENANT, groupId: GROUP, entity: 'orgs' }, ['o0', 'o1', 'o2'])).toEqual([]);
    } finally {
      (orgs.inbound.local as { createMany?: unknown }).createMany = original;
    }
  });
});
