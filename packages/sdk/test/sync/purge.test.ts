/**
 * Account deletion (CONNECTORS §F14): `DELETE /maestrano/account/groups/cld-9a1b/default`
 * enqueues one `sync.purge` job (when a connector is configured) and the worker drops every id
 * map and cursor of that group, nothing of another. Wired through `createMaestrano`, so the
 * decision "a connector is configured" is tested where it is made.
 */
import {
  createMaestrano,
  GroupPurgeRefusedError,
  ImportBusyError,
  type JobInput,
  JobTypes,
  type Maestrano,
  memoryAdapter,
  StorageError,
  type StorageAdapter,
  staticTenants,
  SyncError,
  type SyncEvent,
  type Tenant,
} from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../billing/helpers.js';
import { FakeConnec } from './fake-connec.js';
import { API_ID, API_KEY, buildConnector, C, GROUP, LocalApp, ORG_UID, provisionGroup, TENANT, testTenant, withoutGroupFilter } from './harness.js';

const OTHER = 'cld-7c2d';

/** The scenario's tenant: `default`, its group webhook at `/maestrano/account/groups/:id/default`. */
function tenant(): Tenant {
  const base = testTenant();
  return {
    ...base,
    webhooks: {
      ...base.webhooks,
      account: { groupPath: `/maestrano/account/groups/:id/${TENANT}`, groupUserPath: `/maestrano/account/groups/:group_id/users/:id/${TENANT}` },
      connec: { ...base.webhooks.connec, notificationPath: `/maestrano/connec/notifications/${TENANT}` },
    },
  };
}

interface Setup {
  mno: Maestrano;
  app: LocalApp;
  storage: StorageAdapter;
  connec: FakeConnec;
  events: SyncEvent[];
  logger: ReturnType<typeof captureLogger>;
  /** `DELETE /maestrano/account/groups/<groupId>/default` through `mno.handler`, as Maestrano sends it. */
  deleteGroup(groupId?: string): Promise<Response>;
  drain(): Promise<void>;
}

