import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { StorageError } from '../../src/errors/index.js';
import type { JobError, StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

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

describe('worker – recording a failed attempt the storage refuses', () => {
  it('records it again with a generic error, so the job backs off instead of staying running until its lease expires', async () => {
    const storage = memoryAdapter();
    const recorded: JobError[] = [];
    let refusals = 1;
    const refusing: StorageAdapter = {
      ...storage,
      jobs: {
        ...storage.jobs,
        fail: async (id, worker, failure) => {
          recorded.push(failure.error);
          if (refusals > 0) {
            refusals--;
            // As PostgreSQL refuses an error message holding a NUL or an unpaired surrogate.
            throw new StorageError('jobs.fail failed: unsupported Unicode escape sequence', { adapterId: 'test', operation: 'jobs.fail' });
          }
          return storage.jobs.fail(id, worker, failure);
        },
      },
    };
    let calls = 0;
    const worker = createWorker(runtimeWith(refusing), {
      'test.flaky': async () => {
        calls++;
        if (calls === 1) throw new Error(`bad byte \u0000 ${'😀'.slice(0, 1)}`);
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.flaky', payload: null, maxAttempts: 5 });

    const stats = await worker.drain({ pollIntervalMs: 1, leaseMs: 600_000, backoff: { baseMs: 0, maxMs: 0 } });

    expect(recorded).toHaveLength(2);
    expect(recorded[0]?.message).toContain('bad byte');
    expect(recorded[1]).toMatchObject({ code: 'unrecordable_error' });
    expect(recorded[1]?.message).toMatch(/could not be recorded/);
    expect(calls).toBe(2);
    expect(stats).toMatchObject({ retried: 1, completed: 1 });
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('done');
    expect(job?.attempts).toBe(2);
  });

  it('leaves the lease to expire when the generic error cannot be recorded either', async () => {
    const storage = memoryAdapter();
    let fails = 0;
    const down: StorageAdapter = {
      ...storage,
      jobs: {
        ...storage.jobs,
        fail: async () => {
          fails++;
          throw new StorageError('database unreachable', { adapterId: 'test', operation: 'jobs.fail' });
        },
      },
    };
    const worker = createWorker(runtimeWith(down), {
      'test.fail': async () => {
        throw new Error('boom');
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.fail', payload: null });

    await worker.drain({ pollIntervalMs: 1, leaseMs: 600_000, backoff: { baseMs: 0, maxMs: 0 } });

    expect(fails).toBe(2);
    expect((await storage.jobs.get(id))?.status).toBe('running');
  });
});
