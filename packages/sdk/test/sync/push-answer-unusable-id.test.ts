/**
 * Connec! answers a pushed create with a Connec! id no storage can key a map by (a NUL
 * character, an unpaired surrogate, or longer than any Connec! id). That record fails alone,
 * as an answer without a Connec! id does: the other records of the call keep their results and
 * links, and `pushMany` resolves instead of rejecting with a storage error.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { FakeConnec } from './fake-connec.js';
import { GROUP, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };

async function setup(badId: string) {
  const connec = new FakeConnec(ORG_UID);
  const batch = connec.batch.bind(connec);
  // Connec! applies every op; the answer to the second create names an unusable Connec! id.
  connec.batch = async (ops) => {
    const results = await batch(ops);
    return results.map((r, i) =>
      i === 1 && r.record ? { ...r, record: { ...r.record, id: [{ id: badId, provider: 'connec', realm: ORG_UID }] } } : r,
    );
  };
  const storage = memoryAdapter();
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
    localId: (c: { id: string }) => c.id,
  });
  const sync = createSyncModule(testRuntime(storage), { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
  await provisionGroup(storage);
  return { storage, sync };
}

describe('a push answered with a Connec! id storage cannot hold', () => {
  for (const [what, badId] of [
    ['a NUL character', 'p-\u0000-2'],
    ['an unpaired surrogate', 'p-\ud800-2'],
    ['longer than any Connec! id', `p-${'x'.repeat(300)}`],
  ] as const) {
    it(`(${what}) fails that record alone; the others are pushed and linked`, async () => {
      const { storage, sync } = await setup(badId);
      const results = await sync.api.pushMany({
        tenant: TENANT,
        groupId: GROUP,
        entity: 'contacts',
        records: [
          { id: 'loc-1', last: 'One' },
          { id: 'loc-2', last: 'Two' },
          { id: 'loc-3', last: 'Three' },
        ],
      });
      expect(results.map((r) => r.status)).toEqual(['pushed', 'failed', 'pushed']);
      expect(results[1]).toMatchObject({ localId: 'loc-2', connecId: null, httpStatus: 201 });
      const third = await storage.idMaps.find(ids, { localId: 'loc-3' });
      expect(third?.connecId).toEqual(results[2]?.connecId);
      expect(third?.connecId).not.toBeNull();
      const second = await storage.idMaps.find(ids, { localId: 'loc-2' });
      expect(second?.connecId ?? null).toBeNull();
      expect(second?.lastError?.message).toMatch(/^Connec! answered HTTP 201 with a Connec! id .*, which no record can be keyed by$/);
    });
  }
});

describe('a create refused with 409 whose record Connec! lists with a Connec! id storage cannot hold', () => {
  it('fails that record alone instead of rejecting the call; the others are pushed', async () => {
    const connec = new FakeConnec(ORG_UID);
    // Updated just now: among the records the recovery lists.
    connec.setClock(new Date().toISOString());
    // The record an earlier, lost attempt of loc-2 created, under an unusable Connec! id.
    connec.seed(GROUP, 'people', { last_name: 'Two', id: [{ id: 'loc-2', provider: 'myapp', realm: GROUP }] }, 'p-\u0000-2');
    connec.rejectOp = (op) => (op.method === 'post' && JSON.stringify(op.record.id).includes('"loc-2"') ? { status: 409, error: 'Resource already exists' } : null);
    const storage = memoryAdapter();
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'outbound',
      toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
      localId: (c: { id: string }) => c.id,
    });
    const sync = createSyncModule(testRuntime(storage), { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
    await provisionGroup(storage);
    const results = await sync.api.pushMany({
      tenant: TENANT,
      groupId: GROUP,
      entity: 'contacts',
      records: [
        { id: 'loc-1', last: 'One' },
        { id: 'loc-2', last: 'Two' },
      ],
    });
    expect(results.map((r) => r.status)).toEqual(['pushed', 'failed']);
    expect(results[1]).toMatchObject({ localId: 'loc-2', connecId: null, httpStatus: 409 });
    expect((await storage.idMaps.find(ids, { localId: 'loc-2' }))?.connecId ?? null).toBeNull();
  });
});
