/**
 * Connec! refusing a batch call as a whole with 429 and `Retry-After: 90` (a real HTTP Connec! on
 * loopback, through the real `connecPort` over @org/connec-client, except for the conflict
 * winner, which uses the FakeConnec): whatever the call was for, its retry waits the 90 s, and
 * the run that met the refusal sends no other batch call meanwhile. The client does not throw
 * for a status; it answers one failed result per op, and the port kept only a message, so every
 * path below retried after its own short backoff (or at once).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AnyEntity,
  createSyncModule,
  defineConnector,
  defineEntity,
  type JobInput,
  memoryAdapter,
  RateLimitError,
  type StorageAdapter,
  staticTenants,
} from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { C, createHarness, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

type Listed = { id: { id: string }[] } & Record<string, unknown>;

/**
 * Starts a Connec! that refuses every batch call (429, `Retry-After: 90`) and serves `records`
 * of `collection`: one by id, or a page by `$skip`/`$top`. `batches` holds the time of each
 * batch call.
 */
async function refusingConnec(collection: string, records: Listed[]): Promise<{ url: string; batches: number[] }> {
  const batches: number[] = [];
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/vnd.api+json', ...headers });
    res.end(JSON.stringify(body));
  };
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = `/api/v2/${GROUP}/${collection}`;
      if (req.method === 'POST' && req.url === '/batch') {
        batches.push(Date.now());
        return json(res, 429, { errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }, { 'retry-after': '90' });
      }
      const one = records.find((r) => req.url?.startsWith(`${path}/${r.id[0]?.id}`));
      if (req.method === 'GET' && one) return json(res, 200, { [collection]: one });
      if (req.method === 'GET' && req.url?.startsWith(path)) {
        const q = new URL(req.url, 'http://x').searchParams;
        const skip = Number(q.get('$skip') ?? '0');
        const top = Number(q.get('$top') ?? '100');
        return json(res, 200, { [collection]: records.slice(skip, skip + top), pagination: { total: records.length } });
      }
      return json(res, 404, { errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] });
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, batches };
}

/**
 * Memory storage that records when each retry is due: a failed attempt's `retryAt` (with its job
 * type and message) and, once `recordEnqueued` is set, the `runAt` of jobs enqueued.
 */
function recordingStorage() {
  const inner = memoryAdapter();
  const retries: { type: string; message: string; at: Date }[] = [];
  const watch = { recordEnqueued: false };
  const storage: StorageAdapter = {
    ...inner,
    jobs: {
      ...inner.jobs,
      fail: async (id, worker, failure) => {
        const job = await inner.jobs.get(id);
        retries.push({ type: job?.type ?? '?', message: failure.error.message, at: failure.retryAt });
        return inner.jobs.fail(id, worker, failure);
      },
      enqueueMany: async (jobs: JobInput[]) => {
        if (watch.recordEnqueued) for (const j of jobs) retries.push({ type: j.type, message: 'enqueued', at: j.runAt ?? new Date() });
        return inner.jobs.enqueueMany(jobs);
      },
    },
  };
  return { storage, retries, watch };
}

/** The sync module on `storage`, its tenant's Connec! at `url` (the real port and client). */
function syncOn(storage: StorageAdapter, url: string, entity: AnyEntity, options: { pageSize?: number; batchSize?: number } = {}) {
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [entity] }), sync: { maxAttempts: 3, ...options } });
  const drain = () => createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
  return { sync, drain };
}

const person = (n: number) => ({
  id: [C(`p${n}`)],
  first_name: 'Jane',
  last_name: `Lee ${n}`,
  group_id: GROUP,
  channel_id: ORG_UID,
  updated_at: `2016-10-0${n}T00:36:23Z`,
});

function inboundContacts() {
  const created: string[] = [];
  const entity = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'inbound',
    toLocal: (p) => ({ name: p.last_name }),
    local: {
      create: async () => {
        created.push(`loc-${created.length + 1}`);
        return { id: `loc-${created.length}` };
      },
      update: async () => undefined,
    },
  });
  return { entity, created };
}

function outboundContacts(count: number) {
  return defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
    localId: (c: { id: string }) => c.id,
    local: {
      async *list() {
        for (let n = 1; n <= count; n++) yield { id: `loc-${n}`, last: `Lee ${n}` };
      },
    },
  });
}

