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
