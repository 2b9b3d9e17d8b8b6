// defineEntity / defineConnector: what the types reject (checked by `tsc -p packages/sdk`, which
// includes test/: every `@ts-expect-error` below fails the typecheck once the error it expects
// is gone) and what only the run-time checks can catch (ConnectorDefinitionError).
import type { RecordOf } from '@org/connec-client';
import { ClientConfigError as ConnecClientConfigError } from '@org/connec-client';
import {
  ClientConfigError,
  ConfigError,
  type ConflictPolicy,
  type ConflictStrategy,
  ConnectorDefinitionError,
  createMaestrano,
  defineConnector,
  defineEntity,
  type LocalContext,
  type Logger,
  type MaestranoErrorOptions,
  type MapperContext,
  memoryAdapter,
} from '@org/maestrano-sdk';
import { createTestCertificate } from '@org/maestrano-sdk/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';

interface Org {
  id: string;
  name: string;
  revenue: number;
}

const store = { create: async () => ({ id: 'x' }), update: async () => undefined };
const inbound = <const K extends string>(name: string, connec: K, references: Record<string, string> = {}) =>
  defineEntity({ name, connec, direction: 'inbound', references, toLocal: () => ({}), local: store });

describe('defineEntity types: the record type comes from the collection, never from a mapper', () => {
  it('checks what a named or annotated toConnec returns against the collection', () => {
    function orgToConnec(o: Org) {
      return { name: o.name, annual_revenue: 'lots' };
    }
    defineEntity({
      name: 'named',
      connec: 'organizations',
      direction: 'outbound',
      // @ts-expect-error annual_revenue is a number in Connec!'s organization schema
      toConnec: orgToConnec,
      localId: (o: Org) => o.id,
    });
    defineEntity({
      name: 'annotated',
      connec: 'organizations',
      direction: 'outbound',
      // @ts-expect-error name is a string in Connec!'s organization schema
      toConnec: (_o: Org) => ({ name: 42 }),
      localId: (o: Org) => o.id,
    });
    defineEntity({
      name: 'annotated-on-create',
      connec: 'organizations',
      direction: 'outbound',
      toConnec: (o: Org) => ({ name: o.name }),
      // @ts-expect-error name is a string in Connec!'s organization schema
      toConnecOnCreate: (o: Org) => ({ name: o.revenue }),
      localId: (o: Org) => o.id,
    });
    // A correct named mapper is fine, and the other mappers still see an Organization.
    const orgOk = (o: Org) => ({ name: o.name, annual_revenue: o.revenue });
    const ok = defineEntity({
      name: 'ok',
      connec: 'organizations',
      direction: 'both',
      toConnec: orgOk,
      toLocal: (o) => {
        expectTypeOf(o).toEqualTypeOf<RecordOf<'organizations'>>();
        return { id: '', name: o.name ?? '', revenue: o.annual_revenue ?? 0 };
      },
      filter: (rec) => {
        expectTypeOf(rec).toEqualTypeOf<RecordOf<'organizations'>>();
        return rec.name !== null;
      },
      localId: (o) => o.id,
      local: store,
    });
    expect(ok.name).toBe('ok');
  });

  it('does not let an annotated toLocal or filter parameter replace the collection record', () => {
    defineEntity({
      name: 'tolocal',
      connec: 'organizations',
      direction: 'inbound',
      // @ts-expect-error the record is an Organization, which has no `nmae: string`
      toLocal: (o: { nmae: string }) => ({ name: o.nmae }),
      local: store,
    });
    defineEntity({
      name: 'tolocal-on-create',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ name: o.name ?? '' }),
      // @ts-expect-error the record is an Organization, whose `name` may be null
      toLocalOnCreate: (o: { name: string }) => ({ name: o.name }),
      local: store,
    });
    defineEntity({
      name: 'filter',
      connec: 'people',
      direction: 'inbound',
      // @ts-expect-error the record is a Person, whose `is_vip` (outside the schema) is unknown
      filter: (rec: { is_vip: boolean }) => rec.is_vip,
      toLocal: (p) => ({ name: p.first_name ?? '' }),
      local: store,
    });
    defineEntity({
      name: 'filter-compare',
      connec: 'organizations',
      direction: 'outbound',
      toConnec: (o: Org) => ({ name: o.name }),
      // @ts-expect-error name is a string (or null) in Connec!'s organization schema
      filter: (rec) => rec.name === 1,
      localId: (o: Org) => o.id,
    });
    // A different record type stays possible, explicitly (third type argument).
    const custom = defineEntity<'organizations', { n: string }, { id: string; nmae: string }>({
      name: 'custom',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ n: o.nmae }),
      local: store,
    });
    expect(custom.name).toBe('custom');
  });

  it('takes the explicit record type as an interface too (no index signature needed)', () => {
    interface MyOrganization {
      id: string;
      name: string | null;
      vat_number?: string;
    }
    const orgs = defineEntity<'organizations', { name: string; vat: string | null }, MyOrganization>({
      name: 'orgs',
      connec: 'organizations',
      direction: 'both',
      toLocal: (o) => ({ name: o.name ?? '', vat: o.vat_number ?? null }),
      // Fields outside the interface are still accepted (Connec! records are open).
      toConnec: (o) => ({ name: o.name, vat_number: o.vat ?? undefined, industry: 'x' }),
      localId: (o) => o.name,
      local: store,
    });
    expectTypeOf(orgs.inbound?.toLocal).not.toBeAny();
    expect(orgs.inbound?.toLocal({ id: 'o-1', name: 'Acme', vat_number: 'FR1' }, {} as MapperContext)).toEqual({ name: 'Acme', vat: 'FR1' });
    defineEntity<'organizations', { name: string }, MyOrganization>({
      name: 'typo',
      connec: 'organizations',
      direction: 'inbound',
      // @ts-expect-error the interface types the record: `nmae` is not one of its fields
      toLocal: (o) => ({ name: o.nmae }),
      local: store,
    });
  });
});

