/**
 * `JobDeferral`'s `stillWaiting` is the app's own code when its handler defers: a check that
 * never settles must not hold the worker's slot (nor its shutdown). The worker gives up on it
 * after 10 s, logs it, and the job keeps its retry time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JobDeferral, type Logger, type Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

describe('worker – a deferral whose stillWaiting never settles', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives up on the check after 10 s: the drain ends, the job waits for its retry time, a warning says so', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const storage = memoryAdapter();
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (message) => warnings.push(message), error() {} };
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
    const job = await storage.jobs.enqueue({ type: 'test.waits', payload: {} });
    let asked!: () => void;
    const checking = new Promise<void>((resolve) => {
      asked = resolve;
    });
    const worker = createWorker(runtime, {
      'test.waits': () => {
        throw new JobDeferral('waiting for something', {
          waitKey: 'test:something',
          retryInMs: 3_600_000,
          stillWaiting: () => {
            asked();
            return new Promise<boolean>(() => {}); // never settles
          },
        });
      },
    });
    const draining = worker.drain({ pollIntervalMs: 5 });
    await checking;
    await vi.advanceTimersByTimeAsync(10_001);
    const stats = await draining;
    expect(stats.deferred).toBe(1);
    const stored = await storage.jobs.get(job!.id);
    expect(stored?.status).toBe('pending');
    expect(stored?.waitKey).toBe('test:something');
    expect(stored!.runAt.getTime() - Date.now()).toBeGreaterThan(3_000_000);
    expect(warnings.some((w) => w.includes('could not check a deferred job'))).toBe(true);
  });
});
