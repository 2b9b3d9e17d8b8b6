// PostgreSQL's ordering guard (maestrano_job_guards) under a heartbeat whose job lost its guard:
// the worker stalled past its lease while an older job of the same record (a requeued dead
// letter) was claimed and completed, which deleted the key's guard. The job is still the
// worker's and no job of the key holds a live lease, so the heartbeat extends the lease (as on
// SQLite, MongoDB and the memory adapter) and takes the guard back; the job's completion
// releases it. A heartbeat overlapping the job's own completion never leaves a guard behind
// that holds the record's next job back.
import type { JobInput, StorageAdapter } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing/storage';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type PrismaClientLike, prismaAdapter } from '../src/index.js';
import { migratedPg, type PgDatabase, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[adapter-prisma] skipping the PostgreSQL heartbeat guard tests: ${unavailable}`);

// Dates bound through plain node-postgres are sent as UTC, like Prisma sends them.
pg.defaults.parseInputDatesAsUTC = true;

const LEASE = 60_000;
const KEY = 'g/contact/c-1';

const job = (o: Partial<JobInput>): JobInput => ({ type: 'connec.record', payload: null, tenant: 't', groupId: 'g', ...o });

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

describe.skipIf(unavailable !== null)('prisma-postgresql: a heartbeat whose ordering guard is gone', () => {
  let db: PgDatabase;
  let disconnect: () => Promise<void>;
  let raw: pg.Client;
  let adapter: StorageAdapter;
  const clock = createTestClock();

  beforeAll(async () => {
    const migrated = await migratedPg();
    db = migrated.db;
    disconnect = () => migrated.prisma.$disconnect();
    adapter = prismaAdapter(migrated.prisma, { clock: clock.now });
    raw = new pg.Client({ connectionString: db.url });
    await raw.connect();
  });
  afterAll(async () => {
    await raw?.end();
    await disconnect?.();
    await db?.drop();
  });
  beforeEach(async () => {
    clock.set(Date.UTC(2031, 0, 15, 12));
    await raw.query('TRUNCATE maestrano_jobs, maestrano_job_guards');
  });

  async function guard(): Promise<{ job_id: string; lease_expires_at: Date } | null> {
    const { rows } = await raw.query('SELECT job_id::text AS job_id, lease_expires_at FROM maestrano_job_guards WHERE ordering_key = $1', [KEY]);
    return rows[0] ?? null;
  }

  /** Older (dead, requeued, claimed by w2 and completed) and newer (w1's, lease lapsed) jobs of KEY. */
  async function stalledAfterOlderDone(): Promise<{ older: string; newer: string }> {
    const older = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 1, maxAttempts: 1 }));
    clock.advance(1);
    const newer = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 2 }));
    const [a] = await adapter.jobs.claim({ worker: 'w0', limit: 1, leaseMs: LEASE });
    expect(a?.id).toBe(older.id);
    expect(await adapter.jobs.fail(older.id, 'w0', { error: { message: 'boom' }, retryAt: clock.now() })).toBe('dead');
    const [b] = await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE });
    expect(b?.id).toBe(newer.id);
    clock.advance(LEASE + 1);
    expect(await adapter.jobs.requeue(older.id)).toBe(true);
    const [c] = await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE });
    expect(c?.id).toBe(older.id);
    expect(await adapter.jobs.complete(older.id, 'w2')).toBe(true);
    expect(await guard()).toBeNull();
    return { older: older.id, newer: newer.id };
  }

  it('heartbeat and heartbeatMany extend the lease and take the guard back; the completion releases it', async () => {
    const { newer } = await stalledAfterOlderDone();
    expect(await adapter.jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
    expect(await guard()).toEqual({ job_id: newer, lease_expires_at: new Date(clock.ms() + LEASE) });
    clock.advance(10);
    expect(await adapter.jobs.heartbeatMany([newer], 'w1', LEASE)).toEqual([newer]);
    expect(await guard()).toEqual({ job_id: newer, lease_expires_at: new Date(clock.ms() + LEASE) });
    expect((await adapter.jobs.get(newer))?.leaseExpiresAt).toEqual(new Date(clock.ms() + LEASE));
    const next = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 3 }));
    expect(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).toEqual([]);
    expect(await adapter.jobs.complete(newer, 'w1')).toBe(true);
    expect(await guard()).toBeNull();
    expect((await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([next.id]);
  });

  it('a heartbeat never takes the live guard of another job of the key', async () => {
    const older = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 1, maxAttempts: 1 }));
    clock.advance(1);
    const newer = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 2 }));
    await adapter.jobs.claim({ worker: 'w0', limit: 1, leaseMs: LEASE });
    await adapter.jobs.fail(older.id, 'w0', { error: { message: 'boom' }, retryAt: clock.now() });
    await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE });
    clock.advance(LEASE + 1);
    await adapter.jobs.requeue(older.id);
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([older.id]);
    // The older job's lease is live but (say) its row is read as lapsed by a skewed check: the
    // guard alone must still refuse the newer job.
    await raw.query('UPDATE maestrano_jobs SET lease_expires_at = $1 WHERE id = $2', [new Date(clock.ms() - 1), older.id]);
    expect(await adapter.jobs.heartbeat(newer.id, 'w1', LEASE)).toBe(false);
    expect(await adapter.jobs.heartbeatMany([newer.id], 'w1', LEASE)).toEqual([]);
    expect(await guard()).toMatchObject({ job_id: older.id });
  });

  it('a heartbeat that re-creates the guard while the completion of the same job waits leaves no guard holding the key', async () => {
    const { newer } = await stalledAfterOlderDone();
    const next = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 3 }));
    const beating = new pg.Client({ connectionString: db.url });
    await beating.connect();
    try {
      // The heartbeat runs inside a transaction held open: it has locked the job and written the guard.
      await beating.query('BEGIN');
      expect(await prismaAdapter(rawClient(beating), { provider: 'postgresql', clock: clock.now }).jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
      // The completion starts now (its snapshot cannot see the uncommitted guard) and waits for the job's row.
      const completing = adapter.jobs.complete(newer, 'w1');
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        const { rows } = await raw.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        waiting = rows.length > 0;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(waiting).toBe(true);
      await beating.query('COMMIT');
      expect(await completing).toBe(true);
    } finally {
      await beating.end();
    }
    // Whatever guard row the completion could not see, the record's next job is claimed at once.
    expect((await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([next.id]);
    expect(await guard()).toMatchObject({ job_id: next.id });
  });

  it('a heartbeat that re-creates the guard while a final failure of the same job waits leaves no guard holding the key', async () => {
    const { newer } = await stalledAfterOlderDone();
    const next = await adapter.jobs.enqueue(job({ orderingKey: KEY, payload: 3 }));
    const beating = new pg.Client({ connectionString: db.url });
    await beating.connect();
    try {
      await beating.query('BEGIN');
      expect(await prismaAdapter(rawClient(beating), { provider: 'postgresql', clock: clock.now }).jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
      // The dead-lettering starts now (its snapshot cannot see the uncommitted guard) and waits for the job's row.
      const failing = adapter.jobs.fail(newer, 'w1', { error: { message: 'permanent' }, retryAt: clock.now(), final: true });
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        const { rows } = await raw.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        waiting = rows.length > 0;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(waiting).toBe(true);
      await beating.query('COMMIT');
      expect(await failing).toBe('dead');
    } finally {
      await beating.end();
    }
    // A dead letter holds its record back no more than a completed job: the next job is claimed at once.
    expect((await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([next.id]);
    expect(await guard()).toMatchObject({ job_id: next.id });
  });

  it('a heartbeat that waited for the completion of its job renews nothing and writes no guard', async () => {
    const { newer } = await stalledAfterOlderDone();
    const completing = new pg.Client({ connectionString: db.url });
    await completing.connect();
    try {
      await completing.query('BEGIN');
      expect(await prismaAdapter(rawClient(completing), { provider: 'postgresql', clock: clock.now }).jobs.complete(newer, 'w1')).toBe(true);
      const beating = adapter.jobs.heartbeat(newer, 'w1', LEASE);
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        const { rows } = await raw.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
        waiting = rows.length > 0;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(waiting).toBe(true);
      await completing.query('COMMIT');
      expect(await beating).toBe(false);
    } finally {
      await completing.end();
    }
    expect(await guard()).toBeNull();
    expect(await adapter.jobs.get(newer)).toMatchObject({ status: 'done', leaseExpiresAt: null });
  });
});
