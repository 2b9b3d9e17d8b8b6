// The worker over a real MongoDB-wire backend: account jobs (billing, a new company's import)
// enqueued behind a backlog of another group's record jobs. Claims are in due order across
// every tenant and group, so they used to wait until the whole backlog had been claimed; the
// worker now claims them first while a backlog is due (through `jobs.claim`'s `types`).
import { createWorker, type JobHandler, JobTypes, type Runtime } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter, type MongoStorageAdapter } from '../src/index.js';
import { backend, openTestDb, unavailable } from './support.js';

const BACKLOG = 60;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe.skipIf(unavailable !== null)(`${backend}: worker fairness`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  let storage: MongoStorageAdapter;

  beforeAll(async () => {
    handle = await openTestDb('worker_fairness');
    storage = mongoAdapter(handle.db);
    await storage.ensureIndexes();
  });
  afterAll(async () => {
    await handle?.drop();
  });

  it(`billing and a new company's import run before a backlog of ${BACKLOG} record jobs of another group is drained`, async () => {
    const pendingWhenRun: Record<string, number> = {};
    const accountJob: JobHandler = async (job) => {
      pendingWhenRun[job.type] = (await storage.jobs.counts({ type: JobTypes.connecRecord })).pending;
    };
    const recordHandler: JobHandler = Object.assign(async () => {}, { batch: async (jobs: unknown[]) => jobs.map(() => null) });
    await storage.jobs.enqueueMany(
      Array.from({ length: BACKLOG }, (_, i) => ({ type: JobTypes.connecRecord, tenant: 'marketplace-a', groupId: 'bulk', payload: { i }, dedupeKey: `r:${i}`, orderingKey: `r:${i}` })),
    );
    for (const type of [JobTypes.billingSubscribe, JobTypes.syncImport]) {
      await storage.jobs.enqueue({ type, tenant: 'marketplace-b', groupId: 'new', payload: null, dedupeKey: `${type}:new`, orderingKey: `${type}:new` });
    }
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, { [JobTypes.connecRecord]: recordHandler, [JobTypes.billingSubscribe]: accountJob, [JobTypes.syncImport]: accountJob });

    const stats = await worker.drain({ concurrency: 4, batchSize: 5, pollIntervalMs: 1 });

    expect(stats).toMatchObject({ completed: BACKLOG + 2, retried: 0, deadLettered: 0, lost: 0 });
    // Claimed a batch or two into the backlog, not once it was all claimed (0 left pending).
    expect(pendingWhenRun[JobTypes.billingSubscribe]).toBeGreaterThan(BACKLOG - 30);
    expect(pendingWhenRun[JobTypes.syncImport]).toBeGreaterThan(BACKLOG - 30);
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: BACKLOG + 2, dead: 0 });
  }, 30_000);
});
