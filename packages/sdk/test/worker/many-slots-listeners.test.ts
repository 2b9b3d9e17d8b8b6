/**
 * A worker run with more than ten slots (`concurrency: 16` on a busy queue) keeps one handler
 * call in flight per slot. Each call must not add its own 'abort' listener to one signal shared
 * by the whole run: past ten, Node warns "Possible EventTarget memory leak detected"
 * (MaxListenersExceededWarning) in the logs of a process that leaks nothing.
 */
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeOf(storage: ReturnType<typeof memoryAdapter>): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
}

describe('worker – many slots', () => {
  it('runs 16 handler calls at once without a MaxListenersExceededWarning, and each still sees the shutdown', async () => {
    const storage = memoryAdapter();
    const slots = 16;
    await storage.jobs.enqueueMany(Array.from({ length: slots }, (_, i) => ({ type: 'test.slow', payload: { i } })));
    let started = 0;
    let allStarted!: () => void;
    const everyoneIn = new Promise<void>((resolve) => {
      allStarted = resolve;
    });
    const interrupted: boolean[] = [];
    const worker = createWorker(runtimeOf(storage), {
      // Runs until the shutdown aborts its signal (after the grace period).
      'test.slow': (_job, ctx) =>
        new Promise<void>((resolve, reject) => {
          started++;
          if (started === slots) allStarted();
          ctx.signal.addEventListener('abort', () => {
            interrupted.push(true);
            reject(ctx.signal.reason);
          });
          void resolve;
        }),
    });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const controller = new AbortController();
    try {
      const running = worker.run({ signal: controller.signal, concurrency: slots, pollIntervalMs: 5, shutdownGraceMs: 1 });
      await everyoneIn;
      // Node reports the warning on the next tick of the listener that crossed the limit.
      await new Promise((resolve) => setImmediate(resolve));
      controller.abort();
      const stats = await running;
      expect(stats.released).toBe(slots);
    } finally {
      process.off('warning', onWarning);
    }
    expect(interrupted).toHaveLength(slots);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
    expect((await storage.jobs.counts()).pending).toBe(slots);
  });
});
