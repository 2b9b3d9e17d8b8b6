/**
 * Failures inside one worker batch stay with the records they belong to: a throwing entity
 * filter fails its own record only, and a later entity's storage failure neither fails the
 * records an earlier entity already wrote nor loses their link-backs to Connec!.
 */
import { RateLimitError } from '@org/connec-client';
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, type StorageAdapter, StorageError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

const person = (id: string, over: Record<string, unknown> = {}) => ({
  id: [C(id)],
  first_name: 'Jane',
  last_name: 'Doe',
  group_id: GROUP,
  updated_at: '2016-10-04T00:36:23Z',
  ...over,
});

describe('a throwing entity filter', () => {
  it('fails only the record it throws for: the other records of the notification are applied', async () => {
    const storage = memoryAdapter();
    const created: string[] = [];
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      // An app filter with a bug for one shape of record (a null sub-object).
      filter: (p) => (p.email as { address: string }).address.endsWith('@x.io'),
      toLocal: (p) => ({ name: p.last_name }),
      local: {
        create: async (data) => {
          created.push(String(data.name));
          return { id: `loc-${created.length}` };
        },
        update: async () => undefined,
      },
    });
    const connec = new FakeConnec(ORG_UID);
    for (const id of ['p1', 'p2', 'p3']) connec.seed(GROUP, 'people', { last_name: id }, id);
    const sync = createSyncModule(testRuntime(storage), {
      connector: defineConnector({ entities: [contacts] }),
      // One attempt: the three jobs are claimed together once, so a batch-wide failure shows.
      sync: { connecPort: () => connec, maxAttempts: 1 },
    });
    await provisionGroup(storage);
    const res = await notifier(sync)({
      people: [
        person('p1', { last_name: 'Good', email: { address: 'good@x.io' } }),
        person('p2', { last_name: 'Bad', email: null }),
        person('p3', { last_name: 'AlsoGood', email: { address: 'also@x.io' } }),
      ],
    });
    expect(res.status).toBe(200);
    await drainer(createWorker(testRuntime(storage), sync.jobs ?? {}), storage)();
    expect(created.sort()).toEqual(['AlsoGood', 'Good']);
    const dead = await sync.api.deadLetters({ tenant: TENANT });
    expect(dead.map((d) => d.connecId)).toEqual(['p2']);
    expect(dead[0]?.error?.message).toMatch(/^The filter of entity "contacts" threw: .*address/);
  });
});

describe('a later entity of the batch failing in storage', () => {
  it('keeps the records an earlier entity wrote, sends their link-backs, and retries only its own', async () => {
    const inner = memoryAdapter();
    let failContacts = 1;
    const storage: StorageAdapter = {
      ...inner,
      idMaps: {
        ...inner.idMaps,
        findManyByConnecIds: async (scope, ids) => {
          if (scope.entity === 'contacts' && failContacts > 0) {
            failContacts--;
            throw new StorageError('idMaps.findManyByConnecIds failed: connection reset', { adapterId: inner.id, operation: 'idMaps.findManyByConnecIds' });
          }
          return inner.idMaps.findManyByConnecIds(scope, ids);
        },
      },
    };
    const connec = new FakeConnec(ORG_UID);
    const writes: string[] = [];
    let seq = 0;
    const local = {
      create: async (data: { name: unknown }) => {
        writes.push(String(data.name));
        return { id: `loc-${++seq}` };
      },
      update: async () => undefined,
    };
    const companies = defineEntity({ name: 'companies', connec: 'organizations', direction: 'inbound', toLocal: (o) => ({ name: o.name }), local });
    const contacts = defineEntity({ name: 'contacts', connec: 'people', direction: 'inbound', toLocal: (p) => ({ name: p.last_name }), local });
    const sync = createSyncModule(testRuntime(storage), {
      connector: defineConnector({ entities: [companies, contacts] }),
      sync: { connecPort: () => connec, maxAttempts: 3 },
    });
    await provisionGroup(storage);
    connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    connec.seed(GROUP, 'people', { last_name: 'Lee' }, 'p2');
    const res = await notifier(sync)({
      organizations: [{ id: [C('o1')], name: 'Acme', group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }],
      people: [person('p2', { last_name: 'Lee' })],
    });
    expect(res.status).toBe(200);
    await drainer(createWorker(testRuntime(storage), sync.jobs ?? {}), storage)();

    // Each record written once, both linked back once, nothing dead.
    expect(writes.sort()).toEqual(['Acme', 'Lee']);
    const linked = connec.batches.flat().map((op) => op.collection);
    expect(linked.sort()).toEqual(['organizations', 'people']);
    expect(await sync.api.deadLetters({ tenant: TENANT })).toEqual([]);
    expect((await inner.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'companies' }, { connecId: 'o1' }))?.localId).toBe('loc-1');
  });
});

describe('a link-back batch call refused with 429', () => {
  it('retries the record after the Retry-After Connec! asked for, not the usual backoff', async () => {
    const inner = memoryAdapter();
    const failures: { message: string; retryAt: Date }[] = [];
    const storage: StorageAdapter = {
      ...inner,
      jobs: {
        ...inner.jobs,
        fail: async (id, worker, failure) => {
          failures.push({ message: failure.error.message, retryAt: failure.retryAt });
          return inner.jobs.fail(id, worker, failure);
        },
      },
    };
    const connec = new FakeConnec(ORG_UID);
    connec.seed(GROUP, 'people', { last_name: 'Lee' }, 'p1');
    let refused = 0;
    const batch = connec.batch.bind(connec);
    connec.batch = async (ops) => {
      if (refused++ === 0) {
        throw new RateLimitError('Connec! POST /batch failed with 429', { service: 'connec', status: 429, method: 'POST', url: 'http://connec.test/batch', retryAfterMs: 90_000 });
      }
      return batch(ops);
    };
    let seq = 0;
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p) => ({ name: p.last_name }),
      local: { create: async () => ({ id: `loc-${++seq}` }), update: async () => undefined },
    });
    const sync = createSyncModule(testRuntime(storage), { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec } });
    await provisionGroup(storage);
    const res = await notifier(sync)({ people: [person('p1', { last_name: 'Lee' })] });
    expect(res.status).toBe(200);
    const before = Date.now();
    await createWorker(testRuntime(storage), sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
    expect(failures).toHaveLength(1);
    expect(failures[0]?.message).toMatch(/^Linking contacts p1 back to Connec! failed: /);
    // Due no earlier than the 90 s Connec! asked for (the test backoff would be 20 ms at most).
    expect(failures[0]?.retryAt.getTime()).toBeGreaterThanOrEqual(before + 89_000);
  });
});
