import { ObjectId } from 'mongodb';
import type { IdMapKey, IdMapPatch, IdMapRecord, IdMapRepository, IdMapScope } from '@org/maestrano-sdk';
import {
  date,
  dateOrNull,
  type Raw,
  recordErrorOrNull,
  type Stored,
  str,
  strOrNull,
  toDate,
  toDateOrNull,
  uniqueSlot,
  valueSlot,
} from '../documents.js';
import { conflict, isDuplicateKeyError } from '../errors.js';
import type { Store } from '../store.js';
import { checkDate, checkNonEmpty, checkOptionalDate, checkPositiveInt, InvalidArgumentError } from '../validation.js';

/**
 * Stored as one document per map with an ObjectId `_id`. `connecKey`/`localKey` are the
 * never-null unique slots of `connecId`/`localId` (see documents.ts), each unique per scope.
 */
export function decodeIdMap(doc: Raw): IdMapRecord {
  return {
    tenant: str(doc, 'tenant'),
    groupId: str(doc, 'groupId'),
    entity: str(doc, 'entity'),
    connecId: strOrNull(doc, 'connecId'),
    localId: strOrNull(doc, 'localId'),
    lastAppliedAt: dateOrNull(doc, 'lastAppliedAt'),
    lastPushedHash: strOrNull(doc, 'lastPushedHash'),
    lastReceivedHash: strOrNull(doc, 'lastReceivedHash'),
    tombstonedAt: dateOrNull(doc, 'tombstonedAt'),
    lastError: recordErrorOrNull(doc, 'lastError'),
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

function scopeFilter(scope: IdMapScope): Raw {
  return { tenant: scope.tenant, groupId: scope.groupId, entity: scope.entity };
}

function keyFilter(scope: IdMapScope, key: IdMapKey): Raw {
  if ('connecId' in key) checkNonEmpty('connecId', key.connecId);
  else checkNonEmpty('localId', key.localId);
  return 'connecId' in key
    ? { ...scopeFilter(scope), connecKey: valueSlot(key.connecId) }
    : { ...scopeFilter(scope), localKey: valueSlot(key.localId) };
}

function patchFields(patch: IdMapPatch, id: ObjectId): Raw {
  const set: Raw = {};
  if (patch.connecId !== undefined) {
    set['connecId'] = patch.connecId;
    set['connecKey'] = uniqueSlot(patch.connecId, id);
  }
  if (patch.localId !== undefined) {
    set['localId'] = patch.localId;
    set['localKey'] = uniqueSlot(patch.localId, id);
  }
  if (patch.lastAppliedAt !== undefined) set['lastAppliedAt'] = toDateOrNull(patch.lastAppliedAt);
  if (patch.lastPushedHash !== undefined) set['lastPushedHash'] = patch.lastPushedHash;
  if (patch.lastReceivedHash !== undefined) set['lastReceivedHash'] = patch.lastReceivedHash;
  if (patch.tombstonedAt !== undefined) set['tombstonedAt'] = toDateOrNull(patch.tombstonedAt);
  if (patch.lastError !== undefined) {
    set['lastError'] =
      patch.lastError === null ? null : { code: patch.lastError.code, message: patch.lastError.message, at: toDate(patch.lastError.at) };
  }
  return set;
}

const MAX_ATTEMPTS = 25;

export function idMapRepository(store: Store): IdMapRepository {
  const maps = () => store.collection('idMaps');

  /** Read-decide-write on the map found by `key` (its `_id` is stable, its key may change). */
  async function modifyByKey<T>(
    operation: 'idMaps.update' | 'idMaps.markApplied',
    scope: IdMapScope,
    key: IdMapKey,
    decide: (doc: Stored | null) => { set: Raw } | { value: T },
    value: (doc: Stored) => T,
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = (await maps().findOne(keyFilter(scope, key))) as Stored | null;
      const step = decide(doc);
      if ('value' in step) return step.value;
      if (!doc) break;
      const updated = await store.casUpdate('idMaps', doc, step.set);
      if (updated) return value(updated);
    }
    throw conflict(operation, 'the map kept changing under concurrent writers');
  }

  return {
    find: (scope, key) =>
      store.run('idMaps.find', async () => {
        const doc = await maps().findOne(keyFilter(scope, key));
        return doc ? decodeIdMap(doc) : null;
      }),

    findManyByConnecIds: (scope, connecIds) =>
      store.run('idMaps.findManyByConnecIds', async () => {
        if (connecIds.length === 0) return [];
        const docs = await maps()
          .find({ ...scopeFilter(scope), connecKey: { $in: connecIds.map(valueSlot) } })
          .toArray();
        return docs.map(decodeIdMap);
      }),

    insert: (map) =>
      store.run('idMaps.insert', async () => {
        checkNonEmpty('tenant', map.tenant);
        checkNonEmpty('groupId', map.groupId);
        checkNonEmpty('entity', map.entity);
        if (map.connecId === null && map.localId === null) {
          throw new InvalidArgumentError('an id map needs a connecId or a localId (both are null)');
        }
        if (map.connecId !== null) checkNonEmpty('connecId', map.connecId);
        if (map.localId !== null) checkNonEmpty('localId', map.localId);
        checkOptionalDate('lastAppliedAt', map.lastAppliedAt);
        const id = new ObjectId();
        const now = store.now();
        const doc: Raw & { _id: ObjectId } = {
          _id: id,
          tenant: map.tenant,
          groupId: map.groupId,
          entity: map.entity,
          connecId: map.connecId,
          localId: map.localId,
          lastAppliedAt: toDateOrNull(map.lastAppliedAt),
          lastPushedHash: map.lastPushedHash ?? null,
          lastReceivedHash: map.lastReceivedHash ?? null,
          tombstonedAt: null,
          lastError: null,
          createdAt: now,
          updatedAt: now,
          connecKey: uniqueSlot(map.connecId, id),
          localKey: uniqueSlot(map.localId, id),
        };
        try {
          return decodeIdMap(await store.insert('idMaps', doc));
        } catch (err) {
          if (isDuplicateKeyError(err)) throw conflict('idMaps.insert', 'a map with this connecId or localId already exists in the scope');
          throw err;
        }
      }),

    update: (scope, key, patch) =>
      store.run('idMaps.update', () => {
        checkOptionalDate('lastAppliedAt', patch.lastAppliedAt);
        checkOptionalDate('tombstonedAt', patch.tombstonedAt);
        if (patch.lastError) {
          checkNonEmpty('lastError.code', patch.lastError.code);
          checkDate('lastError.at', patch.lastError.at);
        }
        if (patch.connecId !== undefined && patch.connecId !== null) checkNonEmpty('connecId', patch.connecId);
        if (patch.localId !== undefined && patch.localId !== null) checkNonEmpty('localId', patch.localId);
        return modifyByKey<IdMapRecord | null>(
          'idMaps.update',
          scope,
          key,
          (doc) => {
            if (!doc) return { value: null };
            if (!(doc._id instanceof ObjectId)) return { value: null };
            const connecId = patch.connecId !== undefined ? patch.connecId : strOrNull(doc, 'connecId');
            const localId = patch.localId !== undefined ? patch.localId : strOrNull(doc, 'localId');
            if (connecId === null && localId === null) {
              throw new InvalidArgumentError('an id map needs a connecId or a localId (the patch would clear both)');
            }
            return { set: { ...patchFields(patch, doc._id), updatedAt: store.now() } };
          },
          decodeIdMap,
        );
      }),

    markApplied: (scope, key, appliedAt, hash) =>
      store.run('idMaps.markApplied', () => {
        checkDate('appliedAt', appliedAt);
        return modifyByKey<boolean>(
          'idMaps.markApplied',
          scope,
          key,
          (doc) => {
            if (!doc) return { value: false };
            const last = dateOrNull(doc, 'lastAppliedAt');
            if (last !== null && last.getTime() >= appliedAt.getTime()) return { value: false };
            return { set: { lastAppliedAt: toDate(appliedAt), lastReceivedHash: hash, updatedAt: store.now() } };
          },
          () => true,
        );
      }),

    list: (scope, options) =>
      store.run('idMaps.list', async () => {
        checkPositiveInt('limit', options.limit);
        const filter: Raw = scopeFilter(scope);
        if (options.after !== undefined) {
          const anchor = await maps().findOne({
            ...scopeFilter(scope),
            // The page token is `connecId ?? localId` of the last map seen.
            $or: [{ connecKey: valueSlot(options.after) }, { connecId: null, localKey: valueSlot(options.after) }],
          });
          if (!anchor) return [];
          filter['$or'] = [{ createdAt: { $gt: anchor['createdAt'] } }, { createdAt: anchor['createdAt'], _id: { $gt: anchor['_id'] } }];
        }
        const docs = await maps()
          .find(filter)
          .sort({ createdAt: 1, _id: 1 })
          .limit(options.limit)
          .toArray();
        return docs.map(decodeIdMap);
      }),

    purgeGroup: (tenant, groupId) =>
      store.run('idMaps.purgeGroup', async () => {
        const result = await maps().deleteMany({ tenant, groupId });
        return result.deletedCount;
      }),
  };
}
