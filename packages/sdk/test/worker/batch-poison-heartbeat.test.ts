import { describe, expect, it } from 'vitest';
import type { JobHandler, Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerEvent } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, clock: () => Date): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock, instanceId: 'test-instance', fetch: globalThis.fetch };
}

describe('worker – a batch holding a job redelivered past its attempts', () => {
  it('the dead-lettered job is not renewed nor reported lease_lost; ctx.heartbeat() stays true for the live jobs', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const renewedIds: string[][] = [];
    const heartbeatMany = storage.jobs.heartbeatMany.bind(storage.jobs);
    storage.jobs.heartbeatMany = async (ids, worker, leaseMs) => {
      renewedIds.push([...ids]);
      return heartbeatMany(ids, worker, leaseMs);
    };
    const heartbeats: boolean[] = [];
    const handler: JobHandler = async () => {
      throw new Error('single path not expected');
    };
    handler.batch = async (jobs, ctx) => {
      heartbeats.push(await ctx.heartbeat());
      return jobs.map(() => null);
    };
    const poison = await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 0 }, maxAttempts: 1 });
    // A worker died holding the poison job: claimed, never settled, lease expired.
    await storage.jobs.claim({ worker: 'dead-worker', limit: 1, leaseMs: 1_000 });
    for (let n = 1; n <= 3; n++) await storage.jobs.enqueue({ type: 'test.batch', payload: { n }, maxAttempts: 5 });
    now += 5_000;
    const events: WorkerEvent[] = [];
    const worker = createWorker(runtimeWith(storage, clock), { 'test.batch': handler });

    const stats = await worker.drain({ concurrency: 8, pollIntervalMs: 5, onEvent: (e) => events.push(e) });

    expect(stats).toMatchObject({ deadLettered: 1, completed: 3, lost: 0 });
    expect((await storage.jobs.get(poison.id))?.status).toBe('dead');
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 3, dead: 1 });
    // The dead job is no longer this batch's: it is neither renewed nor reported lost.
    expect(renewedIds.flat()).not.toContain(poison.id);
    expect(events.filter((e) => e.type === 'lease_lost')).toEqual([]);
    expect(heartbeats).toEqual([true]);
  });
});

describe('worker – a poisoned hook that throws instead of rejecting', () => {
  for (const [how, hook] of [
    ['throws synchronously', () => { throw new Error('hook bug'); }],
    ['returns no promise', () => undefined],
  ] as const) {
    it(`${how}: the dead letter is recorded, and the other jobs of its batch still run and complete`, async () => {
      let now = Date.now();
      const clock = () => new Date(now);
      const storage = memoryAdapter({ clock });
      const ran: number[] = [];
      const handler: JobHandler = async () => {
        throw new Error('single path not expected');
      };
      handler.batch = async (jobs) => {
        ran.push(...jobs.map((j) => (j.payload as { n: number }).n));
        return jobs.map(() => null);
      };
      let hookCalls = 0;
      handler.poisoned = ((job: unknown) => {
        hookCalls++;
        return (hook as (job: unknown) => unknown)(job);
      }) as unknown as JobHandler['poisoned'];
      const poison = await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 0 }, maxAttempts: 1 });
      await storage.jobs.claim({ worker: 'dead-worker', limit: 1, leaseMs: 1_000 });
      for (let n = 1; n <= 3; n++) await storage.jobs.enqueue({ type: 'test.batch', payload: { n }, maxAttempts: 5 });
      now += 5_000;
      const worker = createWorker(runtimeWith(storage, clock), { 'test.batch': handler });

      const stats = await worker.drain({ concurrency: 8, pollIntervalMs: 5 });

      expect(hookCalls).toBe(1);
      expect((await storage.jobs.get(poison.id))?.status).toBe('dead');
      expect(ran.sort()).toEqual([1, 2, 3]);
      expect(stats).toMatchObject({ deadLettered: 1, completed: 3 });
      expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 3, dead: 1 });
    });
  }
});
