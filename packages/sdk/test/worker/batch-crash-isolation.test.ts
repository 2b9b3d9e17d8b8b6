import { describe, expect, it } from 'vitest';
import type { JobHandler, Logger, Runtime } from '../../src/core/types.js';
import type { JobRecord, StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, clock: () => Date): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock, instanceId: 'test-instance', fetch: globalThis.fetch };
}

/**
 * One worker process over the shared storage: once `crash()` is called it is dead, every
 * storage call of its worker hangs (it never settles, renews nor releases anything again).
 */
function processOver(storage: StorageAdapter) {
  let dead = false;
  const hang = new Promise<never>(() => {});
  const jobs = new Proxy(storage.jobs, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => (dead ? hang : (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  const facade = new Proxy(storage, { get: (target, key) => (key === 'jobs' ? jobs : Reflect.get(target, key)) });
  let crashed!: () => void;
  const died = new Promise<'crashed'>((resolve) => {
    crashed = () => resolve('crashed');
  });
  return {
    storage: facade,
    died,
    crash: (): Promise<never> => {
      dead = true;
      crashed();
      return hang;
    },
  };
}

describe('worker – a batch member that crashes the process', () => {
  it('only the culprit is dead-lettered after maxAttempts; the other members of its batch are applied exactly once', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const maxAttempts = 3;
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { n }, maxAttempts })).id);
    const culprit = ids[4] as string;
    const isCulprit = (job: JobRecord) => job.id === culprit;

    const applied = new Map<string, number>();
    let runs = 0;
    let crashes = 0;
    for (let life = 0; life < 30; life++) {
      const proc = processOver(storage);
      const apply = (jobs: JobRecord[]) => {
        runs++;
        // Running out of memory (or a native crash) on this record kills the whole process.
        if (jobs.some(isCulprit)) return proc.crash();
        for (const job of jobs) applied.set(job.id, (applied.get(job.id) ?? 0) + 1);
        return Promise.resolve(jobs.map(() => null));
      };
      const handler: JobHandler = async (job) => {
        await apply([job]);
      };
      handler.batch = (jobs) => apply(jobs);
      const worker = createWorker(runtimeWith(proc.storage, clock), { 'test.batch': handler });
      const outcome = await Promise.race([
        worker.drain({ concurrency: 1, batchSize: 10, leaseMs: 1_000, pollIntervalMs: 1, shutdownGraceMs: 10 }),
        proc.died,
      ]);
      if (outcome !== 'crashed') break;
      crashes++;
      // The process is gone: its leases expire, the next process gets its jobs again.
      now += 5_000;
    }

    const jobs = await Promise.all(ids.map((id) => storage.jobs.get(id)));
    expect(jobs.find((job) => job?.id === culprit)).toMatchObject({ status: 'dead', attempts: maxAttempts + 1 });
    // Every innocent member: done, its handler run once to completion, never dead-lettered.
    const innocents = jobs.filter((job) => job?.id !== culprit);
    expect(innocents.map((job) => job?.status)).toEqual(Array(9).fill('done'));
    expect(ids.filter((id) => id !== culprit).map((id) => applied.get(id))).toEqual(Array(9).fill(1));
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 9, dead: 1 });
    // The culprit crashed the process on each of its attempts, and on no other.
    expect(crashes).toBe(maxAttempts);
    expect(runs).toBe(maxAttempts + 9);
  });
});

