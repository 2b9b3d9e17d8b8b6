// The second channel for the conformance suite: raw reads straight from the database
// (node-postgres / better-sqlite3 connections of their own, never Prisma or the adapter),
// translated to the suite's neutral form.
import type { CursorKey, IdMapScope } from '@org/maestrano-sdk';
import type { StorageInspector } from '@org/maestrano-sdk/testing';
import Database from 'better-sqlite3';
import pg from 'pg';

type RawRow = Record<string, unknown>;
type Query = (text: string, params: unknown[]) => Promise<RawRow[]>;

const TIMESTAMPS = new Set([
  'trial_ends_at', 'claim_expires_at', 'created_at', 'updated_at', 'cancelled_at', 'last_applied_at', 'tombstoned_at', 'synced_at',
  'run_at', 'lease_expires_at', 'completed_at', 'expires_at',
]);
const JSON_COLUMNS = new Set(['settings', 'last_error', 'data', 'payload', 'intent', 'outcome']);
const BOOLEANS = new Set(['complete']);
const INTERNAL = new Set(['seq']);

/** SQLite holds DATETIME values as the driver adapter's canonical ISO text (or epoch ms). */
const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\+00:00|Z)$/;

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function neutral(row: RawRow, provider: 'postgresql' | 'sqlite'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (INTERNAL.has(column)) continue;
    let v: unknown = value;
    if (v === undefined) v = null;
    if (v !== null && TIMESTAMPS.has(column) && provider === 'sqlite') {
      if (typeof v === 'string' && CANONICAL_ISO.test(v)) v = new Date(v);
      else if (typeof v === 'number' || typeof v === 'bigint') v = new Date(Number(v));
    }
    if (v !== null && JSON_COLUMNS.has(column) && typeof v === 'string' && provider === 'sqlite') v = JSON.parse(v);
    if (BOOLEANS.has(column) && (typeof v === 'number' || typeof v === 'bigint')) v = Number(v) !== 0;
    if (column === 'id') v = String(v);
    else if (typeof v === 'bigint') v = Number(v);
    else if (typeof v === 'string' && (column === 'attempts' || column === 'max_attempts') && /^\d+$/.test(v)) v = Number(v);
    out[camel(column)] = v;
  }
  return out;
}

function inspector(query: Query, provider: 'postgresql' | 'sqlite'): StorageInspector {
  let n = 0;
  const p = (): string => (provider === 'postgresql' ? `$${++n}` : '?');
  const one = async (text: (ph: () => string) => string, params: unknown[]) => {
    n = 0;
    const [row] = await query(text(p), params);
    return row ? neutral(row, provider) : null;
  };
  const many = async (text: (ph: () => string) => string, params: unknown[]) => {
    n = 0;
    return (await query(text(p), params)).map((row) => neutral(row, provider));
  };
  return {
    async group(tenant, groupId) {
      const row = await one((ph) => `SELECT * FROM maestrano_groups WHERE tenant = ${ph()} AND group_id = ${ph()}`, [tenant, groupId]);
      return row === null ? null : {
        tenant: row.tenant, groupId: row.groupId, companyId: row.companyId, status: row.status, orgUid: row.orgUid,
        trialEndsAt: row.trialEndsAt, settings: row.settings, createdAt: row.createdAt, updatedAt: row.updatedAt,
        cancelledAt: row.cancelledAt, claimOwner: row.claimOwner, claimExpiresAt: row.claimExpiresAt,
      };
    },
    async user(tenant, uid) {
      const row = await one((ph) => `SELECT * FROM maestrano_users WHERE tenant = ${ph()} AND uid = ${ph()}`, [tenant, uid]);
      return row === null ? null : {
        tenant: row.tenant, uid: row.uid, userId: row.userId, status: row.status, createdAt: row.createdAt,
        updatedAt: row.updatedAt, claimOwner: row.claimOwner, claimExpiresAt: row.claimExpiresAt,
      };
    },
    async membership(tenant, uid, groupId) {
      const row = await one(
        (ph) => `SELECT * FROM maestrano_memberships WHERE tenant = ${ph()} AND uid = ${ph()} AND group_id = ${ph()}`,
        [tenant, uid, groupId],
      );
      return row === null ? null : {
        tenant: row.tenant, uid: row.uid, groupId: row.groupId, role: row.role, status: row.status,
        createdAt: row.createdAt, updatedAt: row.updatedAt,
      };
    },
    async idMaps(scope: IdMapScope) {
      const found = await many(
        (ph) => `SELECT * FROM maestrano_id_maps WHERE tenant = ${ph()} AND group_id = ${ph()} AND entity = ${ph()}`,
        [scope.tenant, scope.groupId, scope.entity],
      );
      return found.map((row) => ({
        tenant: row.tenant, groupId: row.groupId, entity: row.entity, connecId: row.connecId, localId: row.localId,
        lastAppliedAt: row.lastAppliedAt, lastPushedHash: row.lastPushedHash, lastReceivedHash: row.lastReceivedHash,
        tombstonedAt: row.tombstonedAt, lastError: row.lastError, syncedAt: row.syncedAt, linkSubIds: row.linkSubIds, createdAt: row.createdAt, updatedAt: row.updatedAt,
      }));
    },
    async cursor(key: CursorKey) {
      const row = await one(
        (ph) => `SELECT * FROM maestrano_cursors WHERE tenant = ${ph()} AND group_id = ${ph()} AND entity = ${ph()} AND kind = ${ph()}`,
        [key.tenant, key.groupId, key.entity, key.kind],
      );
      return row === null ? null : {
        tenant: row.tenant, groupId: row.groupId, entity: row.entity, kind: row.kind, position: row.position,
        data: row.data, complete: row.complete, updatedAt: row.updatedAt,
      };
    },
    async job(id) {
      if (!/^\d+$/.test(id)) return null;
      const row = await one((ph) => `SELECT * FROM maestrano_jobs WHERE id = ${ph()}`, [id]);
      return row === null ? null : toStoredJob(row);
    },
    async jobs(filter) {
      const found =
        filter?.type === undefined
          ? await many(() => 'SELECT * FROM maestrano_jobs', [])
          : await many((ph) => `SELECT * FROM maestrano_jobs WHERE type = ${ph()}`, [filter.type]);
      return found.map(toStoredJob);
    },
    async ledger(key) {
      const row = await one((ph) => `SELECT * FROM maestrano_ledger WHERE "key" = ${ph()}`, [key]);
      return row === null ? null : {
        key: row.key, status: row.status, owner: row.owner, claimExpiresAt: row.claimExpiresAt, intent: row.intent,
        outcome: row.outcome, createdAt: row.createdAt, updatedAt: row.updatedAt,
      };
    },
    async replay(tenant, assertionId) {
      const row = await one(
        (ph) => `SELECT * FROM maestrano_replay WHERE tenant = ${ph()} AND assertion_id = ${ph()}`,
        [tenant, assertionId],
      );
      return row === null ? null : { tenant: row.tenant, assertionId: row.assertionId, expiresAt: row.expiresAt };
    },
    async lock(key) {
      const row = await one((ph) => `SELECT * FROM maestrano_locks WHERE "key" = ${ph()}`, [key]);
      return row === null ? null : { key: row.key, owner: row.owner, expiresAt: row.expiresAt };
    },
  };
}

