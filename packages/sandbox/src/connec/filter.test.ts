import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../types.js';
import { compareValues, FilterSyntaxError, matchesCondition, parseFilter, parseOrderBy } from './filter.js';

const record: JsonValue = {
  name: "O'Brien & Co",
  code: 'CT3',
  qty: 12,
  active: true,
  note: null,
  updated_at: '2026-03-01T10:00:00.500Z',
  address: { billing: { city: 'Sydney' } },
};

const matches = (expr: string) => parseFilter(expr).every((c) => matchesCondition(record, c));

describe('$filter parser and evaluation', () => {
  it.each([
    ["code eq 'CT3'", true],
    ["code ne 'CT3'", false],
    ['qty gt 11', true],
    ['qty gt 12', false],
    ['qty gte 12', true],
    ['qty lt 12', false],
    ['qty lte 12', true],
    ["qty eq '12'", true],
    ['active eq true', true],
    ['note eq null', true],
    ['missing eq null', true],
    ['name ne null', true],
    ["name eq 'O''Brien & Co'", true],
    ['name match /brien/i', true],
    ['name match /^brien/', false],
    ["name match 'BRIEN'", true],
    ["updated_at gt '2026-03-01T10:00:00Z'", true],
    ["updated_at lt '2026-03-01T10:00:01Z'", true],
    ["updated_at eq '2026-03-01T10:00:00.500Z'", true],
    ["address.billing.city eq 'Sydney'", true],
    ["code eq 'CT3' and qty gt 100", false],
    ["code eq 'CT3' AND qty gt 1 and active eq true", true],
    ['code eq CT3', true],
  ])('%s -> %s', (expr, expected) => {
    expect(matches(expr)).toBe(expected);
  });

  it.each(['', 'code', 'code like x', "code eq 'open", 'code eq', "a eq 'x' or b eq 'y'", 'qty gt /x/', 'name match /unclosed', '1abc eq 2'])(
    'rejects %j with FilterSyntaxError',
    (expr) => {
      expect(() => parseFilter(expr)).toThrow(FilterSyntaxError);
    },
  );

  it('parses $orderby lists and rejects bad directions', () => {
    expect(parseOrderBy('name ASC, updated_at desc')).toEqual([
      { field: ['name'], descending: false },
      { field: ['updated_at'], descending: true },
    ]);
    expect(parseOrderBy('sale_price.net_amount')).toEqual([{ field: ['sale_price', 'net_amount'], descending: false }]);
    expect(() => parseOrderBy('name UP')).toThrow(FilterSyntaxError);
    expect(() => parseOrderBy('')).toThrow(FilterSyntaxError);
  });

  it('compares dates by instant, numbers numerically and nulls first', () => {
    expect(compareValues('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.001Z')).toBeLessThan(0);
    expect(compareValues(9, 10)).toBeLessThan(0);
    expect(compareValues(null, 'a')).toBeLessThan(0);
    expect(compareValues('b', 'a')).toBeGreaterThan(0);
  });
});
