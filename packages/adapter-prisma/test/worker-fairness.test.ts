/**
 * The worker over real databases: account jobs (billing, a new company's import) enqueued
 * behind a backlog of another group's record jobs. Claims are in due order across every tenant
 * and group, so they used to wait until the whole backlog had been claimed; the worker now
 * claims them first while a backlog is due (through `jobs.claim`'s `types`).
 */
import { createWorker, type JobHandler, JobTypes, type Runtime, type StorageAdapter } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, migratedSqlite, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[adapter-prisma] skipping PostgreSQL worker fairness test: ${unavailable}`);

const BACKLOG = 1_500;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function expectAccountJobsAheadOfBacklog(storage: StorageAdapter): Promise<void> {
  const pendingWhenRun: Record<string, number> = {};
  const accountJob: JobHandler = async (job) => {
    pendingWhenRun[job.type] = (await storage.jobs.counts({ type: JobTypes.connecRecord })).pending;
  };
  const recordHandler: JobHandler = Object.assign(async () => {}, { batch: async (jobs: unknown[]) => jobs.map(() => null) });
  // One group's bulk edit in one marketplace: a notification job per record.
  await storage.jobs.enqueueMany(
    Array.from({ length: BACKLOG }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 'marketplace-a', groupId: 'bulk', payload: { i }, dedupeKey: `r:${i}`, orderingKey: `r:${i}` })),
  );
  // Then a new customer of another marketplace logs in for the first time.
  for (const type of [JobTypes.billingSubscribe, JobTypes.syncImport]) {
    await storage.jobs.enqueue({ type, tenant: 'marketplace-b', groupId: 'new', payload: null, dedupeKey: `${type}:new`, orderingKey: `${type}:new` });
  }
  const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
  const worker = createWorker(runtime, { [JobTypes.connecRecord]: recordHandler, [JobTypes.billingSubscribe]: accountJob, [JobTypes.syncImport]: accountJob });

  const stats = await worker.drain({ concurrency: 4, batchSize: 100, pollIntervalMs: 1 });

  expect(stats).toMatchObject({ completed: BACKLOG + 2, retried: 0, deadLettered: 0, lost: 0 });
  // Claimed a batch or two into the backlog, not once it was all claimed (0 left pending).
  expect(pendingWhenRun[JobTypes.billingSubscribe]).toBeGreaterThan(BACKLOG - 500);
  expect(pendingWhenRun[JobTypes.syncImport]).toBeGreaterThan(BACKLOG - 500);
  expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: BACKLOG + 2, dead: 0 });
}

describe.skipIf(unavailable !== null)('worker fairness (prisma-postgresql)', () => {
  it(`billing and a new company's import run before a backlog of ${BACKLOG} record jobs of another group is drained`, async () => {
    const { db, prisma } = await migratedPg();
    cleanup = async () => {
      await prisma.$disconnect();
      await db.drop();
    };
    await expectAccountJobsAheadOfBacklog(prismaAdapter(prisma));
  }, 30_000);
});

describe('worker fairness (prisma-sqlite)', () => {
  it(`billing and a new company's import run before a backlog of ${BACKLOG} record jobs of another group is drained`, async () => {
    const { file, prisma } = await migratedSqlite();
    cleanup = async () => {
      await prisma.$disconnect();
      file.remove();
    };
    await expectAccountJobsAheadOfBacklog(prismaAdapter(prisma));
  }, 30_000);
});
