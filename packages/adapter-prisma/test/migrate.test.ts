// migrate(): applies the shipped SQL on real databases, once, safely under concurrent
// starts, refusing edited migrations and leaving nothing behind when a migration fails.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StorageError } from '@org/maestrano-sdk';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, migrationsDirectory, prismaAdapter, schemaFragmentPath } from '../src/index.js';
import { createPgDatabase, createSqliteFile, openPgPrisma, openSqlitePrisma, pgUnavailableReason } from './backends.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const INIT = '20261128000000_maestrano_init';
const SYNCED_AT = '20261129060000_maestrano_id_map_synced_at';
const LINK_SUB_IDS = '20261203190000_maestrano_id_map_link_sub_ids';
/** Every shipped migration, in the order they apply. */
const ALL = [INIT, SYNCED_AT, LINK_SUB_IDS];
const TABLES = [
  'maestrano_cursors', 'maestrano_groups', 'maestrano_id_maps', 'maestrano_job_guards', 'maestrano_jobs',
  'maestrano_ledger', 'maestrano_locks', 'maestrano_memberships', 'maestrano_migrations', 'maestrano_replay', 'maestrano_users',
];

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);
if (pgUnavailable) console.warn(`[adapter-prisma] skipping PostgreSQL migrate tests: ${pgUnavailable}`);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function tempMigrations(provider: 'postgresql' | 'sqlite'): string {
  const dir = mkdtempSync(join(tmpdir(), 'mno-migrations-'));
  cpSync(migrationsDirectory(provider), dir, { recursive: true });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe.skipIf(pgUnavailable !== null)('migrate() on PostgreSQL', () => {
  it('two processes starting together apply the migration exactly once; later runs skip it', async () => {
    const db = await createPgDatabase('mno_adapter_prisma_mig');
    const a = openPgPrisma(db.url);
    const b = openPgPrisma(db.url);
    cleanups.push(async () => {
      await a.$disconnect();
      await b.$disconnect();
      await db.drop();
    });
    const results = await Promise.all([migrate({ prisma: a }), migrate({ prisma: b })]);
    expect(results.flatMap((r) => r.applied)).toEqual(ALL);
    expect(results.flatMap((r) => r.skipped)).toEqual(ALL);
    expect(await migrate({ prisma: a })).toEqual({ applied: [], skipped: ALL });

    const raw = new pg.Client({ connectionString: db.url });
    await raw.connect();
    try {
      const tables = await raw.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
      expect(tables.rows.map((row) => row.tablename)).toEqual(TABLES);
      const recorded = await raw.query('SELECT name, checksum FROM maestrano_migrations ORDER BY name');
      expect(recorded.rows.map((row) => row.name)).toEqual(ALL);
      for (const row of recorded.rows) expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await raw.end();
    }
  });

  it('a failing migration leaves no table and no record behind (DDL runs in the transaction)', async () => {
    const db = await createPgDatabase('mno_adapter_prisma_mig');
    const prisma = openPgPrisma(db.url);
    cleanups.push(async () => {
      await prisma.$disconnect();
      await db.drop();
    });
    const dir = tempMigrations('postgresql');
    mkdirSync(join(dir, '20261129000000_broken'));
    writeFileSync(join(dir, '20261129000000_broken', 'migration.sql'), 'CREATE TABLE "half_done" ("x" TEXT);\nSELEC broken;\n');
    const error = await migrate({ prisma, migrationsDir: dir }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ operation: 'migrations.apply', adapterId: 'prisma' });
    const raw = new pg.Client({ connectionString: db.url });
    await raw.connect();
    try {
      expect((await raw.query(`SELECT to_regclass('half_done') AS t, to_regclass('maestrano_jobs') AS j`)).rows[0]).toEqual({ t: null, j: null });
    } finally {
      await raw.end();
    }
  });
});

describe.skipIf(pgUnavailable !== null)('upgrading PostgreSQL', () => {
  it('a database migrated before synced_at and link_sub_ids existed gets the columns; its maps read them null until the next sync', async () => {
    const db = await createPgDatabase('mno_adapter_prisma_mig');
    const prisma = openPgPrisma(db.url);
    cleanups.push(async () => {
      await prisma.$disconnect();
      await db.drop();
    });
    await expectUpgradeFromInit(prisma, 'postgresql');
  });
});

