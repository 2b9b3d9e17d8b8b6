// Another app's entry in a record's id array may carry a number: connectors push their own
// database ids (BaseCRM's pushes `{'id' => 2, ...}` and `lead_id => [{'id' => 135906741, ...}]`).
// Refusing it refused the whole record (a 400 for the whole notification, an invalid record on
// an import page); it is read as its decimal text instead.
import { describe, expect, it } from 'vitest';
import { IdMap, parseNotification, Person } from '../src/index.js';

const ids = (own: string) => [
  { id: own, provider: 'connec', realm: 'org-fbba' },
  { id: 2, provider: 'basecrm', realm: 135906741 },
];

describe('id arrays with numeric ids from another app', () => {
  it('a record parses, with the numbers as text and Connec!\'s own entry unchanged', () => {
    const person = Person.parse({ id: ids('p-1'), first_name: 'Jane', organization_id: ids('o-1') });
    expect(person.id).toEqual([
      { id: 'p-1', provider: 'connec', realm: 'org-fbba' },
      { id: '2', provider: 'basecrm', realm: '135906741' },
    ]);
    expect(person.organization_id).toEqual([
      { id: 'o-1', provider: 'connec', realm: 'org-fbba' },
      { id: '2', provider: 'basecrm', realm: '135906741' },
    ]);
  });

  it('a notification carrying one is accepted, its records as sent', () => {
    const parsed = parseNotification({ people: [{ id: ids('p-1'), group_id: 'cld-1', first_name: 'Jane' }] });
    expect(parsed.entries).toHaveLength(1);
    expect(parsed.groups[0]?.records.people?.[0]?.id).toEqual(ids('p-1'));
  });

  it('still refuses what is no id: a fraction, a boolean, an object, a missing id', () => {
    for (const id of [2.5, true, { n: 2 }, undefined, null]) {
      expect(IdMap.safeParse({ id, provider: 'basecrm', realm: 'r' }).success, String(id)).toBe(false);
    }
    expect(IdMap.safeParse({ id: '2', provider: 7, realm: 'r' }).success).toBe(false);
  });
});
