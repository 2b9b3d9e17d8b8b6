import type { LockRepository, ReplayRepository } from '@org/maestrano-sdk';
import { sql, ts } from '../sql.js';
import { claimOptions, nonEmpty, plus, type RepositoryContext, validDate } from './context.js';

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
      const now = ctx.now();
      const changed = await db.execute(
        'locks.refresh',
        sql`UPDATE maestrano_locks SET expires_at = ${ts(plus(now, ttlMs))}
            WHERE "key" = ${key} AND owner = ${owner} AND expires_at > ${ts(now)}`,
      );
      return changed > 0;
    },

    async release(key: string, owner: string): Promise<boolean> {
      const removed = await db.execute('locks.release', sql`DELETE FROM maestrano_locks WHERE "key" = ${key} AND owner = ${owner}`);
      return removed > 0;
    },
  };
}
