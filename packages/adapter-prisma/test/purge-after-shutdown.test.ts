/**
 * `worker.run()` returns at shutdown without waiting for a long completed-job purge beyond
 * `shutdownGraceMs`. The purge must then stop too: left running, it goes on deleting statement
 * by statement after `run()` has returned, and Prisma reconnects a client the app has just
 * `$disconnect()`ed for it (a query after `$disconnect` reconnects), so the database is written
 * to after the app closed it and the process cannot exit until the whole backlog is gone.
 */
import Database from 'better-sqlite3';
import { createWorker, type Runtime } from '@org/maestrano-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedSqlite, type SqliteFile } from './backends.js';

const files: SqliteFile[] = [];
afterAll(() => {
  for (const file of files) file.remove();
});

describe('the completed-job purge at shutdown (SQLite)', () => {
  it('stops deleting once run() has returned', async () => {
    const { file, prisma } = await migratedSqlite();
    files.push(file);
    const N = 60_000;
    const old = '2026-01-01T00:00:00.000Z';
    const raw = new Database(file.path);
    raw.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
      INSERT INTO maestrano_jobs (type, payload, dedupe_key, ordering_key, status, attempts, max_attempts, run_at, created_at, updated_at, completed_at)
      SELECT 'test.job', '{}', 'k' || i, NULL, 'done', 1, 5, '${old}', '${old}', '${old}', '${old}' FROM n`);
    const remaining = () => (raw.prepare(`SELECT count(*) AS c FROM maestrano_jobs WHERE status = 'done'`).get() as { c: number }).c;

    const storage = prismaAdapter(prisma);
    const purge = storage.jobs.purgeCompleted.bind(storage.jobs);
    let purgeStarted!: () => void;
    const started = new Promise<void>((resolve) => (purgeStarted = resolve));
    storage.jobs.purgeCompleted = (...args) => {
      purgeStarted();
      return purge(...args);
    };
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, { 'test.job': async () => {} });
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1, shutdownGraceMs: 0 });
    await started;
    controller.abort();
    await running;
    // The app closes its database after the worker's shutdown.
    await prisma.$disconnect();
    const atShutdown = remaining();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const later = remaining();
    raw.close();
    expect(atShutdown).toBeGreaterThan(0);
    expect(later).toBe(atShutdown);
  }, 60_000);
});
