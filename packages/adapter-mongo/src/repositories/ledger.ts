import type { JsonValue, LedgerClaim, LedgerEntry, LedgerRepository } from '@org/maestrano-sdk';
import { checkStoredJsonTogether, date, dateOrNull, json, jsonOrNull, type Raw, str, strOrNull, toStoredJson } from '../documents.js';
import type { Store } from '../store.js';
import { checkClaimOptions, checkDefined, checkLookup, checkNonEmpty, expiryAfter } from '../validation.js';

export function decodeLedger(doc: Raw): LedgerEntry {
  return {
    key: str(doc, '_id'),
    status: str(doc, 'status') === 'done' ? 'done' : 'pending',
    owner: strOrNull(doc, 'owner'),
    claimExpiresAt: dateOrNull(doc, 'claimExpiresAt'),
    intent: json(doc, 'intent'),
    outcome: jsonOrNull(doc, 'outcome'),
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

/** One document per key (`_id` = key): the insert is the claim-once primitive. */
export function ledgerRepository(store: Store): LedgerRepository {
  const ledger = () => store.collection('ledger');
  return {
    get: (key) =>
      store.run('ledger.get', async () => {
        checkLookup({ key });
        const doc = await ledger().findOne({ _id: key });
        return doc ? decodeLedger(doc) : null;
      }),

    claim: (key, options) =>
      store.run('ledger.claim', () => {
        checkNonEmpty('key', key);
        checkClaimOptions(options);
        checkDefined('intent', options.intent);
        const now = store.now();
        const claimExpiresAt = expiryAfter(now, options.ttlMs);
        const intent = toStoredJson(options.intent, 'intent');
        return store.modify<LedgerClaim>('ledger.claim', 'ledger', key, (doc) => {
          if (doc === null) {
            return {
              kind: 'insert',
              doc: { status: 'pending', owner: options.owner, claimExpiresAt, intent, outcome: null, createdAt: now, updatedAt: now },
              value: (stored) => ({ state: 'claimed', recovered: false, entry: decodeLedger(stored) }),
            };
          }
          const entry = decodeLedger(doc);
          if (entry.status === 'done') return { kind: 'return', value: { state: 'done', entry } };
          const live = entry.claimExpiresAt !== null && entry.claimExpiresAt.getTime() > now.getTime();
          if (live && entry.owner !== options.owner) return { kind: 'return', value: { state: 'pending', entry } };
          // The recorded intent stays the first claimer's: a recovering caller reconciles against it.
          return {
            kind: 'update',
            set: { owner: options.owner, claimExpiresAt, updatedAt: now },
            value: (stored) => ({ state: 'claimed', recovered: !live, entry: decodeLedger(stored) }),
          };
        });
      }),

    // The outcome shares the entry's document with the recorded intent: together they may take
    // at most MAX_STORED_JSON_BYTES, or the owner's completion is refused naming `outcome` (the
    // entry stays pending and claimed), instead of an opaque server error over 16 MiB.
    complete: (key, owner, outcome: JsonValue) =>
      store.run('ledger.complete', () => {
        checkDefined('outcome', outcome);
        checkLookup({ key, owner });
        const stored = toStoredJson(outcome, 'outcome');
        return store.modify<boolean>('ledger.complete', 'ledger', key, (doc) => {
          if (doc === null || doc['status'] !== 'pending' || doc['owner'] !== owner) return { kind: 'return', value: false };
          checkStoredJsonTogether('outcome', stored, 'intent', doc['intent']);
          return {
            kind: 'update',
            set: { status: 'done', outcome: stored, claimExpiresAt: null, updatedAt: store.now() },
            value: () => true,
          };
        });
      }),

    release: (key, owner) =>
      store.run('ledger.release', () => {
        checkLookup({ key, owner });
        return store.modify<void>('ledger.release', 'ledger', key, (doc) => {
          if (doc === null || doc['status'] !== 'pending' || doc['owner'] !== owner) return { kind: 'return', value: undefined };
          return { kind: 'delete', value: undefined };
        });
      }),
  };
}
