import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerRunOptions } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, logger: Logger = silent): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
}

describe('worker run option `types`', () => {
  it('a type this worker has no handler for (misspelt) is reported, not silently never run', async () => {
    const storage = memoryAdapter();
    const warnings: [string, Record<string, unknown> | undefined][] = [];
    const logger: Logger = { ...silent, warn: (message, fields) => warnings.push([message, fields]) };
    let ran = 0;
    const worker = createWorker(runtimeWith(storage, logger), {
      'test.job': async () => {
        ran++;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });

    const stats = await worker.drain({ types: ['test.jbo'], pollIntervalMs: 1 });

    expect(stats.claimed).toBe(0);
    expect(ran).toBe(0);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(warnings).toEqual([['worker: run option types names job types without a handler; they are never claimed', expect.objectContaining({ types: 'test.jbo' })]]);
  });

  it('a string instead of a list is refused with a ConfigError, nothing claimed', async () => {
    const storage = memoryAdapter();
    const worker = createWorker(runtimeWith(storage), { 'test.job': async () => {} });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });

    const error = await worker.drain({ types: 'test.job' } as unknown as WorkerRunOptions).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'ConfigError', issues: [{ path: 'types' }] });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});
