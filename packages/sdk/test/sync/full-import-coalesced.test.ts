/**
 * `enqueueImport({ full: true })` asked again while the full import queued earlier has not
 * started yet returns that one: it reads everything when it runs, so a second one behind it (a
 * resync clicked twice) would read the whole group again for nothing. Once it started, failed
 * once or finished, a new one is queued (it may have passed records changed since).
 */
import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

const full = { tenant: TENANT, groupId: GROUP, full: true };

async function fullImports(h: Awaited<ReturnType<typeof createHarness>>) {
  return h.storage.jobs.counts({ type: JobTypes.syncImport });
}

describe('enqueueImport({ full: true })', () => {
  it('asked twice before it starts: one full import, returned to both', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const first = await h.sync.api.enqueueImport(full);
    // A click later (not in the same millisecond).
    await new Promise((r) => setTimeout(r, 5));
    const second = await h.sync.api.enqueueImport(full);
    expect(first.created).toBe(true);
    expect(second).toEqual({ jobId: first.jobId, created: false });
    expect(await fullImports(h)).toMatchObject({ pending: 1, running: 0, done: 0 });
    h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
    const listsBefore = h.connec.listCalls.length;
    await h.drain();
    expect(await fullImports(h)).toMatchObject({ pending: 0, running: 0, done: 1 });
    // The organizations were read once.
    expect(h.connec.listCalls.slice(listsBefore).filter((c) => c.collection === 'organizations' && c.skip === 0)).toHaveLength(1);
    expect(h.app.companies.size).toBe(1);
  });

  it('asked again once it started: a second one is queued behind it', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const first = await h.sync.api.enqueueImport(full);
    const [claimed] = await h.storage.jobs.claim({ worker: 'busy-worker', limit: 1, leaseMs: 60_000, types: [JobTypes.syncImport] });
    expect(claimed?.id).toBe(first.jobId);
    const second = await h.sync.api.enqueueImport(full);
    expect(second.created).toBe(true);
    expect(second.jobId).not.toBe(first.jobId);
    // And that second one, not started yet, is what a third call gets.
    expect(await h.sync.api.enqueueImport(full)).toEqual({ jobId: second.jobId, created: false });
    expect(await fullImports(h)).toMatchObject({ pending: 1, running: 1 });
  });

  it('asked again after it failed once (its retry resumes from a checkpoint) or finished: a new one', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const first = await h.sync.api.enqueueImport(full);
    const [claimed] = await h.storage.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: [JobTypes.syncImport] });
    expect(claimed?.id).toBe(first.jobId);
    await h.storage.jobs.fail(first.jobId, 'w', { error: { message: 'Connec! answered 503', code: 'http_503' }, retryAt: new Date(Date.now() + 60_000) });
    expect((await h.storage.jobs.get(first.jobId))?.status).toBe('pending');
    const second = await h.sync.api.enqueueImport(full);
    expect(second.created).toBe(true);
    expect(second.jobId).not.toBe(first.jobId);

    const other = await createHarness();
    await provisionGroup(other.storage);
    const done = await other.sync.api.enqueueImport(full);
    await other.drain();
    expect((await other.storage.jobs.get(done.jobId))?.status).toBe('done');
    const again = await other.sync.api.enqueueImport(full);
    expect(again.created).toBe(true);
    expect(again.jobId).not.toBe(done.jobId);
  });

  it('the deduplicated form is unchanged: one import job per group, finished or not', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    const first = await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await h.drain();
    expect(await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP })).toEqual({ jobId: first.jobId, created: false });
  });
});
