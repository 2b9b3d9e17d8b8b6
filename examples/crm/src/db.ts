/**
 * The CRM's database: one Prisma schema holding the CRM's tables and the Maestrano SDK's
 * tables. SQLite (a file under the data folder) by default, PostgreSQL when DATABASE_URL is
 * set. Migrations are applied at start with the adapter's `migrate()` runner, so no Prisma
 * CLI is needed on the machine.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, migrationsDirectory } from '@org/maestrano-adapter-prisma';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient as PostgresClient } from './generated/postgresql/client.js';
import { PrismaClient as SqliteClient } from './generated/sqlite/client.js';

export type Provider = 'sqlite' | 'postgresql';

/**
 * Both generated clients come from the same models; the app codes against the SQLite one's
 * types (the PostgreSQL client accepts every query written for it).
 */
export type CrmPrisma = SqliteClient;

export interface Database {
  prisma: CrmPrisma;
  provider: Provider;
  /** Where the data lives, for the start-up banner (the password is never printed). */
  location: string;
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const crmMigrations = (provider: Provider) => join(here, '..', 'prisma', 'migrations', provider);

export interface OpenDatabaseOptions {
  /** `postgres://…` selects PostgreSQL; absent means SQLite in `dataDir`. */
  databaseUrl?: string | undefined;
  /** Folder of the SQLite file. Default: `examples/crm/.data`. */
  dataDir?: string | undefined;
  /** SQLite file name. Default `crm.sqlite`. */
  sqliteFile?: string | undefined;
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const url = options.databaseUrl?.trim();
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    const client = new PostgresClient({ adapter: new PrismaPg({ connectionString: url, connectionTimeoutMillis: 5_000 }) });
    const prisma: CrmPrisma = asCrmPrisma(client);
    await migrateAll(client, 'postgresql');
    const location = redactUrl(url);
    return { prisma, provider: 'postgresql', location, close: () => client.$disconnect() };
  }
  if (url) throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL (unset it for the embedded SQLite database)');
  const dataDir = options.dataDir ?? join(here, '..', '.data');
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, options.sqliteFile ?? 'crm.sqlite');
  const client = new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  // WAL lets the web process and a separate worker process share the file.
  await client.$queryRawUnsafe('PRAGMA journal_mode = WAL');
  await client.$executeRawUnsafe('PRAGMA busy_timeout = 10000');
  await migrateAll(client, 'sqlite');
  return { prisma: client, provider: 'sqlite', location: file, close: () => client.$disconnect() };
}

async function migrateAll(client: SqliteClient | PostgresClient, provider: Provider): Promise<void> {
  // The SDK's tables first (from the adapter package), then the CRM's own.
  await migrate({ prisma: client, provider, migrationsDir: migrationsDirectory(provider) });
  await migrate({ prisma: client, provider, migrationsDir: crmMigrations(provider) });
}

/** The PostgreSQL client typed as the SQLite one: same models, so the same query API. */
function asCrmPrisma(client: PostgresClient): CrmPrisma {
  return client as unknown as CrmPrisma;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    // libpq's `?password=` (and `sslpassword`, `sslkey`, …), which the pg driver reads too.
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|pwd|secret|key|token/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return 'postgresql';
  }
}
