// A handler that rejects with a promise or a promise-like object has failed its attempt, like
// any other throw ("throw to fail the attempt"): the job is retried, never recorded done, and
// a thenable that never settles does not hold the job and its worker slot for good.
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
function runtimeWith(storage: StorageAdapter): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 't', fetch: globalThis.fetch };
}
const later = { baseMs: 3_600_000, maxMs: 3_600_000 };

describe('a handler rejecting with a promise-like value', () => {
  it('a promise resolving to nothing: the attempt failed, the job is retried (not done)', async () => {
    const storage = memoryAdapter();
    let ran = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.throws-promise': async () => {
        ran++;
        // e.g. `catch (e) { throw cleanup(e) }` with an async cleanup.
        throw Promise.resolve(undefined);
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.throws-promise', payload: null });
    const stats = await worker.drain({ pollIntervalMs: 5, backoff: later });
    expect(ran).toBe(1);
    expect(stats).toMatchObject({ completed: 0, retried: 1 });
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('pending');
    expect(job?.lastError?.message).toBe(`job ${id} failed: its handler rejected with a promise-like value, not an error`);
  });

  it('a thenable that never settles: the attempt fails with its message instead of holding the job', async () => {
    const storage = memoryAdapter();
    const worker = createWorker(runtimeWith(storage), {
      'test.throws-thenable': async () => {
        // biome-ignore lint/suspicious/noThenProperty: the point of the test is a thenable
        throw { then() {}, message: 'not a real error' };
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.throws-thenable', payload: null });
    const outcome = await Promise.race([
      worker.drain({ pollIntervalMs: 5, backoff: later }).then(() => 'drained'),
      new Promise((resolve) => setTimeout(() => resolve('still running after 3 s'), 3_000)),
    ]);
    expect(outcome).toBe('drained');
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('pending');
    expect(job?.lastError?.message).toBe(`job ${id} failed: its handler rejected with a promise-like value, not an error: not a real error`);
  }, 10_000);
});
