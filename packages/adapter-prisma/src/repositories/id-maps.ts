import type {
  IdMapInsert,
  IdMapKey,
  IdMapPatch,
  IdMapRecord,
  IdMapRepository,
  IdMapScope,
  JsonValue,
  MarkAppliedOptions,
  RecordError,
  StorageOperation,
} from '@org/maestrano-sdk';
import { date, inList, join, json, jsonCol, jsonText, optDate, optStr, pgArray, type Row, raw, type Sql, type SqlProvider, sql, str, text, toDate, ts } from '../sql.js';
import { invalid, nonEmpty, nonEmptyString, positiveInt, type RepositoryContext, storableLookup, storableText, validDate, wellFormedText } from './context.js';


/** SQLite binds at most 32766 parameters per statement; batches stay far below. */
const BATCH = 500;

function recordErrorToJson(error: RecordError | null): JsonValue {
  // Free diagnostic text: made storable (NUL and unpaired surrogates to U+FFFD), never refused.
  return error === null
    ? null
    : { code: wellFormedText(error.code), message: wellFormedText(String(error.message)), at: error.at.toISOString() };
}

function toRecordError(row: Row): RecordError | null {
  const value = jsonCol(row, 'last_error');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { code, message, at } = value;
  return {
    code: typeof code === 'string' ? code : 'unknown',
    message: typeof message === 'string' ? message : '',
    at: toDate(at, 'last_error.at'),
  };
}

function toIdMap(row: Row): IdMapRecord {
  return {
    tenant: str(row, 'tenant'),
    groupId: str(row, 'group_id'),
    entity: str(row, 'entity'),
    connecId: optStr(row, 'connec_id'),
    localId: optStr(row, 'local_id'),
    lastAppliedAt: optDate(row, 'last_applied_at'),
    lastPushedHash: optStr(row, 'last_pushed_hash'),
    lastReceivedHash: optStr(row, 'last_received_hash'),
    tombstonedAt: optDate(row, 'tombstoned_at'),
    lastError: toRecordError(row),
    syncedAt: optDate(row, 'synced_at'),
    linkSubIds: optStr(row, 'link_sub_ids'),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  };
}

function scopeWhere(scope: IdMapScope): Sql {
  return sql`tenant = ${scope.tenant} AND group_id = ${scope.groupId} AND entity = ${scope.entity}`;
}

function checkScope(operation: StorageOperation, scope: IdMapScope): void {
  storableLookup(operation, { tenant: scope.tenant, groupId: scope.groupId, entity: scope.entity });
}

function checkKey(operation: StorageOperation, key: IdMapKey): void {
  if ('connecId' in key) nonEmpty(operation, 'connecId', key.connecId);
  else nonEmpty(operation, 'localId', key.localId);
}

function checkRecordError(operation: StorageOperation, error: RecordError | null | undefined): void {
  if (error) {
    nonEmptyString(operation, 'lastError.code', error.code); // free diagnostic text: recorded, never refused
    validDate(operation, 'lastError.at', error.at);
  }
}

function keyWhere(key: IdMapKey): Sql {
  return 'connecId' in key ? sql`connec_id = ${key.connecId}` : sql`local_id = ${key.localId}`;
}

/** Same checks for `insert` and every entry of `insertMany`: a bad map reaches no SQL. */
function checkInsert(operation: StorageOperation, map: IdMapInsert): void {
  if (typeof map !== 'object' || map === null) throw invalid(operation, 'an id map must be an object');
  nonEmpty(operation, 'tenant', map.tenant);
  nonEmpty(operation, 'groupId', map.groupId);
  nonEmpty(operation, 'entity', map.entity);
  if (map.connecId === null && map.localId === null) throw invalid(operation, 'an id map needs a connecId or a localId (both are null)');
  if (map.connecId !== null) nonEmpty(operation, 'connecId', map.connecId);
  if (map.localId !== null) nonEmpty(operation, 'localId', map.localId);
  storableText(operation, 'lastPushedHash', map.lastPushedHash);
  storableText(operation, 'lastReceivedHash', map.lastReceivedHash);
  storableText(operation, 'linkSubIds', map.linkSubIds);
  if (map.lastAppliedAt) validDate(operation, 'lastAppliedAt', map.lastAppliedAt);
  if (map.syncedAt) validDate(operation, 'syncedAt', map.syncedAt);
}

