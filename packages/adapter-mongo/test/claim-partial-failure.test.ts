// A jobs.claim reads and writes many documents one by one: a failure part-way (a write guard a
// dropped connection left on one ordering key's guard document, a connection reset) must not
// cost the jobs already claimed in that call, nor stall the whole queue behind one key.
import { StorageError } from '@org/maestrano-sdk';
import { createTestClock } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mongoAdapter, type MongoStorageAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';
import { hostPort, TcpProxy } from './tcp-proxy.js';

const LEASE = 60_000;

describe.skipIf(unavailable !== null)(`${backend}: a claim that meets a failure part-way`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  const clock = createTestClock(Date.UTC(2031, 0, 1));
  let adapter: MongoStorageAdapter;

  beforeAll(async () => {
    handle = await openTestDb('claim_partial');
    adapter = mongoAdapter(handle.db, { clock: () => clock.now(), guard: 'always', guardTimeoutMs: 600_000 });
    await adapter.ensureIndexes();
  });
  afterAll(async () => {
    await handle?.drop();
  });
  beforeEach(async () => {
    for (const name of Object.values(adapter.collections)) await handle.db.collection(name).deleteMany({});
  });

  it('a key whose guard document is stuck behind a dropped write is skipped; the other due jobs are claimed and returned', async () => {
    // The worker of K's job died: its lease lapsed, and the write it was making to K's guard
    // document when its connection dropped left a write guard on that document's revision.
    const k1 = await adapter.jobs.enqueue({ type: 'record', payload: { k: 1 }, orderingKey: 'K', runAt: new Date(clock.ms() - 2_000) });
    const [dead] = await adapter.jobs.claim({ worker: 'gone', limit: 1, leaseMs: LEASE });
    expect(dead?.id).toBe(k1.id);
    clock.advance(LEASE + 1_000);
    const order = await handle.db.collection(adapter.collections.jobOrder).findOne({ _id: 'K' as never });
    await handle.db.collection(adapter.collections.guards).insertOne({ _id: String(order?.['_rev']) as never, at: new Date() });

    // Due before K's head, and after it.
    const early = await adapter.jobs.enqueue({ type: 'work', payload: { n: 1 }, runAt: new Date(clock.ms() - 60_000_000) });
    const late = await adapter.jobs.enqueue({ type: 'work', payload: { n: 2 } });

    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: LEASE });
    expect(claimed.map((j) => j.id).sort()).toEqual([early.id, late.id].sort());
    // Every job leased to the worker was handed to it.
    const running = await adapter.jobs.get(early.id);
    expect(running).toMatchObject({ status: 'running', leaseOwner: 'w', attempts: 1 });
    // K's job waits for the stuck write guard; it was not claimed.
    expect(await adapter.jobs.get(k1.id)).toMatchObject({ leaseOwner: 'gone' });
  });
  it("heartbeatMany renews the batch when one job's ordering guard document is stuck behind a dropped write", async () => {
    const ordered = await adapter.jobs.enqueue({ type: 'record', payload: { k: 1 }, orderingKey: 'K2' });
    const plain = await adapter.jobs.enqueue({ type: 'work', payload: { n: 3 } });
    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 2, leaseMs: LEASE });
    expect(claimed.map((j) => j.id).sort()).toEqual([ordered.id, plain.id].sort());
    // A heartbeat's write to K2's guard document lost its connection: its write guard stays.
    const order = await handle.db.collection(adapter.collections.jobOrder).findOne({ _id: 'K2' as never });
    await handle.db.collection(adapter.collections.guards).insertOne({ _id: String(order?.['_rev']) as never, at: new Date() });
    clock.advance(10_000);
    // Both jobs are still the worker's: their leases are renewed and reported so, instead of
    // the whole batch failing (the worker then gives up every job of it once half a lease passed).
    const renewed = await adapter.jobs.heartbeatMany([ordered.id, plain.id], 'w', LEASE);
    expect(renewed).toEqual([ordered.id, plain.id]);
    for (const id of [ordered.id, plain.id]) {
      expect((await adapter.jobs.get(id))?.leaseExpiresAt?.getTime()).toBe(clock.ms() + LEASE);
    }
    // No other job of K2 is claimed while the ordered job's renewed lease is live, also once
    // the key's guard (not renewed) has lapsed and the stuck write guard is gone.
    const next = await adapter.jobs.enqueue({ type: 'record', payload: { k: 2 }, orderingKey: 'K2' });
    clock.advance(LEASE - 5_000);
    expect((await adapter.jobs.claim({ worker: 'other', limit: 5, leaseMs: LEASE })).map((j) => j.id)).not.toContain(next.id);
    await handle.db.collection(adapter.collections.guards).deleteMany({});
    expect((await adapter.jobs.claim({ worker: 'other', limit: 5, leaseMs: LEASE })).map((j) => j.id)).not.toContain(next.id);
    expect(await adapter.jobs.get(ordered.id)).toMatchObject({ status: 'running', leaseOwner: 'w' });
    expect(await adapter.jobs.complete(ordered.id, 'w')).toBe(true);
    expect((await adapter.jobs.claim({ worker: 'other', limit: 5, leaseMs: LEASE })).map((j) => j.id)).toEqual([next.id]);
  });
  it("complete, fail and release of an ordered job whose guard document is stuck behind a dropped write report what they recorded", async () => {
    const outcomes: unknown[] = [];
    for (const [n, finish] of [
      [1, (id: string) => adapter.jobs.complete(id, 'w')],
      [2, (id: string) => adapter.jobs.completeMany([id], 'w')],
      [3, (id: string) => adapter.jobs.fail(id, 'w', { error: { message: 'boom' }, retryAt: new Date(clock.ms() + 1_000) })],
      [4, (id: string) => adapter.jobs.release(id, 'w')],
    ] as const) {
      const key = `K3-${n}`;
      const job = await adapter.jobs.enqueue({ type: 'record', payload: { n }, orderingKey: key });
      const [claimed] = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: LEASE, types: ['record'] });
      expect(claimed?.id).toBe(job.id);
      const order = await handle.db.collection(adapter.collections.jobOrder).findOne({ _id: key as never });
      await handle.db.collection(adapter.collections.guards).insertOne({ _id: String(order?.['_rev']) as never, at: new Date() });
      outcomes.push(await finish(job.id).catch((error: unknown) => error));
      // Recorded, and reported so: not a StorageError for a change that was made.
      expect((await adapter.jobs.get(job.id))?.status).toBe(n <= 2 ? 'done' : 'pending');
    }
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o))).toEqual([true, [expect.any(String)], 'retrying', true]);
    // The guard left behind holds nothing: once the stuck write guard is gone, the key's next job runs.
    await handle.db.collection(adapter.collections.guards).deleteMany({});
    const next = await adapter.jobs.enqueue({ type: 'record', payload: { n: 5 }, orderingKey: 'K3-1' });
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: LEASE, types: ['record'] })).map((j) => j.id)).toContain(next.id);
  });
});

