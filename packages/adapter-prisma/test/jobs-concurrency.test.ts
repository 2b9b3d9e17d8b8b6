// PostgreSQL job claiming under real concurrency: several Prisma clients (separate pools,
// as separate app processes would have) race for jobs; jobs sharing an orderingKey must
// never be held by two workers at once, and every job is delivered exactly once.
import type { JobRecord, StorageAdapter } from '@org/maestrano-sdk';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrismaClientLike, prismaAdapter } from '../src/index.js';
import { migratedPg, openPgPrisma, type PgDatabase, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[adapter-prisma] skipping PostgreSQL concurrency tests: ${unavailable}`);

// Dates bound through plain node-postgres are sent as UTC, like Prisma sends them.
pg.defaults.parseInputDatesAsUTC = true;

/** The adapter over one plain node-postgres connection, so a test can hold its transaction open. */
function rawClient(conn: pg.Client): PrismaClientLike {
  return {
    async $queryRawUnsafe(text: string, ...values: unknown[]) {
      return (await conn.query(text, values)).rows;
    },
    async $executeRawUnsafe(text: string, ...values: unknown[]) {
      return (await conn.query(text, values)).rowCount ?? 0;
    },
    $transaction: () => Promise.reject(new Error('not used')),
  };
}

describe.skipIf(unavailable !== null)('prisma-postgresql: job claiming under concurrency', () => {
  let db: PgDatabase;
  const clients: { $disconnect(): Promise<void> }[] = [];
  const adapters: StorageAdapter[] = [];

  beforeAll(async () => {
    const migrated = await migratedPg();
    db = migrated.db;
    clients.push(migrated.prisma);
    adapters.push(prismaAdapter(migrated.prisma));
    for (let i = 0; i < 3; i++) {
      const prisma = openPgPrisma(db.url, { max: 4 });
      clients.push(prisma);
      adapters.push(prismaAdapter(prisma));
    }
  });
  afterAll(async () => {
    for (const client of clients) await client.$disconnect();
    await db?.drop();
  });

  it('the ordering-key guard stops a second claimer that saw an older job of the key commit late', async () => {
    const main = adapters[0]!;
    const key = 'guard-proof';
    // J1 is inserted first (older) in a transaction that commits only after J2 exists.
    const late = new pg.Client({ connectionString: db.url });
    await late.connect();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await late.query('BEGIN');
      const now = new Date();
      const { rows } = await late.query(
        `INSERT INTO maestrano_jobs (type, payload, ordering_key, status, attempts, max_attempts, run_at, created_at, updated_at)
         VALUES ('t', '{}'::jsonb, $1, 'pending', 0, 8, $2, $2, $2) RETURNING id::text AS id`,
        [key, new Date(now.getTime() - 1000)],
      );
      const j1 = String(rows[0]?.id);
      const j2 = (await main.jobs.enqueue({ type: 't', payload: {}, orderingKey: key })).id;

      // Claimer A takes J2 (J1 is invisible to it) inside a transaction it keeps open.
      await holder.query('BEGIN');
      const claimedByA = await prismaAdapter(rawClient(holder), { provider: 'postgresql' }).jobs.claim({
        worker: 'A',
        limit: 10,
        leaseMs: 60_000,
      });
      expect(claimedByA.map((job) => job.id)).toEqual([j2]);

      // J1 becomes visible. Claimer B now sees J1 pending and older, and J2 still pending
      // (A has not committed): the snapshot filter alone would hand J1 to B.
      await late.query('COMMIT');
      const claimB = adapters[1]!.jobs.claim({ worker: 'B', limit: 10, leaseMs: 60_000 });
      // Wait until B is blocked on the key's guard row held by A's open transaction.
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        const { rows: locks } = await late.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        waiting = locks.length > 0;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(waiting).toBe(true);
      await holder.query('COMMIT');

      expect(await claimB).toEqual([]);
      expect((await main.jobs.get(j1))?.status).toBe('pending');
      expect(await main.jobs.get(j2)).toMatchObject({ status: 'running', leaseOwner: 'A' });

      // Once J2 completes, J1 is next for its key.
      expect(await main.jobs.complete(j2, 'A')).toBe(true);
      expect((await adapters[2]!.jobs.claim({ worker: 'C', limit: 10, leaseMs: 60_000 })).map((job) => job.id)).toEqual([j1]);
      expect(await main.jobs.complete(j1, 'C')).toBe(true);
    } finally {
      await late.end();
      await holder.end();
    }
  });

  it('enqueueMany stores a batch atomically: a row the database rejects stores none of the batch', async () => {
    const main = adapters[0]!;
    const before = await main.jobs.counts({ type: 'batch' });
    // PostgreSQL jsonb refuses \u0000, so the third row fails inside the database itself.
    const error = await main.jobs
      .enqueueMany([
        { type: 'batch', payload: { n: 1 }, dedupeKey: 'batch-1' },
        { type: 'batch', payload: { n: 2 } },
        { type: 'batch', payload: 'nul \u0000 inside' },
      ])
      .catch((err: unknown) => err);
    expect(error).toMatchObject({ name: 'StorageError', operation: 'jobs.enqueueMany', adapterId: 'prisma' });
    expect(await main.jobs.counts({ type: 'batch' })).toEqual(before);
    // The same batch without the bad row goes in whole, deduped within itself.
    const results = await main.jobs.enqueueMany([
      { type: 'batch', payload: { n: 1 }, dedupeKey: 'batch-1' },
      { type: 'batch', payload: { n: 2 } },
      { type: 'batch', payload: { n: 3 }, dedupeKey: 'batch-1' },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, true, false]);
    expect(results[2]?.id).toBe(results[0]?.id);
    expect((await main.jobs.counts({ type: 'batch' })).pending).toBe(before.pending + 2);
  });

  it('workers on four clients never hold two jobs of one orderingKey at once, and each job is delivered once', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`);
    const perKey = 12;
    // Two enqueuers per key run concurrently (so commit order and id order can differ), plus
    // jobs without a key.
    const enqueued: string[] = [];
    await Promise.all(
      keys.flatMap((key, k) =>
        [0, 1].map(async (half) => {
          const adapter = adapters[(k + half) % adapters.length]!;
          for (let i = 0; i < perKey / 2; i++) {
            const { id } = await adapter.jobs.enqueue({ type: 'stress', payload: { key, i, half }, orderingKey: key });
            enqueued.push(id);
          }
        }),
      ),
    );
    for (let i = 0; i < 20; i++) enqueued.push((await adapters[0]!.jobs.enqueue({ type: 'stress', payload: { free: i } })).id);

    const holding = new Map<string, string>();
    const violations: string[] = [];
    const deliveries = new Map<string, number>();
    let idleRounds = 0;

    async function worker(adapter: StorageAdapter, name: string): Promise<void> {
      while (idleRounds < 200) {
        const jobs: JobRecord[] = await adapter.jobs.claim({ worker: name, limit: 3, leaseMs: 60_000, types: ['stress'] });
        if (jobs.length === 0) {
          const counts = await adapter.jobs.counts({ type: 'stress' });
          if (counts.pending === 0 && counts.running === 0) return;
          idleRounds++;
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        for (const job of jobs) {
          deliveries.set(job.id, (deliveries.get(job.id) ?? 0) + 1);
          if (job.orderingKey !== null) {
            const other = holding.get(job.orderingKey);
            if (other !== undefined) violations.push(`${job.orderingKey}: ${job.id} claimed while ${other} held`);
            holding.set(job.orderingKey, job.id);
          }
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
        for (const job of jobs) {
          // Released in the tracker before the database hears of it, so any overlap seen is real.
          if (job.orderingKey !== null && holding.get(job.orderingKey) === job.id) holding.delete(job.orderingKey);
          expect(await adapter.jobs.complete(job.id, name)).toBe(true);
        }
      }
    }

    await Promise.all(adapters.flatMap((adapter, a) => [0, 1].map((w) => worker(adapter, `w${a}-${w}`))));

    expect(violations).toEqual([]);
    expect([...deliveries.keys()].sort()).toEqual([...enqueued].sort());
    expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
    expect(await adapters[0]!.jobs.counts({ type: 'stress' })).toEqual({
      pending: 0,
      running: 0,
      done: keys.length * perKey + 20,
      dead: 0,
    });
  });
});
