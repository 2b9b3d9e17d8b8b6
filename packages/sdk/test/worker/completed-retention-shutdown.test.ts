/**
 * At shutdown `run()` waits for a completed-job purge in progress within `shutdownGraceMs`.
 * That grace starts when the signal aborts, as the jobs' does: waited for only after the jobs,
 * a purge made a shutdown last a whole `shutdownGraceMs` longer than the same jobs without one
 * (past a deployment's kill deadline sized on `shutdownGraceMs`). Timers are faked: the test
 * moves time itself and looks at what has settled.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('worker – a purge in progress at shutdown', () => {
  it('is waited for within the grace period the jobs get, not one after it, then told to stop', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const storage = memoryAdapter();
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    let purgeSignal: AbortSignal | undefined;
    // A long purge: it ends only when told to stop.
    storage.jobs.purgeCompleted = (_before, options) =>
      new Promise((resolve) => {
        purgeSignal = options?.signal;
        options?.signal?.addEventListener('abort', () => resolve(0), { once: true });
      });
    let finishJob!: () => void;
    let jobStarted = false;
    const worker = createWorker(runtime, {
      'test.job': () =>
        new Promise<void>((resolve) => {
          jobStarted = true;
          finishJob = resolve;
        }),
    });
    await storage.jobs.enqueue({ type: 'test.job', payload: {} });
    const controller = new AbortController();
    let resolved = false;
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1, shutdownGraceMs: 1_000 }).then((stats) => {
      resolved = true;
      return stats;
    });
    while (!jobStarted || purgeSignal === undefined) await vi.advanceTimersByTimeAsync(1);
    controller.abort();
    // The purge's grace ends with the jobs' (1 s after the abort); the job ends at 1.2 s.
    await vi.advanceTimersByTimeAsync(1_200);
    finishJob();
    await vi.advanceTimersByTimeAsync(0);
    // Before, the purge's own grace only started now: run() resolved a second later.
    expect(resolved).toBe(true);
    expect((await running).completed).toBe(1);
    expect(purgeSignal?.aborted).toBe(true);
  });
});
