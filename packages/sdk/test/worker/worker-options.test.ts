// Worker run options a process reads from its environment (`Number('four')` is NaN), and the
// wait a server asks for with Retry-After: both decide when jobs run, and neither may make a
// worker stall silently or hammer a rate-limited Connec!.
import { createSyncModule, JobDeferral, memoryAdapter, RateLimitError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import type { Logger, Runtime } from '../../src/core/types.js';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { createWorker, type WorkerRunOptions } from '../../src/worker/index.js';
import { FakeConnec } from '../sync/fake-connec.js';
import { buildConnector, GROUP, LocalApp, ORG_UID, provisionGroup, TENANT, testRuntime } from '../sync/harness.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function runtimeWith(storage: StorageAdapter, clock: () => Date = () => new Date()): Runtime {
  return { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock, instanceId: 'test-instance', fetch: globalThis.fetch };
}

const rateLimited = (retryAfterMs: number) =>
  new RateLimitError('Too Many Requests', { service: 'connec', status: 429, method: 'GET', url: '/cld-1/people', retryAfterMs });

describe('worker.run options', () => {
  it.each<[keyof WorkerRunOptions, unknown]>([
    ['concurrency', Number('four')],
    ['concurrency', Number.POSITIVE_INFINITY],
    ['concurrency', -1],
    ['concurrency', 1.5],
    ['batchSize', Number.NaN],
    ['leaseMs', Number.NaN],
    ['pollIntervalMs', '250'],
    ['shutdownGraceMs', -5],
    ['leaseMs', 3_000_000_000],
  ])('%s = %s: ConfigError naming it, and no job is claimed', async (name, value) => {
    await refusedOption(name, value);
  });

  it.each<[string, string, unknown]>([
    ['backoff.maxMs', "Number('5min')", { maxMs: Number('5min') }],
    ['backoff.baseMs', '-1', { baseMs: -1 }],
    ['backoff.maxMs', 'Infinity', { maxMs: Number.POSITIVE_INFINITY }],
    ['backoff', '300000 (not an object)', 300_000],
  ])('%s = %s: ConfigError naming it, and no job is claimed', async (path, _label, backoff) => {
    await refusedOption('backoff', backoff, path);
  });

  async function refusedOption(name: keyof WorkerRunOptions, value: unknown, path: string = name) {
    const storage = memoryAdapter();
    let ran = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.job': async () => {
        ran++;
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const error = await worker.drain({ [name]: value } as WorkerRunOptions).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ConfigError', issues: [{ path }] });
    expect((error as Error).message).toMatch(new RegExp(`Invalid worker options: ${path.replace('.', '\\.')} must be a(n object| (whole )?number)`));
    expect(ran).toBe(0);
    expect(await storage.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
  }

  it('in-range values keep their documented meaning (concurrency 0 runs one at a time)', async () => {
    const storage = memoryAdapter();
    let ran = 0;
    const worker = createWorker(runtimeWith(storage), {
      'test.job': async () => {
        ran++;
      },
    });
    await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const stats = await worker.drain({ concurrency: 0, leaseMs: 600, pollIntervalMs: 0 });
    expect(stats.completed).toBe(1);
    expect(ran).toBe(1);
  });

  it('a misspelt option is reported as ignored (a warning naming it), not silently run with the default; methods of the app are not', async () => {
    const storage = memoryAdapter();
    const warnings: [string, Record<string, unknown> | undefined][] = [];
    const logger: Logger = { ...silent, warn: (message, fields) => warnings.push([message, fields]) };
    const worker = createWorker({ ...runtimeWith(storage), logger }, { 'test.job': async () => {} });
    await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const options = { concurency: 8, pollIntervalMs: 1, tally() {} };
    const stats = await worker.drain(options as WorkerRunOptions);
    expect(stats.completed).toBe(1);
    expect(warnings).toEqual([['worker: unknown run options ignored', expect.objectContaining({ options: 'concurency' })]]);
    await worker.drain({ concurrency: 2, pollIntervalMs: 1 });
    expect(warnings).toHaveLength(1);
  });
});

describe('Retry-After', () => {
  it('a failure asking for a longer wait than the backoff (in its cause chain) is not retried sooner', async () => {
    const storage = memoryAdapter();
    const now = new Date();
    const worker = createWorker(runtimeWith(storage, () => now), {
      'test.job': async () => {
        throw new Error('the import failed', { cause: new Error('page 3', { cause: rateLimited(300_000) }) });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const stats = await worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 1_000, maxMs: 5_000 } });
    expect(stats.retried).toBe(1);
    const job = await storage.jobs.get(id);
    expect(job).toMatchObject({ status: 'pending', attempts: 1 });
    expect(job?.runAt.getTime()).toBe(now.getTime() + 300_000);
  });

  it('a Retry-After beyond any storable date waits 24 h at most: backed off, and dead-lettered on the last attempt', async () => {
    for (const maxAttempts of [1, 8]) {
      const storage = memoryAdapter();
      const now = new Date();
      const worker = createWorker(runtimeWith(storage, () => now), {
        'test.job': async () => {
          throw rateLimited(999_999_999_999_000);
        },
      });
      const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null, maxAttempts });
      await worker.drain({ pollIntervalMs: 1 });
      const job = await storage.jobs.get(id);
      expect(job).toMatchObject({ status: maxAttempts === 1 ? 'dead' : 'pending', attempts: 1, leaseOwner: null });
      expect(job?.lastError?.message).toMatch(/Too Many Requests/);
      if (maxAttempts > 1) expect(job?.runAt.getTime()).toBe(now.getTime() + 24 * 3_600_000);
    }
  });

  it('a deferral asking for a wait beyond any storable date waits 24 h at most', async () => {
    const storage = memoryAdapter();
    const now = new Date();
    const worker = createWorker(runtimeWith(storage, () => now), {
      'test.job': async () => {
        throw new JobDeferral('not yet', { retryInMs: Number.MAX_SAFE_INTEGER });
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    const stats = await worker.drain({ pollIntervalMs: 1 });
    expect(stats.deferred).toBe(1);
    expect((await storage.jobs.get(id))?.runAt.getTime()).toBe(now.getTime() + 24 * 3_600_000);
  });

  it('a shorter Retry-After than the backoff keeps the backoff', async () => {
    const storage = memoryAdapter();
    const now = new Date();
    const worker = createWorker(runtimeWith(storage, () => now), {
      'test.job': async () => {
        throw rateLimited(10);
      },
    });
    const { id } = await storage.jobs.enqueue({ type: 'test.job', payload: null });
    await worker.drain({ pollIntervalMs: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    const job = await storage.jobs.get(id);
    expect(job?.runAt.getTime()).toBeGreaterThanOrEqual(now.getTime() + 30_000);
  });

  it('an import refused by Connec! with 429 Retry-After: 300 is not attempted again for 300 s', async () => {
    const connec = new FakeConnec(ORG_UID);
    connec.listPage = async () => {
      throw rateLimited(300_000);
    };
    const storage = memoryAdapter();
    const runtime = testRuntime(storage);
    const sync = createSyncModule(runtime, { connector: buildConnector(new LocalApp()), sync: { connecPort: () => connec } });
    await provisionGroup(storage, GROUP, {});
    const { jobId } = await sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    const before = Date.now();
    await createWorker(runtime, sync.jobs ?? {}).drain({ pollIntervalMs: 1, concurrency: 1 });
    const job = await storage.jobs.get(jobId);
    expect(job).toMatchObject({ status: 'pending', attempts: 1 });
    expect(job?.lastError?.message).toMatch(/Too Many Requests/);
    expect((job?.runAt.getTime() ?? 0) - before).toBeGreaterThanOrEqual(300_000);
  });
});
