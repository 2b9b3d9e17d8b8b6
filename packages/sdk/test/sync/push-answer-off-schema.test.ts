/**
 * Connec! applies a pushed create and answers 201 with a record that does not match the
 * collection's schema (a real HTTP Connec! on loopback, through the real `connecPort` over
 * @org/connec-client). The record exists in Connec! now: the push must link the Connec! id it
 * answered, not fail the record with that id unknown (then every retry posted it again).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, defineConnector, defineEntity, memoryAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { C, GROUP, ORG_UID, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/**
 * A Connec! whose batch answers each op with `answer(record, n)` as the record written: 201 for
 * a create (POST), 200 for an update (PUT of `.../people/<id>`, whose id it passes on). `posted`
 * holds each op's method and url.
 */
async function answeringConnec(answer: (record: Record<string, unknown>, n: number, id?: string) => Record<string, unknown>): Promise<{ url: string; posted: string[] }> {
  const posted: string[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method !== 'POST' || req.url !== '/batch') {
        res.writeHead(404).end(JSON.stringify({ errors: [{ status: '404', title: 'Resource not found' }] }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ops: { method: string; url: string; params: Record<string, Record<string, unknown>> }[] };
      const results = body.ops.map((op) => {
        const record = op.params.people ?? {};
        posted.push(`${op.method} ${op.url}`);
        const id = op.method === 'put' ? op.url.split('/').at(-1) : undefined;
        return { status: op.method === 'put' ? 200 : 201, body: { people: answer(record, posted.length, id) } };
      });
      res.end(JSON.stringify({ results }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posted };
}

function pushing(url: string) {
  const storage = memoryAdapter();
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: url } }]) };
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'outbound',
    toConnec: (c: { id: string; last: string }) => ({ first_name: 'Jane', last_name: c.last }),
    localId: (c: { id: string }) => c.id,
  });
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }) });
  return { storage, sync };
}

describe('a push Connec! applied but answered with a record off its schema', () => {
  it('links the Connec! id it answered: the next push updates that record instead of creating it again', async () => {
    const created = (record: Record<string, unknown>, n: number, id?: string) => ({
      ...record,
      id: [C(id ?? `p-new-${n}`), ...(Array.isArray(record.id) ? record.id.filter((e: { provider?: string }) => e.provider !== 'connec') : [])],
      first_name: 42, // a number where the schema has a string
      group_id: GROUP,
      channel_id: ORG_UID,
      updated_at: '2016-10-04T00:36:24Z',
    });
    const { url, posted } = await answeringConnec(created);
    const { storage, sync } = pushing(url);
    await provisionGroup(storage);
    const result = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { id: 'loc-1', last: 'Lee' } });
    expect(result).toMatchObject({ localId: 'loc-1', status: 'pushed', connecId: 'p-new-1', httpStatus: 201, error: null });
    const map = await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'loc-1' });
    expect(map).toMatchObject({ connecId: 'p-new-1', lastError: null });
    expect(map?.lastAppliedAt?.toISOString()).toBe('2016-10-04T00:36:24.000Z');
    // The next change is sent as an update of that record.
    const again = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { id: 'loc-1', last: 'Lee-Smith' } });
    expect(again).toMatchObject({ status: 'pushed', connecId: 'p-new-1', httpStatus: 200 });
    expect(posted).toEqual([`post /api/v2/${GROUP}/people/`, `put /api/v2/${GROUP}/people/p-new-1`]);
  });

  it('an answer without a usable Connec! id still fails the push (nothing to link)', async () => {
    const { url } = await answeringConnec((record) => ({ ...record, id: 42, first_name: 42 }));
    const { storage, sync } = pushing(url);
    await provisionGroup(storage);
    const result = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { id: 'loc-1', last: 'Lee' } });
    expect(result).toMatchObject({ status: 'failed', connecId: null, httpStatus: 201 });
    const map = await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'loc-1' });
    expect(map?.connecId ?? null).toBeNull();
  });
});
