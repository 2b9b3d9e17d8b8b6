import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter, memoryState } from '../../src/storage/memory.js';
import { backoffDelay, createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const DAY_MS = 24 * 60 * 60 * 1000;

function runtimeWith(storage: StorageAdapter): Runtime {
  return {
    tenants: { get: () => undefined, list: () => [] },
    storage,
    logger: silent,
    clock: () => new Date(),
    instanceId: 'test-instance',
    fetch: globalThis.fetch,
  };
}

describe('worker – backoff delays are capped at 24 h, as documented', () => {
  it('never computes a delay above 24 h, whatever maxMs says', () => {
    expect(backoffDelay(10, { baseMs: 60_000, maxMs: 7 * DAY_MS }, () => 0.5)).toBeLessThanOrEqual(DAY_MS);
    expect(backoffDelay(60, { maxMs: Number.MAX_SAFE_INTEGER }, () => 0.5)).toBeLessThanOrEqual(DAY_MS);
  });

  it('dead-letters a job failing its last attempt under an uncapped maxMs (the retry date stays storable)', async () => {
    const storage = memoryAdapter();
    let calls = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.always-fails': async () => {
        calls++;
        throw new Error('remote refused');
      },
    });
    // A job with many attempts (sync.maxAttempts goes up to 1,000) that failed 49 times already.
    const { id } = await storage.jobs.enqueue({ type: 'test.always-fails', payload: null, maxAttempts: 50 });
    const row = memoryState(storage).jobs.get(id);
    if (!row) throw new Error('job not stored');
    row.attempts = 49;
    row.lastError = { message: 'remote refused' };

    const stats = await worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 1_000, maxMs: Number.MAX_SAFE_INTEGER } });

    expect(calls).toBe(1);
    const job = await storage.jobs.get(id);
    // Its 50th failure is its last: a dead letter listed for a person, not a job left running
    // (its failure unrecordable: a retry date past year 9999) and redelivered forever.
    expect(job?.status).toBe('dead');
    expect(job?.lastError?.message).toBe('remote refused');
    expect(stats.deadLettered).toBe(1);
    expect((await worker.deadLetters()).map((d) => d.jobId)).toEqual([id]);
  });

  it('records the failure of an earlier attempt with a retry date at most 24 h away', async () => {
    const storage = memoryAdapter();
    const worker = createWorker(runtimeWith(storage), {
      'test.always-fails': async () => {
        throw new Error('remote refused');
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.always-fails', payload: null, maxAttempts: 100 });
    const row = memoryState(storage).jobs.get(id);
    if (!row) throw new Error('job not stored');
    row.attempts = 49;
    const before = Date.now();
    await worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 1_000, maxMs: Number.MAX_SAFE_INTEGER } });
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('pending');
    expect(job?.attempts).toBe(50);
    expect(job?.runAt.getTime()).toBeLessThanOrEqual(before + DAY_MS + 60_000);
  });
});
