/**
 * An app whose save path starts the push without awaiting it (an ORM `afterSave` hook that
 * fires `pushMany` and returns): the push starts inside the SDK's `local.create`, but reaches
 * its check after `create` returned, before the import recorded the id map. It must not create
 * a second record in Connec!.
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
}

function setup() {
    const storage = memoryAdapter();
    const rows = new Map<string, Row>();
    const pushes: Promise<string>[] = [];
    let sync: SyncModule | undefined;
    const save = (row: Row & { id: string }) => {
      rows.set(row.id, row);
      // Fire and forget: the hook does not hold the save.
      pushes.push(sync!.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [row] }).then(([r]) => r?.status ?? 'none'));
    };
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: (p): Row => ({ first: p.first_name ?? '', last: p.last_name ?? '' }),
      toConnec: (c: Row) => ({ first_name: c.first, last_name: c.last }),
      localId: (c: Row) => c.id ?? '',
      local: {
        create: async (data, ctx) => {
          const id = `per-${ctx.idempotencyKey.slice(-6)}`;
          save({ ...data, id });
          return { id };
        },
        update: async (id, data) => {
          save({ ...data, id });
          return undefined;
        },
      },
    });
    const connec = new FakeConnec(ORG_UID);
    const runtime = testRuntime(storage);
    sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
    return { storage, rows, pushes, connec, sync, notify: notifier(sync), drain: drainer(createWorker(runtime, sync.jobs ?? {}), storage) };
}

describe('a push started (not awaited) by the save path local.create/update use', () => {
  it('does not create the imported record a second time in Connec!', async () => {
    const { storage, rows, pushes, connec, sync, notify, drain } = setup();
    await provisionGroup(storage);
    const seeded = connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee' }, 'p1');
    await notify({ people: [seeded] });
    await drain(300);
    const statuses = await Promise.all(pushes);

    expect(rows.size).toBe(1);
    expect(connec.all(GROUP, 'people')).toHaveLength(1);
    expect(statuses).toEqual(['unchanged']);
    expect(sync.api.counters()).toMatchObject({ created: 1, deadLettered: 0 });
  });

  it('does not send a Connec! edit back', async () => {
    const { storage, rows, pushes, connec, sync, notify, drain } = setup();
    await provisionGroup(storage);
    const seeded = connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee' }, 'p1');
    await notify({ people: [seeded] });
    await drain(300);
    await Promise.all(pushes);
    const before = connec.batches.length;
    pushes.length = 0;

    const edited = connec.edit(GROUP, 'people', 'p1', { last_name: 'Lee-Smith' });
    await notify({ people: [edited] });
    await drain(300);
    const statuses = await Promise.all(pushes);

    expect([...rows.values()].map((r) => r.last)).toEqual(['Lee-Smith']);
    const puts = connec.batches.slice(before).flat().filter((op) => op.method === 'put' && !(Object.keys(op.record).length === 1 && 'id' in op.record));
    expect(puts).toHaveLength(0);
    expect(statuses).toEqual(['unchanged']);
    expect(sync.api.counters()).toMatchObject({ deadLettered: 0 });
  });
});