describe('defineEntity types: local.* receive exactly what toLocal produces', () => {
  interface NewCompany {
    name: string;
    vatNumber: string;
  }
  const insert = async (row: NewCompany) => row.vatNumber;

  it('rejects a local store that needs more than toLocal gives', () => {
    defineEntity({
      name: 'inferred',
      connec: 'organizations',
      direction: 'inbound',
      // @ts-expect-error toLocal forgets vatNumber, which local.create needs
      toLocal: (o) => ({ name: o.name ?? '' }),
      local: {
        create: async (data: NewCompany) => ({ id: await insert(data) }),
        update: async (_id: string, data: NewCompany) => {
          await insert(data);
        },
      },
    });
    defineEntity<'organizations', { name: string }>({
      name: 'create',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ name: o.name ?? '' }),
      local: {
        // @ts-expect-error create would get no vatNumber
        create: async (data: NewCompany) => ({ id: await insert(data) }),
        update: async () => undefined,
      },
    });
    defineEntity<'organizations', { name: string }>({
      name: 'update',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ name: o.name ?? '' }),
      local: {
        create: async () => ({ id: 'x' }),
        // @ts-expect-error update would get no vatNumber
        update: async (_id: string, data: NewCompany) => {
          await insert(data);
        },
      },
    });
    defineEntity<'organizations', { name: string }>({
      name: 'create-many',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ name: o.name ?? '' }),
      local: {
        create: async () => ({ id: 'x' }),
        update: async () => undefined,
        // @ts-expect-error createMany would get no vatNumber
        createMany: async (items: { data: NewCompany; ctx: LocalContext }[]) => Promise.all(items.map(async (i) => ({ id: await insert(i.data) }))),
      },
    });
  });

  it('accepts a local store that takes what toLocal gives, or less', () => {
    const entity = defineEntity({
      name: 'ok',
      connec: 'organizations',
      direction: 'inbound',
      toLocal: (o) => ({ name: o.name ?? '', vatNumber: '' }),
      local: {
        create: async (data: { name: string }) => ({ id: data.name }),
        update: async (_id: string, data: NewCompany) => {
          await insert(data);
        },
        createMany: async (items) => items.map((i) => ({ id: i.data.vatNumber })),
        get: async () => null,
      },
    });
    expect(entity.inbound?.local.createMany).toBeTypeOf('function');
  });
});

describe('defineEntity: a known collection must be spelt as in the API', () => {
  it('refuses the singular or capitalised name of a known collection outside the typed catalog', () => {
    expect(() => inbound('p', 'project')).toThrow(ConnectorDefinitionError);
    expect(() => inbound('p', 'project')).toThrow('"connec" must be the collection\'s API name "projects", not "project"');
    expect(() => inbound('j', 'Journal')).toThrow('API name "journals", not "Journal"');
    expect(() => inbound('t', 'TimeSheet')).toThrow('API name "time_sheets", not "TimeSheet"');
    expect(inbound('p', 'projects').connec).toBe('projects');
    expect(inbound('j', 'journals').connec).toBe('journals');
    // Outside the known names, a collection is taken as written.
    expect(inbound('x', 'my_custom').connec).toBe('my_custom');
    expect(inbound('x', 'Widget').connec).toBe('Widget');
  });
});

