// `mno.sync.push` / `pushMany` typed by the connector: `createMaestrano` infers the entities of
// `defineConnector`, and push then takes the name (or object) of an outbound entity and that
// entity's local record. Checked by `tsc -p packages/sdk` (every `@ts-expect-error` below fails
// the typecheck once the error it expects is gone); the run-time checks stay for JavaScript.
import {
  type AnyEntity,
  createMaestrano,
  defineConnector,
  defineEntity,
  type Entity,
  type Maestrano,
  memoryAdapter,
  type PushItemResult,
  staticTenants,
  SyncError,
} from '@org/maestrano-sdk';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { FakeConnec } from '../sync/fake-connec.js';
import { GROUP, ORG_UID, provisionGroup, silentLogger, TENANT, testTenant } from '../sync/harness.js';

interface Contact {
  id: string;
  firstName: string;
}
interface Account {
  id: string;
  name: string;
}

const store = { create: async () => ({ id: 'x' }), update: async () => undefined };

const contacts = defineEntity({
  name: 'contacts',
  connec: 'people',
  direction: 'both',
  toLocal: (p): Contact => ({ id: '', firstName: p.first_name ?? '' }),
  toConnec: (c) => ({ first_name: c.firstName }),
  localId: (c) => c.id,
  local: store,
});
const accounts = defineEntity({
  name: 'accounts',
  connec: 'organizations',
  direction: 'outbound',
  toConnec: (a: Account) => ({ name: a.name }),
  localId: (a) => a.id,
});
// Inbound-only: nothing to push. Shares `organizations` with accounts, hence the filters.
const orgs = defineEntity({
  name: 'orgs',
  connec: 'organizations',
  direction: 'inbound',
  filter: () => false,
  toLocal: (o) => ({ name: o.name ?? '' }),
  local: store,
});
const accountsFiltered = defineEntity({
  name: 'accounts',
  connec: 'organizations',
  direction: 'outbound',
  filter: () => true,
  toConnec: (a: Account) => ({ name: a.name }),
  localId: (a) => a.id,
});

function maestrano<E extends readonly AnyEntity[]>(entities: E, connec = new FakeConnec(ORG_UID)) {
  const storage = memoryAdapter();
  const mno = createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
    connector: defineConnector({ entities }),
    sync: { connecPort: () => connec },
  });
  return { mno, storage, connec };
}

const where = { tenant: TENANT, groupId: GROUP };
const contact: Contact = { id: 'c-1', firstName: 'Ada' };
const account: Account = { id: 'a-1', name: 'Acme' };

describe('defineEntity / defineConnector keep what push needs at the type level', () => {
  it('an entity carries its name, collection, direction and local record', () => {
    expectTypeOf(contacts).toExtend<Entity<Contact, 'people', 'both', 'contacts'>>();
    expectTypeOf(contacts.name).toEqualTypeOf<'contacts'>();
    expectTypeOf(accounts.direction).toEqualTypeOf<'outbound'>();
    expectTypeOf(orgs.direction).toEqualTypeOf<'inbound'>();
    // `Entity<L>` (direction and name left out) is still any entity of that record.
    const annotated: Entity<Contact> = contacts;
    expect(annotated.direction).toBe('both');
  });

  it('a connector keeps the tuple of its entities, and createMaestrano the connector', () => {
    const connector = defineConnector({ entities: [contacts, accountsFiltered, orgs] });
    expectTypeOf(connector.entities).toEqualTypeOf<readonly [typeof contacts, typeof accountsFiltered, typeof orgs]>();
    const { mno } = maestrano([contacts, accountsFiltered, orgs] as const);
    expectTypeOf(mno).toEqualTypeOf<Maestrano<readonly [typeof contacts, typeof accountsFiltered, typeof orgs]>>();
    expect(connector.entities.map((e) => e.name)).toEqual(['contacts', 'accounts', 'orgs']);
  });
});

