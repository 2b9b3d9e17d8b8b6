// A claim the adapter gave up on (operationTimeoutMs) still runs in the database and may commit
// after the worker was told it failed. The jobs it leased must not stay leased to a worker that
// never received them (not run until the lease expires, an attempt counted each time: enough
// such timeouts under load dead-letter a job that never ran). The same holds when a later step
// of a committed claim fails (dead-lettering an unreadable payload).
import { StorageError } from '@org/maestrano-sdk';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, migratedSqlite, openPgPrisma, type PgDatabase, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > end) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(unavailable !== null)('prisma-postgresql: a claim that commits after it timed out', () => {
  let db: PgDatabase;
  let prisma: Awaited<ReturnType<typeof migratedPg>>['prisma'];
  let slowPrisma: ReturnType<typeof openPgPrisma>;
  beforeAll(async () => {
    ({ db, prisma } = await migratedPg());
    slowPrisma = openPgPrisma(db.url, { max: 2 });
  });
  afterAll(async () => {
    await slowPrisma?.$disconnect();
    await prisma?.$disconnect();
    await db?.drop();
  });

  it('gives the jobs it leased back: pending, due, attempt not counted, no lease', async () => {
    const adapter = prismaAdapter(prisma);
    const impatient = prismaAdapter(slowPrisma, { operationTimeoutMs: 300 });
    const a = await adapter.jobs.enqueue({ type: 't', payload: 1 });
    const b = await adapter.jobs.enqueue({ type: 't', payload: 2, orderingKey: 'k' });
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      // The claim's row locks wait for this transaction: the statement outlives the bound.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE maestrano_jobs IN EXCLUSIVE MODE');
      const error = await impatient.jobs.claim({ worker: 'w1', limit: 10, leaseMs: 600_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(String((error as Error).message)).toMatch(/timed out/);
      await blocker.query('COMMIT');
    } finally {
      await blocker.end();
    }
    // Given back, not merely not claimed yet: the late claim may still be on its way to commit
    // (slow under load), and a job it has not touched is pending with no attempt too. The give
    // back stamps `updatedAt`; an untouched job still has its enqueue time there.
    const settled = (jobs: (Awaited<ReturnType<typeof adapter.jobs.get>>)[]) =>
      jobs.every((job) => job?.status === 'pending' && job.attempts === 0 && job.updatedAt.getTime() > job.createdAt.getTime());
    const jobs = await until(() => Promise.all([adapter.jobs.get(a.id), adapter.jobs.get(b.id)]), settled);
    for (const job of jobs) expect(job).toMatchObject({ status: 'pending', attempts: 0, leaseOwner: null, leaseExpiresAt: null });
    // Another worker gets them now, not after a ten-minute lease; the key's guard was freed too.
    const claimed = await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: 60_000 });
    expect(claimed.map((job) => job.id).sort()).toEqual([a.id, b.id].sort());
  });
});

describe('a committed claim whose dead-lettering of an unreadable payload fails (SQLite)', () => {
  it('still hands out the healthy jobs it leased', async () => {
    const { file, prisma } = await migratedSqlite();
    try {
      const adapter = prismaAdapter(prisma);
      const ids: string[] = [];
      for (let n = 1; n <= 3; n++) ids.push((await adapter.jobs.enqueue({ type: 'work', payload: { n } })).id);
      await prisma.$executeRawUnsafe(`UPDATE maestrano_jobs SET payload = '{"n": "trunc' WHERE id = ${Number(ids[1])}`);
      // The dead letter cannot be written (as a busy or timed-out statement would fail).
      await prisma.$executeRawUnsafe(
        `CREATE TRIGGER no_dead BEFORE UPDATE ON maestrano_jobs WHEN NEW.status = 'dead' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
      );
      const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000 });
      expect(claimed.map((job) => job.payload)).toEqual([{ n: 1 }, { n: 3 }]);
      for (const job of claimed) expect(await adapter.jobs.complete(job.id, 'w')).toBe(true);
      await prisma.$executeRawUnsafe('DROP TRIGGER no_dead');
      expect(await adapter.jobs.counts()).toMatchObject({ pending: 0, running: 1, done: 2, dead: 0 });
    } finally {
      await prisma.$disconnect();
      file.remove();
    }
  });
});
