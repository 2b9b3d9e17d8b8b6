// A job whose last attempt is a deferral is dead-lettered (every deferral is an attempt). What the
// worker reports for it must say so: docs/workers-at-scale.md tells operators to watch the
// `failed` events (with their `outcome`) and the log, and `stats.deadLettered` counts it.
import { describe, expect, it } from 'vitest';
import { JobDeferral, type Logger, type Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerEvent } from '../../src/worker/index.js';

describe('worker – a job dead-lettered by its last deferral', () => {
  it('is reported as a failed attempt with outcome `dead` and logged as an error, like any dead letter', async () => {
    const storage = memoryAdapter();
    const lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
    const logger: Logger = {
      debug: (message, fields) => lines.push({ level: 'debug', message, fields }),
      info: (message, fields) => lines.push({ level: 'info', message, fields }),
      warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
      error: (message, fields) => lines.push({ level: 'error', message, fields }),
    };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, {
      'test.waiting': async () => {
        throw new JobDeferral('waiting for organization o77', { retryInMs: 0 });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.waiting', payload: null, maxAttempts: 2 });
    const events: WorkerEvent[] = [];
    let stats = { deadLettered: 0, deferred: 0 };
    for (let round = 0; round < 20 && (await storage.jobs.get(id))?.status !== 'dead'; round++) {
      stats = await worker.drain({ pollIntervalMs: 1, onEvent: (event) => events.push(event) });
    }

    expect((await storage.jobs.get(id))?.status).toBe('dead');
    expect(stats.deadLettered).toBe(1);
    expect(await worker.deadLetters()).toEqual([expect.objectContaining({ jobId: id, attempts: 2 })]);
    // The first attempt was a deferral; the second one dead-lettered the job.
    expect(events.map((e) => (e.type === 'failed' ? `failed:${e.outcome}` : e.type))).toEqual(['claimed', 'deferred', 'claimed', 'failed:dead']);
    expect(events.at(-1)).toMatchObject({ type: 'failed', job: { id }, error: { message: 'waiting for organization o77', code: 'deferred' }, outcome: 'dead' });
    expect(lines.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({ message: 'worker: job attempt failed', fields: expect.objectContaining({ jobId: id, outcome: 'dead', error: 'waiting for organization o77' }) }),
    ]);
  });
});

describe('worker – a done job whose completion storage does not record', () => {
  it('ends its `claimed` with an event (lease_lost), as `stats.lost` counts it', async () => {
    const storage = memoryAdapter();
    // The job's lease was taken over before the handler returned (a long GC pause): storage
    // records no completion for this worker.
    const takenOver = { ...storage, jobs: { ...storage.jobs, completeMany: async () => [] as string[] } };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage: takenOver, logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, { 'test.quick': async () => {} });
    await storage.jobs.enqueue({ type: 'test.quick', payload: null });
    const events: WorkerEvent[] = [];
    const stats = await worker.run({ pollIntervalMs: 1, stopWhenIdle: true, onEvent: (event) => events.push(event) }).catch(() => null);
    // stopWhenIdle: the claim finds nothing due once the job is leased.
    expect(stats).toMatchObject({ claimed: 1, completed: 0, lost: 1 });
    expect(events.map((e) => e.type)).toEqual(['claimed', 'lease_lost']);
  });
});
