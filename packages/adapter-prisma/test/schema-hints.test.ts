// An app that forgot migrate(), or upgraded the package without applying its new migration,
// gets a StorageError that says so and how to fix it, on both providers.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError } from '@org/maestrano-sdk';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, prismaAdapter } from '../src/index.js';
import { createPgDatabase, createSqliteFile, openPgPrisma, openSqlitePrisma, pgUnavailableReason } from './backends.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);
if (pgUnavailable) console.warn(`[adapter-prisma] skipping PostgreSQL schema-hint tests: ${pgUnavailable}`);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const scope = { tenant: 't', groupId: 'g', entity: 'contacts' };

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe('SQLite', () => {
  it('names migrate() when the tables are missing, and when a newer migration is not applied', async () => {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(() => file.remove(), () => prisma.$disconnect());
    const storage = prismaAdapter(prisma);

    const noTables = await failure(storage.jobs.enqueue({ type: 't', payload: {} }));
    expect(noTables.message).toMatch(/^jobs\.enqueue failed: .*no such table: maestrano_jobs/);
    expect(noTables.message).toContain("the adapter's tables are missing: run `await migrate({ prisma })`");

    await migrate({ prisma });
    const raw = new Database(file.path);
    raw.exec('ALTER TABLE maestrano_id_maps DROP COLUMN synced_at');
    raw.close();
    const noColumn = await failure(storage.idMaps.findManyByConnecIds(scope, ['c1']));
    expect(noColumn.message).toContain('no such column');
    expect(noColumn.message).toContain('a migration of @org/maestrano-adapter-prisma is not applied');
    // The tables migrate() created work.
    expect((await storage.jobs.enqueue({ type: 't', payload: {}, dedupeKey: 'k' })).created).toBe(true);
  });
});

describe.skipIf(pgUnavailable !== null)(`PostgreSQL${pgUnavailable ? ` (skipped: ${pgUnavailable})` : ''}`, () => {
  it('names migrate() when the tables are missing, and when a newer migration is not applied', async () => {
    const db = await createPgDatabase();
    const prisma = openPgPrisma(db.url);
    cleanups.push(() => db.drop(), () => prisma.$disconnect());
    const storage = prismaAdapter(prisma);

    const noTables = await failure(storage.groups.get('t', 'g'));
    expect(noTables.message).toMatch(/^groups\.get failed: .*relation "maestrano_groups" does not exist/);
    expect(noTables.message).toContain("the adapter's tables are missing: run `await migrate({ prisma })`");

    await migrate({ prisma });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('ALTER TABLE maestrano_id_maps DROP COLUMN synced_at');
    await client.end();
    const noColumn = await failure(storage.idMaps.findManyByConnecIds(scope, ['c1']));
    expect(noColumn.message).toContain('column "synced_at" does not exist');
    expect(noColumn.message).toContain('a migration of @org/maestrano-adapter-prisma is not applied');

    // A failure of another kind (the server gone) gets no migration hint.
    await prisma.$disconnect();
    const admin = new pg.Client({ connectionString: db.url.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    await admin.query(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [db.name]);
    await admin.end();
    const down = await failure(storage.groups.get('t', 'g'));
    expect(down.message).not.toContain('migrate');
  });

  it('finds its tables in a non-default schema through search_path, and says so when the connection does not name it', async () => {
    const db = await createPgDatabase();
    cleanups.push(() => db.drop());
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    cleanups.push(() => admin.end());
    await admin.query('CREATE SCHEMA app');

    // The documented set-up: the pool's search_path names the schema (Prisma's `{ schema }`
    // option and `?schema=` reach its model queries and CLI, never the adapter's SQL).
    const inApp = openPgPrisma(db.url, { options: '-c search_path=app' });
    cleanups.push(() => inApp.$disconnect());
    await migrate({ prisma: inApp });
    expect((await prismaAdapter(inApp).jobs.enqueue({ type: 't', payload: {} })).created).toBe(true);
    const tables = await admin.query<{ schema: string }>("SELECT DISTINCT table_schema AS schema FROM information_schema.tables WHERE table_name LIKE 'maestrano%'");
    expect(tables.rows.map((row) => row.schema)).toEqual(['app']);

    // Without it, the tables are not found, and the hint names search_path rather than only
    // migrate() (which would create a second set of tables in public).
    const plain = openPgPrisma(`${db.url}?schema=app`);
    cleanups.push(() => plain.$disconnect());
    const notFound = await failure(prismaAdapter(plain).jobs.enqueue({ type: 't', payload: {} }));
    expect(notFound.message).toContain("the adapter's tables are missing");
    expect(notFound.message).toContain("options: '-c search_path=<schema>'");
  });
});

describe.skipIf(pgUnavailable !== null)('no migrate() hint inside migrate()', () => {
  /** A folder holding one app migration, `sql`, in Prisma's layout. */
  function appMigrations(sql: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'mno-app-migrations-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, '20270101000000_app'));
    writeFileSync(join(dir, '20270101000000_app', 'migration.sql'), sql);
    return dir;
  }

  it("an app migration's missing table or column gets the database's message, not the adapter's migrate() hint", async () => {
    const db = await createPgDatabase();
    const prisma = openPgPrisma(db.url);
    cleanups.push(() => db.drop(), () => prisma.$disconnect());
    await migrate({ prisma });
    const noTable = await failure(migrate({ prisma, migrationsDir: appMigrations('ALTER TABLE "orders" ADD COLUMN "note" TEXT;') }));
    expect(noTable.message).toContain('relation "orders" does not exist');
    expect(noTable.message).not.toContain("the adapter's tables are missing");
    expect(noTable.message).not.toContain('search_path');
    const noColumn = await failure(migrate({ prisma, migrationsDir: appMigrations('CREATE TABLE "orders" ("id" INT); UPDATE "orders" SET "note" = 1;') }));
    expect(noColumn.message).toContain('column "note" of relation "orders" does not exist');
    expect(noColumn.message).not.toContain('a migration of @org/maestrano-adapter-prisma is not applied');

    const file = createSqliteFile();
    const lite = openSqlitePrisma(file.path);
    cleanups.push(() => file.remove(), () => lite.$disconnect());
    await migrate({ prisma: lite });
    const liteNoTable = await failure(migrate({ prisma: lite, migrationsDir: appMigrations('INSERT INTO "orders" ("id") VALUES (1);') }));
    expect(liteNoTable.message).toContain('no such table: orders');
    expect(liteNoTable.message).not.toContain("the adapter's tables are missing");
  });
});
