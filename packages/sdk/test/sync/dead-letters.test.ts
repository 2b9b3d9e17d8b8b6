/**
 * Dead letters that happen without a thrown error: a record parked (or busy) on its last
 * attempt is dead-lettered by the worker and must be reported like a failed one, and a
 * dead-lettered `sync.poll` must be listed and must not stop the group's polling for good.
 */
import { ConfigError, JobTypes, type SyncEvent, SyncError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createWorker } from '../../src/worker/index.js';
import { C, crashRuns, createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

const failedEvents = (events: SyncEvent[]) => events.filter((e) => e.type === 'record.failed');
/** The `record.failed` event of a record dead-lettered in the test group. */
const deadLetteredEvent = (entity: string, connecId: string, error: { code: string; message: unknown }) => ({
  type: 'record.failed',
  tenant: TENANT,
  groupId: GROUP,
  entity,
  connecId,
  error,
  deadLettered: true,
});

/** Drains one round at a time until `done()` (jobs due later would keep `drain` spinning). */
async function drainUntil(h: Harness, done: () => Promise<boolean>, rounds = 400): Promise<void> {
  for (let i = 0; i < rounds && !(await done()); i++) {
    await h.drain(1);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('references to an entity the group never imports', () => {
  it('are left empty instead of parking the record until it is dead-lettered (§F14: items inbound off)', async () => {
    const h = await createHarness({ sync: { maxAttempts: 3, parkRetryMs: 5 } });
    await provisionGroup(h.storage, GROUP, { sync: { entities: { items: { inbound: false } } } });
    h.connec.seed(GROUP, 'items', { name: 'Widget' }, 'it1');
    const invoice = h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-2', lines: [{ item_id: [C('it1')], quantity: 1 }] }, 'i2');
    expect((await h.notify({ invoices: [invoice] })).status).toBe(200);
    await h.drain(50);
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect([...h.app.invoices.values()].map((i) => i.number)).toEqual(['INV-2']);
    expect(h.app.items.size).toBe(0);
    expect(h.sync.api.counters()).toMatchObject({ parked: 0, failed: 0 });
  });
});

describe('records dead-lettered while deferred', () => {
  it('a reference that never resolves: the last parked attempt emits record.failed { deadLettered } and counts it', async () => {
    // The invoice's item never arrives (no notification, and no on-demand fetch).
    const h = await createHarness({ sync: { maxAttempts: 3, parkRetryMs: 5, fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    const invoice = h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ item_id: [C('it1')], quantity: 1 }] }, 'i1');

    expect((await h.notify({ invoices: [invoice] })).status).toBe(200);
    await h.drain(400);

    const dead = await h.sync.api.deadLetters();
    expect(dead.map((d) => [d.type, d.entity, d.connecId])).toEqual([[JobTypes.connecRecord, 'invoices', 'i1']]);
    expect(h.app.invoices.size).toBe(0);
    // Parked twice (retried), then dead on the third attempt: one failure, dead-lettered.
    expect(failedEvents(events)).toEqual([deadLetteredEvent('invoices', 'i1', { code: 'parked', message: expect.stringContaining('waiting for items it1') })]);
    expect(h.sync.api.counters()).toMatchObject({ failed: 1, deadLettered: 1 });
  });

  it("a tenant filter that is the empty string lists no marketplace's dead letters (it listed every one)", async () => {
    const h = await createHarness({ sync: { maxAttempts: 1, fetchMissingReferences: false } });
    await provisionGroup(h.storage);
    const invoice = h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ item_id: [C('it1')], quantity: 1 }] }, 'i1');
    expect((await h.notify({ invoices: [invoice] })).status).toBe(200);
    await h.drain(10);
    expect((await h.sync.api.deadLetters({ tenant: TENANT })).map((d) => d.connecId)).toEqual(['i1']);
    expect(await h.sync.api.deadLetters({ tenant: '' })).toEqual([]);
  });

  it('a record busy on its last attempt emits record.failed { deadLettered } and counts it', async () => {
    const h = await createHarness({ sync: { maxAttempts: 1, lockTtlMs: 60_000 } });
    await provisionGroup(h.storage);
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p9');
    expect(await h.storage.locks.acquire(`sync.record:${TENANT}:${GROUP}:contacts:p9`, 'other-worker', 60_000)).toBe(true);

    expect((await h.notify({ people: [person] })).status).toBe(200);
    await h.drain(1);

    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, dead: 1 });
    expect(failedEvents(events)).toEqual([deadLetteredEvent('contacts', 'p9', { code: 'busy', message: expect.stringContaining('record p9 is being written by another worker') })]);
    expect(h.sync.api.counters()).toMatchObject({ failed: 1, deadLettered: 1 });
  });
});

