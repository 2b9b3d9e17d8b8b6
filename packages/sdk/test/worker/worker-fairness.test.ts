/**
 * Account jobs (company set-up, billing, a new company's import, a cancelled group's purge)
 * behind a backlog of record jobs: the queue is claimed oldest first across every tenant and
 * group, so one group's bulk edit (thousands of Connec! notifications) used to hold a new
 * customer's billing and first import back until the whole backlog was drained.
 */
import { describe, expect, it } from 'vitest';
import { type JobHandler, JobTypes, type Logger, type Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
}

describe('worker fairness (memory)', () => {
  it('a billing job and an import enqueued after 2,000 record jobs of another group run before that backlog is drained', async () => {
    const storage = memoryAdapter();
    /** Record jobs still pending when each account job ran. */
    const pendingWhenRun: Record<string, number> = {};
    const pendingRecords = async () => (await storage.jobs.counts({ type: JobTypes.connecRecord })).pending;
    const accountJob: JobHandler = async (job) => {
      pendingWhenRun[job.type] = await pendingRecords();
    };
    const recordHandler: JobHandler = Object.assign(async () => {}, { batch: async (jobs: unknown[]) => jobs.map(() => null) });
    // One group's bulk edit: 2,000 record notifications, each its own record (ordering key).
    await storage.jobs.enqueueMany(
      Array.from({ length: 2_000 }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 'marketplace-a', groupId: 'bulk', payload: { i }, orderingKey: `r:${i}` })),
    );
    // Then a new customer of another marketplace logs in for the first time.
    for (const type of [JobTypes.billingSubscribe, JobTypes.syncImport]) {
      await storage.jobs.enqueue({ type, tenant: 'marketplace-b', groupId: 'new', payload: null, dedupeKey: `${type}:new`, orderingKey: `${type}:new` });
    }
    const worker = createWorker(runtimeWith(storage), {
      [JobTypes.connecRecord]: recordHandler,
      [JobTypes.billingSubscribe]: accountJob,
      [JobTypes.syncImport]: accountJob,
    });

    const stats = await worker.drain({ concurrency: 4, batchSize: 50, pollIntervalMs: 1 });

    expect(stats).toMatchObject({ completed: 2_002, retried: 0, deadLettered: 0 });
    // Claimed at most a couple of batches into the backlog, not after it (0 left).
    expect(pendingWhenRun[JobTypes.billingSubscribe]).toBeGreaterThan(1_500);
    expect(pendingWhenRun[JobTypes.syncImport]).toBeGreaterThan(1_500);
  });

  it('account jobs never take every slot: record jobs keep running while a wave of imports is due', async () => {
    const storage = memoryAdapter();
    const running = { imports: 0, maxImports: 0, recordsDuringImports: 0, stalled: 0 };
    let releaseImports!: () => void;
    const importsMayEnd = new Promise<void>((resolve) => (releaseImports = resolve));
    const importHandler: JobHandler = async () => {
      running.imports++;
      const records = await storage.jobs.counts({ type: JobTypes.connecRecord });
      // Once no record job is left, the imports may have every slot.
      if (records.pending + records.running > 0) running.maxImports = Math.max(running.maxImports, running.imports);
      // Long imports: they hold their slots until the record backlog is done (or, should the
      // imports have taken every slot, a while, so the test ends and reports it: 5 s, not 2, so
      // that a loaded machine slow to run the 200 record jobs is not taken for a stall; four
      // rounds of stalled imports still end within the test's timeout).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([importsMayEnd, new Promise<void>((resolve) => (timer = setTimeout(() => resolve(void running.stalled++), 5_000)))]);
      clearTimeout(timer);
      running.imports--;
    };
    const recordHandler: JobHandler = Object.assign(async () => {}, {
      batch: async (jobs: unknown[]) => {
        if (running.imports > 0) running.recordsDuringImports += jobs.length;
        // Every record job done while imports hold slots: the imports may end now.
        if ((await storage.jobs.counts({ type: JobTypes.connecRecord })).pending === 0) releaseImports();
        return jobs.map(() => null);
      },
    });
    await storage.jobs.enqueueMany(
      Array.from({ length: 200 }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 't', groupId: 'big', payload: { i }, orderingKey: `r:${i}` })),
    );
    await storage.jobs.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ type: JobTypes.syncImport, tenant: 't', groupId: `new-${i}`, payload: null })));
    const worker = createWorker(runtimeWith(storage), { [JobTypes.connecRecord]: recordHandler, [JobTypes.syncImport]: importHandler });

    const stats = await worker.drain({ concurrency: 3, batchSize: 10, pollIntervalMs: 1 });

    expect(stats).toMatchObject({ completed: 210, retried: 0, deadLettered: 0 });
    expect(running.maxImports).toBeLessThanOrEqual(2);
    // The record jobs ran beside the imports (all but the first batch, claimed before them) …
    expect(running.recordsDuringImports).toBeGreaterThanOrEqual(190);
    // … and never waited for one to end.
    expect(running.stalled).toBe(0);
  });

  it('drain() runs the account jobs left behind the backlog, however long the poll interval', async () => {
    const storage = memoryAdapter();
    const recordHandler: JobHandler = Object.assign(async () => {}, { batch: async (jobs: unknown[]) => jobs.map(() => null) });
    await storage.jobs.enqueueMany(Array.from({ length: 300 }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 't', groupId: 'big', payload: { i } })));
    await storage.jobs.enqueueMany(Array.from({ length: 3 }, (_, i) => ({ type: JobTypes.syncImport, tenant: 't', groupId: `new-${i}`, payload: null })));
    const worker = createWorker(runtimeWith(storage), { [JobTypes.connecRecord]: recordHandler, [JobTypes.syncImport]: async () => {} });

    const stats = await worker.drain({ concurrency: 2, batchSize: 10, pollIntervalMs: 60_000 });

    expect(stats).toMatchObject({ completed: 303 });
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 303 });
  });

  it('account jobs are looked for past a backlog held back by its ordering keys no more often than the interval', async () => {
    const storage = memoryAdapter();
    const claim = storage.jobs.claim.bind(storage.jobs);
    const accountTypes = [JobTypes.companyCreated, JobTypes.syncImport].sort().join();
    let accountClaims = 0;
    storage.jobs.claim = (options) => {
      if ([...(options.types ?? [])].sort().join() === accountTypes) accountClaims++;
      return claim(options);
    };
    const recordHandler: JobHandler = Object.assign(async () => {}, {
      batch: async (jobs: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return jobs.map(() => null);
      },
    });
    // A bulk edit that touches 20 records 40 times each: at most 20 of its jobs can run at once
    // (one per ordering key), so claims behind a full one come back short, not because the
    // backlog is drained.
    await storage.jobs.enqueueMany(
      Array.from({ length: 800 }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 't', groupId: 'big', payload: { i }, orderingKey: `r:${i % 20}` })),
    );
    const worker = createWorker(runtimeWith(storage), { [JobTypes.connecRecord]: recordHandler, [JobTypes.syncImport]: async () => {} });

    const started = performance.now();
    const stats = await worker.drain({ concurrency: 4, batchSize: 50, pollIntervalMs: 1 });
    const elapsedMs = performance.now() - started;

    expect(stats).toMatchObject({ completed: 800 });
    // That claim reads past the whole backlog (ACCOUNT_CLAIM_INTERVAL_MS): once per 10 s, plus
    // the drain's last look, not after every short claim of the backlog.
    expect(accountClaims).toBeLessThanOrEqual(Math.floor(elapsedMs / 10_000) + 2);
  });

  it('an account job claimed ahead of the backlog runs even when the claim of the backlog after it fails', async () => {
    const storage = memoryAdapter();
    const claim = storage.jobs.claim.bind(storage.jobs);
    let accountJobJustClaimed = false;
    let failures = 0;
    storage.jobs.claim = async (options) => {
      if (accountJobJustClaimed) {
        accountJobJustClaimed = false;
        failures++;
        throw new Error('connection reset');
      }
      const jobs = await claim(options);
      accountJobJustClaimed = jobs.some((job) => job.type === JobTypes.billingSubscribe);
      return jobs;
    };
    const recordHandler: JobHandler = Object.assign(async () => {}, { batch: async (jobs: unknown[]) => jobs.map(() => null) });
    await storage.jobs.enqueueMany(Array.from({ length: 100 }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 't', groupId: 'big', payload: { i } })));
    const billing = await storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: 't', groupId: 'new', payload: null });
    const worker = createWorker(runtimeWith(storage), { [JobTypes.connecRecord]: recordHandler, [JobTypes.billingSubscribe]: async () => {} });

    const stats = await worker.drain({ concurrency: 3, batchSize: 10, pollIntervalMs: 1 });

    expect(failures).toBe(1);
    expect(stats).toMatchObject({ completed: 101 });
    // Run by this drain, on its first attempt: not left leased until its lease expired.
    expect(await storage.jobs.get(billing.id)).toMatchObject({ status: 'done', attempts: 1 });
  });
});
