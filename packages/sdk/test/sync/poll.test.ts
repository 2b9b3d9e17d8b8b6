/**
 * CONNECTORS.md §F10: incremental polls with a cursor overlap. Records updated while a poll
 * runs, records sharing one `updated_at` across a page boundary, and the overlap re-read.
 */
import { JobTypes, memoryAdapter, SyncError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { crashRuns, createHarness, GROUP, provisionGroup, TENANT } from './harness.js';

const at = (iso: string) => ({ created_at: iso, updated_at: iso });

describe('incremental poll (§F10)', () => {
  it('reads what changed since the import began, pages by updated_at without losing same-timestamp records, and re-reads the overlap without writing', async () => {
    const h = await createHarness({ sync: { pageSize: 2, pollOverlapMs: 60_000 } });
    await provisionGroup(h.storage);
    for (let i = 1; i <= 4; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}`, ...at(`2016-10-04T11:00:0${i}.000Z`) }, `it${i}`);
    const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect(report.entities.items).toMatchObject({ created: 4 });
    // Connec!'s own writes (link-backs) from now on are stamped after the edits below.
    h.connec.setClock('2099-01-01T13:00:00.000Z');

    // After the import: it5 is new, it2 was edited, and it6/it7 share one instant that
    // straddles a page boundary (page size 2).
    const stamp = '2099-01-01T11:59:59.869Z';
    h.connec.seed(GROUP, 'items', { name: 'Item 5', ...at('2099-01-01T11:59:58.000Z') }, 'it5');
    h.connec.seed(GROUP, 'items', { name: 'Item 6', ...at(stamp) }, 'it6');
    h.connec.seed(GROUP, 'items', { name: 'Item 7', ...at(stamp) }, 'it7');
    Object.assign(h.connec.find(GROUP, 'items', 'it2') ?? {}, { name: 'Item 2 renamed', updated_at: '2099-01-01T11:59:57.000Z' });
    const writes = { ...h.app.writes };

    const poll = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });

    expect(poll.status).toBe('complete');
    expect(h.app.writes.create - writes.create).toBe(3);
    expect(h.app.writes.update - writes.update).toBe(1);
    expect([...h.app.items.values()].map((i) => i.name).sort()).toEqual(['Item 1', 'Item 2 renamed', 'Item 3', 'Item 4', 'Item 5', 'Item 6', 'Item 7']);
    // Every page asked for `updated_at gte`, ordered by it.
    const pollCalls = h.connec.listCalls.filter((c) => c.filter);
    expect(pollCalls.every((c) => c.filter?.startsWith('updated_at gte '))).toBe(true);
    // The cursor is the newest `updated_at` read: our own link-backs, stamped by Connec! after
    // the edits, were read back within the same run (as replays).
    const newest = Math.max(...h.connec.all(GROUP, 'items').map((r) => Date.parse(String(r.updated_at))));
    const cursor = await h.storage.cursors.get({ tenant: TENANT, groupId: GROUP, entity: 'items', kind: 'poll' });
    expect(cursor?.data.since).toBe(new Date(newest).toISOString());

    // The next poll re-reads from the newest instant minus the overlap: replays, no write.
    const before = { ...h.app.writes };
    h.connec.listCalls.length = 0;
    const again = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(again.entities.items?.fetched).toBeGreaterThanOrEqual(2);
    expect(h.app.writes).toEqual(before);
    expect(h.connec.listCalls.find((c) => c.collection === 'items')?.filter).toBe(`updated_at gte '${new Date(newest - 60_000).toISOString()}'`);
  });

  it('a record updated while the poll runs (after its page was read) is applied by the next poll', async () => {
    const h = await createHarness({ sync: { pageSize: 2, pollOverlapMs: 0 } });
    await provisionGroup(h.storage);
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    h.connec.setClock('2099-01-01T13:00:00.000Z');
    for (let i = 1; i <= 5; i++) h.connec.seed(GROUP, 'items', { name: `Item ${i}`, ...at(`2099-01-01T12:00:0${i}.000Z`) }, `it${i}`);
    // Edit it1 as soon as the poll has read the first page of items.
    const original = h.connec.listPage.bind(h.connec);
    let edited = false;
    h.connec.listPage = async (groupId, collection, options) => {
      const page = await original(groupId, collection, options);
      if (collection === 'items' && options.filter && !edited) {
        edited = true;
        Object.assign(h.connec.find(GROUP, 'items', 'it1') ?? {}, { name: 'Item 1 mid-run', updated_at: '2099-01-01T12:00:30.000Z' });
      }
      return page;
    };
    await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect(h.app.items.size).toBe(5);
    // Key paging reads it1 again at its new instant within the same run; either way it is there now.
    await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
    expect([...h.app.items.values()].find((i) => i.name.startsWith('Item 1'))?.name).toBe('Item 1 mid-run');
    expect(h.app.items.size).toBe(5);
  });

  it('with pollIntervalMs the import schedules a durable sync.poll job, each poll schedules the next, a cancelled group stops the chain', async () => {
    // A fixed clock: poll slots are minutes, and a real clock could cross one mid-test.
    const t0 = Date.parse('2030-01-01T00:00:10.000Z');
    const h = await createHarness({ sync: { pollIntervalMs: 60_000 }, clock: () => new Date(t0) });
    await provisionGroup(h.storage);
    await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await h.drain();
    const polls = async () => (await h.storage.jobs.counts({ type: JobTypes.syncPoll })).pending;
    expect(await polls()).toBe(1);
    // A second enqueue for the same slot is deduplicated.
    const first = await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP, runAt: new Date(t0 + 60_000) });
    expect(first.created).toBe(false);

    // Run the poll now (as if its time came), then it schedules the next one.
    const now = await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    expect(now.created).toBe(true);
    await h.drain();
    expect((await h.storage.jobs.get(now.jobId))?.status).toBe('done');
    expect(await polls()).toBe(1);

    await h.storage.groups.cancel(TENANT, GROUP);
    const late = await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP, runAt: new Date(t0 - 120_000) });
    await h.drain();
    expect((await h.storage.jobs.get(late.jobId))?.status).toBe('done');
    // Dropped without polling or scheduling another: only the one already scheduled remains.
    expect(await polls()).toBe(1);
  });

  it('schedulePolls starts the chain of imported groups when polling is turned on later, or after its poll was dead-lettered', async () => {
    const t0 = Date.parse('2030-01-01T00:00:10.000Z');
    let now = t0;
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const polls = async () => (await storage.jobs.counts({ type: JobTypes.syncPoll })).pending;
    // Launched without polling: the import schedules no poll.
    const before = await createHarness({ storage, clock });
    await provisionGroup(storage);
    await provisionGroup(storage, 'cld-never-imported');
    await before.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await before.drain();
    expect(await polls()).toBe(0);
    await expect(before.sync.api.schedulePolls()).rejects.toThrow(SyncError);

    // The next deploy turns polling on: existing groups get their chain, once.
    const h = await createHarness({ storage, clock, sync: { pollIntervalMs: 60_000 } });
    expect(await h.sync.api.schedulePolls()).toEqual({ scheduled: 1, alreadyScheduled: 0, notImported: 1 });
    expect(await h.sync.api.schedulePolls({ tenant: TENANT })).toEqual({ scheduled: 0, alreadyScheduled: 1, notImported: 1 });
    expect(await polls()).toBe(1);
    await expect(h.sync.api.schedulePolls({ tenant: 'nope' })).rejects.toThrow('Unknown tenant "nope"');
    // Due within the next minute slot (00:01:00 to 00:02:00), not now.
    expect(await storage.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000, types: [JobTypes.syncPoll] })).toEqual([]);
    now = Date.parse('2030-01-01T00:02:00.000Z');
    const [job] = await storage.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000, types: [JobTypes.syncPoll] });
    expect(job?.runAt.getTime()).toBeGreaterThanOrEqual(Date.parse('2030-01-01T00:01:00.000Z'));
    expect(job?.runAt.getTime()).toBeLessThan(now);

    // That poll is dead-lettered by hand, outside any handler or worker: the chain is gone
    // until schedulePolls starts it again.
    if (!job) throw new Error('no poll job');
    for (let outcome = ''; outcome !== 'dead'; ) {
      outcome = await storage.jobs.fail(job.id, 'w', { error: { message: 'worker crashed' }, retryAt: clock() });
      if (outcome !== 'dead') await storage.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000, types: [JobTypes.syncPoll] });
    }
    expect(await polls()).toBe(0);
    expect(await h.sync.api.schedulePolls()).toEqual({ scheduled: 1, alreadyScheduled: 0, notImported: 1 });
    // And the chain runs on: the poll, once due, schedules the next.
    now = Date.parse('2030-01-01T00:04:00.000Z');
    await h.drain();
    expect(await polls()).toBe(1);
    expect((await h.sync.api.deadLetters()).filter((d) => d.type === JobTypes.syncPoll)).toHaveLength(1);
  });

  it('schedulePolls reads a marketplace with thousands of groups a page at a time and enqueues each page\'s polls together', async () => {
    const t0 = Date.parse('2030-01-01T00:00:10.000Z');
    const clock = () => new Date(t0);
    const storage = memoryAdapter({ clock });
    const GROUPS = 1_201;
    for (let i = 0; i < GROUPS; i++) {
      const groupId = `cld-${String(i).padStart(5, '0')}`;
      await provisionGroup(storage, groupId);
      // Every third group was never imported (no poll cursor), one in 100 is cancelled.
      if (i % 3 !== 0) await storage.cursors.advance({ tenant: TENANT, groupId, entity: 'items', kind: 'poll' }, 0, { since: '2029-12-31T00:00:00.000Z' });
      if (i % 100 === 1) await storage.groups.cancel(TENANT, groupId);
    }
    const listed: number[] = [];
    let enqueueCalls = 0;
    const counted = {
      ...storage,
      groups: {
        ...storage.groups,
        list: async (...args: Parameters<typeof storage.groups.list>) => {
          const page = await storage.groups.list(...args);
          listed.push(page.length);
          return page;
        },
      },
      jobs: {
        ...storage.jobs,
        enqueue: (...args: Parameters<typeof storage.jobs.enqueue>) => {
          enqueueCalls++;
          return storage.jobs.enqueue(...args);
        },
        enqueueMany: (...args: Parameters<typeof storage.jobs.enqueueMany>) => {
          enqueueCalls++;
          return storage.jobs.enqueueMany(...args);
        },
      },
    };
    const h = await createHarness({ storage: counted, clock, sync: { pollIntervalMs: 60_000 } });
    const active = Array.from({ length: GROUPS }, (_, i) => i).filter((i) => i % 100 !== 1);
    const imported = active.filter((i) => i % 3 !== 0).length;
    expect(await h.sync.api.schedulePolls()).toEqual({ scheduled: imported, alreadyScheduled: 0, notImported: active.length - imported });
    // Never the whole marketplace at once: pages of at most 500 groups, one enqueue per page.
    expect(Math.max(...listed)).toBeLessThanOrEqual(500);
    expect(listed.reduce((a, b) => a + b, 0)).toBe(active.length);
    expect(enqueueCalls).toBeLessThanOrEqual(listed.length);
    expect((await storage.jobs.counts({ type: JobTypes.syncPoll })).pending).toBe(imported);
    // Again in the same slot: nothing new, every group counted once.
    expect(await h.sync.api.schedulePolls({ tenant: TENANT })).toEqual({ scheduled: 0, alreadyScheduled: imported, notImported: active.length - imported });

    // An adapter written before `limit` and `after` answers every group each time: read once.
    const unpaged = { ...counted, groups: { ...storage.groups, list: (tenant: string) => storage.groups.list(tenant, { status: 'active' }) } };
    const old = await createHarness({ storage: unpaged, clock, sync: { pollIntervalMs: 60_000 } });
    expect(await old.sync.api.schedulePolls()).toEqual({ scheduled: 0, alreadyScheduled: imported, notImported: active.length - imported });
  });

  it('polls run together after an outage go back to their groups\' own points of the interval; a chain on time stays one interval apart', async () => {
    const interval = 60_000;
    let now = Date.parse('2030-01-01T00:00:10.000Z');
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    /** The run time of each poll enqueued, per group, in order. */
    const scheduled = new Map<string, number[]>();
    const recording = {
      ...storage,
      jobs: {
        ...storage.jobs,
        enqueue: (job: Parameters<typeof storage.jobs.enqueue>[0]) => {
          if (job.type === JobTypes.syncPoll && job.groupId && job.runAt) scheduled.set(job.groupId, [...(scheduled.get(job.groupId) ?? []), job.runAt.getTime()]);
          return storage.jobs.enqueue(job);
        },
      },
    };
    const h = await createHarness({ storage: recording, clock, sync: { pollIntervalMs: interval } });
    const groups = Array.from({ length: 40 }, (_, i) => `cld-${String(i).padStart(2, '0')}`);
    for (const groupId of groups) {
      await provisionGroup(storage, groupId);
      await h.sync.api.enqueueImport({ tenant: TENANT, groupId });
    }
    await h.drain();
    expect([...scheduled.values()].map((runs) => runs.length)).toEqual(groups.map(() => 1));

    // An outage: every poll is overdue, and the worker runs all of them at one instant.
    now += 30 * interval;
    const outageEnd = now;
    await h.drain();
    expect((await storage.jobs.counts({ type: JobTypes.syncPoll })).done).toBe(groups.length);
    const next = groups.map((g) => scheduled.get(g)?.[1] ?? Number.NaN);
    // Not all at `outageEnd + interval` (the burst repeated for good), but spread over an interval...
    expect(new Set(next).size).toBeGreaterThan(groups.length * 0.9);
    expect(Math.max(...next) - Math.min(...next)).toBeGreaterThan(interval / 2);
    // ...each at least half an interval after the run, and within two.
    for (const t of next) {
      expect(t).toBeGreaterThanOrEqual(outageEnd + interval / 2);
      expect(t).toBeLessThan(outageEnd + 2 * interval);
    }
    // Each group's first poll, scheduled by its import, was already at its own point.
    for (const g of groups) expect(((scheduled.get(g)?.[1] ?? 0) - (scheduled.get(g)?.[0] ?? 0)) % interval).toBe(0);

    // Polls run on time, or a little late, schedule the next exactly one interval after their own time.
    for (const t of [...new Set(next)].sort((a, b) => a - b)) {
      now = t + 1_500;
      await h.drain(2); // the chains always leave a poll pending: two passes run what is due
    }
    for (const [i, g] of groups.entries()) expect(scheduled.get(g)?.[2]).toBe((next[i] ?? 0) + interval);
  });

  it('enqueuePoll() runs a poll even when the chain\'s poll of the same interval has already run; a pending one is returned', async () => {
    const interval = 60_000;
    let now = Date.parse('2030-01-01T00:00:10.000Z');
    const clock = () => new Date(now);
    const storage = memoryAdapter({ clock });
    const runAts: number[] = [];
    const recording = {
      ...storage,
      jobs: {
        ...storage.jobs,
        enqueue: (job: Parameters<typeof storage.jobs.enqueue>[0]) => {
          if (job.type === JobTypes.syncPoll && job.runAt) runAts.push(job.runAt.getTime());
          return storage.jobs.enqueue(job);
        },
      },
    };
    const h = await createHarness({ storage: recording, clock, sync: { pollIntervalMs: interval } });
    await provisionGroup(storage);
    await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await h.drain();
    // The chain's first poll, run on time at the group's point of its interval.
    const [point] = runAts;
    if (point === undefined) throw new Error('no poll scheduled');
    now = point;
    await h.drain(2);
    const polls = () => storage.jobs.counts({ type: JobTypes.syncPoll });
    expect(await polls()).toMatchObject({ done: 1, pending: 1 });

    // A record edited in Connec! since; "poll now", in the interval whose poll just ran.
    h.connec.seed(GROUP, 'items', { name: 'Edited since', created_at: '2099-01-01T00:00:00Z', updated_at: '2099-01-01T00:00:00Z' }, 'it-new');
    const asked = await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    expect(asked.created).toBe(true);
    // Asked twice while it is pending: the same poll.
    expect(await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP })).toEqual({ jobId: asked.jobId, created: false });
    await h.drain(2);
    expect((await storage.jobs.get(asked.jobId))?.status).toBe('done');
    expect([...h.app.items.values()].map((i) => i.name)).toContain('Edited since');
  });

  it('a poll dead-lettered unrun (its runs crashed the process past its attempts) still schedules the next one', async () => {
    let now = Date.parse('2030-01-01T00:00:10.000Z');
    const clock = () => new Date(now);
    const h = await createHarness({ sync: { pollIntervalMs: 60_000 }, clock });
    await provisionGroup(h.storage);
    await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
    await h.drain();
    const scheduled = await h.storage.jobs.claim({ worker: 'crashing', limit: 5, leaseMs: 1_000, types: [JobTypes.syncPoll] });
    expect(scheduled).toEqual([]);
    now = Date.parse('2030-01-01T00:02:00.000Z');
    // Every run dies with its process: the lease expires, the job is claimed again, 8 times.
    await crashRuns(h.storage, JobTypes.syncPoll, 8, () => {
      now += 2_000;
    });
    // The next worker claims it past its attempts and dead-letters it without running it.
    await h.drain();
    const dead = (await h.sync.api.deadLetters()).filter((d) => d.type === JobTypes.syncPoll);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.error?.message).toContain('earlier attempts never finished');
    // ...and the chain goes on: the next poll is due at the group's point of a later interval
    // (within two).
    const pending = await h.storage.jobs.counts({ type: JobTypes.syncPoll });
    expect(pending.pending).toBe(1);
    now += 120_000;
    const [next] = await h.storage.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000, types: [JobTypes.syncPoll] });
    expect(next?.attempts).toBe(1);
  });

  it('a poll while an import of the group runs is refused as busy (the job is deferred, not run twice)', async () => {
    const h = await createHarness();
    await provisionGroup(h.storage);
    await h.storage.locks.acquire(`sync.import:${TENANT}:${GROUP}`, 'someone-else', 60_000);
    const error = await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('already running');
  });
});