describe('worker – crash suspects set aside on slow storage', () => {
  it('the jobs it runs are not held back while the set-aside suspects are given back one by one (their leases are renewed)', { timeout: 30_000 }, async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const storage = memoryAdapter({ clock });
    const ids: string[] = [];
    for (let n = 0; n < 12; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { n } })).id);
    // Two processes died holding them all (a batch whose culprit crashed it twice).
    for (const dead of ['dead-1', 'dead-2']) {
      expect(await storage.jobs.claim({ worker: dead, limit: 100, leaseMs: 1_000 })).toHaveLength(12);
      offset += 5_000;
    }
    const fresh = (await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 'fresh' } })).id;
    // A database a few tens of ms away: each give-back is a round trip.
    const slow = {
      ...storage,
      jobs: new Proxy(storage.jobs, {
        get(target, key) {
          const value = Reflect.get(target, key) as unknown;
          if (key !== 'release' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
          return async (...args: [string, string]) => {
            await new Promise((resolve) => setTimeout(resolve, 60));
            return (value as (id: string, worker: string) => Promise<boolean>).apply(target, args);
          };
        },
      }),
    } as StorageAdapter;
    // An app call per record that takes a little while (well within the lease, renewed meanwhile).
    const apply = async (jobs: JobRecord[]) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return jobs.map(() => null);
    };
    const handler: JobHandler = async (job) => {
      await apply([job]);
    };
    handler.batch = (jobs) => apply(jobs);
    const outcomes = new Map<string, string>();
    const stop = new AbortController();
    const worker = createWorker(runtimeWith(slow, clock), { 'test.batch': handler });
    const run = worker.run({
      signal: stop.signal,
      concurrency: 2,
      batchSize: 100,
      leaseMs: 1_000,
      pollIntervalMs: 5,
      shutdownGraceMs: 2_000,
      onEvent: (event) => {
        if (event.type !== 'completed' && event.type !== 'lease_lost') return;
        if (!outcomes.has(event.job.id)) outcomes.set(event.job.id, event.type);
        // The first suspect run alone and the fresh job claimed with them: both have an outcome.
        if (outcomes.has(fresh) && outcomes.has(ids[0] as string)) stop.abort();
      },
    });
    await run;
    expect({ suspect: outcomes.get(ids[0] as string), fresh: outcomes.get(fresh) }).toEqual({ suspect: 'completed', fresh: 'completed' });
    expect(await storage.jobs.get(ids[0] as string)).toMatchObject({ status: 'done', attempts: 3 });
    expect(await storage.jobs.get(fresh)).toMatchObject({ status: 'done', attempts: 1 });
  });
});

describe('worker – many crash suspects after a worker died twice holding the whole queue', () => {
  it('runs them one at a time without claiming and giving back the rest of the queue over and over', async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const storage = memoryAdapter({ clock });
    const n = 40;
    const ids: string[] = [];
    for (let k = 0; k < n; k++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { k } })).id);
    for (const dead of ['dead-1', 'dead-2']) {
      expect(await storage.jobs.claim({ worker: dead, limit: 100, leaseMs: 1_000 })).toHaveLength(n);
      offset += 5_000;
    }
    let claimedRows = 0;
    let released = 0;
    const counted = {
      ...storage,
      jobs: new Proxy(storage.jobs, {
        get(target, key) {
          const value = Reflect.get(target, key) as unknown;
          if (typeof value !== 'function') return value;
          if (key === 'claim') {
            return async (...args: unknown[]) => {
              const jobs = (await (value as (...a: unknown[]) => Promise<JobRecord[]>).apply(target, args)) as JobRecord[];
              claimedRows += jobs.length;
              return jobs;
            };
          }
          if (key === 'release') {
            return (...args: unknown[]) => {
              released++;
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          }
          return value.bind(target);
        },
      }),
    } as StorageAdapter;
    const runs = new Map<string, number>();
    // Each record takes the app a little while: the worker polls far more often than that.
    const apply = async (jobs: JobRecord[]) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const job of jobs) runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      return jobs.map(() => null);
    };
    const handler: JobHandler = async (job) => {
      await apply([job]);
    };
    handler.batch = (jobs) => apply(jobs);
    const worker = createWorker(runtimeWith(counted, clock), { 'test.batch': handler });
    await worker.drain({ concurrency: 4, batchSize: 50, leaseMs: 10_000, pollIntervalMs: 1 });

    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: n, dead: 0 });
    expect(ids.map((id) => runs.get(id))).toEqual(Array(n).fill(1));
    // Each suspect run costs about one claim of the free slots (4) and the give-back of the
    // others claimed with it. Before, every poll while one ran claimed a whole batch (up to 50)
    // and gave it back: thousands of claimed rows for 40 jobs.
    expect(claimedRows).toBeLessThanOrEqual(5 * n);
    expect(released).toBeLessThanOrEqual(4 * n);
  });
});

