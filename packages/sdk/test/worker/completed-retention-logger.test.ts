/**
 * The purge of completed jobs runs in the background of `run()`. A logger that throws (a
 * `createWorker` runtime's own logger, not wrapped by `createMaestrano`) must not turn it into
 * an unhandled rejection, which ends the process: the rest of the worker already guards
 * against it ("a throwing logger must not crash the process either").
 */
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';

const DAY = 24 * 3_600_000;

describe('worker – completed job purge with a throwing logger', () => {
  it('leaves no unhandled rejection, whether the purge succeeds or fails', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const failing of [false, true]) {
        const clock = createTestClock();
        const storage = memoryAdapter({ clock: clock.now });
        const broken = () => {
          throw new Error('logger down');
        };
        const logger: Logger = { debug() {}, info: broken, warn: broken, error() {} };
        const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger, clock: clock.now, instanceId: 'test', fetch: globalThis.fetch };
        const worker = createWorker(runtime, { 'test.job': async () => {} });
        const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: {} });
        await worker.drain();
        clock.advance(8 * DAY);
        if (failing) {
          storage.jobs.purgeCompleted = async () => {
            throw new Error('storage down');
          };
        }
        const controller = new AbortController();
        const running = worker.run({ signal: controller.signal, pollIntervalMs: 1 });
        if (!failing) await expect.poll(() => storage.jobs.get(id)).toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 50));
        controller.abort();
        await expect(running).resolves.toBeDefined();
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
