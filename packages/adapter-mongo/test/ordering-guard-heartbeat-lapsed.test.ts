// One worker owns two jobs of one ordering key, both leases lapsed: the older one holds the
// key's (lapsed) guard, the newer one does not. Their heartbeats may give the key's turn back
// to one of them, never to both. The guard owner's heartbeat renews its guard without looking
// at the key's running jobs, so the other job's heartbeat, which found the guard lapsed and no
// running job with a live lease, must have left its mark on the guard before answering.
//
// The concurrent interleaving is forced by holding the older job's heartbeat at its first
// read of the job (as a slow round trip would) while the newer job's heartbeat runs through.
import type { StorageAdapter } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import type { Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';
import { backend, beforeFindOne, createGate, openTestDb, unavailable } from './support.js';

const LEASE = 60_000;

/** A Db whose next `mno_jobs.findOne` of the `_id` given to `arm` is held until `release`. */
function gatedDb(db: Db) {
  const gate = createGate();
  let target: string | null = null;
  return {
    db: beforeFindOne(db, 'mno_jobs', async (filter) => {
      const f = filter as { _id?: unknown } | undefined;
      if (target !== null && f && Object.keys(f).length === 1 && String(f._id) === target) {
        target = null;
        await gate.hold();
      }
    }),
    /** Holds the next `_id` read of job `id`; resolves once it is being held. */
    arm(id: string): Promise<void> {
      target = id;
      return gate.reached();
    },
    release: gate.release,
  };
}

/** A Db whose `nth` `mno_job_order.findOne` after `arm` is held until `release`. */
function gatedGuardReads(db: Db) {
  const gate = createGate();
  let left = 0;
  return {
    db: beforeFindOne(db, 'mno_job_order', async () => {
      if (left > 0 && --left === 0) await gate.hold();
    }),
    arm(nth: number): Promise<void> {
      left = nth;
      return gate.reached();
    },
    release: gate.release,
  };
}

describe.skipIf(unavailable !== null)(`${backend}: heartbeats of a worker's own lapsed jobs of one ordering key`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('guard_heartbeat_lapsed');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  /** The older job holds the key's guard, the newer one runs too (both w1's), both leases lapsed. */
  async function setup(db: Db, key: string, options: { guard?: 'always' } = {}) {
    const clock = createTestClock(Date.UTC(2031, 0, 1));
    const adapter = mongoAdapter(db, { clock: clock.now, ...options, ...(options.guard ? { guardTimeoutMs: 600_000 } : {}) });
    await adapter.ensureIndexes();
    const claimOne = async () => (await adapter.jobs.claim({ worker: 'w1', limit: 1, leaseMs: LEASE }))[0]?.id;
    const older = await adapter.jobs.enqueue({ type: 'record', payload: 1, orderingKey: key, maxAttempts: 1 });
    clock.advance(1);
    const newer = await adapter.jobs.enqueue({ type: 'record', payload: 2, orderingKey: key });
    expect(await claimOne()).toBe(older.id);
    expect(await adapter.jobs.fail(older.id, 'w1', { error: { message: 'boom' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    expect(await claimOne()).toBe(newer.id);
    expect(await adapter.jobs.requeue(older.id)).toBe(true);
    clock.advance(LEASE);
    expect(await claimOne()).toBe(older.id);
    clock.advance(LEASE);
    return { adapter, clock, older: older.id, newer: newer.id };
  }

  async function live(adapter: StorageAdapter, now: number, ids: string[]): Promise<string[]> {
    const stored = await Promise.all(ids.map((id) => adapter.jobs.get(id)));
    return stored.filter((j) => j?.status === 'running' && j.leaseExpiresAt !== null && j.leaseExpiresAt.getTime() > now).map((j) => j?.id ?? '');
  }

  it('the newer job heartbeats first, then the guard owner: only the first keeps a live lease', async () => {
    const { adapter, clock, older, newer } = await setup(handle.db, 'k-sequential');
    expect(await adapter.jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
    expect(await adapter.jobs.heartbeat(older, 'w1', LEASE)).toBe(false);
    expect(await live(adapter, clock.ms(), [older, newer])).toEqual([newer]);
    // The key's turn stays with the newer job: its next heartbeat and its completion work, then the older one is claimed.
    expect(await adapter.jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
    expect(await adapter.jobs.complete(newer, 'w1')).toBe(true);
    clock.advance(LEASE + 1);
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([older]);
  });

  it('the guard owner heartbeats first but is held before its lease write while the newer job renews: one live lease', async () => {
    const gate = gatedDb(handle.db);
    const { adapter, clock, older, newer } = await setup(gate.db, 'k-held');
    const reached = gate.arm(older);
    const beat = adapter.jobs.heartbeat(older, 'w1', LEASE);
    await reached;
    // The newer job's heartbeat (heartbeatMany runs them side by side) finds the guard lapsed and no live job of the key.
    expect(await adapter.jobs.heartbeat(newer, 'w1', LEASE)).toBe(true);
    gate.release();
    expect(await beat).toBe(false);
    expect(await live(adapter, clock.ms(), [older, newer])).toEqual([newer]);
    expect(await adapter.jobs.heartbeatMany([older, newer], 'w1', LEASE)).toEqual([newer]);
  });

  it("the key's guard document is stuck behind a dropped write (FerretDB write guards): still one live lease", async () => {
    const { adapter, clock, older, newer } = await setup(handle.db, 'k-stuck', { guard: 'always' });
    // A write to the key's guard document lost its connection: its write guard stays on the guard's revision.
    const order = await handle.db.collection(adapter.collections.jobOrder).findOne({ _id: 'k-stuck' as never });
    await handle.db.collection(adapter.collections.guards).insertOne({ _id: String(order?.['_rev']) as never, at: new Date() });
    try {
      const first = await adapter.jobs.heartbeat(newer, 'w1', LEASE);
      const second = await adapter.jobs.heartbeat(older, 'w1', LEASE);
      // The newer job could not mark the guard as its own: it reports its job lost; the guard's own job keeps the key.
      expect({ first, second }).toEqual({ first: false, second: true });
      expect(await live(adapter, clock.ms(), [older, newer])).toEqual([older]);
    } finally {
      await handle.db.collection(adapter.collections.guards).deleteMany({ _id: String(order?.['_rev']) as never });
    }
  });

  it('a claim of the key between the heartbeat finding the guard free and taking it over: one live lease', async () => {
    const gate = gatedGuardReads(handle.db);
    const { adapter, clock, older, newer } = await setup(gate.db, 'k-claim-race');
    // The newer job's heartbeat is held at its second guard read: it has written its lease and
    // found the key free (guard lapsed, no live job of the key), and is about to take the guard over.
    const reached = gate.arm(2);
    const beat = adapter.jobs.heartbeat(newer, 'w1', LEASE);
    await reached;
    // Another worker's claim of the key's head (the older job, its lease lapsed) sees the newer job's renewed lease.
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
    gate.release();
    expect(await beat).toBe(true);
    expect(await live(adapter, clock.ms(), [older, newer])).toEqual([newer]);
    expect(await adapter.jobs.heartbeat(older, 'w1', LEASE)).toBe(false);
    expect(await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).toEqual([]);
    expect(await live(adapter, clock.ms(), [older, newer])).toEqual([newer]);
  });

  it('the job completes while its heartbeat is taking the guard over: the guard left holds nothing, the key runs on', async () => {
    const gate = gatedGuardReads(handle.db);
    const { adapter, older, newer } = await setup(gate.db, 'k-complete-race');
    const reached = gate.arm(2);
    const beat = adapter.jobs.heartbeat(newer, 'w1', LEASE);
    await reached;
    expect(await adapter.jobs.complete(newer, 'w1')).toBe(true);
    gate.release();
    await beat;
    // Whatever guard the heartbeat left names a finished job: the key's next job is claimed at once.
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE })).map((j) => j.id)).toEqual([older]);
  });
});
