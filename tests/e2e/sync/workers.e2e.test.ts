/**
 * Many workers, many processes: the inbox in PostgreSQL drained by separate worker processes
 * (the same app and connector), including one killed with SIGKILL in the middle of its batch.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncHarness, startSyncHarness, stopChild, TENANT, waitFor } from './harness.js';

let h: SyncHarness;
beforeAll(async () => {
  h = await startSyncHarness({ storage: 'postgres' });
}, 120_000);
afterAll(async () => {
  await h?.close();
});

/** Creates `n` people in Connec! as another party; the sandbox notifies the app, which stores one job per record. */
async function notifyPeople(groupId: string, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < n; start += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, n - start) }, (_v, i) =>
        h.sandbox.admin.createRecord(groupId, 'people', { first_name: `${tag}${start + i}`, last_name: tag }),
      ),
    );
    ids.push(...batch.map((r) => String(r.id)));
  }
  await h.sandbox.admin.waitForDeliveries(30_000);
  return ids;
}

async function inboxIdle(): Promise<boolean> {
  const counts = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
  return counts.pending === 0 && counts.running === 0;
}

describe('workers in separate processes (PostgreSQL inbox)', () => {
  it('two worker processes drain one inbox; no record is applied twice', async () => {
    const { groupId } = await h.provisionGroup('Two Workers Co');
    await h.drain();
    const ids = await notifyPeople(groupId, 200, 'Two');
    const queued = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
    expect(queued.pending).toBe(200);
    const before = await h.db.writeCount('create');

    // Both processes take part whatever the scheduler does: each holds at most 4 batches of 10
    // (with the default 100, a worker's first two claims can take all 200 records before the
    // other's first claim), and each one's first create waits until both have created one (a
    // barrier: a common SIGUSR2 alone does not make them claim together). Neither is killed:
    // leases of the default length, so that a worker descheduled for a few seconds on a loaded
    // machine keeps its jobs (a 3 s lease would lapse and hand them to the other, which then
    // creates again).
    const a = await h.spawnWorker({ concurrency: 4, paused: true, leaseMs: 30_000, batchSize: 10, createBarrierWriters: 2 });
    const b = await h.spawnWorker({ concurrency: 4, paused: true, leaseMs: 30_000, batchSize: 10, createBarrierWriters: 2 });
    // Both still waiting for the signal (a paused worker once exited by itself after 10 s).
    expect([a.exitCode, b.exitCode]).toEqual([null, null]);
    a.kill('SIGUSR2');
    b.kill('SIGUSR2');
    await waitFor('the inbox to drain', inboxIdle, 120_000);
    await Promise.all([stopChild(a), stopChild(b)]);

    expect(await h.db.writeCount('create')).toBe(before + 200);
    expect(await h.db.duplicateCreates()).toBe(0);
    // No record went through two workers: the app's idempotency did not have to absorb a second create.
    expect(await h.db.repeatedCreates()).toBe(0);
    const maps = await h.storage.idMaps.list({ tenant: TENANT, groupId, entity: 'contacts' }, { limit: 1000 });
    expect(maps.map((m) => m.connecId).sort()).toEqual([...ids].sort());
    expect(new Set(maps.map((m) => m.localId)).size).toBe(200);
    const writers = await h.db.writerPids();
    expect(writers).toContain(a.pid);
    expect(writers).toContain(b.pid);
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).dead).toBe(0);
    // every record carries our id in Connec! (link-back done once per record, by whichever worker)
    const remote = await h.sandbox.admin.listRecords(groupId, 'people', { externalIds: true, limit: 1000 });
    const apiId = h.sandbox.credentials.marketplaces[0]?.apiId;
    expect(remote.filter((r) => Array.isArray(r.id) && r.id.some((e) => (e as { provider?: string }).provider === apiId))).toHaveLength(200);
  }, 300_000);

  it('a worker killed with SIGKILL mid-batch loses nothing; a restarted worker finishes with no duplicate', async () => {
    const { groupId } = await h.provisionGroup('Killed Worker Co');
    await h.drain();
    const ids = await notifyPeople(groupId, 300, 'Kill');
    const scope = { tenant: TENANT, groupId, entity: 'contacts' };
    const before = await h.db.writeCount('create');

    // 25 ms per create (8 at a time), and the victim's creates hang (after committing) once it
    // has made 40: the kill lands mid-batch however late this process gets to send it (the delay
    // alone left ~800 ms of work at the threshold, which a loaded machine can spend between the
    // check and the kill).
    const victim = await h.spawnWorker({ concurrency: 8, createDelayMs: 25, createStallAfter: 40 });
    await waitFor('the first worker to make progress', async () => (await h.db.writeCount('create')) - before >= 40, 120_000);
    victim.kill('SIGKILL');
    await new Promise<void>((resolve) => (victim.exitCode !== null || victim.signalCode !== null ? resolve() : victim.once('exit', () => resolve())));
    expect(victim.signalCode).toBe('SIGKILL');
    const doneByVictim = (await h.db.writeCount('create')) - before;
    expect(doneByVictim).toBeLessThan(300);

    const survivor = await h.spawnWorker({ concurrency: 4 });
    await waitFor('the inbox to drain after the restart', inboxIdle, 120_000);
    await stopChild(survivor);

    expect(await h.db.writeCount('create')).toBe(before + 300);
    expect(await h.db.count('app_contacts')).toBe(500);
    expect(await h.db.duplicateCreates()).toBe(0);
    const maps = await h.storage.idMaps.list(scope, { limit: 1000 });
    expect(maps.map((m) => m.connecId).sort()).toEqual([...ids].sort());
    expect(maps.every((m) => m.localId !== null && m.lastAppliedAt !== null)).toBe(true);
    const counts = await h.storage.jobs.counts({ type: JobTypes.connecRecord });
    expect(counts.dead).toBe(0);
    expect(await h.db.writerPids()).toContain(survivor.pid);
  }, 300_000);
});
