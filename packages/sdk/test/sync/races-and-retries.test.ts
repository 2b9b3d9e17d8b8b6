/**
 * Regressions of the sync review: a push racing a notification of the same record, the line
 * ids of an invoice whose link-back is retried (CONNECTORS §F6), and the on-demand fetch of a
 * referenced record after an earlier fetch of it finished (§F5).
 */
import {
  createSyncModule,
  defineConnector,
  defineEntity,
  type JobInput,
  JobTypes,
  memoryAdapter,
  ServerError,
  type StorageAdapter,
} from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FETCH_AGAIN_AFTER_MS } from '../../src/sync/engine.js';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { A, C, createHarness, GROUP, drainer, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const scope = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

interface Contact {
  id: string;
  first: string;
  title: string;
  updatedAt: Date;
}
type ContactData = Omit<Contact, 'id'> & { id?: string };

/** A contacts entity over `store`; `beforeWrite` runs inside `local.update`, before the write lands. */
async function contactsSetup(conflict: 'connec-wins' | 'local-wins') {
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter();
  const runtime = testRuntime(storage);
  const store = new Map<string, Contact>();
  const hooks: { beforeWrite: (() => Promise<void>) | null } = { beforeWrite: null };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    conflict,
    toLocal: (p: Record<string, unknown>): ContactData => ({ first: String(p.first_name ?? ''), title: String(p.job_title ?? ''), updatedAt: new Date(0) }),
    toConnec: (c: ContactData) => ({ first_name: c.first, job_title: c.title }),
    localId: (c: ContactData) => c.id ?? '',
    localUpdatedAt: (c) => c.updatedAt,
    local: {
      create: async (data) => {
        store.set('per-1', { ...data, id: 'per-1' });
        return { id: 'per-1' };
      },
      update: async (id, data) => {
        const hook = hooks.beforeWrite;
        hooks.beforeWrite = null;
        if (hook) await hook();
        // A sync write stamps the row like any other write of the app.
        store.set(id, { ...data, id, updatedAt: new Date() });
        return undefined;
      },
      get: async (id) => store.get(id) ?? null,
    },
  });
  const sync = createSyncModule(runtime, {
    connector: defineConnector({ entities: [contacts] }),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 6 },
  });
  await provisionGroup(storage);
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  const notify = notifier(sync);
  const save = async (title: string) => {
    const row: Contact = { id: 'per-1', first: 'Jane', title, updatedAt: new Date() };
    store.set('per-1', row);
    return row;
  };
  const push = (record: Contact) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record });
  // The app's contact, pushed and linked.
  const pushed = await push(await save('Engineer'));
  expect(pushed.status).toBe('pushed');
  return { connec, storage, store, hooks, drain, notify, save, push, cid: pushed.connecId as string };
}

