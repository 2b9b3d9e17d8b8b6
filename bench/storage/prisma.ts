// Storage benchmark for @org/maestrano-adapter-prisma (on demand, not part of npm test).
//
//   node --conditions=@org/source --import tsx bench/storage/prisma.ts [--n 2000] [--concurrency 8] [--sqlite-only|--pg-only]
//
// For each backend it measures, through the adapter and through the raw driver doing the
// same work in the same run:
//   - id-map upserts: N new maps, then N writes to existing maps (baseline: one
//     `INSERT … ON CONFLICT … DO UPDATE … RETURNING *` per map);
//   - jobs: enqueue + claim (lease) + complete per job (baseline: INSERT, then
//     `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, then UPDATE).
// The adapter writes a new map with `insert` and an existing one with `update` (the
// contract has no blind upsert); each is one statement returning the row. Each side runs
// `concurrency` loops at once. Adapter and baseline alternate for three
// rounds; the best round of each counts. Prints ops/s and adapter/baseline ratios
// (goal on PostgreSQL: >= 0.5). PostgreSQL: a throwaway database on 127.0.0.1:5432 (or
// MAESTRANO_TEST_PG_URL), dropped at the end. SQLite: a temp file.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { migrate, prismaAdapter } from '@org/maestrano-adapter-prisma';
import type { StorageAdapter } from '@org/maestrano-sdk';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import Database from 'better-sqlite3';
import pg from 'pg';
import { benchPool } from '../lib/pg.js';
import { PrismaClient as PgPrismaClient } from '../../packages/adapter-prisma/test/generated/postgresql/client.js';
import { PrismaClient as SqlitePrismaClient } from '../../packages/adapter-prisma/test/generated/sqlite/client.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    'pg-only': { type: 'boolean', default: false },
    'sqlite-only': { type: 'boolean', default: false },
  },
});
const N = Number(args.n);
const CONCURRENCY = Number(args.concurrency);
const PG_SERVER_URL = process.env.MAESTRANO_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const POOL = 10;
const ROUNDS = 3;

/** What one side (adapter or raw driver) must implement for the workloads. */
interface Side {
  upsertMap(i: number, round: string, hash: string, exists: boolean): Promise<void>;
  enqueueClaimComplete(worker: string, round: string, i: number): Promise<boolean>;
  clear(): Promise<void>;
}

async function loops(count: number, body: (i: number, loop: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, loop) => {
      for (let i = next++; i < count; i = next++) await body(i, loop);
    }),
  );
  return performance.now() - start;
}

interface Result {
  upsertInsert: number;
  upsertUpdate: number;
  jobs: number;
}

async function measure(side: Side, round: string): Promise<Result> {
  await side.clear();
  const insertMs = await loops(N, (i) => side.upsertMap(i, round, 'h1', false));
  const updateMs = await loops(N, (i) => side.upsertMap(i, round, 'h2', true));
  const jobCount = Math.max(1, Math.floor(N / 2));
  let done = 0;
  const jobsMs = await loops(jobCount, async (i, loop) => {
    if (await side.enqueueClaimComplete(`w${loop}`, round, i)) done++;
  });
  if (done === 0) throw new Error('no job completed: the workload is broken');
  return {
    upsertInsert: (N / insertMs) * 1000,
    upsertUpdate: (N / updateMs) * 1000,
    jobs: (done / jobsMs) * 1000,
  };
}

