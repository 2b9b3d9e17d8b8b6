import { describe, expect, it } from 'vitest';
import { PayloadValidationError } from './errors.js';
import { and, eq, Filter, formatFilterDate, gt, gte, isNull, lt, lte, match, ne, notNull } from './filter.js';

describe('$filter builder', () => {
  it('renders every operator with the right literal form', () => {
    expect(eq('code', 'CT3').toString()).toBe("code eq 'CT3'");
    expect(ne('status', 'ARCHIVED').toString()).toBe("status ne 'ARCHIVED'");
    expect(eq('is_lead', true).toString()).toBe('is_lead eq true');
    expect(gt('balance', 10.5).toString()).toBe('balance gt 10.5');
    expect(lt('quantity', -2).toString()).toBe('quantity lt -2');
    expect(gte('updated_at', new Date('2016-01-01T00:00:00Z')).toString()).toBe("updated_at gte '2016-01-01T00:00:00Z'");
    expect(lte('updated_at', new Date('2016-01-01T11:59:59.869Z')).toString()).toBe("updated_at lte '2016-01-01T11:59:59.869Z'");
    expect(isNull('code').toString()).toBe('code eq null');
    expect(notNull('code').toString()).toBe('code ne null');
    expect(eq('name', null).toString()).toBe('name eq null');
  });

  it('quotes strings, doubling single quotes', () => {
    expect(eq('last_name', "O'Hara").toString()).toBe("last_name eq 'O''Hara'");
  });

  it('builds match from a literal string (escaped) or a RegExp', () => {
    expect(match('name', 'a.b/c').toString()).toBe('name match /a\\.b\\/c/');
    expect(match('name', /^ab+c/i).toString()).toBe('name match /^ab+c/i');
    expect(() => match('name', /x/g)).toThrow(PayloadValidationError);
    expect(() => match('name', '')).toThrow(PayloadValidationError);
  });

  it('combines with and(), flattening nested filters and raw strings', () => {
    const f = and(eq('type', 'CUSTOMER'), and(eq('status', 'DRAFT'), "amount gt 5"), undefined, '  ');
    expect(f.toString()).toBe("type eq 'CUSTOMER' and status eq 'DRAFT' and amount gt 5");
    expect(f.terms).toHaveLength(3);
    expect(eq('a', 1).and(eq('b', 2)).toString()).toBe('a eq 1 and b eq 2');
    expect(Filter.of('x eq 1').toString()).toBe('x eq 1');
    expect(() => and()).toThrow(PayloadValidationError);
  });

  it('rejects field names that could inject syntax, and non-finite numbers and invalid dates', () => {
    expect(() => eq("name eq 'x' or 1", 'y')).toThrow(PayloadValidationError);
    expect(() => eq('', 'y')).toThrow(PayloadValidationError);
    expect(eq('address.billing.city', 'Sydney').toString()).toBe("address.billing.city eq 'Sydney'");
    expect(() => gt('n', Number.NaN)).toThrow(PayloadValidationError);
    expect(() => formatFilterDate(new Date('nope'))).toThrow(PayloadValidationError);
  });
});
