/**
 * `mno.sync` refusing what it cannot do before changing anything: an already-aborted push sends
 * and records nothing (a real HTTP Connec! on loopback, the real `connecPort`), and a job is not
 * enqueued for a tenant that is not in the list (it would only wait, then be dead-lettered).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSyncModule, memoryAdapter, staticTenants, SyncError } from '@org/maestrano-sdk';
import { afterEach, expect, it } from 'vitest';
import { buildConnector, createHarness, GROUP, LocalApp, provisionGroup, TENANT, testRuntime, testTenant } from './harness.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A Connec! that answers every request 500 and counts them. */
async function countingConnec(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"title":"down"}]}'));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

it('push and pushMany with an already-aborted signal reject with SyncError, send nothing and record nothing', async () => {
  const connec = await countingConnec();
  const storage = memoryAdapter();
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: connec.url } }]) };
  const sync = createSyncModule(runtime, { connector: buildConnector(new LocalApp()) });
  await provisionGroup(storage);
  const contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: null, updatedAt: new Date(0) };
  const signal = AbortSignal.abort();

  const one = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact, signal }).catch((e: unknown) => e);
  expect(one).toBeInstanceOf(SyncError);
  expect(one).toMatchObject({ code: 'sync_failed', message: expect.stringMatching(/aborted/), cause: signal.reason });
  const many = await sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: [contact], signal }).catch((e: unknown) => e);
  expect(many).toBeInstanceOf(SyncError);

  // Not a push failure of the record: no id map (none with a failure noted), no request.
  expect(await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'per-1' })).toBeNull();
  expect(sync.api.counters()).toMatchObject({ pushFailed: 0 });
  expect(connec.requests()).toBe(0);

  // From JavaScript, records that are not a list: a SyncError, not "records is not iterable".
  const notList = await sync.api.pushMany({ tenant: TENANT, groupId: GROUP, entity: 'contacts', records: contact as never }).catch((e: unknown) => e);
  expect(notList).toBeInstanceOf(SyncError);
  expect((notList as SyncError).message).toBe('pushMany takes records as an array, not object');
});

it('enqueueImport and enqueuePoll refuse an unknown tenant or a runAt that is not a date, and enqueue nothing', async () => {
  const h = await createHarness();
  await provisionGroup(h.storage);
  // importGroup refuses the typo at once; the durable form enqueued a job that waited for the
  // tenant (every 10 minutes, every attempt) and was dead-lettered hours later.
  await expect(h.sync.api.importGroup({ tenant: 'defualt', groupId: GROUP })).rejects.toThrow(SyncError);
  await expect(h.sync.api.enqueueImport({ tenant: 'defualt', groupId: GROUP })).rejects.toThrow(
    new SyncError('Cannot enqueue an import for tenant "defualt": unknown tenant (nothing was enqueued)'),
  );
  await expect(h.sync.api.enqueuePoll({ tenant: 'defualt', groupId: GROUP })).rejects.toThrow(
    new SyncError('Cannot enqueue a poll for tenant "defualt": unknown tenant (nothing was enqueued)'),
  );
  for (const runAt of ['2030-01-01', new Date(Number.NaN)]) {
    await expect(h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP, runAt: runAt as Date })).rejects.toThrow(
      new SyncError('enqueuePoll: runAt must be a valid Date (nothing was enqueued)'),
    );
  }
  expect(await h.storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
  // The tenant as listed still works.
  expect((await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP })).created).toBe(true);
});

it('a push whose signal is aborted after the call began but before its request left sends nothing and records no push failure', async () => {
  const connec = await countingConnec();
  const base = memoryAdapter();
  const controller = new AbortController();
  // The signal fires during the storage round trip just before the batch request (a caller's
  // `AbortSignal.timeout` running out there): the request never leaves.
  const insertMany: typeof base.idMaps.insertMany = async (maps) => {
    const stored = await base.idMaps.insertMany(maps);
    controller.abort(new Error('caller gave up'));
    return stored;
  };
  const storage = { ...base, idMaps: { ...base.idMaps, insertMany } };
  const tenant = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...tenant, connec: { ...tenant.connec, host: connec.url } }]) };
  const sync = createSyncModule(runtime, { connector: buildConnector(new LocalApp()) });
  await provisionGroup(storage);
  const contact = { id: 'per-2', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: null, updatedAt: new Date(0) };

  const outcome = await sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: contact, signal: controller.signal }).catch((e: unknown) => e);
  expect(outcome).toBeInstanceOf(SyncError);
  expect(connec.requests()).toBe(0);
  expect(sync.api.counters()).toMatchObject({ pushFailed: 0 });
  expect((await storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { localId: 'per-2' }))?.lastError ?? null).toBeNull();
});

it('a push for a tenant, a group or a company the app does not have says which, and sends nothing', async () => {
  const connec = await countingConnec();
  const storage = memoryAdapter();
  const base = testTenant();
  const runtime = { ...testRuntime(storage), tenants: staticTenants([{ ...base, connec: { ...base.connec, host: connec.url } }]) };
  const sync = createSyncModule(runtime, { connector: buildConnector(new LocalApp()) });
  const contact = { id: 'per-1', firstName: 'Ada', lastName: 'Lovelace', jobTitle: null, email: null, companyId: null, updatedAt: new Date(0) };
  const push = (tenant: string) => sync.api.push({ tenant, groupId: GROUP, entity: 'contacts', record: contact }).catch((e: unknown) => e);

  expect(await push('defualt')).toEqual(new SyncError('Unknown tenant "defualt": not one of the marketplaces this app serves'));
  // No user of the group has signed in: its company does not exist yet.
  expect(await push(TENANT)).toEqual(
    new SyncError(`Unknown group "${GROUP}" (tenant "${TENANT}"): the company is created at its first single sign-on, and none of its users has signed in yet`),
  );
  await provisionGroup(storage);
  await storage.groups.cancel(TENANT, GROUP);
  expect(await push(TENANT)).toEqual(new SyncError(`Group "${GROUP}" (tenant "${TENANT}") is cancelled: its company was deleted on Maestrano, nothing of it is synchronized`));
  expect(connec.requests()).toBe(0);
});
