import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
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
    expect(() => parseConnecDate('not a date')).toThrow(PayloadValidationError);
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
