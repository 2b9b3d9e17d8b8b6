// Several replicas start at the same moment and each calls ensureIndexes() on a fresh
// database: every call succeeds, and the indexes exist once.
import { MongoClient } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/mongo-adapter.js';
import { mongoUrl, openTestDb, unavailable } from './support.js';

describe.skipIf(unavailable !== null)('ensureIndexes() from several processes at once', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });

  it('five replicas on a fresh database: no error, indexes created once', async () => {
    const handle = await openTestDb('deploy');
    cleanups.push(() => handle.drop());
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(Array.from({ length: 5 }, () => new MongoClient(mongoUrl ?? '').connect()));
      cleanups.push(async () => {
        for (const c of clients) await c.close();
      });
      const db = `${handle.name}_${round}`;
      const adapters = clients.map((client) => mongoAdapter(client.db(db)));
      const outcomes = await Promise.allSettled(adapters.map((a) => a.ensureIndexes()));
      cleanups.push(() => clients[0]!.db(db).dropDatabase().then(() => undefined));
      const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as Error).message) + ' ' + String((o.reason as Error).cause)] : []));
      expect(failures).toEqual([]);
      // Re-run: idempotent.
      await adapters[0]!.ensureIndexes();
      const jobs = await clients[0]!.db(db).collection(adapters[0]!.collections.jobs).listIndexes().toArray();
      expect(jobs.filter((i) => i['name'] === 'dedupe_unique')).toHaveLength(1);
    }
  });
});
