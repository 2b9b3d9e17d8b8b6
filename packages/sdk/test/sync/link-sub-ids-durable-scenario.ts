/**
 * The sub-record ids (invoice lines) a link-back owes, lost with the worker that held them: in
 * its memory only, or in a retry job that could not be stored. The id map stores them with the
 * version (`IdMapRecord.linkSubIds`), so the retry (a replay of that version) links them, and the
 * next Connec! version updates the app's lines instead of creating them again. Run over any
 * storage adapter (memory here; SQLite, PostgreSQL and MongoDB in the adapters' tests). Staged in
 * process as a crash leaves storage: the dying worker runs over a view of the storage that stops
 * answering the moment the id-map write commits, and its job lease and locks lapse (short TTLs,
 * real time: the adapters take time from their own clock).
 */
import { createSyncModule, type StorageAdapter } from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { buildConnector, C, createHarness, dyingView, GROUP, type Harness, provisionGroup, TENANT, testRuntime } from './harness.js';

type IdEntry = { id: string; provider: string };
export const INVOICES = { tenant: TENANT, groupId: GROUP, entity: 'invoices' };
const LINES = [
  { id: [C('l1')], description: 'Widget', quantity: 1 },
  { id: [C('l2')], description: 'Gadget', quantity: 2 },
];
/** Job lease and lock TTLs of the worker that dies: they lapse within a second of its death. */
const DYING_TTL_MS = 1_000;

/** Our ids on the invoice's lines in Connec! (null for a line without one). */
export function linkedLineIds(h: Harness, connecId = 'i1'): (string | null)[] {
  const inConnec = h.connec.find(GROUP, 'invoices', connecId) as { lines: { id: IdEntry[] }[] };
  return inConnec.lines.map((l) => l.id.find((e) => e.provider === 'myapp')?.id ?? null);
}

/** The link-back PUTs of invoices sent so far. */
export function invoicePuts(h: Harness): number {
  return h.connec.batches.flat().filter((op) => op.method === 'put' && op.collection === 'invoices').length;
}

export function seedInvoice(h: Harness) {
  return h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: LINES }, 'i1');
}

/**
 * Refuses the first link-back PUT of an invoice (503) and, in that moment, runs `meanwhile`
 * (another app changing the invoice in Connec! while our link-back waits for its retry).
 * Returns a reader of how many PUTs were refused (one at most).
 */
export function refuseFirstLinkBack(h: Harness, meanwhile: () => void = () => {}): () => number {
  let refused = 0;
  h.connec.rejectOp = (op) => {
    if (op.method !== 'put' || op.collection !== 'invoices' || refused > 0) return null;
    refused++;
    meanwhile();
    return { status: 503, error: 'Service Unavailable' };
  };
  return () => refused;
}

/** The lines every invoice PUT sent (refused ones included), in order. */
export function sentInvoiceLines(h: Harness): { quantity?: unknown }[] {
  return h.connec.batches
    .flat()
    .filter((op) => op.method === 'put' && op.collection === 'invoices')
    .flatMap((op) => (Array.isArray(op.record.lines) ? (op.record.lines as { quantity?: unknown }[]) : []));
}

/** The app's line ids of its one invoice. */
export function appLineIds(h: Harness): (string | null)[] {
  expect(h.app.invoices.size).toBe(1);
  return ([...h.app.invoices.values()][0]?.lines ?? []).map((l) => l.id);
}

/** Edits a line in Connec! (as another app would) and delivers that version: the app updates the same lines, creates none. */
export async function editLineInConnec(h: Harness, lineIds: (string | null)[]): Promise<void> {
  const current = h.connec.find(GROUP, 'invoices', 'i1') as { lines: Record<string, unknown>[] };
  const edited = h.connec.edit(GROUP, 'invoices', 'i1', { lines: current.lines.map((l, k) => (k === 0 ? { ...l, quantity: 5 } : l)) });
  expect((await h.notify({ invoices: [edited] })).status).toBe(200);
  await h.drain();
  expect(appLineIds(h)).toEqual(lineIds);
  expect([...h.app.invoices.values()][0]?.lines.map((l) => l.quantity)).toEqual([5, 2]);
}

/** `storage` whose `idMaps.insertMany` calls `after` once it answered (the moment its write committed). */
export function afterMapInsert(storage: StorageAdapter, after: (maps: Parameters<StorageAdapter['idMaps']['insertMany']>[0]) => void): StorageAdapter {
  const bound = (target: object, key: string | symbol) => {
    const value: unknown = Reflect.get(target, key);
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
  };
  const idMaps = new Proxy(storage.idMaps, {
    get(target, key) {
      if (key !== 'insertMany') return bound(target, key);
      return async (maps: Parameters<StorageAdapter['idMaps']['insertMany']>[0]) => {
        const stored = await target.insertMany(maps);
        after(maps);
        return stored;
      };
    },
  });
  return new Proxy(storage, { get: (target, key) => (key === 'idMaps' ? idMaps : bound(target, key)) });
}