describe('records dead-lettered unrun', () => {
  it('a record whose runs crashed the process past its attempts emits record.failed { deadLettered } and counts it', async () => {
    let now = Date.parse('2030-01-01T00:00:00.000Z');
    const h = await createHarness({ sync: { maxAttempts: 2 }, clock: () => new Date(now) });
    await provisionGroup(h.storage);
    const events: SyncEvent[] = [];
    h.sync.api.on((e) => events.push(e));
    const person = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p7');
    expect((await h.notify({ people: [person] })).status).toBe(200);
    // Each attempt's process dies: the lease expires and the job is claimed again.
    await crashRuns(h.storage, JobTypes.connecRecord, 2, () => {
      now += 2_000;
    });
    await h.drain(1);

    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, dead: 1 });
    expect(h.app.contacts.size).toBe(0);
    expect(failedEvents(events)).toEqual([deadLetteredEvent('contacts', 'p7', { code: 'poisoned', message: 'earlier attempts never finished (worker crash or lease lost)' })]);
    expect(h.sync.api.counters()).toMatchObject({ failed: 1, deadLettered: 1 });
    expect((await h.sync.api.deadLetters()).map((d) => [d.entity, d.connecId])).toEqual([['contacts', 'p7']]);
  });
});

describe('dead-lettered polls', () => {
  it('a poll that fails every attempt is listed by deadLetters() and the next poll is still scheduled', async () => {
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const pollIntervalMs = 60_000;
    const h = await createHarness({ clock, sync: { pollIntervalMs } });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'items', { name: 'Widget' }, 'it1');
    h.connec.failLists = 10_000; // Connec! down for longer than the retries

    await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    const polls = () => h.storage.jobs.counts({ type: JobTypes.syncPoll });
    await drainUntil(h, async () => (await polls()).dead === 1);
    const deadAt = clock().getTime();

    const dead = await h.sync.api.deadLetters();
    expect(dead).toEqual([
      expect.objectContaining({ type: JobTypes.syncPoll, tenant: TENANT, groupId: GROUP, entity: null, connecId: null, error: expect.objectContaining({ message: expect.any(String) }) }),
    ]);
    // Exactly one next poll, due at the group's point of a later interval, at least half an
    // interval after the dead letter (not now, not never).
    expect(await polls()).toMatchObject({ pending: 1, running: 0, dead: 1 });
    const [next] = await h.storage.jobs.claim({ worker: 'peek', limit: 1, leaseMs: 1_000, types: [JobTypes.syncPoll] });
    expect(next).toBeUndefined();

    // Connec! recovers; within two intervals the scheduled poll runs and applies the record.
    h.connec.failLists = 0;
    offset += 2 * pollIntervalMs;
    await drainUntil(h, async () => (await polls()).done === 1);
    expect(await polls()).toMatchObject({ done: 1, dead: 1 });
    expect([...h.app.items.values()].map((i) => i.name)).toEqual(['Widget']);
    expect(clock().getTime() - deadAt).toBeGreaterThanOrEqual(pollIntervalMs / 2);
  });
});

describe('a poll cut short by jobTimeoutMs', () => {
  it('on its last attempt is dead-lettered and still schedules the next poll (a time limit is a failure, not a shutdown)', async () => {
    const h = await createHarness({ sync: { pollIntervalMs: 60_000 } });
    await provisionGroup(h.storage);
    // Connec! answers listings slowly, past the time limit (the fake honours the signal).
    const list = h.connec.listPage.bind(h.connec);
    h.connec.listPage = async (groupId, collection, options) => {
      const signal = (options as { signal?: AbortSignal }).signal;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 5_000);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      });
      return list(groupId, collection, options);
    };
    await h.sync.api.enqueuePoll({ tenant: TENANT, groupId: GROUP });
    const stats = await createWorker(h.runtime, h.sync.jobs ?? {}).drain({ jobTimeoutMs: 50, shutdownGraceMs: 200, pollIntervalMs: 5, backoff: { baseMs: 0, maxMs: 0 } });
    expect(stats.deadLettered).toBe(1);
    // The chain goes on: one next poll, due an interval later.
    expect(await h.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ pending: 1, dead: 1 });
  });
});

