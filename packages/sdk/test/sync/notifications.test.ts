import { createSyncModule, defineConnector, defineEntity, JobTypes, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { memoryState } from '../../src/storage/memory.js';
import { A, API_ID, API_KEY, C, createHarness, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

const person = (over: Record<string, unknown> = {}) => ({
  id: [C('p9')],
  first_name: 'Jane',
  last_name: 'Doe',
  organization_id: [C('o1'), A('org-17')],
  email: { address: 'jane@x.io' },
  phone_work: { landline: '+61 2 1234' },
  address_work: { billing: { line1: '1 George St', city: 'Sydney', country: 'AU' }, billing2: {}, shipping: {} },
  group_id: GROUP,
  channel_id: ORG_UID,
  resource_type: 'people',
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
  ...over,
});

describe('notifications: intake route', () => {
  it('stores every record as a job before answering 2xx, and dedupes exact replays', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const res = await h.notify({ people: [person()] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 1, stored: 1, duplicates: 0 });
    const counts = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
    expect(counts.pending).toBe(1);
    const again = await h.notify({ people: [person()] });
    expect(await again.json()).toMatchObject({ stored: 0, duplicates: 1 });
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(1);
  });

  it('accepts a record whose timestamps carry a basic offset (+0000) and applies it', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const res = await h.notify({ people: [person({ organization_id: null, updated_at: '2016-10-04T00:36:23+0000', created_at: '2016-10-04T00:36:23+0000' })] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 1, stored: 1 });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Doe']);
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' });
    expect(map?.lastAppliedAt?.toISOString()).toBe('2016-10-04T00:36:23.000Z');
  });

  it('applies a record whose id arrays carry another app\'s numeric ids (a connector pushing its database ids)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const foreign = { id: 2, provider: 'basecrm', realm: 135906741 };
    const res = await h.notify({ people: [person({ id: [C('p9'), foreign], organization_id: null })] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 1, stored: 1 });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Doe']);
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' });
    expect(map?.localId).toBe([...h.app.contacts.keys()][0]);
  });

  it('counts records, not jobs, when two filtered entities share a collection', async () => {
    const storage = memoryAdapter();
    const local = { create: async () => ({ id: 'x' }), update: async () => undefined };
    const leads = defineEntity({ name: 'leads', connec: 'people', direction: 'inbound', filter: (p) => p.is_lead === true, toLocal: (p) => ({ name: p.last_name }), local });
    const customers = defineEntity({ name: 'customers', connec: 'people', direction: 'inbound', filter: (p) => p.is_customer === true, toLocal: (p) => ({ name: p.last_name }), local });
    const sync = createSyncModule(testRuntime(storage), {
      connector: defineConnector({ entities: [leads, customers] }),
      sync: { connecPort: () => new FakeConnec(ORG_UID) },
    });
    await provisionGroup(storage);
    const notify = notifier(sync);
    const body = { people: [person({ is_lead: true }), person({ id: [C('p10')], is_customer: true })] };
    expect(await (await notify(body)).json()).toEqual({ received: 2, stored: 2, duplicates: 0, ignored: 0 });
    expect(sync.api.counters()).toMatchObject({ received: 2, accepted: 2, duplicates: 0 });
    // One job per entity and record: each entity's filter decides in the worker.
    expect((await storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(4);
    expect(await (await notify(body)).json()).toEqual({ received: 2, stored: 0, duplicates: 2, ignored: 0 });
    expect(sync.api.counters()).toMatchObject({ received: 4, accepted: 2, duplicates: 2 });
    expect((await storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(4);
  });

  it('answers 401 for wrong, missing or malformed credentials and stores nothing', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const route = h.sync.routes?.connecNotification;
    if (!route) throw new Error('no notification route');
    const body = JSON.stringify({ people: [person()] });
    const post = (authorization: string | null) =>
      route({
        request: new Request('http://127.0.0.1/maestrano/connec/notifications/default', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization === null ? {} : { authorization }) },
          body,
        }),
        tenant: testTenant(),
        params: {},
      });
    const stored = () => {
      const state = memoryState(h.storage);
      return { jobs: [...state.jobs.values()], idMaps: [...state.idMaps], cursors: [...state.cursors.values()], locks: [...state.locks.values()] };
    };
    const before = stored();
    expect(before.jobs).toEqual([]);
    const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
    const refused: [string, Promise<Response>][] = [
      ['wrong key', h.notify({ people: [person()] }, { id: API_ID, key: 'wrong' })],
      ['wrong id', h.notify({ people: [person()] }, { id: 'other-app', key: API_KEY })],
      ['no Authorization header', post(null)],
      ['empty header', post('')],
      ['Basic without credentials', post('Basic')],
      ['Bearer scheme', post(`Bearer ${API_KEY}`)],
      ['not base64', post('Basic %%%not-base64%%%')],
      ['no colon', post(basic(`${API_ID}${API_KEY}`))],
      ['extra part', post(`${basic(`${API_ID}:${API_KEY}`)} extra`)],
    ];
    for (const [what, pending] of refused) {
      const res = await pending;
      expect(res.status, what).toBe(401);
      await res.body?.cancel();
      expect(stored(), what).toEqual(before);
    }
    // The same body with the right credentials is stored (what the refusals above did not do).
    const accepted = await post(basic(`${API_ID}:${API_KEY}`));
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ stored: 1 });
    expect(stored().jobs).toHaveLength(1);
  });

  it('answers 400 for malformed bodies, naming the bad path, and stores nothing', async () => {
    const h = await createHarness();
    for (const body of ['not json', '[1,2]', JSON.stringify({ people: [{ id: [C('p1')], first_name: 'x' }] })]) {
      const res = await h.notify(body);
      expect(res.status).toBe(400);
      const payload = (await res.json()) as { error: string; message: string };
      expect(payload.error).toBe('invalid_notification');
    }
    const res = await h.notify({ people: [{ id: [C('p1')], first_name: 'x' }] });
    expect(((await res.json()) as { message: string }).message).toContain('group_id');
    expect((await h.storage.jobs.counts()).pending).toBe(0);
  });

  it('stores the records it syncs when a collection it does not sync is invalid; an invalid record it syncs is read again by id', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    // sales_orders has no entity here: its records are not validated (a schema change there
    // must not make Connec! drop the people records with a 4xx it never retries).
    const res = await h.notify({ people: [person()], sales_orders: [{ id: [C('so1')], group_id: GROUP, lines: [{ quantity: '2' }] }, 42] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: 3, stored: 1, duplicates: 0, ignored: 2 });
    const [job] = await h.storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 10_000, types: [JobTypes.connecRecord] });
    expect(job?.payload).toMatchObject({ entity: 'contacts', record: { first_name: 'Jane' } });
    const reread = await h.notify({ people: [person({ id: [C('p10')], first_name: 42 })], sales_orders: [] });
    expect(reread.status).toBe(200);
    expect(await reread.json()).toEqual({ received: 1, stored: 0, duplicates: 0, ignored: 0, invalid: 1, reread: 1, issues: [{ path: 'people/0/first_name', message: expect.any(String) }] });
    const [refetch] = await h.storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 10_000, types: [JobTypes.connecRecord] });
    // Connec!'s current version is fetched instead: the invalid copy is not stored.
    expect(refetch?.payload).toEqual({ entity: 'contacts', collection: 'people', fetchId: 'p10', refresh: true });
  });

  it('stores the valid records beside an invalid one, applies Connec!\'s current version of the invalid one, and refuses a body with nothing usable', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    // p2 is known and valid in Connec!; its notified copy has a number for a name.
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Two' }, 'p2');
    await h.notify({ people: [person({ id: [C('p2')], last_name: 'Two', organization_id: null })] });
    await h.drain();
    h.connec.setClock('2016-10-05T00:00:00Z');
    h.connec.edit(GROUP, 'people', 'p2', { last_name: 'Two-Current' });
    const res = await h.notify({ people: [person({ id: [C('p1')], last_name: 'One', organization_id: null }), person({ id: [C('p2')], last_name: 2 })] });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 2, stored: 1, invalid: 1, reread: 1, issues: [{ path: 'people/1/last_name' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.lastName).sort()).toEqual(['One', 'Two-Current']);

    // An invalid record without a group or id cannot be read again: alone, the body is refused.
    const refused = await h.notify({ people: [{ first_name: 'x', last_name: 3 }] });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { error: string; issues: { path: string }[] };
    expect(body.error).toBe('invalid_notification');
    expect(body.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['people/0/group_id', 'people/0/last_name']));
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(0);
  });

  it('answers 400 (not a 500 stack overflow) for a record nested thousands of levels deep whose ids cannot key storage either, and stores nothing', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const nested = (record: Record<string, unknown>) => `{"people":[${JSON.stringify(record).slice(0, -1)},"n":${'['.repeat(5000)}${']'.repeat(5000)}}]}`;
    const res = await h.notify(nested({ ...person(), group_id: 'g'.repeat(300) }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_notification', issues: [{ path: 'people/0', message: expect.stringContaining('nested deeper than 64') }] });
    expect((await h.storage.jobs.counts()).pending).toBe(0);
    // With usable ids, it is read again from Connec! by id instead (nothing of the body stored).
    const reread = await h.notify(nested(person({ id: [C('p-deep')] })));
    expect(reread.status).toBe(200);
    expect(await reread.json()).toMatchObject({ stored: 0, invalid: 1, reread: 1 });
    expect((await h.notify({ people: [person({ n: [[[[{ a: [1] }]]]] })] })).status).toBe(200);
    // Text PostgreSQL cannot store (NUL, unpaired surrogate) is refused too, not a 503 retried forever.
    for (const bad of ['a\u0000b', '\ud800']) {
      const refused = await h.notify({ people: [{ ...person({ first_name: bad }), id: 'x'.repeat(300) }] });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ error: 'invalid_notification', issues: [{ path: 'people/0', message: expect.stringContaining('NUL') }] });
    }
    expect((await h.storage.jobs.counts()).pending).toBe(2);
  });

  it('answers 400 for an id too long to key storage by (PostgreSQL refuses index rows over 2,704 bytes) when nothing else is in the body', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const long = 'x'.repeat(3000);
    const cases: [Record<string, unknown>, string][] = [
      [person({ id: [C(long)] }), 'people/0/id'],
      [{ ...person({ id: [C('p-long-group')] }), group_id: long }, 'people/0/group_id'],
    ];
    for (const [record, path] of cases) {
      const refused = await h.notify({ people: [record] });
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ error: 'invalid_notification', issues: [{ path, message: expect.stringContaining('longer than 255') }] });
    }
    expect((await h.storage.jobs.counts()).pending).toBe(0);
    // A reference too long: the record's own ids are fine, so it is read again by id.
    const reread = await h.notify({ people: [person({ id: [C('p-long-ref')], organization_id: [C(long)] })] });
    expect(await reread.json()).toMatchObject({ stored: 0, invalid: 1, reread: 1, issues: [{ path: 'people/0/organization_id' }] });
    expect((await h.storage.jobs.counts()).pending).toBe(1);
    // At the limit is fine.
    expect((await h.notify({ people: [person({ id: [C('y'.repeat(255))] })] })).status).toBe(200);
    expect((await h.storage.jobs.counts()).pending).toBe(2);
  });

  it('a record that cannot be stored (id too long, NUL, nested too deep) fails alone: the records beside it are stored (Connec! never sends a refused body again)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const long = 'x'.repeat(3000);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 80; i++) deep = [deep];
    const cases: [Record<string, unknown>, string, string][] = [
      [person({ id: [C(long)] }), 'people/1/id', 'longer than 255'],
      [person({ id: [C('p-long-ref')], organization_id: [C(long)] }), 'people/1/organization_id', 'longer than 255'],
      [{ ...person({ id: [C('p-long-group')] }), group_id: long }, 'people/1/group_id', 'longer than 255'],
      [person({ id: [C('p-nul')], first_name: 'a\u0000b' }), 'people/1', 'NUL'],
      [person({ id: [C('p-deep')], n: deep }), 'people/1', 'nested deeper'],
    ];
    for (const [n, [record, path, message]] of cases.entries()) {
      const res = await h.notify({ people: [person({ id: [C(`p-fine-${n}`)], last_name: `Fine ${n}` }), record] });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ received: 2, stored: 1, invalid: 1, issues: [{ path, message: expect.stringContaining(message) }] });
    }
    // Beside a record off its schema: each issue names the record's own position.
    const mixed = await h.notify({ people: [person({ id: [C('p-off-schema')], last_name: 42 }), person({ id: [C('p-nul-2')], first_name: 'a\u0000b' })] });
    expect(await mixed.json()).toMatchObject({ invalid: 2, issues: [{ path: 'people/0/last_name' }, { path: 'people/1' }] });
    const jobs = await h.storage.jobs.claim({ worker: 'test', limit: 50, leaseMs: 60_000, types: [JobTypes.connecRecord] });
    const stored = jobs.map((job) => (job.payload as { record?: { last_name?: string }; fetchId?: string })).map((p) => p.record?.last_name ?? `re-read ${p.fetchId}`);
    // Each valid record is stored; a bad one whose ids can key storage is read again from Connec! by id.
    expect(stored.sort()).toEqual(['Fine 0', 'Fine 1', 'Fine 2', 'Fine 3', 'Fine 4', 're-read p-deep', 're-read p-long-ref', 're-read p-nul', 're-read p-nul-2', 're-read p-off-schema']);
  });

  it('a record whose lock a killed worker still holds is retried past the lock TTL, not dead-lettered', async () => {
    // A worker SIGKILLed mid-write leaves the record lock until it expires (lockTtlMs); every
    // busy deferral is an attempt, so retrying every second dead-lettered the record first.
    const h = await createHarness({ sync: { lockTtlMs: 5_000, maxAttempts: 4 } });
    await provisionGroup(h.storage);
    h.app.companies.set('org-17', { id: 'org-17', name: 'Acme', code: null, updatedAt: new Date() });
    // Pushed by the app earlier: its map is what makes our id in `organization_id` trustworthy.
    await h.storage.idMaps.insert({ tenant: TENANT, groupId: GROUP, entity: 'companies', connecId: 'o1', localId: 'org-17' });
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p9');
    expect(await h.storage.locks.acquire(`sync.record:${TENANT}:${GROUP}:contacts:p9`, 'killed-worker', 5_000)).toBe(true);
    expect((await h.notify({ people: [person()] })).status).toBe(200);
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      await h.drain(1);
      const counts = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
      if (counts.pending === 0 && counts.running === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, dead: 0, done: 1 });
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Doe']);
  }, 30_000);

  it('answers 503 when storage is down (nothing acknowledged that was not stored)', async () => {
    const h = await createHarness();
    const original = h.storage.jobs.enqueueMany.bind(h.storage.jobs);
    h.storage.jobs.enqueueMany = async () => {
      throw new Error('database unreachable');
    };
    const res = await h.notify({ people: [person()] });
    expect(res.status).toBe(503);
    h.storage.jobs.enqueueMany = original;
    expect((await h.storage.jobs.counts()).pending).toBe(0);
  });
});

