import { describe, expect, it } from 'vitest';
import { JobDeferral, type JobHandler, JobTypes, type Logger, PermanentJobError, type Runtime } from '../../src/core/types.js';
import { StorageError } from '../../src/errors/index.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { memoryAdapter } from '../../src/storage/memory.js';
import { backoffDelay, createWorker } from '../../src/worker/index.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, clock: () => Date = () => new Date()): Runtime {
  return {
    tenants: { get: () => undefined, list: () => [] },
    storage,
    logger: silent,
    clock,
    instanceId: 'test-instance',
    fetch: globalThis.fetch,
  };
}

const instant = { baseMs: 0, maxMs: 0 };

describe('worker', () => {
  it('worker.drain – runs every due job once and marks it done in storage', async () => {
    const storage = memoryAdapter();
    const seen: string[] = [];
    const worker = createWorker(runtimeWith(storage), {
      'test.echo': async (job) => {
        seen.push(String((job.payload as { n: number }).n));
      },
    });
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push((await storage.jobs.enqueue({ type: 'test.echo', payload: { n } })).id);

    const stats = await worker.drain({ concurrency: 3, pollIntervalMs: 5 });

    expect(stats.completed).toBe(10);
    expect(seen.sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const id of ids) expect((await storage.jobs.get(id))?.status).toBe('done');
    expect(await storage.jobs.counts()).toMatchObject({ done: 10, pending: 0, running: 0, dead: 0 });
  });

  it('worker – a failing job is retried, then dead-lettered with its last error', async () => {
    const storage = memoryAdapter();
    let calls = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.fail': async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.fail', payload: null, maxAttempts: 3 });

    const stats = await worker.drain({ pollIntervalMs: 5, backoff: instant });

    expect(calls).toBe(3);
    expect(stats).toMatchObject({ retried: 2, deadLettered: 1, completed: 0 });
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('dead');
    expect(job?.attempts).toBe(3);
    expect(job?.lastError?.message).toBe('boom 3');
    expect((await storage.jobs.listDead()).map((j) => j.id)).toEqual([id]);
  });

  it('worker – PermanentJobError dead-letters the job on its first attempt, with the cause as its error; retryDeadLetter runs it again', async () => {
    const storage = memoryAdapter();
    let calls = 0;
    let fixed = false;
    const worker = createWorker(runtimeWith(storage), {
      'test.permanent': async () => {
        calls++;
        if (!fixed) throw new PermanentJobError('plan.priceCents: must be positive; fix the plan', { cause: new StorageError('cause', { adapterId: 'memory', operation: 'ledger.get' }) });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.permanent', payload: null, maxAttempts: 10 });

    const stats = await worker.drain({ pollIntervalMs: 5, backoff: instant });

    expect(calls).toBe(1);
    expect(stats).toMatchObject({ retried: 0, deadLettered: 1, completed: 0 });
    expect(await storage.jobs.get(id)).toMatchObject({
      status: 'dead',
      attempts: 1,
      lastError: { message: 'plan.priceCents: must be positive; fix the plan', code: 'storage_error' },
    });
    fixed = true;
    expect(await worker.retryDeadLetter(id)).toBe(true);
    await worker.drain({ pollIntervalMs: 5, backoff: instant });
    expect(calls).toBe(2);
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it('worker.deadLetters lists the dead jobs of every type it runs (billing, company set-up), and retryDeadLetter runs one again', async () => {
    const storage = memoryAdapter();
    let planServiceUp = false;
    const worker = createWorker(runtimeWith(storage), {
      [JobTypes.billingSubscribe]: async () => {
        if (!planServiceUp) throw new Error('plan service down');
      },
      'test.other': async () => {
        throw new Error('other failure');
      },
    });
    const billing = await storage.jobs.enqueue({ type: JobTypes.billingSubscribe, tenant: 't1', groupId: 'cld-1', payload: { groupId: 'cld-1' }, maxAttempts: 2 });
    await storage.jobs.enqueue({ type: 'test.other', tenant: 't2', groupId: 'cld-2', payload: null, maxAttempts: 1 });
    await worker.drain({ pollIntervalMs: 5, backoff: instant });

    const dead = await worker.deadLetters();
    expect(dead.map((d) => d.type).sort()).toEqual([JobTypes.billingSubscribe, 'test.other']);
    expect(dead.find((d) => d.type === JobTypes.billingSubscribe)).toMatchObject({
      jobId: billing.id,
      tenant: 't1',
      groupId: 'cld-1',
      entity: null,
      connecId: null,
      attempts: 2,
      error: { message: 'plan service down' },
    });
    expect((await worker.deadLetters({ tenant: 't2' })).map((d) => d.type)).toEqual(['test.other']);
    expect((await worker.deadLetters({ type: JobTypes.billingSubscribe })).map((d) => d.jobId)).toEqual([billing.id]);

    planServiceUp = true;
    expect(await worker.retryDeadLetter(billing.id)).toBe(true);
    await worker.drain({ pollIntervalMs: 5, backoff: instant });
    expect((await storage.jobs.get(billing.id))?.status).toBe('done');
    expect((await worker.deadLetters()).map((d) => d.type)).toEqual(['test.other']);
    expect(await worker.retryDeadLetter('no-such-job')).toBe(false);
  });

  it('worker – JobDeferral parks the job until its wait key is woken', async () => {
    const storage = memoryAdapter();
    let ready = false;
    let runs = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.needs-ref': async () => {
        runs++;
        if (!ready) throw new JobDeferral('organization o77 not linked yet', { waitKey: 'ref:o77', retryInMs: 3_600_000 });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.needs-ref', payload: null });

    const first = await worker.drain({ pollIntervalMs: 5 });
    expect(first.deferred).toBe(1);
    const parked = await storage.jobs.get(id);
    expect(parked).toMatchObject({ status: 'pending', waitKey: 'ref:o77' });
    expect(parked!.runAt.getTime()).toBeGreaterThan(Date.now() + 3_000_000);

    // Nothing is due: a second drain does not run it.
    await worker.drain({ pollIntervalMs: 5 });
    expect(runs).toBe(1);

    ready = true;
    expect(await storage.jobs.wake('ref:o77')).toBe(1);
    const second = await worker.drain({ pollIntervalMs: 5 });
    expect(second.completed).toBe(1);
    expect(runs).toBe(2);
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it('worker – company.created fans out to billing.subscribe and sync.import exactly once per group', async () => {
    const storage = memoryAdapter();
    const runs: string[] = [];
    const record =
      (name: string): JobHandler =>
      async (job) => {
        runs.push(`${name}:${job.tenant}:${job.groupId}`);
      };
    const worker = createWorker(runtimeWith(storage), {
      [JobTypes.billingSubscribe]: record('billing'),
      [JobTypes.syncImport]: record('import'),
    });
    const payload = { tenant: 't1', groupId: 'cld-1', companyId: 'c-1', group: {} };
    await storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: 't1', groupId: 'cld-1', payload, dedupeKey: 'company.created:t1:cld-1' });
    // A duplicate event (same dedupe key) and a redelivered one without a key.
    const dup = await storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: 't1', groupId: 'cld-1', payload, dedupeKey: 'company.created:t1:cld-1' });
    expect(dup.created).toBe(false);
    await storage.jobs.enqueue({ type: JobTypes.companyCreated, tenant: 't1', groupId: 'cld-1', payload });

    await worker.drain({ pollIntervalMs: 5 });

    expect(runs.sort()).toEqual(['billing:t1:cld-1', 'import:t1:cld-1']);
  });

  it('worker – two workers never run jobs with one ordering key concurrently, and run each once', async () => {
    const storage = memoryAdapter();
    const active = new Map<string, number>();
    let maxActivePerKey = 0;
    const done: string[] = [];
    const handler: JobHandler = async (job) => {
      const key = job.orderingKey ?? '';
      active.set(key, (active.get(key) ?? 0) + 1);
      maxActivePerKey = Math.max(maxActivePerKey, active.get(key) ?? 0);
      await new Promise((r) => setTimeout(r, 2));
      active.set(key, (active.get(key) ?? 1) - 1);
      done.push(job.id);
    };
    const runtime = runtimeWith(storage);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push((await storage.jobs.enqueue({ type: 'test.ordered', payload: { i }, orderingKey: `rec-${i % 4}` })).id);
    }
    const a = createWorker(runtime, { 'test.ordered': handler });
    const b = createWorker(runtime, { 'test.ordered': handler });

    await Promise.all([a.drain({ concurrency: 4, pollIntervalMs: 2 }), b.drain({ concurrency: 4, pollIntervalMs: 2 })]);

    expect(maxActivePerKey).toBe(1);
    expect(done.sort()).toEqual([...ids].sort());
    expect(new Set(done).size).toBe(40);
  });

  it('worker – a job whose worker died is redelivered after its lease expires', async () => {
    let now = new Date('2026-01-01T00:00:00Z').getTime();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const { id } = await storage.jobs.enqueue({ type: 'test.once', payload: null });
    // A worker claims it and dies without heartbeating.
    const [claimed] = await storage.jobs.claim({ worker: 'crashed', limit: 1, leaseMs: 30_000 });
    expect(claimed?.id).toBe(id);

    const ran: number[] = [];
    const worker = createWorker(runtimeWith(storage, clock), {
      'test.once': async (job) => {
        ran.push(job.attempts);
      },
    });
    expect((await worker.drain({ pollIntervalMs: 5 })).claimed).toBe(0);

    now += 31_000;
    const stats = await worker.drain({ pollIntervalMs: 5 });
    expect(stats.completed).toBe(1);
    expect(ran).toEqual([2]);
    expect((await storage.jobs.get(id))?.status).toBe('done');
    // The crashed worker's late completion changes nothing.
    expect(await storage.jobs.complete(id, 'crashed')).toBe(false);
  });

  it('worker – a job whose workers keep dying is dead-lettered once redelivered past maxAttempts', async () => {
    let now = new Date('2026-01-01T00:00:00Z').getTime();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const { id } = await storage.jobs.enqueue({ type: 'test.poison', payload: null, maxAttempts: 2 });
    // Two workers claim it in turn and die without heartbeating.
    for (const w of ['crash-1', 'crash-2']) {
      expect(await storage.jobs.claim({ worker: w, limit: 1, leaseMs: 1_000 })).toHaveLength(1);
      now += 2_000;
    }
    let ran = 0;
    const worker = createWorker(runtimeWith(storage, clock), {
      'test.poison': async () => {
        ran++;
      },
    });
    const stats = await worker.drain({ pollIntervalMs: 5 });
    expect(ran).toBe(0);
    expect(stats.deadLettered).toBe(1);
    const job = await storage.jobs.get(id);
    expect(job?.status).toBe('dead');
    expect(job?.lastError?.message).toMatch(/earlier attempts never finished/);
  });

  it('worker – keeps going through a storage outage while claiming', async () => {
    const storage = memoryAdapter();
    let failures = 2;
    const flaky: StorageAdapter = {
      ...storage,
      jobs: {
        ...storage.jobs,
        claim: async (options) => {
          if (failures > 0) {
            failures--;
            throw new StorageError('database unreachable', { adapterId: 'memory', operation: 'jobs.claim' });
          }
          return storage.jobs.claim(options);
        },
      },
    };
    const events: string[] = [];
    const worker = createWorker(runtimeWith(flaky), { 'test.x': async () => {} });
    const { id } = await storage.jobs.enqueue({ type: 'test.x', payload: null });

    const stats = await worker.drain({ pollIntervalMs: 1, onEvent: (e) => events.push(e.type) });

    expect(events.filter((e) => e === 'storage_unavailable')).toHaveLength(2);
    expect(stats.completed).toBe(1);
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it('worker.run – stops on abort and lets the in-flight job finish', async () => {
    const storage = memoryAdapter();
    const controller = new AbortController();
    let finished = false;
    const worker = createWorker(runtimeWith(storage), {
      'test.slow': async () => {
        controller.abort();
        await new Promise((r) => setTimeout(r, 30));
        finished = true;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.slow', payload: null });

    const stats = await worker.run({ signal: controller.signal, pollIntervalMs: 5 });

    expect(finished).toBe(true);
    expect(stats.completed).toBe(1);
    expect((await storage.jobs.get(id))?.status).toBe('done');
  });

  it('worker – an unknown job type is not claimed by a worker without its handler', async () => {
    const storage = memoryAdapter();
    const worker = createWorker(runtimeWith(storage), { 'test.known': async () => {} });
    const { id } = await storage.jobs.enqueue({ type: 'test.unknown', payload: null });
    await worker.drain({ pollIntervalMs: 5 });
    expect((await storage.jobs.get(id))?.status).toBe('pending');
  });

  it('backoffDelay – grows exponentially, is capped and jittered within ±20 %', () => {
    const mid = () => 0.5;
    expect(backoffDelay(1, { baseMs: 1000, maxMs: 60_000 }, mid)).toBe(1000);
    expect(backoffDelay(4, { baseMs: 1000, maxMs: 60_000 }, mid)).toBe(8000);
    expect(backoffDelay(20, { baseMs: 1000, maxMs: 60_000 }, mid)).toBe(60_000);
    expect(backoffDelay(2, { baseMs: 1000 }, () => 0)).toBe(1600);
    expect(backoffDelay(2, { baseMs: 1000 }, () => 0.999)).toBe(2399);
  });

  it('worker – a handler with a batch form gets the claimed jobs together; done ones complete, a deferral waits, a failure retries', async () => {
    const storage = memoryAdapter();
    const batches: number[][] = [];
    const singles: number[] = [];
    const handler: JobHandler = async (job) => {
      singles.push((job.payload as { n: number }).n);
    };
    handler.batch = async (jobs) => {
      batches.push(jobs.map((j) => (j.payload as { n: number }).n));
      return jobs.map((job) => {
        const n = (job.payload as { n: number }).n;
        if (n === 3 && job.attempts === 1) return new JobDeferral('waiting for 2', { waitKey: 'ref:2', retryInMs: 60_000 });
        if (n === 4 && job.attempts === 1) return new Error('flaky');
        return null;
      });
    };
    const worker = createWorker(runtimeWith(storage), { 'test.batch': handler });
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) ids.push((await storage.jobs.enqueue({ type: 'test.batch', payload: { n } })).id);

    const first = await worker.run({ concurrency: 12, pollIntervalMs: 5, backoff: instant, stopWhenIdle: true });

    expect(batches[0]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(first).toMatchObject({ claimed: 7, completed: 5, deferred: 1, retried: 1 });
    // The failed job came back alone: run through the single handler.
    expect(singles).toEqual([4]);
    const parked = await storage.jobs.get(ids[3] as string);
    expect(parked).toMatchObject({ status: 'pending', waitKey: 'ref:2', attempts: 1 });
    for (const n of [0, 1, 2, 4, 5]) expect((await storage.jobs.get(ids[n] as string))?.status).toBe('done');

    expect(await storage.jobs.wake('ref:2')).toBe(1);
    const second = await worker.drain({ concurrency: 8, pollIntervalMs: 5 });
    expect(second.completed).toBe(1);
    expect(await storage.jobs.counts()).toMatchObject({ done: 6, pending: 0, running: 0, dead: 0 });
  });

  it('worker – fills batches up to batchSize beyond a small concurrency (a batch is one slot), and never hands over a larger one', async () => {
    const storage = memoryAdapter();
    const sizes: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const handler: JobHandler = async () => {
      sizes.push(1);
    };
    handler.batch = async (jobs) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      sizes.push(jobs.length);
      await new Promise((r) => setTimeout(r, 10));
      running--;
      return jobs.map(() => null);
    };
    for (let n = 0; n < 23; n++) await storage.jobs.enqueue({ type: 'test.batch', payload: { n } });
    const worker = createWorker(runtimeWith(storage), { 'test.batch': handler });

    const stats = await worker.drain({ concurrency: 2, batchSize: 10, pollIntervalMs: 5 });

    expect(stats.completed).toBe(23);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(23);
    expect(Math.max(...sizes)).toBe(10);
    // Two slots: at most two batches at once, and the first two were full.
    expect(maxRunning).toBeLessThanOrEqual(2);
    expect(sizes.slice(0, 2)).toEqual([10, 10]);
    expect(await storage.jobs.counts()).toMatchObject({ done: 23, pending: 0, running: 0 });
  });

  it('worker – a batch renews its leases with one heartbeatMany; a job taken over meanwhile is lease_lost and not completed by the old owner', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const calls: number[] = [];
    const heartbeatMany = storage.jobs.heartbeatMany.bind(storage.jobs);
    storage.jobs.heartbeatMany = async (ids, worker, leaseMs) => {
      calls.push(ids.length);
      return heartbeatMany(ids, worker, leaseMs);
    };
    const events: string[] = [];
    let first = true;
    let stolen = '';
    const handler: JobHandler = async () => {};
    handler.batch = async (jobs, ctx) => {
      if (first) {
        first = false;
        // Every lease expires and another worker takes one job over.
        now += 60_000;
        const [taken] = await storage.jobs.claim({ worker: 'other', limit: 1, leaseMs: 60_000 });
        stolen = taken?.id ?? '';
        expect(await ctx.heartbeat()).toBe(false);
      }
      return jobs.map(() => null);
    };
    for (let n = 0; n < 3; n++) await storage.jobs.enqueue({ type: 'test.batch', payload: { n } });
    const worker = createWorker(runtimeWith(storage, clock), { 'test.batch': handler });

    const stats = await worker.drain({ concurrency: 1, leaseMs: 30_000, pollIntervalMs: 5, onEvent: (e) => events.push(e.type) });

    expect(calls).toEqual([3]);
    expect(stolen).not.toBe('');
    expect(events.filter((e) => e === 'lease_lost')).toHaveLength(1);
    expect(stats).toMatchObject({ completed: 2, lost: 1 });
    expect(await storage.jobs.get(stolen)).toMatchObject({ status: 'running', leaseOwner: 'other' });
  });

  it('worker – a rejected batch fails every job of it, and a job past its attempts is dead-lettered without running', async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const ran: number[] = [];
    const handler: JobHandler = async () => {
      throw new Error('single path not expected');
    };
    handler.batch = async (jobs) => {
      ran.push(...jobs.map((j) => (j.payload as { n: number }).n));
      throw new StorageError('database down', { adapterId: 'memory', operation: 'idMaps.insertMany' });
    };
    const poison = await storage.jobs.enqueue({ type: 'test.batch', payload: { n: 0 }, maxAttempts: 1 });
    // A worker died holding the poison job: claimed, never settled, lease expired.
    await storage.jobs.claim({ worker: 'dead-worker', limit: 1, leaseMs: 1_000 });
    for (let n = 1; n <= 3; n++) await storage.jobs.enqueue({ type: 'test.batch', payload: { n }, maxAttempts: 5 });
    now += 5_000;
    const lateWorker = createWorker(runtimeWith(storage, clock), { 'test.batch': handler });

    const stats = await lateWorker.run({ concurrency: 8, pollIntervalMs: 5, backoff: { baseMs: 3_600_000 }, stopWhenIdle: true });

    expect(ran.sort()).toEqual([1, 2, 3]);
    expect(stats).toMatchObject({ deadLettered: 1, retried: 3, completed: 0 });
    expect((await storage.jobs.get(poison.id))?.status).toBe('dead');
    expect(await storage.jobs.counts()).toMatchObject({ pending: 3, dead: 1, done: 0, running: 0 });
  });
});
