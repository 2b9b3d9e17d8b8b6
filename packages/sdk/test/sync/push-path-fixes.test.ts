/**
 * Regressions of the push-path audit: `toConnecOnCreate` and echo suppression, nested
 * `subRecords` paths in the link-back, and `pushMany` reporting per-record and per-chunk
 * failures instead of throwing.
 */
import { AuthenticationError, createSyncModule, defineConnector, defineEntity, ImportFailedError, memoryAdapter, ServerError, type SyncEvent } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, GROUP, drainer, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

type AnyEntityDefinition = ReturnType<typeof defineEntity>;

async function setup(entities: AnyEntityDefinition[], sync: { batchSize?: number } = {}, settings: object = {}) {
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter();
  const runtime = testRuntime(storage);
  const events: SyncEvent[] = [];
  const module = createSyncModule(runtime, {
    connector: defineConnector({ entities }),
    sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 3, onEvent: (e: SyncEvent) => events.push(e), ...sync },
  });
  await provisionGroup(storage, GROUP, settings);
  const drain = drainer(createWorker(runtime, module.jobs ?? {}), storage);
  const notify = notifier(module);
  return { connec, storage, sync: module, drain, notify, events };
}

const ids = (entity: string) => ({ tenant: TENANT, groupId: GROUP, entity });

interface Person {
  id: string;
  first: string;
  last?: string;
  bad?: boolean;
}

describe('toConnecOnCreate and echo suppression', () => {
  it('the echo of a first push made with toConnecOnCreate is skipped, and re-pushing the unchanged record sends nothing', async () => {
    let localUpdates = 0;
    const person: Person = { id: 'per-1', first: 'Jane', last: 'Doe' };
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: (p: Record<string, unknown>) => ({ id: 'per-1', first: String(p.first_name), last: String(p.last_name) }),
      toConnec: (c: Person) => ({ first_name: c.first, last_name: c.last }),
      toConnecOnCreate: (c: Person) => ({ first_name: c.first, last_name: c.last, is_customer: true }),
      localId: (c: Person) => c.id,
      local: {
        create: async () => ({ id: 'x' }),
        update: async () => {
          localUpdates++;
          return undefined;
        },
      },
    });
    const h = await setup([contacts]);
    const first = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: person });
    expect(first.status).toBe('pushed');
    const [created] = h.connec.all(GROUP, 'people');
    expect(created).toMatchObject({ first_name: 'Jane', is_customer: true });

    await h.notify({ people: [created] });
    await h.drain();
    expect(h.sync.api.counters().skippedEcho).toBe(1);
    expect(localUpdates).toBe(0);

    const again = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: person });
    expect(again.status).toBe('unchanged');
    expect(h.connec.batches.length).toBe(1);
  });
});

describe('nested subRecords paths', () => {
  it('links the sub-record ids of `details/lines` back into Connec! (siblings kept) and maps them inbound on update', async () => {
    const seen: unknown[] = [];
    const invoices = defineEntity({
      name: 'invoices',
      connec: 'invoices',
      direction: 'inbound',
      subRecords: ['details/lines'],
      toLocal: (r: Record<string, unknown>) => {
        const details = r.details as { lines: { id: unknown }[] };
        seen.push(details.lines.map((l) => l.id));
        return r;
      },
      local: {
        create: async () => ({ id: 'inv-1', subIds: { 'details/lines': ['ln-a', 'ln-b'] } }),
        update: async () => undefined,
      },
    });
    const h = await setup([invoices]);
    const lines = [
      { id: [C('l1')], quantity: 1 },
      { id: [C('l2')], quantity: 2 },
    ];
    const record = h.connec.seed(GROUP, 'invoices', { details: { memo: 'keep me', lines } }, 'i1');
    await h.notify({ invoices: [record] });
    await h.drain();

    const stored = h.connec.find(GROUP, 'invoices', 'i1') as { details: { memo: string; lines: { id: { id: string }[] }[] } };
    expect(stored.details.memo).toBe('keep me');
    expect(stored.details.lines.map((l) => l.id.map((e) => e.id))).toEqual([
      ['l1', 'ln-a'],
      ['l2', 'ln-b'],
    ]);

    const edited = h.connec.edit(GROUP, 'invoices', 'i1', { transaction_number: 'INV-2' });
    await h.notify({ invoices: [edited] });
    await h.drain();
    expect(seen).toEqual([
      [null, null],
      ['ln-a', 'ln-b'],
    ]);
  });
});

