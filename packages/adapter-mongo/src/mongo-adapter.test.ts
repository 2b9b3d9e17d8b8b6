import { Binary, type Collection, type Db, type Document, ObjectId } from 'mongodb';
import { ConfigError, type JsonObject, type JsonValue, StorageConflictError, StorageError } from '@org/maestrano-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { openTestDb, unavailable } from '../test/support.js';
import { type MongoStorageAdapter, mongoAdapter } from './mongo-adapter.js';

if (unavailable) console.warn(`[adapter-mongo] mongo-adapter.test.ts skipped: ${unavailable}`);

type InsertOne = (doc: Document) => Promise<unknown>;

/** `db` with every collection's `insertOne` replaced by `hook(collectionName, doc, realInsertOne)`. */
function interceptInserts(db: Db, hook: (name: string, doc: Document, insert: InsertOne) => Promise<unknown>): Db {
  const wrap = (collection: Collection<Document>): Collection<Document> =>
    new Proxy(collection, {
      get(target, prop) {
        if (prop === 'insertOne') {
          return (doc: Document) => hook(target.collectionName, doc, (d) => target.insertOne(d));
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'collection') return (name: string) => wrap(target.collection(name));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.skipIf(unavailable !== null)('mongoAdapter (unit, real server)', () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  let peerHandle: Awaited<ReturnType<typeof openTestDb>>;
  let adapter: MongoStorageAdapter;
  let peer: MongoStorageAdapter;
  let now = Date.UTC(2031, 0, 1);
  const clock = () => new Date(now);

  beforeAll(async () => {
    handle = await openTestDb('unit');
    adapter = mongoAdapter(handle.db, { clock });
    await adapter.ensureIndexes();
    // A second client on the same database: a second app process.
    peerHandle = await openTestDb('unused');
    peer = mongoAdapter(peerHandle.client.db(handle.name), { clock });
  });
  afterAll(async () => {
    await peerHandle?.drop();
    await handle?.drop();
  });
  beforeEach(async () => {
    now = Date.UTC(2031, 0, 1);
    for (const name of Object.values(adapter.collections)) await handle.db.collection(name).deleteMany({});
  });

  it('ensureIndexes creates the unique indexes and is idempotent', async () => {
    await adapter.ensureIndexes();
    const maps = await handle.db.collection(adapter.collections.idMaps).listIndexes().toArray();
    const unique = maps.filter((i) => i['unique'] === true).map((i) => i['name']);
    expect(unique.sort()).toEqual(['scope_connec_unique', 'scope_local_unique']);
    const jobs = await handle.db.collection(adapter.collections.jobs).listIndexes().toArray();
    expect(jobs.find((i) => i['name'] === 'dedupe_unique')?.['unique']).toBe(true);
  });

  it('stores dates as BSON dates, ids as ObjectIds, and returns no internal fields', async () => {
    const map = await adapter.idMaps.insert({
      tenant: 't',
      groupId: 'g',
      entity: 'contact',
      connecId: 'c-1',
      localId: null,
      lastAppliedAt: new Date(Date.UTC(2030, 5, 1, 1, 2, 3, 456)),
    });
    expect(Object.keys(map).sort()).toEqual(
      ['connecId', 'createdAt', 'entity', 'groupId', 'lastAppliedAt', 'lastError', 'lastPushedHash', 'lastReceivedHash', 'linkSubIds', 'localId', 'syncedAt', 'tenant', 'tombstonedAt', 'updatedAt'].sort(),
    );
    const raw = await handle.db.collection(adapter.collections.idMaps).findOne({ connecId: 'c-1' });
    expect(raw?.['_id']).toBeInstanceOf(ObjectId);
    expect(raw?.['lastAppliedAt']).toBeInstanceOf(Date);
    expect(raw?.['lastAppliedAt']?.toISOString()).toBe('2030-06-01T01:02:03.456Z');
    expect(raw?.['localId']).toBeNull();
    expect(raw?.['createdAt']).toEqual(new Date(now));
  });

  it('JSON values drop keys holding undefined, as JSON does (arrays keep the slot as null)', async () => {
    const payload = { a: undefined, b: [undefined, 1], c: { d: undefined, e: 1 } } as unknown as JsonValue;
    const { id } = await adapter.jobs.enqueue({ type: 'x', payload });
    const raw = await handle.db.collection(adapter.collections.jobs).findOne({ _id: new ObjectId(id) });
    expect(Object.keys(raw?.['payload'] ?? {})).toEqual(['b', 'c']);
    expect(Object.keys(raw?.['payload']?.['c'] ?? {})).toEqual(['e']);
    const stored = (await adapter.jobs.get(id))?.payload;
    expect(stored).toStrictEqual({ b: [null, 1], c: { e: 1 } });
    await adapter.cursors.advance({ tenant: 't', groupId: 'g', entity: 'contact', kind: 'import' }, 1, {
      page: undefined,
      next: 'n',
    } as unknown as JsonObject);
    const [cursor] = await adapter.cursors.list('t', 'g');
    expect(cursor?.data).toStrictEqual({ next: 'n' });
  });

  it('a map stored before linkSubIds existed reads it null; markApplied with linkSubIds sets it, without leaves it', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'invoice' };
    const owed = JSON.stringify({ hash: 'h1', ids: { lines: ['ln-1', null] } });
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1', linkSubIds: owed });
    expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject({ linkSubIds: owed });
    // What an earlier release stored: no linkSubIds field at all.
    await handle.db.collection(adapter.collections.idMaps).updateOne({ connecId: 'c-1' }, { $unset: { linkSubIds: '' } });
    expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject({ localId: 'l-1', linkSubIds: null });
    expect(await adapter.idMaps.markApplied(scope, { connecId: 'c-1' }, new Date(Date.UTC(2030, 0, 1)), 'h1', { linkSubIds: owed })).toBe(true);
    expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toMatchObject({ lastReceivedHash: 'h1', linkSubIds: owed });
    expect(await adapter.idMaps.markApplied(scope, { connecId: 'c-1' }, new Date(Date.UTC(2030, 0, 2)), 'h2')).toBe(true);
    expect(await adapter.idMaps.find(scope, { localId: 'l-1' })).toMatchObject({ lastReceivedHash: 'h2', linkSubIds: owed });
  });

  it('a map stored before syncedAt existed reads syncedAt null; the next markApplied sets it, an error write does not', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1', syncedAt: new Date(now) });
    // What an earlier release stored: no syncedAt field at all.
    await handle.db.collection(adapter.collections.idMaps).updateOne({ connecId: 'c-1' }, { $unset: { syncedAt: '' } });
    expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject({ localId: 'l-1', syncedAt: null });
    now += 1_000;
    await adapter.idMaps.update(scope, { connecId: 'c-1' }, { lastError: { code: 'x', message: 'failed', at: new Date(now) } });
    expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject({ syncedAt: null, updatedAt: new Date(now) });
    now += 1_000;
    expect(await adapter.idMaps.markApplied(scope, { localId: 'l-1' }, new Date(Date.UTC(2030, 0, 1)), 'h1')).toBe(true);
    expect(await adapter.idMaps.find(scope, { connecId: 'c-1' })).toMatchObject({ syncedAt: new Date(now), updatedAt: new Date(now) });
  });

  it('idMaps are unique both ways when set, while several nulls coexist', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: null });
    await adapter.idMaps.insert({ ...scope, connecId: 'c-2', localId: null });
    await adapter.idMaps.insert({ ...scope, connecId: null, localId: 'l-1' });
    await adapter.idMaps.insert({ ...scope, connecId: null, localId: 'l-2' });
    await expect(adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-9' })).rejects.toBeInstanceOf(StorageConflictError);
    await expect(adapter.idMaps.insert({ ...scope, connecId: 'c-9', localId: 'l-1' })).rejects.toBeInstanceOf(StorageConflictError);
    // Another scope may reuse the ids.
    await adapter.idMaps.insert({ ...scope, entity: 'invoice', connecId: 'c-1', localId: 'l-1' });
    // An update that would duplicate a key fails and changes nothing.
    const err = await adapter.idMaps.update(scope, { connecId: 'c-2' }, { localId: 'l-1', lastPushedHash: 'h' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageConflictError);
    expect((err as StorageError).operation).toBe('idMaps.update');
    const unchanged = await adapter.idMaps.find(scope, { connecId: 'c-2' });
    expect(unchanged?.localId).toBeNull();
    expect(unchanged?.lastPushedHash).toBeNull();
    // Setting then clearing a key frees it.
    await adapter.idMaps.update(scope, { connecId: 'c-2' }, { localId: 'l-3' });
    expect((await adapter.idMaps.find(scope, { localId: 'l-3' }))?.connecId).toBe('c-2');
    await adapter.idMaps.update(scope, { localId: 'l-3' }, { localId: null });
    await adapter.idMaps.insert({ ...scope, connecId: 'c-3', localId: 'l-3' });
    const all = await adapter.idMaps.list(scope, { limit: 10 });
    expect(all.map((m) => m.connecId)).toEqual(['c-1', 'c-2', null, null, 'c-3']);
    const page = await adapter.idMaps.list(scope, { limit: 2, after: 'c-2' });
    expect(page.map((m) => m.connecId ?? m.localId)).toEqual(['l-1', 'l-2']);
  });

  it('20 concurrent provisioning claims from two processes: exactly one winner', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : adapter).groups.claim('t', 'cld-1', { owner: `o${i}`, ttlMs: 60_000 })),
    );
    expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'pending')).toHaveLength(19);
    const winner = results.findIndex((r) => r.state === 'claimed');
    const group = await adapter.groups.complete('t', 'cld-1', `o${winner}`, { companyId: 'co-1' });
    expect(group.status).toBe('active');
    await expect(adapter.groups.complete('t', 'cld-1', `o${winner}`, { companyId: 'co-2' })).rejects.toBeInstanceOf(StorageConflictError);
    expect((await adapter.groups.claim('t', 'cld-1', { owner: 'late', ttlMs: 1 })).state).toBe('exists');
  });

  it('20 concurrent compare-and-sets on one document: exactly one applies (markApplied, ledger, locks)', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'contact' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1' });
    const at = new Date(Date.UTC(2030, 0, 1));
    const applied = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : adapter).idMaps.markApplied(scope, { connecId: 'c-1' }, at, 'h-same')),
    );
    expect(applied.filter(Boolean)).toHaveLength(1);
    const stored = await adapter.idMaps.find(scope, { connecId: 'c-1' });
    expect(stored?.lastReceivedHash).toBe('h-same');

    await adapter.ledger.claim('charge-1', { owner: 'a', ttlMs: 1_000, intent: { amount: 10 } });
    now += 2_000;
    const takeovers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : adapter).ledger.claim('charge-1', { owner: `w${i}`, ttlMs: 60_000, intent: {} })),
    );
    expect(takeovers.filter((c) => c.state === 'claimed')).toHaveLength(1);

    await adapter.locks.acquire('lock-1', 'a', 1_000);
    now += 2_000;
    const locks = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : adapter).locks.acquire('lock-1', `w${i}`, 60_000)));
    expect(locks.filter(Boolean)).toHaveLength(1);
    const holder = await handle.db.collection<{ _id: string; owner?: string }>(adapter.collections.locks).findOne({ _id: 'lock-1' });
    expect(holder?.owner).toBe(`w${locks.indexOf(true)}`);
  });

  it('cursors only move forward under concurrent advances', async () => {
    const key = { tenant: 't', groupId: 'g', entity: 'contact', kind: 'import' };
    const positions = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1);
    await Promise.all(positions.map((p, i) => (i % 2 ? peer : adapter).cursors.advance(key, p, { p })));
    const cursor = await adapter.cursors.get(key);
    expect(cursor?.position).toBe(20);
    expect(cursor?.data).toEqual({ p: 20 });
    expect(await adapter.cursors.advance(key, 19, {})).toBe(false);
  });

  it('jobs: concurrent workers receive each job exactly once while leased', async () => {
    const ids = (await adapter.jobs.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ type: 'sync', payload: { i } })))).map((r) => r.id);
    const delivered = await Promise.all(
      Array.from({ length: 8 }, (_, w) => (w % 2 ? peer : adapter).jobs.claim({ worker: `w${w}`, limit: 10, leaseMs: 60_000 })),
    );
    const all = delivered.flat().map((j) => j.id);
    expect(new Set(all).size).toBe(all.length);
    // Whatever was not claimed in this round is claimed by the next one, still exactly once.
    const rest = await adapter.jobs.claim({ worker: 'late', limit: 100, leaseMs: 60_000 });
    expect([...all, ...rest.map((j) => j.id)].sort()).toEqual([...ids].sort());
    const counts = await adapter.jobs.counts();
    expect(counts).toEqual({ pending: 0, running: 40, done: 0, dead: 0 });
  });

  it('jobs sharing an orderingKey never run concurrently and run in order', async () => {
    for (let i = 0; i < 12; i++) await adapter.jobs.enqueue({ type: 'push', payload: { i }, orderingKey: 'g:contact:1' });
    for (let i = 0; i < 4; i++) await adapter.jobs.enqueue({ type: 'push', payload: { i }, orderingKey: 'g:contact:2' });
    const running = new Map<string, number>();
    const order: Record<string, number[]> = {};
    let maxConcurrent = 0;
    let violations = 0;
    const worker = async (w: number) => {
      const repo = (w % 2 ? peer : adapter).jobs;
      for (let idle = 0; idle < 30; ) {
        const [job] = await repo.claim({ worker: `w${w}`, limit: 1, leaseMs: 60_000 });
        if (!job) {
          idle++;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        const key = job.orderingKey ?? '';
        const n = (running.get(key) ?? 0) + 1;
        running.set(key, n);
        if (n > 1) violations++;
        maxConcurrent = Math.max(maxConcurrent, n);
        (order[key] ??= []).push((job.payload as { i: number }).i);
        await new Promise((r) => setTimeout(r, 2));
        running.set(key, (running.get(key) ?? 1) - 1);
        expect(await repo.complete(job.id, `w${w}`)).toBe(true);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    expect(violations).toBe(0);
    expect(maxConcurrent).toBe(1);
    expect(order['g:contact:1']).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(order['g:contact:2']).toEqual([0, 1, 2, 3]);
    expect(await handle.db.collection(adapter.collections.jobOrder).countDocuments()).toBe(0);
  });

  it('an ordered job whose lease expired is redelivered before younger jobs of its key', async () => {
    const first = await adapter.jobs.enqueue({ type: 'push', payload: 1, orderingKey: 'k' });
    const second = await adapter.jobs.enqueue({ type: 'push', payload: 2, orderingKey: 'k' });
    const [a] = await adapter.jobs.claim({ worker: 'a', limit: 5, leaseMs: 1_000 });
    expect(a?.id).toBe(first.id);
    expect(await peer.jobs.claim({ worker: 'b', limit: 5, leaseMs: 1_000 })).toEqual([]);
    now += 1_001;
    const [b] = await peer.jobs.claim({ worker: 'b', limit: 5, leaseMs: 1_000 });
    expect(b?.id).toBe(first.id);
    expect(b?.attempts).toBe(2);
    expect(await adapter.jobs.complete(first.id, 'a')).toBe(false);
    expect(await adapter.jobs.heartbeat(first.id, 'a', 1_000)).toBe(false);
    expect(await peer.jobs.heartbeat(first.id, 'b', 5_000)).toBe(true);
    now += 2_000;
    expect(await adapter.jobs.claim({ worker: 'c', limit: 5, leaseMs: 1_000 })).toEqual([]);
    expect(await peer.jobs.fail(first.id, 'b', { error: { message: 'boom' }, retryAt: new Date(now + 10_000) })).toBe('retrying');
    // The older job is pending again (backoff): the younger one still waits.
    expect(await adapter.jobs.claim({ worker: 'c', limit: 5, leaseMs: 1_000 })).toEqual([]);
    now += 10_000;
    const [again] = await adapter.jobs.claim({ worker: 'c', limit: 5, leaseMs: 1_000 });
    expect(again?.id).toBe(first.id);
    expect(await adapter.jobs.complete(first.id, 'c')).toBe(true);
    const [next] = await adapter.jobs.claim({ worker: 'c', limit: 5, leaseMs: 1_000 });
    expect(next?.id).toBe(second.id);
  });

  it('dedupe keys return the first job; purging done jobs frees them', async () => {
    const a = await adapter.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd1' });
    const results = await Promise.all(Array.from({ length: 10 }, () => peer.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd1' })));
    expect(results.every((r) => r.id === a.id && !r.created)).toBe(true);
    const [job] = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 1_000 });
    expect(await adapter.jobs.complete(job?.id ?? '', 'w')).toBe(true);
    now += 1;
    expect(await adapter.jobs.purgeCompleted(new Date(now))).toBe(1);
    const b = await adapter.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd1' });
    expect(b.created).toBe(true);
    expect(b.id).not.toBe(a.id);
  });

  it('a write guard left by a crashed writer blocks writes of that document only until guardTimeoutMs', async () => {
    const guarded = mongoAdapter(handle.db, { clock, guard: 'always', guardTimeoutMs: 60_000 });
    const locks = handle.db.collection<{ _id: string; _rev?: string }>(adapter.collections.locks);
    const guards = handle.db.collection<{ _id: string; at: Date }>(adapter.collections.guards);
    await guarded.locks.acquire('l', 'a', 60_000);
    await guarded.locks.acquire('other', 'a', 60_000);
    const doc = await locks.findOne({ _id: 'l' });
    const rev = String(doc?._rev);
    // A writer took the guard for the current revision and died before writing.
    await guards.insertOne({ _id: rev, at: new Date() });
    const blocked = await guarded.locks.release('l', 'a').catch((e: unknown) => e);
    expect(blocked).toBeInstanceOf(StorageError);
    expect((blocked as StorageError).operation).toBe('locks.release');
    expect(await locks.countDocuments({ _id: 'l' })).toBe(1);
    expect(await guarded.locks.release('other', 'a')).toBe(true);
    // Once the guard is older than guardTimeoutMs it is removed and the write goes through.
    await guards.updateOne({ _id: rev }, { $set: { at: new Date(Date.now() - 61_000) } });
    expect(await guarded.locks.release('l', 'a')).toBe(true);
    expect(await locks.countDocuments({ _id: 'l' })).toBe(0);
    expect(await guards.countDocuments()).toBe(0);
  });

  it('a job whose write guard a dropped connection left behind is still its owner\'s: heartbeat, complete and fail throw StorageError, never "not yours"', async () => {
    const guarded = mongoAdapter(handle.db, { clock, guard: 'always', guardTimeoutMs: 60_000 });
    const jobs = handle.db.collection<{ _id: unknown; _rev?: string }>(adapter.collections.jobs);
    const guards = handle.db.collection<{ _id: string; at: Date }>(adapter.collections.guards);
    await guarded.jobs.enqueue({ type: 'guarded', payload: null, dedupeKey: 'guarded-1' });
    const [job] = await guarded.jobs.claim({ worker: 'W', limit: 1, leaseMs: 600_000, types: ['guarded'] });
    const id = job?.id ?? '';
    const doc = await jobs.findOne({ type: 'guarded' } as never);
    const rev = String(doc?._rev);
    // The connection dropped after the guard insert, before the update and the guard's removal.
    await guards.insertOne({ _id: rev, at: new Date() });
    for (const [operation, call] of [
      ['jobs.heartbeat', () => guarded.jobs.heartbeat(id, 'W', 600_000)],
      ['jobs.complete', () => guarded.jobs.complete(id, 'W')],
      ['jobs.fail', () => guarded.jobs.fail(id, 'W', { error: { message: 'x' }, retryAt: new Date(now) })],
    ] as const) {
      const error = await (call as () => Promise<unknown>)().catch((e: unknown) => e);
      expect(error, operation).toBeInstanceOf(StorageError);
      expect((error as StorageError).operation).toBe(operation);
    }
    expect(await guarded.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'W' });
    // Another worker is still told the job is not its own.
    expect(await guarded.jobs.complete(id, 'other')).toBe(false);
    // Once the guard has expired the owner completes its job.
    await guards.updateOne({ _id: rev }, { $set: { at: new Date(Date.now() - 61_000) } });
    expect(await guarded.jobs.complete(id, 'W')).toBe(true);
    expect(await guarded.jobs.get(id)).toMatchObject({ status: 'done' });
  });

  it('a job document that cannot be read (edited by hand) is dead-lettered by the claim, which hands out the healthy jobs beside it', async () => {
    const jobs = handle.db.collection<Document>(adapter.collections.jobs);
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push((await adapter.jobs.enqueue({ type: 'work', payload: { n } })).id);
    const oid = (i: number) => new ObjectId(ids[i]);
    await jobs.updateOne({ _id: oid(1) }, { $set: { payload: { at: new Date() } } }); // BSON Date: no JSON value
    await jobs.updateOne({ _id: oid(2) }, { $unset: { type: '' } });
    await jobs.updateOne({ _id: oid(3) }, { $set: { orderingKey: 42 } });

    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000 });
    expect(claimed.map((j) => j.payload)).toEqual([{ n: 1 }, { n: 5 }]);
    for (const i of [1, 2, 3]) {
      const raw = await jobs.findOne({ _id: oid(i) });
      expect(raw).toMatchObject({ status: 'dead', leaseOwner: null, lastError: { code: 'unreadable_job' } });
    }
    // Reads still work: what cannot be read reads as null (or '' for a missing type).
    expect(await adapter.jobs.get(ids[1] ?? '')).toMatchObject({ status: 'dead', payload: null });
    expect(await adapter.jobs.get(ids[3] ?? '')).toMatchObject({ status: 'dead', orderingKey: null });
    expect((await adapter.jobs.listDead()).map((j) => j.id).sort()).toEqual([ids[1], ids[2], ids[3]].sort());
    expect((await adapter.jobs.claim({ worker: 'w2', limit: 10, leaseMs: 60_000 })).map((j) => j.id)).toEqual([]);
    for (const job of claimed) expect(await adapter.jobs.complete(job.id, 'w')).toBe(true);

    // An ordered job without a type, ahead of a wanted job of its key, does not stop claims of
    // the wanted types either: dead-lettered, then the next job of its key is handed out.
    const ordered = await adapter.jobs.enqueue({ type: 'work', payload: { n: 6 }, orderingKey: 'k' });
    const next = await adapter.jobs.enqueue({ type: 'work', payload: { n: 7 }, orderingKey: 'k' });
    const healthy = await adapter.jobs.enqueue({ type: 'work', payload: { n: 8 } });
    await jobs.updateOne({ _id: new ObjectId(ordered.id) }, { $unset: { type: '' } });
    const first = await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: 60_000, types: ['work'] });
    expect(first.map((j) => j.id)).toContain(healthy.id);
    expect(await jobs.findOne({ _id: new ObjectId(ordered.id) })).toMatchObject({ status: 'dead', lastError: { code: 'unreadable_job' } });
    const later = [...first, ...(await adapter.jobs.claim({ worker: 'w3', limit: 10, leaseMs: 60_000, types: ['work'] }))];
    expect(later.map((j) => j.id).sort()).toEqual([healthy.id, next.id].sort());
  });

  it('a Date written inside a JSON value is stored as its ISO string, as JSON (and the SQL adapters) do', async () => {
    const at = new Date(Date.UTC(2031, 0, 2));
    const { id } = await adapter.jobs.enqueue({ type: 'work', payload: { at } as unknown as JsonValue });
    expect((await adapter.jobs.get(id))?.payload).toEqual({ at: '2031-01-02T00:00:00.000Z' });
  });

  it("close() closes the adapter's own client but never the user's", async () => {
    const borrowed = mongoAdapter(handle.db, { clock });
    await borrowed.close();
    expect(await adapter.locks.acquire('still-open', 'a', 1_000)).toBe(true);
    const url = inject('mongoUrl') ?? '';
    const own = mongoAdapter({ url, dbName: handle.name }, { clock });
    expect(await own.locks.acquire('own', 'a', 1_000)).toBe(true);
    await own.close();
    await own.close();
    const err = await own.locks.acquire('own-2', 'a', 1_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'locks.acquire', adapterId: 'mongo' });
    expect(await handle.db.collection<{ _id: string }>(adapter.collections.locks).countDocuments({ _id: 'own-2' })).toBe(0);
  });

  it('refuses to work before ensureIndexes() instead of storing duplicates', async () => {
    const fresh = handle.client.db(`${handle.name}_noidx`);
    const bare = mongoAdapter(fresh, { clock });
    try {
      const err = await bare.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(String((err as Error).message)).toContain('ensureIndexes');
      expect(await fresh.collection(bare.collections.jobs).countDocuments()).toBe(0);
      await bare.ensureIndexes();
      expect((await bare.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd' })).created).toBe(true);
      expect((await bare.jobs.enqueue({ type: 'x', payload: null, dedupeKey: 'd' })).created).toBe(false);
    } finally {
      await fresh.dropDatabase();
    }
  });

  it('refuses a bad connection string with ConfigError that does not echo it', () => {
    let caught: unknown;
    try {
      mongoAdapter({ url: 'postgres://admin:s3cret@db.example/app' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues[0]?.path).toBe('url');
    expect(String((caught as Error).message)).not.toContain('s3cret');
  });

  it('refuses misspelt or out-of-range options with a ConfigError naming each (a typo would turn the write guards off)', () => {
    const issues = (options: Record<string, unknown>) => {
      try {
        mongoAdapter(handle.db, options as never);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).issues.map((i) => i.path);
      }
      return [];
    };
    expect(issues({ guard: 'Auto', guardTimeoutMs: 0 })).toEqual(['guard', 'guardTimeoutMs']);
    expect(issues({ guardTimeoutMs: Number.NaN, collectionPrefix: 'system.mno_' })).toEqual(['guardTimeoutMs', 'collectionPrefix']);
    expect(issues({ collectionPrefix: 'a$b' })).toEqual(['collectionPrefix']);
    expect(issues({ guard: 'never', guardTimeoutMs: 5_000, collectionPrefix: 'app_mno.' })).toEqual([]);
    // The README: "Anything else is a ConfigError naming the option" (a misspelt key fell back to its default).
    expect(issues({ gaurd: 'always' })).toEqual(['gaurd']);
    expect(issues({ collectionPrefx: 'app_', guardTimeout: 5_000 })).toEqual(['collectionPrefx', 'guardTimeout']);
    expect(issues({ clock: Date.now() })).toEqual(['clock']);
  });

  it('refuses a MongoClient (or anything but a Db or { url }) at once, saying what to pass', () => {
    const refusal = (source: unknown) => {
      try {
        mongoAdapter(source as never);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).message;
      }
      return null;
    };
    expect(refusal(handle.client)).toMatch(/MongoClient.*client\.db\('app'\)/);
    expect(refusal(undefined)).toMatch(/Db .*or \{ url \}/);
    expect(refusal('mongodb://127.0.0.1/app')).toMatch(/\{ url \}/);
    expect(refusal({ url: 42 })).toMatch(/url/);
    expect(refusal(handle.db)).toBeNull();
  });

  it('rejects invalid arguments with StorageError before any write', async () => {
    const bad = await adapter.jobs
      .enqueueMany([
        { type: 'ok', payload: null },
        { type: 'ok', payload: null, maxAttempts: 0 },
      ])
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(StorageError);
    expect(bad).not.toBeInstanceOf(StorageConflictError);
    expect((bad as StorageError).operation).toBe('jobs.enqueueMany');
    expect(await handle.db.collection(adapter.collections.jobs).countDocuments()).toBe(0);
    const noIds = await adapter.idMaps
      .insert({ tenant: 't', groupId: 'g', entity: 'e', connecId: null, localId: null })
      .catch((e: unknown) => e);
    expect(noIds).toMatchObject({ code: 'storage_error', operation: 'idMaps.insert' });
    expect(await handle.db.collection(adapter.collections.idMaps).countDocuments()).toBe(0);
  });

  it('stores JSON whose keys the server refuses as field names as JSON text, as data, never as operators', async () => {
    const payload = { $where: 'evil', 'a.b': { $gt: 1 }, '': [{ '$x.y': null }] };
    const { id } = await adapter.jobs.enqueue({ type: 'x', payload });
    const raw = await handle.db.collection(adapter.collections.jobs).findOne({ _id: new ObjectId(id) });
    const stored = raw?.['payload'] as Binary;
    expect(stored).toBeInstanceOf(Binary);
    expect(stored.sub_type).toBe(0x80);
    expect(JSON.parse(Buffer.from(stored.buffer).toString('utf8'))).toEqual(payload);
    expect((await adapter.jobs.get(id))?.payload).toEqual(payload);
    // A value without such keys is stored as BSON, as before.
    const plain = await adapter.jobs.enqueue({ type: 'x', payload: { a: { b: [1] } } });
    expect((await handle.db.collection(adapter.collections.jobs).findOne({ _id: new ObjectId(plain.id) }))?.['payload']).toEqual({ a: { b: [1] } });
  });

  it('reads JSON fields of documents stored by earlier versions (embedded BSON, no JSON text)', async () => {
    const jobs = handle.db.collection<Document>(adapter.collections.jobs);
    const legacy = { record: { id: [{ provider: 'connec', id: 'p-1' }], n: 1.5, ok: true, none: null }, s: 'é 😀' };
    const _id = new ObjectId();
    await jobs.insertOne({
      _id,
      _rev: 'legacy-rev',
      type: 'legacy',
      tenant: null,
      groupId: null,
      payload: legacy,
      dedupeKey: null,
      orderingKey: null,
      waitKey: null,
      status: 'pending',
      attempts: 0,
      maxAttempts: 8,
      runAt: new Date(now - 1_000),
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      createdAt: new Date(now - 1_000),
      updatedAt: new Date(now - 1_000),
      completedAt: null,
      dedupeSlot: `n:${_id.toHexString()}`,
    });
    for (const scalar of ['a string payload', 42, null]) {
      await jobs.insertOne({ ...(await jobs.findOne({ _id })), _id: new ObjectId(), type: 'legacy-scalar', payload: scalar, dedupeSlot: `n:${new ObjectId().toHexString()}` });
    }
    expect((await adapter.jobs.get(_id.toHexString()))?.payload).toEqual(legacy);
    const [claimed] = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: ['legacy'] });
    expect(claimed?.payload).toEqual(legacy);
    const scalars = await adapter.jobs.claim({ worker: 'w', limit: 5, leaseMs: 60_000, types: ['legacy-scalar'] });
    expect(scalars.map((j) => j.payload).sort()).toEqual([42, 'a string payload', null].sort());

    const key = { tenant: 't', groupId: 'g', entity: 'contact', kind: 'import' as const };
    await handle.db.collection<Document>(adapter.collections.cursors).insertOne({
      _id: JSON.stringify(['t', 'g', 'contact', 'import']) as unknown as ObjectId,
      _rev: 'legacy-rev',
      ...key,
      position: 3,
      data: { next: 'n', page: [1, 2] },
      complete: false,
      updatedAt: new Date(now),
    });
    expect((await adapter.cursors.get(key))?.data).toEqual({ next: 'n', page: [1, 2] });
    // Written again (with a key needing JSON text), then read back in the new form.
    expect(await adapter.cursors.advance(key, 4, { 'next.url': 'u' })).toBe(true);
    expect((await adapter.cursors.get(key))?.data).toEqual({ 'next.url': 'u' });

    await handle.db.collection<Document>(adapter.collections.ledger).insertOne({
      _id: 'legacy-key' as unknown as ObjectId,
      _rev: 'legacy-rev',
      status: 'done',
      owner: 'o',
      claimExpiresAt: null,
      intent: { amount: 10, lines: [{ qty: 1 }] },
      outcome: 'ok',
      createdAt: new Date(now),
      updatedAt: new Date(now),
    });
    expect(await adapter.ledger.get('legacy-key')).toMatchObject({ intent: { amount: 10, lines: [{ qty: 1 }] }, outcome: 'ok' });
  });

  it('idMaps.insertMany: an entry skipped for a stored map does not block a later entry sharing its other id', async () => {
    const scope = { tenant: 't', groupId: 'g', entity: 'e' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1' });
    const results = await adapter.idMaps.insertMany([
      { ...scope, connecId: 'c-1', localId: 'l-2' }, // skipped: c-1 is stored
      { ...scope, connecId: 'c-2', localId: 'l-2' }, // stored: the entry above stored nothing
      { ...scope, connecId: 'c-3', localId: 'l-2' }, // skipped: l-2 taken by the entry above
      { ...scope, connecId: 'c-3', localId: 'l-3' }, // stored
    ]);
    expect(results.map((r) => (r ? `${r.connecId}:${r.localId}` : null))).toEqual([null, 'c-2:l-2', null, 'c-3:l-3']);
    expect(await handle.db.collection(adapter.collections.idMaps).countDocuments()).toBe(3);
  });

  it('locks batch methods behave the same with and without write guards', async () => {
    for (const guard of ['always', 'never'] as const) {
      for (const name of Object.values(adapter.collections)) await handle.db.collection(name).deleteMany({});
      const locks = mongoAdapter(handle.db, { clock, guard }).locks;
      await locks.acquire('b', 'w2', 60_000);
      expect((await locks.acquireMany(['a', 'b', 'c', 'a'], 'w1', 60_000)).sort()).toEqual(['a', 'c']);
      expect(await locks.releaseMany(['a', 'b', 'c', 'c', 'x'], 'w1')).toBe(2);
      expect(await handle.db.collection(adapter.collections.locks).find().toArray()).toMatchObject([{ _id: 'b', owner: 'w2' }]);
      expect(await handle.db.collection(adapter.collections.guards).countDocuments()).toBe(0);
      const bad = await locks.acquireMany(['a', ''], 'w1', 60_000).catch((e: unknown) => e);
      expect(bad).toMatchObject({ code: 'storage_error', operation: 'locks.acquireMany' });
      expect(await handle.db.collection(adapter.collections.locks).countDocuments()).toBe(1);
    }
  });

  it('jobs.wakeMany rejects an empty wait key before any write', async () => {
    const bad = await adapter.jobs.wakeMany(['ok', '']).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 'storage_error', operation: 'jobs.wakeMany' });
    expect(bad).not.toBeInstanceOf(StorageConflictError);
  });

  it('a create racing with another writer that creates and deletes the same document retries instead of failing', async () => {
    // The first insert of each document: another writer inserts it first, our insert hits
    // the duplicate `_id`, and the other writer deletes it again before we look (a release
    // racing with a claim). Every modify-based operation must decide again, not throw.
    const raced = new Set<string>();
    const racedCount = () => raced.size;
    const racing = mongoAdapter(
      interceptInserts(handle.db, async (name, doc, insert) => {
        const id = JSON.stringify([name, doc['_id']]);
        if (name === adapter.collections.guards || raced.has(id)) return insert(doc);
        raced.add(id);
        const other = handle.db.collection(name);
        await other.insertOne({ ...doc, _rev: 'other-writer' });
        try {
          return await insert(doc);
        } finally {
          await other.deleteOne({ _id: doc['_id'], _rev: 'other-writer' });
        }
      }),
      { clock },
    );
    expect(await racing.locks.acquire('k', 'w1', 60_000)).toBe(true);
    expect(await racing.locks.acquireMany(['k2', 'k3'], 'w1', 60_000)).toEqual(['k2', 'k3']);
    expect((await racing.ledger.claim('charge', { owner: 'w1', ttlMs: 60_000, intent: null })).state).toBe('claimed');
    expect((await racing.groups.claim('t', 'g', { owner: 'w1', ttlMs: 60_000 })).state).toBe('claimed');
    expect((await racing.users.claim('t', 'u', { owner: 'w1', ttlMs: 60_000 })).state).toBe('claimed');
    expect(await racing.replay.remember('t', 'assertion-1', new Date(now + 60_000))).toBe(true);
    expect(await racing.cursors.advance({ tenant: 't', groupId: 'g', entity: 'contact', kind: 'import' }, 1, {})).toBe(true);
    expect((await racing.users.upsertMembership('t', 'u', 'g', 'admin')).created).toBe(true);
    expect(racedCount()).toBeGreaterThanOrEqual(9);
    const locks = await handle.db.collection(adapter.collections.locks).find().sort({ _id: 1 }).toArray();
    expect(locks.map((l) => [l['_id'], l['owner']])).toEqual([
      ['k', 'w1'],
      ['k2', 'w1'],
      ['k3', 'w1'],
    ]);
  });

  it('locks.acquireMany that fails on one key releases the keys it took, and keeps the ones the owner already held', async () => {
    await adapter.locks.acquire('own', 'w1', 60_000);
    await adapter.locks.acquire('held', 'w2', 60_000);
    const failing = mongoAdapter(
      interceptInserts(handle.db, async (name, doc, insert) => {
        if (name === adapter.collections.locks && doc['_id'] === 'bad') {
          // Fails after the other keys' writes went through.
          await new Promise((resolve) => setTimeout(resolve, 200));
          throw new Error('injected insert failure');
        }
        return insert(doc);
      }),
      { clock },
    );
    const err = await failing.locks.acquireMany(['a', 'own', 'b', 'held', 'bad', 'c'], 'w1', 60_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ operation: 'locks.acquireMany' });
    const locks = await handle.db.collection(adapter.collections.locks).find().sort({ _id: 1 }).toArray();
    expect(locks.map((l) => [l['_id'], l['owner']])).toEqual([
      ['held', 'w2'],
      ['own', 'w1'],
    ]);
    // Nothing blocks another owner from the keys the failed call had taken.
    expect((await adapter.locks.acquireMany(['a', 'b', 'c'], 'w3', 60_000)).sort()).toEqual(['a', 'b', 'c']);
  });
});
