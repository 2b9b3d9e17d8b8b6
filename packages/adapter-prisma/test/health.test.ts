// `mno.health()` against real databases through adapter-prisma: tables not migrated (PostgreSQL
// and SQLite), a database that turned read-only (as after a fail-over to a replica: reads
// answer, writes are refused) and one that went away, each reported by the operation that
// failed, then healthy again once fixed.
import { createMaestrano, type StorageAdapter, staticTenants } from '@org/maestrano-sdk';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, testTenant } from '../../sdk/test/sync/harness.js';
import { migrate, prismaAdapter } from '../src/index.js';
import { createPgDatabase, createSqliteFile, openPgPrisma, openSqlitePrisma, PG_SERVER_URL, pgUnavailableReason, setPgDatabaseOnline } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function build(storage: StorageAdapter) {
  return createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
  });
}

async function setReadOnly(name: string, readOnly: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE "${name}" SET default_transaction_read_only = ${readOnly ? 'on' : 'off'}`);
  } finally {
    await admin.end();
  }
  // Open sessions keep the setting they started with: end them, the pool opens new ones.
  await setPgDatabaseOnline(name, false);
  await setPgDatabaseOnline(name, true);
}

describe.skipIf(unavailable !== null)('mno.health() on PostgreSQL', () => {
  it('names the missing tables and how to create them, is healthy once migrated, and finds a read-only or unreachable database', async () => {
    const db = await createPgDatabase('mno_health');
    cleanups.push(() => db.drop());
    const prisma = openPgPrisma(db.url, { max: 2 });
    cleanups.push(() => prisma.$disconnect());
    const mno = build(prismaAdapter(prisma));

    const unmigrated = await mno.health();
    expect(unmigrated.ok).toBe(false);
    expect(unmigrated.storage).toMatchObject({ ok: false, adapter: 'prisma', failure: { code: 'storage_error', operation: 'groups.get' } });
    expect(unmigrated.storage.failure?.message).toMatch(/run `await migrate\(/);

    await migrate({ prisma });
    const healthy = await mno.health({ queue: true });
    expect(healthy).toMatchObject({ ok: true, storage: { ok: true, adapter: 'prisma' }, tenants: 1, queue: { pending: 0, running: 0, done: 0, dead: 0 } });
    // The probe's lock is gone: nothing is left in the adapter's tables.
    const check = new pg.Client({ connectionString: db.url });
    await check.connect();
    try {
      expect((await check.query('SELECT count(*)::int AS n FROM maestrano_locks')).rows[0].n).toBe(0);
    } finally {
      await check.end();
    }

    await setReadOnly(db.name, true);
    const readOnly = await mno.health();
    expect(readOnly.storage.failure).toMatchObject({ code: 'storage_error', operation: 'locks.acquire' });
    expect(readOnly.storage.failure?.message).toMatch(/read-only/);

    await setReadOnly(db.name, false);
    expect((await mno.health()).ok).toBe(true);

    await setPgDatabaseOnline(db.name, false);
    const away = await mno.health();
    expect(away.storage).toMatchObject({ ok: false, failure: { code: 'storage_error', operation: 'groups.get' } });
    await setPgDatabaseOnline(db.name, true);
    expect((await mno.health()).ok).toBe(true);
  }, 60_000);

  it('finds the jobs\' ordering-key guards missing: every claim and completion of a worker needs them', async () => {
    const db = await createPgDatabase('mno_health');
    cleanups.push(() => db.drop());
    const prisma = openPgPrisma(db.url, { max: 2 });
    cleanups.push(() => prisma.$disconnect());
    await migrate({ prisma });
    const storage = prismaAdapter(prisma);
    const mno = build(storage);
    expect((await mno.health()).ok).toBe(true);
    // Restored from a dump of the tables the app knew of, or a role granted the others only.
    await prisma.$executeRawUnsafe('DROP TABLE maestrano_job_guards');
    await storage.jobs.enqueue({ type: 'probe.job', payload: null, orderingKey: 'k' });
    await expect(storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 10_000 })).rejects.toThrow(/maestrano_job_guards/);
    const report = await mno.health();
    expect(report.ok).toBe(false);
    expect(report.storage.failure).toMatchObject({ code: 'storage_error', operation: 'jobs.complete' });
    expect(report.storage.failure?.message).toMatch(/maestrano_job_guards/);
  }, 60_000);
});

describe('mno.health() on SQLite', () => {
  it('names the missing tables, then is healthy once migrated, and names a table dropped since', async () => {
    const file = createSqliteFile();
    cleanups.push(async () => file.remove());
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(() => prisma.$disconnect());
    const mno = build(prismaAdapter(prisma));
    const unmigrated = await mno.health();
    expect(unmigrated.storage).toMatchObject({ ok: false, failure: { code: 'storage_error', operation: 'groups.get' } });
    expect(unmigrated.storage.failure?.message).toMatch(/run `await migrate\(/);
    await migrate({ prisma });
    expect(await mno.health()).toMatchObject({ ok: true, storage: { ok: true, adapter: 'prisma' } });
    // A table lost after the migration (restored from a partial dump, dropped by hand) is named
    // too: the memberships a removal counts, the replay records every login writes.
    await prisma.$executeRawUnsafe('DROP TABLE maestrano_replay');
    expect((await mno.health()).storage).toMatchObject({ ok: false, failure: { code: 'storage_error', operation: 'replay.forget' } });
    await prisma.$executeRawUnsafe('DROP TABLE maestrano_memberships');
    expect((await mno.health()).storage).toMatchObject({ ok: false, failure: { code: 'storage_error', operation: 'users.seats' } });
  });
});
