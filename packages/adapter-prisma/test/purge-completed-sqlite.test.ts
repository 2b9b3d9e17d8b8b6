/**
 * `worker.run()` now calls `jobs.purgeCompleted` by itself (at start, then hourly). On SQLite the
 * driver (better-sqlite3) runs a statement synchronously, holding the file's write lock: one
 * DELETE of every job done in a week (one per notified record: hundreds of thousands of rows
 * after an upgrade or a large import) froze the process for seconds (web requests included,
 * when the worker runs in the server) and made every other writer of the file wait. The purge
 * deletes in short statements and lets the event loop run between them.
 */
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedSqlite, type SqliteFile } from './backends.js';

const files: SqliteFile[] = [];
afterAll(() => {
  for (const file of files) file.remove();
});

describe('jobs.purgeCompleted on SQLite', () => {
  it('does not stop the event loop while it deletes a large backlog of done jobs', async () => {
    const { file, prisma } = await migratedSqlite();
    files.push(file);
    const N = 30_000;
    const raw = new Database(file.path);
    const payload = JSON.stringify({ record: { id: 'p'.repeat(40), name: 'n'.repeat(400) } });
    const old = '2026-01-01T00:00:00.000Z';
    raw.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
      INSERT INTO maestrano_jobs (type, payload, dedupe_key, ordering_key, status, attempts, max_attempts, run_at, created_at, updated_at, completed_at)
      SELECT 'connec.record', '${payload}', 'k' || i, 'o' || (i % 5000), 'done', 1, 5, '${old}', '${old}', '${old}', '${old}' FROM n`);
    raw.close();
    const storage = prismaAdapter(prisma);
    const kept = await storage.jobs.enqueue({ type: 'connec.record', payload: {}, dedupeKey: 'pending-one' });
    expect((await storage.jobs.get('1'))?.completedAt?.toISOString()).toBe(old);

    // Event-loop turns while the purge runs: one statement over the whole backlog gives none
    // (the driver holds the thread), short statements give one between each two.
    let turns = 0;
    let counting = true;
    const count = () => {
      if (!counting) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    try {
      expect(await storage.jobs.purgeCompleted(new Date('2026-06-01T00:00:00.000Z'))).toBe(N);
    } finally {
      counting = false;
    }
    expect(await storage.jobs.get('1')).toBeNull();
    expect((await storage.jobs.get(kept.id))?.status).toBe('pending');
    expect(await storage.jobs.purgeCompleted(new Date('2026-06-01T00:00:00.000Z'))).toBe(0);
    expect(turns).toBeGreaterThanOrEqual(N / 1_000 / 2);
    await prisma.$disconnect();
  }, 120_000);
});
