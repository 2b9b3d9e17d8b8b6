import type { LockRepository, StorageOperation } from '@org/maestrano-sdk';
import { mapLimited } from '../batch.js';
import { dateOrNull } from '../documents.js';
import type { Store } from '../store.js';
import { checkArray, checkClaimOptions, checkLookup, checkNonEmpty, checkStorableText, expiryAfter } from '../validation.js';

/** One document per key (`_id` = key); a released lock leaves no document behind. */
export function lockRepository(store: Store): LockRepository {
  const locks = () => store.collection('locks');

  /**
   * Takes `key` when free, expired or already the owner's (then refreshed): `taken` when the
   * owner did not hold it live before, `refreshed` when it did, null when another owner holds it.
   */
  function acquireOne(operation: StorageOperation, key: string, owner: string, ttlMs: number): Promise<'taken' | 'refreshed' | null> {
    const now = store.now();
    const expiresAt = expiryAfter(now, ttlMs);
    return store.modify<'taken' | 'refreshed' | null>(operation, 'locks', key, (doc) => {
      if (doc === null) return { kind: 'insert', doc: { owner, expiresAt }, value: () => 'taken' };
      const current = dateOrNull(doc, 'expiresAt');
      const live = current !== null && current.getTime() > now.getTime();
      if (live && doc['owner'] !== owner) return { kind: 'return', value: null };
      return { kind: 'update', set: { owner, expiresAt }, value: () => (live ? 'refreshed' : 'taken') };
    });
  }

  /** Deletes the owner's lock on `key` (compare-and-delete, so a new holder's lock survives). */
  function releaseOne(operation: StorageOperation, key: string, owner: string): Promise<boolean> {
    return store.modify<boolean>(operation, 'locks', key, (doc) => {
      if (doc === null || doc['owner'] !== owner) return { kind: 'return', value: false };
      return { kind: 'delete', value: true };
    });
  }

  return {
    acquire: (key, owner, ttlMs) =>
      store.run('locks.acquire', async () => {
        checkNonEmpty('key', key);
        checkClaimOptions({ owner, ttlMs });
        return (await acquireOne('locks.acquire', key, owner, ttlMs)) !== null;
      }),

    refresh: (key, owner, ttlMs) =>
      store.run('locks.refresh', () => {
        checkClaimOptions({ owner, ttlMs });
        checkLookup({ key });
        const now = store.now();
        return store.modify<boolean>('locks.refresh', 'locks', key, (doc) => {
          const current = doc === null ? null : dateOrNull(doc, 'expiresAt');
          if (doc === null || doc['owner'] !== owner || current === null || current.getTime() <= now.getTime()) {
            return { kind: 'return', value: false };
          }
          return { kind: 'update', set: { expiresAt: expiryAfter(now, ttlMs) }, value: () => true };
        });
      }),

    release: (key, owner) =>
      store.run('locks.release', () => {
        checkLookup({ key, owner });
        return releaseOne('locks.release', key, owner);
      }),

    // Each key goes through the single-key read-decide-write (guarded on FerretDB), a few at a
    // time: a batch takes exactly the keys `acquire` would have taken one by one. When one key
    // fails, the call rejects without reporting what it took, so it first releases (best
    // effort) the keys it took itself; locks the owner already held stay held.
    acquireMany: (keys, owner, ttlMs) =>
      store.run('locks.acquireMany', async () => {
        checkArray('keys', keys);
        for (const key of keys) checkNonEmpty('key', key);
        checkClaimOptions({ owner, ttlMs });
        const unique = [...new Set(keys)];
        const takenHere: string[] = [];
        try {
          const taken = await mapLimited(unique, async (key) => {
            const result = await acquireOne('locks.acquireMany', key, owner, ttlMs);
            if (result === 'taken') takenHere.push(key);
            return result !== null;
          });
          return unique.filter((_, i) => taken[i]);
        } catch (err) {
          await mapLimited(takenHere, (key) => releaseOne('locks.acquireMany', key, owner).catch(() => false));
          throw err;
        }
      }),

    releaseMany: (keys, owner) =>
      store.run('locks.releaseMany', async () => {
        checkArray('keys', keys);
        for (const key of keys) checkStorableText('key', key);
        checkStorableText('owner', owner);
        // Locks are only ever taken under non-empty string keys; nothing else can match one.
        const unique = [...new Set(keys)].filter((key) => typeof key === 'string' && key.length > 0);
        if (unique.length === 0) return 0;
        if (!(await store.isGuarded())) {
          // MongoDB applies the owner filter and the delete atomically per document.
          const result = await locks().deleteMany({ _id: { $in: unique }, owner });
          return result.deletedCount;
        }
        // FerretDB evaluates a deleteMany filter first and then deletes by `_id`, which could
        // remove a lock another owner took in between: compare-and-delete each key instead.
        const released = await mapLimited(unique, (key) => releaseOne('locks.releaseMany', key, owner));
        return released.filter(Boolean).length;
      }),
  };
}
