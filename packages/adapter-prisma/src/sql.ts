import type { JsonObject, JsonValue } from '@org/maestrano-sdk';

export type SqlProvider = 'postgresql' | 'sqlite';

/** A piece of SQL with its parameters; rendered with the provider's placeholders. */
export class Sql {
  constructor(
    readonly parts: readonly string[],
    readonly params: readonly SqlParam[],
  ) {}
}

/** A bound value, optionally with the PostgreSQL type it must be cast to. */
export class Param {
  constructor(
    readonly value: unknown,
    readonly pgType: 'jsonb' | 'text' | 'text[]' | 'bigint' | 'bigint[]' | 'timestamp' | 'timestamp[]' | null = null,
  ) {}
}

type SqlParam = Sql | Param | string | number | boolean | Date | null | undefined;

/** Tagged template: interpolated `Sql` is spliced in, anything else becomes a bound parameter. */
export function sql(strings: TemplateStringsArray, ...params: SqlParam[]): Sql {
  return new Sql(strings, params);
}

export function raw(text: string): Sql {
  return new Sql([text], []);
}

export const empty = raw('');

export function join(items: Sql[], separator: string): Sql {
  if (items.length === 0) return empty;
  const parts: string[] = [''];
  const params: SqlParam[] = [];
  items.forEach((item, index) => {
    if (index > 0) parts[parts.length - 1] += separator;
    params.push(item);
    parts.push('');
  });
  return new Sql(parts, params);
}

/** JSON value stored in a JSON column (jsonb on PostgreSQL, JSON text on SQLite). `undefined`/SQL NULL stay NULL. */
export function json(value: JsonValue | undefined, nullable: boolean): Param {
  if (value === undefined || (nullable && value === null)) return new Param(null, 'jsonb');
  return new Param(JSON.stringify(value), 'jsonb');
}

export function ts(value: Date | null): Param {
  return new Param(value, 'timestamp');
}

export function text(value: string | null): Param {
  return new Param(value, 'text');
}

export function bigint(value: string): Param {
  return new Param(value, 'bigint');
}

/**
 * A PostgreSQL array parameter (for `unnest`): one bound value however many rows, so a
 * 100-row insert is not a 1,000-placeholder statement to parse and plan. Timestamps go as
 * UTC text in the `timestamp(3)` input format, as single timestamp parameters arrive.
 */
export function pgArray(values: readonly (string | null)[], type: 'text[]'): Param;
export function pgArray(values: readonly (Date | null)[], type: 'timestamp[]'): Param;
export function pgArray(values: readonly (string | Date | null)[], type: 'text[]' | 'timestamp[]'): Param {
  if (type === 'timestamp[]') return new Param(values.map((v) => (v instanceof Date ? v.toISOString().replace('T', ' ').replace('Z', '') : null)), type);
  return new Param([...values], type);
}

export interface RenderedQuery {
  text: string;
  values: unknown[];
}

/** The PostgreSQL cast appended to a typed parameter's placeholder. */
const PG_CASTS: Record<NonNullable<Param['pgType']>, string> = {
  jsonb: '::jsonb',
  text: '::text',
  'text[]': '::text[]',
  bigint: '::bigint',
  'bigint[]': '::bigint[]',
  timestamp: '::timestamp(3)',
  'timestamp[]': '::timestamp(3)[]',
};

export function render(query: Sql, provider: SqlProvider): RenderedQuery {
  const values: unknown[] = [];
  const text = renderInto(query, provider, values);
  return { text, values };
}

function renderInto(query: Sql, provider: SqlProvider, values: unknown[]): string {
  let text = query.parts[0] ?? '';
  query.params.forEach((param, index) => {
    if (param instanceof Sql) {
      text += renderInto(param, provider, values);
    } else {
      values.push(param instanceof Param ? param.value : param === undefined ? null : param);
      if (provider === 'sqlite') text += '?';
      else text += `$${values.length}${param instanceof Param && param.pgType !== null ? PG_CASTS[param.pgType] : ''}`;
    }
    text += query.parts[index + 1] ?? '';
  });
  return text;
}

/** `column IN (...)` for a non-empty list: `= ANY($1::text[])` on PostgreSQL, an expanded list on SQLite. */
export function inList(column: Sql, items: readonly string[], provider: SqlProvider): Sql {
  if (provider === 'postgresql') return sql`${column} = ANY(${new Param([...items], 'text[]')})`;
  return sql`${column} IN (${join(
    items.map((item) => sql`${item}`),
    ', ',
  )})`;
}

