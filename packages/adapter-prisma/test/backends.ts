// Real backends for the tests: a throwaway PostgreSQL database on the local server (or
// MAESTRANO_TEST_PG_URL) and SQLite files in a temp folder, both migrated with migrate().
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { StorageAdapter } from '@org/maestrano-sdk';
import { afterEach } from 'vitest';
import { migrate, prismaAdapter } from '../src/index.js';
import { PrismaClient as PgPrismaClient } from './generated/postgresql/client.js';
import { PrismaClient as SqlitePrismaClient } from './generated/sqlite/client.js';

export const PG_SERVER_URL = process.env.MAESTRANO_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** null when the server answers; otherwise why not. */
export async function pgUnavailableReason(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return `PostgreSQL not reachable at ${new URL(PG_SERVER_URL).host}: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

export interface PgDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createPgDatabase(prefix = 'mno_adapter_prisma'): Promise<PgDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: withDatabase(PG_SERVER_URL, name),
    async drop() {
      const client = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * Takes a database offline (refuses new connections, terminates open ones) or back online,
 * through an admin connection to the server's `postgres` database.
 */
export async function setPgDatabaseOnline(name: string, online: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${online ? 'true' : 'false'}`);
    if (!online) {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    }
  } finally {
    await admin.end();
  }
}

export function openPgPrisma(url: string, pool: Partial<pg.PoolConfig> = {}): PgPrismaClient {
  return new PgPrismaClient({
    adapter: new PrismaPg({ connectionString: url, connectionTimeoutMillis: 3000, statement_timeout: 10_000, max: 10, ...pool }),
  });
}

export interface SqliteFile {
  path: string;
  remove(): void;
}

export function createSqliteFile(): SqliteFile {
  const dir = mkdtempSync(join(tmpdir(), 'mno-adapter-prisma-'));
  const path = join(dir, 'storage.db');
  // WAL lets a second connection (another process, the inspector) read while one writes.
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.close();
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openSqlitePrisma(path: string): SqlitePrismaClient {
  return new SqlitePrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${path}`, timeout: 5000 }) });
}

export async function migratedPg(): Promise<{ db: PgDatabase; prisma: PgPrismaClient }> {
  const db = await createPgDatabase();
  const prisma = openPgPrisma(db.url);
  await migrate({ prisma });
  return { db, prisma };
}

export async function migratedSqlite(): Promise<{ file: SqliteFile; prisma: SqlitePrismaClient }> {
  const file = createSqliteFile();
  const prisma = openSqlitePrisma(file.path);
  await migrate({ prisma });
  return { file, prisma };
}

/**
 * Adapters for a test file running the SDK's sync scenarios: `sqlite()` and `postgres()` each
 * open a freshly migrated database, closed and removed after the test that opened it.
 */
export function scenarioAdapters(): { sqlite(): Promise<StorageAdapter>; postgres(): Promise<StorageAdapter> } {
  let cleanup: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await cleanup?.();
    cleanup = null;
  });
  return {
    async sqlite() {
      const { file, prisma } = await migratedSqlite();
      cleanup = async () => {
        await prisma.$disconnect();
        file.remove();
      };
      return prismaAdapter(prisma);
    },
    async postgres() {
      const { db, prisma } = await migratedPg();
      cleanup = async () => {
        await prisma.$disconnect();
        await db.drop();
      };
      return prismaAdapter(prisma);
    },
  };
}
