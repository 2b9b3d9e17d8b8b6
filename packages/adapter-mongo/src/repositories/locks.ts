import type { LockRepository } from '@org/maestrano-sdk';
import { dateOrNull } from '../documents.js';
import type { Store } from '../store.js';
import { checkClaimOptions, checkNonEmpty } from '../validation.js';

/** One document per key (`_id` = key); a released lock leaves no document behind. */
export function lockRepository(store: Store): LockRepository {
  return {
    acquire: (key, owner, ttlMs) =>
      store.run('locks.acquire', () => {
        checkNonEmpty('key', key);
        checkClaimOptions({ owner, ttlMs });
        const now = store.now();
        const expiresAt = new Date(now.getTime() + ttlMs);
        return store.modify<boolean>('locks.acquire', 'locks', key, (doc) => {
          if (doc === null) return { kind: 'insert', doc: { owner, expiresAt }, value: () => true };
          const current = dateOrNull(doc, 'expiresAt');
          const live = current !== null && current.getTime() > now.getTime();
          if (live && doc['owner'] !== owner) return { kind: 'return', value: false };
          return { kind: 'update', set: { owner, expiresAt }, value: () => true };
        });
      }),

    refresh: (key, owner, ttlMs) =>
      store.run('locks.refresh', () => {
        checkClaimOptions({ owner, ttlMs });
        const now = store.now();
        return store.modify<boolean>('locks.refresh', 'locks', key, (doc) => {
          const current = doc === null ? null : dateOrNull(doc, 'expiresAt');
          if (doc === null || doc['owner'] !== owner || current === null || current.getTime() <= now.getTime()) {
            return { kind: 'return', value: false };
          }
          return { kind: 'update', set: { expiresAt: new Date(now.getTime() + ttlMs) }, value: () => true };
        });
      }),

    release: (key, owner) =>
      store.run('locks.release', () =>
        store.modify<boolean>('locks.release', 'locks', key, (doc) => {
          if (doc === null || doc['owner'] !== owner) return { kind: 'return', value: false };
          return { kind: 'delete', value: true };
        }),
      ),
  };
}