/** A sync module and worker of a process that dies once `dead()` is true (see `dyingView`). */
function dyingProcess(h: Harness, storage: StorageAdapter, dead: () => boolean) {
  const runtime = testRuntime(dyingView(storage, dead), () => new Date(), 'dying-instance');
  const sync = createSyncModule(runtime, {
    connector: buildConnector(h.app),
    sync: { connecPort: () => h.connec, parkRetryMs: 5, maxAttempts: 4, lockTtlMs: DYING_TTL_MS, importLockTtlMs: DYING_TTL_MS },
  });
  return { sync, worker: createWorker(runtime, sync.jobs ?? {}) };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 4_000 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(done()).toBe(true);
}

const lapse = () => new Promise((r) => setTimeout(r, DYING_TTL_MS + 200));

/**
 * A worker writes the notified invoice in the app, stores its id map and is killed as that write
 * commits: no link-back, no job completion. Its lease and lock lapse; another worker runs the job
 * again (a replay) and links the line ids.
 */
export async function killedAfterMapWrite(storage?: StorageAdapter): Promise<void> {
  const h = await createHarness(storage ? { storage } : {});
  await provisionGroup(h.storage);
  expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
  let dead = false;
  const dying = dyingProcess(
    h,
    afterMapInsert(h.storage, () => {
      dead = true;
    }),
    () => dead,
  );
  void dying.worker.drain({ pollIntervalMs: 1, concurrency: 1, leaseMs: DYING_TTL_MS });
  await until(() => dead);
  const lineIds = appLineIds(h);
  expect(lineIds).toHaveLength(2);
  expect(invoicePuts(h)).toBe(0);
  const map = await h.storage.idMaps.find(INVOICES, { connecId: 'i1' });
  expect(map?.localId).toBe([...h.app.invoices.keys()][0]);

  await lapse();
  await h.drain();
  expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  expect(h.app.writes.create).toBe(1);
  expect(linkedLineIds(h)).toEqual(lineIds);
  // The id map recorded the version and, in the same write, the line ids its link-back owed.
  expect(JSON.parse(map?.linkSubIds ?? 'null')).toMatchObject({ ids: { lines: lineIds } });
  await editLineInConnec(h, lineIds);
}

/**
 * An import applies a page, stores its id maps and is killed as that write commits, before the
 * page's link-backs and checkpoint. Its lock lapses; the import runs again from its checkpoint
 * (the page is a replay) and links the line ids.
 */
export async function importKilledAfterMapWrite(storage?: StorageAdapter): Promise<void> {
  const h = await createHarness(storage ? { storage } : {});
  await provisionGroup(h.storage);
  seedInvoice(h);
  let dead = false;
  const dying = dyingProcess(
    h,
    afterMapInsert(h.storage, (maps) => {
      if (maps.some((m) => m.entity === 'invoices')) dead = true;
    }),
    () => dead,
  );
  void dying.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
  await until(() => dead);
  const lineIds = appLineIds(h);
  expect(invoicePuts(h)).toBe(0);

  await lapse();
  await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
  await h.drain();
  expect(h.app.writes.create).toBe(1);
  expect(linkedLineIds(h)).toEqual(lineIds);
  await editLineInConnec(h, lineIds);
}

/** `storage` whose `jobs.enqueueMany` fails, while `state.armed`, for a batch holding a job that carries `linkSubIds` (a failed link-back's retry). */
function failingRetryEnqueue(storage: StorageAdapter, state: { armed: boolean; fired: number }): StorageAdapter {
  const bound = (target: object, key: string | symbol) => {
    const value: unknown = Reflect.get(target, key);
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
  };
  const jobs = new Proxy(storage.jobs, {
    get(target, key) {
      if (key !== 'enqueueMany') return bound(target, key);
      return async (input: Parameters<StorageAdapter['jobs']['enqueueMany']>[0]) => {
        if (state.armed && input.some((job) => typeof job.payload === 'object' && job.payload !== null && 'linkSubIds' in job.payload)) {
          state.fired++;
          throw new Error('database unavailable');
        }
        return target.enqueueMany(input);
      };
    },
  });
  return new Proxy(storage, { get: (target, key) => (key === 'jobs' ? jobs : bound(target, key)) });
}

/**
 * The link-back of a created invoice fails, and so does storing its retry job (which carries the
 * line ids): the record job is retried as it is, a replay whose payload names no line id.
 */
export async function linkBackRetryNotStored(storage: StorageAdapter): Promise<void> {
  const state = { armed: false, fired: 0 };
  const h = await createHarness({ storage: failingRetryEnqueue(storage, state) });
  await provisionGroup(h.storage);
  let refusals = 1;
  h.connec.rejectOp = (op) => (op.method === 'put' && refusals-- > 0 ? { status: 503, error: 'Service Unavailable' } : null);
  expect((await h.notify({ invoices: [seedInvoice(h)] })).status).toBe(200);
  state.armed = true;
  await h.drain();
  expect(state.fired).toBe(1);
  expect(refusals).toBeLessThan(0);
  const lineIds = appLineIds(h);
  expect(lineIds).toHaveLength(2);
  expect(h.app.writes.create).toBe(1);
  expect(linkedLineIds(h)).toEqual(lineIds);
  expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  await editLineInConnec(h, lineIds);
}
