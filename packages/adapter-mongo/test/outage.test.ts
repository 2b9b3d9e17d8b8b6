import { MongoClient } from 'mongodb';
import { StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MongoStorageAdapter, mongoAdapter } from '../src/index.js';
import { FerretDbServer } from './ferretdb.js';

// Stops and restarts a FerretDB process of this file's own (same port, same data): every
// operation fails with a StorageError naming it while the server is down, nothing accepted
// before is lost, and the same adapter works again once the server is back.
const binary = inject('ferretdbBinary');
const external = inject('mongoBackend') === 'mongo-mongodb';
const reason = binary ? null : 'ferretdb binary not found (run scripts/install-ferretdb.sh)';
if (reason) {
  if (process.env['CI'] && !external) throw new Error(`outage.test.ts: ${reason}; CI must run it`);
  console.warn(`[adapter-mongo] outage.test.ts skipped: ${reason}`);
}

describe.skipIf(reason !== null)('database outage (FerretDB process stopped and restarted)', () => {
  let server: FerretDbServer;
  let adapter: MongoStorageAdapter;

  beforeAll(async () => {
    server = await FerretDbServer.launch(binary ?? '');
    adapter = mongoAdapter(
      { url: server.url, dbName: 'outage', clientOptions: { serverSelectionTimeoutMS: 1_500, connectTimeoutMS: 1_000 } },
      { clock: () => new Date(Date.UTC(2031, 0, 1)) },
    );
    await adapter.ensureIndexes();
  });
  afterAll(async () => {
    await adapter?.close();
    await server?.destroy();
  });

  it('fails every repository with StorageError while down and works again after a restart', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1' });
    const { id } = await adapter.jobs.enqueue({ type: 'sync', payload: { n: 1 }, dedupeKey: 'd-1' });
    expect(await adapter.locks.acquire('lock', 'a', 60_000)).toBe(true);

    await server.stop();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const attempts: [string, () => Promise<unknown>][] = [
        ['groups.claim', () => adapter.groups.claim('t', 'cld-1', { owner: 'o', ttlMs: 1_000 })],
        ['groups.list', () => adapter.groups.list('t')],
        ['users.setStatus', () => adapter.users.setStatus('t', 'usr-1', 'blocked')],
        ['idMaps.update', () => adapter.idMaps.update(scope, { connecId: 'c-1' }, { lastPushedHash: 'h' })],
        ['idMaps.findManyByConnecIds', () => adapter.idMaps.findManyByConnecIds(scope, ['c-1'])],
        ['cursors.get', () => adapter.cursors.get({ ...scope, kind: 'import' })],
        ['jobs.enqueueMany', () => adapter.jobs.enqueueMany([{ type: 'x', payload: null }])],
        ['jobs.complete', () => adapter.jobs.complete(id, 'w')],
        ['jobs.counts', () => adapter.jobs.counts()],
        ['ledger.get', () => adapter.ledger.get('k')],
        ['replay.purgeExpired', () => adapter.replay.purgeExpired()],
        ['locks.release', () => adapter.locks.release('lock', 'a')],
      ];
      const errors = await Promise.all(attempts.map(([, run]) => run().then(() => null, (err: unknown) => err)));
      errors.forEach((err, i) => {
        expect(err).toBeInstanceOf(StorageError);
        expect(err).not.toBeInstanceOf(StorageConflictError);
        expect(err).toMatchObject({ adapterId: 'mongo', code: 'storage_error', operation: attempts[i]?.[0] });
        expect((err as StorageError).cause).toBeInstanceOf(Error);
      });
    } finally {
      await server.start();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);

    // Same adapter, same client: everything accepted before the outage is still there.
    expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toMatchObject({ connecId: 'c-1', lastPushedHash: null });
    expect(await adapter.jobs.enqueue({ type: 'sync', payload: null, dedupeKey: 'd-1' })).toEqual({ id, created: false });
    expect(await adapter.locks.acquire('lock', 'b', 60_000)).toBe(false);
    const [job] = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000 });
    expect(job).toMatchObject({ id, payload: { n: 1 }, attempts: 1 });
    expect(await adapter.jobs.complete(id, 'w')).toBe(true);
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 1, dead: 0 });
  });
});

// The server is down when the adapter runs its first operation: the driver's automatic
// connect fails and leaves the client's topology closed. The adapter must reconnect once the
// server is back (its own client and a user's never-connected client alike), and must not
// reopen a client its owner closed.
describe.skipIf(reason !== null)('database down at the first operation, then up (FerretDB)', () => {
  let server: FerretDbServer;
  const clients: MongoClient[] = [];
  const adapters: MongoStorageAdapter[] = [];
  const options = { serverSelectionTimeoutMS: 1_500, connectTimeoutMS: 1_000 };

  beforeAll(async () => {
    server = await FerretDbServer.launch(binary ?? '');
    const setup = mongoAdapter({ url: server.url, dbName: 'late', clientOptions: options });
    await setup.ensureIndexes();
    await setup.close();
    await server.stop();
  });
  afterAll(async () => {
    for (const adapter of adapters) await adapter.close().catch(() => undefined);
    for (const client of clients) await client.close().catch(() => undefined);
    await server?.destroy();
  });

  it('fails with StorageError while down, then works without a restart of the app', async () => {
    const clock = { clock: () => new Date(Date.UTC(2031, 0, 1)) };
    const own = mongoAdapter({ url: server.url, dbName: 'late', clientOptions: options }, clock);
    const userClient = new MongoClient(server.url, options);
    clients.push(userClient);
    const borrowed = mongoAdapter(userClient.db('late'), clock);
    adapters.push(own, borrowed);

    for (const [operation, attempt] of [
      ['jobs.counts', () => own.jobs.counts()],
      ['locks.acquire', () => own.locks.acquire('k', 'a', 60_000)],
      ['jobs.enqueue', () => borrowed.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd' })],
      ['adapter.ensureIndexes', () => borrowed.ensureIndexes()],
      ['jobs.counts', () => borrowed.jobs.counts()],
    ] as const) {
      const err = await (attempt as () => Promise<unknown>)().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ adapterId: 'mongo', operation });
    }

    await server.start();
    expect(await own.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    const first = await own.jobs.enqueue({ type: 'x', payload: { n: 1 }, dedupeKey: 'd' });
    expect(first.created).toBe(true);
    await borrowed.ensureIndexes();
    expect(await borrowed.jobs.enqueue({ type: 'x', payload: { n: 2 }, dedupeKey: 'd' })).toEqual({ id: first.id, created: false });
    expect(await borrowed.locks.acquire('k', 'b', 60_000)).toBe(true);

    // Closed on purpose: never reopened, whoever owns the client.
    await own.close();
    await userClient.close();
    for (const adapter of [own, borrowed]) {
      const err = await adapter.jobs.counts().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ adapterId: 'mongo', operation: 'jobs.counts' });
    }
  });
});
