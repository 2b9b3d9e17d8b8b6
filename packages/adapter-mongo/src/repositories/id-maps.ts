import { MongoBulkWriteError, ObjectId, type WriteError } from 'mongodb';
import type { IdMapInsert, IdMapKey, IdMapPatch, IdMapRecord, IdMapRepository, IdMapScope } from '@org/maestrano-sdk';
import {
  date,
  dateOrNull,
  keyId,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  newRev,
  type Raw,
  recordErrorOrNull,
  type Stored,
  str,
  strOrNull,
  toDate,
  toDateOrNull,
  uniqueSlot,
  recordedText,
  valueSlot,
} from '../documents.js';
import { conflict, isDuplicateKeyError } from '../errors.js';
import type { Store } from '../store.js';
import {
  checkArray,
  checkDate,
  checkLookup,
  checkNonEmpty,
  checkNonEmptyString,
  checkOptionalDate,
  checkPositiveInt,
  checkStorableText,
  InvalidArgumentError,
} from '../validation.js';

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
    // Absent from documents stored before the field existed.
    syncedAt: dateOrNull(doc, 'syncedAt'),
    // Absent from documents stored before the field existed: nothing owed.
    linkSubIds: strOrNull(doc, 'linkSubIds'),
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

/** The filter of an id-map scope, whose text must be storable (checked before any I/O). */
function scopeFilter(scope: IdMapScope): Raw {
  checkLookup({ tenant: scope.tenant, groupId: scope.groupId, entity: scope.entity });
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
  if (patch.syncedAt !== undefined) set['syncedAt'] = toDateOrNull(patch.syncedAt);
  if (patch.linkSubIds !== undefined) set['linkSubIds'] = patch.linkSubIds;
  if (patch.lastError !== undefined) {
    set['lastError'] =
      patch.lastError === null ? null : {
            code: recordedText(patch.lastError.code, MAX_ERROR_CODE_BYTES),
            message: recordedText(String(patch.lastError.message), MAX_ERROR_MESSAGE_BYTES),
            at: toDate(patch.lastError.at),
          };
  }
  return set;
}

const MAX_ATTEMPTS = 25;

function checkInsert(map: IdMapInsert): void {
  checkNonEmpty('tenant', map.tenant);
  checkNonEmpty('groupId', map.groupId);
  checkNonEmpty('entity', map.entity);
  if (map.connecId === null && map.localId === null) {
    throw new InvalidArgumentError('an id map needs a connecId or a localId (both are null)');
  }
  if (map.connecId !== null) checkNonEmpty('connecId', map.connecId);
  if (map.localId !== null) checkNonEmpty('localId', map.localId);
  checkStorableText('lastPushedHash', map.lastPushedHash);
  checkStorableText('lastReceivedHash', map.lastReceivedHash);
  checkStorableText('linkSubIds', map.linkSubIds);
  checkOptionalDate('lastAppliedAt', map.lastAppliedAt);
  checkOptionalDate('syncedAt', map.syncedAt);
}

function newMapDoc(map: IdMapInsert, id: ObjectId, now: Date): Raw & { _id: ObjectId } {
  return {
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
    syncedAt: toDateOrNull(map.syncedAt),
    linkSubIds: map.linkSubIds ?? null,
    createdAt: now,
    updatedAt: now,
    connecKey: uniqueSlot(map.connecId, id),
    localKey: uniqueSlot(map.localId, id),
  };
}

/** The unique-index entries a new map document takes (only set ids can collide). */
function uniqueKeys(doc: Raw): string[] {
  const keys: string[] = [];
  const scope = [str(doc, 'tenant'), str(doc, 'groupId'), str(doc, 'entity')];
  const connecId = strOrNull(doc, 'connecId');
  const localId = strOrNull(doc, 'localId');
  if (connecId !== null) keys.push(keyId(...scope, 'connec', connecId));
  if (localId !== null) keys.push(keyId(...scope, 'local', localId));
  return keys;
}

/** A write error of a bulk insert that is a unique-index violation. */
function isDuplicateWriteError(error: WriteError): boolean {
  return isDuplicateKeyError({ code: error.code, message: error.errmsg ?? '' });
}

