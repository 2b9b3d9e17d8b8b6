/**
 * References that close a cycle (an organization naming its main contact, the contact naming
 * the organization): two new records naming each other are both written, the reference to the
 * entity imported later left empty at first and filled in by a refill job once its target
 * exists. Before, each waited for the other until both were dead letters.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

function setup() {
  const storage = memoryAdapter();
  const rows = new Map<string, Record<string, unknown>>();
  const writes: string[] = [];
  let seq = 0;
  const local = {
    create: async (data: Record<string, unknown>) => {
      const id = `loc-${++seq}`;
      rows.set(id, data);
      writes.push(`create:${String(data.name)}`);
      return { id };
    },
    update: async (id: string, data: Record<string, unknown>) => {
      rows.set(id, data);
      writes.push(`update:${String(data.name)}`);
      return undefined;
    },
  };
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'inbound',
    references: { contact_id: 'contacts' },
    toLocal: (o) => ({ name: o.name, contact: o.contact_id ?? null }),
    local,
  });
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'inbound',
    references: { organization_id: 'companies' },
    toLocal: (p) => ({ name: p.last_name, company: p.organization_id ?? null }),
    local,
  });
  const connec = new FakeConnec(ORG_UID);
  connec.seed(GROUP, 'organizations', { name: 'Acme', contact_id: [C('p1')] }, 'o1');
  connec.seed(GROUP, 'people', { last_name: 'Lee', organization_id: [C('o1')] }, 'p1');
  const runtime = testRuntime(storage);
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [companies, contacts] }), sync: { connecPort: () => connec, maxAttempts: 4 } });
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  /** The local rows by name, their references as names. */
  const linked = () => {
    const name = (id: unknown) => (typeof id === 'string' ? String(rows.get(id)?.name) : null);
    return Object.fromEntries([...rows.values()].map((r) => [String(r.name), name(r.contact ?? r.company)]));
  };
  return { storage, rows, writes, connec, sync, drain, linked };
}

describe('references that close a cycle', () => {
  it('two new records naming each other in one notification are both written and linked', async () => {
    const s = setup();
    await provisionGroup(s.storage);
    await notifier(s.sync)({
      organizations: [{ id: [C('o1')], name: 'Acme', contact_id: [C('p1')], group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }],
      people: [{ id: [C('p1')], last_name: 'Lee', organization_id: [C('o1')], group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }],
    });
    await s.drain();
    expect(s.linked()).toEqual({ Acme: 'Lee', Lee: 'Acme' });
    expect(await s.sync.api.deadLetters({ tenant: TENANT })).toEqual([]);
    // One create each, one refill write; nothing waiting.
    expect(s.writes.filter((w) => w.startsWith('create:')).sort()).toEqual(['create:Acme', 'create:Lee']);
    expect(s.writes.filter((w) => w.startsWith('update:'))).toHaveLength(1);
    expect(await s.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });

  it('the initial import writes both and links them once the worker ran the refill', async () => {
    const s = setup();
    await provisionGroup(s.storage);
    const report = await s.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(report.failures).toEqual([]);
    expect(Object.keys(s.linked()).sort()).toEqual(['Acme', 'Lee']);
    await s.drain();
    expect(s.linked()).toEqual({ Acme: 'Lee', Lee: 'Acme' });
    expect(await s.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, dead: 0 });
  });
});
