/**
 * A retention longer than any date storage can hold (`Number.MAX_SAFE_INTEGER` ms, "keep them
 * all") is accepted by the option check: it must keep the done jobs, not make every purge fail
 * (an invalid cut-off date that storage refuses, a warning each hour).
 */
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

describe('worker – a very long completed job retention', () => {
  it('keeps the done jobs and logs no failed purge', async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} };
    const storage = memoryAdapter();
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, { 'test.job': async () => {} });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: {} });
    await worker.drain();
    const purge = storage.jobs.purgeCompleted.bind(storage.jobs);
    let purges = 0;
    storage.jobs.purgeCompleted = async (before) => {
      purges++;
      return purge(before);
    };
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1, completedJobRetentionMs: Number.MAX_SAFE_INTEGER });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await running;
    expect(warnings).toEqual([]);
    expect(purges).toBeLessThanOrEqual(1);
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });
});
