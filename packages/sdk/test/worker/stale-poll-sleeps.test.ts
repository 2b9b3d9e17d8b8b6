/**
 * A worker with jobs in flight and nothing more to claim waits for a slot or the poll interval,
 * whichever comes first. When a slot wins, the poll sleep it raced against must not stay behind:
 * each left a `pollIntervalMs` timer and an abort listener on the caller's signal.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeOf(storage: ReturnType<typeof memoryAdapter>): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('worker – poll sleeps raced against a free slot', () => {
  it('leave no timer and no abort listener behind once a slot frees (no MaxListenersExceededWarning on the caller signal)', async () => {
    const storage = memoryAdapter();
    // One ordering key: one job runs at a time, so every other claim finds nothing due.
    await storage.jobs.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ type: 'test.ordered', payload: { i }, orderingKey: 'one-record' })));
    const worker = createWorker(runtimeOf(storage), {
      'test.ordered': () => new Promise<void>((resolve) => setTimeout(resolve, 2)),
    });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const controller = new AbortController();
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, getEventListeners(controller.signal, 'abort').length);
    }, 1);
    const before = timeouts();
    try {
      const stats = await worker.drain({ signal: controller.signal, concurrency: 4, pollIntervalMs: 60_000 });
      expect(stats.completed).toBe(30);
    } finally {
      clearInterval(watch);
      process.off('warning', onWarning);
    }
    // `drain()` resolved: nothing of the worker's may keep the process alive for another minute.
    expect(timeouts()).toBeLessThanOrEqual(before);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(most).toBeLessThanOrEqual(2);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});