describe('pushMany partial failures', () => {
  const toConnec = (c: Person) => {
    if (c.bad) throw new Error('mapper bug');
    return { first_name: c.first };
  };
  const contacts = defineEntity({ name: 'contacts', connec: 'people', direction: 'outbound', toConnec, localId: (c: Person) => c.id });
  const people = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `per-${i + 1}`, first: `P${i + 1}` }));

  it('a throwing mapper fails its record only (mapper_error, recorded); the others are pushed', async () => {
    const h = await setup([contacts]);
    const records: Person[] = [{ id: 'per-1', first: 'A' }, { id: 'per-2', first: 'B', bad: true }, { id: 'per-3', first: 'C' }];
    const results = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed', 'pushed']);
    expect(results[1]).toMatchObject({ localId: 'per-2', code: 'mapper_error', httpStatus: null, error: expect.stringContaining('mapper bug') });
    expect(h.connec.batches.length).toBe(1);
    expect((await h.storage.idMaps.find(ids('contacts'), { localId: 'per-2' }))?.lastError).toMatchObject({ code: 'mapper_error' });
    expect(h.sync.api.counters()).toMatchObject({ pushed: 2, pushFailed: 1 });
  });

  it.each([
    ['a 503 after retries', new ServerError('Connec! unavailable', { service: 'connec', status: 503, method: 'POST', url: '/batch' }), 503, 'http_503'],
    ['a network error', new Error('socket hang up'), null, 'push_failed'],
  ])('a batch call failing with %s fails that chunk only; earlier chunks stay pushed and every record gets a result', async (_name, error, status, code) => {
    const h = await setup([contacts], { batchSize: 2 });
    const batch = h.connec.batch.bind(h.connec);
    let calls = 0;
    h.connec.batch = async (ops) => {
      if (++calls === 2) throw error;
      return batch(ops);
    };
    const records = people(4);
    const results = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'pushed', 'failed', 'failed']);
    expect(results[2]).toMatchObject({ localId: 'per-3', httpStatus: status, code, error: (error as Error).message });
    for (const r of records.slice(0, 2)) expect((await h.storage.idMaps.find(ids('contacts'), { localId: r.id }))?.connecId).not.toBeNull();
    for (const r of records.slice(2)) expect((await h.storage.idMaps.find(ids('contacts'), { localId: r.id }))?.lastError).toMatchObject({ code });
    expect(h.sync.api.counters()).toMatchObject({ pushed: 2, pushFailed: 2 });
    expect(h.events.flatMap((e) => (e.type === 'record.pushed' ? [`${e.localId}:${e.ok}`] : []))).toEqual(['per-1:true', 'per-2:true', 'per-3:false', 'per-4:false']);

    // a retry pushes only the failed ones
    h.connec.batch = batch;
    const retry = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records });
    expect(retry.map((r) => r.status)).toEqual(['unchanged', 'unchanged', 'pushed', 'pushed']);
  });

  it('in the import, a batch call throwing a 503 or a 401 (a rotated api.key) still stops the import before the inbound half; a mapper error does not', async () => {
    const listed = (records: Person[]) =>
      defineEntity({
        name: 'contacts',
        connec: 'people',
        direction: 'outbound',
        toConnec,
        localId: (c: Person) => c.id,
        local: {
          list: async function* () {
            yield records;
          },
        },
      });
    const down = await setup([listed(people(2))]);
    down.connec.batch = async () => {
      throw new ServerError('Connec! unavailable', { service: 'connec', status: 503, method: 'POST', url: '/batch' });
    };
    const error = await down.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportFailedError);
    expect((error as ImportFailedError).report.failures).toEqual([
      expect.objectContaining({ localId: 'per-1', code: 'http_503' }),
      expect.objectContaining({ localId: 'per-2', code: 'http_503' }),
    ]);

    // An api.key rotated on Maestrano's side before the tenant list caught up: every call of the
    // run is refused with a 401. That is the credentials', not the records': the import is
    // retried (with the refreshed key) and pushes them, instead of completing without them.
    const rotated = await setup([listed(people(2))]);
    const batch = rotated.connec.batch.bind(rotated.connec);
    rotated.connec.batch = async () => {
      throw new AuthenticationError('Invalid API credentials', { service: 'connec', status: 401, method: 'POST', url: '/batch' });
    };
    const refused = await rotated.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ImportFailedError);
    expect((refused as ImportFailedError).report.failures).toEqual([
      expect.objectContaining({ localId: 'per-1', code: 'http_401' }),
      expect.objectContaining({ localId: 'per-2', code: 'http_401' }),
    ]);
    rotated.connec.batch = batch;
    const retried = await rotated.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(retried.status).toBe('complete');
    expect(retried.entities.contacts).toMatchObject({ pushed: 2, failed: 0 });
    expect(rotated.connec.all(GROUP, 'people')).toHaveLength(2);

    const buggy = await setup([listed([{ id: 'per-1', first: 'A', bad: true }, ...people(3).slice(1)])]);
    const report = await buggy.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(report.failures).toEqual([expect.objectContaining({ localId: 'per-1', code: 'mapper_error' })]);
    expect(report.entities.contacts).toMatchObject({ pushed: 2, failed: 1 });
  });
});

