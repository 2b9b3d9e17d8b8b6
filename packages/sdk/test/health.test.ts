// `mno.health()`: the readiness report, through `createMaestrano` with memory storage (and
// storage wrappers that fail, stall or quote a credential). adapter-prisma probes PostgreSQL
// without its tables and read-only (test/health.test.ts there).
import { createMaestrano, JobTypes, memoryAdapter, type StorageAdapter, StorageError, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { silentLogger, testTenant } from './sync/harness.js';

function build(storage: StorageAdapter) {
  return createMaestrano({
    tenants: staticTenants([testTenant()]),
    storage,
    provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
    onLogin: () => new Response('ok'),
    logger: silentLogger,
  });
}

/** `storage` with `operation` (`repo.method`) replaced. */
function withOperation(storage: StorageAdapter, operation: string, replacement: (...args: unknown[]) => Promise<unknown>): StorageAdapter {
  const [repo, method] = operation.split('.') as [keyof StorageAdapter, string];
  const original = storage[repo] as unknown as Record<string, unknown>;
  return { ...storage, [repo]: { ...original, [method]: replacement }, close: () => storage.close() } as StorageAdapter;
}

describe('mno.health()', () => {
  it('reports a reachable storage, the adapter and the marketplaces, and leaves no lock behind', async () => {
    const storage = memoryAdapter();
    const report = await build(storage).health();
    expect(report).toEqual({
      ok: true,
      checkedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      storage: { ok: true, adapter: 'memory', latencyMs: expect.any(Number) },
      tenants: 1,
    });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    // The probe's lock was released: another owner takes it at once.
    const mno = build(storage);
    expect(await storage.locks.acquire(`maestrano-health:${mno.runtime.instanceId}`, 'someone-else', 1_000)).toBe(true);
  });

  it('counts the queue by status with queue: true', async () => {
    const storage = memoryAdapter();
    await storage.jobs.enqueue({ type: JobTypes.syncPoll, payload: {}, tenant: 't', groupId: 'g' });
    await storage.jobs.enqueue({ type: JobTypes.syncPoll, payload: {}, tenant: 't', groupId: 'h' });
    const report = await build(storage).health({ queue: true });
    expect(report.queue).toEqual({ pending: 2, running: 0, done: 0, dead: 0 });
    expect(report.ok).toBe(true);
  });

  it('answers ok: false naming the failed operation, without throwing, when storage refuses', async () => {
    const storage = memoryAdapter();
    const mno = build(storage);
    await storage.close();
    const report = await mno.health();
    expect(report.ok).toBe(false);
    expect(report.storage).toMatchObject({ ok: false, adapter: 'memory', failure: { code: 'storage_error', operation: 'groups.get' } });
    expect(report.storage.failure?.message).toMatch(/closed/);
  });

  it('finds a refused write (a read-only database) at the lock it takes', async () => {
    const storage = withOperation(memoryAdapter(), 'locks.acquire', async () => {
      throw new StorageError('locks.acquire failed: cannot execute INSERT in a read-only transaction', { adapterId: 'memory', operation: 'locks.acquire' });
    });
    const report = await build(storage).health();
    expect(report.storage.failure).toEqual({ code: 'storage_error', operation: 'locks.acquire', message: expect.stringMatching(/read-only/) });
  });

  it('reports a stalled storage as a timeout naming the operation it waited on', async () => {
    const storage = withOperation(memoryAdapter(), 'idMaps.find', () => new Promise(() => {}));
    const report = await build(storage).health({ timeoutMs: 50 });
    expect(report.ok).toBe(false);
    expect(report.storage.failure).toEqual({ code: 'timeout', operation: 'idMaps.find', message: 'storage did not answer within 50 ms' });
    expect(report.storage.latencyMs).toBeGreaterThanOrEqual(40);
  });

  it('stops waiting when its signal aborts', async () => {
    const storage = withOperation(memoryAdapter(), 'groups.get', () => new Promise(() => {}));
    const controller = new AbortController();
    const pending = build(storage).health({ signal: controller.signal, timeoutMs: 60_000 });
    setTimeout(() => controller.abort(), 20);
    expect((await pending).storage.failure).toMatchObject({ code: 'aborted' });
    const already = await build(storage).health({ signal: AbortSignal.abort() });
    expect(already.storage.failure).toMatchObject({ code: 'aborted' });
  });

  it('never hands out a credential the failure quotes', async () => {
    const storage = withOperation(memoryAdapter(), 'users.get', async () => {
      throw new Error('connect ECONNREFUSED postgresql://app:s3cr3t-pw@db.internal:5432/crm');
    });
    const report = await build(storage).health();
    expect(report.storage.failure).toMatchObject({ code: 'error', operation: 'users.get' });
    expect(JSON.stringify(report)).not.toContain('s3cr3t-pw');
    expect(report.storage.failure?.message).toContain('db.internal');
  });

  it('refuses a timeout that is not 1 to 60000 ms with a RangeError', async () => {
    const mno = build(memoryAdapter());
    for (const timeoutMs of [0, -1, Number.NaN, 60_001, '5000' as unknown as number]) {
      await expect(mno.health({ timeoutMs })).rejects.toThrow(RangeError);
    }
  });
});