describe('defineEntity: conflict policies are checked at run time', () => {
  const both = {
    name: 'c',
    connec: 'people' as const,
    direction: 'both' as const,
    toLocal: () => ({ id: 'x' }),
    toConnec: () => ({}),
    localId: (r: { id: string }) => r.id,
    localUpdatedAt: () => null,
    local: { ...store, get: async () => null },
  };

  it('refuses an unknown strategy, a negative or non-finite skew, an unknown tie-breaker and a merge that is not a function', () => {
    // @ts-expect-error misspelt strategy
    expect(() => defineEntity({ ...both, conflict: 'local_wins' })).toThrow(ConnectorDefinitionError);
    // @ts-expect-error misspelt strategy
    expect(() => defineEntity({ ...both, conflict: 'local_wins' })).toThrow(
      'Entity "c": unknown conflict strategy "local_wins"; use "newest-wins", "connec-wins", "local-wins" or { merge: (args) => record }',
    );
    // @ts-expect-error misspelt strategy inside a policy
    expect(() => defineEntity({ ...both, conflict: { strategy: 'newest' } })).toThrow('unknown conflict strategy "newest"');
    expect(() => defineEntity({ ...both, conflict: { strategy: 'newest-wins', skewMs: -5 } })).toThrow(
      'Entity "c": conflict skewMs must be a finite number of milliseconds >= 0, not -5',
    );
    expect(() => defineEntity({ ...both, conflict: { strategy: 'newest-wins', skewMs: Number.NaN } })).toThrow(/skewMs must be a finite number/);
    expect(() => defineEntity({ ...both, conflict: { strategy: 'newest-wins', skewMs: Number.POSITIVE_INFINITY } })).toThrow(/skewMs must be a finite/);
    // @ts-expect-error the tie-breaker is 'connec' or 'local'
    expect(() => defineEntity({ ...both, conflict: { strategy: 'newest-wins', tieBreaker: 'app' } })).toThrow(
      'Entity "c": conflict tieBreaker must be "connec" or "local", not "app"',
    );
    // @ts-expect-error merge must be a function
    expect(() => defineEntity({ ...both, conflict: { merge: 'yes' } })).toThrow('Entity "c": conflict "merge" must be a function');
    // @ts-expect-error a policy needs a strategy
    expect(() => defineEntity({ ...both, conflict: { skewMs: 5 } })).toThrow(/conflict must be "newest-wins", .* or \{ strategy, skewMs\?, tieBreaker\? \}/);
  });

  it('an inbound-only entity takes only the connec-wins policy at compile time (others throw: they could never apply)', () => {
    const inboundOnly = { name: 'p', connec: 'people' as const, direction: 'inbound' as const, toLocal: () => ({ id: 'x' }), local: { ...store, get: async () => null } };
    // @ts-expect-error local-wins needs localUpdatedAt, which an inbound entity cannot have
    expect(() => defineEntity({ ...inboundOnly, conflict: 'local-wins' })).toThrow(/conflict policy needs localUpdatedAt/);
    // @ts-expect-error so does an explicit newest-wins
    expect(() => defineEntity({ ...inboundOnly, conflict: { strategy: 'newest-wins', skewMs: 5_000 } })).toThrow(/conflict policy needs localUpdatedAt/);
    // @ts-expect-error and a merge
    expect(() => defineEntity({ ...inboundOnly, conflict: { merge: ({ connec }) => connec } })).toThrow(/conflict policy needs localUpdatedAt/);
    expect(defineEntity({ ...inboundOnly, conflict: 'connec-wins' }).inbound?.conflict.strategy).toBe('connec-wins');
    expect(defineEntity({ ...inboundOnly, conflict: { strategy: 'connec-wins', skewMs: 0 } }).inbound?.conflict.strategy).toBe('connec-wins');
    expect(defineEntity(inboundOnly).inbound?.conflict.strategy).toBe('newest-wins');
  });

  it('keeps accepting every valid form, with the defaults filled in', () => {
    const policy = (conflict: ConflictStrategy<{ id: string }> | ConflictPolicy<{ id: string }>) => defineEntity({ ...both, conflict }).inbound?.conflict;
    expect(defineEntity(both).inbound?.conflict).toEqual({ strategy: 'newest-wins', skewMs: 2_000, tieBreaker: 'connec' });
    expect(policy('local-wins')).toEqual({ strategy: 'local-wins', skewMs: 2_000, tieBreaker: 'connec' });
    expect(policy('connec-wins')?.strategy).toBe('connec-wins');
    expect(policy({ strategy: 'newest-wins', skewMs: 0, tieBreaker: 'local' })).toEqual({ strategy: 'newest-wins', skewMs: 0, tieBreaker: 'local' });
    const merge = { merge: ({ local }: { local: { id: string } }) => local };
    expect(policy(merge)?.strategy).toBe(merge);
    expect(policy({ strategy: merge, skewMs: 10 })).toEqual({ strategy: merge, skewMs: 10, tieBreaker: 'connec' });
  });
});

describe('defineEntity: paths and matching fields', () => {
  it('refuses dotted paths, suggesting the slash form', () => {
    expect(() => inbound('inv', 'invoices', { 'lines.item_id': 'items' })).toThrow(ConnectorDefinitionError);
    expect(() => inbound('inv', 'invoices', { 'lines.item_id': 'items' })).toThrow(
      'Entity "inv": invalid reference path "lines.item_id": nested paths are joined by "/", use "lines/item_id"',
    );
    expect(() => defineEntity({ name: 'inv', connec: 'invoices', direction: 'inbound', subRecords: ['details.lines'], toLocal: () => ({}), local: store })).toThrow(
      'invalid sub-record path "details.lines": nested paths are joined by "/", use "details/lines"',
    );
  });

  it('refuses empty sub-record paths and matching fields', () => {
    expect(() => defineEntity({ name: 'inv', connec: 'invoices', direction: 'inbound', subRecords: [''], toLocal: () => ({}), local: store })).toThrow(
      'Entity "inv": sub-record paths must be non-empty strings, not ""',
    );
    for (const field of ['', '  ']) {
      expect(() =>
        defineEntity({ name: 'p', connec: 'people', direction: 'outbound', matchingFields: ['email', field], toConnec: () => ({}), localId: () => 'x' }),
      ).toThrow(`Entity "p": matchingFields must be non-empty Connec! field names, not ${JSON.stringify(field)}`);
    }
    expect(defineEntity({ name: 'p', connec: 'people', direction: 'outbound', matchingFields: ['email'], toConnec: () => ({}), localId: () => 'x' }).matchingFields).toEqual([
      'email',
    ]);
  });
});