/**
 * `column IN (...)` over BIGINT ids given as decimal text (a non-empty list):
 * `= ANY($1::bigint[])` on PostgreSQL, an expanded list on SQLite (the INTEGER column's
 * affinity converts the text values).
 */
export function inBigintList(column: Sql, ids: readonly string[], provider: SqlProvider): Sql {
  if (provider === 'postgresql') return sql`${column} = ANY(${new Param([...ids], 'bigint[]')})`;
  return sql`${column} IN (${join(
    ids.map((id) => sql`${bigint(id)}`),
    ', ',
  )})`;
}

/** Splits a list into chunks of at most `size` items (statements stay under bind limits). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------------------------------
// Row decoding. Prisma returns typed values for raw queries (Date for DateTime columns,
// parsed JSON for Json columns, bigint for BIGINT); the decoders also accept the other
// representations a driver adapter may hand back (ISO/epoch strings, JSON text, 0/1).

export type Row = Record<string, unknown>;

export class RowShapeError extends Error {
  override readonly name = 'RowShapeError';
}

export function rows(result: unknown): Row[] {
  if (!Array.isArray(result)) throw new RowShapeError('raw query did not return a list of rows');
  return result.map((row: unknown) => {
    if (typeof row !== 'object' || row === null) throw new RowShapeError('raw query returned a non-object row');
    const out: Row = {};
    for (const [key, value] of Object.entries(row)) out[key] = value;
    return out;
  });
}

export function str(row: Row, key: string): string {
  const value = row[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'number') return String(value);
  throw new RowShapeError(`column ${key}: expected text, got ${value === null ? 'null' : typeof value}`);
}

export function optStr(row: Row, key: string): string | null {
  return row[key] === null || row[key] === undefined ? null : str(row, key);
}

export function num(row: Row, key: string): number {
  const value = row[key];
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw new RowShapeError(`column ${key}: expected a number, got ${typeof value}`);
}

export function bool(row: Row, key: string): boolean {
  const value = row[key];
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value) !== 0;
  throw new RowShapeError(`column ${key}: expected a boolean, got ${typeof value}`);
}

export function toDate(value: unknown, key: string): Date {
  if (value instanceof Date) return new Date(value.getTime());
  if (typeof value === 'number' || typeof value === 'bigint') return new Date(Number(value));
  if (typeof value === 'string') {
    const parsed = /^\d+$/.test(value) ? new Date(Number(value)) : new Date(value);
    if (!Number.isNaN(parsed.getTime())) return parsed;
  }
  throw new RowShapeError(`column ${key}: expected a timestamp`);
}

export function date(row: Row, key: string): Date {
  return toDate(row[key], key);
}

export function optDate(row: Row, key: string): Date | null {
  return row[key] === null || row[key] === undefined ? null : toDate(row[key], key);
}

function toJson(value: unknown, key: string): JsonValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((item) => toJson(item, key));
  if (typeof value === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v, key);
    return out;
  }
  throw new RowShapeError(`column ${key}: not JSON`);
}

/**
 * A JSON column selected as text (see `jsonText`) and parsed here, so every JSON value
 * (scalars included) round-trips exactly on both databases.
 */
export function jsonCol(row: Row, key: string): JsonValue {
  const value = row[key];
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') {
    try {
      // JSON.parse yields JSON values only: no second walk (a copy of every job payload).
      return JSON.parse(value) as JsonValue;
    } catch {
      throw new RowShapeError(`column ${key}: stored text is not JSON`);
    }
  }
  return toJson(value, key);
}

/**
 * Selects a JSON column as its JSON text. On SQLite this also matters for correctness:
 * Prisma declares Json columns `JSONB`, which has NUMERIC affinity, so a stored JSON number
 * comes back as a SQL number that Prisma's Json decoding rejects; its text form is exact.
 */
export function jsonText(provider: SqlProvider, column: string, alias = column.replace(/^.*\./, '')): string {
  return provider === 'postgresql' ? `${column}::text AS ${alias}` : `CAST(${column} AS TEXT) AS ${alias}`;
}

export function jsonObject(row: Row, key: string): JsonObject {
  const value = jsonCol(row, key);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RowShapeError(`column ${key}: expected a JSON object`);
  }
  return value;
}

export function optJsonObject(row: Row, key: string): JsonObject | null {
  return row[key] === null || row[key] === undefined ? null : jsonObject(row, key);
}