const INSERT_MAPS = raw(`INSERT INTO maestrano_id_maps (tenant, group_id, entity, connec_id, local_id, last_applied_at, last_pushed_hash,
    last_received_hash, synced_at, link_sub_ids, created_at, updated_at) VALUES `);

function mapValues(map: IdMapInsert, now: Date): Sql {
  return sql`(${map.tenant}, ${map.groupId}, ${map.entity}, ${map.connecId}, ${map.localId}, ${ts(map.lastAppliedAt ?? null)},
    ${map.lastPushedHash ?? null}, ${map.lastReceivedHash ?? null}, ${ts(map.syncedAt ?? null)}, ${map.linkSubIds ?? null}, ${ts(now)}, ${ts(now)})`;
}

/** What `insertMany` returns for a map it stored (the keys it reads back identify the entry). */
const STORED_KEYS = raw('tenant, group_id, entity, connec_id, local_id');

/** The record of a map stored from `map` at `now`, as the table now holds it. */
function storedMap(map: IdMapInsert, now: Date): IdMapRecord {
  return {
    tenant: map.tenant,
    groupId: map.groupId,
    entity: map.entity,
    connecId: map.connecId,
    localId: map.localId,
    lastAppliedAt: map.lastAppliedAt ? new Date(map.lastAppliedAt.getTime()) : null,
    lastPushedHash: map.lastPushedHash ?? null,
    lastReceivedHash: map.lastReceivedHash ?? null,
    tombstonedAt: null,
    lastError: null,
    syncedAt: map.syncedAt ? new Date(map.syncedAt.getTime()) : null,
    linkSubIds: map.linkSubIds ?? null,
    createdAt: new Date(now.getTime()),
    updatedAt: new Date(now.getTime()),
  };
}

/** Scope and both ids of a map, as one unambiguous string. */
function identity(tenant: string, groupId: string, entity: string, connecId: string | null, localId: string | null): string {
  return JSON.stringify([tenant, groupId, entity, connecId, localId]);
}

function columns(provider: SqlProvider): Sql {
  return raw(
    `tenant, group_id, entity, connec_id, local_id, last_applied_at, last_pushed_hash, last_received_hash, tombstoned_at, ${jsonText(provider, 'last_error')}, synced_at, link_sub_ids, created_at, updated_at`,
  );
}

/**
 * The batch lookup by Connec! ids (the repository's statement, exported for the query-plan
 * tests). No ORDER BY: sorting
 * by seq made SQLite walk the whole scope through the paging index instead of probing the
 * unique one, and callers need no order.
 */
export function findByConnecIdsStatement(provider: SqlProvider, scope: IdMapScope, connecIds: readonly string[]): Sql {
  return sql`SELECT ${columns(provider)} FROM maestrano_id_maps WHERE ${scopeWhere(scope)} AND ${inList(raw('connec_id'), connecIds, provider)}`;
}

