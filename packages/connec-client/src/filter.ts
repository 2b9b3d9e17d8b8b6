/**
 * A typed builder for Connec!'s OData-like `$filter` (PROTOCOL §6.4):
 * `eq ne gt lt gte lte match`, `and`, the `null` literal, strings quoted with `'`.
 *
 * ```ts
 * and(eq('status', 'ACTIVE'), gt('updated_at', since), isNull('code')).toString()
 * // status eq 'ACTIVE' and updated_at gt '2016-01-01T00:00:00Z' and code eq null
 * ```
 */
import { PayloadValidationError } from './errors.js';

export type ComparisonOperator = 'eq' | 'ne' | 'gt' | 'lt' | 'gte' | 'lte';
/** A literal a field can be compared with. Dates are sent as quoted ISO-8601 UTC strings. */
export type FilterValue = string | number | boolean | Date | null;

/** An immutable `$filter` expression; `toString()` gives the wire form. */
export class Filter {
  readonly #terms: readonly string[];
  private constructor(terms: readonly string[]) {
    this.#terms = terms;
  }

  /** A filter from raw terms, joined by `and`. Terms are sent as they are. */
  static of(...terms: string[]): Filter {
    return new Filter(terms);
  }

  /** The individual terms joined by `and`. */
  get terms(): readonly string[] {
    return this.#terms;
  }

  and(...others: Filter[]): Filter {
    return new Filter([...this.#terms, ...others.flatMap((other) => other.terms)]);
  }

  toString(): string {
    return this.#terms.join(' and ');
  }
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*$/;

function invalid(message: string, path: string): PayloadValidationError {
  return new PayloadValidationError(`Invalid $filter: ${message}`, { issues: [{ path, message }] });
}

function checkField(field: string): string {
  if (!FIELD.test(field)) throw invalid(`"${field}" is not a field name`, 'field');
  return field;
}

/** ISO-8601 UTC, without milliseconds when they are zero (`2016-01-01T00:00:00Z`). */
export function formatFilterDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw invalid('invalid Date', 'value');
  const iso = date.toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

/**
 * A number in plain decimal notation (`0.0000001`, not `1e-7`): Connec!'s number literals are
 * digits with an optional fraction. The digits are those of `String(value)` (the shortest form
 * that reads back as the same number), only the exponent is expanded.
 */
function plainDecimal(value: number): string {
  const text = String(value);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const [, sign = '', int = '', frac = '', exp = '0'] = m;
  const digits = `${int}${frac}`;
  const point = int.length + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`.replace(/0+$/, '');
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** The wire form of a literal: quoted strings (quotes doubled), bare numbers and booleans, `null`. */
export function formatFilterValue(value: FilterValue): string {
  if (value === null) return 'null';
  if (value instanceof Date) return `'${formatFilterDate(value)}'`;
  switch (typeof value) {
    case 'string':
      return `'${value.replaceAll("'", "''")}'`;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`${value} is not a finite number`, 'value');
      return plainDecimal(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      throw invalid(`unsupported value type ${typeof value}`, 'value');
  }
}

function compare(field: string, op: ComparisonOperator, value: FilterValue): Filter {
  return Filter.of(`${checkField(field)} ${op} ${formatFilterValue(value)}`);
}

export const eq = (field: string, value: FilterValue): Filter => compare(field, 'eq', value);
export const ne = (field: string, value: FilterValue): Filter => compare(field, 'ne', value);
export const gt = (field: string, value: Exclude<FilterValue, null | boolean>): Filter => compare(field, 'gt', value);
export const lt = (field: string, value: Exclude<FilterValue, null | boolean>): Filter => compare(field, 'lt', value);
export const gte = (field: string, value: Exclude<FilterValue, null | boolean>): Filter => compare(field, 'gte', value);
export const lte = (field: string, value: Exclude<FilterValue, null | boolean>): Filter => compare(field, 'lte', value);
/** `field eq null`. */
export const isNull = (field: string): Filter => compare(field, 'eq', null);
/** `field ne null`. */
export const notNull = (field: string): Filter => compare(field, 'ne', null);

/**
 * A RegExp source with every `/` escaped, so it fits between the `/…/` delimiters of a `$filter`
 * literal, which ends at the first unescaped `/`. `RegExp.prototype.source` escapes a `/` outside a
 * character class but leaves one inside (`/[/]/.source === '[/]'`). An escape sequence (`\/`,
 * `\\`) is copied as it is, so the `/` of `[\\/]` (a backslash or a slash) is escaped too. `\/`
 * means `/` inside a class and out of it, so the pattern matches what it matched before.
 */
function escapeSlashes(source: string): string {
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      out += source.slice(i, i + 2);
      i++;
    } else out += ch === '/' ? '\\/' : ch;
  }
  return out;
}

/**
 * `field match /pattern/`. A string is escaped and matched literally; a RegExp is sent as its
 * source with every `/` escaped (flags other than `i` are rejected; Connec!'s regex dialect has no
 * flags beyond it).
 */
export function match(field: string, pattern: string | RegExp): Filter {
  let source: string;
  let flags = '';
  if (pattern instanceof RegExp) {
    if (/[^i]/.test(pattern.flags)) throw invalid(`unsupported regex flags "${pattern.flags}"`, 'pattern');
    source = escapeSlashes(pattern.source);
    flags = pattern.flags;
  } else {
    source = pattern.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  if (source === '') throw invalid('empty pattern', 'pattern');
  return Filter.of(`${checkField(field)} match /${source}/${flags}`);
}

/** Conjunction of filters (and raw filter strings, taken as they are). Empty parts are dropped. */
export function and(...parts: (Filter | string | undefined)[]): Filter {
  const terms: string[] = [];
  for (const part of parts) {
    if (part === undefined) continue;
    if (typeof part === 'string') {
      if (part.trim() !== '') terms.push(part.trim());
    } else terms.push(...part.terms);
  }
  if (terms.length === 0) throw invalid('and() needs at least one term', 'and');
  return Filter.of(...terms);
}