export function idMapRepository(store: Store): IdMapRepository {
  const maps = () => store.collection('idMaps');

  /**
   * One unordered insertMany; returns the positions skipped for a unique-key violation. Any
   * other failure rejects (as a failed single insert does).
   */
  async function insertRound(docs: Stored[]): Promise<Set<number>> {
    try {
      await maps().insertMany(docs, { ordered: false });
      return new Set();
    } catch (err) {
      if (!(err instanceof MongoBulkWriteError) || err.err !== undefined) throw err;
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.length === 0 || !errors.every(isDuplicateWriteError)) throw err;
      return new Set(errors.map((error) => error.index));
    }
  }

  /** Read-decide-write on the map found by `key` (its `_id` is stable, its key may change). */
  async function modifyByKey<T>(
    operation: 'idMaps.update' | 'idMaps.markApplied' | 'idMaps.clearError',
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
        checkArray('connecIds', connecIds);
        const filter = scopeFilter(scope);
        for (const connecId of connecIds) checkStorableText('connecId', connecId);
        if (connecIds.length === 0) return [];
        const docs = await maps()
          .find({ ...filter, connecKey: { $in: connecIds.map(valueSlot) } })
          .toArray();
        return docs.map(decodeIdMap);
      }),

    insert: (map) =>
      store.run('idMaps.insert', async () => {
        checkInsert(map);
        const doc = newMapDoc(map, new ObjectId(), store.now());
        try {
          return decodeIdMap(await store.insert('idMaps', doc));
        } catch (err) {
          if (isDuplicateKeyError(err)) throw conflict('idMaps.insert', 'a map with this connecId or localId already exists in the scope');
          throw err;
        }
      }),

    insertMany: (list) =>
      store.run('idMaps.insertMany', async () => {
        // Validate everything first so an invalid entry stores nothing.
        checkArray('maps', list);
        for (const map of list) checkInsert(map);
        if (list.length === 0) return [];
        const now = store.now();
        const docs: Stored[] = list.map((map) => ({ ...newMapDoc(map, new ObjectId(), now), _rev: newRev() }));
        const results: (IdMapRecord | null)[] = docs.map(() => null);
        // Each round is one unordered insertMany of the entries that share no unique key with
        // an earlier entry still waiting: within a round the server's order cannot change the
        // outcome, and an entry sharing a key with an earlier one is tried only after it, so
        // the earlier entry wins (or, when it was skipped, the later one may still be stored).
        let waiting = docs.map((_, index) => index);
        while (waiting.length > 0) {
          const round: number[] = [];
          const later: number[] = [];
          const seen = new Set<string>();
          for (const index of waiting) {
            const keys = uniqueKeys(docs[index] as Stored);
            (keys.some((key) => seen.has(key)) ? later : round).push(index);
            for (const key of keys) seen.add(key);
          }
          const skipped = await insertRound(round.map((index) => docs[index] as Stored));
          round.forEach((index, position) => {
            if (!skipped.has(position)) results[index] = decodeIdMap(docs[index] as Stored);
          });
          waiting = later;
        }
        return results;
      }),

    update: (scope, key, patch) =>
      store.run('idMaps.update', () => {
        checkOptionalDate('lastAppliedAt', patch.lastAppliedAt);
        checkOptionalDate('tombstonedAt', patch.tombstonedAt);
        checkOptionalDate('syncedAt', patch.syncedAt);
        if (patch.lastError) {
          checkNonEmptyString('lastError.code', patch.lastError.code); // free diagnostic text: recorded, never refused
          checkDate('lastError.at', patch.lastError.at);
        }
        if (patch.connecId !== undefined && patch.connecId !== null) checkNonEmpty('connecId', patch.connecId);
        if (patch.localId !== undefined && patch.localId !== null) checkNonEmpty('localId', patch.localId);
        checkStorableText('lastPushedHash', patch.lastPushedHash);
        checkStorableText('lastReceivedHash', patch.lastReceivedHash);
        checkStorableText('linkSubIds', patch.linkSubIds);
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

    markApplied: (scope, key, appliedAt, hash, options) =>
      store.run('idMaps.markApplied', () => {
        checkDate('appliedAt', appliedAt);
        checkStorableText('hash', hash);
        checkStorableText('options.linkSubIds', options?.linkSubIds);
        return modifyByKey<boolean>(
          'idMaps.markApplied',
          scope,
          key,
          (doc) => {
            if (!doc) return { value: false };
            const last = dateOrNull(doc, 'lastAppliedAt');
            const sameVersion = last !== null && last.getTime() === appliedAt.getTime() && doc.lastReceivedHash === hash;
            if (last !== null && (last.getTime() > appliedAt.getTime() || sameVersion)) return { value: false };
            const now = store.now();
            // An inbound version written locally puts app and Connec! in sync; an acknowledged one does not.
            const synced = options?.inSync === false ? {} : { syncedAt: now };
            const owed = options?.linkSubIds === undefined ? {} : { linkSubIds: options.linkSubIds };
            return { set: { lastAppliedAt: toDate(appliedAt), lastReceivedHash: hash, updatedAt: now, ...synced, ...owed } };
          },
          () => true,
        );
      }),

    clearError: (scope, key, error) =>
      store.run('idMaps.clearError', () => {
        if (typeof error !== 'object' || error === null) throw new InvalidArgumentError('error must be an object');
        checkNonEmptyString('error.code', error.code);
        checkDate('error.at', error.at);
        // The code in the form `update` stores it. A compare-and-set on the document's revision
        // (as every write here), not a filter on the error: FerretDB does not apply a filtered
        // update atomically (see store.ts).
        const code = recordedText(error.code, MAX_ERROR_CODE_BYTES);
        return modifyByKey<boolean>(
          'idMaps.clearError',
          scope,
          key,
          (doc) => {
            const stored = doc ? recordErrorOrNull(doc, 'lastError') : null;
            if (!stored || stored.code !== code || stored.at.getTime() !== error.at.getTime()) return { value: false };
            return { set: { lastError: null, updatedAt: store.now() } };
          },
          () => true,
        );
      }),

    list: (scope, options) =>
      store.run('idMaps.list', async () => {
        checkPositiveInt('limit', options.limit);
        const filter: Raw = scopeFilter(scope);
        checkStorableText('after', options.after);
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
        checkLookup({ tenant, groupId });
        const result = await maps().deleteMany({ tenant, groupId });
        return result.deletedCount;
      }),
  };
}