describe('a push racing a notification of the same record', () => {
  it.each(['connec-wins', 'local-wins'] as const)('%s: a push that lands while the notified version is written locally: both sides end on the push', async (conflict) => {
    const t = await contactsSetup(conflict);
    // Another app edits the person in Connec!: its notification is delivered.
    const other = t.connec.edit(GROUP, 'people', t.cid, { job_title: 'CTO' });
    // While the worker writes it, the user saves "VP" and the app pushes it: Connec! stamps it later.
    t.hooks.beforeWrite = async () => {
      expect((await t.push(await t.save('VP'))).status).toBe('pushed');
    };
    expect((await t.notify({ people: [other] })).status).toBe(200);
    await t.drain();

    const inConnec = t.connec.find(GROUP, 'people', t.cid);
    expect(inConnec?.job_title).toBe('VP');
    expect(t.store.get('per-1')?.title).toBe('VP');
    // The map holds Connec!'s current version as applied, and nothing is left to retry.
    const map = await t.storage.idMaps.find(scope('contacts'), { connecId: t.cid });
    expect(map?.lastAppliedAt?.toISOString()).toBe(inConnec?.updated_at);
    expect(map?.lastError).toBeNull();
    expect(await t.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, dead: 0 });
    // Its echo, delivered later, changes nothing.
    await t.notify({ people: [inConnec] });
    await t.drain();
    expect(t.store.get('per-1')?.title).toBe('VP');
    expect(t.connec.find(GROUP, 'people', t.cid)?.job_title).toBe('VP');
  });

  it('a push answered after the notified version was written over the saved record: its echo is written, not skipped', async () => {
    const t = await contactsSetup('connec-wins');
    const realBatch = t.connec.batch.bind(t.connec);
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const other = t.connec.edit(GROUP, 'people', t.cid, { job_title: 'CTO' });
    // The user saves "VP"; the app's push is on its way to Connec! ...
    const vp = await t.save('VP');
    t.connec.batch = async (ops) => {
      await gate;
      return realBatch(ops);
    };
    const pushing = t.push(vp);
    // ... while the worker writes the other app's version over the saved record.
    await t.notify({ people: [other] });
    await t.drain();
    expect(t.store.get('per-1')?.title).toBe('CTO');
    open();
    expect((await pushing).status).toBe('pushed');
    t.connec.batch = realBatch;
    const inConnec = t.connec.find(GROUP, 'people', t.cid);
    expect(inConnec?.job_title).toBe('VP');

    // Connec! notifies the pushed version back: the app must end up holding it too.
    await t.notify({ people: [inConnec] });
    await t.drain();
    expect(t.store.get('per-1')?.title).toBe('VP');
    expect(t.connec.find(GROUP, 'people', t.cid)?.job_title).toBe('VP');
    const map = await t.storage.idMaps.find(scope('contacts'), { connecId: t.cid });
    expect(map?.lastAppliedAt?.toISOString()).toBe(inConnec?.updated_at);
  });
  it('the echo of push 1, skipped while push 2 is in flight, does not make the echo of push 2 a local write', async () => {
    const t = await contactsSetup('connec-wins');
    // Push 1 (Manager) lands.
    expect((await t.push(await t.save('Manager'))).status).toBe('pushed');
    const echo1 = structuredClone(t.connec.find(GROUP, 'people', t.cid));
    expect(echo1?.job_title).toBe('Manager');
    await new Promise((r) => setTimeout(r, 1100)); // a later Connec! second for push 2
    // Push 2 (VP) is on its way to Connec! ...
    const vp = await t.save('VP');
    const realBatch = t.connec.batch.bind(t.connec);
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    t.connec.batch = async (ops) => {
      await gate;
      return realBatch(ops);
    };
    const pushing = t.push(vp);
    // ... while the echo of push 1 is delivered: an echo, nothing written locally.
    let wrote = 0;
    t.hooks.beforeWrite = async () => {
      wrote++;
    };
    await t.notify({ people: [echo1] });
    await t.drain();
    expect(wrote).toBe(0);
    t.hooks.beforeWrite = null;
    open();
    expect((await pushing).status).toBe('pushed');
    t.connec.batch = realBatch;
    const map = await t.storage.idMaps.find(scope('contacts'), { connecId: t.cid });
    expect(map?.lastPushedHash, 'push 2 recorded as agreed').not.toBeNull();
    // The echo of push 2: nothing to write either.
    t.hooks.beforeWrite = async () => {
      wrote++;
    };
    await t.notify({ people: [t.connec.find(GROUP, 'people', t.cid)] });
    await t.drain();
    expect(t.store.get('per-1')?.title).toBe('VP');
    expect(wrote, 'local writes caused by our own echoes').toBe(0);
  });
});