describe('notifications: processing (CONNECTORS §F 2-5)', () => {
  it('§F2 unknown record -> local create linked to the referenced org, id map, link-back put', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-17', { id: 'org-17', name: 'Acme', code: null, updatedAt: new Date() });
    // Pushed by the app earlier: its map is what makes our id in `organization_id` trustworthy.
    await h.storage.idMaps.insert({ tenant: TENANT, groupId: GROUP, entity: 'companies', connecId: 'o1', localId: 'org-17' });
    h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p9');
    await h.notify({ people: [person()] });
    await h.drain();
    expect(h.app.contacts.size).toBe(1);
    const [contact] = [...h.app.contacts.values()];
    expect(contact).toMatchObject({ firstName: 'Jane', lastName: 'Doe', email: 'jane@x.io', companyId: 'org-17' });
    const map = await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p9' });
    expect(map?.localId).toBe(contact?.id);
    const put = h.connec.batches.flat().find((op) => op.method === 'put' && op.id === 'p9');
    expect(put?.record.id).toEqual([C('p9'), A(contact?.id ?? '')]);
    expect(h.connec.find(GROUP, 'people', 'p9')?.id).toEqual([C('p9'), A(contact?.id ?? '')]);
  });

  it('§F3 known record -> update without link-back; replay and stale payloads change nothing', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.companies.set('org-17', { id: 'org-17', name: 'Acme', code: null, updatedAt: new Date() });
    // Pushed by the app earlier: its map is what makes our id in `organization_id` trustworthy.
    await h.storage.idMaps.insert({ tenant: TENANT, groupId: GROUP, entity: 'companies', connecId: 'o1', localId: 'org-17' });
    h.connec.seed(GROUP, 'people', { first_name: 'Jane' }, 'p9');
    await h.notify({ people: [person()] });
    await h.drain();
    const contactId = [...h.app.contacts.keys()][0] ?? '';
    const linkCalls = h.connec.batches.length;
    const newer = person({ id: [C('p9'), A(contactId)], first_name: 'Janet', updated_at: '2016-10-05T00:00:00Z' });
    await h.notify({ people: [newer] });
    await h.drain();
    expect(h.app.contacts.get(contactId)?.firstName).toBe('Janet');
    expect(h.app.writes).toEqual({ create: 1, update: 1 });
    expect(h.connec.batches.length).toBe(linkCalls);
    // the identical payload again, after its job was completed and purged
    await h.storage.jobs.purgeCompleted(new Date(Date.now() + 60_000));
    await h.notify({ people: [newer] });
    await h.drain();
    expect(h.app.writes.update).toBe(1);
    // an older payload with other content
    await h.notify({ people: [person({ id: [C('p9'), A(contactId)], first_name: 'Old', updated_at: '2016-10-04T12:00:00Z' })] });
    await h.drain();
    expect(h.app.contacts.get(contactId)?.firstName).toBe('Janet');
    expect(h.app.writes.update).toBe(1);
    const counters = h.sync.api.counters();
    expect(counters.skippedReplay).toBe(1);
    expect(counters.skippedStale).toBe(1);
    expect(counters.created).toBe(1);
    expect(counters.updated).toBe(1);
    const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { limit: 10 });
    expect(maps).toHaveLength(1);
  });

  it('§F4 multi-group, multi-entity body: routed per group, unknown group ignored, "Invoice" normalised, a mapper failure retried then dead-lettered without blocking others', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage, GROUP);
    await provisionGroup(h.storage, 'cld-7777');
    h.app.poisonLastName = 'Broken';
    h.connec.seed(GROUP, 'organizations', { name: 'Org One' }, 'o1');
    h.connec.seed('cld-7777', 'people', { last_name: 'Doe' }, 'p1');
    h.connec.seed(GROUP, 'people', { last_name: 'Broken' }, 'p2');
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1' }, 'i1');
    const body = {
      organizations: [{ id: [C('o1')], name: 'Org One', group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }],
      people: [
        person({ id: [C('p1')], organization_id: null, group_id: 'cld-7777' }),
        person({ id: [C('p2')], organization_id: null, last_name: 'Broken' }),
      ],
      items: [{ id: [C('it1')], name: 'Widget', group_id: 'cld-unknown', updated_at: '2016-10-04T00:00:00Z' }],
      Invoice: [{ id: [C('i1')], transaction_number: 'INV-1', group_id: GROUP, lines: [], updated_at: '2016-10-04T00:00:00Z' }],
    };
    const res = await h.notify(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: 5, stored: 5 });
    await h.drain();
    expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['Org One']);
    expect([...h.app.contacts.values()].map((c) => c.lastName)).toEqual(['Doe']);
    expect(h.app.items.size).toBe(0);
    expect([...h.app.invoices.values()].map((i) => i.number)).toEqual(['INV-1']);
    const mapP1 = await h.storage.idMaps.find({ tenant: TENANT, groupId: 'cld-7777', entity: 'contacts' }, { connecId: 'p1' });
    expect(mapP1?.localId).toBeTruthy();
    const dead = await h.sync.api.deadLetters({ tenant: TENANT });
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ entity: 'contacts', connecId: 'p2', attempts: 4, groupId: GROUP });
    expect(dead[0]?.error?.message).toContain('mapper bug');
    expect(h.sync.api.counters().deadLettered).toBe(1);
    // fixed code + requeue -> applied
    h.app.poisonLastName = null;
    expect(await h.sync.api.retryDeadLetter(dead[0]?.jobId ?? '')).toBe(true);
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => c.lastName).sort()).toEqual(['Broken', 'Doe']);
  });

  it('deadLetters lists the latest failures first, so a limit never hides the newest behind old ones', async () => {
    const h = await createHarness();
    const kill = async (connecId: string) => {
      const { id } = await h.storage.jobs.enqueue({
        type: JobTypes.connecRecord,
        tenant: TENANT,
        groupId: GROUP,
        payload: { entity: 'contacts', collection: 'people', record: person({ id: [C(connecId)] }) },
        maxAttempts: 1,
      });
      const [job] = await h.storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 10_000, types: [JobTypes.connecRecord] });
      expect(job?.id).toBe(id);
      await h.storage.jobs.fail(id, 'w', { error: { message: `failed ${connecId}` }, retryAt: new Date() });
      await new Promise((resolve) => setTimeout(resolve, 5));
    };
    for (const c of ['p-old', 'p-mid', 'p-new']) await kill(c);
    expect((await h.sync.api.deadLetters()).map((d) => d.connecId)).toEqual(['p-new', 'p-mid', 'p-old']);
    expect((await h.sync.api.deadLetters({ limit: 1 })).map((d) => d.connecId)).toEqual(['p-new']);
  });

  it('§F5 out-of-order reference: the person is parked, then applied when its organization arrives', async () => {
    const h = await createHarness({ sync: { fetchMissingReferences: false, parkRetryMs: 60_000 } });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p5');
    h.connec.seed(GROUP, 'organizations', { name: 'Late Org' }, 'o77');
    await h.notify({ people: [person({ id: [C('p5')], organization_id: [C('o77')] })] });
    await h.drain(3);
    expect(h.app.contacts.size).toBe(0);
    const parked = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
    expect(parked.pending).toBe(1);
    expect(h.sync.api.counters().parked).toBeGreaterThanOrEqual(1);
    await h.notify({ organizations: [{ id: [C('o77')], name: 'Late Org', group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }] });
    await h.drain();
    const org = [...h.app.companies.values()][0];
    expect(org?.name).toBe('Late Org');
    expect([...h.app.contacts.values()][0]?.companyId).toBe(org?.id);
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(0);
  });

  it('§F5 a missing reference is fetched on demand from Connec!', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'organizations', { name: 'Fetched Org' }, 'o88');
    h.connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p6');
    await h.notify({ people: [person({ id: [C('p6')], organization_id: [C('o88')] })] });
    await h.drain();
    expect(h.connec.fetchCalls).toEqual([{ collection: 'organizations', id: 'o88' }]);
    const org = [...h.app.companies.values()][0];
    expect(org?.name).toBe('Fetched Org');
    expect([...h.app.contacts.values()][0]?.companyId).toBe(org?.id);
  });

  it('§F5 a reference that never resolves ends as a listed dead letter, never silently dropped', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.notify({ people: [person({ id: [C('p7')], organization_id: [C('o-missing')] })] });
    await h.drain();
    expect(h.app.contacts.size).toBe(0);
    const dead = await h.sync.api.deadLetters();
    expect(dead.map((d) => d.connecId)).toEqual(['p7']);
    expect(dead[0]?.error?.message).toContain('o-missing');
  });

  it('§F6 invoice lines: sub-record ids linked back per line; an added line only creates that line', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    h.app.items.set('sku-1', { id: 'sku-1', name: 'Widget', archived: false });
    await h.storage.idMaps.insert({ tenant: TENANT, groupId: GROUP, entity: 'items', connecId: 'it1', localId: 'sku-1' });
    h.connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p9');
    await h.notify({ people: [person({ id: [C('p9')], organization_id: null })] });
    await h.drain();
    const contactId = [...h.app.contacts.keys()][0] ?? '';
    const invoice = {
      id: [C('i1')],
      transaction_number: 'INV-1009',
      type: 'CUSTOMER',
      status: 'AUTHORISED',
      person_id: [C('p9'), A(contactId)],
      lines: [
        { id: [C('l1')], item_id: [C('it1'), A('sku-1')], quantity: 2, unit_price: { net_amount: 11.9, tax_rate: 10, currency: 'AUD' } },
        { id: [C('l2')], description: 'Shipping', quantity: 1, unit_price: { total_amount: 5.0, tax_rate: 20, currency: 'AUD' } },
      ],
      group_id: GROUP,
      updated_at: '2016-10-04T00:00:00Z',
    };
    h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1009' }, 'i1');
    await h.notify({ invoices: [invoice] });
    await h.drain();
    const [inv] = [...h.app.invoices.values()];
    expect(inv?.contactId).toBe(contactId);
    expect(inv?.lines.map((l) => l.itemId)).toEqual(['sku-1', null]);
    const [lnA, lnB] = inv?.lines.map((l) => l.id) ?? [];
    const put = h.connec.batches.flat().find((op) => op.id === 'i1');
    expect(put?.record.id).toEqual([C('i1'), A(inv?.id ?? '')]);
    const lines = put?.record.lines as { id: unknown }[];
    expect(lines.map((l) => l.id)).toEqual([
      [C('l1'), A(lnA ?? '')],
      [C('l2'), A(lnB ?? '')],
    ]);
    // an update adding a third line: known lines keep their ids, the new one gets one
    const updated = {
      ...invoice,
      id: [C('i1'), A(inv?.id ?? '')],
      lines: [
        { ...invoice.lines[0], id: [C('l1'), A(lnA ?? '')] },
        { ...invoice.lines[1], id: [C('l2'), A(lnB ?? '')] },
        { id: [C('l3')], description: 'Gift wrap', quantity: 1 },
      ],
      updated_at: '2016-10-06T00:00:00Z',
    };
    await h.notify({ invoices: [updated] });
    await h.drain();
    const after = h.app.invoices.get(inv?.id ?? '');
    expect(after?.lines.map((l) => l.id).slice(0, 2)).toEqual([lnA, lnB]);
    expect(after?.lines[2]?.id).toMatch(/^ln-/);
    expect(h.app.writes.create).toBe(2);
  });
});
