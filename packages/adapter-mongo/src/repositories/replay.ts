import type { ReplayRepository } from '@org/maestrano-sdk';
import { dateOrNull, keyId, type Stored, toDate } from '../documents.js';
import type { Store } from '../store.js';
import { checkDate, checkNonEmpty } from '../validation.js';

/** Expired records read per round trip by `purgeExpired`. */
const PURGE_BATCH = 1000;

export function replayRepository(store: Store): ReplayRepository {
  return {
    remember: (tenant, assertionId, expiresAt) =>
      store.run('replay.remember', () => {
        checkNonEmpty('tenant', tenant);
        checkNonEmpty('assertionId', assertionId);
        checkDate('expiresAt', expiresAt);
        const now = store.now();
        return store.modify<boolean>('replay.remember', 'replay', keyId(tenant, assertionId), (doc) => {
          if (doc === null) {
            return { kind: 'insert', doc: { tenant, assertionId, expiresAt: toDate(expiresAt), createdAt: now }, value: () => true };
          }
          const stored = dateOrNull(doc, 'expiresAt');
          if (stored !== null && stored.getTime() > now.getTime()) return { kind: 'return', value: false };
          return { kind: 'update', set: { expiresAt: toDate(expiresAt), createdAt: now }, value: () => true };
        });
      }),

    forget: (tenant, assertionId, expiresAt) =>
      store.run('replay.forget', () => {
        checkNonEmpty('tenant', tenant);
        checkNonEmpty('assertionId', assertionId);
        checkDate('expiresAt', expiresAt);
        const now = store.now();
        return store.modify<boolean>('replay.forget', 'replay', keyId(tenant, assertionId), (doc) => {
          const stored = doc === null ? null : dateOrNull(doc, 'expiresAt');
          if (stored === null || stored.getTime() <= now.getTime() || stored.getTime() !== expiresAt.getTime()) return { kind: 'return', value: false };
          return { kind: 'delete', value: true };
        });
      }),

    purgeExpired: () =>
      store.run('replay.purgeExpired', async () => {
        // Each expired record is removed by compare-and-delete, so a concurrent `remember`
        // that renews it is never lost. Read through a cursor, not all at once: the first purge
        // after a long time may meet every login ever made.
        const expired = store.collection('replay').find({ expiresAt: { $lte: store.now() } }).batchSize(PURGE_BATCH);
        let removed = 0;
        try {
          for await (const doc of expired) if (await store.casDelete('replay', doc as Stored)) removed++;
        } finally {
          await expired.close();
        }
        return removed;
      }),
  };
}
