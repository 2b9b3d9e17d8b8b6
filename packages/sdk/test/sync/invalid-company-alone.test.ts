/**
 * The singular `company` that does not match its schema (another app wrote its email as a plain
 * string where Connec! keeps `{address}`) fails on its own, as a listed record of any other
 * collection does: the import reports it and goes on with the entities after it, instead of
 * stopping the whole import of the group at the company. Through the real Connec! client against
 * a loopback HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, defineConnector, defineEntity, ImportFailedError, memoryAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, expect, it } from 'vitest';
import { C, GROUP, provisionGroup, silentLogger, TENANT, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const at = '2016-10-04T00:00:00Z';
const company = { id: [C('c1')], name: 'Acme', timezone: 'Australia/Sydney', email: 'hi@acme.io', group_id: GROUP, updated_at: at };
const people = [{ id: [C('p1')], first_name: 'Ann', last_name: 'One', group_id: GROUP, updated_at: at }];

async function startConnec(): Promise<string> {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (url.pathname === `/api/v2/${GROUP}/company`) return res.end(JSON.stringify({ company }));
      if (url.pathname === `/api/v2/${GROUP}/people`) return res.end(JSON.stringify({ people, pagination: { total: people.length } }));
      if (url.pathname === '/batch') {
        const ops = (JSON.parse(body) as { ops: { params: Record<string, unknown> }[] }).ops;
        return res.end(JSON.stringify({ results: ops.map((op) => ({ status: 200, body: op.params })) }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ errors: [{ title: 'not found' }] }));
    });
  });
  const listening = server;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
}

it('an invalid company fails on its own; the import goes on with the entities after it', async () => {
  const host = await startConnec();
  const storage = memoryAdapter();
  const created: string[] = [];
  const inbound = (name: string, connec: string) =>
    defineEntity({
      name,
      connec,
      direction: 'inbound',
      toLocal: (r: Record<string, unknown>) => ({ label: String(r.name ?? r.first_name) }),
      local: {
        create: async (data: { label: string }) => {
          created.push(`${name}:${data.label}`);
          return { id: `${name}-${created.length}` };
        },
        update: async () => undefined,
      },
    } as never);
  const tenant = { ...testTenant(), connec: { ...testTenant().connec, host } };
  const runtime = { tenants: staticTenants([tenant]), storage, logger: silentLogger, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [inbound('companies', 'company'), inbound('contacts', 'people')] }) });
  await provisionGroup(storage);

  const report = await sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => {
    if (error instanceof ImportFailedError) return error.report;
    throw error;
  });
  expect(created).toEqual(['contacts:Ann']);
  expect(report.entities.contacts).toMatchObject({ fetched: 1, created: 1 });
  expect(report.entities.companies).toMatchObject({ failed: 1 });
  expect(report.failures).toEqual([
    expect.objectContaining({ entity: 'companies', connecId: 'c1', message: expect.stringMatching(/does not match its schema .*company\/email/) }),
  ]);
});
