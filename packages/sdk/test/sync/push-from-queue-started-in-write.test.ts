/**
 * An app whose save path hands pushes to an in-process queue, its drain loop started by the
 * first save. When that first save ran inside `local.create`/`local.update` (an import, a
 * Connec! edit), the loop's async context is the SDK's inbound write for good: pushes it makes
 * long after that write returned must still be sent when Connec! does not hold their content.
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
  let sync: SyncModule | undefined;
  // The app's push queue: one loop, started by the first save, pushes in order.
  const queue: { row: Row; done: (status: string) => void }[] = [];
  let wake: (() => void) | null = null;
  let running = false;
  const loop = async () => {
    for (;;) {
      const job = queue.shift();
      if (!job) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const [result] = await sync!.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [job.row] });
      job.done(result?.status ?? 'none');
    }
  };
  const save = (row: Row & { id: string }): Promise<string> => {
    rows.set(row.id, row);
    return new Promise((done) => {
      queue.push({ row, done });
      if (!running) {
        running = true;
        void loop();
      }
      const w = wake;
      wake = null;
      w?.();
    });
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
        await save({ ...data, id });
        return { id };
      },
      update: async (id, data) => {
        await save({ ...data, id });
        return undefined;
      },
    },
  });
  const connec = new FakeConnec(ORG_UID);
  const runtime = testRuntime(storage);
  sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
  return { storage, rows, connec, sync, save, notify: notifier(sync), drain: drainer(createWorker(runtime, sync.jobs ?? {}), storage) };
}

describe('pushes from a queue whose loop started inside an inbound write', () => {
  it('a local edit back to a version Connec! held earlier is sent', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    // Shared once directly (not through the queue, whose loop is not started yet).
    h.rows.set('per-1', { id: 'per-1', first: 'Ann', last: 'Lee' });
    const [first] = await h.sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [h.rows.get('per-1')!] });
    expect(first?.status).toBe('pushed');
    // The first save through the queue runs inside the SDK's write of a Connec! edit.
    const edited = h.connec.edit(GROUP, 'people', first?.connecId ?? '', { last_name: 'Lee-Smith' });
    await h.notify({ people: [edited] });
    await h.drain();
    expect(h.rows.get('per-1')?.last).toBe('Lee-Smith');

    // The user edits the contact, then changes their mind.
    expect(await h.save({ id: 'per-1', first: 'Ann', last: 'Lee-Jones' })).toBe('pushed');
    expect(h.connec.all(GROUP, 'people')[0]?.last_name).toBe('Lee-Jones');
    expect(await h.save({ id: 'per-1', first: 'Ann', last: 'Lee-Smith' })).toBe('pushed');
    expect(h.connec.all(GROUP, 'people')[0]?.last_name).toBe('Lee-Smith');
  });

  it('a new local record with the content of an imported one is created in Connec!', async () => {
    const h = setup();
    await provisionGroup(h.storage);
    // The first save ever runs inside local.create of a record another app made.
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Ann', last_name: 'Lee' }, 'p1');
    await h.notify({ people: [seeded] });
    await h.drain();
    expect(h.rows.size).toBe(1);

    // Later a user adds another Ann Lee (a namesake) in the app.
    const status = await h.save({ id: 'per-local', first: 'Ann', last: 'Lee' });
    expect(status).toBe('pushed');
    expect(h.connec.all(GROUP, 'people')).toHaveLength(2);
  });
});