describe('pushMany: a record the outbound functions cannot handle fails alone', () => {
  interface Row {
    id: string;
    first: string;
    hidden?: boolean;
  }
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    toConnec: (c: Row) => ({ first_name: c.first }),
    localId: (c: Row) => c.id,
    shouldPush: (c: Row) => {
      if (c.first === 'boom') throw new Error('cannot decide');
      return !c.hidden;
    },
  });
  const where = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
  // What a JavaScript caller, or an `any`, can hand over.
  const bad = [{ first: 'no id' }, { id: '', first: 'empty id' }, { id: 42, first: 'number id' }, null] as unknown as Row[];
  const failure = (localId: string, error: string) => ({ localId, status: 'failed', connecId: null, httpStatus: null, code: 'mapper_error', error });
  const badResults = [
    failure('', 'localId of entity "contacts" must return a non-empty string, not undefined'),
    failure('', 'localId of entity "contacts" must return a non-empty string, not ""'),
    failure('42', 'localId of entity "contacts" must return a non-empty string, not 42'),
    failure('', expect.stringMatching(/^localId of entity "contacts" threw \(it must return a non-empty string\): .*null/)),
  ];

  it('a record whose localId is missing, empty, not a string or throws reports mapper_error; the good ones are pushed and nothing is stored for the bad ones', async () => {
    const h = await setup([contacts]);
    const results = await h.sync.api.pushMany({ ...where, records: [{ id: 'per-1', first: 'A' }, ...bad, { id: 'per-2', first: 'B' }] });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed', 'failed', 'failed', 'failed', 'pushed']);
    expect(results.slice(1, 5)).toEqual(badResults);
    expect(h.connec.batches).toHaveLength(1);
    expect(h.connec.batches[0]?.map((op) => op.record.first_name)).toEqual(['A', 'B']);
    expect(h.connec.all(GROUP, 'people').map((p) => p.first_name)).toEqual(['A', 'B']);
    expect((await h.storage.idMaps.list(ids('contacts'), { limit: 100 })).map((m) => m.localId).sort()).toEqual(['per-1', 'per-2']);
    expect(h.sync.api.counters()).toMatchObject({ pushed: 2, pushFailed: 4 });
  });

  it('push of one such record resolves to the same failure instead of throwing a StorageError', async () => {
    const h = await setup([contacts]);
    for (const [i, record] of bad.entries()) expect(await h.sync.api.push({ ...where, record })).toEqual(badResults[i]);
    expect(h.connec.batches).toHaveLength(0);
  });

  it('a throwing shouldPush fails its record only (mapper_error, recorded); the others are pushed or opted out', async () => {
    const h = await setup([contacts]);
    const results = await h.sync.api.pushMany({
      ...where,
      records: [
        { id: 'per-1', first: 'A' },
        { id: 'per-2', first: 'boom' },
        { id: 'per-3', first: 'C', hidden: true },
        { id: 'per-4', first: 'D' },
      ],
    });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed', 'skipped', 'pushed']);
    expect(results[1]).toEqual(failure('per-2', 'shouldPush of entity "contacts" threw for "per-2": cannot decide'));
    expect((await h.storage.idMaps.find(ids('contacts'), { localId: 'per-2' }))?.lastError).toMatchObject({ code: 'mapper_error' });
    expect(h.connec.all(GROUP, 'people').map((p) => p.first_name)).toEqual(['A', 'D']);
  });

  it('with outbound sync disabled for the group, good records are skipped and bad ones still report mapper_error', async () => {
    const h = await setup([contacts], {}, { sync: { entities: { contacts: { outbound: false } } } });
    const results = await h.sync.api.pushMany({ ...where, records: [{ id: 'per-1', first: 'A' }, ...bad] });
    expect(results[0]).toEqual({ localId: 'per-1', status: 'skipped', connecId: null, httpStatus: null, error: 'outbound sync disabled for this group' });
    expect(results.slice(1)).toEqual(badResults);
    expect(h.connec.batches).toHaveLength(0);
  });
});

