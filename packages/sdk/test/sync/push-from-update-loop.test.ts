/**
 * An app that pushes from its own save path, which the SDK's `local.update` also goes through
 * (an ORM hook, one `saveContact` used everywhere): one Connec! edit must settle after a bounded
 * number of pushes, not bounce between the inbound write and the push it triggers.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, type SyncModule } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Row {
  id?: string;
  first: string;
  last: string;
  updatedAt?: Date;
}

function setup() {
  const storage = memoryAdapter();
  const rows = new Map<string, Row>();
  const pushes: string[] = [];
  const pushOnCreate = { on: false };
  let sync: SyncModule | undefined;
  // The app's one save path: write, then share with Connec! (as the docs recommend).
  const save = async (row: Row) => {
    rows.set(row.id ?? '', { ...row, updatedAt: new Date() });
    const [result] = await sync!.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [rows.get(row.id ?? '')!] });
    pushes.push(result?.status ?? 'none');
  };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    toLocal: (p): Row => ({ first: p.first_name ?? '', last: p.last_name ?? '' }),
    toConnec: (c: Row) => ({ first_name: c.first, last_name: c.last }),
    localId: (c: Row) => c.id ?? '',
    localUpdatedAt: (c: Row) => c.updatedAt ?? null,
    local: {
      create: async (data, ctx) => {
        const id = `per-${ctx.idempotencyKey.slice(-6)}`;
        if (pushOnCreate.on) await save({ ...data, id });
        else rows.set(id, { ...data, id, updatedAt: new Date() });
        return { id };
      },
      update: async (id, data) => {
        await save({ ...data, id });
        return undefined;
      },
      get: async (id) => rows.get(id) ?? null,
    },
  });
  const connec = new FakeConnec(ORG_UID);
  const runtime = testRuntime(storage);
  sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec, maxAttempts: 6 } });
  const notify = notifier(sync);
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  return { pushOnCreate, storage, rows, pushes, connec, sync, notify, drain, save };
}

describe('an app that pushes from the save path local.update uses', () => {
  it('a Connec! edit is written once and not pushed back', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee' }, 'p1');
    await h.notify({ people: [seeded] });
    await h.drain();
    expect([...h.rows.values()].map((r) => r.last)).toEqual(['Lee']);
    const before = h.connec.batches.length;

    const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Lee-Smith' });
    await h.notify({ people: [edited] });
    await h.drain(1500);

    expect([...h.rows.values()].map((r) => r.last)).toEqual(['Lee-Smith']);
    const puts = h.connec.batches.slice(before).flat().filter((op) => op.method === 'put' && !(Object.keys(op.record).length === 1 && 'id' in op.record));

    // Connec! already holds the version the app saved: nothing is sent back, and it is written once.
    expect(puts).toHaveLength(0);
    expect(h.pushes).toEqual(['unchanged']);
    expect(h.sync.api.counters()).toMatchObject({ updated: 1, deadLettered: 0 });
    // Both sides agree: a later save of the same content sends nothing either.
    await h.save(h.rows.get([...h.rows.keys()][0] ?? '')!);
    expect(h.pushes).toEqual(['unchanged', 'unchanged']);
  });

  it('a record created from Connec! is not created a second time in Connec!', async () => {
    const h = setup();
    h.pushOnCreate.on = true;
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee' }, 'p1');
    await h.notify({ people: [seeded] });
    await h.drain(300);

    expect(h.connec.all(GROUP, 'people')).toHaveLength(1);
    expect(h.rows.size).toBe(1);
    expect(h.sync.api.counters()).toMatchObject({ created: 1, deadLettered: 0 });
    expect(h.pushes).toEqual(['unchanged']);
  });
});