describe.skipIf(unavailable !== null)(`${backend}: a claim whose connection is reset part-way`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  let proxy: TcpProxy;
  let adapter: MongoStorageAdapter;
  const clock = createTestClock(Date.UTC(2031, 0, 1));

  beforeAll(async () => {
    handle = await openTestDb('claim_reset');
    const target = hostPort(mongoUrl ?? '');
    proxy = new TcpProxy(target.host, target.port);
    await proxy.start();
    adapter = mongoAdapter(
      { url: proxy.rewrite(mongoUrl ?? ''), dbName: handle.name, clientOptions: { monitorCommands: true, serverSelectionTimeoutMS: 3_000 } },
      { clock: () => clock.now() },
    );
    await adapter.ensureIndexes();
  });
  afterAll(async () => {
    await adapter?.close();
    await proxy?.cut();
    await handle?.drop();
  });

  it('rejects, and gives back the job it had already leased: due again, its attempt not counted', async () => {
    const first = await adapter.jobs.enqueue({ type: 'work', payload: { n: 1 }, runAt: new Date(clock.ms() - 1_000) });
    const second = await adapter.jobs.enqueue({ type: 'work', payload: { n: 2 } });
    // Once the first job's claim is written, the connection is reset as the claim's next write
    // (the second job's) goes out.
    const client = adapter.db.client;
    let firstWritten = false;
    let reset = false;
    const onSucceeded = (event: { commandName: string }) => {
      if (event.commandName === 'update' && !firstWritten) firstWritten = true;
    };
    const onStarted = (event: { commandName: string; command: Record<string, unknown> }) => {
      const target = event.command[event.commandName];
      const write = ['insert', 'update'].includes(event.commandName) && (target === adapter.collections.jobs || target === adapter.collections.guards);
      if (firstWritten && !reset && write) {
        // (The first job's write guard removal is a delete, which the claim does not wait on.)
        reset = true;
        proxy.reset();
      }
    };
    client.on('commandSucceeded', onSucceeded);
    client.on('commandStarted', onStarted);
    const outcome = await adapter.jobs.claim({ worker: 'w', limit: 2, leaseMs: LEASE }).catch((error: unknown) => error);
    client.off('commandSucceeded', onSucceeded);
    client.off('commandStarted', onStarted);
    expect(reset).toBe(true);
    expect(outcome).toBeInstanceOf(StorageError);
    expect((outcome as StorageError).operation).toBe('jobs.claim');
    // Nothing stays leased to a worker that was told its claim failed.
    expect(await adapter.jobs.get(first.id)).toMatchObject({ status: 'pending', leaseOwner: null, attempts: 0 });
    expect(await adapter.jobs.get(second.id)).toMatchObject({ status: 'pending', leaseOwner: null, attempts: 0 });
    const again = await adapter.jobs.claim({ worker: 'w', limit: 2, leaseMs: LEASE });
    expect(again.map((j) => j.id)).toEqual([first.id, second.id]);
  });
});
