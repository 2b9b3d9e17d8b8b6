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
  /**
   * How long one run may take, including waiting for another process's run. Default 60000 ms.
   * On PostgreSQL it replaces the client's `statement_timeout` and `lock_timeout` for the run.
   */
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
 *
 * On SQLite, a run whose pending migrations turn foreign keys off (`PRAGMA
 * foreign_keys=OFF`, as Prisma's "RedefineTables" migrations do) is applied with foreign
 * keys off on the connection: SQLite ignores that pragma inside a transaction, so without
 * this the redefinition's `DROP TABLE` would fire `ON DELETE CASCADE` and delete the child
 * rows. After each such migration `PRAGMA foreign_key_check` must report no new dangling
 * reference, or the run is rolled back with a `StorageError` (operation
 * `migrations.foreign_key_check`). The connection's previous setting is restored afterwards.
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
    if (provider === 'sqlite') return await serialized(options.prisma, () => withBusyTimeout(options.prisma, timeout, () => migrateSqlite(options.prisma, migrations, timeout)));
    return await applyPending(options.prisma, provider, migrations, timeout, false);
  } catch (err) {
    throw toStorageError(op, err);
  }
}

/**
 * One transaction that applies every pending migration. With `foreignKeysOff` (SQLite only)
 * the connection must already have foreign keys off, and each migration is followed by a
 * `PRAGMA foreign_key_check`.
 */