describe('migrate() on SQLite', () => {
  it('two processes starting together on one file apply the migration exactly once', async () => {
    const file = createSqliteFile();
    cleanups.push(() => file.remove());
    const child = join(here, 'fixtures/migrate-child.ts');
    const start = () =>
      run(process.execPath, ['--conditions=@org/source', '--import', 'tsx', child, file.path], { cwd: join(here, '..') });
    const outputs = await Promise.all([start(), start()]);
    const results = outputs.map((output) => JSON.parse(output.stdout) as { applied: string[]; skipped: string[] });
    expect(results.flatMap((r) => r.applied)).toEqual(ALL);
    expect(results.flatMap((r) => r.skipped)).toEqual(ALL);
    const db = new Database(file.path, { readonly: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'maestrano_%' ORDER BY name`).all();
      expect(tables.map((row) => (row as { name: string }).name)).toEqual(TABLES);
      expect(db.prepare('SELECT COUNT(*) AS n FROM maestrano_migrations').get()).toEqual({ n: ALL.length });
    } finally {
      db.close();
    }
  }, 120_000);

  it('refuses to continue when an applied migration was edited afterwards', async () => {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(async () => {
      await prisma.$disconnect();
      file.remove();
    });
    const dir = tempMigrations('sqlite');
    expect((await migrate({ prisma, migrationsDir: dir })).applied).toEqual(ALL);
    const sqlPath = join(dir, INIT, 'migration.sql');
    writeFileSync(sqlPath, `${readFileSync(sqlPath, 'utf8')}\n-- edited\n`);
    await expect(migrate({ prisma, migrationsDir: dir })).rejects.toMatchObject({
      name: 'StorageError',
      operation: 'migrations.verify',
    });
  });

  it('skips migrations that `prisma migrate deploy` already applied', async () => {
    const file = createSqliteFile();
    cleanups.push(() => file.remove());
    const db = new Database(file.path);
    // What `prisma migrate deploy` leaves behind: the tables and its own history row.
    db.exec(readFileSync(join(migrationsDirectory('sqlite'), INIT, 'migration.sql'), 'utf8'));
    db.exec(`CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
      "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
      "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`);
    db.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('1', 'x', current_timestamp, ?, 1)`).run(INIT);
    db.close();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(() => prisma.$disconnect());
    // The later migrations, not deployed yet, are applied.
    expect(await migrate({ prisma })).toEqual({ applied: [SYNCED_AT, LINK_SUB_IDS], skipped: [INIT] });
    expect((await prismaAdapter(prisma).jobs.enqueue({ type: 't', payload: null })).created).toBe(true);
  });
});

// An app's own Prisma migrations on SQLite: Prisma writes a column change as a table
// redefinition that turns foreign keys off around `DROP TABLE`. SQLite ignores that pragma
// inside migrate()'s transaction, so without care the DROP cascades to the child rows.
describe('app migrations on SQLite that redefine a parent table', () => {
  const APP_INIT = '20270101000000_app_init';
  const REDEFINE = '20270201000000_app_company_name_optional';
  const INIT_SQL = `-- CreateTable
CREATE TABLE "company" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT NOT NULL);
-- CreateTable
CREATE TABLE "contact" ("id" TEXT NOT NULL PRIMARY KEY, "company_id" TEXT NOT NULL,
    CONSTRAINT "contact_company_id_fkey" FOREIGN KEY ("company_id") REFERENCES "company" ("id") ON DELETE CASCADE ON UPDATE CASCADE);
`;
  /** What `prisma migrate dev` generates when `company.name` becomes optional; `where` filters the copied rows. */
  const redefineSql = (where = '') => `-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_company" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT);
INSERT INTO "new_company" ("id", "name") SELECT "id", "name" FROM "company"${where};
DROP TABLE "company";
ALTER TABLE "new_company" RENAME TO "company";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
`;

  function appMigrations(): { dir: string; add(name: string, sql: string): void } {
    const dir = mkdtempSync(join(tmpdir(), 'mno-app-migrations-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const add = (name: string, sql: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'migration.sql'), sql);
    };
    add(APP_INIT, INIT_SQL);
    return { dir, add };
  }

  /** A SQLite file with the app's init migration applied and two companies with two contacts each. */
  async function seeded() {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(async () => {
      await prisma.$disconnect();
      file.remove();
    });
    const migrations = appMigrations();
    expect(await migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir })).toEqual({ applied: [APP_INIT], skipped: [] });
    await prisma.$executeRawUnsafe(`INSERT INTO company (id, name) VALUES ('co1', 'Acme'), ('co2', 'Globex')`);
    await prisma.$executeRawUnsafe(`INSERT INTO contact (id, company_id) VALUES ('ct1', 'co1'), ('ct2', 'co1'), ('ct3', 'co2'), ('ct4', 'co2')`);
    return { file, prisma, migrations };
  }

  const foreignKeys = async (prisma: Parameters<typeof migrate>[0]['prisma']) =>
    Number(((await prisma.$queryRawUnsafe('PRAGMA foreign_keys')) as Record<string, unknown>[])[0]?.foreign_keys);

  it('keeps the child rows (no ON DELETE CASCADE from the DROP TABLE) and restores foreign_keys', async () => {
    const { prisma, migrations } = await seeded();
    expect(await foreignKeys(prisma)).toBe(1);
    migrations.add(REDEFINE, redefineSql());
    // Two runs on one client at once: one applies, the other skips, and the pragma ends as it began.
    const results = await Promise.all([
      migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir }),
      migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir }),
    ]);
    expect(results.flatMap((r) => r.applied)).toEqual([REDEFINE]);
    expect(await prisma.$queryRawUnsafe('SELECT id, company_id FROM contact ORDER BY id')).toEqual([
      { id: 'ct1', company_id: 'co1' },
      { id: 'ct2', company_id: 'co1' },
      { id: 'ct3', company_id: 'co2' },
      { id: 'ct4', company_id: 'co2' },
    ]);
    expect(await prisma.$queryRawUnsafe('SELECT id, name FROM company ORDER BY id')).toEqual([
      { id: 'co1', name: 'Acme' },
      { id: 'co2', name: 'Globex' },
    ]);
    // The redefinition took effect, and foreign keys are enforced again (cascade included).
    await prisma.$executeRawUnsafe(`INSERT INTO company (id, name) VALUES ('co3', NULL)`);
    expect(await foreignKeys(prisma)).toBe(1);
    await expect(prisma.$executeRawUnsafe(`INSERT INTO contact (id, company_id) VALUES ('ct9', 'nope')`)).rejects.toThrow(/foreign key/i);
    await prisma.$executeRawUnsafe(`DELETE FROM company WHERE id = 'co2'`);
    expect(await prisma.$queryRawUnsafe('SELECT id FROM contact ORDER BY id')).toEqual([{ id: 'ct1' }, { id: 'ct2' }]);
  });

  it('two processes applying the redefinition at once: applied once, child rows kept', async () => {
    const { file, prisma, migrations } = await seeded();
    await prisma.$disconnect();
    migrations.add(REDEFINE, redefineSql());
    const child = join(here, 'fixtures/migrate-child.ts');
    const start = () =>
      run(process.execPath, ['--conditions=@org/source', '--import', 'tsx', child, file.path, migrations.dir], { cwd: join(here, '..') });
    const results = (await Promise.all([start(), start()])).map((output) => JSON.parse(output.stdout) as { applied: string[] });
    expect(results.flatMap((r) => r.applied)).toEqual([REDEFINE]);
    const db = new Database(file.path, { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM contact').get()).toEqual({ n: 4 });
    } finally {
      db.close();
    }
  }, 120_000);

  it('refuses a redefinition that would leave dangling references: typed error, nothing applied, foreign_keys restored', async () => {
    const { file, prisma, migrations } = await seeded();
    // Copies only co1: contacts ct3 and ct4 would reference a company that no longer exists.
    migrations.add(REDEFINE, redefineSql(` WHERE "id" = 'co1'`));
    const error = await migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ adapterId: 'prisma', operation: 'migrations.foreign_key_check' });
    expect((error as Error).message).toContain(REDEFINE);
    expect((error as Error).message).toContain('contact → company (2 rows)');
    expect(await foreignKeys(prisma)).toBe(1);
    const db = new Database(file.path, { readonly: true });
    try {
      // The old table, all its rows, no leftover, no record.
      expect(db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'company'`).get()).toEqual({
        sql: 'CREATE TABLE "company" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT NOT NULL)',
      });
      expect(db.prepare(`SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'new_company'`).get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM company').get()).toEqual({ n: 2 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM contact').get()).toEqual({ n: 4 });
      expect(db.prepare('SELECT name FROM maestrano_migrations').all()).toEqual([{ name: APP_INIT }]);
    } finally {
      db.close();
    }
    // The client still works and still enforces foreign keys.
    await expect(prisma.$executeRawUnsafe(`INSERT INTO contact (id, company_id) VALUES ('ct9', 'nope')`)).rejects.toThrow(/foreign key/i);
  });

  it('an app transaction open on the client when migrate() starts does not let the DROP cascade', async () => {
    const { prisma, migrations } = await seeded();
    migrations.add(REDEFINE, redefineSql());
    // While this transaction is open, `PRAGMA foreign_keys = OFF` on the connection is a no-op:
    // migrate() must notice inside its own transaction and try again once the connection is free.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let opened = () => {};
    const open = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const app = prisma.$transaction(async (tx) => {
      await tx.$queryRawUnsafe('SELECT 1');
      opened();
      await held;
    });
    await open;
    const migrating = migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir });
    setTimeout(release, 100);
    await app;
    expect(await migrating).toEqual({ applied: [REDEFINE], skipped: [APP_INIT] });
    expect(await prisma.$queryRawUnsafe('SELECT id FROM contact ORDER BY id')).toEqual([{ id: 'ct1' }, { id: 'ct2' }, { id: 'ct3' }, { id: 'ct4' }]);
    expect(await foreignKeys(prisma)).toBe(1);
  });

  it('a client that had foreign keys off gets them back off', async () => {
    const { prisma, migrations } = await seeded();
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = OFF');
    migrations.add(REDEFINE, redefineSql());
    expect(await migrate({ prisma, provider: 'sqlite', migrationsDir: migrations.dir })).toEqual({ applied: [REDEFINE], skipped: [APP_INIT] });
    expect(await foreignKeys(prisma)).toBe(0);
    expect(await prisma.$queryRawUnsafe('SELECT id FROM contact ORDER BY id')).toEqual([{ id: 'ct1' }, { id: 'ct2' }, { id: 'ct3' }, { id: 'ct4' }]);
  });
});

