import { expect } from 'vitest';
import type { JobInput, JobRecord, JsonValue, StorageAdapter } from '../../../storage/adapter.js';
import type { StorageCaseContext, StorageCases } from '../types.js';
import { runJobWorkload } from './workload.js';
import { expectDate, expectStorageError, GROUP, inMs, needs, OTHER_TENANT, race, sorted, TENANT } from './helpers.js';
import { expectProtoKeyKept, PROTO_JSON } from './proto-json.js';

const LEASE = 60_000;

const job = (overrides: Partial<JobInput> = {}): JobInput => ({
  type: 'connec.notification',
  payload: { entity: 'contacts', id: 'c-1' },
  tenant: TENANT,
  groupId: GROUP,
  ...overrides,
});

const claimOne = async (adapter: StorageAdapter, worker: string, options: { types?: string[] } = {}) => {
  const claimed = await adapter.jobs.claim({ worker, limit: 1, leaseMs: LEASE, ...options });
  expect(claimed.length).toBeLessThanOrEqual(1);
  return claimed[0] ?? null;
};

const ids = (jobs: JobRecord[]) => jobs.map((j) => j.id);

/** Claims with several workers at once until nothing is due; returns each delivery. */
async function drain(context: StorageCaseContext, workers: number, limit: number) {
  const deliveries: { worker: string; job: JobRecord }[] = [];
  for (let round = 0; round < 100; round++) {
    const batches = await race(context, workers, (adapter, i) =>
      adapter.jobs.claim({ worker: `w${i}`, limit, leaseMs: LEASE }).then((jobs) => ({ worker: `w${i}`, jobs })),
    );
    const got = batches.flatMap((b) => b.jobs.map((j) => ({ worker: b.worker, job: j })));
    if (got.length === 0) break;
    deliveries.push(...got);
  }
  return deliveries;
}