/**
 * A harness whose record handler exposes the job's signal, with the app's `create` slow until
 * that signal aborts (it honours it, as the guides ask).
 */
async function interruptible(sync: { maxAttempts: number; fetchMissingReferences?: boolean }) {
  const h = await createHarness({ sync });
  await provisionGroup(h.storage);
  const events: SyncEvent[] = [];
  h.sync.api.on((e) => events.push(e));
  let signal: AbortSignal | null = null;
  const handlers = { ...h.sync.jobs };
  const record = handlers[JobTypes.connecRecord];
  if (!record?.batch) throw new Error('no batch record handler');
  const batch = record.batch;
  handlers[JobTypes.connecRecord] = Object.assign(
    (job: Parameters<typeof record>[0], ctx: Parameters<typeof record>[1]) => {
      signal = ctx.signal;
      return record(job, ctx);
    },
    {
      batch: (jobs: Parameters<typeof batch>[0], ctx: Parameters<typeof batch>[1]) => {
        signal = ctx.signal;
        return batch(jobs, ctx);
      },
    },
  );
  /** Resolves once the running job's signal has aborted. */
  const aborted = async () => {
    while (signal === null) await new Promise((r) => setTimeout(r, 5));
    const s: AbortSignal = signal;
    if (!s.aborted) await new Promise((r) => s.addEventListener('abort', r, { once: true }));
  };
  h.app.create = (() =>
    aborted().then(() => {
      throw new Error('create interrupted');
    })) as unknown as typeof h.app.create;
  return { h, events, handlers, aborted, started: async () => { while (signal === null) await new Promise((r) => setTimeout(r, 5)); } };
}

