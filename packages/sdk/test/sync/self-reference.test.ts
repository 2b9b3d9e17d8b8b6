/**
 * A new record that references itself (a project that is its own parent) is created with that
 * reference empty, then updated once with its own local id (`resolveOwnReferences`). That
 * second write is of a record the app just created: its sub-records are the ones the create
 * made (not new ones), and the link-back it owes reaches Connec! whatever fails on the way.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, drainer, dyingView, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';
import { afterMapInsert } from './link-sub-ids-durable-scenario.js';

type Rec = Record<string, unknown>;
interface Task {
  id: string;
  title: string;
}
interface Project {
  id: string;
  name: string;
  parentId: string | null;
  tasks: Task[];
}

/** An app whose update upserts tasks by id: a task without one is a new task (as documented). */
function projectsApp() {
  const projects = new Map<string, Project>();
  const keys = new Map<string, string>();
  const state = { seq: 0, failNextUpdate: false, beforeCreate: null as null | (() => Promise<void>) };
  const next = (prefix: string) => `${prefix}-${++state.seq}`;
  const entity = defineEntity({
    name: 'projects',
    connec: 'projects',
    direction: 'inbound',
    references: { parent_project_id: 'projects' },
    subRecords: ['tasks'],
    toLocal: (p: Rec) => ({
      name: String(p.name ?? ''),
      parentId: typeof p.parent_project_id === 'string' ? p.parent_project_id : null,
      tasks: (Array.isArray(p.tasks) ? (p.tasks as Rec[]) : []).map((t) => ({ id: typeof t.id === 'string' ? t.id : null, title: String(t.title ?? '') })),
    }),
    local: {
      create: async (data, ctx) => {
        const had = keys.get(ctx.idempotencyKey);
        const row = had === undefined ? undefined : projects.get(had);
        if (row) return { id: row.id, subIds: { tasks: row.tasks.map((t) => t.id) } };
        const wait = state.beforeCreate;
        state.beforeCreate = null;
        await wait?.();
        const id = next('prj');
        const tasks = data.tasks.map((t) => ({ id: next('tsk'), title: t.title }));
        projects.set(id, { id, name: data.name, parentId: data.parentId, tasks });
        keys.set(ctx.idempotencyKey, id);
        return { id, subIds: { tasks: tasks.map((t) => t.id) } };
      },
      update: async (id, data) => {
        if (state.failNextUpdate) {
          state.failNextUpdate = false;
          throw new Error('projects table locked');
        }
        const row = projects.get(id);
        if (!row) return { gone: true };
        const tasks = [...row.tasks];
        const ids = data.tasks.map((t) => {
          const known = t.id === null ? undefined : tasks.find((k) => k.id === t.id);
          if (known) {
            known.title = t.title;
            return known.id;
          }
          const added = { id: next('tsk'), title: t.title };
          tasks.push(added);
          return added.id;
        });
        projects.set(id, { id, name: data.name, parentId: data.parentId, tasks });
        return { subIds: { tasks: ids } };
      },
    },
  });
  return { projects, state, connector: defineConnector({ entities: [entity] }) };
}

async function start(app: ReturnType<typeof projectsApp>, storage: StorageAdapter = memoryAdapter(), options: { lockTtlMs?: number } = {}) {
  const connec = new FakeConnec(ORG_UID);
  const sync = createSyncModule(testRuntime(storage), { connector: app.connector, sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, ...options } });
  await provisionGroup(storage);
  return { storage, connec, sync, notify: notifier(sync), drain: drainer(createWorker(testRuntime(storage), sync.jobs ?? {}), storage) };
}

/**
 * The memory adapter, its record locks taken over by another worker once `steal()` is called:
 * each renewal is refused (the caller's `held()` turns false), and `stolen` resolves on the first.
 */
function stealableLocks() {
  const base = memoryAdapter();
  let stealing = false;
  let refused = () => {};
  const stolen = new Promise<void>((resolve) => {
    refused = resolve;
  });
  const storage: StorageAdapter = {
    ...base,
    locks: {
      ...base.locks,
      refresh: async (key, owner, ttl) => {
        if (!stealing) return base.locks.refresh(key, owner, ttl);
        stealing = false;
        refused();
        return false;
      },
    },
  };
  return {
    storage,
    /** Refuses the next renewal; resolves once it was refused. */
    steal: () => {
      stealing = true;
      return stolen;
    },
  };
}