export const jobCases: StorageCases = {
  'enqueue stores a pending job with defaults': async ({ adapter, clock }) => {
    const result = await adapter.jobs.enqueue({ type: 'account.group', payload: { a: 1 } });
    expect(result.created).toBe(true);
    expect(typeof result.id).toBe('string');
    const stored = await adapter.jobs.get(result.id);
    expect(stored).toEqual({
      id: result.id,
      type: 'account.group',
      tenant: null,
      groupId: null,
      payload: { a: 1 },
      dedupeKey: null,
      orderingKey: null,
      waitKey: null,
      status: 'pending',
      attempts: 0,
      maxAttempts: 8,
      runAt: new Date(clock.ms()),
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      createdAt: new Date(clock.ms()),
      updatedAt: new Date(clock.ms()),
      completedAt: null,
    });
  },

  'payloads of every JSON shape round-trip exactly': async ({ adapter }) => {
    const payloads: JsonValue[] = [
      { nested: { deep: [1, 2.5, -3, { x: null }], s: 'é✓"\\' }, t: true },
      [1, 'two', null, false],
      'plain string',
      42,
      null,
      {},
    ];
    for (const payload of payloads) {
      const { id } = await adapter.jobs.enqueue(job({ payload }));
      expect((await adapter.jobs.get(id))?.payload).toEqual(payload);
    }
  },

  'the stored job holds JSON, timestamps and its status': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const runAt = inMs(clock, 5_000);
    const { id } = await adapter.jobs.enqueue(job({ payload: { list: [1, { a: 'b' }] }, runAt, orderingKey: 'ok-1' }));
    const row = await inspect.job(id);
    expect(row).toMatchObject({
      id,
      type: 'connec.notification',
      tenant: TENANT,
      groupId: GROUP,
      status: 'pending',
      attempts: 0,
      maxAttempts: 8,
      orderingKey: 'ok-1',
      dedupeKey: null,
    });
    expect(row?.payload).toEqual({ list: [1, { a: 'b' }] });
    expectDate(row?.runAt, runAt);
    expectDate(row?.createdAt, clock.ms());
    expect(row?.leaseExpiresAt).toBeNull();
    expect(row?.completedAt).toBeNull();
  }),

  'a second enqueue with the same dedupeKey returns the first job and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      const first = await adapter.jobs.enqueue(job({ dedupeKey: 'notif-1', payload: { v: 1 } }));
      const second = await adapter.jobs.enqueue(job({ dedupeKey: 'notif-1', payload: { v: 2 } }));
      expect(second).toEqual({ id: first.id, created: false });
      const rows = await inspect.jobs();
      expect(rows).toHaveLength(1);
      expect(rows[0]?.payload).toEqual({ v: 1 });
      expect(rows[0]?.dedupeKey).toBe('notif-1');
    },
  ),

  '20 concurrent enqueues with one dedupeKey create exactly one job': needs(['concurrency'], async (context) => {
    const results = await race(context, 20, (adapter, i) =>
      adapter.jobs.enqueue(job({ dedupeKey: 'same', payload: { i } })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect((await context.adapter.jobs.counts()).pending).toBe(1);
  }),

  'concurrent enqueueMany of overlapping batches in different orders: one job per dedupeKey, no error': needs(
    ['concurrency'],
    async (context) => {
      // Each caller enqueues most of the round's keys, in its own (seeded) order: adapters
      // that take the dedupe keys' locks in caller order deadlock here.
      const callers = 8;
      const perRound = 24;
      let seed = 0x9e3779b9;
      const random = () => {
        seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
        return seed / 2 ** 32;
      };
      const shuffled = <T>(values: T[]): T[] => {
        const out = [...values];
        for (let i = out.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [out[i], out[j]] = [out[j] as T, out[i] as T];
        }
        return out;
      };
      let total = 0;
      for (let round = 0; round < 8; round++) {
        const keys = Array.from({ length: perRound }, (_, i) => `batch-${round}-${i}`);
        const batches = Array.from({ length: callers }, (_, c) => shuffled(keys.filter((_, i) => (i + c) % 4 !== 0)));
        const results = await race(context, callers, (adapter, c) => {
          const mine = batches[c] ?? [];
          return adapter.jobs
            .enqueueMany(mine.map((dedupeKey) => job({ dedupeKey, payload: { dedupeKey, c } })))
            .then((res) => res.map((r, i) => ({ ...r, dedupeKey: mine[i] })));
        });
        const byKey = new Map<string, { ids: Set<string>; created: number }>();
        for (const r of results.flat()) {
          const entry = byKey.get(r.dedupeKey ?? '') ?? { ids: new Set<string>(), created: 0 };
          entry.ids.add(r.id);
          if (r.created) entry.created += 1;
          byKey.set(r.dedupeKey ?? '', entry);
        }
        expect([...byKey.keys()].sort()).toEqual([...keys].sort());
        for (const [dedupeKey, entry] of byKey) {
          expect({ dedupeKey, ids: entry.ids.size, created: entry.created }).toEqual({ dedupeKey, ids: 1, created: 1 });
        }
        total += keys.length;
        expect((await context.adapter.jobs.counts()).pending).toBe(total);
        if (round === 0) {
          for (const [dedupeKey, entry] of byKey) {
            expect((await context.adapter.jobs.get([...entry.ids][0] ?? ''))?.dedupeKey).toBe(dedupeKey);
          }
        }
      }
    },
  ),

  'a dedupeKey stays taken by a done job until purgeCompleted frees it': async ({ adapter, clock }) => {
    const first = await adapter.jobs.enqueue(job({ dedupeKey: 'bill-1' }));
    const claimed = await claimOne(adapter, 'w1');
    expect(claimed?.id).toBe(first.id);
    expect(await adapter.jobs.complete(first.id, 'w1')).toBe(true);
    expect(await adapter.jobs.enqueue(job({ dedupeKey: 'bill-1' }))).toEqual({ id: first.id, created: false });
    clock.advance(1_000);
    expect(await adapter.jobs.purgeCompleted(new Date(clock.ms()))).toBe(1);
    const again = await adapter.jobs.enqueue(job({ dedupeKey: 'bill-1' }));
    expect(again.created).toBe(true);
    expect(again.id).not.toBe(first.id);
  },

  'a dedupeKey stays taken while its job is pending, running, waiting for a retry and dead': async ({ adapter, clock }) => {
    const first = await adapter.jobs.enqueue(job({ dedupeKey: 'bill-1', maxAttempts: 2 }));
    const again = () => adapter.jobs.enqueue(job({ dedupeKey: 'bill-1' }));
    expect(await again()).toEqual({ id: first.id, created: false });
    expect((await claimOne(adapter, 'w1'))?.id).toBe(first.id);
    expect(await again()).toEqual({ id: first.id, created: false });
    expect(await adapter.jobs.fail(first.id, 'w1', { error: { message: 'retry' }, retryAt: new Date(clock.ms()) })).toBe('retrying');
    expect(await again()).toEqual({ id: first.id, created: false });
    expect((await claimOne(adapter, 'w1'))?.id).toBe(first.id);
    expect(await adapter.jobs.fail(first.id, 'w1', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    expect(await again()).toEqual({ id: first.id, created: false });
    expect(await adapter.jobs.enqueueMany([job({ dedupeKey: 'bill-1' })])).toEqual([{ id: first.id, created: false }]);
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 1 });
  },

  'enqueueMany returns results in input order and dedupes within the batch and against stored jobs': async ({
    adapter,
  }) => {
    const stored = await adapter.jobs.enqueue(job({ dedupeKey: 'k-0' }));
    const results = await adapter.jobs.enqueueMany([
      job({ payload: 1, dedupeKey: 'k-1' }),
      job({ payload: 2, dedupeKey: 'k-0' }),
      job({ payload: 3 }),
      job({ payload: 4, dedupeKey: 'k-1' }),
    ]);
    expect(results.map((r) => r.created)).toEqual([true, false, true, false]);
    expect(results[1]?.id).toBe(stored.id);
    expect(results[3]?.id).toBe(results[0]?.id);
    expect((await adapter.jobs.get(results[0]?.id ?? ''))?.payload).toBe(1);
    expect((await adapter.jobs.get(results[2]?.id ?? ''))?.payload).toBe(3);
    expect((await adapter.jobs.counts()).pending).toBe(3);
    expect(await adapter.jobs.enqueueMany([])).toEqual([]);
  },

  'claim takes due jobs ordered by runAt then creation, sets the lease and counts the attempt': async ({
    adapter,
    clock,
  }) => {
    const a = await adapter.jobs.enqueue(job({ payload: 'a', runAt: inMs(clock, -1_000) }));
    clock.advance(1);
    const b = await adapter.jobs.enqueue(job({ payload: 'b' }));
    clock.advance(1);
    const c = await adapter.jobs.enqueue(job({ payload: 'c', runAt: inMs(clock, -500) }));
    const tie = inMs(clock, -100);
    clock.advance(1);
    const d = await adapter.jobs.enqueue(job({ payload: 'd', runAt: tie }));
    clock.advance(1);
    const e = await adapter.jobs.enqueue(job({ payload: 'e', runAt: tie }));
    const claimed = await adapter.jobs.claim({ worker: 'w1', limit: 10, leaseMs: LEASE });
    expect(ids(claimed)).toEqual([a.id, c.id, d.id, e.id, b.id]);
    for (const j of claimed) {
      expect(j).toMatchObject({ status: 'running', leaseOwner: 'w1', attempts: 1 });
      expectDate(j.leaseExpiresAt, clock.ms() + LEASE);
    }
    expect(await adapter.jobs.get(b.id)).toMatchObject({ status: 'running', leaseOwner: 'w1', attempts: 1 });
  },

  'a job due in the future is not claimed until the clock reaches runAt': needs(['clock'], async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job({ runAt: new Date(clock.ms() + 10_000) }));
    expect(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE })).toEqual([]);
    clock.advance(9_999);
    expect(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE })).toEqual([]);
    clock.advance(1);
    expect(ids(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE }))).toEqual([id]);
  }),

  'claim honours limit and the types filter': async ({ adapter }) => {
    for (let i = 0; i < 4; i++) await adapter.jobs.enqueue(job({ type: 'a', payload: i }));
    const other = await adapter.jobs.enqueue(job({ type: 'b' }));
    const two = await adapter.jobs.claim({ worker: 'w1', limit: 2, leaseMs: LEASE, types: ['a'] });
    expect(two).toHaveLength(2);
    expect(two.every((j) => j.type === 'a')).toBe(true);
    expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE, types: ['b'] }))).toEqual([other.id]);
    expect(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE, types: ['c'] })).toEqual([]);
    expect(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).toHaveLength(2);
  },

  'a leased job is not delivered again while its lease is live': async ({ adapter }) => {
    const { id } = await adapter.jobs.enqueue(job());
    expect(ids(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE }))).toEqual([id]);
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 5, leaseMs: LEASE })).toEqual([]);
    expect(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE })).toEqual([]);
  },

  'N workers claiming concurrently: each job is delivered to exactly one worker': needs(
    ['concurrency'],
    async (context) => {
      const enqueued = await context.adapter.jobs.enqueueMany(
        Array.from({ length: 40 }, (_, i) => job({ payload: { i } })),
      );
      const deliveries = await drain(context, 8, 3);
      const delivered = deliveries.map((d) => d.job.id);
      expect(delivered).toHaveLength(40);
      expect(new Set(delivered).size).toBe(40);
      expect(new Set(delivered)).toEqual(new Set(enqueued.map((r) => r.id)));
      for (const { worker, job: j } of deliveries) {
        expect((await context.adapter.jobs.get(j.id))?.leaseOwner).toBe(worker);
      }
      expect(await context.adapter.jobs.counts()).toEqual({ pending: 0, running: 40, done: 0, dead: 0 });
    },
  ),

  'an expired lease is redelivered to another worker; the old owner has lost it': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const { id } = await adapter.jobs.enqueue(job());
      await claimOne(adapter, 'w1');
      clock.advance(LEASE);
      const again = await claimOne(adapter, 'w2');
      expect(again).toMatchObject({ id, leaseOwner: 'w2', attempts: 2, status: 'running' });
      expect(await adapter.jobs.complete(id, 'w1')).toBe(false);
      expect(await adapter.jobs.heartbeat(id, 'w1', LEASE)).toBe(false);
      expect(
        await adapter.jobs.fail(id, 'w1', { error: { message: 'late' }, retryAt: new Date(clock.ms()) }),
      ).toBe('lost');
      expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w2', lastError: null });
      expect(await adapter.jobs.complete(id, 'w2')).toBe(true);
    },
  ),

  'heartbeat extends the lease so the job is not redelivered': needs(['clock'], async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    await claimOne(adapter, 'w1');
    clock.advance(LEASE - 1_000);
    expect(await adapter.jobs.heartbeat(id, 'w1', LEASE)).toBe(true);
    expectDate((await adapter.jobs.get(id))?.leaseExpiresAt, clock.ms() + LEASE);
    clock.advance(LEASE - 1_000);
    expect(await claimOne(adapter, 'w2')).toBeNull();
    clock.advance(1_000);
    expect((await claimOne(adapter, 'w2'))?.id).toBe(id);
  }),

  'heartbeatMany extends the leases of the worker own running jobs only, and returns their ids in order': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const a = await adapter.jobs.enqueue(job({ dedupeKey: 'a', orderingKey: 'rec-a' }));
      const b = await adapter.jobs.enqueue(job({ dedupeKey: 'b' }));
      const c = await adapter.jobs.enqueue(job({ dedupeKey: 'c' }));
      const pending = await adapter.jobs.enqueue(job({ dedupeKey: 'd', runAt: inMs(clock, 3_600_000) }));
      const mine = ids(await adapter.jobs.claim({ worker: 'w1', limit: 2, leaseMs: LEASE }));
      const theirs = ids(await adapter.jobs.claim({ worker: 'w2', limit: 1, leaseMs: LEASE }));
      expect(mine).toHaveLength(2);
      const before = (await adapter.jobs.get(theirs[0] ?? ''))?.leaseExpiresAt;
      clock.advance(LEASE - 1_000);
      const asked = [c.id, b.id, a.id, pending.id, a.id, 'not-a-job', '00000000-0000-4000-8000-000000000000'];
      const alive = await adapter.jobs.heartbeatMany(asked, 'w1', LEASE);
      expect(alive).toEqual([c.id, b.id, a.id].filter((id) => mine.includes(id)));
      for (const id of mine) expectDate((await adapter.jobs.get(id))?.leaseExpiresAt, clock.ms() + LEASE);
      expect((await adapter.jobs.get(theirs[0] ?? ''))?.leaseExpiresAt).toEqual(before);
      expect((await adapter.jobs.get(pending.id))?.status).toBe('pending');
      // The renewed jobs are not redelivered when the first lease would have ended; the other one is.
      clock.advance(1_000);
      const redelivered = ids(await adapter.jobs.claim({ worker: 'w3', limit: 5, leaseMs: LEASE }));
      expect(redelivered).toEqual(theirs);
      expect(await adapter.jobs.heartbeatMany([], 'w1', LEASE)).toEqual([]);
    },
  ),

  'heartbeatMany never revives a lease another worker has taken over': needs(['clock'], async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job({ orderingKey: 'rec-1' }));
    await claimOne(adapter, 'w1');
    clock.advance(LEASE);
    expect((await claimOne(adapter, 'w2'))?.id).toBe(id);
    expect(await adapter.jobs.heartbeatMany([id], 'w1', LEASE * 10)).toEqual([]);
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w2' });
    expect(await adapter.jobs.heartbeatMany([id], 'w2', LEASE)).toEqual([id]);
  }),

  'an older job parked on a wait key does not hold back the younger jobs of its ordering key; woken, it goes first again': needs(['clock'], async ({ adapter, clock }) => {
    const older = await adapter.jobs.enqueue(job({ dedupeKey: 'v1', orderingKey: 'rec-p' }));
    expect((await claimOne(adapter, 'w1'))?.id).toBe(older.id);
    expect(await adapter.jobs.fail(older.id, 'w1', { error: { message: 'waiting' }, retryAt: inMs(clock, 3_600_000), waitKey: 'ref:o77' })).toBe('retrying');
    const younger = await adapter.jobs.enqueue(job({ dedupeKey: 'v2', orderingKey: 'rec-p' }));
    const third = await adapter.jobs.enqueue(job({ dedupeKey: 'v3', orderingKey: 'rec-p' }));
    // The younger ones still run one at a time, in order.
    expect((await claimOne(adapter, 'w2'))?.id).toBe(younger.id);
    expect(await claimOne(adapter, 'w3')).toBeNull();
    expect(await adapter.jobs.complete(younger.id, 'w2')).toBe(true);
    // Woken, the parked job is the oldest unfinished again: it runs before the third.
    expect(await adapter.jobs.wake('ref:o77')).toBe(1);
    expect((await claimOne(adapter, 'w3'))?.id).toBe(older.id);
    expect(await claimOne(adapter, 'w4')).toBeNull();
    expect(await adapter.jobs.complete(older.id, 'w3')).toBe(true);
    expect((await claimOne(adapter, 'w4'))?.id).toBe(third.id);
  }),

  'a parked job whose retry time has come runs before the younger jobs of its key, never beside them': needs(['clock'], async ({ adapter, clock }) => {
    const older = await adapter.jobs.enqueue(job({ dedupeKey: 'v1', orderingKey: 'rec-q' }));
    expect((await claimOne(adapter, 'w1'))?.id).toBe(older.id);
    expect(await adapter.jobs.fail(older.id, 'w1', { error: { message: 'waiting' }, retryAt: inMs(clock, 60_000), waitKey: 'ref:o78' })).toBe('retrying');
    const younger = await adapter.jobs.enqueue(job({ dedupeKey: 'v2', orderingKey: 'rec-q' }));
    clock.advance(60_001);
    // Both are due now and neither is running: only the oldest is taken, in one claim or two.
    expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([older.id]);
    expect(await claimOne(adapter, 'w3')).toBeNull();
    expect(await adapter.jobs.complete(older.id, 'w2')).toBe(true);
    expect((await claimOne(adapter, 'w3'))?.id).toBe(younger.id);
  }),

  'heartbeat by a worker that does not hold the job returns false and changes nothing': async ({ adapter }) => {
    const { id } = await adapter.jobs.enqueue(job());
    expect(await adapter.jobs.heartbeat(id, 'w1', LEASE)).toBe(false);
    const claimed = await claimOne(adapter, 'w1');
    expect(await adapter.jobs.heartbeat(id, 'w2', LEASE * 10)).toBe(false);
    expect((await adapter.jobs.get(id))?.leaseExpiresAt).toEqual(claimed?.leaseExpiresAt);
    expect(await adapter.jobs.heartbeat('00000000-0000-4000-8000-000000000000', 'w1', LEASE)).toBe(false);
  },

  'complete is idempotent and the stored job is done': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    await claimOne(adapter, 'w1');
    clock.advance(300);
    expect(await adapter.jobs.complete(id, 'w1')).toBe(true);
    expect(await adapter.jobs.complete(id, 'w1')).toBe(false);
    const row = await inspect.job(id);
    expect(row).toMatchObject({ status: 'done', attempts: 1 });
    expectDate(row?.completedAt, clock.ms());
    const record = await adapter.jobs.get(id);
    expect(record?.status).toBe('done');
    expectDate(record?.completedAt, clock.ms());
    expect(await claimOne(adapter, 'w2')).toBeNull();
  }),

  'complete by another worker returns false and leaves the job running': async ({ adapter }) => {
    const { id } = await adapter.jobs.enqueue(job());
    expect(await adapter.jobs.complete(id, 'w1')).toBe(false);
    await claimOne(adapter, 'w1');
    expect(await adapter.jobs.complete(id, 'w2')).toBe(false);
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w1', completedAt: null });
  },

  '10 concurrent completions by the owner: exactly one true': needs(['concurrency'], async (context) => {
    const { id } = await context.adapter.jobs.enqueue(job());
    await claimOne(context.adapter, 'w1');
    const results = await race(context, 10, (adapter) => adapter.jobs.complete(id, 'w1'));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await context.adapter.jobs.get(id))?.status).toBe('done');
  }),

  'fail schedules a retry at retryAt with the error; the job is not due before it': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const { id } = await adapter.jobs.enqueue(job({ maxAttempts: 3 }));
      await claimOne(adapter, 'w1');
      const retryAt = new Date(clock.ms() + 30_000);
      expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'Connec! 503', code: 'server_error' }, retryAt })).toBe(
        'retrying',
      );
      const failed = await adapter.jobs.get(id);
      expect(failed).toMatchObject({
        status: 'pending',
        attempts: 1,
        leaseOwner: null,
        lastError: { message: 'Connec! 503', code: 'server_error' },
      });
      expectDate(failed?.runAt, retryAt);
      clock.advance(29_999);
      expect(await claimOne(adapter, 'w2')).toBeNull();
      clock.advance(1);
      expect(await claimOne(adapter, 'w2')).toMatchObject({ id, attempts: 2 });
    },
  ),

  'the attempt that reaches maxAttempts dead-letters the job': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const { id } = await adapter.jobs.enqueue(job({ maxAttempts: 3 }));
    const outcomes: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claimed = await claimOne(adapter, 'w1');
      expect(claimed).toMatchObject({ id, attempts: attempt });
      outcomes.push(
        await adapter.jobs.fail(id, 'w1', { error: { message: `boom ${attempt}` }, retryAt: new Date(clock.ms()) }),
      );
    }
    expect(outcomes).toEqual(['retrying', 'retrying', 'dead']);
    expect(await claimOne(adapter, 'w1')).toBeNull();
    const row = await inspect.job(id);
    expect(row).toMatchObject({ status: 'dead', attempts: 3 });
    expect(row?.lastError).toMatchObject({ message: 'boom 3' });
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 1 });
    expect(ids(await adapter.jobs.listDead())).toEqual([id]);
  }),

  'a final failure dead-letters the job on its first attempt; a final failure by a non-owner is lost': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const { id } = await adapter.jobs.enqueue(job({ maxAttempts: 5 }));
    const { id: other } = await adapter.jobs.enqueue(job({ maxAttempts: 5, dedupeKey: 'other-final' }));
    expect(await claimOne(adapter, 'w1')).toMatchObject({ attempts: 1 });
    expect(await claimOne(adapter, 'w1')).toMatchObject({ attempts: 1 });
    const later = new Date(clock.ms() + 60_000);
    expect(await adapter.jobs.fail(id, 'w2', { error: { message: 'not mine' }, retryAt: later, final: true })).toBe('lost');
    expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'invalid plan', code: 'billing_error' }, retryAt: later, waitKey: 'k', final: true })).toBe('dead');
    // `final: false` is an ordinary failed attempt.
    expect(await adapter.jobs.fail(other, 'w1', { error: { message: 'transient' }, retryAt: later, final: false })).toBe('retrying');
    const row = await inspect.job(id);
    expect(row).toMatchObject({ status: 'dead', attempts: 1, leaseOwner: null });
    expect(row?.lastError).toEqual({ message: 'invalid plan', code: 'billing_error' });
    expect(await inspect.job(other)).toMatchObject({ status: 'pending', attempts: 1 });
    expect(ids(await adapter.jobs.listDead())).toEqual([id]);
    // A dead letter can be retried by hand once the cause is fixed.
    expect(await adapter.jobs.requeue(id)).toBe(true);
    expect(await claimOne(adapter, 'w1')).toMatchObject({ id });
  }),

  'fail by a worker that does not hold the job is lost and changes nothing': async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    const failure = { error: { message: 'x' }, retryAt: new Date(clock.ms() + 1_000) };
    expect(await adapter.jobs.fail(id, 'w1', failure)).toBe('lost');
    await claimOne(adapter, 'w1');
    expect(await adapter.jobs.fail(id, 'w2', failure)).toBe('lost');
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w1', lastError: null });
  },

  'release gives an owned job back due now without counting the attempt; the next job of its key can follow': async ({
    adapter,
    clock,
  }) => {
    const { id } = await adapter.jobs.enqueue(job({ orderingKey: 'k', maxAttempts: 1 }));
    const next = await adapter.jobs.enqueue(job({ orderingKey: 'k' }));
    expect((await claimOne(adapter, 'w1'))?.id).toBe(id);
    expect(await adapter.jobs.release(id, 'w2')).toBe(false);
    expect(await adapter.jobs.release('00000000-0000-4000-8000-000000000000', 'w1')).toBe(false);
    clock.advance(1_000);
    expect(await adapter.jobs.release(id, 'w1')).toBe(true);
    expect(await adapter.jobs.release(id, 'w1')).toBe(false);
    const released = await adapter.jobs.get(id);
    expect(released).toMatchObject({ status: 'pending', attempts: 0, leaseOwner: null, leaseExpiresAt: null });
    expect(released?.runAt.getTime()).toBeLessThanOrEqual(clock.ms());
    // Claimed again (not dead-lettered although maxAttempts is 1), then its key's next job.
    expect((await claimOne(adapter, 'w2'))?.id).toBe(id);
    expect(await adapter.jobs.complete(id, 'w2')).toBe(true);
    expect((await claimOne(adapter, 'w2'))?.id).toBe(next.id);
  },

  'release keeps the lastError of an earlier failed attempt': async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    await claimOne(adapter, 'w1');
    await adapter.jobs.fail(id, 'w1', { error: { message: 'timeout', code: 'E_TIMEOUT' }, retryAt: new Date(clock.ms()) });
    expect((await claimOne(adapter, 'w2'))?.id).toBe(id);
    expect(await adapter.jobs.release(id, 'w2')).toBe(true);
    expect(await adapter.jobs.get(id)).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastError: { message: 'timeout', code: 'E_TIMEOUT' },
    });
  },

  'requeue turns a dead job into a due pending job with attempts reset; other jobs are refused': async ({
    adapter,
    clock,
  }) => {
    const { id } = await adapter.jobs.enqueue(job({ maxAttempts: 1 }));
    const alive = await adapter.jobs.enqueue(job({ type: 'other' }));
    await claimOne(adapter, 'w1', { types: ['connec.notification'] });
    expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'bad' }, retryAt: new Date(clock.ms() + 99_999) })).toBe(
      'dead',
    );
    expect(await adapter.jobs.requeue(alive.id)).toBe(false);
    expect(await adapter.jobs.requeue('00000000-0000-4000-8000-000000000000')).toBe(false);
    clock.advance(5_000);
    expect(await adapter.jobs.requeue(id)).toBe(true);
    expect(await adapter.jobs.requeue(id)).toBe(false);
    const requeued = await adapter.jobs.get(id);
    // The attempts start over without the earlier error (the worker's crash suspects rely on it).
    expect(requeued).toMatchObject({ status: 'pending', attempts: 0, lastError: null, leaseOwner: null, leaseExpiresAt: null });
    expect(requeued?.runAt.getTime()).toBeLessThanOrEqual(clock.ms());
    expect(await adapter.jobs.listDead()).toEqual([]);
    expect((await claimOne(adapter, 'w2', { types: ['connec.notification'] }))?.id).toBe(id);
  },

  'discard deletes a dead job and frees its dedupe key; a pending, running or done job or an unknown id is refused': async ({
    adapter,
    clock,
  }) => {
    const { id } = await adapter.jobs.enqueue(job({ dedupeKey: 'dismissed', maxAttempts: 1 }));
    const others = await adapter.jobs.enqueueMany(['pending', 'running', 'done'].map((type) => job({ type })));
    const otherIds = others.map((o) => o.id);
    expect((await claimOne(adapter, 'w1', { types: ['connec.notification'] }))?.id).toBe(id);
    expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'never maps' }, retryAt: inMs(clock, 99_999) })).toBe('dead');
    expect((await claimOne(adapter, 'w1', { types: ['running'] }))?.id).toBe(otherIds[1]);
    expect((await claimOne(adapter, 'w1', { types: ['done'] }))?.id).toBe(otherIds[2]);
    expect(await adapter.jobs.complete(otherIds[2] ?? '', 'w1')).toBe(true);
    const untouched = await Promise.all(otherIds.map((other) => adapter.jobs.get(other)));
    for (const other of [...otherIds, '00000000-0000-4000-8000-000000000000']) expect(await adapter.jobs.discard(other)).toBe(false);
    expect(await Promise.all(otherIds.map((other) => adapter.jobs.get(other)))).toEqual(untouched);
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 1, done: 1, dead: 1 });

    expect(await adapter.jobs.discard(id)).toBe(true);
    expect(await adapter.jobs.discard(id)).toBe(false);
    expect(await adapter.jobs.get(id)).toBeNull();
    expect(await adapter.jobs.listDead()).toEqual([]);
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 1, done: 1, dead: 0 });
    expect(await adapter.jobs.requeue(id)).toBe(false);
    // Its dedupe key is free: the same work can be enqueued again, as a new job.
    const again = await adapter.jobs.enqueue(job({ dedupeKey: 'dismissed' }));
    expect(again.created).toBe(true);
    expect(again.id).not.toBe(id);
  },

  'a concurrent requeue and discard of one dead job: exactly one wins, and the stored job is the winner\'s': needs(
    ['concurrency'],
    async (context) => {
      const { adapter, clock } = context;
      for (let round = 0; round < 5; round++) {
        // A type per round: a job requeued in an earlier round stays pending.
        const type = `race-${round}`;
        const { id } = await adapter.jobs.enqueue(job({ type, maxAttempts: 1 }));
        expect((await claimOne(adapter, 'w1', { types: [type] }))?.id).toBe(id);
        expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'x' }, retryAt: inMs(clock, 99_999) })).toBe('dead');
        // Which call starts first alternates between rounds.
        const results = await race(context, 2, (racer, i) => ((i + round) % 2 === 0 ? racer.jobs.requeue(id) : racer.jobs.discard(id)).then((won) => ({ requeue: (i + round) % 2 === 0, won })));
        const winners = results.filter((r) => r.won);
        expect(winners).toHaveLength(1);
        const stored = await adapter.jobs.get(id);
        if (winners[0]?.requeue) expect(stored).toMatchObject({ id, status: 'pending', attempts: 0, lastError: null });
        else expect(stored).toBeNull();
      }
    },
  ),

  'listDead filters by tenant and type and honours limit': async ({ adapter, clock }) => {
    const kill = async (input: JobInput) => {
      const { id } = await adapter.jobs.enqueue({ ...input, maxAttempts: 1 });
      const claimed = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: LEASE, types: [input.type] });
      expect(ids(claimed)).toEqual([id]);
      await adapter.jobs.fail(id, 'w', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) });
      return id;
    };
    const a1 = await kill(job({ type: 'a' }));
    clock.advance(1);
    const a2 = await kill(job({ type: 'a', tenant: OTHER_TENANT }));
    clock.advance(1);
    const b1 = await kill(job({ type: 'b' }));
    await adapter.jobs.enqueue(job({ type: 'a' }));
    expect(sorted(ids(await adapter.jobs.listDead()), (s) => s)).toEqual(sorted([a1, a2, b1], (s) => s));
    expect(sorted(ids(await adapter.jobs.listDead({ type: 'a' })), (s) => s)).toEqual(sorted([a1, a2], (s) => s));
    expect(sorted(ids(await adapter.jobs.listDead({ tenant: TENANT })), (s) => s)).toEqual(sorted([a1, b1], (s) => s));
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, type: 'b' }))).toEqual([b1]);
    expect(await adapter.jobs.listDead({ limit: 2 })).toHaveLength(2);
    // Oldest first by default; newestFirst puts the latest failure first, so a limit keeps it.
    expect(ids(await adapter.jobs.listDead({ type: 'a' }))).toEqual([a1, a2]);
    expect(ids(await adapter.jobs.listDead({ newestFirst: true }))).toEqual([b1, a2, a1]);
    expect(ids(await adapter.jobs.listDead({ type: 'a', newestFirst: true, limit: 1 }))).toEqual([a2]);
  },

  'listDead filters by groupId before the limit': async ({ adapter, clock }) => {
    const kill = async (input: JobInput) => {
      const { id } = await adapter.jobs.enqueue({ ...input, maxAttempts: 1 });
      const claimed = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: LEASE, types: [input.type] });
      expect(ids(claimed)).toEqual([id]);
      await adapter.jobs.fail(id, 'w', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) });
      clock.advance(1);
      return id;
    };
    const mine1 = await kill(job({ type: 'a' }));
    const mine2 = await kill(job({ type: 'a' }));
    const mineB = await kill(job({ type: 'b' }));
    // Failed later: other groups of the tenant, the same group id in another tenant, a job of no group.
    const others: string[] = [];
    for (let n = 0; n < 3; n++) others.push(await kill(job({ type: 'a', groupId: `${GROUP}-other-${n}` })));
    const elsewhere = await kill(job({ type: 'a', tenant: OTHER_TENANT }));
    const groupless = await kill(job({ type: 'a', groupId: null }));
    await adapter.jobs.enqueue(job({ type: 'a' }));

    expect(ids(await adapter.jobs.listDead({ groupId: GROUP }))).toEqual([mine1, mine2, mineB, elsewhere]);
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, groupId: GROUP }))).toEqual([mine1, mine2, mineB]);
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, type: 'a', groupId: GROUP }))).toEqual([mine1, mine2]);
    // The group's latest failure, however many other groups failed since.
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, type: 'a', groupId: GROUP, limit: 1, newestFirst: true }))).toEqual([mine2]);
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, type: 'b', groupId: GROUP, limit: 1, newestFirst: true }))).toEqual([mineB]);
    expect(ids(await adapter.jobs.listDead({ groupId: `${GROUP}-other-1` }))).toEqual([others[1]]);
    expect(await adapter.jobs.listDead({ tenant: OTHER_TENANT, type: 'b', groupId: GROUP })).toEqual([]);
    expect(await adapter.jobs.listDead({ groupId: 'no-such-group' })).toEqual([]);
    // Without groupId every group's dead job is listed, the job of no group too.
    expect(ids(await adapter.jobs.listDead({ tenant: TENANT, type: 'a', newestFirst: true }))).toEqual([groupless, ...others.reverse(), mine2, mine1]);
  },

  'listDead newestFirst orders by the latest failure, not by creation': async ({ adapter, clock }) => {
    const older = await adapter.jobs.enqueue(job({ type: 'a', maxAttempts: 1 }));
    clock.advance(1);
    const newer = await adapter.jobs.enqueue(job({ type: 'b', maxAttempts: 1 }));
    clock.advance(1);
    // The newer job fails first; the older one fails later (its worker was slower).
    await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: LEASE });
    expect(await adapter.jobs.fail(newer.id, 'w', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    clock.advance(1_000);
    expect(await adapter.jobs.fail(older.id, 'w', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    expect(ids(await adapter.jobs.listDead())).toEqual([older.id, newer.id]);
    expect(ids(await adapter.jobs.listDead({ newestFirst: true }))).toEqual([older.id, newer.id]);
    expect(ids(await adapter.jobs.listDead({ newestFirst: true, limit: 1 }))).toEqual([older.id]);
    // Failed again later after a requeue, the newer job becomes the latest failure.
    expect(await adapter.jobs.requeue(newer.id)).toBe(true);
    clock.advance(1_000);
    expect((await claimOne(adapter, 'w'))?.id).toBe(newer.id);
    expect(await adapter.jobs.fail(newer.id, 'w', { error: { message: 'dead again' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    expect(ids(await adapter.jobs.listDead({ newestFirst: true }))).toEqual([newer.id, older.id]);
  },

  'counts reports every status, filtered by tenant and type': async ({ adapter }) => {
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    await adapter.jobs.enqueue(job({ type: 'a' }));
    await adapter.jobs.enqueue(job({ type: 'a' }));
    await adapter.jobs.enqueue(job({ type: 'b', tenant: OTHER_TENANT }));
    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: LEASE, types: ['a'] });
    await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: LEASE, types: ['b'] });
    await adapter.jobs.complete(claimed[0]?.id ?? '', 'w');
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 1, done: 1, dead: 0 });
    expect(await adapter.jobs.counts({ type: 'a' })).toEqual({ pending: 1, running: 0, done: 1, dead: 0 });
    expect(await adapter.jobs.counts({ tenant: OTHER_TENANT })).toEqual({ pending: 0, running: 1, done: 0, dead: 0 });
  },

  'purgeCompleted deletes only done jobs completed before the cutoff': needs(
    ['inspect'],
    async ({ adapter, inspect, clock }) => {
      const old = await adapter.jobs.enqueue(job({ payload: 'old' }));
      await claimOne(adapter, 'w');
      await adapter.jobs.complete(old.id, 'w');
      clock.advance(10_000);
      const cutoff = new Date(clock.ms());
      const recent = await adapter.jobs.enqueue(job({ payload: 'recent' }));
      await claimOne(adapter, 'w');
      await adapter.jobs.complete(recent.id, 'w');
      const pending = await adapter.jobs.enqueue(job({ payload: 'pending', runAt: new Date(0) }));
      expect(await adapter.jobs.purgeCompleted(cutoff)).toBe(1);
      expect(await inspect.job(old.id)).toBeNull();
      expect(await adapter.jobs.get(old.id)).toBeNull();
      expect((await inspect.job(recent.id))?.status).toBe('done');
      expect((await inspect.job(pending.id))?.status).toBe('pending');
      expect(await adapter.jobs.purgeCompleted(cutoff)).toBe(0);
    },
  ),

  'purgeCompleted never deletes dead jobs (the dead letters), however old': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const dead = await adapter.jobs.enqueue(job({ dedupeKey: 'dead-1', maxAttempts: 1 }));
    await claimOne(adapter, 'w');
    expect(await adapter.jobs.fail(dead.id, 'w', { error: { message: 'dead' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    const done = await adapter.jobs.enqueue(job());
    await claimOne(adapter, 'w');
    await adapter.jobs.complete(done.id, 'w');
    clock.advance(86_400_000);
    expect(await adapter.jobs.purgeCompleted(new Date(clock.ms()))).toBe(1);
    expect((await inspect.job(dead.id))?.status).toBe('dead');
    expect(ids(await adapter.jobs.listDead())).toEqual([dead.id]);
    expect(await adapter.jobs.enqueue(job({ dedupeKey: 'dead-1' }))).toEqual({ id: dead.id, created: false });
  }),

  'wake counts and changes only pending jobs: a job already claimed again is left alone': needs(['clock'], async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    await claimOne(adapter, 'w1');
    await adapter.jobs.fail(id, 'w1', { error: { message: 'missing a-1' }, retryAt: inMs(clock, 1_000), waitKey: 'ref:a-1' });
    // The retry came due before the reference arrived: the job runs again.
    clock.advance(1_000);
    const running = await claimOne(adapter, 'w2');
    expect(running?.id).toBe(id);
    expect(await adapter.jobs.wake('ref:a-1')).toBe(0);
    expect(await adapter.jobs.wakeMany(['ref:a-1'])).toBe(0);
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w2', runAt: running?.runAt });
  }),

  'a job failed with a waitKey is woken by wake(waitKey), once': needs(['clock'], async ({ adapter, clock }) => {
    const { id } = await adapter.jobs.enqueue(job());
    const other = await adapter.jobs.enqueue(job({ type: 'other' }));
    await claimOne(adapter, 'w1', { types: ['connec.notification'] });
    const far = new Date(clock.ms() + 3_600_000);
    expect(
      await adapter.jobs.fail(id, 'w1', { error: { message: 'missing account a-1' }, retryAt: far, waitKey: 'ref:a-1' }),
    ).toBe('retrying');
    expect((await adapter.jobs.get(id))?.waitKey).toBe('ref:a-1');
    expect(await adapter.jobs.wake('ref:unrelated')).toBe(0);
    clock.advance(1_000);
    expect(await adapter.jobs.wake('ref:a-1')).toBe(1);
    expect(await adapter.jobs.wake('ref:a-1')).toBe(0);
    const woken = await adapter.jobs.get(id);
    expect(woken?.runAt.getTime()).toBeLessThanOrEqual(clock.ms());
    expect(woken?.waitKey).toBeNull();
    expect((await claimOne(adapter, 'w2', { types: ['connec.notification'] }))?.id).toBe(id);
    expect((await adapter.jobs.get(other.id))?.status).toBe('pending');
  }),

  'jobs sharing an orderingKey run one at a time, oldest first': async ({ adapter, clock }) => {
    const first = await adapter.jobs.enqueue(job({ orderingKey: 'g/contact/c-1', payload: 1 }));
    clock.advance(1);
    const second = await adapter.jobs.enqueue(job({ orderingKey: 'g/contact/c-1', payload: 2 }));
    clock.advance(1);
    const unrelated = await adapter.jobs.enqueue(job({ orderingKey: 'g/contact/c-2', payload: 3 }));
    const free = await adapter.jobs.enqueue(job({ payload: 4 }));
    const batch = await adapter.jobs.claim({ worker: 'w1', limit: 10, leaseMs: LEASE });
    expect(sorted(ids(batch), (s) => s)).toEqual(sorted([first.id, unrelated.id, free.id], (s) => s));
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
    await adapter.jobs.complete(first.id, 'w1');
    expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([second.id]);
  },

  'an older job of the same orderingKey waiting for its retry blocks the newer ones': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const first = await adapter.jobs.enqueue(job({ orderingKey: 'k', payload: 1 }));
      await claimOne(adapter, 'w1');
      clock.advance(1);
      const second = await adapter.jobs.enqueue(job({ orderingKey: 'k', payload: 2 }));
      await adapter.jobs.fail(first.id, 'w1', { error: { message: 'retry' }, retryAt: new Date(clock.ms() + 10_000) });
      expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
      clock.advance(10_000);
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([first.id]);
      await adapter.jobs.complete(first.id, 'w2');
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([second.id]);
    },
  ),

  'a running job of an orderingKey whose lease expired is redelivered before the newer ones': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const first = await adapter.jobs.enqueue(job({ orderingKey: 'k', payload: 1 }));
      await claimOne(adapter, 'w1');
      clock.advance(1);
      await adapter.jobs.enqueue(job({ orderingKey: 'k', payload: 2 }));
      clock.advance(LEASE);
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([first.id]);
    },
  ),

  // An older job of a record dead-letters and the newer one runs; an operator requeues the dead
  // letter while the newer job still holds its live lease. The requeued job, though older, must
  // wait for the running one: two jobs of the record would otherwise run at once.
  'a requeued older job of an orderingKey waits while a newer job of its key holds a live lease': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const key = 'g/contact/c-1';
      const older = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 1, maxAttempts: 1 }));
      clock.advance(1);
      const newer = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 2 }));
      expect((await claimOne(adapter, 'w0'))?.id).toBe(older.id);
      expect(await adapter.jobs.fail(older.id, 'w0', { error: { message: 'boom' }, retryAt: new Date(clock.ms()) })).toBe('dead');
      expect((await claimOne(adapter, 'w1'))?.id).toBe(newer.id);
      clock.advance(1_000);
      expect(await adapter.jobs.requeue(older.id)).toBe(true);
      expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
      expect(await adapter.jobs.complete(newer.id, 'w1')).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([older.id]);
    },
  ),

  'an orderingKey is shared across job types, and a types filter never skips past an older job of the key': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const key = 'g/contact/c-1';
      const first = await adapter.jobs.enqueue(job({ type: 'a', orderingKey: key, payload: 1 }));
      clock.advance(1);
      const second = await adapter.jobs.enqueue(job({ type: 'b', orderingKey: key, payload: 2 }));
      // A worker for type b only must not run the newer job while the older one of type a is pending.
      expect(await adapter.jobs.claim({ worker: 'wb', limit: 10, leaseMs: LEASE, types: ['b'] })).toEqual([]);
      expect(ids(await adapter.jobs.claim({ worker: 'wa', limit: 10, leaseMs: LEASE }))).toEqual([first.id]);
      // ...nor while it runs.
      expect(await adapter.jobs.claim({ worker: 'wb', limit: 10, leaseMs: LEASE, types: ['b'] })).toEqual([]);
      expect(await adapter.jobs.claim({ worker: 'wx', limit: 10, leaseMs: LEASE })).toEqual([]);
      expect(await adapter.jobs.complete(first.id, 'wa')).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'wb', limit: 10, leaseMs: LEASE, types: ['b'] }))).toEqual([second.id]);
    },
  ),

  // One worker ends up owning two jobs of one record, both leases lapsed (it stalled twice): a
  // batch heartbeat may give the record's turn back to one of them, never to both.
  'heartbeatMany gives at most one of a worker own lapsed jobs of one orderingKey a live lease': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const key = 'g/contact/c-1';
      const older = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 1, maxAttempts: 1 }));
      clock.advance(1);
      const newer = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 2 }));
      expect((await claimOne(adapter, 'w1'))?.id).toBe(older.id);
      expect(await adapter.jobs.fail(older.id, 'w1', { error: { message: 'boom' }, retryAt: new Date(clock.ms()) })).toBe('dead');
      expect((await claimOne(adapter, 'w1'))?.id).toBe(newer.id);
      expect(await adapter.jobs.requeue(older.id)).toBe(true);
      clock.advance(LEASE);
      expect((await claimOne(adapter, 'w1'))?.id).toBe(older.id);
      clock.advance(LEASE);
      const renewed = await adapter.jobs.heartbeatMany([older.id, newer.id], 'w1', LEASE);
      expect(renewed).toHaveLength(1);
      const stored = [await adapter.jobs.get(older.id), await adapter.jobs.get(newer.id)];
      const live = stored.filter((j) => j?.status === 'running' && j.leaseExpiresAt !== null && j.leaseExpiresAt.getTime() > clock.ms());
      expect(live.map((j) => j?.id)).toEqual(renewed);
      // Single heartbeats keep to the same rule.
      const other = renewed[0] === older.id ? newer.id : older.id;
      expect(await adapter.jobs.heartbeat(other, 'w1', LEASE)).toBe(false);
    },
  ),

  // An older job of a record dead-letters and the newer one runs; its worker stalls past its
  // lease (a GC pause, a blocked event loop) while an operator requeues the dead letter, which,
  // being older, another worker claims. When the stalled worker wakes, its heartbeat must tell
  // it the record's turn is gone instead of giving the newer job a live lease again.
  'heartbeat and heartbeatMany never give a job a live lease while another job of its orderingKey holds one': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const key = 'g/contact/c-1';
      const older = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 1, maxAttempts: 1 }));
      clock.advance(1);
      const newer = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 2 }));
      expect((await claimOne(adapter, 'w0'))?.id).toBe(older.id);
      expect(await adapter.jobs.fail(older.id, 'w0', { error: { message: 'boom' }, retryAt: new Date(clock.ms()) })).toBe('dead');
      expect((await claimOne(adapter, 'w1'))?.id).toBe(newer.id);
      clock.advance(LEASE + 1);
      expect(await adapter.jobs.requeue(older.id)).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([older.id]);
      const stalled = (await adapter.jobs.get(newer.id))?.leaseExpiresAt?.getTime();
      expect(await adapter.jobs.heartbeat(newer.id, 'w1', LEASE)).toBe(false);
      expect(await adapter.jobs.heartbeatMany([newer.id], 'w1', LEASE)).toEqual([]);
      // Only the job holding the record's turn has a live lease; the stalled one kept its lapsed lease.
      const stored = [await adapter.jobs.get(older.id), await adapter.jobs.get(newer.id)];
      const live = stored.filter((j) => j?.status === 'running' && j.leaseExpiresAt !== null && j.leaseExpiresAt.getTime() > clock.ms());
      expect(live.map((j) => j?.id)).toEqual([older.id]);
      expect(stored[1]).toMatchObject({ status: 'running', leaseOwner: 'w1' });
      expect(stored[1]?.leaseExpiresAt?.getTime()).toBe(stalled);
      // The holder's own heartbeat still works, and once it is done the newer job follows.
      expect(await adapter.jobs.heartbeat(older.id, 'w2', LEASE)).toBe(true);
      expect(await adapter.jobs.complete(older.id, 'w2')).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE }))).toEqual([newer.id]);
      expect(await adapter.jobs.heartbeat(newer.id, 'w3', LEASE)).toBe(true);
    },
  ),

  // As above, but the requeued older job is done by the time the stalled worker heartbeats: it
  // still owns the newer job and no job of the record holds a live lease, so the heartbeat
  // extends the lease (and takes the record's turn back). While that lease is live no other job
  // of the record is claimed; once the newer job completes, the next one follows at once.
  'heartbeat and heartbeatMany extend a lapsed lease once the job that held its orderingKey is done': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      const key = 'g/contact/c-1';
      const older = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 1, maxAttempts: 1 }));
      clock.advance(1);
      const newer = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 2 }));
      expect((await claimOne(adapter, 'w0'))?.id).toBe(older.id);
      expect(await adapter.jobs.fail(older.id, 'w0', { error: { message: 'boom' }, retryAt: new Date(clock.ms()) })).toBe('dead');
      expect((await claimOne(adapter, 'w1'))?.id).toBe(newer.id);
      clock.advance(LEASE + 1);
      expect(await adapter.jobs.requeue(older.id)).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE }))).toEqual([older.id]);
      expect(await adapter.jobs.complete(older.id, 'w2')).toBe(true);
      const next = await adapter.jobs.enqueue(job({ orderingKey: key, payload: 3 }));
      expect(await adapter.jobs.heartbeat(newer.id, 'w1', LEASE)).toBe(true);
      expect((await adapter.jobs.get(newer.id))?.leaseExpiresAt?.getTime()).toBe(clock.ms() + LEASE);
      clock.advance(1);
      expect(await adapter.jobs.heartbeatMany([newer.id], 'w1', LEASE)).toEqual([newer.id]);
      expect(await adapter.jobs.get(newer.id)).toMatchObject({ status: 'running', leaseOwner: 'w1', leaseExpiresAt: inMs(clock, LEASE) });
      // The newer job holds the record's turn again: nothing else of the record is claimed while its lease is live.
      clock.advance(LEASE - 1);
      expect(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE })).toEqual([]);
      expect(await adapter.jobs.heartbeat(newer.id, 'w1', LEASE)).toBe(true);
      // Its completion gives the turn to the next job of the record straight away.
      expect(await adapter.jobs.complete(newer.id, 'w1')).toBe(true);
      expect(ids(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: LEASE }))).toEqual([next.id]);
      expect(await adapter.jobs.heartbeat(next.id, 'w3', LEASE)).toBe(true);
    },
  ),

  // 100 records each have an older job parked for an hour (say during a Connec! outage) and a
  // newer one due now but held back behind it. The held-back jobs sort first by runAt; however
  // many there are, a claim still takes the unrelated due jobs behind them, and once the parked
  // heads are due it takes those (and never a newer job of their key).
  'a due head of an ordering key is claimed even behind many held-back jobs': {
    needs: ['clock'],
    timeoutMs: 120_000,
    run: async ({ adapter, clock }) => {
      const HELD = 100;
      const heads: string[] = [];
      for (let i = 0; i < HELD; i++) {
        heads.push((await adapter.jobs.enqueue(job({ orderingKey: `rec-${i}`, payload: { i, v: 1 } }))).id);
        clock.advance(1);
      }
      const first = await adapter.jobs.claim({ worker: 'w1', limit: HELD, leaseMs: LEASE });
      expect(sorted(ids(first), (s) => s)).toEqual(sorted(heads, (s) => s));
      const retryAt = inMs(clock, 3_600_000);
      for (const id of heads) {
        expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'connec down' }, retryAt })).toBe('retrying');
      }
      clock.advance(1_000);
      const newer: string[] = [];
      for (let i = 0; i < HELD; i++) {
        newer.push((await adapter.jobs.enqueue(job({ orderingKey: `rec-${i}`, payload: { i, v: 2 } }))).id);
        clock.advance(1);
      }
      clock.advance(1_000);
      const unrelated = await adapter.jobs.enqueue(job({ orderingKey: 'rec-other', payload: 'other' }));
      clock.advance(1);
      const free = await adapter.jobs.enqueue(job({ payload: 'free' }));

      // No head is due: only the two jobs behind the held-back ones are claimable.
      expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 4, leaseMs: LEASE }))).toEqual([unrelated.id, free.id]);
      expect(await adapter.jobs.claim({ worker: 'w2', limit: 4, leaseMs: LEASE })).toEqual([]);
      expect(await adapter.jobs.completeMany([unrelated.id, free.id], 'w2')).toHaveLength(2);

      // The heads are due again (no wake came): they are claimed oldest first, although every
      // held-back job sorts before them.
      clock.advance(3_600_000);
      expect(ids(await adapter.jobs.claim({ worker: 'w3', limit: 4, leaseMs: LEASE }))).toEqual(heads.slice(0, 4));
      expect(ids(await adapter.jobs.claim({ worker: 'w4', limit: HELD, leaseMs: LEASE }))).toEqual(heads.slice(4));
      expect(await adapter.jobs.claim({ worker: 'w5', limit: HELD, leaseMs: LEASE })).toEqual([]);

      // Once the heads are done, the newer jobs follow.
      expect(await adapter.jobs.completeMany(heads.slice(0, 4), 'w3')).toHaveLength(4);
      expect(await adapter.jobs.completeMany(heads.slice(4), 'w4')).toHaveLength(HELD - 4);
      expect(ids(await adapter.jobs.claim({ worker: 'w5', limit: HELD, leaseMs: LEASE }))).toEqual(newer);
      expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: HELD, done: HELD + 2, dead: 0 });
    },
  },

  'concurrent workers never run two jobs of one orderingKey at once, and take them in order': needs(
    ['concurrency'],
    async (context) => {
      const keys = ['k-a', 'k-b', 'k-c'];
      const expected = new Map<string, string[]>(keys.map((k) => [k, []]));
      for (let i = 0; i < 5; i++) {
        for (const key of keys) {
          const { id } = await context.adapter.jobs.enqueue(job({ orderingKey: key, payload: { key, i } }));
          expected.get(key)?.push(id);
          context.clock.advance(1);
        }
      }
      const order = new Map<string, string[]>(keys.map((k) => [k, []]));
      for (let round = 0; round < 40; round++) {
        const batches = await race(context, 6, (adapter, i) =>
          adapter.jobs.claim({ worker: `w${i}`, limit: 4, leaseMs: LEASE }).then((jobs) => ({ worker: `w${i}`, jobs })),
        );
        const running = batches.flatMap((b) => b.jobs.map((j) => ({ worker: b.worker, job: j })));
        if (running.length === 0) break;
        const runningKeys = running.map((r) => r.job.orderingKey ?? '');
        expect(new Set(runningKeys).size).toBe(runningKeys.length);
        for (const r of running) order.get(r.job.orderingKey ?? '')?.push(r.job.id);
        await Promise.all(running.map((r) => context.adapter.jobs.complete(r.job.id, r.worker)));
      }
      expect(order).toEqual(expected);
      expect(await context.adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 15, dead: 0 });
    },
  ),

  'seeded random workloads keep the queue invariants (single holder, ordering, outcomes, nothing lost)': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      for (const seed of [1, 2, 3, 4]) await runJobWorkload(adapter, clock, seed, 150);
    },
  ),

  'returned jobs are copies: mutating a payload changes nothing stored': async ({ adapter }) => {
    const payload = { items: [{ id: 1 }] };
    const { id } = await adapter.jobs.enqueue(job({ payload }));
    payload.items.push({ id: 2 });
    const claimed = await claimOne(adapter, 'w1');
    expect(claimed?.payload).toEqual({ items: [{ id: 1 }] });
    const fetched = await adapter.jobs.get(id);
    if (fetched && typeof fetched.payload === 'object' && fetched.payload !== null && !Array.isArray(fetched.payload)) {
      fetched.payload['items'] = [];
    }
    expect((await adapter.jobs.get(id))?.payload).toEqual({ items: [{ id: 1 }] });
  },

  'get returns null for an unknown id': async ({ adapter }) => {
    expect(await adapter.jobs.get('00000000-0000-4000-8000-000000000000')).toBeNull();
  },

  'bad arguments are rejected with StorageError and store or claim nothing': async ({ adapter }) => {
    await expectStorageError(adapter.jobs.enqueue(job({ maxAttempts: 0 })), 'jobs.enqueue');
    await expectStorageError(adapter.jobs.enqueue(job({ type: '' })), 'jobs.enqueue');
    await expectStorageError(adapter.jobs.enqueue(job({ runAt: new Date(Number.NaN) })), 'jobs.enqueue');
    await expectStorageError(adapter.jobs.enqueueMany([job({ payload: 'fine' }), job({ maxAttempts: -1 })]), 'jobs.enqueueMany');
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    await adapter.jobs.enqueue(job());
    await expectStorageError(adapter.jobs.claim({ worker: 'w', limit: 0, leaseMs: LEASE }), 'jobs.claim');
    await expectStorageError(adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 0 }), 'jobs.claim');
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 0, done: 0, dead: 0 });
  },

  'enqueueMany with an empty dedupeKey in the batch is rejected with StorageError and stores nothing': async ({
    adapter,
  }) => {
    await expectStorageError(
      adapter.jobs.enqueueMany([job({ payload: 'fine', dedupeKey: 'valid-1' }), job({ dedupeKey: '' })]),
      'jobs.enqueueMany',
    );
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    expect((await adapter.jobs.enqueue(job({ dedupeKey: 'valid-1' }))).created).toBe(true);
    expect(await adapter.jobs.counts()).toEqual({ pending: 1, running: 0, done: 0, dead: 0 });
  },

  'completeMany marks the worker own running jobs done and returns their ids': needs(
    ['inspect'],
    async ({ adapter, inspect, clock }) => {
      const a = await adapter.jobs.enqueue(job({ dedupeKey: 'a' }));
      const b = await adapter.jobs.enqueue(job({ dedupeKey: 'b' }));
      const c = await adapter.jobs.enqueue(job({ dedupeKey: 'c' }));
      const pending = await adapter.jobs.enqueue(job({ dedupeKey: 'd', runAt: inMs(clock, 3_600_000) }));
      await adapter.jobs.claim({ worker: 'w1', limit: 2, leaseMs: LEASE });
      await adapter.jobs.claim({ worker: 'w2', limit: 1, leaseMs: LEASE });
      const mine = (await inspect.jobs()).filter((j) => j.leaseOwner === 'w1').map((j) => String(j.id));
      expect(mine).toHaveLength(2);
      clock.advance(200);
      const done = await adapter.jobs.completeMany([a.id, b.id, c.id, pending.id, a.id, 'not-a-job'], 'w1');
      expect([...done].sort()).toEqual([...mine].sort());
      for (const id of mine) {
        const row = await inspect.job(id);
        expect(row?.status).toBe('done');
        expectDate(row?.completedAt, clock.ms());
      }
      const other = [a.id, b.id, c.id].find((id) => !mine.includes(id)) ?? '';
      expect((await adapter.jobs.get(other))?.status).toBe('running');
      expect((await adapter.jobs.get(pending.id))?.status).toBe('pending');
      expect(await adapter.jobs.completeMany(mine, 'w1')).toEqual([]);
      expect(await adapter.jobs.completeMany([], 'w1')).toEqual([]);
    },
  ),

  'completeMany frees the ordering key for the next job of the same record': async ({ adapter }) => {
    const first = await adapter.jobs.enqueue(job({ dedupeKey: 'v1', orderingKey: 'rec-1' }));
    const second = await adapter.jobs.enqueue(job({ dedupeKey: 'v2', orderingKey: 'rec-1' }));
    expect(ids(await adapter.jobs.claim({ worker: 'w1', limit: 5, leaseMs: LEASE }))).toEqual([first.id]);
    expect(await adapter.jobs.completeMany([first.id], 'w1')).toEqual([first.id]);
    expect(ids(await adapter.jobs.claim({ worker: 'w2', limit: 5, leaseMs: LEASE }))).toEqual([second.id]);
  },

  'wakeMany wakes the jobs waiting on any of the keys': needs(['clock'], async ({ adapter, clock }) => {
    const far = inMs(clock, 3_600_000);
    const waiting: string[] = [];
    for (const key of ['ref:a', 'ref:b', 'ref:c']) {
      const { id } = await adapter.jobs.enqueue(job({ dedupeKey: key }));
      waiting.push(id);
    }
    for (let i = 0; i < 3; i++) {
      const [claimed] = await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE });
      if (!claimed) throw new Error('nothing claimed');
      await adapter.jobs.fail(claimed.id, 'w1', { error: { message: 'waiting' }, retryAt: far, waitKey: `ref:${'abc'[i]}` });
    }
    clock.advance(1_000);
    expect(await adapter.jobs.wakeMany(['ref:a', 'ref:c', 'ref:unrelated', 'ref:a'])).toBe(2);
    expect(await adapter.jobs.wakeMany(['ref:a'])).toBe(0);
    expect(await adapter.jobs.wakeMany([])).toBe(0);
    const rows = await Promise.all(waiting.map((id) => adapter.jobs.get(id)));
    const byKey = new Map(rows.map((r) => [r?.dedupeKey, r]));
    expect(byKey.get('ref:b')?.waitKey).toBe('ref:b');
    for (const key of ['ref:a', 'ref:c']) {
      expect(byKey.get(key)?.waitKey).toBeNull();
      expect(byKey.get(key)?.runAt.getTime()).toBeLessThanOrEqual(clock.ms());
    }
    const claimed = await adapter.jobs.claim({ worker: 'w2', limit: 5, leaseMs: LEASE });
    expect(claimed.map((j) => j.dedupeKey).sort()).toEqual(['ref:a', 'ref:c']);
  }),

  'a payload holding a "__proto__" key keeps it as data': needs(['inspect'], async ({ adapter, inspect }) => {
    const { id } = await adapter.jobs.enqueue(job({ payload: PROTO_JSON() }));
    expectProtoKeyKept((await adapter.jobs.get(id))?.payload);
    expectProtoKeyKept((await inspect.job(id))?.payload);
    const claimed = await claimOne(adapter, 'w1');
    expect(claimed?.id).toBe(id);
    expectProtoKeyKept(claimed?.payload);
  }),
};
