import type { JsonValue } from '../types.js';
import { parseInstant } from '../util.js';

export type FilterOperator = 'eq' | 'ne' | 'gt' | 'lt' | 'gte' | 'lte' | 'match';
export type FilterLiteral =
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'null' }
  | { type: 'regex'; value: RegExp };

export interface FilterCondition {
  field: string[];
  op: FilterOperator;
  literal: FilterLiteral;
}

export class FilterSyntaxError extends Error {}

const OPERATORS: ReadonlyArray<FilterOperator> = ['eq', 'ne', 'gt', 'lt', 'gte', 'lte', 'match'];

function toOperator(value: string): FilterOperator | undefined {
  return OPERATORS.find((op) => op === value);
}

/**
 * Parses a Connec! `$filter` expression: `field op literal` clauses joined by `and`
 * (case-insensitive). Literals: 'quoted' strings ('' escapes a quote), numbers, true,
 * false, null, /regex/flags (for match) and bare words (treated as strings).
 * Fields may be dotted paths into nested objects (`address.billing.city`).
 */
export function parseFilter(input: string): FilterCondition[] {
  const conditions: FilterCondition[] = [];
  let i = 0;
  const s = input;
  const skipWs = () => {
    while (i < s.length && /\s/.test(s[i] ?? '')) i++;
  };
  const word = (): string => {
    const start = i;
    while (i < s.length && !/\s/.test(s[i] ?? '')) i++;
    return s.slice(start, i);
  };
  skipWs();
  if (i >= s.length) throw new FilterSyntaxError('Empty $filter');
  for (;;) {
    skipWs();
    const field = word();
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(field)) throw new FilterSyntaxError(`Invalid field name '${field}' in $filter`);
    skipWs();
    const rawOp = word();
    const op = toOperator(rawOp.toLowerCase());
    if (!op) throw new FilterSyntaxError(`Unknown operator '${rawOp}' in $filter (expected eq, ne, gt, lt, gte, lte or match)`);
    skipWs();
    let literal: FilterLiteral;
    const c = s[i];
    if (c === "'" || c === '"') {
      const quote = c;
      i++;
      let value = '';
      for (;;) {
        if (i >= s.length) throw new FilterSyntaxError('Unterminated string in $filter');
        const ch = s[i] ?? '';
        if (ch === quote) {
          if (s[i + 1] === quote) {
            value += quote;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += ch;
        i++;
      }
      literal = { type: 'string', value };
    } else if (c === '/') {
      let close = -1;
      for (let j = i + 1; j < s.length; j++) {
        if (s[j] === '\\') {
          j++;
          continue;
        }
        if (s[j] === '/') {
          close = j;
          break;
        }
      }
      if (close < 0) throw new FilterSyntaxError('Unterminated regular expression in $filter');
      const source = s.slice(i + 1, close);
      i = close + 1;
      const flagsStart = i;
      while (i < s.length && /[a-z]/.test(s[i] ?? '')) i++;
      const flags = s.slice(flagsStart, i);
      try {
        literal = { type: 'regex', value: new RegExp(source, flags.replace(/[^imsu]/g, '')) };
      } catch {
        throw new FilterSyntaxError(`Invalid regular expression /${source}/ in $filter`);
      }
    } else {
      const raw = word();
      if (raw === '') throw new FilterSyntaxError(`Missing value after '${field} ${op}' in $filter`);
      if (raw === 'null') literal = { type: 'null' };
      else if (raw === 'true' || raw === 'false') literal = { type: 'boolean', value: raw === 'true' };
      else if (/^-?\d+(\.\d+)?$/.test(raw)) literal = { type: 'number', value: Number(raw) };
      else literal = { type: 'string', value: raw };
    }
    if (op === 'match' && literal.type !== 'regex' && literal.type !== 'string') throw new FilterSyntaxError("'match' needs a /regex/ or a string");
    if (literal.type === 'regex' && op !== 'match') throw new FilterSyntaxError('A /regex/ value is only allowed with match');
    conditions.push({ field: field.split('.'), op, literal });
    skipWs();
    if (i >= s.length) break;
    const joiner = word();
    if (joiner.toLowerCase() !== 'and') throw new FilterSyntaxError(`Expected 'and' in $filter, found '${joiner}'`);
  }
  return conditions;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function getPath(value: JsonValue | undefined, path: string[]): JsonValue | undefined {
  let current: JsonValue | undefined = value;
  for (const key of path) {
    if (current === null || current === undefined || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = current[key];
  }
  return current;
}

/**
 * Compares two values: numbers numerically, ISO dates by instant (one without an offset is UTC),
 * other strings lexically.
 */
export function compareValues(a: JsonValue | undefined, b: JsonValue | undefined): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') {
    if (ISO_DATE.test(a) && ISO_DATE.test(b)) {
      const d = parseInstant(a) - parseInstant(b);
      if (!Number.isNaN(d)) return d;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const sa = typeof a === 'object' ? JSON.stringify(a) : String(a);
  const sb = typeof b === 'object' ? JSON.stringify(b) : String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function literalValue(literal: FilterLiteral, actual: JsonValue): JsonValue {
  switch (literal.type) {
    case 'null':
      return null;
    case 'regex':
      return literal.value.source;
    case 'string':
      if (typeof actual === 'number' && /^-?\d+(\.\d+)?$/.test(literal.value)) return Number(literal.value);
      if (typeof actual === 'boolean' && (literal.value === 'true' || literal.value === 'false')) return literal.value === 'true';
      return literal.value;
    default:
      return literal.value;
  }
}

export function matchesCondition(data: JsonValue, cond: FilterCondition): boolean {
  return testCondition(getPath(data, cond.field), cond);
}

/** Tests one already-extracted field value against a condition. */
export function testCondition(actual: JsonValue | undefined, cond: FilterCondition): boolean {
  if (cond.op === 'match') {
    if (typeof actual !== 'string') return false;
    if (cond.literal.type === 'regex') return cond.literal.value.test(actual);
    if (cond.literal.type === 'string') return actual.toLowerCase().includes(cond.literal.value.toLowerCase());
    return false;
  }
  if (cond.literal.type === 'null') {
    const isNull = actual === null || actual === undefined;
    if (cond.op === 'eq') return isNull;
    if (cond.op === 'ne') return !isNull;
    return false;
  }
  if (actual === undefined || actual === null) return cond.op === 'ne';
  const cmp = compareValues(actual, literalValue(cond.literal, actual));
  switch (cond.op) {
    case 'eq':
      return cmp === 0;
    case 'ne':
      return cmp !== 0;
    case 'gt':
      return cmp > 0;
    case 'lt':
      return cmp < 0;
    case 'gte':
      return cmp >= 0;
    case 'lte':
      return cmp <= 0;
  }
}

export interface OrderBy {
  field: string[];
  descending: boolean;
}

export function parseOrderBy(input: string): OrderBy[] {
  const out: OrderBy[] = [];
  for (const part of input.split(',')) {
    const tokens = part.trim().split(/\s+/).filter(Boolean);
    const [field, dir, extra] = tokens;
    if (!field || extra !== undefined || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(field)) throw new FilterSyntaxError(`Invalid $orderby '${input}'`);
    const d = (dir ?? 'ASC').toUpperCase();
    if (d !== 'ASC' && d !== 'DESC') throw new FilterSyntaxError(`Invalid $orderby direction '${dir}' (expected ASC or DESC)`);
    out.push({ field: field.split('.'), descending: d === 'DESC' });
  }
  return out;
}
