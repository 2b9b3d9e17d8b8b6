// The adapter on an app's own database and client (the README's `mongoAdapter(client.db('app'))`):
// its collections never share a name with the app's, and the client options the app chose for
// its own reads do not weaken the adapter's read-then-write decisions.
import { type Collection, type CommandStartedEvent, type Db, MongoClient } from 'mongodb';
import { ConfigError } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIndexes, mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

/** `db` whose `collection()` calls are recorded (name and the collection handed out). */
function recordCollections(db: Db, seen: Collection[]): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'collection') return Reflect.get(target, prop, receiver);
      return (...args: Parameters<Db['collection']>) => {
        const collection = target.collection(...args);
        seen.push(collection);
        return collection;
      };
    },
  });
}

describe.skipIf(unavailable !== null)(`${backend}: the adapter on an app's own database`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  const clock = () => new Date(Date.UTC(2031, 0, 1));

  beforeAll(async () => {
    handle = await openTestDb('app_db');
  });
  afterAll(async () => {
    await handle?.drop();
  });

  it("refuses an empty collectionPrefix, whose names (jobs, users) are the app's own; the default leaves the app's jobs alone", async () => {
    // The app's own job queue, with the field names the SDK's jobs use too.
    const appJobs = handle.db.collection('jobs');
    await appJobs.insertMany([
      { name: 'invoice-run', status: 'done', completedAt: new Date(Date.UTC(2020, 0, 1)) },
      { name: 'newsletter', status: 'pending', runAt: new Date(Date.UTC(2020, 0, 1)), createdAt: new Date(Date.UTC(2020, 0, 1)) },
    ]);

    const err = (() => {
      try {
        mongoAdapter(handle.db, { collectionPrefix: '' });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toEqual(['collectionPrefix']);
    await expect(ensureIndexes(handle.db, '')).rejects.toBeInstanceOf(ConfigError);
    expect((await appJobs.listIndexes().toArray()).map((i) => i['name'])).toEqual(['_id_']);

    const storage = mongoAdapter(handle.db, { clock });
    await storage.ensureIndexes();
    expect(storage.collections.jobs).toBe('mno_jobs');
    expect(await storage.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000 })).toEqual([]);
    expect(await storage.jobs.purgeCompleted(clock())).toBe(0);
    expect(await appJobs.countDocuments()).toBe(2);
    expect(await appJobs.findOne({ name: 'newsletter' })).toMatchObject({ status: 'pending' });
  });

  it("reads on the primary at 'local' whatever read preference and read concern the app's client asks for", async () => {
    const commands: CommandStartedEvent[] = [];
    const client = new MongoClient(`${mongoUrl}${mongoUrl?.includes('?') ? '&' : '?'}readPreference=secondaryPreferred&readConcernLevel=majority`, {
      serverSelectionTimeoutMS: 5_000,
      monitorCommands: true,
    });
    client.on('commandStarted', (event) => commands.push(event));
    try {
      const seen: Collection[] = [];
      const storage = mongoAdapter(recordCollections(client.db(handle.name), seen), { clock });
      await storage.ensureIndexes();
      seen.length = 0; // index creation writes; what follows is the contract's reads and writes
      await storage.idMaps.insert({ tenant: 't', groupId: 'g', entity: 'contact', connecId: 'c-1', localId: 'l-1' });
      expect(await storage.idMaps.find({ tenant: 't', groupId: 'g', entity: 'contact' }, { connecId: 'c-1' })).toMatchObject({ localId: 'l-1' });
      await storage.jobs.enqueue({ type: 'sync', payload: null, dedupeKey: 'd' });
      expect(await storage.jobs.counts()).toMatchObject({ pending: 1 });

      const reads = commands.filter((c) => ['find', 'aggregate', 'count'].includes(c.commandName));
      expect(reads.length).toBeGreaterThan(0);
      // Sent on the wire: a majority read may miss the adapter's own `w: 1` write.
      expect(reads.map((c) => (c.command['readConcern'] as { level?: string } | undefined)?.level ?? 'local')).toEqual(reads.map(() => 'local'));
      // Not sent to a standalone server (it has no secondaries), so checked on the collections used.
      const modes = new Set(seen.map((c) => c.readPreference?.mode));
      expect([...modes]).toEqual(['primary']);
    } finally {
      await client.close();
    }
  });
});