async function compare(backend: string, adapterSide: Side, rawSide: Side): Promise<void> {
  // Warm-up (JIT, connection pools, plans), then alternate rounds so drift hits both sides.
  await measureQuietly(adapterSide, rawSide);
  const rounds: { adapter: Result; raw: Result }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const adapter = await measure(adapterSide, `a${r}`);
    const raw = await measure(rawSide, `r${r}`);
    rounds.push({ adapter, raw });
  }
  const best = (pick: (x: { adapter: Result; raw: Result }) => Result, key: keyof Result) =>
    Math.max(...rounds.map((round) => pick(round)[key]));
  console.log(`\n${backend}  (n=${N}, concurrency=${CONCURRENCY}, best of ${ROUNDS} rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  console.log('workload                         adapter ops/s   raw ops/s   ratio');
  for (const [label, key] of [
    ['id-map upsert, new map', 'upsertInsert'],
    ['id-map upsert, existing map', 'upsertUpdate'],
    ['job enqueue+claim+complete', 'jobs'],
  ] as const) {
    const a = best((x) => x.adapter, key);
    const b = best((x) => x.raw, key);
    console.log(`${label.padEnd(32)} ${a.toFixed(0).padStart(13)} ${b.toFixed(0).padStart(11)} ${(a / b).toFixed(2).padStart(7)}`);
  }
}

async function measureQuietly(...sides: Side[]): Promise<void> {
  for (const side of sides) {
    await side.clear();
    await loops(Math.min(200, N), (i) => side.upsertMap(i, 'warm', 'h', false));
    await loops(Math.min(100, N), (i, loop) => side.enqueueClaimComplete(`w${loop}`, 'warm', i).then(() => {}));
  }
}

function adapterSide(adapter: StorageAdapter, clear: () => Promise<void>): Side {
  return {
    async upsertMap(i, round, hash, exists) {
      const scope = { tenant: 'bench', groupId: 'cld-1', entity: `contact-${round}` };
      // The contract has no blind upsert: the sync engine inserts maps it has not found and
      // updates those it has, one statement each (returning the whole row, as the baseline).
      if (exists) await adapter.idMaps.update(scope, { connecId: `c-${i}` }, { lastPushedHash: hash });
      else await adapter.idMaps.insert({ ...scope, connecId: `c-${i}`, localId: `l-${i}`, lastPushedHash: hash });
    },
    async enqueueClaimComplete(worker, round) {
      await adapter.jobs.enqueue({ type: `bench-${round}`, payload: { n: 1 } });
      const [job] = await adapter.jobs.claim({ worker, limit: 1, leaseMs: 60_000, types: [`bench-${round}`] });
      return job ? adapter.jobs.complete(job.id, worker) : false;
    },
    clear,
  };
}

// --- PostgreSQL -------------------------------------------------------------------------

async function postgres(): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_SERVER_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  const name = `mno_bench_prisma_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_SERVER_URL);
  url.pathname = `/${name}`;
  const prismaPool = benchPool({ connectionString: url.toString(), max: POOL });
  const prisma = new PgPrismaClient({ adapter: new PrismaPg(prismaPool) });
  const pool = benchPool({ connectionString: url.toString(), max: POOL });
  for (const p of [prismaPool, pool]) p.on('error', () => {});
  try {
    await migrate({ prisma });
    const truncate = async () => {
      await pool.query('TRUNCATE maestrano_id_maps, maestrano_jobs, maestrano_job_guards RESTART IDENTITY');
    };
    const raw: Side = {
      async upsertMap(i, round, hash) {
        const now = new Date();
        await pool.query(
          `INSERT INTO maestrano_id_maps (tenant, group_id, entity, connec_id, local_id, last_pushed_hash, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
           ON CONFLICT (tenant, group_id, entity, connec_id) DO UPDATE SET last_pushed_hash = excluded.last_pushed_hash, updated_at = excluded.updated_at
           RETURNING *`,
          ['bench', 'cld-1', `contact-${round}`, `c-${i}`, `l-${i}`, hash, now],
        );
      },
      async enqueueClaimComplete(worker, round) {
        const now = new Date();
        await pool.query(
          `INSERT INTO maestrano_jobs (type, payload, status, attempts, max_attempts, run_at, created_at, updated_at)
           VALUES ($1, $2::jsonb, 'pending', 0, 8, $3, $3, $3) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
          [`bench-${round}`, JSON.stringify({ n: 1 }), now],
        );
        const claimed = await pool.query(
          `UPDATE maestrano_jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3
           WHERE id IN (SELECT id FROM maestrano_jobs WHERE type = $4 AND status = 'pending' AND run_at <= $3
                        ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING *`,
          [worker, new Date(now.getTime() + 60_000), now, `bench-${round}`],
        );
        const id = claimed.rows[0]?.id;
        if (id === undefined) return false;
        const done = await pool.query(
          `UPDATE maestrano_jobs SET status = 'done', completed_at = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3
           WHERE id = $1 AND status = 'running' AND lease_owner = $2`,
          [id, worker, new Date()],
        );
        return (done.rowCount ?? 0) > 0;
      },
      clear: truncate,
    };
    await compare('PostgreSQL (Prisma 7 + @prisma/adapter-pg vs pg)', adapterSide(prismaAdapter(prisma), truncate), raw);
  } finally {
    await prisma.$disconnect();
    await prismaPool.end();
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

// --- SQLite -----------------------------------------------------------------------------

async function sqlite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mno-bench-prisma-'));
  const path = join(dir, 'bench.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const prisma = new SqlitePrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${path}` }) });
  try {
    await migrate({ prisma });
    const truncate = async () => {
      db.exec('DELETE FROM maestrano_id_maps; DELETE FROM maestrano_jobs;');
    };
    const iso = (date: Date) => date.toISOString().replace('Z', '+00:00');
    const upsert = db.prepare(
      `INSERT INTO maestrano_id_maps (tenant, group_id, entity, connec_id, local_id, last_pushed_hash, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, group_id, entity, connec_id) DO UPDATE SET last_pushed_hash = excluded.last_pushed_hash, updated_at = excluded.updated_at
       RETURNING *`,
    );
    const insertJob = db.prepare(
      `INSERT INTO maestrano_jobs (type, payload, status, attempts, max_attempts, run_at, created_at, updated_at)
       VALUES (?, ?, 'pending', 0, 8, ?, ?, ?) RETURNING id`,
    );
    const claimJob = db.prepare(
      `UPDATE maestrano_jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, updated_at = ?
       WHERE id IN (SELECT id FROM maestrano_jobs WHERE type = ? AND status = 'pending' AND run_at <= ? ORDER BY run_at, id LIMIT 1)
       RETURNING *`,
    );
    const completeJob = db.prepare(
      `UPDATE maestrano_jobs SET status = 'done', completed_at = ?, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
       WHERE id = ? AND status = 'running' AND lease_owner = ?`,
    );
    const raw: Side = {
      async upsertMap(i, round, hash) {
        const now = iso(new Date());
        upsert.get('bench', 'cld-1', `contact-${round}`, `c-${i}`, `l-${i}`, hash, now, now);
      },
      async enqueueClaimComplete(worker, round) {
        const now = iso(new Date());
        insertJob.get(`bench-${round}`, JSON.stringify({ n: 1 }), now, now, now);
        const claimed = claimJob.get(worker, iso(new Date(Date.now() + 60_000)), now, `bench-${round}`, now);
        if (typeof claimed !== 'object' || claimed === null || !('id' in claimed)) return false;
        return completeJob.run(now, now, claimed.id, worker).changes > 0;
      },
      clear: truncate,
    };
    await compare('SQLite (Prisma 7 + @prisma/adapter-better-sqlite3 vs better-sqlite3)', adapterSide(prismaAdapter(prisma), truncate), raw);
  } finally {
    await prisma.$disconnect();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!args['sqlite-only']) await postgres();
if (!args['pg-only']) await sqlite();
