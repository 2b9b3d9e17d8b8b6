/**
 * A push whose answer holds nothing the app lacks is not written in the app, also with a
 * `toConnec` that sends a field `toLocal` does not read (a reference to the local record): the
 * hash of what a push does not send must be the same whether an inbound write or a push
 * recorded it, or every push after an inbound write writes its own answer back in the app.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Row {
  id?: string;
  first: string;
  title: string | null;
}

function setup() {
  const storage = memoryAdapter();
  const rows = new Map<string, Row>();
  const writes = { create: 0, update: 0 };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    // The app reads the name and the job title; it pushes the name and its own record number.
    toLocal: (p): Row => ({ first: p.first_name ?? '', title: p.job_title ?? null }),
    toConnec: (c: Row) => ({ first_name: c.first, reference: c.id }),
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

describe('a push after an inbound write, with a pushed field the app does not read', () => {
  it('writes nothing in the app when the answer holds only what the app has', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Ann', job_title: 'Developer' });
    await h.notify({ people: [seeded] });
    await h.drain();
    expect(h.writes).toEqual({ create: 1, update: 0 });
    const cid = String((seeded.id as { id: string }[])[0]?.id);

    // The app pushes the record (its reference is new in Connec!), then another app edits the
    // job title, which is applied.
    const row = { ...h.rows.get('per-1')!, first: 'Anne' };
    h.rows.set('per-1', row);
    expect((await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [row] }))[0]?.status).toBe('pushed');
    await h.drain();
    await h.notify({ people: [h.connec.edit(GROUP, 'people', cid, { job_title: 'CTO' })] });
    await h.drain();
    expect(h.rows.get('per-1')).toEqual({ id: 'per-1', first: 'Anne', title: 'CTO' });
    const before = h.writes.update;

    // A local edit of the name, pushed: the answer holds the app's record as it is.
    const edited = { ...h.rows.get('per-1')!, first: 'Annie' };
    h.rows.set('per-1', edited);
    expect((await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [edited] }))[0]?.status).toBe('pushed');
    await h.drain();
    expect(h.writes.update).toBe(before);
    // And again: still no write of the push's own answer.
    const again = { ...h.rows.get('per-1')!, first: 'Ann' };
    h.rows.set('per-1', again);
    expect((await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [again] }))[0]?.status).toBe('pushed');
    await h.drain();
    expect(h.writes.update).toBe(before);
    expect(h.rows.get('per-1')).toEqual({ id: 'per-1', first: 'Ann', title: 'CTO' });
  });
});

