import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JobHandler, Logger, Runtime } from '../../src/core/types.js';
import { StorageError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker, type WorkerEvent } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, options: { clock?: () => Date; logger?: Logger } = {}): Runtime {
  return {
    tenants: { get: () => undefined, list: () => [] },
    storage,
    logger: options.logger ?? silent,
    clock: options.clock ?? (() => new Date()),
    instanceId: 'test-instance',
    fetch: globalThis.fetch,
  };
}

/** Storage whose lease renewals always fail (a connection pool timeout for this worker). */
function failingHeartbeats(storage: StorageAdapter): StorageAdapter {
  return {
    ...storage,
    jobs: {
      ...storage.jobs,
      heartbeatMany: async () => {
        throw new StorageError('connection pool timeout', { adapterId: 'memory', operation: 'jobs.heartbeatMany' });
      },
    },
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Collects unhandled rejections (Node's default reaction to one is to crash the process). */
function watchUnhandled(): { reasons: unknown[]; stop: () => void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => reasons.push(reason);
  process.on('unhandledRejection', listener);
  return { reasons, stop: () => process.off('unhandledRejection', listener) };
}

const macrotask = () => new Promise((r) => setImmediate(r));
const later = { baseMs: 3_600_000, maxMs: 3_600_000 };

afterEach(() => {
  vi.useRealTimers();
});

describe('worker – shutdown and leases', () => {
  it('worker.run – an abort while every slot is busy starts the grace period, then aborts ctx.signal', async () => {
    const storage = memoryAdapter();
    const controller = new AbortController();
    const started = deferred();
    let sawAbort = false;
    const worker = createWorker(runtimeWith(storage), {
      'test.long': async (_job, ctx) => {
        started.resolve();
        // Stops when told to; without it, it would run 3 s and finish on its own.
        await new Promise<void>((resolve) => {
          const fallback = setTimeout(resolve, 3_000);
          ctx.signal.addEventListener(
            'abort',
            () => {
              sawAbort = true;
              clearTimeout(fallback);
              resolve();
            },
            { once: true },
          );
        });
        if (ctx.signal.aborted) throw ctx.signal.reason;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.long', payload: null });

    const running = worker.run({ signal: controller.signal, concurrency: 1, shutdownGraceMs: 50, pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });
    await started.promise;
    await new Promise((r) => setTimeout(r, 20)); // the loop now waits for the only slot
    controller.abort();
    const stats = await running;

    expect(sawAbort).toBe(true);
    // Interrupted, not failed: given back due now, the attempt not counted.
    expect(stats).toMatchObject({ claimed: 1, completed: 0, retried: 0, released: 1 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0, lastError: null });
  });

  it('worker.run – repeated shutdowns never dead-letter a job they interrupt', async () => {
    const storage = memoryAdapter();
    const { id } = await storage.jobs.enqueue({ type: 'test.long', payload: null, maxAttempts: 2 });
    for (let deploy = 0; deploy < 3; deploy++) {
      const controller = new AbortController();
      const started = deferred();
      const worker = createWorker(runtimeWith(storage), {
        'test.long': async (_job, ctx) => {
          started.resolve();
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          throw ctx.signal.reason;
        },
      });
      const running = worker.run({ signal: controller.signal, concurrency: 1, shutdownGraceMs: 20, pollIntervalMs: 5 });
      await started.promise;
      controller.abort();
      expect((await running).released).toBe(1);
    }
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await storage.jobs.listDead()).toEqual([]);
  });

  it('worker.run – the shutdown grace timer is cleared once in-flight jobs finish (it must not hold the process open)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const storage = memoryAdapter();
    const controller = new AbortController();
    const started = deferred();
    const release = deferred();
    const worker = createWorker(runtimeWith(storage), {
      'test.quick': async () => {
        started.resolve();
        await release.promise;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.quick', payload: null });

    const running = worker.run({ signal: controller.signal, shutdownGraceMs: 10_000 });
    await started.promise;
    controller.abort();
    await macrotask(); // the worker is now in its grace period
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    release.resolve();
    const stats = await running;

    expect(stats.completed).toBe(1);
    expect((await storage.jobs.get(id))?.status).toBe('done');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('worker – a renewal that keeps failing past half the lease counts as lost: ctx.heartbeat() is false, ctx.signal aborts, the job is not completed', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const seen: [boolean, boolean][] = [];
    let takenBy = '';
    const worker = createWorker(runtimeWith(failingHeartbeats(storage), { clock }), {
      'test.job': async (_job, ctx) => {
        // Just claimed: an unconfirmed renewal is not a lost lease yet.
        seen.push([await ctx.heartbeat(), ctx.signal.aborted]);
        // The lease runs out while renewals keep failing; another worker takes the job over.
        now += 1_000;
        const [taken] = await storage.jobs.claim({ worker: 'other', limit: 1, leaseMs: 60_000 });
        takenBy = taken ? 'other' : '';
        seen.push([await ctx.heartbeat(), ctx.signal.aborted]);
        // A handler that ignores the signal and resolves anyway.
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const events: WorkerEvent['type'][] = [];

    const stats = await worker.drain({ leaseMs: 1_000, pollIntervalMs: 5, onEvent: (e) => events.push(e.type) });

    expect(takenBy).toBe('other');
    expect(seen).toEqual([
      [true, false],
      [false, true],
    ]);
    expect(events.filter((e) => e === 'lease_lost')).toHaveLength(1);
    expect(stats).toMatchObject({ claimed: 1, completed: 0, lost: 1 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'other' });
  });

  // Renewals that fail, and renewals that never answer (a database gone silent behind an open
  // connection): either way the job is given up while its lease is still held.
  const unconfirmed: [string, (storage: StorageAdapter) => StorageAdapter][] = [
    ['fail', failingHeartbeats],
    ['never answer', (storage) => ({ ...storage, jobs: { ...storage.jobs, heartbeatMany: () => new Promise<string[]>(() => {}) } })],
  ];
  for (const [how, wrap] of unconfirmed) {
    it(`worker – when heartbeats ${how}, the heartbeat timer aborts ctx.signal while the lease is still held`, async () => {
      const storage = memoryAdapter();
      let abortedInTime: boolean | null = null;
      const worker = createWorker(runtimeWith(wrap(storage)), {
        'test.job': async (_job, ctx) => {
          const aborted = await new Promise<boolean>((resolve) => {
            const fallback = setTimeout(() => resolve(false), 5_000);
            ctx.signal.addEventListener(
              'abort',
              () => {
                clearTimeout(fallback);
                resolve(true);
              },
              { once: true },
            );
          });
          // Nobody else could claim the job yet: it was given up before its lease ran out.
          if (aborted) abortedInTime = (await storage.jobs.claim({ worker: 'other', limit: 1, leaseMs: 60_000 })).length === 0;
          if (aborted) throw ctx.signal.reason;
        },
      });
      const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });

      const stats = await worker.drain({ leaseMs: 2_000, pollIntervalMs: 5 });

      expect(abortedInTime).toBe(true);
      expect(stats).toMatchObject({ claimed: 1, completed: 0, retried: 0, lost: 1 });
      // Left to expire and be redelivered, never recorded as done.
      expect((await storage.jobs.get(id))?.status).toBe('running');
    });
  }

  it('worker – a heartbeat answered after the job was completed emits no lease_lost and is not counted as lost', async () => {
    const storage = memoryAdapter();
    const answer = deferred();
    const slow: StorageAdapter = {
      ...storage,
      jobs: {
        ...storage.jobs,
        heartbeatMany: async (ids, worker, leaseMs) => {
          await answer.promise;
          return storage.jobs.heartbeatMany(ids, worker, leaseMs);
        },
        completeMany: async (ids, worker) => {
          const done = await storage.jobs.completeMany(ids, worker);
          // The renewal sent before completion answers now: the job is no longer running.
          answer.resolve();
          await macrotask();
          return done;
        },
      },
    };
    const worker = createWorker(runtimeWith(slow), {
      'test.job': async (_job, ctx) => {
        void ctx.heartbeat(); // in flight when the handler returns, like a timer heartbeat
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const events: WorkerEvent['type'][] = [];

    const stats = await worker.drain({ pollIntervalMs: 5, onEvent: (e) => events.push(e.type) });

    expect(events).not.toContain('lease_lost');
    expect(stats).toMatchObject({ completed: 1, lost: 0 });
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
  ])('worker – a batch handler rejecting with %s fails every job of the batch, never completes them', async (_name, reason) => {
    const storage = memoryAdapter();
    let calls = 0;
    const handler: JobHandler = async () => {};
    handler.batch = () => {
      calls++;
      return Promise.reject(reason);
    };
    const worker = createWorker(runtimeWith(storage), { 'test.batch': handler });
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { n } })).id);

    const stats = await worker.drain({ concurrency: 1, pollIntervalMs: 5, backoff: later });

    expect(calls).toBe(1);
    expect(stats).toMatchObject({ claimed: 3, completed: 0, retried: 3 });
    expect(await storage.jobs.counts()).toMatchObject({ pending: 3, done: 0, running: 0 });
    for (const id of ids) {
      expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', lastError: { message: 'batch handler rejected without an error' } });
    }
  });

  it('worker – a rejection String() cannot convert is recorded as a failed attempt, not an unhandled rejection', async () => {
    const unhandled = watchUnhandled();
    try {
      const storage = memoryAdapter();
      const worker = createWorker(runtimeWith(storage), {
        'test.null-proto': async () => {
          const error = Object.create(null) as { message: string };
          error.message = 'upstream said no';
          throw error;
        },
        'test.bad-to-string': async () => {
          throw {
            toString() {
              throw new Error('no');
            },
          };
        },
      });
      const nullProto = await storage.jobs.enqueue({ type: 'test.null-proto', payload: null });
      const badToString = await storage.jobs.enqueue({ type: 'test.bad-to-string', payload: null });

      const stats = await worker.drain({ pollIntervalMs: 5, backoff: later });
      await macrotask();

      expect(unhandled.reasons).toEqual([]);
      expect(stats).toMatchObject({ claimed: 2, retried: 2, completed: 0 });
      expect(await storage.jobs.get(nullProto.id)).toMatchObject({ status: 'pending', lastError: { message: 'upstream said no' } });
      expect(await storage.jobs.get(badToString.id)).toMatchObject({ status: 'pending', lastError: { message: 'non-Error thrown' } });
    } finally {
      unhandled.stop();
    }
  });

  it('worker – a failure escaping job processing (a throwing logger) is logged, not an unhandled rejection', async () => {
    const unhandled = watchUnhandled();
    try {
      const storage = memoryAdapter();
      const errors: string[] = [];
      const logger: Logger = {
        ...silent,
        warn() {
          throw new Error('log sink down');
        },
        error(message: string) {
          errors.push(message);
        },
      };
      const worker = createWorker(runtimeWith(storage, { logger }), {
        'test.fail': async () => {
          throw new Error('boom');
        },
      });
      const { id } = await storage.jobs.enqueue({ type: 'test.fail', payload: null });

      await worker.drain({ pollIntervalMs: 5, backoff: later });
      await macrotask();

      expect(unhandled.reasons).toEqual([]);
      expect(errors).toContain('worker: processing jobs failed unexpectedly; their leases will expire');
      expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', lastError: { message: 'boom' } });
    } finally {
      unhandled.stop();
    }
  });

  it('worker.drain – the poisoned hook runs once a job redelivered past its attempts is recorded dead, not when it was lost', async () => {
    for (const lose of [false, true]) {
      let now = Date.parse('2030-01-01T00:00:00.000Z');
      const clock = () => new Date(now);
      const base = memoryAdapter({ clock });
      // `lose`: another worker took the job over between the claim and the dead letter.
      const storage: StorageAdapter = lose ? { ...base, jobs: { ...base.jobs, fail: async () => 'lost' as const } } : base;
      const ran: string[] = [];
      const poisoned: string[] = [];
      const handler: JobHandler = Object.assign(async (job: { id: string }) => void ran.push(job.id), {
        poisoned: async (job: { id: string }) => void poisoned.push(job.id),
      });
      const { id } = await base.jobs.enqueue({ type: 'crashy', payload: {}, maxAttempts: 2 });
      for (const attempt of [1, 2]) {
        const [job] = await base.jobs.claim({ worker: `dead-${attempt}`, limit: 1, leaseMs: 1_000 });
        expect(job?.attempts).toBe(attempt);
        now += 2_000;
      }
      await createWorker(runtimeWith(storage, { clock }), { crashy: handler }).drain({ pollIntervalMs: 1 });
      expect(ran).toEqual([]);
      expect(poisoned).toEqual(lose ? [] : [id]);
      if (!lose) expect((await base.jobs.get(id))?.status).toBe('dead');
    }
  });
});


describe('worker – handlers that never stop', () => {
  it('worker.run – a handler that ignores its aborted signal is left to its lease after the grace: run() resolves, another worker runs the job', async () => {
    const storage = memoryAdapter();
    const controller = new AbortController();
    const started = deferred();
    const events: WorkerEvent[] = [];
    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (message) => errors.push(message) };
    const hung = createWorker(runtimeWith(storage, { logger }), {
      'test.hang': async () => {
        started.resolve();
        await new Promise(() => {}); // never settles, ignores ctx.signal
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.hang', payload: null, orderingKey: 'record-1' });
    const running = hung.run({ signal: controller.signal, leaseMs: 600, shutdownGraceMs: 100, pollIntervalMs: 5, onEvent: (e) => events.push(e) });
    await started.promise;
    controller.abort();
    const stats = await running;
    expect(stats).toMatchObject({ claimed: 1, completed: 0, lost: 1, released: 0 });
    expect(events.map((e) => e.type)).toContain('lease_lost');
    expect(errors).toContain('worker: a handler kept running after its signal aborted; its jobs are left to their leases');

    // No renewal any more: once the lease runs out, another worker takes the job and runs it.
    const leaseAt = (await storage.jobs.get(id))?.leaseExpiresAt?.getTime() ?? 0;
    await new Promise((r) => setTimeout(r, 900));
    expect((await storage.jobs.get(id))?.leaseExpiresAt?.getTime()).toBe(leaseAt);
    let ran = 0;
    const next = createWorker(runtimeWith(storage), {
      'test.hang': async () => {
        ran++;
      },
    });
    expect(await next.drain({ pollIntervalMs: 5 })).toMatchObject({ completed: 1 });
    expect(ran).toBe(1);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'done', attempts: 2 });
  });

  it('worker.run – jobTimeoutMs aborts a handler that runs too long; the attempt fails and is retried', async () => {
    const storage = memoryAdapter();
    let calls = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.slow': async (_job, ctx) => {
        calls++;
        if (calls > 1) return;
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        throw ctx.signal.reason;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.slow', payload: null });
    const stats = await worker.drain({ jobTimeoutMs: 50, pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });
    expect(stats).toMatchObject({ retried: 1, completed: 1 });
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'done', attempts: 2 });
  });
});

describe('worker – run options', () => {
  it('worker.run – refuses a jobTimeoutMs a timer cannot hold (Node would fire it after 1 ms): ConfigError, nothing claimed', async () => {
    const storage = memoryAdapter();
    let ran = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.job': async () => {
        ran++;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    for (const jobTimeoutMs of [0, -5, 1.5, 3_000_000_000, Number.NaN]) {
      await expect(worker.drain({ jobTimeoutMs })).rejects.toMatchObject({ name: 'ConfigError', issues: [{ path: 'jobTimeoutMs' }] });
    }
    expect(ran).toBe(0);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});