describe('defineConnector: references the catalog knows must point at an entity of their collection', () => {
  const companies = inbound('companies', 'organizations');

  it('refuses a catalog reference whose target entity syncs another collection', () => {
    const contacts = inbound('contacts', 'people', { organization_id: 'contacts' });
    expect(() => defineConnector({ entities: [companies, contacts] })).toThrow(ConnectorDefinitionError);
    expect(() => defineConnector({ entities: [companies, contacts] })).toThrow(
      'Entity "contacts": `organization_id` of people references organizations, but entity "contacts" syncs people',
    );
    const items = inbound('items', 'items');
    const invoices = inbound('invoices', 'invoices', { 'lines/item_id': 'companies' });
    expect(() => defineConnector({ entities: [companies, items, invoices] })).toThrow(
      '`lines/item_id` of invoices references items, but entity "companies" syncs organizations',
    );
  });

  it('accepts matching targets, paths the catalog does not list, record-dependent targets and collections outside the catalog', () => {
    const contacts = inbound('contacts', 'people', { organization_id: 'companies' });
    const items = inbound('items', 'items', { parent_item_id: 'items' });
    const invoices = inbound('invoices', 'invoices', { person_id: 'contacts', 'lines/item_id': 'items' });
    expect(defineConnector({ entities: [companies, contacts, items, invoices] }).entities).toHaveLength(4);
    // Not in the catalog nor the collection's schema, and not close to any of its fields: a
    // custom field, taken on trust.
    expect(defineConnector({ entities: [companies, inbound('c2', 'people', { primary_company_id: 'companies' })] }).entities).toHaveLength(2);
    // The catalog's target depends on the record.
    const payments = inbound('payments', 'payments', { 'payment_lines/linked_transactions/id': 'invoices' });
    expect(defineConnector({ entities: [invoices, contacts, items, companies, payments] }).entities).toHaveLength(5);
    expect(defineConnector({ entities: [companies, inbound('things', 'my_things', { organization_id: 'things' })] }).entities).toHaveLength(2);
  });
});

describe('defineEntity type errors name the key at fault', () => {
  // The compiler reports a call matching no overload against the last one; that one takes the
  // union of the three definitions, so the message names the missing or forbidden key of the
  // definition's own `direction` instead of "'inbound' is not assignable to 'both'".
  const diagnose = async (body: string): Promise<string> => {
    const ts = (await import('typescript')).default;
    const { fileURLToPath } = await import('node:url');
    const file = fileURLToPath(new URL('./__type-probe__.ts', import.meta.url));
    const source = `import { defineEntity } from '@org/maestrano-sdk';\nexport const probe = defineEntity(${body});\n`;
    const options: import('typescript').CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      customConditions: ['@org/source'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    };
    const host = ts.createCompilerHost(options);
    const read = host.readFile.bind(host);
    host.readFile = (name) => (name === file ? source : read(name));
    const exists = host.fileExists.bind(host);
    host.fileExists = (name) => name === file || exists(name);
    const program = ts.createProgram([file], options, host);
    return ts
      .getPreEmitDiagnostics(program, program.getSourceFile(file))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
      .join('\n');
  };

  it('a missing mapper is named', async () => {
    const text = await diagnose(`{ name: 'c', connec: 'people', direction: 'inbound', local: { create: async () => ({ id: '1' }), update: async () => undefined } }`);
    expect(text).toMatch(/Property 'toLocal' is missing/);
    expect(text).not.toMatch(/'"inbound"' is not assignable to type '"both"'/);
  }, 60_000);

  it('a key the direction forbids is named', async () => {
    const text = await diagnose(
      `{ name: 'c', connec: 'people', direction: 'inbound', toLocal: () => ({}), toConnec: () => ({}), local: { create: async () => ({ id: '1' }), update: async () => undefined } }`,
    );
    expect(text).toMatch(/property 'toConnec' are incompatible/);
    // The last line of the compiler's message says what to do.
    expect(text).toMatch(/an inbound entity has no toConnec \(it never pushes\): remove it, or set direction: both/);
  }, 60_000);

  it('a mapper an outbound entity never uses is explained', async () => {
    const text = await diagnose(`{ name: 'c', connec: 'people', direction: 'outbound', toConnec: () => ({}), toLocal: () => ({}), localId: () => 'x' }`);
    expect(text).toMatch(/property 'toLocal' are incompatible/);
    expect(text).toMatch(/an outbound entity has no toLocal \(it never writes Connec! records locally\): remove it, or set direction: both/);
  }, 60_000);
});

