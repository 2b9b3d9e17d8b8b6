/**
 * Which pushes send a record whose content is what both sides last agreed on (only one after a
 * failed push of it, not one after a failed inbound attempt), a record given twice to one
 * `pushMany`, and the order in which a connector's entities are pushed (`pushOrder`).
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Person {
  id: string;
  first: string;
  title: string;
  /** Makes `toConnec` throw (a mapper bug). */
  bad?: boolean;
}

const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };

async function setup() {
  const connec = new FakeConnec(ORG_UID);
  // Jobs come due by the storage's clock, which the test moves on when it wants a retry; the
  // SDK keeps the real one.
  let skewMs = 0;
  const storage = memoryAdapter({ clock: () => new Date(Date.now() + skewMs) });
  const runtime = testRuntime(storage);
  const people = new Map<string, Person>();
  const failUpdates = { count: 0, code: undefined as string | undefined };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    toLocal: (p: Record<string, unknown>) => ({ id: '', first: String(p.first_name ?? ''), title: String(p.job_title ?? '') }),
    toConnec: (c: Person) => {
      if (c.bad) throw new Error('mapper bug');
      return { first_name: c.first, job_title: c.title };
    },
    localId: (c: Person) => c.id,
    local: {
      create: async () => ({ id: 'unused' }),
      update: async (id: string, data: Person) => {
        if (failUpdates.count > 0) {
          failUpdates.count--;
          throw Object.assign(new Error('app database briefly unavailable'), failUpdates.code ? { code: failUpdates.code } : {});
        }
        const row = people.get(id);
        if (row) people.set(id, { ...row, ...data, id });
        return undefined;
      },
    },
  });
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec, maxAttempts: 3 } });
  await provisionGroup(storage);
  // A failed attempt is retried a minute later by the storage's clock, not within the same
  // drain: any real backoff short enough to wait for (2 ms, then 300 ms) can lapse inside that
  // drain on a loaded machine (the process descheduled after the failure was recorded), which
  // then retries it before the test could look at the failure. `later()` makes the retry due.
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage, { baseMs: 60_000, maxMs: 60_000 });
  const later = () => {
    skewMs += 60_000;
  };
  const notify = notifier(sync);
  const push = (record: Person) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record });
  // Ada is pushed and agreed on by both sides.
  const ada: Person = { id: 'per-1', first: 'Ada', title: 'Engineer' };
  people.set(ada.id, ada);
  const first = await push(ada);
  expect(first.status).toBe('pushed');
  return { connec, storage, sync, drain, later, notify, push, people, failUpdates, ada, connecId: String(first.connecId) };
}