function setup(
  options: { connector?: boolean; storage?: StorageAdapter; clock?: () => Date; connecPort?: (connec: FakeConnec) => FakeConnec; pageSize?: number } = {},
): Setup {
  const app = new LocalApp();
  const storage = options.storage ?? memoryAdapter(options.clock ? { clock: options.clock } : {});
  const connec = new FakeConnec(ORG_UID);
  const events: SyncEvent[] = [];
  const logger = captureLogger();
  const port = options.connecPort ? options.connecPort(connec) : connec;
  const mno = createMaestrano({
    tenants: staticTenants([tenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
    onLogin: () => new Response('ok'),
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
    // No Account API in these tests: the webhook's own work is covered in test/billing.
    billing: { cancelRecurringBillsOnGroupDeleted: false },
    ...(options.connector === false ? {} : { connector: buildConnector(app) }),
    sync: { connecPort: () => port, parkRetryMs: 5, maxAttempts: 4, onEvent: (e) => events.push(e), ...(options.pageSize ? { pageSize: options.pageSize } : {}) },
  });
  const deleteGroup = (groupId = GROUP) =>
    mno.handler(
      new Request(`http://127.0.0.1:3000/maestrano/account/groups/${groupId}/${TENANT}`, {
        method: 'DELETE',
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}` },
      }),
    );
  const drain = async () => {
    await mno.worker.drain({ pollIntervalMs: 1, concurrency: 4, backoff: { baseMs: 2, maxMs: 20 } });
  };
  return { mno, app, storage, connec, events, logger, deleteGroup, drain };
}

const ENTITIES = ['companies', 'contacts', 'items', 'invoices'];

/** Every id map and cursor of a group, as stored. */
async function stateOf(storage: StorageAdapter, groupId: string) {
  const maps = [];
  for (const entity of ENTITIES) maps.push(...(await storage.idMaps.list({ tenant: TENANT, groupId, entity }, { limit: 1000 })));
  const cursors = await storage.cursors.list(TENANT, groupId);
  return { maps, cursors };
}

/** Two provisioned groups, each imported from Connec! (id maps and import checkpoints stored). */
async function importTwoGroups(s: Setup) {
  for (const groupId of [GROUP, OTHER]) {
    await provisionGroup(s.storage, groupId);
    s.connec.seed(groupId, 'organizations', { name: `Org of ${groupId}` }, `o-${groupId}`);
    for (let i = 0; i < 3; i++) {
      s.connec.seed(groupId, 'people', { first_name: `P${i}`, last_name: groupId, organization_id: [C(`o-${groupId}`)] }, `p${i}-${groupId}`);
    }
    s.connec.seed(groupId, 'items', { name: 'Widget' }, `i-${groupId}`);
    const report = await s.mno.sync.importGroup({ tenant: TENANT, groupId });
    expect(report.status).toBe('complete');
  }
  // Something else of the group beside import checkpoints: a push leaves no cursor, so add one by hand.
  await s.storage.cursors.advance({ tenant: TENANT, groupId: GROUP, entity: 'contacts', kind: 'poll' }, 1, { since: '2016-10-04T00:00:00Z' });
  const before = await stateOf(s.storage, GROUP);
  expect(before.maps).toHaveLength(5);
  expect(before.cursors.length).toBeGreaterThanOrEqual(3);
  const other = await stateOf(s.storage, OTHER);
  expect(other.maps.length).toBeGreaterThanOrEqual(5);
  expect(other.cursors.length).toBeGreaterThan(0);
  return { before, other };
}

const purgeJobs = (storage: StorageAdapter) => storage.jobs.counts({ type: JobTypes.syncPurge });

/**
 * A Connec! port whose `method` waits at a gate: `entered` resolves on the first call `gated`
 * picks (every call by default), and those calls go on once the test calls `release()`.
 */
function gatedPort(method: 'listPage' | 'fetch', gated: (args: unknown[]) => boolean = () => true) {
  let enter: () => void = () => {};
  const entered = new Promise<void>((resolve) => {
    enter = resolve;
  });
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const connecPort = (connec: FakeConnec): FakeConnec =>
    new Proxy(connec, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== method || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          if (gated(args)) {
            enter();
            await gate;
          }
          return value.apply(target, args);
        };
      },
    });
  return { connecPort, entered, release };
}

/** `gatedPort` on the people pages: after the first (`$skip` > 0), or the `nth` people page. */
const gatedPeoplePages = (nth?: number) => {
  let people = 0;
  return gatedPort('listPage', ([, collection, options]) => {
    if (collection !== 'people') return false;
    people++;
    return nth === undefined ? (options as { skip: number }).skip > 0 : people === nth;
  });
};

/** The sweep a purge scheduled for the group (found through its dedupe key); null when none. */
async function sweepOf(storage: StorageAdapter, groupId = GROUP) {
  const probe = await storage.jobs.enqueue({
    type: JobTypes.syncPurge,
    tenant: TENANT,
    groupId,
    payload: { tenant: TENANT, groupId, sweep: true },
    dedupeKey: `${JobTypes.syncPurge}.sweep:${TENANT}:${groupId}`,
  });
  return probe.created ? null : storage.jobs.get(probe.id);
}

/** The storage adapter with `repo.method` failing `times` times (an outage during the webhook). */
function failing(storage: StorageAdapter, repo: 'jobs' | 'groups', method: string, times = 1): StorageAdapter & { failures: number } {
  let remaining = times;
  const wrapped = new Proxy(storage[repo], {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== 'function') return value;
      if (prop === method) {
        return async (...args: unknown[]) => {
          if (remaining > 0) {
            remaining--;
            out.failures++;
            throw new StorageError('memory storage: connection lost', { adapterId: 'memory', operation: `${repo}.${method}` });
          }
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  const out: StorageAdapter & { failures: number } = { ...storage, [repo]: wrapped, failures: 0 };
  return out;
}

describe('account deletion purges the group\'s sync state (CONNECTORS §F14)', () => {
  it('DELETE /maestrano/account/groups/cld-9a1b/default stores one sync.purge job; the worker drops every id map and cursor of that group and nothing of another', async () => {
    const s = setup();
    const { before, other } = await importTwoGroups(s);
    expect(Object.keys(s.mno.jobs)).toContain(JobTypes.syncPurge);

    const res = await s.deleteGroup();
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect((await s.storage.groups.get(TENANT, GROUP))?.status).toBe('cancelled');
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, running: 0, done: 0, dead: 0 });
    // The webhook only stores the job: nothing is removed before a worker runs it.
    expect((await stateOf(s.storage, GROUP)).maps).toHaveLength(before.maps.length);

    await s.drain();
    // Done, plus the sweep it scheduled past the record locks' lease (2 x 30 s by default).
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, done: 1, dead: 0 });
    const sweep = await sweepOf(s.storage);
    expect(sweep).toMatchObject({ status: 'pending', tenant: TENANT, groupId: GROUP, payload: { sweep: true } });
    expect((sweep?.runAt.getTime() ?? 0) - Date.now()).toBeGreaterThan(50_000);
    // Its dedupe key is no follow-up key of another deletion, even of a marketplace named
    // "sweep" whose group id holds a colon (the webhook's key is `sync.purge:<tenant>:<group>`).
    const followUp = await s.storage.jobs.enqueue({
      type: JobTypes.syncPurge,
      tenant: 'sweep',
      groupId: `${TENANT}:${GROUP}`,
      payload: { tenant: 'sweep', groupId: `${TENANT}:${GROUP}` },
      dedupeKey: `${JobTypes.syncPurge}:sweep:${TENANT}:${GROUP}`,
    });
    expect(followUp.created).toBe(true);
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await stateOf(s.storage, OTHER)).toEqual(other);
    expect((await s.storage.groups.get(TENANT, OTHER))?.status).toBe('active');
    expect(s.events.filter((e) => e.type === 'group.purged')).toEqual([
      { type: 'group.purged', tenant: TENANT, groupId: GROUP, idMaps: before.maps.length, cursors: before.cursors.length, deadLetters: 0 },
    ]);
    expect(s.logger.entries.some((e) => e.message === 'sync: cancelled group purged' && e.fields?.idMaps === before.maps.length)).toBe(true);
  });

  it('a replayed webhook stores no second job and still answers success, before and after the purge ran', async () => {
    const s = setup();
    await importTwoGroups(s);
    expect((await s.deleteGroup()).status).toBe(200);
    const replay = await s.deleteGroup();
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ success: true });
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, done: 0 });

    await s.drain();
    const purged = s.events.filter((e) => e.type === 'group.purged').length;
    const late = await s.deleteGroup();
    expect(late.status).toBe(200);
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, running: 0, done: 1 });
    expect(await sweepOf(s.storage)).toMatchObject({ status: 'pending' });
    await s.drain();
    expect(s.events.filter((e) => e.type === 'group.purged')).toHaveLength(purged);
  });

  it('a redelivered job removes nothing more (idempotent) and never touches another group', async () => {
    const s = setup();
    const { other } = await importTwoGroups(s);
    expect((await s.deleteGroup()).status).toBe(200);
    const [job] = await s.storage.jobs.claim({ worker: 'w1', limit: 10, leaseMs: 60_000, types: [JobTypes.syncPurge] });
    if (!job) throw new Error('no sync.purge job stored');
    expect(job).toMatchObject({ tenant: TENANT, groupId: GROUP, dedupeKey: `${JobTypes.syncPurge}:${TENANT}:${GROUP}` });
    const handler = s.mno.jobs[JobTypes.syncPurge];
    if (!handler) throw new Error('no sync.purge handler');
    const ctx = { signal: new AbortController().signal, heartbeat: async () => true, logger: s.logger };
    await handler(job, ctx);
    // The lease expired before the completion was recorded: another worker runs it again.
    await handler(job, ctx);
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await stateOf(s.storage, OTHER)).toEqual(other);
    const purged = s.events.filter((e) => e.type === 'group.purged');
    expect(purged.map((e) => e.type === 'group.purged' && [e.idMaps, e.cursors])).toEqual([
      [5, expect.any(Number)],
      [0, 0],
    ]);
  });

  it('refuses to purge an active group: the job finishes without removing anything, the API throws GroupPurgeRefusedError', async () => {
    const s = setup();
    const { before } = await importTwoGroups(s);

    // A purge job for a group that is active (never cancelled, or active again).
    await s.storage.jobs.enqueue({ type: JobTypes.syncPurge, tenant: TENANT, groupId: GROUP, payload: { tenant: TENANT, groupId: GROUP } });
    await s.drain();
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 0, done: 1, dead: 0 });
    expect(await stateOf(s.storage, GROUP)).toEqual(before);
    expect(s.events.some((e) => e.type === 'group.purged')).toBe(false);
    expect(s.logger.entries.some((e) => e.level === 'warn' && e.message.startsWith('sync: purge refused') && e.fields?.reason === 'active')).toBe(true);

    const refusal = await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(GroupPurgeRefusedError);
    expect(refusal).toBeInstanceOf(SyncError);
    expect(refusal).toMatchObject({ code: 'sync_failed', reason: 'active' });
    expect((refusal as Error).message).toMatch(/group "cld-9a1b" \(tenant "default"\): the group is active/);
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: 'cld-404' }).catch((e: unknown) => e)).toMatchObject({ reason: 'unknown_group' });
    expect(await stateOf(s.storage, GROUP)).toEqual(before);
  });

  it('mno.sync.purgeGroup purges a cancelled group now (apps that delete accounts themselves); a second call reports zeros', async () => {
    const s = setup({ connector: true });
    const { before, other } = await importTwoGroups(s);
    await s.storage.groups.cancel(TENANT, GROUP);
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP })).toEqual({
      tenant: TENANT,
      groupId: GROUP,
      idMaps: before.maps.length,
      cursors: before.cursors.length,
      deadLetters: 0,
    });
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await stateOf(s.storage, OTHER)).toEqual(other);
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP })).toEqual({ tenant: TENANT, groupId: GROUP, idMaps: 0, cursors: 0, deadLetters: 0 });
  });

  it('mno.sync.purgeGroup stops between two statements once its signal aborts: what it removed stays removed, the lock is free, a second call finishes the rest', async () => {
    const base = memoryAdapter();
    const stop = new AbortController();
    let resets = 0;
    // Aborts the call's signal as the first cursor reset returns (a caller giving up mid-purge).
    const storage: StorageAdapter = {
      ...base,
      cursors: new Proxy(base.cursors, {
        get(target, prop) {
          const value = Reflect.get(target, prop);
          if (typeof value !== 'function') return value;
          if (prop !== 'reset') return value.bind(target);
          return async (...args: unknown[]) => {
            const out = await value.apply(target, args);
            resets++;
            stop.abort(new Error('caller gave up'));
            return out;
          };
        },
      }),
    };
    const s = setup({ connector: true, storage });
    const { before, other } = await importTwoGroups(s);
    expect(before.cursors.length).toBeGreaterThanOrEqual(2);
    await s.storage.groups.cancel(TENANT, GROUP);

    const error = await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP, signal: stop.signal }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SyncError);
    expect((error as Error).message).toMatch(/^Purge of group "cld-9a1b" \(tenant "default"\) aborted/);
    expect(resets).toBe(1);
    const partial = await stateOf(s.storage, GROUP);
    expect(partial.maps).toEqual([]);
    expect(partial.cursors).toHaveLength(before.cursors.length - 1);
    // Aborted before it starts: nothing is removed, no lock is taken.
    const again = await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP, signal: stop.signal }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(SyncError);
    expect(await stateOf(s.storage, GROUP)).toEqual(partial);
    // The group lock was released: a call without a signal finishes what was left.
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP })).toEqual({ tenant: TENANT, groupId: GROUP, idMaps: 0, cursors: before.cursors.length - 1, deadLetters: 0 });
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await stateOf(s.storage, OTHER)).toEqual(other);
  });

  /** A dead job stored as a worker leaves it (claimed, failed for good). */
  async function deadJob(storage: StorageAdapter, type: string, groupId: string, payload: JobInput['payload']): Promise<string> {
    const { id } = await storage.jobs.enqueue({ type, tenant: TENANT, groupId, payload });
    const [claimed] = await storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: [type] });
    expect(claimed?.id).toBe(id);
    expect(await storage.jobs.fail(id, 'w', { error: { message: 'failed for good' }, retryAt: new Date(), final: true })).toBe('dead');
    return id;
  }

  it.each([
    ['an adapter that filters dead letters by group', (storage: StorageAdapter) => storage],
    ['an adapter that ignores the groupId filter', withoutGroupFilter],
  ])("discards the group's dead sync jobs (their payloads hold the deleted account's records), not another group's nor billing ones (%s)", async (_name, view) => {
    const base = memoryAdapter();
    const s = setup({ connector: true, storage: view(base) });
    await importTwoGroups(s);
    // More dead record jobs of another group than one page, older than the group's: an adapter
    // that ignores the filter answers them first.
    const others: string[] = [];
    for (let n = 0; n < 120; n++) others.push(await deadJob(base, JobTypes.connecRecord, OTHER, { tenant: TENANT, groupId: OTHER, entity: 'contacts', record: { n } }));
    const person = { id: [{ provider: 'connec', realm: ORG_UID, id: 'p9' }], first_name: 'Jane', last_name: 'Doe', email: { address: 'jane.doe@example.com' } };
    const mine = [
      await deadJob(base, JobTypes.connecRecord, GROUP, { tenant: TENANT, groupId: GROUP, entity: 'contacts', record: person }),
      await deadJob(base, JobTypes.connecRecord, GROUP, { tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { ...person, id: [{ provider: 'connec', realm: ORG_UID, id: 'p8' }] } }),
      await deadJob(base, JobTypes.syncImport, GROUP, { tenant: TENANT, groupId: GROUP, full: false }),
    ];
    const kept = [
      await deadJob(base, JobTypes.connecRecord, OTHER, { tenant: TENANT, groupId: OTHER, entity: 'contacts', record: person }),
      await deadJob(base, JobTypes.billingCheckDuplicates, GROUP, { kind: 'ended-group', tenant: TENANT, groupId: GROUP }),
    ];
    await s.storage.groups.cancel(TENANT, GROUP);

    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP })).toMatchObject({ deadLetters: 3 });
    for (const id of mine) expect(await base.jobs.get(id)).toBeNull();
    for (const id of [...kept, ...others]) expect(await base.jobs.get(id)).toMatchObject({ status: 'dead' });
    expect((await base.jobs.counts()).dead).toBe(kept.length + others.length);
    expect(JSON.stringify(await base.jobs.listDead({ tenant: TENANT, groupId: GROUP }))).not.toContain('jane.doe@example.com');
    // Idempotent: nothing more to discard.
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP })).toMatchObject({ deadLetters: 0 });
  });

  it.each([
    ['storing the job', 'jobs', 'enqueueMany', 'cancelled'],
    ['cancelling the group', 'groups', 'cancel', 'active'],
  ] as const)('a storage failure while %s answers 5xx; after recovery, Maestrano\'s retry leads to exactly one purge', async (_what, repo, method, statusAfterFailure) => {
    const storage = failing(memoryAdapter(), repo, method, 1);
    const s = setup({ storage });
    const { before, other } = await importTwoGroups(s);

    const failed = await s.deleteGroup();
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ success: false, error: 'internal_error' });
    expect(storage.failures).toBe(1);
    expect((await s.storage.groups.get(TENANT, GROUP))?.status).toBe(statusAfterFailure);
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
    await s.drain();
    expect(await stateOf(s.storage, GROUP)).toEqual(before);

    // Storage is back; Maestrano retries the delivery (twice: the second one is a replay).
    expect((await s.deleteGroup()).status).toBe(200);
    expect((await s.deleteGroup()).status).toBe(200);
    expect((await s.storage.groups.get(TENANT, GROUP))?.status).toBe('cancelled');
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, done: 0 });
    await s.drain();
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await stateOf(s.storage, OTHER)).toEqual(other);
    expect(s.events.filter((e) => e.type === 'group.purged')).toHaveLength(1);
    // The purge and its sweep: one of each whatever the number of deliveries.
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, done: 1, dead: 0 });
  });

  it('without a connector the webhook stores no purge job and nothing is removed', async () => {
    const s = setup({ connector: false });
    expect(Object.keys(s.mno.jobs)).not.toContain(JobTypes.syncPurge);
    await provisionGroup(s.storage, GROUP);
    await s.storage.idMaps.insert({ tenant: TENANT, groupId: GROUP, entity: 'contacts', connecId: 'p1', localId: 'per-1' });
    await s.storage.cursors.advance({ tenant: TENANT, groupId: GROUP, entity: 'contacts', kind: 'import' }, 10, {}, true);

    const res = await s.deleteGroup();
    expect(res.status).toBe(200);
    expect((await s.storage.groups.get(TENANT, GROUP))?.status).toBe('cancelled');
    expect(await purgeJobs(s.storage)).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    expect(await s.storage.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    await s.drain();
    expect((await stateOf(s.storage, GROUP)).maps).toHaveLength(1);
    expect((await stateOf(s.storage, GROUP)).cursors).toHaveLength(1);
  });

  it('waits for an import of the group that is still running (shared group lock), which applies nothing read after the deletion, then purges', async () => {
    let now = Date.parse('2024-05-01T00:00:00Z');
    const clock = () => new Date(now);
    // Connec! answers the first page of the import only once the test lets it.
    const { connecPort, entered, release } = gatedPort('listPage');
    const s = setup({ clock, connecPort });
    await provisionGroup(s.storage, GROUP);
    for (let i = 0; i < 4; i++) s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Slow' }, `p${i}`);

    const importing = s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP });
    await entered;
    expect((await s.deleteGroup()).status).toBe(200);
    await s.drain();
    // Deferred, not done: the import holds the group lock.
    const counts = await purgeJobs(s.storage);
    expect(counts).toMatchObject({ pending: 1, done: 0 });
    expect(s.events.some((e) => e.type === 'group.purged')).toBe(false);
    expect(await s.mno.sync.purgeGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e)).toBeInstanceOf(ImportBusyError);

    release();
    // The page Connec! answered after the deletion is not applied: the import stops there.
    expect(await importing.catch((e: unknown) => e)).toBeInstanceOf(SyncError);
    expect((await stateOf(s.storage, GROUP)).maps).toHaveLength(0);
    now += 60_000;
    await s.drain();
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 1, done: 1 });
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    // The sweep, due a minute later, finds nothing more and reports nothing.
    now += 60_000;
    await s.drain();
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 0, done: 2 });
    expect(s.events.filter((e) => e.type === 'group.purged')).toHaveLength(1);
  });

  it('an import running when the group is deleted stops before its next page: nothing more is written into the cancelled company', async () => {
    // Connec! answers the people pages after the first only once the test lets it.
    const { connecPort, entered, release } = gatedPeoplePages();
    const s = setup({ connecPort, pageSize: 2 });
    await provisionGroup(s.storage, GROUP);
    for (let i = 0; i < 6; i++) s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Many' }, `p${i}`);

    const importing = s.mno.sync.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    // The first page (2 people) is applied; the second is on its way.
    await entered;
    expect((await s.deleteGroup()).status).toBe(200);
    expect((await s.storage.groups.get(TENANT, GROUP))?.status).toBe('cancelled');
    const before = s.app.contacts.size;
    expect(before).toBe(2);

    release();
    const outcome = await importing;
    // The import ends (not as complete) and writes no contact into the cancelled company.
    expect(outcome).toBeInstanceOf(SyncError);
    expect(s.app.contacts.size).toBe(before);
    expect(s.app.writes.create).toBe(before);
    expect(s.connec.all(GROUP, 'people').filter((p) => JSON.stringify(p.id).includes(API_ID))).toHaveLength(before);
  });

  it('a poll running when the group is deleted stops before its next page of the same entity', async () => {
    // The poll pages by updated_at (no $skip): its second people page waits for the test.
    const { connecPort, entered, release } = gatedPeoplePages(2);
    const s = setup({ connecPort, pageSize: 2 });
    await provisionGroup(s.storage, GROUP);
    for (let i = 0; i < 6; i++) s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Many' }, `p${i}`);

    const polling = s.mno.sync.pollGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    await entered;
    expect((await s.deleteGroup()).status).toBe(200);
    const before = s.app.contacts.size;
    expect(before).toBe(2);
    release();
    expect(await polling).toBeInstanceOf(SyncError);
    expect(s.app.contacts.size).toBe(before);
    expect(s.app.writes.create).toBe(before);
  });

  it('an import job running when the group is deleted ends done in one attempt (no failure, no dead letter), with nothing more written', async () => {
    const { connecPort, entered, release } = gatedPeoplePages();
    const s = setup({ connecPort, pageSize: 2 });
    await provisionGroup(s.storage, GROUP);
    for (let i = 0; i < 6; i++) s.connec.seed(GROUP, 'people', { first_name: `P${i}`, last_name: 'Many' }, `p${i}`);
    const { id } = await s.storage.jobs.enqueue({ type: JobTypes.syncImport, tenant: TENANT, groupId: GROUP, payload: { tenant: TENANT, groupId: GROUP } });

    const draining = s.drain();
    await entered;
    expect((await s.deleteGroup()).status).toBe(200);
    release();
    await draining;
    expect(await s.storage.jobs.get(id)).toMatchObject({ status: 'done', attempts: 1 });
    expect(s.app.contacts.size).toBe(2);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ pending: 0, done: 0 });
  });

  it('a record job that read the group as active before the cancellation writes its id map after the purge; the sweep removes it', async () => {
    let now = Date.parse('2024-05-01T00:00:00Z');
    const clock = () => new Date(now);
    // Connec! answers the on-demand fetch of the referenced organization only once the test lets it.
    const { connecPort, entered: fetching, release } = gatedPort('fetch');
    const s = setup({ clock, connecPort });
    await provisionGroup(s.storage, GROUP);
    s.connec.seed(GROUP, 'organizations', { name: 'Late Org' }, 'o-late');
    const notified = await s.mno.handler(
      new Request(`http://127.0.0.1:3000/maestrano/connec/notifications/${TENANT}`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          people: [{ id: [C('p-late')], first_name: 'Lou', last_name: 'Late', organization_id: [C('o-late')], group_id: GROUP, channel_id: ORG_UID, updated_at: '2024-04-30T00:00:00Z' }],
        }),
      }),
    );
    expect(notified.status).toBe(200);

    // The person parks on its unknown organization, whose fetch job reads the group (active)
    // and then waits on Connec!.
    const draining = s.drain();
    await fetching;
    expect((await s.deleteGroup()).status).toBe(200);
    const purged = async () => s.events.some((e) => e.type === 'group.purged');
    for (let i = 0; i < 5_000 && !(await purged()); i++) await new Promise((r) => setTimeout(r, 2));
    expect(await purged()).toBe(true);

    release();
    await draining;
    // The straggler: the organization's map, written after the purge.
    const late = await stateOf(s.storage, GROUP);
    expect(late.maps.map((m) => [m.entity, m.connecId])).toEqual([['companies', 'o-late']]);

    now += 60_000;
    await s.drain();
    expect(await stateOf(s.storage, GROUP)).toEqual({ maps: [], cursors: [] });
    expect(await purgeJobs(s.storage)).toMatchObject({ pending: 0, done: 2, dead: 0 });
    expect(s.events.filter((e) => e.type === 'group.purged').map((e) => e.type === 'group.purged' && e.idMaps)).toEqual([0, 1]);
    expect(s.logger.entries.some((e) => e.message.startsWith('sync: sweep after a purge removed') && e.fields?.idMaps === 1)).toBe(true);
  });
});
