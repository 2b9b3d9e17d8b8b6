/**
 * A link-back batch answered 429 with `Retry-After` by a real HTTP Connec! (loopback), through
 * the real `connecPort` over @org/connec-client. The client does not throw for a status: it
 * answers one failed result per op, and the port kept only a message and a status, so the
 * worker never saw `retryAfterMs` and retried after its own short backoff (the older test of
 * this, in batch-partial-failures, uses a FakeConnec whose batch throws).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { C, GROUP, notifier, ORG_UID, provisionGroup, testRuntime, testTenant } from '../sync/harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

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