describe('defineEntity: keys its direction does not use, and misspelt keys, are refused at run time', () => {
  // What a JavaScript caller (or a spread of a wider object) can pass: the types reject all of these.
  const defineUntyped = defineEntity as unknown as (definition: Record<string, unknown>) => ReturnType<typeof defineEntity>;
  const inboundDef = { name: 'c', connec: 'people', direction: 'inbound', toLocal: () => ({}), local: store };
  const outboundDef = { name: 'c', connec: 'people', direction: 'outbound', toConnec: () => ({}), localId: () => 'x' };

  it.each([
    ['toConnec', () => ({})],
    ['toConnecOnCreate', () => ({})],
    ['localId', () => 'x'],
    ['localUpdatedAt', () => null],
    ['shouldPush', () => true],
    ['matchingFields', ['email']],
  ])('refuses the outbound-only key %s on an inbound entity', (key, value) => {
    expect(() => defineUntyped({ ...inboundDef, [key]: value })).toThrow(ConnectorDefinitionError);
    expect(() => defineUntyped({ ...inboundDef, [key]: value })).toThrow(
      `Entity "c": "${key}" is only used by outbound sync, and this entity's direction is "inbound"; remove it, or use direction "both"`,
    );
  });

  it.each([
    ['toLocal', () => ({})],
    ['toLocalOnCreate', () => ({})],
    ['conflict', 'connec-wins'],
  ])('refuses the inbound-only key %s on an outbound entity', (key, value) => {
    expect(() => defineUntyped({ ...outboundDef, [key]: value })).toThrow(ConnectorDefinitionError);
    expect(() => defineUntyped({ ...outboundDef, [key]: value })).toThrow(
      `Entity "c": "${key}" is only used by inbound sync, and this entity's direction is "outbound"; remove it, or use direction "both"`,
    );
  });

  it.each(['create', 'update', 'get', 'createMany'])('ignores local.%s on an outbound entity, which only uses local.list', (key) => {
    expect(defineUntyped({ ...outboundDef, local: { [key]: async () => null } }).direction).toBe('outbound');
  });

  it('accepts a shared repository (plain object or class instance) as local of an outbound entity, and uses its list', async () => {
    const rows = [{ id: '1' }];
    class ContactsRepo {
      async create() {
        return { id: 'x' };
      }
      async update() {}
      async get() {
        return null;
      }
      async *list() {
        yield rows;
      }
    }
    const contactsRepo = new ContactsRepo();
    const fromClass = defineEntity({ name: 'c', connec: 'people', direction: 'outbound', local: contactsRepo, toConnec: () => ({}), localId: (r: { id: string }) => r.id });
    const pages: unknown[] = [];
    for await (const page of fromClass.list?.({ tenant: 't', groupId: 'g' } as never) ?? []) pages.push(page);
    expect(pages).toEqual([rows]);
    const plainRepo = { ...store, get: async () => null, createMany: async () => [], list: contactsRepo.list };
    expect(defineUntyped({ ...outboundDef, local: plainRepo }).list).toBeTypeOf('function');
  });

  it('refuses unknown keys, suggesting the closest known one', () => {
    expect(() => defineUntyped({ ...inboundDef, refrences: { organization_id: 'companies' } })).toThrow(ConnectorDefinitionError);
    expect(() => defineUntyped({ ...inboundDef, refrences: { organization_id: 'companies' } })).toThrow(
      'Entity "c": unknown key "refrences" (did you mean "references"?)',
    );
    expect(() => defineUntyped({ ...outboundDef, matching_fields: ['email'] })).toThrow('Entity "c": unknown key "matching_fields" (did you mean "matchingFields"?)');
    // Reported before the missing key it stands for.
    const { toLocal: _toLocal, ...withoutToLocal } = inboundDef;
    expect(() => defineUntyped({ ...withoutToLocal, toLocl: () => ({}) })).toThrow('Entity "c": unknown key "toLocl" (did you mean "toLocal"?)');
    expect(() => defineUntyped({ ...inboundDef, filtr: () => true })).toThrow('Entity "c": unknown key "filtr" (did you mean "filter"?)');
  });

  it('ignores unknown keys unlike any known one (helpers of a spread base object)', () => {
    const base = { ...inboundDef, describe: 'helper', primaryKey: 'id', toRow: () => ({}) };
    expect(defineUntyped({ ...base, describe: 'helper' }).direction).toBe('inbound');
    expect(defineUntyped({ ...outboundDef, describe: 'helper', meta: { table: 'contacts' } }).direction).toBe('outbound');
    const typedBase = { name: 'c', connec: 'people', direction: 'inbound', toLocal: () => ({}), local: store } as const;
    expect(defineEntity({ ...typedBase }).direction).toBe('inbound');
  });

  it('treats a key set to null like an absent one', () => {
    expect(defineUntyped({ ...inboundDef, toConnec: null, localId: null, matchingFields: null }).direction).toBe('inbound');
    expect(defineUntyped({ ...outboundDef, toLocal: null, toLocalOnCreate: null, conflict: null }).direction).toBe('outbound');
    expect(defineUntyped({ ...outboundDef, local: null }).list).toBeUndefined();
  });

  it('keeps accepting every key of each direction, local.list outbound, and keys set to undefined', () => {
    const list = async function* () {
      yield [];
    };
    const all = {
      name: 'c',
      connec: 'people',
      direction: 'both',
      references: {},
      subRecords: [],
      filter: () => true,
      toLocal: () => ({}),
      toLocalOnCreate: () => ({}),
      local: { ...store, get: async () => null, createMany: async () => [], list },
      conflict: 'connec-wins',
      toConnec: () => ({}),
      toConnecOnCreate: () => ({}),
      localId: () => 'x',
      localUpdatedAt: () => null,
      shouldPush: () => true,
      matchingFields: ['email'],
    };
    expect(defineUntyped(all).direction).toBe('both');
    expect(defineUntyped({ ...outboundDef, local: { list } }).list).toBeTypeOf('function');
    expect(defineUntyped({ ...inboundDef, toConnec: undefined, matchingFields: undefined }).direction).toBe('inbound');
    expect(defineUntyped({ ...outboundDef, toLocal: undefined, local: { list, create: undefined } }).direction).toBe('outbound');
  });
});

