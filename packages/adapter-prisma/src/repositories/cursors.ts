import type { CursorKey, CursorRecord, CursorRepository, JsonObject } from '@org/maestrano-sdk';
import { bool, date, json, jsonObject, jsonText, num, type Row, raw, type Sql, sql, str, ts } from '../sql.js';
import { invalid, nonEmpty, type RepositoryContext, storableJson, storableLookup, storableText } from './context.js';


function toCursor(row: Row): CursorRecord {
  return {
    tenant: str(row, 'tenant'),
    groupId: str(row, 'group_id'),
    entity: str(row, 'entity'),
    kind: str(row, 'kind'),
    position: num(row, 'position'),
    data: jsonObject(row, 'data'),
    complete: bool(row, 'complete'),
    updatedAt: date(row, 'updated_at'),
  };
}

function keyWhere(key: CursorKey): Sql {
  return sql`tenant = ${key.tenant} AND group_id = ${key.groupId} AND entity = ${key.entity} AND kind = ${key.kind}`;
}

function lookupKey(operation: 'cursors.get' | 'cursors.reset', key: CursorKey): void {
  storableLookup(operation, { tenant: key.tenant, groupId: key.groupId, entity: key.entity, kind: key.kind });
}

export function cursorRepository(ctx: RepositoryContext): CursorRepository {
  const { db } = ctx;
  const COLUMNS = raw(`tenant, group_id, entity, kind, position, ${jsonText(db.provider, 'data')}, complete, updated_at`);
  const order = db.provider === 'postgresql' ? raw('entity COLLATE "C", kind COLLATE "C"') : raw('entity, kind');

  return {
    async get(key: CursorKey): Promise<CursorRecord | null> {
      lookupKey('cursors.get', key);
      const [row] = await db.query('cursors.get', sql`SELECT ${COLUMNS} FROM maestrano_cursors WHERE ${keyWhere(key)}`);
      return row ? toCursor(row) : null;
    },

    async advance(key: CursorKey, position: number, data: JsonObject, complete = false): Promise<boolean> {
      storableText('cursors.advance', 'tenant', key.tenant);
      storableText('cursors.advance', 'groupId', key.groupId);
      storableText('cursors.advance', 'entity', key.entity);
      nonEmpty('cursors.advance', 'kind', key.kind);
      if (typeof position !== 'number' || !Number.isFinite(position)) {
        throw invalid('cursors.advance', `position must be a finite number (got ${String(position)})`);
      }
      storableJson('cursors.advance', 'data', data);
      const now = ctx.now();
      // One upsert: the conflict branch only writes when the position moves forward (or the
      // run completes at the same position), so concurrent writers can never move it back.
      const written = await db.query(
        'cursors.advance',
        sql`INSERT INTO maestrano_cursors AS c (tenant, group_id, entity, kind, position, data, complete, updated_at)
            VALUES (${key.tenant}, ${key.groupId}, ${key.entity}, ${key.kind}, ${position}, ${json(data, false)}, ${complete}, ${ts(now)})
            ON CONFLICT (tenant, group_id, entity, kind) DO UPDATE
              SET position = excluded.position, data = excluded.data, complete = excluded.complete, updated_at = excluded.updated_at
              WHERE excluded.position > c.position OR (excluded.position = c.position AND excluded.complete AND NOT c.complete)
            RETURNING tenant`,
      );
      return written.length > 0;
    },

    async reset(key: CursorKey): Promise<void> {
      lookupKey('cursors.reset', key);
      await db.execute('cursors.reset', sql`DELETE FROM maestrano_cursors WHERE ${keyWhere(key)}`);
    },

    async list(tenant: string, groupId: string): Promise<CursorRecord[]> {
      storableLookup('cursors.list', { tenant, groupId });
      const found = await db.query(
        'cursors.list',
        sql`SELECT ${COLUMNS} FROM maestrano_cursors WHERE tenant = ${tenant} AND group_id = ${groupId} ORDER BY ${order}`,
      );
      return found.map(toCursor);
    },
  };
}
