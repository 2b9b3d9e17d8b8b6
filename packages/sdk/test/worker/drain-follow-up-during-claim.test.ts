// drain() ends once nothing is due and nothing runs; a claim that was sent while a job still ran
// does not say so: that job may enqueue a follow-up (company.created fans out billing.subscribe)
// after the claim read the queue and finish before the claim answers. Before the fix, drain()
// took that empty answer for idle and returned with the follow-up due and never run (a CI flake
// of the billing e2e test under load: a provisioned group without its recurring bill).
import { expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test-instance', fetch: globalThis.fetch };
}

it('drain() runs a follow-up that a job enqueued while a claim (sent as that job ran) was on its way', async () => {
  const inner = memoryAdapter();
  let parentRunning = false;
  let parentDone!: () => void;
  const parentCompleted = new Promise<void>((resolve) => {
    parentDone = resolve;
  });
  // A claim sent while the parent runs reads the queue at once (no follow-up yet), and its
  // answer arrives only once the parent has finished (a slow database round trip).
  const storage: StorageAdapter = {
    ...inner,
    jobs: {
      ...inner.jobs,
      claim: async (options) => {
        const sentWhileParentRan = parentRunning;
        const claimed = await inner.jobs.claim(options);
        if (sentWhileParentRan) await parentCompleted;
        return claimed;
      },
      completeMany: async (...args) => {
        const completed = await inner.jobs.completeMany(...args);
        if (parentRunning) {
          parentRunning = false;
          // Answered after the worker has settled the parent (its slot is free again).
          setTimeout(parentDone, 20);
        }
        return completed;
      },
    },
  };
  const ran: string[] = [];
  const worker = createWorker(runtimeWith(storage), {
    'test.parent': async () => {
      parentRunning = true;
      ran.push('parent');
      // Let the worker's loop send its next claim while this job runs.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await inner.jobs.enqueue({ type: 'test.child', payload: null });
    },
    'test.child': async () => {
      ran.push('child');
    },
  });
  await inner.jobs.enqueue({ type: 'test.parent', payload: null });
  const stats = await worker.drain({ concurrency: 2, pollIntervalMs: 1 });
  expect(ran).toEqual(['parent', 'child']);
  expect(stats).toMatchObject({ completed: 2 });
  expect(await inner.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 2 });
});