describe('a failed link-back of an invoice with lines (CONNECTORS §F6)', () => {
  const invoiceLines = [
    { id: [C('l1')], item_id: [C('it1'), A('sku-1')], quantity: 2 },
    { id: [C('l2')], description: 'Shipping', quantity: 1 },
  ];

  async function withItem() {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.items.set('sku-1', { id: 'sku-1', name: 'Widget', archived: false });
    await h.storage.idMaps.insert({ ...scope('items'), connecId: 'it1', localId: 'sku-1' });
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1009', lines: invoiceLines }, 'i1');
    // Connec! refuses the first link-back with a 503; later ones go through.
    let refused = 0;
    h.connec.rejectOp = (op) => (op.id === 'i1' && refused++ === 0 ? { status: 503, error: 'Service unavailable' } : null);
    return { h, refusals: () => refused };
  }

  async function expectLinesLinked(h: Awaited<ReturnType<typeof createHarness>>) {
    const [inv] = [...h.app.invoices.values()];
    const lineIds = inv?.lines.map((l) => l.id) ?? [];
    expect(lineIds).toEqual([expect.stringMatching(/^ln-/), expect.stringMatching(/^ln-/)]);
    const stored = h.connec.find(GROUP, 'invoices', 'i1');
    expect(stored?.id).toEqual([C('i1'), A(inv?.id ?? '')]);
    expect(((stored?.lines ?? []) as { id: unknown }[]).map((l) => l.id)).toEqual([
      [C('l1'), A(lineIds[0] ?? '')],
      [C('l2'), A(lineIds[1] ?? '')],
    ]);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, dead: 0 });
    // The next Connec! version updates the lines the app has; it re-creates none.
    const creates = h.app.writes.create;
    await h.notify({ invoices: [{ ...(stored as object), transaction_number: 'INV-1009-B', group_id: GROUP, updated_at: '2016-10-06T00:00:00Z' }] });
    await h.drain();
    const after = h.app.invoices.get(inv?.id ?? '');
    expect(after?.number).toBe('INV-1009-B');
    expect(after?.lines.map((l) => l.id)).toEqual(lineIds);
    expect(h.app.writes.create).toBe(creates);
  }

  it('notification: the retried link-back carries the line ids, not only the record id', async () => {
    const { h, refusals } = await withItem();
    await h.notify({ invoices: [{ id: [C('i1')], transaction_number: 'INV-1009', lines: invoiceLines, group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }] });
    await h.drain();
    expect(refusals()).toBe(2);
    expect(h.app.invoices.size).toBe(1);
    await expectLinesLinked(h);
  });

  it('import: the job deferred for the failed link-back carries the line ids', async () => {
    const { h, refusals } = await withItem();
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.failures).toEqual([expect.objectContaining({ entity: 'invoices', direction: 'outbound', connecId: 'i1', code: 'link_failed' })]);
    await h.drain();
    expect(refusals()).toBe(2);
    await expectLinesLinked(h);
  });
});