describe('upgrading SQLite', () => {
  it('a database migrated before synced_at and link_sub_ids existed gets the columns; its maps read them null until the next sync', async () => {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(async () => {
      await prisma.$disconnect();
      file.remove();
    });
    await expectUpgradeFromInit(prisma, 'sqlite');
  });
});

/** Migrates to the first release only, stores a map as that release did, then migrates to the current one. */
async function expectUpgradeFromInit(prisma: Parameters<typeof prismaAdapter>[0], provider: 'postgresql' | 'sqlite') {
  const initOnly = mkdtempSync(join(tmpdir(), 'mno-migrations-'));
  cleanups.push(() => rmSync(initOnly, { recursive: true, force: true }));
  cpSync(join(migrationsDirectory(provider), INIT), join(initOnly, INIT), { recursive: true });
  expect(await migrate({ prisma, provider, migrationsDir: initOnly })).toEqual({ applied: [INIT], skipped: [] });
  const stamp = provider === 'postgresql' ? (n: number) => `$${n}::timestamp(3)` : () => '?';
  await prisma.$executeRawUnsafe(
    `INSERT INTO maestrano_id_maps (tenant, group_id, entity, connec_id, local_id, last_applied_at, last_received_hash, created_at, updated_at)
     VALUES ('t', 'cld-1', 'contact', 'c-1', 'l-1', ${stamp(1)}, 'h1', ${stamp(2)}, ${stamp(3)})`,
    AT,
    AT,
    AT,
  );
  expect(await migrate({ prisma, provider })).toEqual({ applied: [SYNCED_AT, LINK_SUB_IDS], skipped: [INIT] });
  const later = new Date(AT.getTime() + 60_000);
  const adapter = prismaAdapter(prisma, { provider, clock: () => later });
  const scope = { tenant: 't', groupId: 'cld-1', entity: 'contact' };
  expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toEqual({
    ...scope,
    connecId: 'c-1',
    localId: 'l-1',
    lastAppliedAt: AT,
    lastPushedHash: null,
    lastReceivedHash: 'h1',
    tombstonedAt: null,
    lastError: null,
    syncedAt: null,
    linkSubIds: null,
    createdAt: AT,
    updatedAt: AT,
  });
  expect(await adapter.idMaps.markApplied(scope, { connecId: 'c-1' }, later, 'h2')).toBe(true);
  expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toMatchObject({ lastReceivedHash: 'h2', syncedAt: later, updatedAt: later, linkSubIds: null });
  const owed = JSON.stringify({ hash: 'h3', ids: { lines: ['ln-1'] } });
  expect(await adapter.idMaps.markApplied(scope, { connecId: 'c-1' }, new Date(later.getTime() + 1), 'h3', { linkSubIds: owed })).toBe(true);
  expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toMatchObject({ lastReceivedHash: 'h3', linkSubIds: owed });
}