export function idMapRepository(ctx: RepositoryContext): IdMapRepository {
  const { db } = ctx;
  const COLUMNS = columns(db.provider);

  return {
    async find(scope: IdMapScope, key: IdMapKey): Promise<IdMapRecord | null> {
      checkScope('idMaps.find', scope);
      checkKey('idMaps.find', key);
      const [row] = await db.query(
        'idMaps.find',
        sql`SELECT ${COLUMNS} FROM maestrano_id_maps WHERE ${scopeWhere(scope)} AND ${keyWhere(key)}`,
      );
      return row ? toIdMap(row) : null;
    },

    async findManyByConnecIds(scope: IdMapScope, connecIds: string[]): Promise<IdMapRecord[]> {
      checkScope('idMaps.findManyByConnecIds', scope);
      if (Array.isArray(connecIds)) for (const connecId of connecIds) storableText('idMaps.findManyByConnecIds', 'connecId', connecId);
      const unique = [...new Set(connecIds)];
      const out: IdMapRecord[] = [];
      for (let i = 0; i < unique.length; i += BATCH) {
        const batch = unique.slice(i, i + BATCH);
        const found = await db.query('idMaps.findManyByConnecIds', findByConnecIdsStatement(db.provider, scope, batch));
        out.push(...found.map(toIdMap));
      }
      return out;
    },

    async insert(map: IdMapInsert): Promise<IdMapRecord> {
      checkInsert('idMaps.insert', map);
      const [row] = await db.query('idMaps.insert', sql`${INSERT_MAPS}${mapValues(map, ctx.now())} RETURNING ${COLUMNS}`);
      if (!row) throw new Error('INSERT … RETURNING returned no row');
      ctx.statistics.noteInserted(identity(map.tenant, map.groupId, map.entity, null, null), 1);
      return toIdMap(row);
    },

    async insertMany(maps: IdMapInsert[]): Promise<(IdMapRecord | null)[]> {
      const op = 'idMaps.insertMany';
      if (!Array.isArray(maps)) throw invalid(op, 'maps must be an array');
      // Everything is validated first, so an invalid entry stores nothing.
      for (const map of maps) checkInsert(op, map);
      const results: (IdMapRecord | null)[] = maps.map(() => null);
      const grown = new Map<string, number>();
      // One multi-row INSERT per chunk. Without a conflict target, DO NOTHING skips a row
      // that collides on either unique index, with a stored map or with a row stored
      // earlier by the same statement (rows are inserted in input order), so each entry is
      // inserted on its own exactly as a sequence of `insert` calls would, minus the errors.
      for (let start = 0; start < maps.length; start += BATCH) {
        const batch = maps.slice(start, start + BATCH);
        const now = ctx.now();
        const column = (pick: (map: IdMapInsert) => string | null) => pgArray(batch.map(pick), 'text[]');
        const stored = await db.query(
          op,
          db.provider === 'postgresql'
            ? // One array per column: a constant, short statement whatever the batch size
              // (a VALUES list of 1,000 placeholders cost PostgreSQL more to parse and plan
              // than to run). WITH ORDINALITY keeps the input order.
              sql`INSERT INTO maestrano_id_maps (tenant, group_id, entity, connec_id, local_id, last_applied_at, last_pushed_hash,
                    last_received_hash, synced_at, link_sub_ids, created_at, updated_at)
                  SELECT t, g, e, c, l, a, p, r, s, k, ${ts(now)}, ${ts(now)}
                  FROM unnest(${column((m) => m.tenant)}, ${column((m) => m.groupId)}, ${column((m) => m.entity)},
                    ${column((m) => m.connecId)}, ${column((m) => m.localId)},
                    ${pgArray(
                      batch.map((m) => m.lastAppliedAt ?? null),
                      'timestamp[]',
                    )}, ${column((m) => m.lastPushedHash ?? null)}, ${column((m) => m.lastReceivedHash ?? null)}, ${pgArray(
                      batch.map((m) => m.syncedAt ?? null),
                      'timestamp[]',
                    )}, ${column((m) => m.linkSubIds ?? null)}) WITH ORDINALITY AS u(t, g, e, c, l, a, p, r, s, k, n)
                  ORDER BY n
                  ON CONFLICT DO NOTHING RETURNING ${STORED_KEYS}`
            : sql`${INSERT_MAPS}${join(
                batch.map((map) => mapValues(map, now)),
                ', ',
              )} ON CONFLICT DO NOTHING RETURNING ${STORED_KEYS}`,
        );
        // A stored row is matched back to its entry by scope and both ids. Entries with the
        // same scope and ids collide, so at most one of them is stored: the first one.
        const pending = new Map<string, number[]>();
        batch.forEach((map, index) => {
          const key = identity(map.tenant, map.groupId, map.entity, map.connecId, map.localId);
          const indexes = pending.get(key);
          if (indexes) indexes.push(start + index);
          else pending.set(key, [start + index]);
        });
        // Only the keys come back: a stored row holds exactly its entry's values and `now`
        // (timestamps are kept to the millisecond, as JavaScript dates are), so the record is
        // built from the entry instead of being read back and converted column by column.
        for (const row of stored) {
          const tenant = str(row, 'tenant');
          const groupId = str(row, 'group_id');
          const entity = str(row, 'entity');
          const index = pending.get(identity(tenant, groupId, entity, optStr(row, 'connec_id'), optStr(row, 'local_id')))?.shift();
          if (index === undefined) throw new Error('INSERT … RETURNING returned a row matching no entry');
          results[index] = storedMap(maps[index] as IdMapInsert, now);
          const scope = identity(tenant, groupId, entity, null, null);
          grown.set(scope, (grown.get(scope) ?? 0) + 1);
        }
      }
      for (const [scope, added] of grown) ctx.statistics.noteInserted(scope, added);
      return results;
    },

    async update(scope: IdMapScope, key: IdMapKey, patch: IdMapPatch): Promise<IdMapRecord | null> {
      const op = 'idMaps.update';
      checkScope(op, scope);
      checkKey(op, key);
      if (patch.lastAppliedAt) validDate(op, 'lastAppliedAt', patch.lastAppliedAt);
      if (patch.tombstonedAt) validDate(op, 'tombstonedAt', patch.tombstonedAt);
      if (patch.syncedAt) validDate(op, 'syncedAt', patch.syncedAt);
      checkRecordError(op, patch.lastError);
      if (patch.connecId === '' || patch.localId === '') throw invalid(op, 'connecId/localId must not be empty strings');
      for (const name of ['connecId', 'localId', 'lastPushedHash', 'lastReceivedHash', 'linkSubIds'] as const) storableText(op, name, patch[name]);
      const now = ctx.now();
      const sets: Sql[] = [sql`updated_at = ${ts(now)}`];
      if (patch.connecId !== undefined) sets.push(sql`connec_id = ${patch.connecId}`);
      if (patch.localId !== undefined) sets.push(sql`local_id = ${patch.localId}`);
      if (patch.lastAppliedAt !== undefined) sets.push(sql`last_applied_at = ${ts(patch.lastAppliedAt)}`);
      if (patch.lastPushedHash !== undefined) sets.push(sql`last_pushed_hash = ${patch.lastPushedHash}`);
      if (patch.lastReceivedHash !== undefined) sets.push(sql`last_received_hash = ${patch.lastReceivedHash}`);
      if (patch.tombstonedAt !== undefined) sets.push(sql`tombstoned_at = ${ts(patch.tombstonedAt)}`);
      if (patch.lastError !== undefined) sets.push(sql`last_error = ${json(recordErrorToJson(patch.lastError), true)}`);
      if (patch.syncedAt !== undefined) sets.push(sql`synced_at = ${ts(patch.syncedAt)}`);
      if (patch.linkSubIds !== undefined) sets.push(sql`link_sub_ids = ${text(patch.linkSubIds)}`);
      // The CHECK-like guard (never both ids null) is part of the statement, so a patch
      // clearing both changes nothing; it is reported as a bad argument.
      // The patch's ids are bound as text: PostgreSQL cannot infer the type of a bare `$n IS NULL`.
      const clearsBoth = sql`(${patch.connecId === undefined ? raw('connec_id') : sql`${text(patch.connecId)}`} IS NULL AND ${
        patch.localId === undefined ? raw('local_id') : sql`${text(patch.localId)}`
      } IS NULL)`;
      const mayClearBoth = patch.connecId === null || patch.localId === null;
      const guard = mayClearBoth ? sql` AND NOT ${clearsBoth}` : raw('');
      const [row] = await db.query(
        op,
        sql`UPDATE maestrano_id_maps SET ${join(sets, ', ')} WHERE ${scopeWhere(scope)} AND ${keyWhere(key)}${guard} RETURNING ${COLUMNS}`,
      );
      if (row) return toIdMap(row);
      if (mayClearBoth) {
        const [exists] = await db.query(op, sql`SELECT seq FROM maestrano_id_maps WHERE ${scopeWhere(scope)} AND ${keyWhere(key)}`);
        if (exists) throw invalid(op, 'an id map needs a connecId or a localId (the patch would clear both)');
      }
      return null;
    },

    async markApplied(scope: IdMapScope, key: IdMapKey, appliedAt: Date, hash: string, options?: MarkAppliedOptions): Promise<boolean> {
      checkScope('idMaps.markApplied', scope);
      checkKey('idMaps.markApplied', key);
      validDate('idMaps.markApplied', 'appliedAt', appliedAt);
      storableText('idMaps.markApplied', 'hash', hash);
      storableText('idMaps.markApplied', 'options.linkSubIds', options?.linkSubIds);
      const now = ctx.now();
      const synced = options?.inSync === false ? raw('') : sql`, synced_at = ${ts(now)}`;
      const owed = options?.linkSubIds === undefined ? raw('') : sql`, link_sub_ids = ${text(options.linkSubIds)}`;
      const changed = await db.execute(
        'idMaps.markApplied',
        sql`UPDATE maestrano_id_maps SET last_applied_at = ${ts(appliedAt)}, last_received_hash = ${hash}, updated_at = ${ts(now)}${synced}${owed}
            WHERE ${scopeWhere(scope)} AND ${keyWhere(key)} AND (last_applied_at IS NULL OR last_applied_at < ${ts(appliedAt)}
                 OR (last_applied_at = ${ts(appliedAt)} AND (last_received_hash IS NULL OR last_received_hash <> ${hash})))`,
      );
      return changed > 0;
    },

    async clearError(scope: IdMapScope, key: IdMapKey, error: RecordError): Promise<boolean> {
      const op = 'idMaps.clearError';
      checkScope(op, scope);
      checkKey(op, key);
      if (typeof error !== 'object' || error === null) throw invalid(op, 'error must be an object');
      nonEmptyString(op, 'error.code', error.code);
      validDate(op, 'error.at', error.at);
      // One conditional UPDATE: the error is compared, in the form `update` stores it (code
      // made well-formed, `at` as ISO text), in the same statement that clears it.
      const [code, at] =
        db.provider === 'postgresql'
          ? [raw("last_error->>'code'"), raw("last_error->>'at'")]
          : [raw("json_extract(last_error, '$.code')"), raw("json_extract(last_error, '$.at')")];
      const changed = await db.execute(
        op,
        sql`UPDATE maestrano_id_maps SET last_error = NULL, updated_at = ${ts(ctx.now())}
            WHERE ${scopeWhere(scope)} AND ${keyWhere(key)} AND ${code} = ${text(wellFormedText(error.code))} AND ${at} = ${text(error.at.toISOString())}`,
      );
      return changed > 0;
    },

    async list(scope: IdMapScope, options: { limit: number; after?: string }): Promise<IdMapRecord[]> {
      positiveInt('idMaps.list', 'limit', options.limit);
      checkScope('idMaps.list', scope);
      storableText('idMaps.list', 'after', options.after);
      const limit = options.limit;
      const after =
        options.after === undefined
          ? raw('')
          : sql` AND seq > (SELECT MIN(seq) FROM maestrano_id_maps WHERE ${scopeWhere(scope)}
                 AND (connec_id = ${options.after} OR (connec_id IS NULL AND local_id = ${options.after})))`;
      const found = await db.query(
        'idMaps.list',
        sql`SELECT ${COLUMNS} FROM maestrano_id_maps WHERE ${scopeWhere(scope)}${after} ORDER BY seq LIMIT ${limit}`,
      );
      return found.map(toIdMap);
    },

    async purgeGroup(tenant: string, groupId: string): Promise<number> {
      storableLookup('idMaps.purgeGroup', { tenant, groupId });
      return db.execute(
        'idMaps.purgeGroup',
        sql`DELETE FROM maestrano_id_maps WHERE tenant = ${tenant} AND group_id = ${groupId}`,
      );
    },
  };
}