describe('mappers must be synchronous', () => {
  const ctx: MapperContext = { tenant: 't', groupId: 'g', entity: 'e', connecId: null, localId: null, isCreate: true, settings: {} };

  it('types: an async toLocal or toLocalOnCreate is refused, as an async toConnec already is', () => {
    defineEntity({
      name: 'async-to-local',
      connec: 'people',
      direction: 'inbound',
      // @ts-expect-error toLocal must return the record, not a Promise of it
      toLocal: async (p) => ({ name: p.first_name ?? '' }),
      local: { create: async () => ({ id: '1' }), update: async () => undefined },
    });
    defineEntity({
      name: 'async-to-local-on-create',
      connec: 'people',
      direction: 'inbound',
      toLocal: (p) => ({ name: p.first_name ?? '' }),
      // @ts-expect-error toLocalOnCreate must return the record, not a Promise of it
      toLocalOnCreate: async (p) => ({ name: p.first_name ?? '' }),
      local: { create: async () => ({ id: '1' }), update: async () => undefined },
    });
    defineEntity<'people', Promise<{ name: string }>>({
      name: 'async-explicit',
      connec: 'people',
      direction: 'inbound',
      // @ts-expect-error not even with a Promise as the explicit local type
      toLocal: async (p) => ({ name: p.first_name ?? '' }),
      local: { create: async () => ({ id: '1' }), update: async () => undefined },
    });
    defineEntity({
      name: 'async-to-connec',
      connec: 'people',
      direction: 'outbound',
      // @ts-expect-error toConnec must return the record, not a Promise of it
      toConnec: async (c: { n: string }) => ({ first_name: c.n }),
      localId: () => '1',
    });
  });

  it('types: the local record is still inferred from toLocal, not from what local.list yields', () => {
    const contacts = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: (p, ctx) => ({ id: ctx.localId ?? '', org: typeof p.organization_id === 'string' ? p.organization_id : null }),
      toConnec: (c) => ({ organization_id: c.org }),
      localId: (c) => c.id,
      local: {
        create: async () => ({ id: '1' }),
        update: async () => undefined,
        list: async function* () {
          yield [{ id: '1', org: null }];
        },
      },
    });
    expectTypeOf<NonNullable<(typeof contacts)['__local']>>().toEqualTypeOf<{ id: string; org: string | null }>();
  });

  it('an async toLocal, toLocalOnCreate, toConnec or toConnecOnCreate (JavaScript) throws when called, naming the mapper', () => {
    const defineUntyped = defineEntity as unknown as (definition: Record<string, unknown>) => ReturnType<typeof defineEntity>;
    const later = async () => ({ name: 'x' });
    const entity = defineUntyped({
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: later,
      toLocalOnCreate: later,
      local: store,
      toConnec: later,
      toConnecOnCreate: later,
      localId: () => 'x',
    });
    expect(() => entity.inbound?.toLocal({}, ctx)).toThrow(ConnectorDefinitionError);
    expect(() => entity.inbound?.toLocal({}, ctx)).toThrow(
      'toLocal of entity "contacts" returned a Promise: mappers must be synchronous and pure; do async work in local.create/update',
    );
    expect(() => entity.inbound?.toLocalOnCreate?.({}, ctx)).toThrow('toLocalOnCreate of entity "contacts" returned a Promise');
    expect(() => entity.outbound?.toConnec({}, ctx)).toThrow('toConnec of entity "contacts" returned a Promise: mappers must be synchronous');
    expect(() => entity.outbound?.toConnecOnCreate?.({}, ctx)).toThrow('toConnecOnCreate of entity "contacts" returned a Promise');
    // A rejected Promise a mapper returned is not left unhandled.
    const rejecting = defineUntyped({ name: 'r', connec: 'people', direction: 'inbound', toLocal: async () => Promise.reject(new Error('late')), local: store });
    expect(() => rejecting.inbound?.toLocal({}, ctx)).toThrow('returned a Promise');
  });

  it('a toLocal or toLocalOnCreate that returns undefined or null (JavaScript, a missing return) throws naming the mapper', () => {
    const defineUntyped = defineEntity as unknown as (definition: Record<string, unknown>) => ReturnType<typeof defineEntity>;
    const entity = defineUntyped({ name: 'contacts', connec: 'people', direction: 'inbound', toLocal: () => undefined, toLocalOnCreate: () => null, local: store });
    expect(() => entity.inbound?.toLocal({}, ctx)).toThrow(ConnectorDefinitionError);
    expect(() => entity.inbound?.toLocal({}, ctx)).toThrow(
      'toLocal of entity "contacts" returned undefined: it must return the local record (leave records out with filter)',
    );
    expect(() => entity.inbound?.toLocalOnCreate?.({}, ctx)).toThrow('toLocalOnCreate of entity "contacts" returned null');
    // Falsy records that are values are still records.
    const scalar = defineUntyped({ name: 'flags', connec: 'people', direction: 'inbound', toLocal: () => 0, local: store });
    expect(scalar.inbound?.toLocal({}, ctx)).toBe(0);
  });
});

describe('defineEntity types: readonly arrays', () => {
  it('accepts `as const` matchingFields and subRecords', () => {
    interface Person {
      id: string;
      first: string;
    }
    const outbound = defineEntity({
      name: 'contacts',
      connec: 'people',
      direction: 'outbound',
      matchingFields: ['email'] as const,
      toConnec: (c: Person) => ({ first_name: c.first }),
      localId: (c: Person) => c.id,
    });
    const definition = {
      name: 'invoices',
      connec: 'invoices',
      direction: 'inbound',
      subRecords: ['lines'],
      toLocal: () => ({}),
      local: store,
    } as const;
    const invoices = defineEntity(definition);
    const fields: readonly string[] = ['name'];
    const orgs = defineEntity({
      name: 'orgs',
      connec: 'organizations',
      direction: 'outbound',
      matchingFields: fields,
      toConnec: (o: Person) => ({ name: o.first }),
      localId: (o: Person) => o.id,
    });
    expect([outbound.matchingFields, invoices.subRecords, orgs.matchingFields]).toEqual([['email'], ['lines'], ['name']]);
  });
});

