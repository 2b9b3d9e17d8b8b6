/**
 * The echo of a push as Connec! may send it back: unset attributes omitted instead of null
 * (Connec! serialises them either way), keys reordered, Connec!-managed fields changed. It is
 * still the echo: no local write.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Row {
  id?: string;
  first: string;
  last: string;
  title: string | null;
}

function setup() {
  const storage = memoryAdapter();
  const rows = new Map<string, Row>();
  const writes = { update: 0 };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    toLocal: (p): Row => ({ first: p.first_name ?? '', last: p.last_name ?? '', title: p.job_title ?? null }),
    // A cleared title goes out as null (a push merges: a field left out keeps its old value).
    toConnec: (c: Row) => ({ first_name: c.first, last_name: c.last, job_title: c.title }),
    localId: (c: Row) => c.id ?? '',
    local: {
      create: async () => ({ id: 'unused' }),
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
  return { storage, rows, writes, connec, sync, notify: notifier(sync), drain: drainer(createWorker(runtime, sync.jobs ?? {}), storage) };
}

describe('echo of a push with normalisations', () => {
  it('is recognised when Connec! omits the null fields the push set', async () => {
    const h = setup();
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