describe('mno.sync.push is typed by the connector', () => {
  it('takes the name of an outbound entity with its record, and the entity object', async () => {
    const { mno, storage, connec } = maestrano([contacts, accountsFiltered, orgs] as const);
    await provisionGroup(storage);
    const pushed = await mno.sync.push({ ...where, entity: 'contacts', record: contact });
    expectTypeOf(pushed).toEqualTypeOf<PushItemResult>();
    expect(pushed).toMatchObject({ localId: 'c-1', status: 'pushed' });
    expect(await mno.sync.push({ ...where, entity: 'accounts', record: account })).toMatchObject({ status: 'pushed' });
    expect(await mno.sync.push({ ...where, entity: contacts, record: { ...contact, firstName: 'Bo' } })).toMatchObject({ status: 'pushed' });
    expect(await mno.sync.pushMany({ ...where, entity: 'contacts', records: [{ id: 'c-2', firstName: 'Cy' }] })).toMatchObject([{ status: 'pushed' }]);
    expect(await mno.sync.pushMany({ ...where, entity: accountsFiltered, records: [{ id: 'a-2', name: 'Beta' }] })).toMatchObject([{ status: 'pushed' }]);
    expect(connec.all(GROUP, 'people').map((p) => p.first_name).sort()).toEqual(['Bo', 'Cy']);
  });

  it('rejects an unknown name, a record of another type and an inbound-only entity at compile time', () => {
    const { mno } = maestrano([contacts, accountsFiltered, orgs] as const);
    type PushArgs = Parameters<typeof mno.sync.push<'contacts'>>[0];
    expectTypeOf<PushArgs['record']>().toEqualTypeOf<Contact>();
    type PushManyArgs = Parameters<typeof mno.sync.pushMany<'accounts'>>[0];
    expectTypeOf<PushManyArgs['records']>().toEqualTypeOf<readonly Account[]>();

    const typeChecksOnly = () => [
      // @ts-expect-error unknown entity name (a typo of contacts)
      mno.sync.push({ ...where, entity: 'contactz', record: contact }),
      // @ts-expect-error the record of contacts is a Contact
      mno.sync.push({ ...where, entity: 'contacts', record: 42 }),
      // @ts-expect-error a misspelt field of the Contact
      mno.sync.push({ ...where, entity: 'contacts', record: { id: 'x', frist: 'typo' } }),
      // @ts-expect-error an Account is not a Contact
      mno.sync.push({ ...where, entity: 'contacts', record: account }),
      // @ts-expect-error orgs is inbound-only: nothing to push
      mno.sync.push({ ...where, entity: 'orgs', record: { name: 'x' } }),
      // @ts-expect-error the inbound-only entity object neither
      mno.sync.push({ ...where, entity: orgs, record: { name: 'x' } }),
      // @ts-expect-error the entity object types the record too
      mno.sync.push({ ...where, entity: contacts, record: account }),
      // @ts-expect-error an explicit wider type argument does not get around it
      mno.sync.push<unknown>({ ...where, entity: contacts, record: 42 }),
      // @ts-expect-error a name typed only as string is not one of the connector's names
      mno.sync.push({ ...where, entity: String('contacts'), record: contact }),
      // pushMany: the same rules, for every record.
      // @ts-expect-error unknown entity name
      mno.sync.pushMany({ ...where, entity: 'contactz', records: [contact] }),
      // @ts-expect-error one record of the batch is not a Contact
      mno.sync.pushMany({ ...where, entity: 'contacts', records: [contact, 42] }),
      // @ts-expect-error orgs is inbound-only
      mno.sync.pushMany({ ...where, entity: 'orgs', records: [{ name: 'x' }] }),
      // @ts-expect-error the inbound-only entity object neither
      mno.sync.pushMany({ ...where, entity: orgs, records: [{ name: 'x' }] }),
    ];
    expect(typeof typeChecksOnly).toBe('function');
  });

  it('an entity given as a union of names or objects takes only a record that fits each of them', async () => {
    const { mno, storage, connec } = maestrano([contacts, accountsFiltered, orgs] as const);
    await provisionGroup(storage);
    // A helper called after each save: the entity is either, only known at run time.
    const which = (kind: string): 'contacts' | 'accounts' => (kind === 'person' ? 'contacts' : 'accounts');
    const entityOf = (kind: string) => (kind === 'person' ? contacts : accountsFiltered);
    type UnionArgs = Parameters<typeof mno.sync.push<'contacts' | 'accounts'>>[0];
    expectTypeOf<UnionArgs['record']>().toEqualTypeOf<Contact & Account>();
    const typeChecksOnly = () => [
      // @ts-expect-error 'contacts' | 'accounts' may be 'contacts': an Account alone is not a Contact
      mno.sync.push({ ...where, entity: which('company'), record: account }),
      // @ts-expect-error the same with the entity objects
      mno.sync.push({ ...where, entity: entityOf('company'), record: account }),
      // @ts-expect-error and for every record of a batch
      mno.sync.pushMany({ ...where, entity: which('company'), records: [account] }),
    ];
    expect(typeof typeChecksOnly).toBe('function');
    // What such a call would do: the Account goes through the contacts' toConnec, and Connec!
    // gets a person with no name, linked to the account's id.
    await (mno as Maestrano).sync.push({ ...where, entity: which('person'), record: account });
    const [person, ...others] = connec.all(GROUP, 'people');
    expect(others).toEqual([]);
    expect(person?.first_name).toBeUndefined();
    expect(person?.id).toContainEqual(expect.objectContaining({ id: 'a-1' }));
    // A record that is both fits either entity.
    const both: Contact & Account = { id: 'b-1', firstName: 'Ada', name: 'Acme' };
    expect(await mno.sync.push({ ...where, entity: which('company'), record: both })).toMatchObject({ status: 'pushed' });
  });

  it('a JavaScript caller (or a cast) still gets the run-time checks', async () => {
    const { mno, storage } = maestrano([contacts, accountsFiltered, orgs] as const);
    await provisionGroup(storage);
    const untyped = mno as Maestrano;
    await expect(untyped.sync.push({ ...where, entity: 'contactz', record: contact })).rejects.toThrow(new SyncError('Unknown entity "contactz"'));
    await expect(untyped.sync.push({ ...where, entity: 'orgs', record: {} })).rejects.toThrow(SyncError);
    await expect(untyped.sync.pushMany({ ...where, entity: orgs as AnyEntity, records: [{}] })).rejects.toThrow(/no outbound direction/);
  });
});

