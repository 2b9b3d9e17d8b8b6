/**
 * A push whose own echo is delivered (and written in the app) before Connec!'s answer to the
 * push comes back. The echo is Connec!'s version of exactly what was pushed: after it, both
 * sides hold the pushed content, and the next push of the unchanged record must send nothing.
 */
import { createSyncModule, defineConnector, defineEntity, memoryAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Person {
  id: string;
  first: string;
  title: string;
}

const ids = { tenant: TENANT, groupId: GROUP, entity: 'contacts' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a push overtaken by nothing but its own echo', () => {
  it('is still taken as agreed: the unchanged record is not sent again', async () => {
    const connec = new FakeConnec(ORG_UID);
    const storage = memoryAdapter();
    const runtime = testRuntime(storage);
    const people = new Map<string, Person>();
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: (p: Record<string, unknown>) => ({ id: '', first: String(p.first_name ?? ''), title: String(p.job_title ?? '') }),
      toConnec: (c: Person) => ({ first_name: c.first, job_title: c.title }),
      localId: (c: Person) => c.id,
      local: {
        create: async () => ({ id: 'unused' }),
        update: async (id: string, data: Person) => {
          const row = people.get(id);
          if (row) people.set(id, { ...row, ...data, id });
          return undefined;
        },
      },
    });
    const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec, maxAttempts: 3 } });
    await provisionGroup(storage);
    const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
    const notify = notifier(sync);
    const push = (record: Person) => sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record });

    const ada: Person = { id: 'per-1', first: 'Ada', title: 'Engineer' };
    people.set(ada.id, ada);
    const first = await push(ada);
    expect(first.status).toBe('pushed');
    const connecId = String(first.connecId);
    await sleep(5);

    // The user changes the title; the app pushes it. Connec! applies the op and notifies the
    // new version (the push's echo) before its answer to the batch call reaches the engine.
    const cto = { ...ada, title: 'CTO' };
    people.set(cto.id, cto);
    const batch = connec.batch.bind(connec);
    let echoFirst = true;
    connec.batch = async (ops) => {
      const answers = await batch(ops);
      if (echoFirst) {
        echoFirst = false;
        const echo = connec.find(GROUP, 'people', connecId);
        expect(echo).toMatchObject({ job_title: 'CTO' });
        await sleep(5);
        expect((await notify({ people: [echo] })).status).toBe(200);
        await drain();
        await sleep(5);
      }
      return answers;
    };
    expect(await push(cto)).toMatchObject({ status: 'pushed' });
    connec.batch = batch;
    // The echo was Connec!'s version of the push: both sides hold the pushed content.
    expect(people.get('per-1')).toEqual(cto);
    expect(connec.find(GROUP, 'people', connecId)).toMatchObject({ first_name: 'Ada', job_title: 'CTO' });

    // The app saves the record again, unchanged: nothing differs from what both sides agree on.
    const batches = connec.batches.length;
    const again = await push(cto);
    expect({ status: again.status, sent: connec.batches.length - batches, map: await storage.idMaps.find(ids, { localId: 'per-1' }) }).toMatchObject({
      status: 'unchanged',
      sent: 0,
    });
  });
});
