// An ordering guard left behind by a crash between a job's failure (or release) and the
// guard's removal holds nothing: its job is pending again, no longer running under it. It must
// not hold that job, or the key's other jobs, back for a whole lease (the memory adapter
// claims the job at once). A guard whose job still runs under it, or whose claim may still be
// under way (the job unchanged since the claimer read it), keeps holding the key.
import { memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import { type Document, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';
import { backend, openTestDb, unavailable } from './support.js';

const LEASE = 5 * 60_000;

describe.skipIf(unavailable !== null)(`${backend}: an orphan ordering guard of a pending job`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('guard_orphan');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  const guards = () => handle.db.collection('mno_job_order');

  /**
   * Claims the key's job as w1, lets `finish` end its run, then puts back the guard as the
   * claim left it (what a crash right after the failure's write, before the guard's removal,
   * leaves), and claims as w2.
   */
  async function scenario(adapter: StorageAdapter, key: string, finish: (id: string) => Promise<void>, restore: boolean) {
    const a = await adapter.jobs.enqueue({ type: key, payload: { v: 1 }, orderingKey: key });
    const b = await adapter.jobs.enqueue({ type: key, payload: { v: 2 }, orderingKey: key });
    expect((await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE, types: [key] })).map((j) => j.id)).toEqual([a.id]);
    const guard: Document | null = restore ? await guards().findOne({ _id: key as never }) : null;
    if (restore) expect(guard).not.toBeNull();
    await finish(a.id);
    if (guard) {
      expect(await guards().findOne({ _id: key as never })).toBeNull();
      await guards().insertOne(guard);
    }
    return { a: a.id, b: b.id, claimed: (await adapter.jobs.claim({ worker: 'w2', limit: 2, leaseMs: LEASE, types: [key] })).map((j) => j.id) };
  }

  const cases: [string, (adapter: StorageAdapter, id: string) => Promise<void>, 'a' | 'b'][] = [
    [
      'a failed job retrying now',
      async (adapter, id) => {
        expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'boom' }, retryAt: new Date(0) })).toBe('retrying');
      },
      'a',
    ],
    [
      'a dead job requeued by an operator',
      async (adapter, id) => {
        expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'boom' }, retryAt: new Date(0), final: true })).toBe('dead');
        expect(await adapter.jobs.requeue(id)).toBe(true);
      },
      'a',
    ],
    [
      'a released job',
      async (adapter, id) => {
        expect(await adapter.jobs.release(id, 'w1')).toBe(true);
      },
      'a',
    ],
    [
      'a dead job (the next job of the key runs)',
      async (adapter, id) => {
        expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'boom' }, retryAt: new Date(0), final: true })).toBe('dead');
      },
      'b',
    ],
  ];

  for (const [index, [label, finish, next]] of cases.entries()) {
    it(`${label}: claimed at once, as on the memory adapter`, async () => {
      const clock = createTestClock();
      const memory = memoryAdapter({ clock: clock.now });
      const onMemory = await scenario(memory, 'k', (id) => finish(memory, id), false);
      expect(onMemory.claimed).toEqual([onMemory[next]]);

      const adapter = mongoAdapter(handle.db, { clock: clock.now });
      await adapter.ensureIndexes();
      const onMongo = await scenario(adapter, `k-${index}`, (id) => finish(adapter, id), true);
      expect(onMongo.claimed).toEqual([onMongo[next]]);
    });
  }

  it('a guard whose job runs under it, or whose claim may still be under way, holds the key', async () => {
    const clock = createTestClock();
    const adapter = mongoAdapter(handle.db, { clock: clock.now });
    await adapter.ensureIndexes();
    const key = 'k-held';
    const a = await adapter.jobs.enqueue({ type: key, payload: { v: 1 }, orderingKey: key });
    const b = await adapter.jobs.enqueue({ type: key, payload: { v: 2 }, orderingKey: key });
    expect((await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE, types: [key] })).map((j) => j.id)).toEqual([a.id]);
    // Running under its guard: nothing else of the key is claimed.
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 2, leaseMs: LEASE, types: [key] })).toEqual([]);
    expect(await adapter.jobs.complete(a.id, 'w1')).toBe(true);

    // A guard taken for b by a claim that has not claimed it yet (b is still at the revision
    // that claim read): another claim leaves b to it.
    const bDoc = await handle.db.collection('mno_jobs').findOne({ _id: new ObjectId(b.id) });
    await guards().insertOne({
      _id: key as never,
      jobId: new ObjectId(b.id),
      jobRev: bDoc?.['_rev'],
      worker: 'w1',
      leaseExpiresAt: new Date(clock.now().getTime() + LEASE),
      _rev: 'in-progress',
    });
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 2, leaseMs: LEASE, types: [key] })).toEqual([]);
    expect(await guards().findOne({ _id: key as never })).toMatchObject({ _rev: 'in-progress' });
    // Once its lease passed, the guard is taken over.
    clock.advance(LEASE);
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 2, leaseMs: LEASE, types: [key] })).map((j) => j.id)).toEqual([b.id]);
  });
});
