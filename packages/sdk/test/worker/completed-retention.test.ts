/**
 * Done jobs (one per notified record, with its payload) are deleted by `run()` once older than
 * `completedJobRetentionMs` (7 days by default), at most hourly; before, every job ever run
 * stayed in storage unless the app purged it itself.
 */
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import { ConfigError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createTestClock } from '../../src/testing/conformance/clock.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const DAY = 24 * 3_600_000;

function setup() {
  const clock = createTestClock();
  const storage = memoryAdapter({ clock: clock.now });
  const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: clock.now, instanceId: 'test', fetch: globalThis.fetch };
  const worker = createWorker(runtime, { 'test.job': async () => {} });
  return { clock, storage, worker };
}

async function doneJob(storage: StorageAdapter, worker: ReturnType<typeof setup>['worker'], key: string): Promise<string> {
  const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: { key }, dedupeKey: key });
  await worker.drain();
  expect((await storage.jobs.get(id))?.status).toBe('done');
  return id;
}

describe('worker – completed job retention', () => {
  it('run() deletes done jobs older than 7 days and keeps newer ones; drain() deletes nothing', async () => {
    const { clock, storage, worker } = setup();
    const old = await doneJob(storage, worker, 'old');
    clock.advance(6 * DAY);
    const recent = await doneJob(storage, worker, 'recent');
    clock.advance(1 * DAY + 60_000);
    await worker.drain();
    expect(await storage.jobs.get(old)).not.toBeNull();

    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1 });
    await expect.poll(() => storage.jobs.get(old)).toBeNull();
    controller.abort();
    await running;
    expect((await storage.jobs.get(recent))?.status).toBe('done');
    // Its dedupe key is free again; the recent one's is not.
    expect((await storage.jobs.enqueue({ type: 'test.job', payload: {}, dedupeKey: 'old' })).created).toBe(true);
    expect((await storage.jobs.enqueue({ type: 'test.job', payload: {}, dedupeKey: 'recent' })).created).toBe(false);
  });

  it('completedJobRetentionMs: null keeps them for good; a shorter retention applies', async () => {
    const { clock, storage, worker } = setup();
    const id = await doneJob(storage, worker, 'a');
    clock.advance(30 * DAY);
    const keep = new AbortController();
    const kept = worker.run({ signal: keep.signal, pollIntervalMs: 1, completedJobRetentionMs: null });
    // A few idle polls: a purge would have started at the first.
    await new Promise((resolve) => setTimeout(resolve, 50));
    keep.abort();
    await kept;
    expect(await storage.jobs.get(id)).not.toBeNull();

    const second = await doneJob(storage, worker, 'b');
    clock.advance(2 * 3_600_000);
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1, completedJobRetentionMs: 3_600_000 });
    await expect.poll(() => storage.jobs.get(second)).toBeNull();
    controller.abort();
    await running;
    expect(await storage.jobs.get(id)).toBeNull();
  });

  it('a shutdown waits for a purge still running only within shutdownGraceMs', async () => {
    const { clock, storage, worker } = setup();
    await doneJob(storage, worker, 'a');
    clock.advance(8 * 24 * 3_600_000);
    let started = false;
    // A long backlog on a slow database: the purge does not end while the worker stops.
    storage.jobs.purgeCompleted = () => {
      started = true;
      return new Promise<number>(() => {});
    };
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal, pollIntervalMs: 1, shutdownGraceMs: 50 });
    await expect.poll(() => started).toBe(true);
    controller.abort();
    // Before, run() never resolved.
    await expect(running).resolves.toMatchObject({ completed: 0 });
  });

  it('refuses a retention that is not a whole number of ms', async () => {
    const { worker } = setup();
    for (const bad of [-1, 1.5, Number.NaN, '7d']) {
      await expect(worker.run({ completedJobRetentionMs: bad as number })).rejects.toBeInstanceOf(ConfigError);
    }
  });
});