describe('defineConnector: paths the catalog does not list but close to one it does are warnings', () => {
  const companies = inbound('companies', 'organizations');

  it('warns of a reference path that is neither a reference nor a field of the collection, suggesting the closest', () => {
    const contacts = inbound('contacts', 'people', { organisation_id: 'companies' });
    expect(defineConnector({ entities: [companies, contacts] }).warnings).toEqual([
      'Entity "contacts": reference path "organisation_id" is not a field of people (its reference fields: organization_id, assignee_id); did you mean "organization_id"?',
    ]);
    const items = inbound('items', 'items');
    const invoices = inbound('invoices', 'invoices', { 'line/item_id': 'items' });
    expect(defineConnector({ entities: [items, invoices] }).warnings).toEqual([
      'Entity "invoices": reference path "line/item_id" is not a field of invoices (its reference fields: person_id, organization_id, lines/item_id, lines/tax_code_id, lines/account_id, sales_order_id); did you mean "lines/item_id"?',
    ]);
  });

  it('warns of a sub-record path or a matching field close to, but not, a field of the collection', () => {
    const invoices = defineEntity({ name: 'invoices', connec: 'invoices', direction: 'inbound', subRecords: ['linse'], toLocal: () => ({}), local: store });
    expect(defineConnector({ entities: [invoices] }).warnings).toEqual(['Entity "invoices": sub-record path "linse" is not a field of invoices; did you mean "lines"?']);
    const contacts = defineEntity({ name: 'p', connec: 'people', direction: 'outbound', matchingFields: ['emial'], toConnec: () => ({}), localId: () => 'x' });
    expect(defineConnector({ entities: [contacts] }).warnings).toEqual(['Entity "p": matching field "emial" is not a field of people; did you mean "email"?']);
  });

  it.each([
    ['invoices', 'payment_method_id', 'payment_method'],
    ['payments', 'payment_method', 'payment_method_id'],
    ['people', 'organization_ids', 'organization_id'],
    ['invoices', 'person_ids', 'person_id'],
    ['invoices', 'sales_order_ids', 'sales_order_id'],
    ['sales_orders', 'quote_ids', 'quote_id'],
    ['opportunities', 'lead_ids', 'lead_id'],
    ['accounts', 'tax_code', 'tax_code_id'],
    ['employees', 'hire_date', 'hired_date'],
  ])('accepts the real Connec! field name %s/%s the catalog does not list, with a warning', (collection, path, suggestion) => {
    const target = inbound('target', 'my_targets');
    const entity = inbound('e', collection, { [path]: 'target' });
    const connector = defineConnector({ entities: [target, entity] });
    expect(connector.entities).toHaveLength(2);
    expect(connector.warnings).toHaveLength(1);
    expect(connector.warnings[0]).toMatch(`Entity "e": reference path "${path}" is not a field of ${collection} (`);
    expect(connector.warnings[0]).toMatch(`did you mean "${suggestion}"?`);
  });

  it('accepts sub-records the catalog does not list (work_locations of employees), with a warning', () => {
    const employees = defineEntity({ name: 'employees', connec: 'employees', direction: 'inbound', subRecords: ['work_locations'], toLocal: () => ({}), local: store });
    const connector = defineConnector({ entities: [employees] });
    expect(connector.importOrder).toEqual([employees]);
    expect(connector.warnings).toEqual(['Entity "employees": sub-record path "work_locations" is not a field of employees; did you mean "work_location_id"?']);
  });

  it('has no warnings for paths the catalog lists, and still refuses a catalog reference to the wrong collection', () => {
    const contacts = inbound('contacts', 'people', { organization_id: 'companies' });
    expect(defineConnector({ entities: [companies, contacts] }).warnings).toEqual([]);
    const wrong = inbound('wrong', 'people', { organization_id: 'wrong', organisation_id: 'wrong' });
    expect(() => defineConnector({ entities: [wrong] })).toThrow('`organization_id` of people references organizations, but entity "wrong" syncs people');
  });

  it('createMaestrano logs each warning of its connector once', () => {
    const { certificate } = createTestCertificate({ bits: 1024 });
    const warnings: { message: string; fields: Record<string, unknown> | undefined }[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (message, fields) => warnings.push({ message, fields }), error() {} };
    const contacts = inbound('contacts', 'people', { organisation_id: 'companies' });
    createMaestrano({
      tenants: [
        {
          marketplace: 'maestrano-uat',
          app: { host: 'https://app.example.com' },
          api: { id: 'app-1', key: 'very-secret-key', host: 'https://api-hub-uat.maestrano.io' },
          sso: { x509_certificate: certificate },
        },
      ],
      storage: memoryAdapter(),
      logger,
      provisioning: { createCompany: () => ({ id: 'c' }), createUser: () => ({ id: 'u' }) },
      onLogin: () => new Response('ok'),
      connector: defineConnector({ entities: [companies, contacts] }),
    });
    expect(warnings).toEqual([
      {
        message: 'maestrano: connector definition',
        fields: {
          warning:
            'Entity "contacts": reference path "organisation_id" is not a field of people (its reference fields: organization_id, assignee_id); did you mean "organization_id"?',
        },
      },
    ]);
  });

  it('accepts fields of the schema, nested fields, custom fields unlike any known one, and collections outside the catalog', () => {
    const items = inbound('items', 'items');
    const contacts = inbound('contacts', 'people', { organization_id: 'companies' });
    const invoices = defineEntity({
      name: 'invoices',
      connec: 'invoices',
      direction: 'inbound',
      references: { person_id: 'contacts', 'lines/item_id': 'items', 'lines_shipping/item_id': 'items' },
      subRecords: ['lines', 'lines_shipping'],
      toLocal: () => ({}),
      local: store,
    });
    const people = defineEntity({ name: 'p', connec: 'people', direction: 'outbound', matchingFields: ['email', 'email/address', 'first_name'], toConnec: () => ({}), localId: () => 'x' });
    expect(defineConnector({ entities: [companies, items, contacts, invoices] }).entities).toHaveLength(4);
    expect(defineConnector({ entities: [people] }).entities).toHaveLength(1);
    expect(defineConnector({ entities: [inbound('orgs2', 'organizations', { primary_contact_id: 'orgs2' })] }).entities).toHaveLength(1);
    // Outside the typed catalog nothing is known about the fields: unchecked.
    expect(defineConnector({ entities: [inbound('journals', 'journals', { organisation_id: 'journals' })] }).entities).toHaveLength(1);
    expect(defineConnector({ entities: [inbound('things', 'my_things', { organisation_id: 'things' })] }).entities).toHaveLength(1);
  });
});