describe('an unchanged record (the content both sides last agreed on)', () => {
  it('is sent again after a failed push of the record (Connec! may hold something else)', async () => {
    const h = await setup();
    // An edit whose push Connec! answers 503 (it may have applied it); the app then reverts it.
    h.connec.rejectOp = () => ({ status: 503, error: 'try later' });
    expect(await h.push({ ...h.ada, title: 'CTO' })).toMatchObject({ status: 'failed', code: 'http_503' });
    h.connec.rejectOp = null;
    expect((await h.storage.idMaps.find(ids, { localId: 'per-1' }))?.lastError).toMatchObject({ code: 'http_503' });
    const batches = h.connec.batches.length;
    expect(await h.push(h.ada)).toMatchObject({ status: 'pushed' });
    expect(h.connec.batches.length).toBe(batches + 1);
    expect(await h.storage.idMaps.find(ids, { localId: 'per-1' })).toMatchObject({ lastError: null });
    // Agreed again: the next push of the same content sends nothing.
    expect(await h.push(h.ada)).toMatchObject({ status: 'unchanged' });
    expect(h.connec.batches.length).toBe(batches + 1);
  });

  it('is sent again after a push of the record failed in its mapper', async () => {
    const h = await setup();
    expect(await h.push({ ...h.ada, bad: true })).toMatchObject({ status: 'failed', code: 'mapper_error' });
    const batches = h.connec.batches.length;
    expect(await h.push(h.ada)).toMatchObject({ status: 'pushed' });
    expect(h.connec.batches.length).toBe(batches + 1);
  });

  it.each([
    ['an error without a code (its name is recorded)', undefined],
    ['an error with a code of its own', 'ECONNRESET'],
  ])('is not sent after an inbound version failed to apply: %s', async (_, code) => {
    const h = await setup();
    // Another app changes the job title in Connec!; writing it in the app fails once.
    const edited = h.connec.edit(GROUP, 'people', h.connecId, { job_title: 'CTO' });
    h.failUpdates.count = 1;
    if (code) h.failUpdates.code = code;
    await h.notify({ people: [edited] });
    await h.drain(1);
    const failed = await h.storage.idMaps.find(ids, { localId: 'per-1' });
    expect(failed?.lastError).toMatchObject({ code: code ?? 'Error', message: 'app database briefly unavailable' });

    const batches = h.connec.batches.length;
    expect(await h.push(h.ada)).toMatchObject({ status: 'unchanged' });
    expect(h.connec.batches.length).toBe(batches);
    expect(h.connec.find(GROUP, 'people', h.connecId)).toMatchObject({ job_title: 'CTO' });
    expect(await h.storage.idMaps.find(ids, { localId: 'per-1' })).toMatchObject({ lastPushedHash: failed?.lastPushedHash, lastError: failed?.lastError });

    // The retry, once due, writes the other app's edit in the app.
    h.later();
    await h.drain(3);
    expect(h.people.get('per-1')?.title).toBe('CTO');
    expect((await h.storage.idMaps.find(ids, { localId: 'per-1' }))?.lastError).toBeNull();
  });
});

describe('a record given twice to one pushMany', () => {
  it('is not taken as overtaken by its own copy: both sides agree on it afterwards', async () => {
    const h = await setup();
    const cto = { ...h.ada, title: 'CTO' };
    const results = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [cto, cto] });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'pushed']);
    expect((await h.storage.idMaps.find(ids, { localId: 'per-1' }))?.lastPushedHash).toEqual(expect.any(String));
    expect(await h.push(cto)).toMatchObject({ status: 'unchanged' });
  });
});

describe('pushOrder', () => {
  const entity = (name: string, connec: string, direction: 'inbound' | 'outbound' | 'both', references: Record<string, string> = {}) =>
    defineEntity({
      name,
      connec,
      direction,
      references,
      ...(direction === 'outbound' ? {} : { toLocal: () => ({ id: '' }), local: { create: async () => ({ id: 'x' }), update: async () => undefined } }),
      ...(direction === 'inbound' ? {} : { toConnec: (r: { id: string }) => ({ name: r.id }), localId: (r: { id: string }) => r.id }),
    } as Parameters<typeof defineEntity>[0]);

  it('lists outbound entities with the ones they reference first, whatever the declaration order', () => {
    const contacts = entity('contacts', 'people', 'both', { organization_id: 'companies' });
    const companies = entity('companies', 'organizations', 'both');
    const items = entity('items', 'items', 'inbound');
    const invoices = entity('invoices', 'invoices', 'outbound', { organization_id: 'companies', person_id: 'contacts' });
    const connector = defineConnector({ entities: [invoices, contacts, items, companies] });
    expect(connector.pushOrder?.map((e) => e.name)).toEqual(['companies', 'contacts', 'invoices']);
    expect(connector.importOrder.map((e) => e.name)).toEqual(['companies', 'contacts', 'items']);
  });

  it('keeps every outbound entity of a reference cycle, in the order the import uses', () => {
    const contacts = entity('contacts', 'people', 'both', { organization_id: 'companies' });
    const companies = entity('companies', 'organizations', 'both', { contact_id: 'contacts' });
    const connector = defineConnector({ entities: [contacts, companies] });
    expect(connector.pushOrder?.map((e) => e.name)).toEqual(connector.importOrder.map((e) => e.name));
    expect(connector.pushOrder).toHaveLength(2);
  });
});
