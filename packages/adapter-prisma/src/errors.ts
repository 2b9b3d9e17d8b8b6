import { StorageConflictError, StorageError, type StorageOperation } from '@org/maestrano-sdk';

export const ADAPTER_ID = 'prisma';

/** PostgreSQL / SQLite codes and Prisma codes that mean "a unique constraint was violated". */
const UNIQUE_CODES = new Set(['P2002', '23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY', '2067', '1555']);

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
}

/** The error and its `cause`s, outermost first (Prisma nests the driver error a few levels down). */
function* causeChain(err: unknown): Generator<unknown> {
  for (let current = err, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    yield current;
    current = field(current, 'cause');
  }
}

/**
 * True when a Prisma/driver error is a unique violation. Prisma reports it as `P2002`
 * from its query API and, for raw SQL, either as `P2002` or as `P2010` whose `meta` holds
 * the database code (`23505` on PostgreSQL); the driver error may also be nested in `cause`.
 */
export function isUniqueViolation(err: unknown): boolean {
  for (const current of causeChain(err)) {
    const code = field(current, 'code');
    if (typeof code === 'string' && UNIQUE_CODES.has(code)) return true;
    const meta = field(current, 'meta');
    for (const key of ['code', 'driverAdapterError']) {
      const metaCode = field(meta, key);
      if (typeof metaCode === 'string' && UNIQUE_CODES.has(metaCode)) return true;
      const kind = field(field(metaCode, 'cause'), 'kind');
      if (kind === 'UniqueConstraintViolation') return true;
    }
    if (field(field(current, 'cause'), 'kind') === 'UniqueConstraintViolation') return true;
    const message = field(current, 'message');
    if (typeof message === 'string' && /unique constraint|duplicate key value violates unique/i.test(message)) return true;
  }
  return false;
}

/**
 * What the database said is missing when the adapter's schema is not (fully) migrated: a
 * table (`migrate()` never ran; `pgTable` on PostgreSQL, where it may also sit in a schema
 * the connection's search_path does not name) or a column (a newer migration of this
 * package not applied). Read from the driver adapter's error kind, or failing that from the
 * database's message.
 */
export function missingSchema(err: unknown): 'table' | 'pgTable' | 'column' | null {
  for (const current of causeChain(err)) {
    const cause = field(field(field(current, 'meta'), 'driverAdapterError'), 'cause') ?? field(current, 'cause');
    const kind = field(cause, 'kind');
    // 42P01 is PostgreSQL's undefined_table.
    if (kind === 'TableDoesNotExist') return field(cause, 'originalCode') === '42P01' ? 'pgTable' : 'table';
    if (kind === 'ColumnNotFound') return 'column';
    const message = field(current, 'message');
    if (typeof message === 'string') {
      if (/relation "maestrano_\w+" does not exist/i.test(message)) return 'pgTable';
      if (/no such table: maestrano_/i.test(message)) return 'table';
      if (/column "?[\w.]+"? does not exist|no such column/i.test(message)) return 'column';
    }
  }
  return null;
}

const TABLES_MISSING =
  "the adapter's tables are missing: run `await migrate({ prisma })` from @org/maestrano-adapter-prisma (or copy its migrations and run `prisma migrate deploy`) before using it";

const SCHEMA_HINTS = {
  table: TABLES_MISSING,
  // The adapter's SQL names its tables without a schema, so PostgreSQL looks them up through
  // the connection's search_path, whatever `PrismaPg(…, { schema })` or `?schema=` say (those
  // reach Prisma's model queries and CLI only). migrate() on such a connection would create a
  // second set of tables in `public`, hence the warning.
  pgTable: `${TABLES_MISSING}. If they are in a PostgreSQL schema other than public (\`?schema=\` in the URL, \`new PrismaPg(…, { schema })\`), the connection's search_path must name it: \`new PrismaPg({ connectionString, options: '-c search_path=<schema>' }, { schema: '<schema>' })\`; run migrate() only after that, or it creates the tables in public`,
  column:
    'a migration of @org/maestrano-adapter-prisma is not applied (was the package upgraded?): run `await migrate({ prisma })` (or `prisma migrate deploy` with its new migrations) before new code serves traffic',
} as const;

/**
 * The one translation point from Prisma/driver errors to the SDK's taxonomy: unique
 * violations become `StorageConflictError`, anything else `StorageError`, both naming the
 * operation and keeping the driver error as `cause`. Errors that already are
 * `StorageError`s pass through unchanged.
 */
export function toStorageError(operation: StorageOperation, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  if (isUniqueViolation(err)) {
    return new StorageConflictError(`${operation}: unique constraint violated`, {
      adapterId: ADAPTER_ID,
      operation,
      cause: err,
    });
  }
  // Redacted before `firstLine` shortens it, so a cut can never leave half a secret behind.
  const detail = err instanceof Error ? firstLine(redactCredentials(err.message)) : redactCredentials(String(err));
  // The hints say to run migrate(): inside migrate() a missing table or column is one that an
  // app migration (`migrationsDir`) names, which neither the adapter's tables nor migrate() can fix.
  const missing = operation.startsWith('migrations.') ? null : missingSchema(err);
  const hint = missing ? `; ${SCHEMA_HINTS[missing]}` : '';
  return new StorageError(`${operation} failed: ${detail}${hint}`, { adapterId: ADAPTER_ID, operation, cause: err });
}

/** Prisma messages span many lines (query echo, invocation context); the first useful one is enough. */
function firstLine(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('Invalid `') && !line.startsWith('→'));
  const line = lines.at(-1) ?? 'unknown error';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * Driver messages may quote a connection string (`postgresql://user:secret@host/db`) or a
 * keyword form (`password=secret`): user info and passwords never reach our message (the
 * driver error stays available as `cause`).
 */
function redactCredentials(text: string): string {
  // Keyword passwords first (`?password=p@ss` in a URL too), then URL user info up to the last
  // `@` (a password may hold an unencoded `@` or `/`): cut the other way round, the URL's cut
  // would stop inside such a keyword password and leave its tail, with no `password=` to match.
  return text.replace(/\b(password|pwd)\s*=\s*[^\s;&]+/gi, '$1=***').replace(/([a-z][a-z0-9+.-]*:\/\/)\S*@/gi, '$1***@');
}