describe('worker – a long crash suspect running alone', () => {
  it('does not keep the worker from claiming work enqueued while it runs', async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const storage = memoryAdapter({ clock });
    const suspect = (await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 'suspect' } })).id;
    for (const dead of ['dead-1', 'dead-2']) {
      expect(await storage.jobs.claim({ worker: dead, limit: 100, leaseMs: 1_000 })).toHaveLength(1);
      offset += 5_000;
    }
    // The suspect runs until the test lets it end (a long import page, a slow app call).
    let finishSuspect!: () => void;
    const suspectMayEnd = new Promise<void>((resolve) => {
      finishSuspect = resolve;
    });
    let suspectStarted!: () => void;
    const suspectRunning = new Promise<void>((resolve) => {
      suspectStarted = resolve;
    });
    const apply = async (jobs: JobRecord[]) => {
      if (jobs.some((job) => job.id === suspect)) {
        suspectStarted();
        await suspectMayEnd;
      }
      return jobs.map(() => null);
    };
    const handler: JobHandler = async (job) => {
      await apply([job]);
    };
    handler.batch = (jobs) => apply(jobs);
    const done: string[] = [];
    let otherDone!: () => void;
    const othersDone = new Promise<void>((resolve) => {
      otherDone = resolve;
    });
    const stop = new AbortController();
    const worker = createWorker(runtimeWith(storage, clock), {
      'test.batch': handler,
      'test.plain': async () => {},
    });
    let others: string[] = [];
    const run = worker.run({
      signal: stop.signal,
      concurrency: 4,
      batchSize: 10,
      leaseMs: 10_000,
      pollIntervalMs: 5,
      onEvent: (event) => {
        if (event.type !== 'completed') return;
        done.push(event.job.id);
        if (others.length > 0 && others.every((id) => done.includes(id))) otherDone();
      },
    });
    await suspectRunning;
    others = [
      (await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 'fresh' } })).id,
      (await storage.jobs.enqueue({ type: 'test.plain', payload: {} })).id,
    ];
    // Both run on the free slots while the suspect still runs (it is let end only afterwards).
    // The 'stalled' timer only ends a failing run: generous, so a loaded machine is not taken for one.
    const outcome = await Promise.race([othersDone.then(() => 'others done'), new Promise((resolve) => setTimeout(() => resolve('stalled'), 10_000))]);
    finishSuspect();
    stop.abort();
    await run;
    expect(outcome).toBe('others done');
    expect(done.includes(suspect)).toBe(true);
    expect(await storage.jobs.counts()).toMatchObject({ pending: 0, running: 0, done: 3 });
  });
});

describe('worker – dead letters retried after an outage, one of which crashes the process', () => {
  it('only the culprit goes back to the dead letters; the retried members of its batch are applied exactly once', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const maxAttempts = 3;
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { n }, maxAttempts })).id);
    const culprit = ids[4] as string;

    // Connec! was down for longer than the retries: every job failed every attempt.
    const outage: JobHandler = async () => {
      throw new Error('Connec! unavailable (503)');
    };
    outage.batch = (jobs) => Promise.resolve(jobs.map(() => new Error('Connec! unavailable (503)')));
    const during = createWorker(runtimeWith(storage, clock), { 'test.batch': outage });
    for (let round = 0; round < maxAttempts; round++) {
      await during.drain({ concurrency: 1, batchSize: 10, pollIntervalMs: 1, backoff: { baseMs: 0, maxMs: 0 } });
    }
    const dead = await during.deadLetters();
    expect(dead.map((d) => d.jobId).sort()).toEqual([...ids].sort());

    // Connec! is back: the on-call engineer retries every dead letter, as the guides say.
    for (const d of dead) expect(await during.retryDeadLetter(d.jobId)).toBe(true);

    const applied = new Map<string, number>();
    let crashes = 0;
    for (let life = 0; life < 30; life++) {
      const proc = processOver(storage);
      const apply = (jobs: JobRecord[]) => {
        // One record runs the process out of memory.
        if (jobs.some((job) => job.id === culprit)) return proc.crash();
        for (const job of jobs) applied.set(job.id, (applied.get(job.id) ?? 0) + 1);
        return Promise.resolve(jobs.map(() => null));
      };
      const handler: JobHandler = async (job) => {
        await apply([job]);
      };
      handler.batch = (jobs) => apply(jobs);
      const worker = createWorker(runtimeWith(proc.storage, clock), { 'test.batch': handler });
      const outcome = await Promise.race([
        worker.drain({ concurrency: 1, batchSize: 10, leaseMs: 1_000, pollIntervalMs: 1, shutdownGraceMs: 10 }),
        proc.died,
      ]);
      if (outcome !== 'crashed') break;
      crashes++;
      now += 5_000;
    }

    const jobs = await Promise.all(ids.map((id) => storage.jobs.get(id)));
    expect(jobs.find((job) => job?.id === culprit)).toMatchObject({ status: 'dead' });
    expect(jobs.filter((job) => job?.id !== culprit).map((job) => job?.status)).toEqual(Array(9).fill('done'));
    expect(ids.filter((id) => id !== culprit).map((id) => applied.get(id))).toEqual(Array(9).fill(1));
    expect((await createWorker(runtimeWith(storage, clock), {}).deadLetters()).map((d) => d.jobId)).toEqual([]);
    expect(crashes).toBe(maxAttempts);
  });
});
