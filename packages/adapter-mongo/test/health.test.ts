// `mno.health()` through adapter-mongo on the test server (FerretDB in CI): healthy, its probe
// lock released (nothing left in the locks collection), and a closed adapter reported by the
// operation that failed instead of thrown.
import { createMaestrano, staticTenants } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, testTenant } from '../../sdk/test/sync/harness.js';
import { collectionNames, mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(unavailable !== null)(`${backend}: mno.health()`, () => {
  it('reports the database healthy and leaves no lock; a closed adapter is reported, not thrown', async () => {
    const { db, name, drop } = await openTestDb('health');
    cleanups.push(drop);
    // Its own client (closed below), not the test's.
    const storage = mongoAdapter({ url: mongoUrl ?? '', dbName: name });
    await storage.ensureIndexes();
    const mno = createMaestrano({
      tenants: staticTenants([testTenant()]),
      storage,
      provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
      onLogin: () => new Response('ok'),
      logger: silentLogger,
    });
    expect(await mno.health({ queue: true })).toMatchObject({
      ok: true,
      storage: { ok: true, adapter: 'mongo' },
      queue: { pending: 0, running: 0, done: 0, dead: 0 },
    });
    expect(await db.collection(collectionNames('maestrano_').locks).countDocuments({})).toBe(0);

    await storage.close();
    const closed = await mno.health();
    expect(closed.ok).toBe(false);
    expect(closed.storage.failure).toMatchObject({ code: 'storage_error', operation: 'groups.get' });
  });
});
