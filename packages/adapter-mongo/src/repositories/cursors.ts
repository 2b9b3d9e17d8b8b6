import type { CursorKey, CursorRecord, CursorRepository, JsonObject } from '@org/maestrano-sdk';
import { bool, date, jsonObject, keyId, num, type Raw, str, toStoredJson } from '../documents.js';
import type { Store } from '../store.js';
import { checkLookup, checkNonEmpty, checkStorableText, InvalidArgumentError } from '../validation.js';

export function decodeCursor(doc: Raw): CursorRecord {
  return {
    tenant: str(doc, 'tenant'),
    groupId: str(doc, 'groupId'),
    entity: str(doc, 'entity'),
    kind: str(doc, 'kind'),
    position: num(doc, 'position'),
    data: jsonObject(doc, 'data'),
    complete: bool(doc, 'complete'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

function cursorId(key: CursorKey): string {
  return keyId(key.tenant, key.groupId, key.entity, key.kind);
}

function checkCursorKey(key: CursorKey): void {
  checkLookup({ tenant: key.tenant, groupId: key.groupId, entity: key.entity, kind: key.kind });
}

export function cursorRepository(store: Store): CursorRepository {
  const cursors = () => store.collection('cursors');
  return {
    get: (key) =>
      store.run('cursors.get', async () => {
        checkCursorKey(key);
        const doc = await cursors().findOne({ _id: cursorId(key) });
        return doc ? decodeCursor(doc) : null;
      }),

    advance: (key, position: number, data: JsonObject, complete = false) =>
      store.run('cursors.advance', () => {
        checkStorableText('tenant', key.tenant);
        checkStorableText('groupId', key.groupId);
        checkStorableText('entity', key.entity);
        checkNonEmpty('kind', key.kind);
        if (typeof position !== 'number' || !Number.isFinite(position)) throw new InvalidArgumentError('position must be a finite number');
        const fields = { position, data: toStoredJson(data, 'data'), complete };
        return store.modify<boolean>('cursors.advance', 'cursors', cursorId(key), (doc) => {
          const now = store.now();
          if (doc === null) {
            return {
              kind: 'insert',
              doc: { tenant: key.tenant, groupId: key.groupId, entity: key.entity, kind: key.kind, ...fields, updatedAt: now },
              value: () => true,
            };
          }
          const stored = num(doc, 'position');
          const forward = position > stored || (position === stored && complete && !bool(doc, 'complete'));
          if (!forward) return { kind: 'return', value: false };
          return { kind: 'update', set: { ...fields, updatedAt: now }, value: () => true };
        });
      }),

    reset: (key) =>
      store.run('cursors.reset', () => {
        checkCursorKey(key);
        return store.modify<void>('cursors.reset', 'cursors', cursorId(key), (doc) =>
          doc === null ? { kind: 'return', value: undefined } : { kind: 'delete', value: undefined },
        );
      }),

    list: (tenant, groupId) =>
      store.run('cursors.list', async () => {
        checkLookup({ tenant, groupId });
        const docs = await cursors().find({ tenant, groupId }).sort({ entity: 1, kind: 1 }).toArray();
        return docs.map(decodeCursor);
      }),
  };
}
