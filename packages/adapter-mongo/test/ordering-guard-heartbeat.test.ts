// A heartbeat overlapping the completion (or failure) of a job with an orderingKey must not
// leave the key's ordering guard behind: an orphan guard with a live lease for a finished job
// would hold the record's next job back for a whole lease. The worker does not wait for an
// in-flight heartbeatMany before completeMany, so this interleaving is a normal one.
//
// The interleaving is forced by holding the heartbeat's read of the guard collection (as a
// slow network round trip would) while the completion runs.
import type { StorageAdapter } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import type { Db } from 'mongodb';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';
import { backend, beforeFindOne, createGate, openTestDb, unavailable } from './support.js';

const LEASE = 5 * 60_000;

/** A Db whose next `mno_job_order.findOne` can be held (a slow round trip). */
function gatedDb(db: Db) {
  const gate = createGate();
  let armed = false;
  return {
    db: beforeFindOne(db, 'mno_job_order', async () => {
      if (!armed) return;
      armed = false;
      await gate.hold();
    }),
    /** Holds the next guard read; resolves once it is being held. */
    arm(): Promise<void> {
      armed = true;
      return gate.reached();
    },
    release: gate.release,
  };
}

describe.skipIf(unavailable !== null)(`${backend}: a heartbeat racing complete/fail leaves no ordering guard behind`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('guard_heartbeat');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  async function scenario(adapter: StorageAdapter, gate: ReturnType<typeof gatedDb>, finish: 'complete' | 'fail', key: string) {
    const a = await adapter.jobs.enqueue({ type: 'record', payload: { v: 1 }, orderingKey: key });
    const b = await adapter.jobs.enqueue({ type: 'record', payload: { v: 2 }, orderingKey: key });
    const [claimed] = await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE });
    expect(claimed?.id).toBe(a.id);

    // A heartbeat in flight (held at its guard read) while the handler's outcome is recorded.
    const reached = gate.arm();
    const beat = adapter.jobs.heartbeat(a.id, 'w1', LEASE);
    await reached;
    if (finish === 'complete') expect(await adapter.jobs.complete(a.id, 'w1')).toBe(true);
    else expect(await adapter.jobs.fail(a.id, 'w1', { error: { message: 'boom' }, retryAt: new Date(0) })).toBe('retrying');
    gate.release();
    expect(await beat).toBe(true);

    const guard = await handle.db.collection('mno_job_order').findOne({ _id: key as never });
    // The job of the record that is due now (b after a completion, a itself after a retry) is claimable.
    const next = await adapter.jobs.claim({ worker: 'w2', limit: 1, leaseMs: LEASE });
    return { next: next.map((j) => j.id), guardAfterFinish: guard ? String(guard['jobId']) : null, a: a.id, b: b.id };
  }

  it('complete: no guard is left, and the next job of the key is claimed at once', async () => {
    const gate = gatedDb(handle.db);
    const adapter = mongoAdapter(gate.db, { clock: createTestClock().now });
    await adapter.ensureIndexes();
    const r = await scenario(adapter, gate, 'complete', 'k-complete');
    expect({ next: r.next, guardAfterFinish: r.guardAfterFinish }).toEqual({ next: [r.b], guardAfterFinish: null });
  });

  it('fail: no guard is left, and the failed job is redelivered at its retry time', async () => {
    const gate = gatedDb(handle.db);
    const adapter = mongoAdapter(gate.db, { clock: createTestClock().now });
    await adapter.ensureIndexes();
    const r = await scenario(adapter, gate, 'fail', 'k-fail');
    expect({ next: r.next, guardAfterFinish: r.guardAfterFinish }).toEqual({ next: [r.a], guardAfterFinish: null });
  });

  it('a guard left with a live lease for a finished job (an older version, a crash) does not hold the key back', async () => {
    const adapter = mongoAdapter(handle.db, { clock: createTestClock().now });
    await adapter.ensureIndexes();
    const key = 'k-orphan';
    const a = await adapter.jobs.enqueue({ type: 'record', payload: { v: 1 }, orderingKey: key });
    const b = await adapter.jobs.enqueue({ type: 'record', payload: { v: 2 }, orderingKey: key });
    expect((await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE })).map((j) => j.id)).toEqual([a.id]);
    expect(await adapter.jobs.complete(a.id, 'w1')).toBe(true);
    // What a crash between the completion and the guard's removal leaves.
    const far = new Date(Date.parse('9999-01-01T00:00:00.000Z'));
    await handle.db
      .collection('mno_job_order')
      .insertOne({ _id: key as never, jobId: new ObjectId(a.id), worker: 'w1', leaseExpiresAt: far, _rev: 'orphan' });
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 1, leaseMs: LEASE })).map((j) => j.id)).toEqual([b.id]);
    // And a live guard of a running job still holds the key.
    const c = await adapter.jobs.enqueue({ type: 'record', payload: { v: 3 }, orderingKey: key });
    expect(await adapter.jobs.claim({ worker: 'w3', limit: 1, leaseMs: LEASE })).toEqual([]);
    expect(await adapter.jobs.complete(b.id, 'w2')).toBe(true);
    expect((await adapter.jobs.claim({ worker: 'w3', limit: 1, leaseMs: LEASE })).map((j) => j.id)).toEqual([c.id]);
  });
});
