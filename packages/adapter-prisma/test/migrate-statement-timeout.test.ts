// migrate() on PostgreSQL through a client configured as the README recommends
// (`statement_timeout` on the driver adapter): a replica that starts while another replica's
// run is still going waits for it on the advisory lock. That wait is bounded by `timeoutMs`
// (default 60 s), not by the client's per-statement timeout.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, migrationsDirectory } from '../src/index.js';
import { createPgDatabase, openPgPrisma, pgUnavailableReason } from './backends.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);
if (pgUnavailable) console.warn(`[adapter-prisma] skipping the migrate statement_timeout test: ${pgUnavailable}`);

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe.skipIf(pgUnavailable !== null)('migrate() on PostgreSQL with a statement_timeout on the client', () => {
  it('a second replica waits for the first run longer than statement_timeout (within timeoutMs) and skips it', async () => {
    const db = await createPgDatabase('mno_adapter_prisma_mig');
    // 1.5 s stands for the README's 15 s: a run of the first replica lasts longer than that.
    const first = openPgPrisma(db.url, { statement_timeout: 1_500 });
    const second = openPgPrisma(db.url, { statement_timeout: 1_500 });
    const dir = mkdtempSync(join(tmpdir(), 'mno-migrations-'));
    cleanups.push(async () => {
      await first.$disconnect();
      await second.$disconnect();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    });
    cpSync(migrationsDirectory('postgresql'), dir, { recursive: true });
    // An app migration of several short statements (each under the statement timeout), 3 s in all.
    mkdirSync(join(dir, '20270101000000_app_backfill'));
    writeFileSync(
      join(dir, '20270101000000_app_backfill', 'migration.sql'),
      'CREATE TABLE "app_notes" ("id" TEXT PRIMARY KEY);\nSELECT pg_sleep(1);\nSELECT pg_sleep(1);\nSELECT pg_sleep(1);\n',
    );
    const running = migrate({ prisma: first, migrationsDir: dir }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waiting = migrate({ prisma: second, migrationsDir: dir }).catch((error: unknown) => error);
    const [a, b] = await Promise.all([running, waiting]);
    // Before the fix: StorageError "canceling statement due to statement timeout" (57014) for the
    // replica that waited.
    for (const result of [a, b]) if (result instanceof Error) throw result;
    const [ranA, ranB] = [a, b] as { applied: string[]; skipped: string[] }[];
    // Usually the first; on a loaded machine the second can take the lock first (the first's
    // connection still opening after 300 ms): either way, the other one waited for 3 s.
    const [winner, loser] = ranA?.applied.includes('20270101000000_app_backfill') ? [ranA, ranB] : [ranB, ranA];
    expect(winner?.applied).toContain('20270101000000_app_backfill');
    expect(loser).toEqual({ applied: [], skipped: winner?.applied });
  }, 60_000);
});
