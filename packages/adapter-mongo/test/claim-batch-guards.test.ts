// A claim takes the ordering guards of a batch of heads together, and drops the ones whose job
// it did not claim. A failure dropping one of them (a connection reset) must not leave the
// others behind: each names a job still at the revision the claim read, so it would hold its
// key back until the claim's lease expired.
//
// The heads are held back after their guards are taken by a wake of their keys' older parked
// jobs (made between the claim's reads, as a concurrent `wake` would), and the first guard
// removal fails.
import { createTestClock } from '@org/maestrano-sdk/testing';
import type { Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';
import { backend, beforeFindOne, openTestDb, unavailable } from './support.js';

const LEASE = 60_000;
const KEYS = 12;

/**
 * A Db whose ordering-guard reads (`mno_job_order.findOne`) run `before` first at the first
 * one, and fail at the one numbered `failAt` (counted from 1) once armed.
 */
function hookedDb(db: Db) {
  let count = 0;
  let armed = false;
  let before: (() => Promise<void>) | null = null;
  let failAt = 0;
  return {
    db: beforeFindOne(db, 'mno_job_order', async () => {
      if (!armed) return;
      count += 1;
      const run = before;
      before = null;
      if (run) await run();
      if (count === failAt) throw new Error('connection reset (injected)');
    }),
    arm(options: { before: () => Promise<void>; failAt: number }) {
      armed = true;
      count = 0;
      before = options.before;
      failAt = options.failAt;
    },
  };
}

describe.skipIf(unavailable !== null)(`${backend}: the ordering guards of a claim's batch`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('claim_batch_guards');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  it('a failure dropping one unused guard still drops the others: only that key waits for the guard to lapse', async () => {
    const clock = createTestClock(Date.UTC(2031, 0, 1));
    const hooked = hookedDb(handle.db);
    const plain = mongoAdapter(handle.db, { clock: clock.now });
    const adapter = mongoAdapter(hooked.db, { clock: clock.now });
    await plain.ensureIndexes();

    // Each key's older job is parked on a wait key; its younger job is the key's head.
    const parked: string[] = [];
    for (let i = 0; i < KEYS; i++) parked.push((await plain.jobs.enqueue({ type: 'record', payload: i, orderingKey: `K${i}` })).id);
    expect(await plain.jobs.claim({ worker: 'w0', limit: KEYS, leaseMs: LEASE })).toHaveLength(KEYS);
    for (const id of parked) {
      expect(await plain.jobs.fail(id, 'w0', { error: { message: 'wait' }, retryAt: new Date(clock.ms() + 3_600_000), waitKey: 'wk' })).toBe('retrying');
    }
    clock.advance(1);
    for (let i = 0; i < KEYS; i++) await plain.jobs.enqueue({ type: 'record', payload: -i, orderingKey: `K${i}` });

    // The parked jobs are woken once the claim has taken its guards' first read; each key's
    // head is then held back by its older job, and every guard is dropped. The first drop fails.
    hooked.arm({ before: async () => void (await plain.jobs.wake('wk')), failAt: KEYS + 1 });
    await expect(adapter.jobs.claim({ worker: 'w1', limit: 50, leaseMs: LEASE })).rejects.toThrow(/jobs\.claim failed/);

    // Only the key whose guard could not be dropped waits; the others' woken jobs are claimed now.
    expect(await handle.db.collection('mno_job_order').countDocuments({})).toBe(1);
    const next = await plain.jobs.claim({ worker: 'w2', limit: 50, leaseMs: LEASE });
    expect(next).toHaveLength(KEYS - 1);
    expect(next.every((job) => parked.includes(job.id))).toBe(true);
  });
});
