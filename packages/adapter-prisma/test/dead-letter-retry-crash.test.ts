/**
 * A dead letter retried by hand on PostgreSQL starts its attempts over without the error of the
 * earlier ones, so the worker still tells a job whose attempts since the retry all crashed their
 * process (out of memory on one record) from one that failed: such jobs run alone. With the old
 * error kept, a retried batch kept being run whole, and one culprit took its batch-mates back to
 * the dead letters.
 */
import { createWorker, type JobHandler, type JobRecord, type Runtime } from '@org/maestrano-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, pgUnavailableReason } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);
if (unavailable) console.warn(`[adapter-prisma] skipping PostgreSQL dead-letter retry test: ${unavailable}`);

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

/** A migrated PostgreSQL database (dropped after the test), its adapter and a runtime on it. */
async function open(): Promise<{ storage: ReturnType<typeof prismaAdapter>; runtime: Runtime }> {
  const { db, prisma } = await migratedPg();
  cleanup = async () => {
    await prisma.$disconnect();
    await db.drop();
  };
  const storage = prismaAdapter(prisma);
  const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
  return { storage, runtime };
}

describe.skipIf(unavailable !== null)('dead letters retried after an outage (prisma-postgresql)', () => {
  it('jobs whose attempts since the retry all crashed their process run alone, not in the batch that crashed', async () => {
    const { storage, runtime } = await open();
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', tenant: 't', groupId: 'g', payload: { n }, maxAttempts: 3 })).id);

    // Connec! was down past every attempt: all dead-lettered with its error.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claimed = await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 30_000, types: ['test.batch'] });
      expect(claimed).toHaveLength(6);
      for (const job of claimed) await storage.jobs.fail(job.id, 'w', { error: { message: 'Connec! unavailable (503)' }, retryAt: new Date(Date.now() - 1_000) });
    }
    const during = createWorker(runtime, { 'test.batch': Object.assign(async () => {}, { batch: async (jobs: JobRecord[]) => jobs.map(() => null) }) });
    const dead = await during.deadLetters({ tenant: 't', groupId: 'g' });
    expect(dead.map((d) => d.jobId).sort()).toEqual([...ids].sort());
    for (const d of dead) expect(await during.retryDeadLetter(d.jobId)).toBe(true);
    expect(await storage.jobs.get(ids[0] as string)).toMatchObject({ status: 'pending', attempts: 0, lastError: null });

    // Two worker processes were killed holding the whole batch (one record runs them out of memory).
    for (const killed of ['killed-1', 'killed-2']) {
      expect(await storage.jobs.claim({ worker: killed, limit: 10, leaseMs: 1, types: ['test.batch'] })).toHaveLength(6);
      await sleep(20);
    }

    // The next worker runs them one at a time, so only a culprit would crash it again.
    const batches: number[] = [];
    const recovered: JobHandler = Object.assign(
      async () => {
        batches.push(1);
      },
      {
        batch: async (jobs: JobRecord[]) => {
          batches.push(jobs.length);
          return jobs.map(() => null);
        },
      },
    );
    await createWorker(runtime, { 'test.batch': recovered }).drain({ batchSize: 10, concurrency: 1, pollIntervalMs: 1 });
    expect(batches).toEqual([1, 1, 1, 1, 1, 1]);
    expect(await storage.jobs.counts({ tenant: 't' })).toMatchObject({ done: 6, dead: 0, pending: 0, running: 0 });
  }, 30_000);

  it('an id that is not a string (untyped JavaScript) retries and discards nothing, though its digits name a dead job', async () => {
    const { storage, runtime } = await open();
    const { id } = await storage.jobs.enqueue({ type: 'test.batch', tenant: 't', groupId: 'g', payload: {}, maxAttempts: 1 });
    const [claimed] = await storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 30_000, types: ['test.batch'] });
    expect(await storage.jobs.fail(claimed?.id ?? '', 'w', { error: { message: 'never maps' }, retryAt: new Date() })).toBe('dead');
    const worker = createWorker(runtime, { 'test.batch': async () => {} });
    const numeric = Number(id) as unknown as string;
    expect(await worker.retryDeadLetter(numeric)).toBe(false);
    expect(await worker.discardDeadLetter(numeric)).toBe(false);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'dead', attempts: 1 });
  });
});
