import { randomBytes } from 'node:crypto';
import { type Collection, type Db, MongoClient } from 'mongodb';
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

/**
 * `db` with every `findOne` on its collection `name` running `before` first (with the call's
 * filter): a hook that waits stands for a slow round trip, one that throws for a dropped
 * connection. Other collections and methods are untouched.
 */
export function beforeFindOne(db: Db, name: string, before: (filter: unknown) => Promise<void> | void): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'collection') return Reflect.get(target, prop, receiver);
      return (collectionName: string, ...rest: unknown[]) => {
        const collection = (target.collection as (...args: unknown[]) => Collection)(collectionName, ...rest);
        if (collectionName !== name) return collection;
        return new Proxy(collection, {
          get(c, p, r) {
            if (p !== 'findOne') return Reflect.get(c, p, r);
            return async (...args: unknown[]) => {
              await before(args[0]);
              return (c.findOne as (...a: unknown[]) => Promise<unknown>).apply(c, args);
            };
          },
        });
      };
    },
  });
}

/** One held step: `hold()` waits until `release()`; `reached()` resolves once a step is held. */
export function createGate(): { hold(): Promise<void>; reached(): Promise<void>; release(): void } {
  let held: (() => void) | null = null;
  let onHeld: (() => void) | null = null;
  return {
    hold() {
      return new Promise<void>((resolve) => {
        held = resolve;
        onHeld?.();
      });
    },
    reached() {
      return new Promise<void>((resolve) => {
        onHeld = resolve;
      });
    },
    release() {
      held?.();
    },
  };
}
