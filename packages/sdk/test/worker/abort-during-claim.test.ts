/**
 * A shutdown (the caller's signal aborted) that lands while the worker is claiming, with a job
 * in flight and nothing more due: the loop must stop at once, not sleep a poll interval first
 * (the in-flight job's grace period only starts when the loop stops).
 */
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('worker – abort during a claim with a job in flight', () => {
  it('run() stops within the shutdown, not a poll interval later', async () => {
    const storage = memoryAdapter();
    await storage.jobs.enqueue({ type: 'test.long', payload: {} });
    const controller = new AbortController();
    const claim = storage.jobs.claim.bind(storage.jobs);
    let claims = 0;
    storage.jobs.claim = async (options) => {
      const claimed = await claim(options);
      // The second claim (the long job already running) meets the shutdown.
      if (++claims === 2) controller.abort();
      return claimed;
    };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, {
      // A well-behaved job: it ends as soon as its signal aborts.
      'test.long': (_job, ctx) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          setTimeout(resolve, 8_000);
        }),
    });
    // Stopping at once takes the grace period (1 s, the job ends when its signal aborts);
    // sleeping a poll interval first takes 10 s more. The bound sits between the two, with
    // seconds to spare either way (it was 2 s, one second past the grace: a loaded machine
    // could spend that second and fail a worker that had stopped at once).
    const started = Date.now();
    await worker.run({ signal: controller.signal, concurrency: 2, pollIntervalMs: 10_000, shutdownGraceMs: 1_000 });
    expect(claims).toBe(2);
    expect(Date.now() - started).toBeLessThan(6_000);
  }, 20_000);
});

describe('worker – jobs claimed while the shutdown landed', () => {
  it('are given back (pending, attempt not counted) without starting', async () => {
    const storage = memoryAdapter();
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: {} });
    const controller = new AbortController();
    const claim = storage.jobs.claim.bind(storage.jobs);
    storage.jobs.claim = async (options) => {
      const claimed = await claim(options);
      controller.abort();
      return claimed;
    };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
    let started = 0;
    const events: string[] = [];
    const worker = createWorker(runtime, {
      'test.job': async () => {
        started++;
      },
    });
    const stats = await worker.run({ signal: controller.signal, concurrency: 2, shutdownGraceMs: 1_000, onEvent: (event) => events.push(event.type) });
    expect(started).toBe(0);
    expect(stats).toMatchObject({ claimed: 1, completed: 0, released: 1 });
    // Each `released` follows its `claimed` (observers counting jobs in flight end at zero).
    expect(events).toEqual(['claimed', 'released']);
    const job = await storage.jobs.get(id);
    expect(job).toMatchObject({ status: 'pending', attempts: 0 });
  });
});