describe('an async toLocal (JavaScript, or cast past the types)', () => {
  it('fails its record with a clear message; local.create never receives a Promise', async () => {
    const received: unknown[] = [];
    const definition: Record<string, unknown> = {
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: async (p: Record<string, unknown>) => ({ first: p.first_name }),
      local: {
        create: async (data: unknown) => {
          received.push(data);
          return { id: 'app-1' };
        },
        update: async () => undefined,
      },
    };
    const contacts = (defineEntity as unknown as (d: Record<string, unknown>) => AnyEntityDefinition)(definition);
    const h = await setup([contacts]);
    h.connec.seed(GROUP, 'people', { first_name: 'Ann' }, 'p1');
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(received).toEqual([]);
    expect(report.failures).toEqual([
      expect.objectContaining({
        entity: 'contacts',
        connecId: 'p1',
        message: 'toLocal of entity "contacts" returned a Promise: mappers must be synchronous and pure; do async work in local.create/update',
      }),
    ]);
  });
});

describe('typed push', () => {
  it('push and pushMany take the entity object, which types the record; a look-alike object is refused', async () => {
    const definition = {
      name: 'contacts',
      connec: 'people',
      direction: 'outbound',
      toConnec: (c: Person) => ({ first_name: c.first, last_name: c.last ?? null }),
      localId: (c: Person) => c.id,
    } as const;
    const contacts = defineEntity(definition);
    const s = await setup([contacts]);
    const where = { tenant: TENANT, groupId: GROUP };
    expect(await s.sync.api.push({ ...where, entity: contacts, record: { id: 'per-1', first: 'Ada' } })).toMatchObject({ localId: 'per-1', status: 'pushed' });
    expect(await s.sync.api.pushMany({ ...where, entity: contacts, records: [{ id: 'per-2', first: 'Bo', last: 'Li' }] })).toMatchObject([{ localId: 'per-2', status: 'pushed' }]);
    // By name, as before: any record.
    expect(await s.sync.api.push({ ...where, entity: 'contacts', record: { id: 'per-3', first: 'Cy' } })).toMatchObject({ status: 'pushed' });
    expect(s.connec.all(GROUP, 'people').map((p) => p.first_name).sort()).toEqual(['Ada', 'Bo', 'Cy']);

    const typeChecksOnly = () => [
      // @ts-expect-error the record must be the entity's local type (Person)
      s.sync.api.push({ ...where, entity: contacts, record: { id: 'x', frist: 'typo' } }),
      // @ts-expect-error every record of the batch too
      s.sync.api.pushMany({ ...where, entity: contacts, records: [{ id: 'x', first: 'A' }, { id: 2 }] }),
    ];
    expect(typeof typeChecksOnly).toBe('function');

    const lookalike = defineEntity(definition);
    await expect(s.sync.api.push({ ...where, entity: lookalike, record: { id: 'per-4', first: 'Di' } })).rejects.toThrow(
      'Entity "contacts" is not the one this connector was defined with',
    );
    expect(s.connec.all(GROUP, 'people')).toHaveLength(3);
  });
});


