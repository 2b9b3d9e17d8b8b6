import type { LockRepository, ReplayRepository } from '@org/maestrano-sdk';
import { chunks, inList, join, pgArray, raw, sql, str, ts } from '../sql.js';
import { claimOptions, invalid, nonEmpty, plus, type RepositoryContext, storableLookup, storableText, validDate } from './context.js';

/** Keys per statement: SQLite binds at most 32766 parameters. */
const LOCK_BATCH = 500;

export function replayRepository(ctx: RepositoryContext): ReplayRepository {
  const { db } = ctx;
  return {
    async remember(tenant: string, assertionId: string, expiresAt: Date): Promise<boolean> {
      nonEmpty('replay.remember', 'tenant', tenant);
      nonEmpty('replay.remember', 'assertionId', assertionId);
      validDate('replay.remember', 'expiresAt', expiresAt);
      const now = ctx.now();
      const stored = await db.query(
        'replay.remember',
        sql`INSERT INTO maestrano_replay AS r (tenant, assertion_id, expires_at) VALUES (${tenant}, ${assertionId}, ${ts(expiresAt)})
            ON CONFLICT (tenant, assertion_id) DO UPDATE SET expires_at = excluded.expires_at WHERE r.expires_at <= ${ts(now)}
            RETURNING tenant`,
      );
      return stored.length > 0;
    },

    async forget(tenant: string, assertionId: string, expiresAt: Date): Promise<boolean> {
      nonEmpty('replay.forget', 'tenant', tenant);
      nonEmpty('replay.forget', 'assertionId', assertionId);
      validDate('replay.forget', 'expiresAt', expiresAt);
      const removed = await db.execute(
        'replay.forget',
        sql`DELETE FROM maestrano_replay
            WHERE tenant = ${tenant} AND assertion_id = ${assertionId} AND expires_at = ${ts(expiresAt)} AND expires_at > ${ts(ctx.now())}`,
      );
      return removed > 0;
    },

    async purgeExpired(): Promise<number> {
      return db.execute('replay.purgeExpired', sql`DELETE FROM maestrano_replay WHERE expires_at <= ${ts(ctx.now())}`);
    },
  };
}

export function lockRepository(ctx: RepositoryContext): LockRepository {
  const { db } = ctx;
  return {
    async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
      nonEmpty('locks.acquire', 'key', key);
      claimOptions('locks.acquire', { owner, ttlMs });
      const now = ctx.now();
      const taken = await db.query(
        'locks.acquire',
        sql`INSERT INTO maestrano_locks AS l ("key", owner, expires_at) VALUES (${key}, ${owner}, ${ts(plus(now, ttlMs))})
            ON CONFLICT ("key") DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
              WHERE l.expires_at <= ${ts(now)} OR l.owner = excluded.owner
            RETURNING "key"`,
      );
      return taken.length > 0;
    },

    async refresh(key: string, owner: string, ttlMs: number): Promise<boolean> {
      claimOptions('locks.refresh', { owner, ttlMs });
      storableLookup('locks.refresh', { key });
      const now = ctx.now();
      const changed = await db.execute(
        'locks.refresh',
        sql`UPDATE maestrano_locks SET expires_at = ${ts(plus(now, ttlMs))}
            WHERE "key" = ${key} AND owner = ${owner} AND expires_at > ${ts(now)}`,
      );
      return changed > 0;
    },

    async release(key: string, owner: string): Promise<boolean> {
      storableLookup('locks.release', { key, owner });
      const removed = await db.execute('locks.release', sql`DELETE FROM maestrano_locks WHERE "key" = ${key} AND owner = ${owner}`);
      return removed > 0;
    },

    async acquireMany(keys: string[], owner: string, ttlMs: number): Promise<string[]> {
      const op = 'locks.acquireMany';
      if (!Array.isArray(keys)) throw invalid(op, 'keys must be an array');
      for (const key of keys) nonEmpty(op, 'key', key);
      claimOptions(op, { owner, ttlMs });
      // Without duplicates (PostgreSQL refuses an upsert touching one row twice) and in one
      // order for every caller, so concurrent batches lock their rows in the same order.
      const unique = [...new Set(keys)].sort();
      const taken = new Set<string>();
      try {
        for (const batch of chunks(unique, LOCK_BATCH)) {
          const now = ctx.now();
          const expires = ts(plus(now, ttlMs));
          const rows = await db.query(
            op,
            sql`INSERT INTO maestrano_locks AS l ("key", owner, expires_at) ${
              db.provider === 'postgresql'
                ? // One array parameter, in the sorted order, instead of a placeholder per key.
                  sql`SELECT k, ${owner}, ${expires} FROM unnest(${pgArray(batch, 'text[]')}) WITH ORDINALITY AS u(k, n) ORDER BY n`
                : sql`VALUES ${join(
                    batch.map((key) => sql`(${key}, ${owner}, ${expires})`),
                    ', ',
                  )}`
            }
                ON CONFLICT ("key") DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                  WHERE l.expires_at <= ${ts(now)} OR l.owner = excluded.owner
                RETURNING "key"`,
          );
          for (const row of rows) taken.add(str(row, 'key'));
        }
      } catch (err) {
        // A later batch failed: the call rejects without reporting what the earlier batches
        // took, so release those (best effort) instead of leaving them held until their TTL.
        // The statement cannot tell a key the owner already held from a new one: such a key
        // is released too (after a rejection the caller should assume it holds none).
        for (const batch of chunks([...taken], LOCK_BATCH)) {
          await db
            .execute(op, sql`DELETE FROM maestrano_locks WHERE owner = ${owner} AND ${inList(raw('"key"'), batch, db.provider)}`)
            .catch(() => 0);
        }
        throw err;
      }
      // In the caller's order.
      return [...new Set(keys)].filter((key) => taken.has(key));
    },

    async releaseMany(keys: string[], owner: string): Promise<number> {
      const op = 'locks.releaseMany';
      if (!Array.isArray(keys)) throw invalid(op, 'keys must be an array');
      for (const key of keys) storableText(op, 'key', key);
      storableText(op, 'owner', owner);
      let released = 0;
      for (const batch of chunks([...new Set(keys)], LOCK_BATCH)) {
        released += await db.execute(
          op,
          sql`DELETE FROM maestrano_locks WHERE owner = ${owner} AND ${inList(raw('"key"'), batch, db.provider)}`,
        );
      }
      return released;
    },
  };
}
