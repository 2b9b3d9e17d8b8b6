/**
 * Connec! refusing a batch call as a whole with 429 and `Retry-After: 90` (a real HTTP Connec! on
 * loopback, through the real `connecPort` over @org/connec-client, except for the conflict
 * winner, which uses the FakeConnec): whatever the call was for, its retry waits the 90 s.
 * The client does not throw for a status; it answers one failed result per op, and the port
 * kept only a message, so every path below retried after its own short backoff (or at once).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, RateLimitError, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { C, createHarness, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

describe('a notified record', () => {
  const record = { id: [C('p1')], first_name: 'Jane', last_name: 'Lee', group_id: GROUP, channel_id: ORG_UID, updated_at: '2016-10-04T00:36:23Z' };

  describe('a link-back batch refused by Connec! with 429 Retry-After: 90 (real HTTP)', () => {
    it('is retried no earlier than 90 s later', async () => {
      const batches: unknown[] = [];
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          if (req.method === 'POST' && req.url === '/batch') {
            batches.push(JSON.parse(body));
            res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
            res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
            return;
          }
          if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people/p1`)) {
            res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
            res.end(JSON.stringify({ people: record }));
            return;
          }
          res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
        });
      });
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

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
      const base = testTenant();
      const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
      let seq = 0;
      const contacts = defineEntity({
        name: 'contacts',
        connec: 'people',
        direction: 'inbound',
        toLocal: (p) => ({ name: p.last_name }),
        local: { create: async () => ({ id: `loc-${++seq}` }), update: async () => undefined },
      });
      // No connecPort: the real one, over @org/connec-client.
      const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { maxAttempts: 3 } });
      await provisionGroup(storage);
      const res = await notifier(sync)({ people: [record] });
      expect(res.status).toBe(200);
      const before = Date.now();
      await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
      expect(batches.length).toBeGreaterThan(0);
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]?.message).toMatch(/^Linking contacts p1 back to Connec! failed: /);
      // Connec! asked for 90 s; the test backoff is at most 20 ms.
      expect(failures[0]?.retryAt.getTime()).toBeGreaterThanOrEqual(before + 89_000);
    });
  });
});

describe('a record whose link-back carries sub-record ids', () => {
  const record = {
    id: [C('i1')],
    transaction_number: 'INV-1',
    lines: [{ id: [C('l1')], quantity: 1 }, { id: [C('l2')], quantity: 2 }],
    group_id: GROUP,
    channel_id: ORG_UID,
    updated_at: '2016-10-04T00:36:23Z',
  };

  describe('a link-back with sub-record ids refused with 429 Retry-After: 90 (real HTTP)', () => {
    it('is retried no earlier than 90 s later', async () => {
      const batches: unknown[] = [];
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          if (req.method === 'POST' && req.url === '/batch') {
            batches.push(JSON.parse(body));
            res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
            res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
            return;
          }
          if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/invoices/i1`)) {
            res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
            res.end(JSON.stringify({ invoices: record }));
            return;
          }
          res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
        });
      });
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      const inner = memoryAdapter();
      let draining = false;
      /** When each retry of the record is due: a failed attempt's retryAt, or a replacement job's runAt. */
      const retries: { how: string; at: Date }[] = [];
      const storage: StorageAdapter = {
        ...inner,
        jobs: {
          ...inner.jobs,
          fail: async (id, worker, failure) => {
            retries.push({ how: `fail: ${failure.error.message}`, at: failure.retryAt });
            return inner.jobs.fail(id, worker, failure);
          },
          enqueueMany: async (jobs) => {
            if (draining) for (const j of jobs) retries.push({ how: `replacement ${j.type}`, at: j.runAt ?? new Date() });
            return inner.jobs.enqueueMany(jobs);
          },
        },
      };
      const base = testTenant();
      const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
      const invoices = defineEntity({
        name: 'invoices',
        connec: 'invoices',
        direction: 'inbound',
        subRecords: ['lines'],
        toLocal: (r: Record<string, unknown>) => ({ number: r.transaction_number }),
        local: { create: async () => ({ id: 'inv-1', subIds: { lines: ['ln-a', 'ln-b'] } }), update: async () => undefined },
      });
      const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [invoices] }), sync: { maxAttempts: 3 } });
      await provisionGroup(storage);
      const res = await notifier(sync)({ invoices: [record] });
      expect(res.status).toBe(200);
      const before = Date.now();
      draining = true;
      await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
      expect(batches.length).toBeGreaterThan(0);
      expect(retries.length).toBeGreaterThan(0);
      // Connec! asked for 90 s: whichever job retries the link-back is not due sooner.
      for (const r of retries) expect(r.at.getTime() - before, r.how).toBeGreaterThanOrEqual(89_000);
    });
  });
});