describe('the schema fragment matches the migrations', () => {
  it('the test clients were generated from the shipped fragment, verbatim', () => {
    const fragment = readFileSync(schemaFragmentPath(), 'utf8');
    for (const provider of ['postgresql', 'sqlite']) {
      const schema = readFileSync(join(here, 'prisma', provider, 'schema.prisma'), 'utf8');
      expect(schema.endsWith(fragment)).toBe(true);
      expect(schema).toContain(`provider = "${provider}"`);
    }
  });

  it('rows written by the adapter read back through the fragment models (SQLite)', async () => {
    const file = createSqliteFile();
    const prisma = openSqlitePrisma(file.path);
    cleanups.push(async () => {
      await prisma.$disconnect();
      file.remove();
    });
    await migrate({ prisma });
    await writeThroughAdapter(prisma, 'sqlite');
    await expectModels(prisma);
  });

  it.skipIf(pgUnavailable !== null)('rows written by the adapter read back through the fragment models (PostgreSQL)', async () => {
    const db = await createPgDatabase('mno_adapter_prisma_mig');
    const prisma = openPgPrisma(db.url);
    cleanups.push(async () => {
      await prisma.$disconnect();
      await db.drop();
    });
    await migrate({ prisma });
    await writeThroughAdapter(prisma, 'postgresql');
    await expectModels(prisma);
  });
});

