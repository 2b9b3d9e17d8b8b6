/**
 * Echo suppression with a mapping whose `toConnec` sends fewer fields than `toLocal` reads:
 * a Connec! edit of such a field maps to the same pushed content, yet it is an edit made in
 * Connec!, not the echo of a push, and must reach the app. The echo of a push is told by the
 * content Connec! answered for it (Connec!-managed fields such as `code` and `updated_at` aside),
 * also when Connec! leaves out the fields the push set to null.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Row {
  id?: string;
  first: string;
  last: string;
  title: string | null;
}

/** `pushTitle`: `toConnec` sends the job title too (a cleared one as null). */
function setup(options: { pushTitle?: boolean } = {}) {
  const storage = memoryAdapter();
  const rows = new Map<string, Row>();
  const writes = { create: 0, update: 0 };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    // The app reads the job title; it only ever pushes the name.
    toLocal: (p): Row => ({ first: p.first_name ?? '', last: p.last_name ?? '', title: p.job_title ?? null }),
    toConnec: (c: Row) => ({ first_name: c.first, last_name: c.last, ...(options.pushTitle ? { job_title: c.title } : {}) }),
    localId: (c: Row) => c.id ?? '',
    local: {
      create: async (data) => {
        writes.create++;
        const id = `per-${rows.size + 1}`;
        rows.set(id, { ...data, id });
        return { id };
      },
      update: async (id, data) => {
        writes.update++;
        rows.set(id, { ...data, id });
        return undefined;
      },
    },
  });
  const connec = new FakeConnec(ORG_UID);
  const runtime = testRuntime(storage);
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
  const notify = notifier(sync);
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  return { storage, rows, writes, connec, sync, notify, drain };
}

const person = (over: Record<string, unknown> = {}) => ({
  id: [C('p9')],
  first_name: 'Jane',
  last_name: 'Doe',
  job_title: 'Developer',
  group_id: GROUP,
  updated_at: '2016-10-04T00:36:23Z',
  ...over,
});

describe('echo suppression when toConnec sends fewer fields than toLocal reads', () => {
  it('applies a Connec! edit of a field the app reads but does not push, after an inbound write', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    await h.notify({ people: [person()] });
    await h.drain();
    expect([...h.rows.values()].map((r) => r.title)).toEqual(['Developer']);

    await h.notify({ people: [person({ job_title: 'CTO', updated_at: '2016-10-05T09:00:00Z' })] });
    await h.drain();
    expect([...h.rows.values()].map((r) => r.title)).toEqual(['CTO']);
    expect(h.sync.api.counters().skippedEcho).toBe(0);
  });

  it('after a push: skips its echo (also with a new code and updated_at), applies a later edit of an unpushed field', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    h.rows.set('per-1', { id: 'per-1', first: 'Ann', last: 'Lee', title: null });
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.rows.get('per-1')!] });
    const cid = pushed?.connecId ?? '';
    expect(pushed?.status).toBe('pushed');

    // Connec! notifies the version the push made, then stamps a code on it: both are echoes.
    await h.notify({ people: [h.connec.find(GROUP, 'people', cid)!] });
    await h.notify({ people: [h.connec.edit(GROUP, 'people', cid, { code: 'PE9' })] });
    await h.drain();
    expect(h.writes).toEqual({ create: 0, update: 0 });
    expect(h.sync.api.counters().skippedEcho).toBeGreaterThanOrEqual(1);

    // Another app sets the job title: same pushed content, but an edit the app must see.
    await h.notify({ people: [h.connec.edit(GROUP, 'people', cid, { job_title: 'CTO' })] });
    await h.drain();
    expect(h.rows.get('per-1')).toEqual({ id: 'per-1', first: 'Ann', last: 'Lee', title: 'CTO' });
    expect(h.writes.update).toBe(1);
  });
  it('a map written before pushes recorded their answer (a bare hash) after an inbound write: an edit of an unpushed field is applied', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    const scope = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
    await h.notify({ people: [person()] });
    await h.drain();
    const map = await h.storage.idMaps.find(scope, { connecId: 'p9' });
    // `in:<content hash>`, then `~` and the hash of what a push of the record does not send.
    expect(map?.lastReceivedHash).toMatch(/^in:[0-9a-f]{64}~[0-9a-f]{64}$/);
    // What the previous release stored after that inbound write: the bare content hash.
    await h.storage.idMaps.update(scope, { connecId: 'p9' }, { lastReceivedHash: (map?.lastReceivedHash ?? '').slice('in:'.length, 'in:'.length + 64) });
    await h.notify({ people: [person({ job_title: 'CTO', updated_at: '2016-10-05T09:00:00Z' })] });
    await h.drain();
    expect([...h.rows.values()].map((r) => r.title)).toEqual(['CTO']);
    expect(h.sync.api.counters().skippedEcho).toBe(0);
  });
});

// The echo as Connec! may send it back: an unset attribute omitted instead of null (Connec!
// serialises it either way), keys reordered, Connec!-managed fields changed.
describe('echo of a push with normalisations', () => {
  it('is recognised when Connec! omits the null fields the push set', async () => {
    const h = setup({ pushTitle: true });
    await provisionGroup(h.storage);
    h.rows.set('per-1', { id: 'per-1', first: 'Ann', last: 'Lee', title: null });
    const [pushed] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.rows.get('per-1')!] });
    expect(pushed?.status).toBe('pushed');
    const stored = h.connec.edit(GROUP, 'people', pushed?.connecId ?? '', { code: 'PE1' });
    const { job_title: _unset, ...echo } = stored;
    expect(_unset).toBeNull();
    // Keys in another order, the null field left out.
    const reordered = Object.fromEntries(Object.entries(echo).reverse());
    await h.notify({ people: [reordered] });
    await h.drain();
    expect(h.writes.update).toBe(0);
    expect(h.sync.api.counters().skippedEcho).toBe(1);
  });
});
