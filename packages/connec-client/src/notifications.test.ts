import { describe, expect, it } from 'vitest';
import { PayloadValidationError } from './errors.js';
import { type InvalidNotificationRecord, parseNotification } from './notifications.js';

const C = (id: string) => ({ id, provider: 'connec', realm: 'org-f6zi' });
const A = (id: string) => ({ id, provider: 'myapp', realm: 'acct-42' });

const jane = {
  id: [C('p9')],
  first_name: 'Jane',
  last_name: 'Doe',
  organization_id: [C('o1'), A('org-17')],
  email: { address: 'jane@x.io' },
  phone_work: { landline: '+61 2 1234' },
  address_work: { billing: { line1: '1 George St', city: 'Sydney', country: 'AU' }, billing2: {}, shipping: {} },
  group_id: 'cld-9a1b',
  channel_id: 'org-f6zi',
  resource_type: 'people',
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
};

function errorOf(fn: () => unknown): PayloadValidationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PayloadValidationError) return error;
    throw error;
  }
  throw new Error('expected a PayloadValidationError');
}

describe('parseNotification', () => {
  it('parses a valid body given as text, bytes or parsed JSON into typed records', () => {
    const text = JSON.stringify({ people: [jane] });
    for (const body of [text, new TextEncoder().encode(text), JSON.parse(text) as unknown]) {
      const n = parseNotification(body);
      expect(n.entries).toHaveLength(1);
      expect(n.entries[0]).toMatchObject({ collection: 'people', key: 'people', groupId: 'cld-9a1b' });
      expect(n.groups).toHaveLength(1);
      const person = n.groups[0]?.records.people?.[0];
      expect(person?.first_name).toBe('Jane');
      expect(person?.organization_id).toEqual([C('o1'), A('org-17')]);
      expect(person?.updated_at).toBe('2016-10-04T00:36:23Z');
    }
  });

  it('with options.collections, skips the refused collections unvalidated and counts their records', () => {
    const body = { Person: [jane], SalesOrder: [{ id: [C('so1')], group_id: 'cld-9a1b', lines: [{ quantity: '2' }] }, 7] };
    expect(() => parseNotification(body)).toThrow(PayloadValidationError);
    const n = parseNotification(body, { collections: (c) => c === 'people' });
    expect(n.entries.map((e) => e.collection)).toEqual(['people']);
    expect(n.ignoredRecords).toEqual({ sales_orders: 2 });
    // An accepted collection is validated as before.
    expect(() => parseNotification({ people: [{ ...jane, first_name: 42 }] }, { collections: () => true })).toThrow(/people\/0\/first_name/);
  });

  it('with options.collections, skips refused keys before any check, whatever their value', () => {
    const body = {
      people: [jane],
      company: { id: 'c1', group_id: 'cld-9a1b' },
      'some.key': [{}],
      '???': { nested: true },
      SalesOrder: [{ id: 's1' }, 'not a record'],
      invoices: {},
    };
    expect(() => parseNotification(body)).toThrow(PayloadValidationError);
    const n = parseNotification(body, { collections: (c) => c === 'people' });
    expect(n.entries.map((e) => [e.collection, e.record.first_name])).toEqual([['people', 'Jane']]);
    expect(n.ignoredKeys).toEqual(['company', 'some.key', '???', 'invoices']);
    expect(n.ignoredRecords).toEqual({ sales_orders: 2 });
    // A wanted collection is still checked: malformed records, or a value that is not an array.
    const bad = errorOf(() =>
      parseNotification(
        { people: [{ ...jane, first_name: 42 }, 'x'], 'some.key': {}, organizations: { id: 'o1' } },
        { collections: (c) => c === 'people' || c === 'organizations' },
      ),
    );
    expect(bad.issues.map((i) => i.path)).toEqual(['people/0/first_name', 'people/1', 'organizations']);
  });

  it('normalises keys (Person, Invoice, SalesOrder, tax_code) and keeps untyped collections apart', () => {
    const n = parseNotification({
      organizations: [{ id: [C('o1')], name: 'Acme', group_id: 'cld-9a1b' }],
      Person: [{ ...jane }],
      Invoice: [{ id: [C('i1')], transaction_number: 'INV-1009', lines: [{ id: [C('l1')], item_id: [C('it1')], quantity: 2 }], group_id: 'cld-9a1b' }],
      SalesOrder: [{ id: 's1', group_id: 'cld-9a1b' }],
      tax_code: [{ id: 't1', name: 'GST', group_id: 'cld-9a1b' }],
      Journal: [{ id: 'j1', title: 'J', group_id: 'cld-9a1b' }],
    });
    expect(n.entries.map((e) => [e.key, e.collection])).toEqual([
      ['organizations', 'organizations'],
      ['Person', 'people'],
      ['Invoice', 'invoices'],
      ['SalesOrder', 'sales_orders'],
      ['tax_code', 'tax_codes'],
      ['Journal', 'journals'],
    ]);
    const group = n.groups[0];
    expect(Object.keys(group?.records ?? {})).toEqual(['organizations', 'people', 'invoices', 'sales_orders', 'tax_codes']);
    expect(group?.records.invoices?.[0]?.lines?.[0]?.quantity).toBe(2);
    expect(group?.other).toEqual({ journals: [{ id: 'j1', title: 'J', group_id: 'cld-9a1b' }] });
  });

  it('groups a buffered body by group_id in order of first appearance', () => {
    const n = parseNotification({
      people: [
        { ...jane, group_id: 'cld-7777' },
        { ...jane, first_name: 'Bob', group_id: 'cld-9a1b' },
      ],
      organizations: [{ id: 'o1', name: 'Acme', group_id: 'cld-7777' }],
      items: [{ id: 'it1', name: 'Widget', group_id: 'cld-unknown' }],
    });
    expect(n.groups.map((g) => g.groupId)).toEqual(['cld-7777', 'cld-9a1b', 'cld-unknown']);
    const [seven, nine, unknown] = n.groups;
    expect(seven?.records.people?.map((p) => p.first_name)).toEqual(['Jane']);
    expect(seven?.records.organizations?.map((o) => o.name)).toEqual(['Acme']);
    expect(seven?.entries.map((e) => e.collection)).toEqual(['people', 'organizations']);
    expect(nine?.records.people?.map((p) => p.first_name)).toEqual(['Bob']);
    expect(unknown?.records.items?.[0]?.name).toBe('Widget');
  });

  it('ignores scalar top-level keys and accepts an empty body', () => {
    const n = parseNotification({ channel_id: 'org-f6zi', people: [jane] });
    expect(n.ignoredKeys).toEqual(['channel_id']);
    expect(n.entries).toHaveLength(1);
    expect(parseNotification({})).toEqual({ entries: [], groups: [], ignoredKeys: [], ignoredRecords: {} });
  });

  it('rejects a malformed body with one error listing every bad path', () => {
    const error = errorOf(() =>
      parseNotification({
        people: [
          { ...jane, group_id: undefined },
          { ...jane, email: { address: 3 } },
          'not a record',
          { ...jane, id: 42 },
        ],
        organizations: { id: 'o1' },
        '???': [],
        items: [{ id: 'it1', is_inventoried: 'yes', group_id: 'cld-9a1b' }],
      }),
    );
    expect(error.code).toBe('payload_invalid');
    expect(error.issues.map((i) => i.path)).toEqual([
      'people/0/group_id',
      'people/1/email/address',
      'people/2',
      'people/3/id',
      'organizations',
      '???',
      'items/0/is_inventoried',
    ]);
    expect(error.message).toContain('people/0/group_id');
  });

  it('with onInvalidRecord: hands each bad record over and keeps the good ones; a bad shape still throws', () => {
    const invalid: InvalidNotificationRecord[] = [];
    const onInvalidRecord = (bad: InvalidNotificationRecord) => invalid.push(bad);
    const parsed = parseNotification(
      {
        Person: [{ ...jane, group_id: undefined }, jane, { ...jane, email: { address: 3 } }, 'not a record'],
        items: [{ id: 'it1', is_inventoried: 'yes', group_id: 'cld-9a1b' }],
      },
      { onInvalidRecord },
    );
    expect(parsed.entries.map((e) => e.record.first_name)).toEqual(['Jane']);
    expect(invalid.map((b) => [b.collection, b.key, b.index, b.issues.map((i) => i.path)])).toEqual([
      ['people', 'Person', 0, ['Person/0/group_id']],
      ['people', 'Person', 2, ['Person/2/email/address']],
      ['people', 'Person', 3, ['Person/3']],
      ['items', 'items', 0, ['items/0/is_inventoried']],
    ]);
    expect(invalid[2]?.record).toEqual('not a record');
    expect(invalid[1]?.message).toMatch(/^Invalid Connec! notification record: Person\/2\/email\/address: /);
    // The body's shape is checked as a whole, as without the option.
    expect(errorOf(() => parseNotification({ people: { id: 'o1' } }, { onInvalidRecord })).issues.map((i) => i.path)).toEqual(['people']);
  });

  it('rejects bodies that are not JSON objects', () => {
    expect(errorOf(() => parseNotification('{not json')).issues).toEqual([{ path: '', message: 'body is not valid JSON' }]);
    expect(errorOf(() => parseNotification([jane])).issues[0]?.path).toBe('');
    expect(errorOf(() => parseNotification(null)).issues[0]?.path).toBe('');
  });
});