async function applyPending(
  prisma: PrismaClientLike,
  provider: PrismaProvider,
  migrations: Migration[],
  timeout: number,
  foreignKeysOff: boolean,
): Promise<MigrateResult> {
  return prisma.$transaction(
    async (tx) => {
      if (provider === 'postgresql') {
        // The run (waiting for another process's run included) is bounded by `timeoutMs`, not by
        // the client's own statement_timeout / lock_timeout, which are meant for the SDK's queries.
        const ms = Math.max(1, Math.min(Math.floor(timeout), 2_147_483_647));
        await tx.$executeRawUnsafe(`SET LOCAL statement_timeout = ${ms}`);
        await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = ${ms}`);
        await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`);
        await tx.$executeRawUnsafe(
          'CREATE TABLE IF NOT EXISTS "maestrano_migrations" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" TIMESTAMP(3) NOT NULL)',
        );
      } else {
        // A write first, so this transaction holds SQLite's write lock (waiting for
        // another process's run) before it reads what is applied.
        await tx.$executeRawUnsafe('UPDATE "maestrano_migrations" SET "name" = "name" WHERE 0 = 1');
      }
      // The pragma was set on the client before BEGIN; this proves it took effect on the
      // connection this transaction runs on (it is a no-op if another transaction was open).
      if (foreignKeysOff && (await foreignKeysEnabled(tx))) throw new ForeignKeysStillOnError();
      const baseline = foreignKeysOff ? await foreignKeyViolations(tx) : new Map<string, number>();
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
        if (foreignKeysOff) await checkForeignKeys(tx, migration.name, baseline);
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
}

/** How many times a SQLite run retries when its connection still had foreign keys on at BEGIN. */
const FOREIGN_KEYS_ATTEMPTS = 3;

/**
 * SQLite: applies the pending migrations in one transaction. When one of them turns foreign
 * keys off (Prisma's table redefinitions), the pragma is issued on the connection before
 * BEGIN — SQLite ignores it inside a transaction, and a redefinition's `DROP TABLE` would
 * otherwise cascade to the child rows — and the previous setting is restored afterwards,
 * whatever happened.
 */
/**
 * Runs `run` with the connection's SQLite busy timeout raised to at least `timeout`: another
 * process's run holds the file's write lock, and only the driver's busy handler waits for it
 * (its own timeout, 5 s by default, would otherwise end the wait long before `timeoutMs`).
 * The previous value is put back afterwards.
 */
async function withBusyTimeout<T>(prisma: PrismaClientLike, timeout: number, run: () => Promise<T>): Promise<T> {
  const read = rows(await prisma.$queryRawUnsafe('PRAGMA busy_timeout'))[0];
  const previous = Number(read?.['timeout'] ?? read?.['busy_timeout'] ?? 0);
  const wanted = Math.max(Number.isFinite(previous) ? previous : 0, Math.min(timeout, 2_147_483_647));
  if (wanted === previous) return run();
  await prisma.$queryRawUnsafe(`PRAGMA busy_timeout = ${Math.floor(wanted)}`);
  try {
    return await run();
  } finally {
    try {
      await prisma.$queryRawUnsafe(`PRAGMA busy_timeout = ${Math.floor(previous)}`);
    } catch {
      // The run's own outcome matters more; the connection keeps the longer wait.
    }
  }
}

async function migrateSqlite(prisma: PrismaClientLike, migrations: Migration[], timeout: number): Promise<MigrateResult> {
  await prisma.$executeRawUnsafe(
    'CREATE TABLE IF NOT EXISTS "maestrano_migrations" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" DATETIME NOT NULL)',
  );
  // Read without the write lock: another process may apply some of these meanwhile, but the
  // set the transaction finds pending can only be smaller, so the decision stays safe.
  const done = new Set<string>(rows(await prisma.$queryRawUnsafe('SELECT "name" FROM "maestrano_migrations"')).map((row) => str(row, 'name')));
  for (const name of await prismaMigrateApplied(prisma, 'sqlite')) done.add(name);
  const needsForeignKeysOff = migrations.some((migration) => !done.has(migration.name) && disablesForeignKeys(migration.sql));
  if (!needsForeignKeysOff) return applyPending(prisma, 'sqlite', migrations, timeout, false);

  const deadline = Date.now() + timeout;
  const previous = await foreignKeysEnabled(prisma);
  let outcome: { ok: true; result: MigrateResult } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, result: await applyWithForeignKeysOff(prisma, migrations, timeout) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  try {
    await restoreForeignKeys(prisma, previous, deadline);
  } catch (restoreError) {
    const failed = outcome.ok ? '' : ` (the run had failed, nothing applied: ${toStorageError('migrations.apply', outcome.error).message})`;
    throw new StorageError(`${errorMessage(restoreError)}${failed}`, {
      adapterId: ADAPTER_ID,
      operation: FOREIGN_KEYS_OP,
      cause: outcome.ok ? restoreError : outcome.error,
    });
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}

async function applyWithForeignKeysOff(prisma: PrismaClientLike, migrations: Migration[], timeout: number): Promise<MigrateResult> {
  for (let attempt = 1; ; attempt++) {
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = OFF');
    try {
      return await applyPending(prisma, 'sqlite', migrations, timeout, true);
    } catch (err) {
      if (!(err instanceof ForeignKeysStillOnError)) throw err;
      if (attempt >= FOREIGN_KEYS_ATTEMPTS) {
        throw new StorageError(
          'migrate: could not turn SQLite foreign keys off for a migration that needs them off (another transaction held the connection, or the driver adapter runs transactions on a separate connection); nothing was applied. Run migrate() before the app uses the client.',
          { adapterId: ADAPTER_ID, operation: FOREIGN_KEYS_OP },
        );
      }
      await sleep(25 * attempt);
    }
  }
}

/** Puts `PRAGMA foreign_keys` back, retrying while another transaction holds the connection (the pragma is a no-op then). */
async function restoreForeignKeys(prisma: PrismaClientLike, enabled: boolean, deadline: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await prisma.$executeRawUnsafe(`PRAGMA foreign_keys = ${enabled ? 'ON' : 'OFF'}`);
    if ((await foreignKeysEnabled(prisma)) === enabled) return;
    if (Date.now() >= deadline) {
      throw new StorageError(
        `migrate: could not restore SQLite foreign_keys=${enabled ? 'ON' : 'OFF'} on the connection after the migrations; reconnect the client`,
        { adapterId: ADAPTER_ID, operation: FOREIGN_KEYS_OP },
      );
    }
    await sleep(Math.min(10 * attempt, 200));
  }
}

const FOREIGN_KEYS_OP: StorageOperation = 'migrations.foreign_key_check';

/** Thrown inside the transaction when the connection still enforces foreign keys; nothing was applied. */
class ForeignKeysStillOnError extends StorageError {
  constructor() {
    super('migrate: SQLite foreign keys are still on inside the migration transaction', {
      adapterId: ADAPTER_ID,
      operation: FOREIGN_KEYS_OP,
    });
  }
}

const FOREIGN_KEYS_OFF = /^PRAGMA\s+(?:main\s*\.\s*)?["`]?foreign_keys["`]?\s*=\s*["'`]?(?:off|false|no|0)["'`]?$/i;

/** True when the script turns foreign keys off (`PRAGMA foreign_keys=OFF`, as Prisma's table redefinitions do). */
function disablesForeignKeys(sql: string): boolean {
  return splitSqlStatements(sql).some((statement) => FOREIGN_KEYS_OFF.test(statement));
}

async function foreignKeysEnabled(client: PrismaTransactionLike): Promise<boolean> {
  const value = rows(await client.$queryRawUnsafe('PRAGMA foreign_keys'))[0]?.foreign_keys;
  return Number(value) === 1;
}

/** Dangling references reported by `PRAGMA foreign_key_check`, counted per child → parent table. */
async function foreignKeyViolations(tx: PrismaTransactionLike): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const row of rows(await tx.$queryRawUnsafe('PRAGMA foreign_key_check'))) {
    const key = `${str(row, 'table')} → ${str(row, 'parent')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Refuses a migration that left more dangling references than the database had before the run. */
async function checkForeignKeys(tx: PrismaTransactionLike, migration: string, baseline: Map<string, number>): Promise<void> {
  const added: string[] = [];
  for (const [key, count] of await foreignKeyViolations(tx)) {
    const extra = count - (baseline.get(key) ?? 0);
    if (extra > 0) added.push(`${key} (${extra} row${extra === 1 ? '' : 's'})`);
  }
  if (added.length === 0) return;
  throw new StorageError(
    `migration ${migration} leaves rows whose foreign key references no row: ${added.join(', ')}; nothing was applied`,
    { adapterId: ADAPTER_ID, operation: FOREIGN_KEYS_OP },
  );
}

/** Runs on one client one after another: the foreign-keys pragma is per connection, so overlapping runs would restore each other's setting. */
const sqliteRuns = new WeakMap<object, Promise<unknown>>();

function serialized<T>(client: object, run: () => Promise<T>): Promise<T> {
  const before = sqliteRuns.get(client) ?? Promise.resolve();
  const next = before.then(run, run);
  sqliteRuns.set(
    client,
    next.catch(() => {}),
  );
  return next;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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

/** A character that continues an unquoted PostgreSQL identifier (a `$` then starts no dollar quote). */
const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
/** A dollar-quote delimiter: `$$`, or a tag shaped as an unquoted identifier between two `$`. */
const DOLLAR_TAG = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

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
      // PostgreSQL's escape string (`E'it\'s'`): a backslash escapes the next character.
      const escapes = ch === "'" && /[eE]/.test(script[i - 1] ?? '') && !IDENTIFIER_CHAR.test(script[i - 2] ?? '');
      let j = i + 1;
      while (j < script.length) {
        if (escapes && script[j] === '\\') {
          j += 2;
          continue;
        }
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
    if (ch === '$' && !IDENTIFIER_CHAR.test(script[i - 1] ?? '')) {
      // A tag follows the rules of an unquoted identifier (`$body$`, `$fn1$`) or is empty (`$$`).
      const tag = DOLLAR_TAG.exec(script.slice(i));
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