describe('an imported record', () => {
  const record = { id: [C('p1')], first_name: 'Jane', last_name: 'Lee', group_id: GROUP, channel_id: ORG_UID, updated_at: '2016-10-04T00:36:23Z' };

  describe('an import whose link-back call is refused with 429 Retry-After: 90 (real HTTP)', () => {
    it('does not post to Connec! again before 90 s', async () => {
      const batches: number[] = [];
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          if (req.method === 'POST' && req.url === '/batch') {
            batches.push(Date.now());
            res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
            res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
            return;
          }
          if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people/p1`)) {
            res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
            res.end(JSON.stringify({ people: record }));
            return;
          }
          if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people`)) {
            const skip = Number(new URL(req.url, 'http://x').searchParams.get('$skip') ?? '0');
            res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
            res.end(JSON.stringify({ people: skip === 0 ? [record] : [], pagination: { total: 1 } }));
            return;
          }
          res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
        });
      });
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      const storage = memoryAdapter();
      const base = testTenant();
      const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
      let seq = 0;
      const contacts = defineEntity({
        name: 'contacts',
        connec: 'people',
        direction: 'inbound',
        toLocal: (p) => ({ name: p.last_name }),
        local: { create: async () => ({ id: `loc-${++seq}` }), update: async () => undefined },
      });
      const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { maxAttempts: 3 } });
      await provisionGroup(storage);
      await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
      await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
      expect(seq).toBe(1);
      expect(batches.length).toBeGreaterThan(0);
      // One refused call; nothing more until Connec!'s 90 s have passed.
      expect(batches.map((t) => t - (batches[0] ?? 0))).toEqual([0]);
    });
  });
});