describe('a record job interrupted by the worker', () => {
  it('by its shutdown: released for a later run and reported nowhere (no failure, no dead letter) even on its last attempt', async () => {
    const { h, events, handlers, started } = await interruptible({ maxAttempts: 1 });
    expect((await h.notify({ people: [h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1')] })).status).toBe(200);
    const stop = new AbortController();
    const running = createWorker(h.runtime, handlers).run({ signal: stop.signal, shutdownGraceMs: 100, pollIntervalMs: 10 });
    await started();
    stop.abort();
    expect(await running).toMatchObject({ released: 1 });
    expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 1, dead: 0 });
    expect(h.sync.api.counters()).toMatchObject({ failed: 0, deadLettered: 0 });
    expect(failedEvents(events)).toEqual([]);
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect(await h.storage.idMaps.find({ tenant: TENANT, groupId: GROUP, entity: 'contacts' }, { connecId: 'p1' })).toBeNull();
  });

  it('by jobTimeoutMs: a failed attempt, reported (dead-lettered on the last one) like any failure', async () => {
    const { h, events, handlers } = await interruptible({ maxAttempts: 1 });
    expect((await h.notify({ people: [h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1')] })).status).toBe(200);
    expect(await createWorker(h.runtime, handlers).drain({ jobTimeoutMs: 100, pollIntervalMs: 10 })).toMatchObject({ deadLettered: 1 });
    expect(h.sync.api.counters()).toMatchObject({ failed: 1, deadLettered: 1 });
    expect(failedEvents(events)).toMatchObject([{ connecId: 'p1', deadLettered: true }]);
    expect((await h.sync.api.deadLetters()).map((d) => d.connecId)).toEqual(['p1']);
  });

  it('by its shutdown while parked on its last attempt: still dead-lettered by the worker, so reported', async () => {
    const { h, events, handlers, aborted } = await interruptible({ maxAttempts: 1, fetchMissingReferences: false });
    // The park is decided after the shutdown has aborted the job's signal.
    const preload = h.storage.idMaps.findManyByConnecIds.bind(h.storage.idMaps);
    let slowed = false;
    h.storage.idMaps.findManyByConnecIds = async (...args) => {
      if (!slowed) {
        slowed = true;
        await aborted();
      }
      return preload(...args);
    };
    const invoice = h.connec.seed(GROUP, 'invoices', { transaction_number: 'INV-1', lines: [{ item_id: [C('it1')], quantity: 1 }] }, 'i1');
    expect((await h.notify({ invoices: [invoice] })).status).toBe(200);
    const stop = new AbortController();
    const running = createWorker(h.runtime, handlers).run({ signal: stop.signal, shutdownGraceMs: 100, pollIntervalMs: 10 });
    while (!slowed) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    expect(await running).toMatchObject({ deadLettered: 1, released: 0 });
    expect(h.sync.api.counters()).toMatchObject({ deadLettered: 1 });
    expect(failedEvents(events)).toMatchObject([{ connecId: 'i1', deadLettered: true }]);
  });
});

describe('dead letters of one group', () => {
  it("deadLetters({ groupId }) lists that group's only, and a bad filter is refused as the caller's mistake, not a storage failure", async () => {
    const h = await createHarness({ sync: { maxAttempts: 1 } });
    const OTHER = 'cld-other';
    await provisionGroup(h.storage);
    await provisionGroup(h.storage, OTHER);
    // A mapper bug dead-letters records of both groups.
    h.app.poisonLastName = 'Doe';
    const mine = h.connec.seed(GROUP, 'people', { first_name: 'Jane', last_name: 'Doe' }, 'p1');
    const theirs = h.connec.seed(OTHER, 'people', { first_name: 'John', last_name: 'Doe' }, 'p2');
    expect((await h.notify({ people: [mine, theirs] })).status).toBe(200);
    await h.drain(10);
    expect((await h.sync.api.deadLetters()).map((d) => d.connecId).sort()).toEqual(['p1', 'p2']);

    const stuck = await h.sync.api.deadLetters({ tenant: TENANT, groupId: GROUP });
    expect(stuck.map((d) => [d.groupId, d.connecId])).toEqual([[GROUP, 'p1']]);
    expect(await h.sync.api.deadLetters({ groupId: 'cld-none' })).toEqual([]);
    const worker = createWorker(h.runtime, h.sync.jobs ?? {});
    expect((await worker.deadLetters({ groupId: OTHER })).map((d) => d.connecId)).toEqual(['p2']);

    // The mapper is fixed: retrying that group's dead letters applies its record only.
    h.app.poisonLastName = null;
    for (const dead of stuck) expect(await h.sync.api.retryDeadLetter(dead.jobId)).toBe(true);
    await h.drain(10);
    expect([...h.app.contacts.values()].map((c) => c.firstName)).toEqual(['Jane']);
    expect((await h.sync.api.deadLetters()).map((d) => d.connecId)).toEqual(['p2']);

    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await expect(h.sync.api.deadLetters({ limit })).rejects.toThrow(SyncError);
      await expect(h.sync.api.deadLetters({ limit })).rejects.toThrow(/limit must be a positive integer/);
      await expect(worker.deadLetters({ limit })).rejects.toThrow(ConfigError);
    }
  });
});

describe('dead letters: a filter no job can match', () => {
  it('a tenant or groupId that storage cannot hold, or a type that is not a string, is refused as the caller’s mistake (SyncError / ConfigError), not a StorageError', async () => {
    const h = await createHarness({ sync: { maxAttempts: 1 } });
    const worker = createWorker(h.runtime, h.sync.jobs ?? {});
    for (const filter of [{ tenant: 'maestrano\u0000' }, { groupId: 'cld-\ud800' }]) {
      await expect(h.sync.api.deadLetters(filter)).rejects.toThrow(SyncError);
      await expect(worker.deadLetters(filter)).rejects.toThrow(ConfigError);
    }
    // From JavaScript: a type that is not a string listed nothing, as if there were no dead letters.
    await expect(worker.deadLetters({ type: 42 as unknown as string })).rejects.toThrow(ConfigError);
  });

  it('a type this worker does not run (a misspelt one) is refused with ConfigError naming the types it runs, not answered with an empty list', async () => {
    const h = await createHarness({ sync: { maxAttempts: 1 } });
    const worker = createWorker(h.runtime, h.sync.jobs ?? {});
    const error = await worker.deadLetters({ type: 'connec.recrod' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^deadLetters: "connec\.recrod" is not a job type this worker runs \(.*connec\.record.*\)$/);
    // The right spelling is accepted.
    expect(await worker.deadLetters({ type: JobTypes.connecRecord })).toEqual([]);
  });
});
