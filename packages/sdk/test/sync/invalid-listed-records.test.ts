/**
 * A record in Connec! that does not match its collection's schema (another app wrote a number
 * where a string belongs) fails on its own: the import and the poll apply the rest of its
 * page, list it among the report's failures, and go on past it. Through the real Connec!
 * client against a loopback HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ConnecPort, createSyncModule, defineConnector, defineEntity, ImportFailedError, memoryAdapter, staticTenants } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { C, drainer, GROUP, notifier, ORG_UID, provisionGroup, silentLogger, TENANT, testRuntime, testTenant } from './harness.js';

const at = '2016-10-04T00:00:00Z';
const people = [
  { id: [C('p1')], first_name: 'Ann', last_name: 'One', group_id: GROUP, updated_at: at },
  { id: [C('p2')], first_name: 42, last_name: 'Odd', group_id: GROUP, updated_at: at },
  { id: [C('p3')], first_name: 'Bob', last_name: 'Three', group_id: GROUP, updated_at: at },
  { id: [C('p4')], first_name: 'Cy', last_name: 'Four', group_id: GROUP, updated_at: at },
];

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Connec!'s people of the group, `$skip`/`$top` paged, and a batch endpoint that accepts every op. */
async function startConnec(): Promise<{ url: string; listed: string[] }> {
  const listed: string[] = [];
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (url.pathname === `/api/v2/${GROUP}/people`) {
        listed.push(url.search);
        const skip = Number(url.searchParams.get('$skip') ?? 0);
        const top = Number(url.searchParams.get('$top') ?? 100);
        res.end(JSON.stringify({ people: people.slice(skip, skip + top), pagination: { total: people.length } }));
      } else if (url.pathname.startsWith(`/api/v2/${GROUP}/people/`)) {
        const id = decodeURIComponent(url.pathname.slice(`/api/v2/${GROUP}/people/`.length));
        const found = people.find((p) => p.id[0]?.id === id);
        if (found) res.end(JSON.stringify({ people: found }));
        else {
          res.statusCode = 404;
          res.end(JSON.stringify({ errors: [{ title: 'not found' }] }));
        }
      } else if (url.pathname === '/batch') {
        const ops = (JSON.parse(body) as { ops: { params: Record<string, unknown> }[] }).ops;
        res.end(JSON.stringify({ results: ops.map((op) => ({ status: 200, body: op.params })) }));
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ errors: [{ title: 'not found' }] }));
      }
    });
  });
  const listening = server;
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(listening.address() as AddressInfo).port}`, listed };
}

function setup(connecHost: string) {
  const storage = memoryAdapter();
  const created: string[] = [];
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'inbound',
    toLocal: (p) => ({ first: String(p.first_name) }),
    local: {
      create: async (data) => {
        created.push(data.first);
        return { id: `loc-${created.length}` };
      },
      update: async () => undefined,
    },
  });
  const tenant = { ...testTenant(), connec: { ...testTenant().connec, host: connecHost } };
  const clock = { offsetMs: 0 };
  const runtime = { tenants: staticTenants([tenant]), storage, logger: silentLogger, clock: () => new Date(Date.now() + clock.offsetMs), instanceId: 'test', fetch: globalThis.fetch };
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { pageSize: 2, maxAttempts: 2 } });
  const drain = drainer(createWorker(runtime, sync.jobs ?? {}), storage);
  return { storage, created, sync, drain, clock };
}

describe('a listed Connec! record that does not match its schema', () => {
  it('fails on its own: the import applies the rest of its page and the pages after it, and reports it', async () => {
    const connec = await startConnec();
    const s = setup(connec.url);
    await provisionGroup(s.storage);
    const report = await s.sync.api.importGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => {
      if (error instanceof ImportFailedError) return error.report;
      throw error;
    });
    expect(s.created).toEqual(['Ann', 'Bob', 'Cy']);
    expect(report.entities.contacts).toMatchObject({ fetched: 4, created: 3, failed: 1 });
    expect(report.failures).toEqual([
      expect.objectContaining({
        entity: 'contacts',
        direction: 'inbound',
        connecId: 'p2',
        message: expect.stringMatching(/^A "people" record Connec! sent does not match its schema \(Connec! list people: people\/1\/first_name: /),
      }),
    ]);
    // Paged past it: two pages of two, each read once.
    expect(connec.listed).toHaveLength(2);
    expect(await s.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p2' })).toBeNull();

    // The inbox reads it again from Connec! (never applies the invalid copy): still invalid,
    // it ends as a dead letter naming the field; once another app fixed it, a retry applies it.
    await s.drain();
    expect(s.created).toEqual(['Ann', 'Bob', 'Cy']);
    const dead = await s.sync.api.deadLetters({ tenant: TENANT });
    expect(dead.map((d) => [d.connecId, d.error?.message])).toEqual([['p2', expect.stringContaining('people/first_name')]]);
    (people[1] as { first_name: unknown }).first_name = 'Dee';
    expect(await s.sync.api.retryDeadLetter(dead[0]?.jobId ?? '')).toBe(true);
    await s.drain();
    expect(s.created).toEqual(['Ann', 'Bob', 'Cy', 'Dee']);

    // Invalid again: a full import a minute later stores a new re-read (the finished one keeps
    // its dedupe key, which is per minute).
    (people[1] as { first_name: unknown }).first_name = 44;
    const pending = async () => (await s.storage.jobs.counts()).pending;
    s.clock.offsetMs = 61_000;
    await s.sync.api.importGroup({ tenant: TENANT, groupId: GROUP, full: true }).catch(() => undefined);
    expect(await pending()).toBe(1);
  });
});

describe('a poll reading an invalid record without a readable id or updated_at', () => {
  it.each([
    ['id', (r: Record<string, unknown>) => ({ ...r, id: null })],
    ['updated_at', (r: Record<string, unknown>) => ({ ...r, updated_at: 'not a date' })],
  ])('(%s) reports it once and ends, when a page of one instant holds it (no re-reading the same page for ever)', async (field, spoil) => {
    const storage = memoryAdapter();
    const connec = new FakeConnec(ORG_UID);
    let calls = 0;
    // As connecPort hands it over: kept in place as Connec! sent it (its id unreadable), marked.
    const port: ConnecPort = {
      listPage: async (groupId, collection, options) => {
        if (++calls > 30) throw new Error(`listPage called ${calls} times`);
        const page = await connec.listPage(groupId, collection, options);
        const invalid = new Map<number, string>();
        const records = page.records.map((r, i) => {
          if (r.last_name !== 'Bad') return r;
          invalid.set(i, `Connec! list people: people/${i}/${field}: invalid`);
          return spoil(r);
        });
        return { ...page, records, invalid };
      },
      fetch: (g, c, id) => connec.fetch(g, c, id),
      batch: (ops) => connec.batch(ops),
    };
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p) => ({ last: String(p.last_name) }),
      local: { create: async (d) => ({ id: `loc-${d.last}` }), update: async () => undefined },
    });
    const sync = createSyncModule(testRuntime(storage), { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => port, pageSize: 2 } });
    await provisionGroup(storage);
    for (const [id, name] of [
      ['p1', 'One'],
      ['p2', 'Two'],
      ['p3', 'Three'],
    ] as const) {
      connec.seed(GROUP, 'people', { last_name: name }, id);
    }
    expect((await sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).status).toBe('complete');

    // A bulk change stamps every record with one instant; one of them is now unreadable.
    connec.seed(GROUP, 'people', { last_name: 'Bad' }, 'p9');
    connec.setClock('2099-01-01T00:00:00.000Z');
    for (const id of ['p1', 'p9', 'p2', 'p3']) connec.edit(GROUP, 'people', id, {});
    const at = connec.find(GROUP, 'people', 'p3')?.updated_at;
    for (const id of ['p1', 'p9', 'p2']) connec.edit(GROUP, 'people', id, { updated_at: at });
    calls = 0;
    const report = await sync.api.pollGroup({ tenant: TENANT, groupId: GROUP }).catch((error: unknown) => {
      if (error instanceof ImportFailedError) return error.report;
      throw error;
    });
    expect(report.failures).toEqual([expect.objectContaining({ message: expect.stringContaining(`/${field}: invalid`) })]);
    expect(calls).toBeLessThan(10);
  });
});

describe('importSince and a record read again after an invalid notification', () => {
  it('a record created before importSince is not created, whether its notification was valid or not', async () => {
    const storage = memoryAdapter();
    const created: string[] = [];
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p) => ({ last: String(p.last_name) }),
      local: {
        create: async (d) => {
          created.push(d.last);
          return { id: `loc-${d.last}` };
        },
        update: async () => undefined,
      },
    });
    const connec = new FakeConnec(ORG_UID);
    const runtime = testRuntime(storage);
    const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec, maxAttempts: 2 } });
    await provisionGroup(storage, GROUP, { sync: { importSince: '2020-01-01T00:00:00Z' } });
    // Two records created in 2016, edited today; the second one's notification is invalid.
    connec.seed(GROUP, 'people', { last_name: 'Valid', created_at: '2016-01-01T00:00:00Z', updated_at: '2099-01-01T00:00:00Z' }, 'p1');
    connec.seed(GROUP, 'people', { last_name: 'Odd', created_at: '2016-01-01T00:00:00Z', updated_at: '2099-01-01T00:00:00Z' }, 'p2');
    const answer = await notifier(sync)({ people: [connec.find(GROUP, 'people', 'p1'), { ...connec.find(GROUP, 'people', 'p2'), first_name: 42 }] });
    expect(answer.status).toBe(200);
    await drainer(createWorker(runtime, sync.jobs ?? {}), storage)();
    expect(created).toEqual([]);
    expect(sync.api.counters()).toMatchObject({ applied: 0 });
  });
});