describe('the outbound half of an import', () => {
  describe('an import push refused with 429 Retry-After: 90 (real HTTP)', () => {
    it('the import is retried no earlier than 90 s later', async () => {
      const batches: unknown[] = [];
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          if (req.method === 'POST' && req.url === '/batch') {
            batches.push(JSON.parse(body));
            res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
            res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
            return;
          }
          if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people`)) {
            res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
            res.end(JSON.stringify({ people: [], pagination: { total: 0 } }));
            return;
          }
          res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
        });
      });
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      const inner = memoryAdapter();
      const failures: { type: string; message: string; retryAt: Date }[] = [];
      const storage: StorageAdapter = {
        ...inner,
        jobs: {
          ...inner.jobs,
          fail: async (id, worker, failure) => {
            const job = await inner.jobs.get(id);
            failures.push({ type: job?.type ?? '?', message: failure.error.message, retryAt: failure.retryAt });
            return inner.jobs.fail(id, worker, failure);
          },
        },
      };
      const base = testTenant();
      const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
      const contacts = defineEntity({
        name: 'contacts',
        connec: 'people',
        direction: 'outbound',
        toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
        localId: (c: { id: string }) => c.id,
        local: {
          async *list() {
            yield { id: 'loc-1', last: 'Lee' };
          },
        },
      });
      const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { maxAttempts: 3 } });
      await provisionGroup(storage);
      await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
      const before = Date.now();
      await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
      expect(batches.length).toBeGreaterThan(0);
      const imports = failures.filter((f) => f.type === 'sync.import');
      expect(imports.length).toBeGreaterThan(0);
      expect(imports[0]?.message).toMatch(/429|retryable/);
      // Connec! asked for 90 s; the test backoff is at most 20 ms.
      expect(imports[0]?.retryAt.getTime()).toBeGreaterThanOrEqual(before + 89_000);
    });
  });
});

describe('a conflict winner', () => {
  describe('a winner push refused with 429 Retry-After: 90', () => {
    it('the record is retried no earlier than 90 s later', async () => {
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
      const h = await createHarness({ storage });
      await provisionGroup(h.storage);
      const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
      await h.notify({ people: [person] });
      await h.drain();
      const [local] = [...h.app.contacts.values()];
      if (!local) throw new Error('contact not created');
      // Edited locally well after Connec!'s edit below: newest wins keeps the app's version.
      h.app.contacts.set(local.id, { ...local, jobTitle: 'CEO', updatedAt: new Date(Date.now() + 60_000) });
      const edited = h.connec.edit(GROUP, 'people', 'p1', { last_name: 'Smith' });
      h.connec.batch = async () => {
        throw new RateLimitError('Connec! POST /batch failed with 429', { service: 'connec', status: 429, method: 'POST', url: 'http://connec.test/batch', retryAfterMs: 90_000 });
      };
      failures.length = 0;
      expect((await h.notify({ people: [edited] })).status).toBe(200);
      const before = Date.now();
      await h.drain();
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]?.message).toMatch(/Pushing the local version that won the conflict/);
      expect(failures[0]?.retryAt.getTime()).toBeGreaterThanOrEqual(before + 89_000);
    });
  });
});

describe('the rest of the run that met the refusal', () => {
  it('an import of six pages sends no more link-back calls once one was refused with 429 and Retry-After: 90', async () => {
    const records = [1, 2, 3, 4, 5, 6].map((n) => ({
      id: [C(`p${n}`)],
      first_name: 'Jane',
      last_name: `Lee ${n}`,
      group_id: GROUP,
      channel_id: ORG_UID,
      updated_at: `2016-10-0${n}T00:36:23Z`,
    }));
    const batches: number[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/batch') {
          batches.push(Date.now());
          res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
          res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
          return;
        }
        const one = records.find((r) => req.url?.startsWith(`/api/v2/${GROUP}/people/${r.id[0]?.id}`));
        if (req.method === 'GET' && one) {
          res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ people: one }));
          return;
        }
        if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people`)) {
          const q = new URL(req.url, 'http://x').searchParams;
          const skip = Number(q.get('$skip') ?? '0');
          const top = Number(q.get('$top') ?? '100');
          res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ people: records.slice(skip, skip + top), pagination: { total: records.length } }));
          return;
        }
        res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
        res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const storage = memoryAdapter();
    const base = testTenant();
    const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
    let seq = 0;
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p) => ({ name: p.last_name }),
      local: { create: async () => ({ id: `loc-${++seq}` }), update: async () => undefined },
    });
    const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { maxAttempts: 3, pageSize: 1 } });
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
    expect(seq).toBe(6);
    // The refused call, and at most the next page's, already on its way while the refusal came
    // back (link-backs overlap the next page); each page posted its own before.
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThanOrEqual(2);
  });

  it('the outbound half of an import does not post its next batch before the 90 s of a 429', async () => {
    const batches: number[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/batch') {
          batches.push(Date.now());
          res.writeHead(429, { 'content-type': 'application/vnd.api+json', 'retry-after': '90' });
          res.end(JSON.stringify({ errors: [{ status: '429', code: 'rate-limited', title: 'Too many requests' }] }));
          return;
        }
        if (req.method === 'GET' && req.url?.startsWith(`/api/v2/${GROUP}/people`)) {
          res.writeHead(200, { 'content-type': 'application/vnd.api+json' });
          res.end(JSON.stringify({ people: [], pagination: { total: 0 } }));
          return;
        }
        res.writeHead(404, { 'content-type': 'application/vnd.api+json' });
        res.end(JSON.stringify({ errors: [{ status: '404', code: 'resource-not-found', title: 'Resource not found' }] }));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const storage = memoryAdapter();
    const base = testTenant();
    const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'outbound',
      toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
      localId: (c: { id: string }) => c.id,
      local: {
        async *list() {
          yield { id: 'loc-1', last: 'Lee' };
          yield { id: 'loc-2', last: 'Roe' };
          yield { id: 'loc-3', last: 'Poe' };
        },
      },
    });
    const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { maxAttempts: 3, batchSize: 1 } });
    await provisionGroup(storage);
    await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, backoff: { baseMs: 2, maxMs: 20 } });
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.map((t) => t - (batches[0] ?? 0))).toEqual([0]);
  });
});