describe('on-demand fetch of a referenced record (CONNECTORS §F5)', () => {
  const person = (fields: Record<string, unknown>) => ({ first_name: 'Jane', last_name: 'Doe', group_id: GROUP, updated_at: '2016-10-04T00:36:23Z', ...fields });

  /**
   * A clock running in real time from the start of a fetch window (a fixed instant, not the wall
   * clock's), so that a test's fetches fall in one window whatever the time of day;
   * `nextWindow()` moves it a window on.
   */
  function windowClock() {
    const t0 = Date.now();
    let offset = 0;
    return {
      clock: () => new Date(Date.parse('2030-01-01T00:00:00Z') + offset + (Date.now() - t0)),
      nextWindow: () => {
        offset += FETCH_AGAIN_AFTER_MS;
      },
    };
  }

  /** Memory storage that checks no fetch job of a record is created while another one of it is pending or running. */
  function fetchWatchingStorage(clock: () => Date) {
    const base = memoryAdapter({ clock });
    const created = new Map<string, string[]>();
    const violations: string[] = [];
    const storage: StorageAdapter = {
      ...base,
      jobs: {
        ...base.jobs,
        enqueueMany: async (jobs: JobInput[]) => {
          const fetchOf = (job: JobInput) => {
            const p = job.payload as { fetchId?: unknown };
            return typeof p?.fetchId === 'string' ? p.fetchId : null;
          };
          const live = new Map<string, boolean>();
          for (const job of jobs) {
            const id = fetchOf(job);
            if (id === null) continue;
            const earlier = await Promise.all((created.get(id) ?? []).map((jobId) => base.jobs.get(jobId)));
            live.set(id, earlier.some((j) => j?.status === 'pending' || j?.status === 'running'));
          }
          const results = await base.jobs.enqueueMany(jobs);
          jobs.forEach((job, k) => {
            const id = fetchOf(job);
            const result = results[k];
            if (id === null || !result?.created) return;
            if (live.get(id)) violations.push(id);
            created.set(id, [...(created.get(id) ?? []), result.id]);
          });
          return results;
        },
      },
    };
    return { storage, created, violations };
  }

  it('a reference whose first fetch died during an outage is fetched again for a later record once Connec! is back', async () => {
    // The parked records ask for o77 again while its fetch still retries: a window boundary
    // passing then (on the wall clock) queued a second fetch of o77 beside the live one.
    const { clock, nextWindow } = windowClock();
    const watch = fetchWatchingStorage(clock);
    const h = await createHarness({ storage: watch.storage, clock });
    await provisionGroup(h.storage);
    const realFetch = h.connec.fetch.bind(h.connec);
    let down = true;
    h.connec.fetch = async (groupId, collection, id) => {
      if (down) {
        h.connec.fetchCalls.push({ collection, id });
        throw new ServerError('Connec! unavailable', { service: 'connec', status: 503, method: 'GET', url: `/${groupId}/${collection}/${id}` });
      }
      return realFetch(groupId, collection, id);
    };
    // During an outage: two people reference o77, whose fetch fails every attempt.
    await h.notify({ people: [person({ id: [C('p1')], organization_id: [C('o77')] }), person({ id: [C('p0')], last_name: 'Poe', organization_id: [C('o77')] })] });
    await h.drain();
    expect(h.app.contacts.size).toBe(0);
    expect(h.connec.fetchCalls.filter((c) => c.id === 'o77').length).toBeGreaterThan(0);
    expect((await h.sync.api.deadLetters()).map((d) => d.connecId).sort()).toEqual(expect.arrayContaining(['o77', 'p0', 'p1']));

    // Connec! is back and holds o77; another person referencing it arrives, a minute later.
    down = false;
    nextWindow();
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o77');
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Roe' }, 'p2'); // so that its link-back lands
    const before = h.connec.fetchCalls.length;
    await h.notify({ people: [person({ id: [C('p2')], last_name: 'Roe', organization_id: [C('o77')] })] });
    await h.drain();
    expect(h.connec.fetchCalls.slice(before)).toEqual([{ collection: 'organizations', id: 'o77' }]);
    const org = (await h.storage.idMaps.find(scope('companies'), { connecId: 'o77' }))?.localId;
    expect(org).toBeTruthy();
    expect(h.app.companies.get(org ?? '')?.name).toBe('Acme');
    const roe = [...h.app.contacts.values()].find((c) => c.lastName === 'Roe');
    expect(roe?.companyId).toBe(org);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0 });
    // Never two fetches of o77 queued at once.
    expect(watch.violations).toEqual([]);
    expect(watch.created.get('o77')?.length).toBeGreaterThan(1);
  });

  it('a reference Connec! does not return yet is fetched once per minute whatever the parked retries, in one storage call each, and again once it exists', async () => {
    // The parked retries below take up to a second: a window boundary passing among them (on
    // the wall clock) fetched o77 a second time.
    const { clock, nextWindow } = windowClock();
    const base = memoryAdapter({ clock });
    const calls = { enqueueMany: 0, get: 0 };
    const storage: StorageAdapter = {
      ...base,
      jobs: {
        ...base.jobs,
        enqueueMany: async (jobs: JobInput[]) => {
          calls.enqueueMany++;
          return base.jobs.enqueueMany(jobs);
        },
        get: async (id: string) => {
          calls.get++;
          return base.jobs.get(id);
        },
      },
    };
    const h = await createHarness({ storage, clock });
    await provisionGroup(h.storage);
    // o77 is not visible in Connec! yet: six people referencing it park, retry and die.
    for (let n = 0; n < 6; n++) {
      await h.notify({ people: [person({ id: [C(`p${n}`)], last_name: `L${n}`, organization_id: [C('o77')] })] });
      await h.drain();
    }
    // Every parked retry asked for o77, and it was fetched once in this minute.
    expect(h.connec.fetchCalls.filter((c) => c.id === 'o77')).toHaveLength(1);
    expect(calls.get).toBe(0);

    // It shows up a minute later; another person references it.
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o77');
    nextWindow();
    await h.notify({ people: [person({ id: [C('pZ')], last_name: 'Zed', organization_id: [C('o77')] })] });
    await h.drain();
    expect(h.connec.fetchCalls.filter((c) => c.id === 'o77')).toHaveLength(2);
    const org = (await h.storage.idMaps.find(scope('companies'), { connecId: 'o77' }))?.localId;
    expect(org).toBeTruthy();
    expect([...h.app.contacts.values()].find((c) => c.lastName === 'Zed')?.companyId).toBe(org);
  });
});
