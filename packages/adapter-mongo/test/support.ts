import { randomBytes } from 'node:crypto';
import { type Db, MongoClient } from 'mongodb';
import { inject } from 'vitest';

export const mongoUrl = inject('mongoUrl');
export const backend = inject('mongoBackend');
export const unavailable = inject('mongoUnavailable');

/** A fresh database with a unique name on the test server; `drop()` removes it. */
export async function openTestDb(label: string): Promise<{ client: MongoClient; db: Db; name: string; drop(): Promise<void> }> {
  if (!mongoUrl) throw new Error(`no MongoDB test server: ${unavailable}`);
  const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000, maxPoolSize: 30 });
  await client.connect();
  const name = `mno_${label}_${randomBytes(4).toString('hex')}`;
  const db = client.db(name);
  return {
    client,
    db,
    name,
    async drop() {
      await db.dropDatabase();
      await client.close();
    },
  };
}
