/**
 * The initial import's outbound half pushes the app's records with `matching_fields`; Connec!
 * merges such a push into the record it already held (CONNECTORS §F1, "smart merge"). That
 * record may carry fields the app's record lacked (an email another app entered): the import
 * must bring them to the app, not take Connec!'s merged record for an echo of our own push.
 */
import { createSyncModule, defineConnector, defineEntity, ImportFailedError, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { GROUP, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Org {
  id?: string;
  name: string;
  email: string | null;
}

function setUp() {
  const orgs = new Map<string, Org>();
  let seq = 0;
  const companies = defineEntity({
    name: 'companies',
    connec: 'organizations',
    direction: 'both',
    matchingFields: ['name'],
    toLocal: (org: Record<string, unknown>): Org => {
      const address = (org.email as { address?: unknown } | undefined)?.address;
      return { name: String(org.name ?? ''), email: typeof address === 'string' ? address : null };
    },
    // The app shares the name only; it reads the email Connec! holds.
    toConnec: (org: Org) => ({ name: org.name }),
    localId: (org: Org) => org.id ?? '',
    local: {
      create: async (data) => {
        const id = `org-${++seq}`;
        orgs.set(id, { ...data, id });
        return { id };
      },
      update: async (id, data) => {
        const row = orgs.get(id);
        if (!row) return { gone: true };
        orgs.set(id, { ...row, ...data, id });
        return undefined;
      },
      async *list() {
        yield [...orgs.values()];
      },
    },
  });
  const connec = new FakeConnec(ORG_UID);
  const storage = memoryAdapter();
  const runtime = testRuntime(storage);
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [companies] }), sync: { connecPort: () => connec } });
  return { orgs, connec, storage, sync };
}

describe('initial import: a local record merged by matching_fields into an existing Connec! record', () => {
  it("brings the Connec! record's other fields (read by toLocal, not pushed) to the app", async () => {
    const { orgs, connec, storage, sync } = setUp();
    await provisionGroup(storage);
    orgs.set('org-local', { id: 'org-local', name: 'Acme Pty', email: null });
    connec.seed(GROUP, 'organizations', { name: 'Acme Pty', email: { address: 'hi@acme.io' } }, 'o1');
    connec.seed(GROUP, 'organizations', { name: 'Other Co', email: { address: 'x@other.io' } }, 'o2');

    const report = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP });

    expect(report.status).toBe('complete');
    // merged, not duplicated
    expect(orgs.size).toBe(2);
    expect((await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId: 'o1' }))?.localId).toBe('org-local');
    // Connec!'s record holds the email: so must the app's after the import
    expect(connec.find(GROUP, 'organizations', 'o1')?.email).toEqual({ address: 'hi@acme.io' });
    expect(orgs.get('org-local')?.email).toBe('hi@acme.io');
    // and both sides agree now: pushing the app's record again sends nothing
    const batches = connec.batches.length;
    const again = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: orgs.get('org-local') });
    expect(again).toMatchObject({ localId: 'org-local', status: 'unchanged', connecId: 'o1' });
    expect(connec.batches.length).toBe(batches);
  });

  it('also when the import stopped after the merge (a 503 on another push) and its retry resumes', async () => {
    const { orgs, connec, storage, sync } = setUp();
    await provisionGroup(storage);
    orgs.set('org-local', { id: 'org-local', name: 'Acme Pty', email: null });
    orgs.set('org-new', { id: 'org-new', name: 'New Co', email: null });
    connec.seed(GROUP, 'organizations', { name: 'Acme Pty', email: { address: 'hi@acme.io' } }, 'o1');
    connec.rejectOp = (op) => (op.method === 'post' && op.record.name === 'New Co' ? { status: 503, error: 'Service Unavailable' } : null);

    const first = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => error);
    expect(first).toBeInstanceOf(ImportFailedError);
    expect((await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId: 'o1' }))?.localId).toBe('org-local');

    connec.rejectOp = null;
    const report = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.status).toBe('complete');
    expect(orgs.size).toBe(2);
    expect(orgs.get('org-local')?.email).toBe('hi@acme.io');
  });
});
