/**
 * A record whose mapped payload the Connec! client refuses before sending (it does not match
 * the collection's schema: `email` given as a string where Connec! people carry `{address}`,
 * PROTOCOL §6.10) fails alone, like a throwing `toConnec`: the other records of the same batch
 * call are still sent and linked (a real HTTP Connec! on loopback, the real `connecPort`).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, defineConnector, defineEntity, ImportFailedError, memoryAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, expect, it } from 'vitest';
import { C, GROUP, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A Connec! whose batch endpoint creates every `post` op (201, the record with its Connec! id). */
async function acceptingConnec(): Promise<{ url: string; posted: unknown[] }> {
  const posted: unknown[] = [];
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      res.writeHead(req.method === 'POST' && req.url === '/batch' ? 200 : 404, { 'content-type': 'application/vnd.api+json' });
      if (req.method !== 'POST' || req.url !== '/batch') return res.end(JSON.stringify({ errors: [{ status: '404', title: 'Resource not found' }] }));
      const { ops } = JSON.parse(text) as { ops: { params: { people: Record<string, unknown> & { id?: unknown[] } } }[] };
      const results = ops.map(({ params }) => {
        posted.push(params.people);
        const record = { ...params.people, id: [C(randomUUID()), ...(params.people.id ?? [])], group_id: GROUP };
        return { status: 201, body: { people: record } };
      });
      res.end(JSON.stringify({ results }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posted };
}

it('a record the client refuses as input fails alone; the others of its batch call are pushed', async () => {
  const { url, posted } = await acceptingConnec();
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    // Contact 2 carries its email as a plain string: not the `{address}` object of people.
    toConnec: (c: { id: string; last: string; email?: string }) => ({ last_name: c.last, ...(c.email ? { email: c.email } : {}) }),
    localId: (c: { id: string }) => c.id,
  } as never);
  const storage = memoryAdapter();
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }) });
  await provisionGroup(storage);

  const results = await sync.api.pushMany({
    tenant: TENANT,
    groupId: GROUP,
    entity: 'contacts',
    records: [{ id: 'loc-1', last: 'Lee' }, { id: 'loc-2', last: 'Kim', email: 'kim@x.io' }, { id: 'loc-3', last: 'Park' }],
  } as never);

  expect(results.map((r) => [r.localId, r.status])).toEqual([
    ['loc-1', 'pushed'],
    ['loc-2', 'failed'],
    ['loc-3', 'pushed'],
  ]);
  expect(results[1]).toMatchObject({ code: 'mapper_error', error: expect.stringMatching(/email/) });
  expect(posted.map((p) => (p as { last_name: string }).last_name)).toEqual(['Lee', 'Park']);
  // The two pushed records are linked to their Connec! ids.
  for (const localId of ['loc-1', 'loc-3']) {
    const map = await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId });
    expect(map?.connecId).toEqual(expect.any(String));
  }
});

it("an import's outbound half reports such a record as failed and completes (it fails again on every retry)", async () => {
  const { url, posted } = await acceptingConnec();
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    toConnec: (c: { id: string; last: string; email?: string }) => ({ last_name: c.last, ...(c.email ? { email: c.email } : {}) }),
    localId: (c: { id: string }) => c.id,
    local: {
      async *list() {
        yield [{ id: 'loc-1', last: 'Lee' }, { id: 'loc-2', last: 'Kim', email: 'kim@x.io' }, { id: 'loc-3', last: 'Park' }];
      },
    },
  } as never);
  const storage = memoryAdapter();
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }) });
  await provisionGroup(storage);

  const report = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => {
    if (error instanceof ImportFailedError) return error.report;
    throw error;
  });
  expect(report.status).toBe('complete');
  expect(report.entities.contacts).toMatchObject({ pushed: 2, failed: 1 });
  expect(report.failures).toEqual([expect.objectContaining({ localId: 'loc-2', code: 'mapper_error' })]);
  expect(posted.map((p) => (p as { last_name: string }).last_name)).toEqual(['Lee', 'Park']);
});
