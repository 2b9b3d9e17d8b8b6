/**
 * A `__proto__` key inside a Connec! record (JSON.parse makes it an own property, and the
 * storage contract keeps it as data) must reach the app as data, and one in what `toConnec`
 * returns must reach Connec!: copied by assignment, the key replaced the copy's prototype, so
 * the field vanished (from the stored notification job, from the pushed payload) and its
 * content showed up as inherited properties of the object holding it.
 */
import { createSyncModule, defineConnector, defineEntity, type StorageAdapter } from '@org/maestrano-sdk';
import { expect } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { FakeConnec } from './fake-connec.js';
import { drainer, GROUP, notifier, ORG_UID, provisionGroup, TENANT, testRuntime } from './harness.js';

interface Person {
  id: string;
  last: string;
  custom: unknown;
}

/** A sync module over `storage` whose one entity copies `custom_fields` both ways. */
export async function protoKeysSetup(storage: StorageAdapter) {
  const connec = new FakeConnec(ORG_UID);
  const runtime = testRuntime(storage);
  const created: Person[] = [];
  const contacts = defineEntity({
    name: 'contacts',
    connec: 'people',
    direction: 'both',
    toLocal: (p: Record<string, unknown>): Person => ({ id: '', last: String(p.last_name ?? ''), custom: p.custom_fields }),
    toConnec: (c: Person) => ({ last_name: c.last, custom_fields: c.custom }),
    localId: (c: Person) => c.id,
    local: {
      create: async (data: Person) => {
        created.push(data);
        return { id: `ct-${created.length}` };
      },
      update: async () => undefined,
    },
  });
  const sync = createSyncModule(runtime, { connector: defineConnector({ entities: [contacts] }), sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4 } });
  await provisionGroup(storage);
  return { connec, sync, created, drain: drainer(createWorker(runtime, sync.jobs ?? {}), storage), notify: notifier(sync) };
}

/** `{"__proto__":{"admin":true},"color":"red"}` as JSON.parse makes it: `__proto__` an own key. */
export const customFields = () => JSON.parse('{"__proto__":{"admin":true},"color":"red"}') as Record<string, unknown>;

/** What the checks below expect of a copied `customFields()`. */
export function expectCustomFieldsKept(value: unknown): void {
  const custom = value as Record<string, unknown>;
  expect(Object.getPrototypeOf(custom)).toBe(Object.prototype);
  expect(Object.keys(custom).sort()).toEqual(['__proto__', 'color']);
  expect(Object.getOwnPropertyDescriptor(custom, '__proto__')?.value).toEqual({ admin: true });
  expect(custom.admin).toBeUndefined();
}

export async function inboundProtoKey(storage: StorageAdapter): Promise<void> {
  const h = await protoKeysSetup(storage);
  const body = `{"people":[{"id":[{"id":"p1","provider":"connec","realm":"${ORG_UID}"}],"last_name":"Doe","custom_fields":{"__proto__":{"admin":true},"color":"red"},"group_id":"${GROUP}","channel_id":"${ORG_UID}","updated_at":"2016-10-04T00:36:23Z"}]}`;
  expect((await h.notify(body)).status).toBe(200);
  await h.drain();
  expect(h.created).toHaveLength(1);
  expectCustomFieldsKept(h.created[0]?.custom);
}

export async function outboundProtoKey(storage: StorageAdapter): Promise<void> {
  const h = await protoKeysSetup(storage);
  const result = await h.sync.api.push({ tenant: TENANT, groupId: GROUP, entity: 'contacts', record: { id: 'ct-9', last: 'Roe', custom: customFields() } });
  expect(result.status).toBe('pushed');
  const sent = h.connec.find(GROUP, 'people', String(result.connecId));
  expectCustomFieldsKept(sent?.custom_fields);
}
