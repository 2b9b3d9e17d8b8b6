import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { CollectionRecord, RecordOf } from './entities.js';
import {
  collectionNames,
  connecCollections,
  isCollectionName,
  normalizeCollectionName,
  Person,
  parseConnecDate,
  referenceFields,
  subRecordIdPaths,
} from './entities.js';
import { PayloadValidationError } from './errors.js';
import type { ConnecRecord } from './schemas/shared.js';

describe('entity catalog', () => {
  it('covers the required collections with schemas and reference metadata', () => {
    for (const name of [
      'organizations',
      'people',
      'items',
      'invoices',
      'sales_orders',
      'purchase_orders',
      'quotes',
      'payments',
      'accounts',
      'tax_codes',
      'opportunities',
      'employees',
      'company',
    ]) {
      expect(isCollectionName(name)).toBe(true);
    }
    expect(Object.keys(referenceFields).sort()).toEqual([...collectionNames].sort());
    expect(Object.keys(subRecordIdPaths).sort()).toEqual([...collectionNames].sort());
    for (const refs of Object.values(referenceFields)) {
      for (const ref of refs) if (ref.target !== null) expect(isCollectionName(ref.target)).toBe(true);
    }
  });

  it('types every *_id field of every schema as a reference (an id array under external ids, PROTOCOL §6.6)', () => {
    const idArray = [{ id: 'x', provider: 'connec', realm: 'org-1' }];
    const system = new Set(['group_id', 'channel_id']);
    const checked: string[] = [];
    const visit = (schema: z.ZodType, path: string, seen: Set<z.ZodType>): void => {
      if (seen.has(schema)) return;
      seen.add(schema);
      if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
        visit(schema.unwrap() as z.ZodType, path, seen);
      } else if (schema instanceof z.ZodArray) {
        visit(schema.element as z.ZodType, path, seen);
      }
      if (!(schema instanceof z.ZodObject)) return;
      for (const [key, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
        const at = path ? `${path}/${key}` : key;
        if (key.endsWith('_id') && !system.has(key)) {
          checked.push(at);
          expect(field.safeParse(idArray).success, at).toBe(true);
          expect(field.safeParse('plain-uuid').success, at).toBe(true);
        }
        visit(field, at, new Set(seen));
      }
    };
    for (const [name, schema] of Object.entries(connecCollections)) visit(schema as z.ZodType, name, new Set());
    expect(checked).toContain('employees/employee_id');
    expect(checked).toContain('invoices/lines/item_id');
  });

  it('types records per collection', () => {
    expectTypeOf<CollectionRecord<'people'>['first_name']>().toEqualTypeOf<string | null | undefined>();
    expectTypeOf<RecordOf<'journals'>>().toEqualTypeOf<ConnecRecord>();
    expectTypeOf<RecordOf<'invoices'>>().toEqualTypeOf<CollectionRecord<'invoices'>>();
  });

  it('keeps fields Connec! adds, accepts nulls and empty sub-objects, and names the path of a violation', () => {
    const parsed = Person.parse({
      id: 'p1',
      first_name: null,
      address_work: { billing: {}, billing2: {} },
      brand_new_field: { nested: true },
      updated_at: '2016-10-04T00:36:23Z',
    });
    expect(parsed.brand_new_field).toEqual({ nested: true });
    const bad = Person.safeParse({ id: 'p1', phone_work: { mobile: 5 }, updated_at: 'yesterday' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('/'))).toEqual(['updated_at', 'phone_work/mobile']);
    expect(connecCollections.invoices.safeParse({ id: [{ id: 'x', provider: 'connec' }] }).success).toBe(false);
  });

  it('normalises entity names to collection names', () => {
    const cases: [string, string | undefined][] = [
      ['Person', 'people'],
      ['people', 'people'],
      ['Invoice', 'invoices'],
      ['invoices', 'invoices'],
      ['SalesOrder', 'sales_orders'],
      ['sales_order', 'sales_orders'],
      ['TaxCode', 'tax_codes'],
      ['Company', 'company'],
      ['Opportunity', 'opportunities'],
      ['TimeActivity', 'time_activities'],
      ['App user', 'app_users'],
      ['AppUser', 'app_users'],
      ['Widget', 'widgets'],
      ['SalesPerson', 'sales_people'],
      ['', undefined],
      ['a/b', undefined],
    ];
    for (const [input, expected] of cases) expect([input, normalizeCollectionName(input)]).toEqual([input, expected]);
  });

  it('parses Connec! timestamps into Dates', () => {
    expect(parseConnecDate('2016-10-04T00:36:23Z').toISOString()).toBe('2016-10-04T00:36:23.000Z');
    expect(parseConnecDate('2016-10-04T10:36:23.250+10:00').toISOString()).toBe('2016-10-04T00:36:23.250Z');
    expect(() => parseConnecDate('not a date')).toThrow(PayloadValidationError);
  });

  it('reads a timestamp without an offset as UTC, not host local time (see also test/timezone.test.ts)', () => {
    // Compared with Date.UTC, so the check holds on any host; the child-process test runs it west of UTC.
    expect(parseConnecDate('2016-01-01T00:00:00').getTime()).toBe(Date.UTC(2016, 0, 1));
    expect(parseConnecDate('2016-07-01T12:30').getTime()).toBe(Date.UTC(2016, 6, 1, 12, 30));
    expect(parseConnecDate('2016-07-01T12:30:05.5').getTime()).toBe(Date.UTC(2016, 6, 1, 12, 30, 5, 500));
    // Whatever the schema accepts parseConnecDate reads, and the other way round.
    expect(Person.safeParse({ id: 'p1', updated_at: '2016-01-01T00:00:00' }).success).toBe(true);
  });

  it('refuses anything that is not an ISO-8601 date-time, instead of guessing', () => {
    for (const value of ['1', 'banana 12', 'May 5', '2016-13-45', '12/31/2016', '2016-01-01 00:00:00 UTC', '2016-01-01', '2015-02-29T00:00:00Z', '', 42]) {
      let error: unknown;
      try {
        parseConnecDate(value as string);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(value)).toBeInstanceOf(PayloadValidationError);
      expect(Person.safeParse({ id: 'p1', updated_at: value }).success, JSON.stringify(value)).toBe(false);
    }
  });
});

describe('package exports', () => {
  it('keeps the exports map and the tsup entries in sync', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    const tsup = readFileSync(new URL('../tsup.config.ts', import.meta.url), 'utf8');
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    expect(subpaths).toEqual(['.', './entities']);
    for (const [subpath, entry] of [
      ['.', 'index'],
      ['./entities', 'entities'],
    ] as const) {
      expect(pkg.exports[subpath]).toEqual({
        '@org/source': `./src/${entry}.ts`,
        types: `./dist/${entry}.d.ts`,
        default: `./dist/${entry}.js`,
      });
      expect(tsup).toContain(`${entry}: 'src/${entry}.ts'`);
    }
  });
});