function toStoredJob(row: Record<string, unknown>) {
  return {
    id: row.id, type: row.type, tenant: row.tenant, groupId: row.groupId, payload: row.payload, dedupeKey: row.dedupeKey,
    orderingKey: row.orderingKey, waitKey: row.waitKey, status: row.status, attempts: row.attempts,
    maxAttempts: row.maxAttempts, runAt: row.runAt, leaseOwner: row.leaseOwner, leaseExpiresAt: row.leaseExpiresAt,
    lastError: row.lastError, createdAt: row.createdAt, updatedAt: row.updatedAt, completedAt: row.completedAt,
  };
}

export const TABLES = [
  'maestrano_groups', 'maestrano_users', 'maestrano_memberships', 'maestrano_id_maps', 'maestrano_cursors',
  'maestrano_jobs', 'maestrano_job_guards', 'maestrano_ledger', 'maestrano_replay', 'maestrano_locks',
];

/** The PostgreSQL tables' BIGSERIAL columns. */
const SERIALS = [
  ['maestrano_id_maps', 'seq'],
  ['maestrano_jobs', 'id'],
] as const;

export interface RawChannel {
  inspect: StorageInspector;
  /** Removes every stored row. */
  clear(): Promise<void>;
  query: Query;
  close(): Promise<void>;
}

/** `timestamp(3)` (without time zone) holds UTC: parse it as such, not as local time. */
function pgTypes(): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === pg.types.builtins.TIMESTAMP
        ? (value: string) => new Date(`${value.replace(' ', 'T')}Z`)
        : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
  };
}

export function pgChannel(url: string): RawChannel {
  const pool = new pg.Pool({ connectionString: url, max: 2, types: pgTypes() });
  // Idle connections die in the outage case; the pool replaces them.
  pool.on('error', () => {});
  const query: Query = async (text, params) => (await pool.query(text, params)).rows;
  return {
    inspect: inspector(query, 'postgresql'),
    query,
    async clear() {
      // DELETE, not TRUNCATE: the tables hold a few rows between cases, and TRUNCATE (new
      // files for every table and index, synced at commit) cost ~300 ms before each case.
      // The serial columns restart at 1, as TRUNCATE … RESTART IDENTITY did. One simple query:
      // its statements run as one transaction.
      await pool.query(
        [
          ...TABLES.map((table) => `DELETE FROM ${table}`),
          ...SERIALS.map(([table, column]) => `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), 1, false)`),
        ].join(';\n'),
      );
    },
    close: () => pool.end(),
  };
}

export function sqliteChannel(path: string): RawChannel {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  const query: Query = async (text, params) => {
    const statement = db.prepare(text);
    if (!statement.reader) {
      statement.run(...params);
      return [];
    }
    return statement.all(...params).map((row) => (typeof row === 'object' && row !== null ? { ...row } : {}));
  };
  return {
    inspect: inspector(query, 'sqlite'),
    query,
    async clear() {
      db.transaction(() => {
        for (const table of TABLES) db.prepare(`DELETE FROM ${table}`).run();
      })();
    },
    async close() {
      db.close();
    },
  };
}
