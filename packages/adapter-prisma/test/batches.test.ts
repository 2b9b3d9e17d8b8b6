// The batch operations (idMaps.insertMany, locks.acquireMany/releaseMany, jobs.completeMany/
// wakeMany) on both databases, beyond the conformance cases: inputs larger than one
// statement's chunk, and insertMany compared entry by entry with the memory adapter.
import { type IdMapInsert, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { prismaAdapter } from '../src/index.js';
import { migratedPg, migratedSqlite, pgUnavailableReason } from './backends.js';

const pgUnavailable = await pgUnavailableReason();
if (pgUnavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${pgUnavailable}`);

interface Backend {
  name: string;
  unavailable: string | null;
  open(): Promise<{ adapter: StorageAdapter; clear(): Promise<void>; close(): Promise<void> }>;
}

const TABLES = ['maestrano_id_maps', 'maestrano_locks', 'maestrano_jobs', 'maestrano_job_guards'];

const backends: Backend[] = [
  {
    name: 'prisma-postgresql',
    unavailable: pgUnavailable,
    async open() {
      const { db, prisma } = await migratedPg();
      return {
        adapter: prismaAdapter(prisma),
        clear: async () => {
          await prisma.$executeRawUnsafe(`TRUNCATE ${TABLES.join(', ')}`);
        },
        close: async () => {
          await prisma.$disconnect();
          await db.drop();
        },
      };
    },
  },
  {
    name: 'prisma-sqlite',
    unavailable: null,
    async open() {
      const { file, prisma } = await migratedSqlite();
      return {
        adapter: prismaAdapter(prisma),
        clear: async () => {
          for (const table of TABLES) await prisma.$executeRawUnsafe(`DELETE FROM ${table}`);
        },
        close: async () => {
          await prisma.$disconnect();
          file.remove();
        },
      };
    },
  },
];

const SCOPE = { tenant: 't', groupId: 'cld-1', entity: 'contact' };

/** A small deterministic generator, so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

function describeMap(map: { entity: string; connecId: string | null; localId: string | null } | null): string | null {
  return map === null ? null : `${map.entity}:${map.connecId}:${map.localId}`;
}

for (const backend of backends) {
  describe.skipIf(backend.unavailable !== null)(`${backend.name}: batch operations`, () => {
    let opened: Awaited<ReturnType<Backend['open']>>;
    let adapter: StorageAdapter;

    beforeAll(async () => {
      opened = await backend.open();
      adapter = opened.adapter;
    });
    afterAll(async () => {
      await opened?.close();
    });
    beforeEach(async () => {
      await opened.clear();
    });

    it('insertMany returns what the memory adapter returns, entry by entry, across chunk boundaries', async () => {
      const memory = memoryAdapter();
      const next = random(7);
      const pick = (n: number) => Math.floor(next() * n);
      const entity = () => (pick(4) === 0 ? 'invoice' : 'contact');
      const id = (prefix: string) => (pick(5) === 0 ? null : `${prefix}-${pick(900)}`);
      const entry = (): IdMapInsert => {
        const connecId = id('c');
        return { ...SCOPE, entity: entity(), connecId, localId: connecId === null ? `l-${pick(900)}` : id('l') };
      };
      const seeded = Array.from({ length: 200 }, entry);
      const batch = Array.from({ length: 1_300 }, entry);
      for (const storage of [adapter, memory]) await storage.idMaps.insertMany(seeded);
      const got = await adapter.idMaps.insertMany(batch);
      const expected = await memory.idMaps.insertMany(batch);
      expect(got.map(describeMap)).toEqual(expected.map(describeMap));
      // Some of each: stored, skipped against a stored map, skipped against an earlier entry.
      expect(got.filter((r) => r !== null).length).toBeGreaterThan(100);
      expect(got.filter((r) => r === null).length).toBeGreaterThan(100);
      // Paging follows input order, as with successive inserts.
      for (const entity of ['contact', 'invoice']) {
        const scope = { ...SCOPE, entity };
        const listed = await adapter.idMaps.list(scope, { limit: 5_000 });
        const listedInMemory = await memory.idMaps.list(scope, { limit: 5_000 });
        expect(listed.map(describeMap)).toEqual(listedInMemory.map(describeMap));
      }
    });

    it('insertMany returns each stored map exactly as find reads it back (every field)', async () => {
      const at = new Date(Date.UTC(2031, 4, 6, 7, 8, 9, 123));
      const entries: IdMapInsert[] = [
        { ...SCOPE, connecId: 'c-full', localId: 'l-full', lastAppliedAt: at, lastPushedHash: 'p'.repeat(64), lastReceivedHash: 'r'.repeat(64) },
        { ...SCOPE, connecId: 'c-bare', localId: null },
        { ...SCOPE, entity: 'invoice', connecId: null, localId: 'l-only' },
        { ...SCOPE, connecId: 'c-full', localId: 'l-other' }, // collides: not stored
      ];
      const got = await adapter.idMaps.insertMany(entries);
      expect(got[3]).toBeNull();
      for (const [index, record] of got.slice(0, 3).entries()) {
        const entry = entries[index] as IdMapInsert;
        const scope = { tenant: entry.tenant, groupId: entry.groupId, entity: entry.entity };
        const read = await adapter.idMaps.find(scope, entry.connecId !== null ? { connecId: entry.connecId } : { localId: entry.localId as string });
        expect(record).toEqual(read);
      }
      expect(got[0]?.lastAppliedAt?.toISOString()).toBe(at.toISOString());
      expect(got[0]?.lastAppliedAt).not.toBe(at); // a copy, not the caller's Date
    });

    it('insertMany stores an entry that collides only with an earlier entry that was itself skipped', async () => {
      await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
      const results = await adapter.idMaps.insertMany([
        { ...SCOPE, connecId: 'c-1', localId: 'l-2' },
        { ...SCOPE, connecId: 'c-2', localId: 'l-2' },
        { ...SCOPE, connecId: 'c-2', localId: 'l-2' },
      ]);
      expect(results.map(describeMap)).toEqual([null, 'contact:c-2:l-2', null]);
    });

    it('acquireMany and releaseMany handle more keys than one statement binds', async () => {
      const keys = Array.from({ length: 1_234 }, (_, i) => `k-${i}`);
      await adapter.locks.acquire('k-5', 'other', 60_000);
      await adapter.locks.acquire('k-1000', 'other', 60_000);
      const taken = await adapter.locks.acquireMany([...keys, ...keys.slice(0, 50)], 'w1', 60_000);
      expect(taken).toEqual(keys.filter((k) => k !== 'k-5' && k !== 'k-1000'));
      expect(await adapter.locks.acquireMany(keys, 'w1', 60_000)).toHaveLength(1_232);
      expect(await adapter.locks.releaseMany([...keys, 'unknown'], 'w1')).toBe(1_232);
      expect(await adapter.locks.acquire('k-1000', 'w1', 60_000)).toBe(false);
      expect(await adapter.locks.acquire('k-7', 'w2', 60_000)).toBe(true);
    });

    it('enqueueMany keeps input order (ids, claims) whatever the order of its dedupe keys', async () => {
      const stored = await adapter.jobs.enqueue({ type: 'sync', payload: 'before', dedupeKey: 'm' });
      const keys = ['z', null, 'b', 'm', 'y', 'b', null, 'a'];
      const results = await adapter.jobs.enqueueMany(keys.map((dedupeKey, i) => ({ type: 'sync', payload: { i }, dedupeKey })));
      expect(results.map((r) => r.created)).toEqual([true, true, true, false, true, false, true, true]);
      expect(results[3]?.id).toBe(stored.id);
      expect(results[5]?.id).toBe(results[2]?.id);
      const fresh = results.filter((r) => r.created).map((r) => BigInt(r.id));
      expect(fresh).toEqual([...fresh].sort((a, b) => (a < b ? -1 : 1)));
      const claimed = await adapter.jobs.claim({ worker: 'w1', limit: 20, leaseMs: 60_000 });
      expect(claimed.map((j) => j.payload)).toEqual(['before', { i: 0 }, { i: 1 }, { i: 2 }, { i: 4 }, { i: 6 }, { i: 7 }]);
      // More inputs than one statement takes: ids still ascend in input order across chunks.
      const many = await adapter.jobs.enqueueMany(
        Array.from({ length: 1_200 }, (_, i) => ({ type: 'bulk', payload: i, dedupeKey: `bulk-${(1_200 - i) % 1_150}` })),
      );
      expect(many.filter((r) => r.created)).toHaveLength(1_150);
      expect(many.slice(1_150).every((r, i) => !r.created && r.id === many[i]?.id)).toBe(true);
      const ids = many.slice(0, 1_150).map((r) => BigInt(r.id));
      expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as bigint))).toBe(true);
    });

    it('completeMany and wakeMany handle more ids and keys than one statement binds', async () => {
      const count = 1_100;
      const jobs = await adapter.jobs.enqueueMany(
        Array.from({ length: count }, (_, i) => ({ type: 'sync', payload: { i }, orderingKey: `rec-${i % 700}` })),
      );
      const claimed = await adapter.jobs.claim({ worker: 'w1', limit: count, leaseMs: 60_000 });
      expect(claimed).toHaveLength(700);
      const done = await adapter.jobs.completeMany([...jobs.map((j) => j.id), 'x', '0'], 'w1');
      expect(done).toEqual(jobs.slice(0, 700).map((j) => j.id));
      // Every ordering key was released: the second job of each key can be claimed now.
      const second = await adapter.jobs.claim({ worker: 'w2', limit: count, leaseMs: 60_000 });
      expect(second.map((j) => j.id).sort()).toEqual(
        jobs
          .slice(700)
          .map((j) => j.id)
          .sort(),
      );
      const far = new Date(Date.now() + 3_600_000);
      for (const job of second) {
        await adapter.jobs.fail(job.id, 'w2', { error: { message: 'waiting' }, retryAt: far, waitKey: `ref-${job.id}` });
      }
      const waitKeys = second.map((j) => `ref-${j.id}`);
      expect(await adapter.jobs.wakeMany([...waitKeys, ...waitKeys, 'ref-none'])).toBe(second.length);
      expect(await adapter.jobs.claim({ worker: 'w3', limit: count, leaseMs: 60_000 })).toHaveLength(second.length);
    });
  });
}
