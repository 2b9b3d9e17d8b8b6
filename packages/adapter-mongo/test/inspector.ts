import type { StorageInspector } from '@org/maestrano-sdk/testing';
import { Binary, type Db, type Document } from 'mongodb';
import { collectionNames } from '../src/store.js';

/**
 * The second channel: raw driver reads of what the adapter stored, in the conformance
 * suite's neutral form. Values are passed through as the driver decoded them (BSON dates
 * as `Date`, subdocuments as objects, missing fields as null, JSON text parsed); internal fields (`_id`,
 * `_rev`, unique slots, `provisioned`) are left out.
 */
export function mongoInspector(db: Db, prefix = 'mno_'): StorageInspector {
  const names = collectionNames(prefix);
  // A JSON value the adapter stored as JSON text (a Binary of subtype 0x80, see documents.ts) is parsed.
  const v = (doc: Document, key: string): unknown => {
    const value = doc[key];
    if (value instanceof Binary && value.sub_type === 0x80) return JSON.parse(Buffer.from(value.buffer).toString('utf8'));
    return value === undefined ? null : value;
  };
  const pick = <K extends string>(doc: Document, keys: readonly K[]): Record<K, unknown> => {
    const out = {} as Record<K, unknown>;
    for (const key of keys) out[key] = v(doc, key);
    return out;
  };
  const groupKeys = ['tenant', 'groupId', 'companyId', 'status', 'orgUid', 'trialEndsAt', 'settings', 'createdAt', 'updatedAt', 'cancelledAt', 'claimOwner', 'claimExpiresAt'] as const;
  const userKeys = ['tenant', 'uid', 'userId', 'status', 'createdAt', 'updatedAt', 'claimOwner', 'claimExpiresAt'] as const;
  const membershipKeys = ['tenant', 'uid', 'groupId', 'role', 'status', 'createdAt', 'updatedAt'] as const;
  const idMapKeys = ['tenant', 'groupId', 'entity', 'connecId', 'localId', 'lastAppliedAt', 'lastPushedHash', 'lastReceivedHash', 'tombstonedAt', 'lastError', 'syncedAt', 'linkSubIds', 'createdAt', 'updatedAt'] as const;
  const cursorKeys = ['tenant', 'groupId', 'entity', 'kind', 'position', 'data', 'complete', 'updatedAt'] as const;
  const jobKeys = ['type', 'tenant', 'groupId', 'payload', 'dedupeKey', 'orderingKey', 'waitKey', 'status', 'attempts', 'maxAttempts', 'runAt', 'leaseOwner', 'leaseExpiresAt', 'lastError', 'createdAt', 'updatedAt', 'completedAt'] as const;
  const ledgerKeys = ['status', 'owner', 'claimExpiresAt', 'intent', 'outcome', 'createdAt', 'updatedAt'] as const;
  const key = (...parts: string[]) => JSON.stringify(parts);
  const job = (doc: Document) => ({ id: String(doc['_id']), ...pick(doc, jobKeys) });
  const isHex = (id: string) => /^[0-9a-f]{24}$/.test(id);

  return {
    async group(tenant, groupId) {
      const doc = await db.collection(names.groups).findOne({ _id: key(tenant, groupId) } as Document);
      return doc ? pick(doc, groupKeys) : null;
    },
    async user(tenant, uid) {
      const doc = await db.collection(names.users).findOne({ _id: key(tenant, uid) } as Document);
      return doc ? pick(doc, userKeys) : null;
    },
    async membership(tenant, uid, groupId) {
      const doc = await db.collection(names.memberships).findOne({ _id: key(tenant, uid, groupId) } as Document);
      return doc ? pick(doc, membershipKeys) : null;
    },
    async idMaps(scope) {
      const docs = await db.collection(names.idMaps).find({ tenant: scope.tenant, groupId: scope.groupId, entity: scope.entity }).toArray();
      return docs.map((doc) => pick(doc, idMapKeys));
    },
    async cursor(k) {
      const doc = await db.collection(names.cursors).findOne({ _id: key(k.tenant, k.groupId, k.entity, k.kind) } as Document);
      return doc ? pick(doc, cursorKeys) : null;
    },
    async job(id) {
      if (!isHex(id)) return null;
      const { ObjectId } = await import('mongodb');
      const doc = await db.collection(names.jobs).findOne({ _id: new ObjectId(id) });
      return doc ? job(doc) : null;
    },
    async jobs(filter) {
      const docs = await db.collection(names.jobs).find(filter?.type === undefined ? {} : { type: filter.type }).toArray();
      return docs.map(job);
    },
    async ledger(k) {
      const doc = await db.collection(names.ledger).findOne({ _id: k } as Document);
      return doc ? { key: doc['_id'], ...pick(doc, ledgerKeys) } : null;
    },
    async replay(tenant, assertionId) {
      const doc = await db.collection(names.replay).findOne({ _id: key(tenant, assertionId) } as Document);
      return doc ? pick(doc, ['tenant', 'assertionId', 'expiresAt'] as const) : null;
    },
    async lock(k) {
      const doc = await db.collection(names.locks).findOne({ _id: k } as Document);
      return doc ? { key: doc['_id'], ...pick(doc, ['owner', 'expiresAt'] as const) } : null;
    },
  };
}
