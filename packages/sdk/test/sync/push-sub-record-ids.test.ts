/**
 * A push sends the app's sub-record ids (invoice lines) as id arrays, as it does for the
 * record's own id (PROTOCOL §6.6: `lines/id`), so Connec! keeps them and the next version of
 * the record brings each line back with the app's id. Sent as plain strings, Connec! kept none,
 * and every pushed line came back `id: null`: a new line to the app, duplicated.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Line {
  id: string | null;
  description: string;
}
interface Invoice {
  id: string;
  number: string;
  lines: Line[];
}

async function setup() {
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter();
  const runtime = testRuntime(storage);
  const rows = new Map<string, Invoice>();
  const seenLineIds: (string | null)[][] = [];
  const invoices = defineEntity({
    name: 'invoices',
    connec: 'invoices',
    direction: 'both',
    subRecords: ['lines'],
    toLocal: (r: Record<string, unknown>): Omit<Invoice, 'id'> => {
      const lines = (Array.isArray(r.lines) ? r.lines : []) as { id?: unknown; description?: unknown }[];
      seenLineIds.push(lines.map((l) => (typeof l.id === 'string' ? l.id : null)));
      return { number: String(r.transaction_number ?? ''), lines: lines.map((l) => ({ id: typeof l.id === 'string' ? l.id : null, description: String(l.description ?? '') })) };
    },
    toConnec: (inv: Omit<Invoice, 'id'> & { id?: string }) => ({
      transaction_number: inv.number,
      lines: inv.lines.map((l) => ({ ...(l.id ? { id: l.id } : {}), description: l.description })),
    }),
    localId: (inv: Omit<Invoice, 'id'> & { id?: string }) => inv.id ?? '',
    local: {
      create: async () => {
        throw new Error('not expected: the invoice exists locally');
      },
      update: async (id, data) => {
        const row = rows.get(id);
        if (!row) return { gone: true };
        // A line without our id is a new line (the documented contract).
        const lines = data.lines.map((l, k) => ({ ...l, id: l.id ?? `${id}-new-${k}` }));
        rows.set(id, { ...row, ...data, lines, id });
        return { subIds: { lines: lines.map((l) => l.id) } };
      },
    },
  });
  const module = createSyncModule(runtime, { connector: defineConnector({ entities: [invoices] }), sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 3 } });
  await provisionGroup(storage, GROUP);
  const drain = drainer(createWorker(runtime, module.jobs ?? {}), storage);
  return { connec, rows, seenLineIds, sync: module, drain, notify: notifier(module) };
}

describe('a pushed record keeps its sub-record ids through Connec!', () => {
  it('the lines of a pushed invoice carry our ids in Connec!, and come back with them on the next version', async () => {
    const h = await setup();
    const row: Invoice = { id: 'inv-1', number: 'LOCAL-1', lines: [{ id: 'ln-a', description: 'Widget' }, { id: 'ln-b', description: 'Gadget' }] };
    h.rows.set(row.id, row);
    const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'invoices', record: row });
    expect(result.status).toBe('pushed');
    const stored = h.connec.find(GROUP, 'invoices', result.connecId as string) as { lines: { id: unknown }[] };
    expect(stored.lines.map((l) => (Array.isArray(l.id) ? l.id.filter((e: { provider?: string }) => e.provider !== 'connec').map((e: { id: string }) => e.id) : l.id))).toEqual([['ln-a'], ['ln-b']]);

    // Another app edits the invoice in Connec!: the lines come back as ours, none re-created.
    const edited = h.connec.edit(GROUP, 'invoices', result.connecId as string, { transaction_number: 'LOCAL-1b' });
    expect((await h.notify({ invoices: [edited] })).status).toBe(200);
    await h.drain();
    expect(h.rows.get('inv-1')).toEqual({ id: 'inv-1', number: 'LOCAL-1b', lines: [{ id: 'ln-a', description: 'Widget' }, { id: 'ln-b', description: 'Gadget' }] });
  });

  it('a sub-record id no record can be keyed by fails the push with a typed, clear error', async () => {
    const h = await setup();
    const row: Invoice = { id: 'inv-2', number: 'LOCAL-2', lines: [{ id: 'x'.repeat(2_000), description: 'Widget' }] };
    const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'invoices', record: row });
    expect({ status: result.status, error: result.error }).toMatchObject({ status: 'failed', error: expect.stringContaining('lines/id (lines/0/id)') });
    expect(h.connec.batches.length).toBe(0);
  });
});