const AT = new Date(Date.UTC(2031, 0, 15, 12, 0, 0, 250));

async function writeThroughAdapter(prisma: Parameters<typeof prismaAdapter>[0], provider: 'postgresql' | 'sqlite') {
  const adapter = prismaAdapter(prisma, { provider, clock: () => AT });
  await adapter.groups.claim('t', 'cld-1', { owner: 'o', ttlMs: 1000 });
  await adapter.groups.complete('t', 'cld-1', 'o', { companyId: 'co-1', settings: { plan: 'pro' }, trialEndsAt: AT });
  await adapter.idMaps.insert({ tenant: 't', groupId: 'cld-1', entity: 'contact', connecId: 'c-1', localId: 'l-1' });
  await adapter.cursors.advance({ tenant: 't', groupId: 'cld-1', entity: 'contact', kind: 'import' }, 1.5, { next: 'x' }, true);
  await adapter.jobs.enqueue({ type: 'sync', payload: { n: 1 }, orderingKey: 'k', dedupeKey: 'd' });
  await adapter.ledger.claim('bill-1', { owner: 'o', ttlMs: 1000, intent: { amount: 5 } });
  await adapter.locks.acquire('lock', 'o', 1000);
  await adapter.replay.remember('t', 'a-1', AT);
}

interface FragmentModels {
  maestranoGroup: { findMany(): Promise<unknown[]> };
  maestranoIdMap: { findMany(): Promise<unknown[]> };
  maestranoCursor: { findMany(): Promise<unknown[]> };
  maestranoJob: { findMany(): Promise<unknown[]> };
  maestranoLedgerEntry: { findMany(): Promise<unknown[]> };
  maestranoLock: { findMany(): Promise<unknown[]> };
  maestranoReplay: { findMany(): Promise<unknown[]> };
}

async function expectModels(prisma: FragmentModels) {
  expect(await prisma.maestranoGroup.findMany()).toEqual([
    expect.objectContaining({ groupId: 'cld-1', companyId: 'co-1', status: 'active', settings: { plan: 'pro' }, trialEndsAt: AT, createdAt: AT }),
  ]);
  expect(await prisma.maestranoIdMap.findMany()).toEqual([expect.objectContaining({ connecId: 'c-1', localId: 'l-1', lastError: null, syncedAt: null, linkSubIds: null })]);
  expect(await prisma.maestranoCursor.findMany()).toEqual([expect.objectContaining({ position: 1.5, data: { next: 'x' }, complete: true })]);
  expect(await prisma.maestranoJob.findMany()).toEqual([
    expect.objectContaining({ type: 'sync', payload: { n: 1 }, orderingKey: 'k', dedupeKey: 'd', status: 'pending', runAt: AT }),
  ]);
  expect(await prisma.maestranoLedgerEntry.findMany()).toEqual([expect.objectContaining({ key: 'bill-1', intent: { amount: 5 }, outcome: null })]);
  expect(await prisma.maestranoLock.findMany()).toEqual([expect.objectContaining({ key: 'lock', owner: 'o', expiresAt: new Date(AT.getTime() + 1000) })]);
  expect(await prisma.maestranoReplay.findMany()).toEqual([expect.objectContaining({ assertionId: 'a-1', expiresAt: AT })]);
}