describe('a batch call refused with 429 and Retry-After: 90', () => {
  it("a notified record's link-back is retried no earlier than 90 s later", async () => {
    const record = person(1);
    const { url, batches } = await refusingConnec('people', [record]);
    const { storage, retries } = recordingStorage();
    const { sync, drain } = syncOn(storage, url, inboundContacts().entity);
    await provisionGroup(storage);
    expect((await notifier(sync)({ people: [record] })).status).toBe(200);
    const before = Date.now();
    await drain();
    expect(batches.length).toBeGreaterThan(0);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]?.message).toMatch(/^Linking contacts p1 back to Connec! failed: /);
    // Connec! asked for 90 s; the test backoff is at most 20 ms.
    expect(retries[0]?.at.getTime()).toBeGreaterThanOrEqual(before + 89_000);
  });

  it('a link-back carrying sub-record ids: whichever job retries it is not due sooner', async () => {
    const record = {
      id: [C('i1')],
      transaction_number: 'INV-1',
      lines: [{ id: [C('l1')], quantity: 1 }, { id: [C('l2')], quantity: 2 }],
      group_id: GROUP,
      channel_id: ORG_UID,
      updated_at: '2016-10-04T00:36:23Z',
    };
    const { url, batches } = await refusingConnec('invoices', [record]);
    const { storage, retries, watch } = recordingStorage();
    const invoices = defineEntity({
      name: 'invoices',
      connec: 'invoices',
      direction: 'inbound',
      subRecords: ['lines'],
      toLocal: (r: Record<string, unknown>) => ({ number: r.transaction_number }),
      local: { create: async () => ({ id: 'inv-1', subIds: { lines: ['ln-a', 'ln-b'] } }), update: async () => undefined },
    });
    const { sync, drain } = syncOn(storage, url, invoices);
    await provisionGroup(storage);
    expect((await notifier(sync)({ invoices: [record] })).status).toBe(200);
    const before = Date.now();
    watch.recordEnqueued = true; // the replacement job that carries the sub-record ids
    await drain();
    expect(batches.length).toBeGreaterThan(0);
    expect(retries.length).toBeGreaterThan(0);
    for (const r of retries) expect(r.at.getTime() - before, `${r.type}: ${r.message}`).toBeGreaterThanOrEqual(89_000);
  });

  it("an imported record's link-back, handed to the inbox, does not post to Connec! again before 90 s", async () => {
    const { url, batches } = await refusingConnec('people', [person(1)]);
    const storage = memoryAdapter();
    const contacts = inboundContacts();
    const { sync, drain } = syncOn(storage, url, contacts.entity);
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await drain();
    expect(contacts.created).toHaveLength(1);
    // One refused call; nothing more until Connec!'s 90 s have passed.
    expect(batches).toHaveLength(1);
  });

  it('the outbound half of an import: the import is retried no earlier than 90 s later', async () => {
    const { url, batches } = await refusingConnec('people', []);
    const { storage, retries } = recordingStorage();
    const { sync, drain } = syncOn(storage, url, outboundContacts(1));
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    const before = Date.now();
    await drain();
    expect(batches.length).toBeGreaterThan(0);
    const imports = retries.filter((r) => r.type === 'sync.import');
    expect(imports.length).toBeGreaterThan(0);
    expect(imports[0]?.message).toMatch(/429|retryable/);
    expect(imports[0]?.at.getTime()).toBeGreaterThanOrEqual(before + 89_000);
  });

  it("a conflict winner's push: the record is retried no earlier than 90 s later", async () => {
    const { storage, retries } = recordingStorage();
    const h = await createHarness({ storage });
    await provisionGroup(h.storage);
    const seeded = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    await h.notify({ people: [seeded] });
    await h.drain();
    const [local] = [...h.app.contacts.values()];
    if (!local) throw new Error('contact not created');
    // Edited locally well after Connec!'s edit below: newest wins keeps the app's version.
    h.app.contacts.set(local.id, { ...local, jobTitle: 'CEO', updatedAt: new Date(Date.now() + 60_000) });
    const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Smith' });
    h.connec.batch = async () => {
      throw new RateLimitError('Connec! POST /batch failed with 429', { service: 'connec', status: 429, method: 'POST', url: 'http://connec.test/batch', retryAfterMs: 90_000 });
    };
    retries.length = 0;
    expect((await h.notify({ people: [edited] })).status).toBe(200);
    const before = Date.now();
    await h.drain();
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]?.message).toMatch(/Pushing the local version that won the conflict/);
    expect(retries[0]?.at.getTime()).toBeGreaterThanOrEqual(before + 89_000);
  });
});

describe('the rest of the run that met the refusal', () => {
  it('an import of six pages sends no more link-back calls once one was refused', async () => {
    const { url, batches } = await refusingConnec('people', [1, 2, 3, 4, 5, 6].map(person));
    const storage = memoryAdapter();
    const contacts = inboundContacts();
    const { sync, drain } = syncOn(storage, url, contacts.entity, { pageSize: 1 });
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await drain();
    expect(contacts.created).toHaveLength(6);
    // The refused call, and at most the next page's, already on its way while the refusal came
    // back (link-backs overlap the next page); each page posted its own before.
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThanOrEqual(2);
  });

  it('the outbound half of an import does not post its next batch', async () => {
    const { url, batches } = await refusingConnec('people', []);
    const storage = memoryAdapter();
    const { sync, drain } = syncOn(storage, url, outboundContacts(3), { batchSize: 1 });
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await drain();
    expect(batches).toHaveLength(1);
  });
});
