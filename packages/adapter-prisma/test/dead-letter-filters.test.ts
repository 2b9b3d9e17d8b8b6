/**
 * `worker.deadLetters(filter)` on PostgreSQL and SQLite: a filter no job can match (NUL, an
 * unpaired surrogate, a type that is not a string) is the caller's `ConfigError`; the largest
 * limit the filter accepts is read, not refused by the database.
 */
import { ConfigError, createWorker, type Runtime, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { pgUnavailableReason, scenarioAdapters } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const adapters = scenarioAdapters();

async function check(storage: StorageAdapter): Promise<void> {
  const runtime: Runtime = { tenants: { get: () => undefined, list: () => [] }, storage, logger: silent, clock: () => new Date(), instanceId: 'test', fetch: globalThis.fetch };
  const worker = createWorker(runtime, { 'test.job': async () => {} });
  const { id } = await storage.jobs.enqueue({ type: 'test.job', tenant: 't', groupId: 'g', payload: {}, maxAttempts: 1 });
  const [claimed] = await storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 30_000, types: ['test.job'] });
  expect(claimed?.id).toBe(id);
  await storage.jobs.fail(id, 'w', { error: { message: 'boom' }, retryAt: new Date() });
  for (const filter of [{ tenant: 't\u0000' }, { groupId: 'g\ud800' }, { type: 'test.job\udc00' }, { type: 7 as unknown as string }, { limit: 0 }, { limit: 1.5 }]) {
    await expect(worker.deadLetters(filter)).rejects.toThrow(ConfigError);
  }
  for (const limit of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
    expect((await worker.deadLetters({ tenant: 't', groupId: 'g', limit })).map((d) => d.jobId)).toEqual([id]);
    expect((await worker.deadLetters({ type: 'test.job', limit })).map((d) => d.jobId)).toEqual([id]);
  }
}

describe('dead-letter filters on adapter-prisma', () => {
  it('SQLite', async () => {
    await check(await adapters.sqlite());
  });
  it.skipIf(unavailable !== null)('PostgreSQL', async () => {
    await check(await adapters.postgres());
  });
});