describe('errors: the connec-client base class of ConfigError is exported', () => {
  it('exports ClientConfigError (the one ConfigError extends) and the MaestranoErrorOptions type', () => {
    expect(ClientConfigError).toBe(ConnecClientConfigError);
    const error = new ConfigError('bad', { issues: [] });
    expect(error).toBeInstanceOf(ClientConfigError);
    const options: MaestranoErrorOptions = { cause: new Error('x') };
    expect(new ClientConfigError('bad', { ...options, issues: [] }).code).toBe('config_invalid');
  });
});

describe('first-day mistakes get errors that say what to write', () => {
  const defineUntyped = defineEntity as unknown as (definition: Record<string, unknown>) => ReturnType<typeof defineEntity>;

  it('a misspelt direction is echoed, with the closest valid one', () => {
    const definition = { name: 'contacts', connec: 'people', toLocal: () => ({}), local: store };
    expect(() => defineUntyped({ ...definition, direction: 'bot' })).toThrow(
      new ConnectorDefinitionError('Entity "contacts": direction must be "inbound", "outbound" or "both", not "bot" (did you mean "both"?)'),
    );
    expect(() => defineUntyped({ ...definition, direction: 'Inbound' })).toThrow('not "Inbound" (did you mean "inbound"?)');
    expect(() => defineUntyped(definition)).toThrow('direction must be "inbound", "outbound" or "both", not undefined');
  });

  it('a reference to a collection instead of the entity syncing it names that entity', () => {
    const customers = inbound('customers', 'organizations');
    const invoices = inbound('invoices', 'invoices', { organization_id: 'organizations' });
    expect(() => defineConnector({ entities: [customers, invoices] })).toThrow(
      new ConnectorDefinitionError(
        'Entity "invoices": reference "organization_id" points at unknown entity "organizations" (known: customers, invoices); references name entities, not collections: organizations is synced by "customers"',
      ),
    );
    // A target no entity syncs either: no hint.
    expect(() => defineConnector({ entities: [invoices] })).toThrow(/points at unknown entity "organizations" \(known: invoices\)$/);
  });

  it('a policy missing only local.get says "it"', () => {
    const definition = {
      name: 'contacts',
      connec: 'people',
      direction: 'both',
      toLocal: () => ({}),
      toConnec: () => ({}),
      localId: () => 'x',
      localUpdatedAt: () => null,
      local: store,
      conflict: 'local-wins',
    };
    expect(() => defineUntyped(definition)).toThrow('a "local-wins" conflict policy needs local.get; without it only "connec-wins" can apply');
  });

  it('entities that are not an array are refused with a ConnectorDefinitionError', () => {
    const defineConnectorUntyped = defineConnector as unknown as (input: { entities: unknown }) => unknown;
    expect(() => defineConnectorUntyped({ entities: { contacts: inbound('contacts', 'people') } })).toThrow(
      new ConnectorDefinitionError('defineConnector: entities must be an array of defineEntity(...) results, not an object'),
    );
    expect(() => defineConnectorUntyped({ entities: 'contacts' })).toThrow('array of defineEntity(...) results, not "contacts"');
  });

  it('an element that is not a defineEntity result (undefined, null, a plain definition) is a ConnectorDefinitionError naming it', () => {
    const defineConnectorUntyped = defineConnector as unknown as (input: unknown) => unknown;
    const contacts = inbound('contacts', 'people');
    // An import cycle leaves the entity undefined when defineConnector runs.
    expect(() => defineConnectorUntyped({ entities: [contacts, undefined] })).toThrow(
      new ConnectorDefinitionError(
        'defineConnector: entities[1] must be a defineEntity(...) result, not undefined (an import cycle can leave an entity undefined when defineConnector runs)',
      ),
    );
    expect(() => defineConnectorUntyped({ entities: [null] })).toThrow(new ConnectorDefinitionError('defineConnector: entities[0] must be a defineEntity(...) result, not null'));
    const plain = { name: 'items', connec: 'items', direction: 'inbound', toLocal: () => ({}), local: { create: async () => ({ id: 'x' }), update: async () => undefined } };
    expect(() => defineConnectorUntyped({ entities: [contacts, plain] })).toThrow(
      new ConnectorDefinitionError('defineConnector: entities[1] ("items") is a plain definition object: pass defineEntity(...) of it'),
    );
    expect(() => defineConnectorUntyped(undefined)).toThrow(new ConnectorDefinitionError('defineConnector takes { entities: [...] }, not undefined'));
  });

  it('warns of a collection a typo away from one Connec! is known to have; takes others as written', () => {
    expect(defineConnector({ entities: [inbound('invoices', 'invoicez')] }).warnings).toEqual([
      'Entity "invoices": "connec" "invoicez" is not a collection Connec! is known to have; did you mean "invoices"?',
    ]);
    expect(defineConnector({ entities: [inbound('notes', 'my_notes')] }).warnings).toEqual([]);
    expect(defineConnector({ entities: [inbound('journals', 'journals')] }).warnings).toEqual([]);
  });
});