const idsOf = (value: unknown): { id: string; provider: string }[] => (Array.isArray(value) ? value : []);

describe('a new record referencing itself', () => {
  it('with sub-records: the write resolving its reference updates the sub-records its create made, and those are linked back', async () => {
    const app = projectsApp();
    const h = await start(app);
    h.connec.seed(GROUP, 'projects', { name: 'Root' }, 'p-root');
    const tasks = [
      { id: [C('t-1')], title: 'Plan' },
      { id: [C('t-2')], title: 'Build' },
    ];
    await h.notify({ projects: [{ id: [C('p-root')], name: 'Root', parent_project_id: [C('p-root')], tasks, group_id: GROUP, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-root' });
    const root = app.projects.get(map?.localId ?? '');
    expect(root?.parentId).toBe(root?.id);
    // Two tasks in Connec!, two in the app: the second write did not add them again.
    expect(root?.tasks.map((t) => t.title)).toEqual(['Plan', 'Build']);
    const linked = h.connec.batches.flat().filter((op) => op.method === 'put').at(-1);
    const linkedTasks = ((linked?.record.tasks ?? []) as Rec[]).map((t) => idsOf(t.id).find((e) => e.provider !== 'connec')?.id);
    expect(linkedTasks).toEqual(root?.tasks.map((t) => t.id));
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('with sub-records, its resolving write failing once: the retry updates the sub-records its create made, not new ones', async () => {
    const app = projectsApp();
    const h = await start(app);
    h.connec.seed(GROUP, 'projects', { name: 'Root' }, 'p-flaky');
    app.state.failNextUpdate = true;
    const tasks = [{ id: [C('t-9')], title: 'Plan' }];
    await h.notify({ projects: [{ id: [C('p-flaky')], name: 'Root', parent_project_id: [C('p-flaky')], tasks, group_id: GROUP, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    expect(app.state.failNextUpdate).toBe(false);
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-flaky' });
    const root = app.projects.get(map?.localId ?? '');
    expect(root?.parentId).toBe(root?.id);
    expect(root?.tasks.map((t) => t.title)).toEqual(['Plan']);
    const task = h.connec.find(GROUP, 'projects', 'p-flaky')?.tasks as Rec[] | undefined;
    expect(idsOf(task?.[0]?.id).find((e) => e.provider !== 'connec')?.id).toBe(root?.tasks[0]?.id);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('imported with sub-records, its resolving write failing once: the inbox retry updates the sub-records its create made', async () => {
    const app = projectsApp();
    const h = await start(app);
    h.connec.seed(GROUP, 'projects', { name: 'Root', tasks: [{ id: [C('t-5')], title: 'Plan' }] }, 'p-imp');
    const stored = h.connec.find(GROUP, 'projects', 'p-imp');
    if (stored) stored.parent_project_id = [C('p-imp')];
    app.state.failNextUpdate = true;
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(report.entities.projects).toMatchObject({ failed: 1, deferred: 1 });
    await h.drain();
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-imp' });
    const root = app.projects.get(map?.localId ?? '');
    expect(root?.parentId).toBe(root?.id);
    expect(root?.tasks.map((t) => t.title)).toEqual(['Plan']);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('with plain ids, its resolving write and its link-back both failing: the retry resolves it and links it back', async () => {
    const app = projectsApp();
    const h = await start(app);
    h.connec.seed(GROUP, 'projects', { name: 'Kit' }, 'p-kit');
    app.state.failNextUpdate = true;
    let refusals = 1;
    h.connec.rejectOp = (op) => (op.method === 'put' && refusals-- > 0 ? { status: 503, error: 'Service Unavailable' } : null);
    await h.notify({ projects: [{ id: 'p-kit', name: 'Kit', parent_project_id: 'p-kit', group_id: GROUP, channel_id: ORG_UID, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain();
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-kit' });
    const kit = map?.localId ?? '';
    expect(app.projects.get(kit)?.parentId).toBe(kit);
    expect(app.projects.size).toBe(1);
    expect(h.connec.find(GROUP, 'projects', 'p-kit')?.id).toEqual(expect.arrayContaining([expect.objectContaining({ id: kit, provider: 'myapp' })]));
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('with sub-records, its lock lost during its create: the retry updates the sub-records its create made, not new ones', async () => {
    const app = projectsApp();
    const locks = stealableLocks();
    const h = await start(app, locks.storage, { lockTtlMs: 1_000 });
    h.connec.seed(GROUP, 'projects', { name: 'Root' }, 'p-busy');
    // The lock runs out while the app creates the record: its second write is not made (busy).
    app.state.beforeCreate = () => locks.steal();
    const tasks = [{ id: [C('t-7')], title: 'Plan' }];
    await h.notify({ projects: [{ id: [C('p-busy')], name: 'Root', parent_project_id: [C('p-busy')], tasks, group_id: GROUP, updated_at: '2016-10-04T00:36:24Z' }] });
    await h.drain(1_000);
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-busy' });
    const root = app.projects.get(map?.localId ?? '');
    expect(root?.parentId).toBe(root?.id);
    expect(root?.tasks.map((t) => t.title)).toEqual(['Plan']);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('imported with sub-records, its lock lost during its create: the inbox retry updates the sub-records its create made', async () => {
    const app = projectsApp();
    const locks = stealableLocks();
    const h = await start(app, locks.storage, { lockTtlMs: 1_000 });
    h.connec.seed(GROUP, 'projects', { name: 'Root', tasks: [{ id: [C('t-8')], title: 'Plan' }] }, 'p-imp-busy');
    const stored = h.connec.find(GROUP, 'projects', 'p-imp-busy');
    if (stored) stored.parent_project_id = [C('p-imp-busy')];
    app.state.beforeCreate = () => locks.steal();
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true });
    expect(report.entities.projects).toMatchObject({ deferred: 1 });
    await h.drain();
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'projects' }, { connecId: 'p-imp-busy' });
    const root = app.projects.get(map?.localId ?? '');
    expect(root?.parentId).toBe(root?.id);
    expect(root?.tasks.map((t) => t.title)).toEqual(['Plan']);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, dead: 0 });
  });

  it('with sub-records, its worker killed right after the id-map write of its create: the retry updates the tasks its create made and links them', async () => {
    const app = projectsApp();
    const h = await start(app);
    h.connec.seed(GROUP, 'projects', { name: 'Root' }, 'p-killed');
    const tasks = [
      { id: [C('t-k1')], title: 'Plan' },
      { id: [C('t-k2')], title: 'Build' },
    ];
    await h.notify({ projects: [{ id: [C('p-killed')], name: 'Root', parent_project_id: [C('p-killed')], tasks, group_id: GROUP, updated_at: '2016-10-04T00:36:24Z' }] });
    // A worker creates the project, stores its id map and dies as that write commits: the write
    // resolving its reference and its link-back never run, and the task ids were in its memory only.
    let dead = false;
    const dyingRuntime = testRuntime(
      dyingView(
        afterMapInsert(h.storage, () => {
          dead = true;
        }),
        () => dead,
      ),
    );
    const dying = createSyncModule(dyingRuntime, { connector: app.connector, sync: { connecPort: () => h.connec, parkRetryMs: 5, maxAttempts: 4, lockTtlMs: 1_000 } });
    void createWorker(dyingRuntime, dying.jobs ?? {}).drain({ pollIntervalMs: 1, concurrency: 1, leaseMs: 1_000 });
    for (let i = 0; i < 2_000 && !dead; i++) await new Promise((r) => setTimeout(r, 5));
    expect(dead).toBe(true);
    const [created] = [...app.projects.values()];
    const taskIds = created?.tasks.map((t) => t.id);
    expect(taskIds).toHaveLength(2);
    // Its job lease and record lock lapse; the job runs again: the version is not applied yet.
    await new Promise((r) => setTimeout(r, 1_200));
    await h.drain();
    expect(app.projects.size).toBe(1);
    const root = app.projects.get(created?.id ?? '');
    expect(root?.parentId).toBe(root?.id);
    // Two tasks in Connec!, the same two in the app: the retry did not add them again.
    expect(root?.tasks.map((t) => t.id)).toEqual(taskIds);
    const inConnec = h.connec.find(GROUP, 'projects', 'p-killed')?.tasks as Rec[] | undefined;
    expect((inConnec ?? []).map((t) => idsOf(t.id).find((e) => e.provider !== 'connec')?.id)).toEqual(taskIds);
    expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});
