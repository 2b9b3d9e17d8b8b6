/**
 * Storage benchmark for @org/maestrano-adapter-mongo: id-map upserts and job
 * enqueue+claim+complete per second through the adapter, next to the raw `mongodb` driver
 * doing the same work in the same run against the same server; prints ratios.
 *
 *   node --conditions=@org/source --import tsx bench/storage/mongo.ts [--maps 300] [--jobs 150]
 *
 * Uses MONGODB_URL when set, otherwise starts FerretDB 1.24 (SQLite handler) on a loopback
 * port with a temporary data directory. On FerretDB the adapter runs in guarded mode (its
 * conditional updates are not atomic; see the adapter README); the `guard: never` row (the
 * MongoDB code path, unsafe on FerretDB, where its `{ _id, _rev }` filters scan) is printed
 * for comparison.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type MongoStorageAdapter, mongoAdapter } from '@org/maestrano-adapter-mongo';
import { type Collection, type Db, type Document, MongoClient, ObjectId } from 'mongodb';
import { FerretDbServer, findFerretDb } from '../../packages/adapter-mongo/test/ferretdb.ts';

const { values } = parseArgs({ options: { maps: { type: 'string', default: '300' }, jobs: { type: 'string', default: '150' } } });
const MAPS = Number(values.maps);
const JOBS = Number(values.jobs);
const scope = { tenant: 'bench', groupId: 'cld-bench', entity: 'contact' };

async function time(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

// --- raw driver baselines --------------------------------------------------------------

async function rawIdMaps(db: Db): Promise<number> {
  const maps = db.collection('raw_id_maps');
  await maps.createIndex({ tenant: 1, groupId: 1, entity: 1, connecId: 1 }, { unique: true });
  const seconds = await time(async () => {
    for (let i = 0; i < MAPS; i++) {
      const now = new Date();
      await maps.updateOne(
        { ...scope, connecId: `c-${i}` },
        { $set: { localId: `l-${i}`, updatedAt: now }, $setOnInsert: { createdAt: now } },
        { upsert: true },
      );
    }
    for (let i = 0; i < MAPS; i++) {
      await maps.updateOne({ ...scope, connecId: `c-${i}` }, { $set: { lastPushedHash: `h-${i}`, updatedAt: new Date() } }, { upsert: true });
    }
  });
  return (2 * MAPS) / seconds;
}

async function rawJobs(db: Db): Promise<number> {
  const jobs: Collection<Document> = db.collection('raw_jobs');
  await jobs.createIndex({ status: 1, runAt: 1 });
  const seconds = await time(async () => {
    for (let i = 0; i < JOBS; i++) {
      const now = new Date();
      await jobs.insertOne({ _id: new ObjectId(), type: 'sync', payload: { i }, status: 'pending', attempts: 0, runAt: now, createdAt: now });
    }
    for (;;) {
      const claimed: ObjectId[] = [];
      for (let n = 0; n < 10; n++) {
        const now = new Date();
        const job = await jobs.findOneAndUpdate(
          { status: 'pending', runAt: { $lte: now } },
          { $set: { status: 'running', leaseOwner: 'w', leaseExpiresAt: new Date(now.getTime() + 60_000) }, $inc: { attempts: 1 } },
          { sort: { runAt: 1, _id: 1 }, returnDocument: 'after' },
        );
        if (!job) break;
        claimed.push(job._id as ObjectId);
      }
      if (claimed.length === 0) break;
      for (const id of claimed) {
        await jobs.updateOne({ _id: id, leaseOwner: 'w' }, { $set: { status: 'done', completedAt: new Date() } });
      }
    }
  });
  if ((await jobs.countDocuments({ status: 'done' })) !== JOBS) throw new Error('raw jobs baseline lost jobs');
  return JOBS / seconds;
}

// --- through the adapter -----------------------------------------------------------------

async function adapterIdMaps(adapter: MongoStorageAdapter): Promise<number> {
  const seconds = await time(async () => {
    for (let i = 0; i < MAPS; i++) await adapter.idMaps.insert({ ...scope, connecId: `c-${i}`, localId: `l-${i}` });
    for (let i = 0; i < MAPS; i++) await adapter.idMaps.update(scope, { connecId: `c-${i}` }, { lastPushedHash: `h-${i}` });
  });
  return (2 * MAPS) / seconds;
}

async function adapterJobs(adapter: MongoStorageAdapter): Promise<number> {
  const seconds = await time(async () => {
    for (let i = 0; i < JOBS; i++) await adapter.jobs.enqueue({ type: 'sync', payload: { i } });
    for (;;) {
      const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000 });
      if (claimed.length === 0) break;
      for (const job of claimed) await adapter.jobs.complete(job.id, 'w');
    }
  });
  const counts = await adapter.jobs.counts();
  if (counts.done !== JOBS) throw new Error(`adapter lost jobs: ${JSON.stringify(counts)}`);
  return JOBS / seconds;
}

async function main(): Promise<void> {
  let server: FerretDbServer | null = null;
  let url = process.env['MONGODB_URL'] ?? process.env['MAESTRANO_TEST_MONGO_URL'];
  if (!url) {
    const binary = findFerretDb();
    if (!binary) throw new Error('no MONGODB_URL and no ferretdb binary (scripts/install-ferretdb.sh)');
    server = await FerretDbServer.launch(binary);
    url = server.url;
  }
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  const dbs: Db[] = [];
  const freshDb = () => {
    const db = client.db(`mno_bench_${randomBytes(4).toString('hex')}`);
    dbs.push(db);
    return db;
  };
  try {
    const backend = server ? 'FerretDB 1.24 (SQLite)' : 'MongoDB (MONGODB_URL)';
    console.log(`adapter-mongo benchmark on ${backend}: ${MAPS} maps (insert+update each), ${JOBS} jobs (enqueue+claim+complete)\n`);
    // Warm-up (connections, collection creation).
    await rawIdMaps(freshDb());

    const rows: [string, number, number][] = [];
    const rawMaps = await rawIdMaps(freshDb());
    const rawJob = await rawJobs(freshDb());
    for (const guard of ['auto', 'never'] as const) {
      const make = async () => {
        const adapter = mongoAdapter(freshDb(), { guard });
        await adapter.ensureIndexes();
        return adapter;
      };
      const label = guard === 'auto' ? (server ? 'adapter (guarded)' : 'adapter') : 'adapter guard:never (unsafe here)';
      if (guard === 'never' && !server) continue;
      rows.push([`id-map upserts/s, ${label}`, rawMaps, await adapterIdMaps(await make())]);
      rows.push([`jobs enqueue+claim+complete/s, ${label}`, rawJob, await adapterJobs(await make())]);
    }
    console.log(`${'workload'.padEnd(68)}${'raw/s'.padStart(10)}${'adapter/s'.padStart(12)}${'ratio'.padStart(8)}`);
    for (const [name, raw, ours] of rows) {
      console.log(`${name.padEnd(68)}${raw.toFixed(0).padStart(10)}${ours.toFixed(0).padStart(12)}${(ours / raw).toFixed(2).padStart(8)}`);
    }
  } finally {
    for (const db of dbs) await db.dropDatabase().catch(() => undefined);
    await client.close();
    await server?.destroy();
  }
}

await main();
