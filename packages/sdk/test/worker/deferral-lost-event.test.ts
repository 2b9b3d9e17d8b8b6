import { describe, expect, it } from 'vitest';
import { JobDeferral, type Runtime } from '../../src/core/types.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerEvent } from '../../src/worker/index.js';

describe('worker – a deferral whose lease was taken over meanwhile', () => {
  it('is counted lost and reported as lost (lease_lost), not as deferred; the new owner keeps the job', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: { debug() {}, info() {}, warn() {}, error() {} }, clock, instanceId: 'test', fetch: globalThis.fetch };
    const worker = createWorker(runtime, {
      'test.defer': async () => {
        // A long pause: the lease expired and another worker took the job over.
        now += 60_000;
        await storage.jobs.claim({ worker: 'other', limit: 1, leaseMs: 60_000 });
        throw new JobDeferral('waiting for a reference', { waitKey: 'ref:1' });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.defer', payload: null });
    const events: WorkerEvent[] = [];

    const stats = await worker.drain({ leaseMs: 30_000, pollIntervalMs: 1, onEvent: (event) => events.push(event) });

    expect(stats).toMatchObject({ claimed: 1, deferred: 0, lost: 1 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'other', waitKey: null });
    expect(events.map((e) => e.type)).toEqual(['claimed', 'lease_lost']);
  });
});
