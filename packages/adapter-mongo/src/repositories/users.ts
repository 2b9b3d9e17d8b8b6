import { type GroupSeats, type MembershipRecord, type MembershipStatus, UNRECORDED_ROLE, type UserRecord, type UserRepository, type UserStatus } from '@org/maestrano-sdk';
import { date, keyId, type Raw, str } from '../documents.js';
import type { Store } from '../store.js';
import { checkLookup, checkNonEmpty, checkOneOf, checkStorableText, InvalidArgumentError } from '../validation.js';
import { claimProvision, completeProvision, isProvisioned, type ProvisioningSpec, releaseProvision } from './provisioning.js';

export function decodeUser(doc: Raw): UserRecord {
  return {
    tenant: str(doc, 'tenant'),
    uid: str(doc, 'uid'),
    userId: str(doc, 'userId'),
    status: str(doc, 'status') === 'blocked' ? 'blocked' : 'active',
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

export function decodeMembership(doc: Raw): MembershipRecord {
  return {
    tenant: str(doc, 'tenant'),
    uid: str(doc, 'uid'),
    groupId: str(doc, 'groupId'),
    role: str(doc, 'role'),
    status: str(doc, 'status') === 'removed' ? 'removed' : 'active',
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
  };
}

function spec(tenant: string, uid: string): ProvisioningSpec<UserRecord> {
  return {
    collection: 'users',
    identity: { tenant, uid },
    decode: decodeUser,
    claimFields: { userId: null, status: 'provisioning' },
  };
}

export function userRepository(store: Store): UserRepository {
  const users = () => store.collection('users');
  const memberships = () => store.collection('memberships');
  return {
    get: (tenant, uid) =>
      store.run('users.get', async () => {
        checkLookup({ tenant, uid });
        const doc = await users().findOne({ _id: keyId(tenant, uid) });
        return isProvisioned(doc) ? decodeUser(doc) : null;
      }),

    findByUserId: (tenant, userId) =>
      store.run('users.findByUserId', async () => {
        checkLookup({ tenant, userId });
        const docs = await users().find({ tenant, userId, provisioned: true }).sort({ uid: 1 }).toArray();
        return docs.map(decodeUser);
      }),

    claim: (tenant, uid, options) =>
      store.run('users.claim', () => {
        checkNonEmpty('tenant', tenant);
        checkNonEmpty('uid', uid);
        return claimProvision(store, 'users.claim', keyId(tenant, uid), spec(tenant, uid), options);
      }),

    complete: (tenant, uid, owner, data) =>
      store.run('users.complete', () => {
        checkLookup({ tenant, uid, owner });
        checkNonEmpty('userId', data.userId);
        return completeProvision(store, 'users.complete', keyId(tenant, uid), spec(tenant, uid), owner, {
          userId: data.userId,
          status: 'active',
        });
      }),

    release: (tenant, uid, owner) =>
      store.run('users.release', () => {
        checkLookup({ tenant, uid, owner });
        return releaseProvision(store, 'users.release', 'users', keyId(tenant, uid), owner);
      }),

    setStatus: (tenant, uid, status: UserStatus) =>
      store.run('users.setStatus', () => {
        checkOneOf('status', status, ['active', 'blocked']);
        checkLookup({ tenant, uid });
        return store.modify<{ changed: boolean; user: UserRecord | null }>('users.setStatus', 'users', keyId(tenant, uid), (doc) => {
          if (!isProvisioned(doc)) return { kind: 'return', value: { changed: false, user: null } };
          if (doc['status'] === status) return { kind: 'return', value: { changed: false, user: decodeUser(doc) } };
          return {
            kind: 'update',
            set: { status, updatedAt: store.now() },
            value: (stored) => ({ changed: true, user: decodeUser(stored) }),
          };
        });
      }),

    upsertMembership: (tenant, uid, groupId, role) =>
      store.run('users.upsertMembership', () => {
        checkStorableText('tenant', tenant);
        checkStorableText('uid', uid);
        checkStorableText('groupId', groupId);
        checkNonEmpty('role', role);
        return store.modify<{ membership: MembershipRecord; created: boolean; changed: boolean }>(
          'users.upsertMembership',
          'memberships',
          keyId(tenant, uid, groupId),
          (doc) => {
            const now = store.now();
            if (doc === null) {
              return {
                kind: 'insert',
                doc: { tenant, uid, groupId, role, status: 'active', createdAt: now, updatedAt: now },
                value: (stored) => ({ membership: decodeMembership(stored), created: true, changed: true }),
              };
            }
            if (doc['role'] === role && doc['status'] === 'active') {
              return { kind: 'return', value: { membership: decodeMembership(doc), created: false, changed: false } };
            }
            return {
              kind: 'update',
              set: { role, status: 'active', updatedAt: now },
              value: (stored) => ({ membership: decodeMembership(stored), created: false, changed: true }),
            };
          },
        );
      }),

    setMembershipStatus: (tenant, uid, groupId, status: MembershipStatus) =>
      store.run('users.setMembershipStatus', () => {
        checkOneOf('status', status, ['active', 'removed']);
        checkLookup({ tenant, uid, groupId });
        return store.modify<{ changed: boolean; membership: MembershipRecord | null }>(
          'users.setMembershipStatus',
          'memberships',
          keyId(tenant, uid, groupId),
          (doc) => {
            if (doc === null) return { kind: 'return', value: { changed: false, membership: null } };
            if (doc['status'] === status) return { kind: 'return', value: { changed: false, membership: decodeMembership(doc) } };
            return {
              kind: 'update',
              set: { status, updatedAt: store.now() },
              value: (stored) => ({ changed: true, membership: decodeMembership(stored) }),
            };
          },
        );
      }),

    listMemberships: (tenant, filter) =>
      store.run('users.listMemberships', async () => {
        checkLookup({ tenant, uid: filter.uid, groupId: filter.groupId });
        const query: Raw = { tenant };
        if (filter.uid !== undefined) query['uid'] = filter.uid;
        if (filter.groupId !== undefined) query['groupId'] = filter.groupId;
        if (filter.status !== undefined) query['status'] = filter.status;
        const docs = await memberships().find(query).sort({ groupId: 1, uid: 1 }).toArray();
        return docs.map(decodeMembership);
      }),

    seats: (tenant, groupId, options) =>
      store.run('users.seats', async (): Promise<GroupSeats> => {
        const exceptUid = options?.exceptUid;
        if (exceptUid !== undefined && typeof exceptUid !== 'string') throw new InvalidArgumentError('exceptUid must be a string when given');
        checkLookup({ tenant, groupId, exceptUid });
        const query: Raw = { tenant, groupId };
        if (exceptUid !== undefined) query['uid'] = { $ne: exceptUid };
        // Counted and sorted by the server, over the `tenant_group` and `tenant_group_updated`
        // indexes, never the group's documents sent back: a group may hold tens of thousands of
        // members. Two reads, not one `$group`: FerretDB 1.24 has neither `$cond` nor `$max` there.
        const [active, latest] = await Promise.all([
          memberships().countDocuments({ ...query, status: 'active', role: { $ne: UNRECORDED_ROLE } }),
          memberships().findOne(query, { sort: { updatedAt: -1 }, projection: { _id: 0, updatedAt: 1 } }),
        ]);
        return { active, latestChange: latest ? date(latest, 'updatedAt') : null };
      }),
  };
}
