/**
 * A worker process stopped with SIGTERM in the middle of its batches (PostgreSQL inbox, the
 * sandbox): `run()` resolves within the grace period, the process exits by itself after closing
 * its storage, the jobs it was running are given back (not left leased), and a second worker
 * finishes with every record applied exactly once.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, TENANT, waitFor } from './harness.js';

let h: SyncHarness;
beforeAll(async () => {
  h = await startSyncHarness({ storage: 'postgres' });
}, 120_000);
afterAll(async () => {
  await h?.close();
});

describe('worker process SIGTERM (PostgreSQL inbox)', () => {
  it('exits by itself within the grace period; running jobs are released; nothing lost or applied twice', async () => {
    const n = 120;
    const { groupId } = await h.provisionGroup('Term Co');
    await h.drain();
    for (let start = 0; start < n; start += 10) {
      await Promise.all(Array.from({ length: 10 }, (_v, i) => h.sandbox.admin.createRecord(groupId, 'people', { first_name: `T${start + i}`, last_name: 'Term' })));
    }
    await h.sandbox.admin.waitForDeliveries(60_000);
    const before = await h.db.writeCount('create');
    // Leases of the default length: with the harness's 3 s, a renewal held up for a second and a
    // half on a loaded machine gave a whole batch up as lost, left `running` for its lease to
    // lapse (by design: another worker may have claimed it), which is not what this test is about.
    const child = await h.spawnWorker({ concurrency: 4, createDelayMs: 40, leaseMs: 30_000 });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor('progress', async () => (await h.db.writeCount('create')) - before >= 10, 60_000);
    const sent = Date.now();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000))]);
    expect(code).toBe(0);
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(out).toContain('worker stopped');
    // Nothing left leased by the stopped worker.
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).running, out).toBe(0);
    await h.drain();
    const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId, entity: 'contacts' }, { limit: n + 10 });
    const created = (await h.db.writeCount('create')) - before;
    expect({ maps: maps.length, created, dup: await h.db.duplicateCreates() }).toEqual({ maps: n, created: n, dup: 0 });
  }, 180_000);
});
