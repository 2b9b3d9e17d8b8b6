/** Connec! people <-> the app's contacts, both ways. */
import { randomUUID } from 'node:crypto';
import { defineEntity } from '@org/maestrano-sdk';
import type { Contact, Db } from './db.js';

/** Connec! sends unset text as absent, null or blank. */
const text = (v: string | null | undefined): string | null => (v && v.trim() !== '' ? v : null);

// #region entity
export function contactsEntity(db: Db) {
  return defineEntity<'people', Contact>({
    name: 'contacts', // the key of id maps, checkpoints and jobs: never rename it
    connec: 'people',
    direction: 'both',
    matchingFields: ['email'], // on the first push, Connec! merges with a person of the same email

    // Connec! -> app, and app -> Connec!. Pure functions, no I/O. `person` is typed from
    // Connec!'s people schema (fields are optional: Connec! omits or nulls unset ones).
    toLocal: (person) => ({
      firstName: text(person.first_name) ?? '',
      lastName: text(person.last_name) ?? '(no name)',
      email: text(person.email?.address),
    }),
    toConnec: (contact) => ({
      first_name: contact.firstName,
      last_name: contact.lastName,
      ...(contact.email ? { email: { address: contact.email } } : {}),
    }),
    localId: (contact) => contact.id ?? '',
    localUpdatedAt: (contact) => contact.updatedAt ?? null,

    // Your storage. `create` is idempotent on ctx.idempotencyKey (a redelivered job repeats it).
    local: {
      create: async (data, ctx) => {
        const id = db.keys.get(ctx.idempotencyKey) ?? `ct_${randomUUID()}`;
        db.keys.set(ctx.idempotencyKey, id);
        db.contacts.set(id, { ...data, id, tenant: ctx.tenant, groupId: ctx.groupId, updatedAt: new Date() });
        return { id };
      },
      // Scoped to the company being synced (ctx.tenant, ctx.groupId), like every lookup of yours.
      update: async (id, data, ctx) => {
        const row = db.contacts.get(id);
        if (!row || row.tenant !== ctx.tenant || row.groupId !== ctx.groupId) return { gone: true }; // deleted locally: never updated or pushed again
        db.contacts.set(id, { ...row, ...data, id, updatedAt: new Date() });
        return undefined;
      },
      get: async (id, ctx) => {
        const row = db.contacts.get(id);
        return row && row.tenant === ctx.tenant && row.groupId === ctx.groupId ? row : null;
      },
      // The company's own records, pushed by the import and by a catch-up after a switch-on
      // (edits made while the sync was off). Only this group's: another company's would be
      // pushed into this company's Connec!.
      list: async function* (ctx) {
        yield [...db.contacts.values()].filter((row) => row.tenant === ctx.tenant && row.groupId === ctx.groupId);
      },
    },
  });
}
// #endregion entity