describe('a late notification older than our push', () => {
  it('is skipped as stale: the version we pushed is not reverted by one Connec! had before it', async () => {
    interface Contact {
      id: string;
      first: string;
      last: string;
      title: string;
    }
    const store = new Map<string, Contact>();
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: (p: Record<string, unknown>): Contact => ({ id: '', first: String(p.first_name ?? ''), last: String(p.last_name ?? ''), title: String(p.job_title ?? '') }),
      toConnec: (c: Contact) => ({ first_name: c.first, last_name: c.last, job_title: c.title }),
      localId: (c: Contact) => c.id,
      local: {
        create: async (d) => {
          const id = `ct-${store.size + 1}`;
          store.set(id, { ...d, id });
          return { id };
        },
        update: async (id, d) => {
          store.set(id, { ...d, id });
        },
      },
    });
    const h = await setup([contacts]);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee', job_title: 'Dev' }, 'p1');
    await h.notify({ people: [seeded] });
    await h.drain();
    const local = store.get('ct-1');
    expect(local).toEqual({ id: 'ct-1', first: 'Ann', last: 'Lee', title: 'Dev' });

    // Another app edits the record; its notification is still on its way ...
    const late = h.connec.edit(GROUP, 'people', 'p1', { job_title: 'CTO' });
    // ... while the user edits it in the app, which pushes it: Connec! now holds the push.
    const edited = { id: 'ct-1', first: 'Ann', last: 'Lee-Smith', title: 'VP' };
    store.set('ct-1', edited);
    expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: edited })).toMatchObject({ status: 'pushed' });
    expect(h.connec.find(GROUP, 'people', 'p1')).toMatchObject({ last_name: 'Lee-Smith', job_title: 'VP' });

    await h.notify({ people: [late] });
    await h.drain();
    expect(store.get('ct-1')).toEqual(edited);
    expect(h.sync.api.counters()).toMatchObject({ skippedStale: 1, updated: 0 });

    // The echo of the push is still told apart (no extra fetch), and a real later edit applies.
    const current = h.connec.find(GROUP, 'people', 'p1');
    await h.notify({ people: [current] });
    await h.drain();
    expect(h.sync.api.counters()).toMatchObject({ skippedEcho: 1 });
    const newer = h.connec.edit(GROUP, 'people', 'p1', { first_name: 'Anna' });
    await h.notify({ people: [newer] });
    await h.drain();
    expect(store.get('ct-1')).toEqual({ id: 'ct-1', first: 'Anna', last: 'Lee-Smith', title: 'VP' });
    expect(h.connec.fetchCalls).toEqual([]);

    // Connec! stamps to the second: another app's edit of the same second as the next push,
    // delivered after it, is the same instant as the push. Connec!'s current version decides.
    const sameSecond = h.connec.edit(GROUP, 'people', 'p1', { job_title: 'COO' });
    h.connec.setClock(new Date(Date.parse(String(sameSecond.updated_at)) - 1000).toISOString());
    const again = { id: 'ct-1', first: 'Anna', last: 'Lee-Smith', title: 'Founder' };
    store.set('ct-1', again);
    expect(await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: again })).toMatchObject({ status: 'pushed' });
    expect(h.connec.find(GROUP, 'people', 'p1')?.updated_at).toBe(sameSecond.updated_at);
    await h.notify({ people: [sameSecond] });
    await h.drain();
    expect(store.get('ct-1')).toEqual(again);
    expect(h.connec.find(GROUP, 'people', 'p1')).toMatchObject({ job_title: 'Founder' });
  });
});