describe('without a known connector type, push stays loose', () => {
  it('`Maestrano` without type arguments takes any name and record, and accepts a typed instance', async () => {
    const { mno, storage } = maestrano([contacts] as const);
    await provisionGroup(storage);
    const loose: Maestrano = mno;
    expectTypeOf<Parameters<typeof loose.sync.push<'anything'>>[0]['record']>().toEqualTypeOf<unknown>();
    expect(await loose.sync.push({ ...where, entity: 'contacts', record: contact })).toMatchObject({ status: 'pushed' });
    // The entity object still types the record, and an inbound-only one is still refused.
    const typeChecksOnly = () => [
      loose.sync.push({ ...where, entity: 'contactz', record: 42 }),
      // @ts-expect-error the record of contacts is a Contact
      loose.sync.push({ ...where, entity: contacts, record: 42 }),
      // @ts-expect-error orgs is inbound-only
      loose.sync.push({ ...where, entity: orgs, record: { name: 'x' } }),
    ];
    expect(typeof typeChecksOnly).toBe('function');
  });

  it('a createMaestrano without a connector is a plain Maestrano', () => {
    const mno = createMaestrano({
      tenants: staticTenants([testTenant()]),
      storage: memoryAdapter(),
      provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
      onLogin: () => new Response('ok'),
      logger: silentLogger,
    });
    expectTypeOf(mno).toEqualTypeOf<Maestrano>();
    expect(typeof mno.sync.push).toBe('function');
  });

  it('a connector built from an array variable compiles; its names widen to string', async () => {
    const list: AnyEntity[] = [contacts, accountsFiltered, orgs];
    const { mno, storage } = maestrano(list);
    await provisionGroup(storage);
    expectTypeOf(mno).toEqualTypeOf<Maestrano<AnyEntity[]>>();
    expect(await mno.sync.push({ ...where, entity: 'accounts', record: account })).toMatchObject({ status: 'pushed' });
    expectTypeOf<Parameters<typeof mno.sync.push<'anything'>>[0]['record']>().toEqualTypeOf<unknown>();
    // An array of typed entities (not a tuple) keeps their names and records.
    const typed = [contacts, accountsFiltered, orgs];
    const { mno: byUnion } = maestrano(typed);
    expectTypeOf<Parameters<typeof byUnion.sync.push<'accounts'>>[0]['record']>().toEqualTypeOf<Account>();
    const typeChecksOnly = () => [
      mno.sync.push({ ...where, entity: 'contactz', record: 42 }),
      // @ts-expect-error the record of accounts is an Account
      byUnion.sync.push({ ...where, entity: 'accounts', record: contact }),
      // @ts-expect-error orgs is inbound-only
      byUnion.sync.push({ ...where, entity: 'orgs', record: { name: 'x' } }),
    ];
    expect(typeof typeChecksOnly).toBe('function');
  });

  it('an entity declared with explicit type arguments has a string name: its record is still checked', () => {
    const explicit = defineEntity<'people', Contact>({
      name: 'contacts',
      connec: 'people',
      direction: 'outbound',
      toConnec: (c) => ({ first_name: c.firstName }),
      localId: (c) => c.id,
    });
    expectTypeOf(explicit.name).toEqualTypeOf<string>();
    const { mno } = maestrano([explicit] as const);
    const typeChecksOnly = () => [
      mno.sync.push({ ...where, entity: 'contacts', record: contact }),
      // @ts-expect-error the record of contacts is a Contact
      mno.sync.push({ ...where, entity: 'contacts', record: 42 }),
    ];
    expect(typeof typeChecksOnly).toBe('function');
  });
});
