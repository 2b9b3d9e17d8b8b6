import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, StorageError, type StorageOperation } from '@org/maestrano-sdk';
import { detectProvider, type PrismaClientLike, type PrismaProvider, type PrismaTransactionLike } from './client.js';
import { ADAPTER_ID, toStorageError } from './errors.js';
import { rows, str } from './sql.js';

/**
 * Folder holding this package's SQL migrations for `provider`, in Prisma's layout
 * (`<timestamp>_<name>/migration.sql` plus `migration_lock.toml`). Copy it into your
 * `prisma/migrations` to apply them with `prisma migrate deploy`, or run `migrate()`.
 */
export function migrationsDirectory(provider: PrismaProvider): string {
  return fileURLToPath(new URL(`../prisma/migrations/${provider}/`, import.meta.url));
}

/** Path of the schema fragment (the models to copy into your own `schema.prisma`). */
export function schemaFragmentPath(): string {
  return fileURLToPath(new URL('../prisma/schema.prisma', import.meta.url));
}

export interface MigrateOptions {
  prisma: PrismaClientLike;
  /** Default: read from the generated client. */
  provider?: PrismaProvider;
  /** Default: `migrationsDirectory(provider)`. */
  migrationsDir?: string;
  /** How long one run may take, including waiting for another process's run. Default 60000 ms. */
  timeoutMs?: number;
}

export interface MigrateResult {
  /** Migrations applied by this call, in order. */
  applied: string[];
  /** Migrations found already applied (by `migrate()` or by `prisma migrate deploy`). */
  skipped: string[];
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** Any constant: the advisory lock that serialises concurrent `migrate()` runs on PostgreSQL. */
const PG_LOCK_ID = 728_114_593;

/**
 * Applies the pending migrations and records each in `maestrano_migrations`, for
 * environments without the Prisma CLI. Idempotent. Safe when several processes start
 * together: on PostgreSQL the whole run holds an advisory lock inside one transaction
 * (DDL included, so a failed migration leaves nothing half-applied); on SQLite the run
 * takes the database write lock first. Migrations already applied by `prisma migrate
 * deploy` (rows in `_prisma_migrations`) are skipped. An applied migration whose file
 * changed afterwards fails the run.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const provider = options.provider ?? detectProvider(options.prisma);
  if (provider !== 'postgresql' && provider !== 'sqlite') {
    throw new ConfigError("migrate: cannot tell the database provider; pass { provider: 'postgresql' | 'sqlite' }", {
      issues: [{ path: 'provider', message: 'required: postgresql or sqlite' }],
    });
  }
  const migrations = readMigrations(options.migrationsDir ?? migrationsDirectory(provider));
  const timeout = options.timeoutMs ?? 60_000;
  const op: StorageOperation = 'migrations.apply';
  try {
    if (provider === 'sqlite') {
      await options.prisma.$executeRawUnsafe(
        'CREATE TABLE IF NOT EXISTS "maestrano_migrations" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" DATETIME NOT NULL)',
      );
    }
    return await options.prisma.$transaction(
      async (tx) => {
        if (provider === 'postgresql') {
          await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`);
          await tx.$executeRawUnsafe(
            'CREATE TABLE IF NOT EXISTS "maestrano_migrations" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" TIMESTAMP(3) NOT NULL)',
          );
        } else {
          // A write first, so this transaction holds SQLite's write lock (waiting for
          // another process's run) before it reads what is applied.
          await tx.$executeRawUnsafe('UPDATE "maestrano_migrations" SET "name" = "name" WHERE 0 = 1');
        }
        const applied = new Map<string, string>();
        for (const row of rows(await tx.$queryRawUnsafe('SELECT "name", "checksum" FROM "maestrano_migrations"'))) {
          applied.set(str(row, 'name'), str(row, 'checksum'));
        }
        const viaPrisma = await prismaMigrateApplied(tx, provider);
        const result: MigrateResult = { applied: [], skipped: [] };
        for (const migration of migrations) {
          const checksum = applied.get(migration.name);
          if (checksum !== undefined) {
            if (checksum !== migration.checksum) {
              throw new StorageError(
                `migration ${migration.name} changed after it was applied (checksum mismatch); restore the original file`,
                { adapterId: ADAPTER_ID, operation: 'migrations.verify' },
              );
            }
            result.skipped.push(migration.name);
            continue;
          }
          if (viaPrisma.has(migration.name)) {
            result.skipped.push(migration.name);
            continue;
          }
          for (const statement of splitSqlStatements(migration.sql)) await tx.$executeRawUnsafe(statement);
          await tx.$executeRawUnsafe(
            provider === 'postgresql'
              ? 'INSERT INTO "maestrano_migrations" ("name", "checksum", "applied_at") VALUES ($1, $2, $3::timestamp(3))'
              : 'INSERT INTO "maestrano_migrations" ("name", "checksum", "applied_at") VALUES (?, ?, ?)',
            migration.name,
            migration.checksum,
            new Date(),
          );
          result.applied.push(migration.name);
        }
        return result;
      },
      { maxWait: timeout, timeout },
    );
  } catch (err) {
    throw toStorageError(op, err);
  }
}

async function prismaMigrateApplied(tx: PrismaTransactionLike, provider: PrismaProvider): Promise<Set<string>> {
  const exists =
    provider === 'postgresql'
      ? `SELECT to_regclass('_prisma_migrations')::text AS "name"`
      : `SELECT name AS "name" FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`;
  const found = rows(await tx.$queryRawUnsafe(exists));
  if (found.length === 0 || found[0]?.name === null || found[0]?.name === undefined) return new Set();
  const done = rows(
    await tx.$queryRawUnsafe(
      'SELECT "migration_name" FROM "_prisma_migrations" WHERE "finished_at" IS NOT NULL AND "rolled_back_at" IS NULL',
    ),
  );
  return new Set(done.map((row) => str(row, 'migration_name')));
}

function readMigrations(dir: string): Migration[] {
  if (!existsSync(dir)) {
    throw new ConfigError(`migrate: migrations folder not found: ${dir}`, {
      issues: [{ path: 'migrationsDir', message: 'folder not found' }],
    });
  }
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Splits a migration script into statements at top-level semicolons, skipping comments
 * and leaving quoted strings, quoted identifiers and dollar-quoted bodies intact.
 */
export function splitSqlStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  while (i < script.length) {
    const ch = script[i] ?? '';
    const next = script[i + 1] ?? '';
    if (ch === '-' && next === '-') {
      const end = script.indexOf('\n', i);
      i = end === -1 ? script.length : end + 1;
      current += '\n';
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2);
      i = end === -1 ? script.length : end + 2;
      current += ' ';
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      while (j < script.length) {
        if (script[j] === ch) {
          if (script[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      current += script.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(script.slice(i));
      if (tag) {
        const end = script.indexOf(tag[0], i + tag[0].length);
        const stop = end === -1 ? script.length : end + tag[0].length;
        current += script.slice(i, stop);
        i = stop;
        continue;
      }
    }
    if (ch === ';') {
      if (current.trim().length > 0) statements.push(current.trim());
      current = '';
      i++;
      continue;
    }
    current += ch;
    i++;
  }
  if (current.trim().length > 0) statements.push(current.trim());
  return statements;
}
