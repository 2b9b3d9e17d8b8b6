import type { GroupPatch, GroupRecord, GroupRepository, GroupStatus } from '@org/maestrano-sdk';
import {
  date,
  dateOrNull,
  jsonObject,
  keyId,
  type Raw,
  str,
  strOrNull,
  toDateOrNull,
  toStoredJson,
} from '../documents.js';
import type { Store } from '../store.js';
import { checkLookup, checkNonEmpty, checkOptionalDate, checkPositiveInt, checkStorableText } from '../validation.js';
import { claimProvision, completeProvision, isProvisioned, type ProvisioningSpec, releaseProvision } from './provisioning.js';

export function decodeGroup(doc: Raw): GroupRecord {
  return {
    tenant: str(doc, 'tenant'),
    groupId: str(doc, 'groupId'),
    companyId: str(doc, 'companyId'),
    status: str(doc, 'status') === 'cancelled' ? 'cancelled' : 'active',
    orgUid: strOrNull(doc, 'orgUid'),
    trialEndsAt: dateOrNull(doc, 'trialEndsAt'),
    settings: jsonObject(doc, 'settings'),
    createdAt: date(doc, 'createdAt'),
    updatedAt: date(doc, 'updatedAt'),
    cancelledAt: dateOrNull(doc, 'cancelledAt'),
  };
}

function spec(tenant: string, groupId: string): ProvisioningSpec<GroupRecord> {
  return {
    collection: 'groups',
    identity: { tenant, groupId },
    decode: decodeGroup,
    claimFields: {
      companyId: null,
      status: 'provisioning',
      orgUid: null,
      trialEndsAt: null,
      settings: {},
      cancelledAt: null,
    },
    createdOnComplete: true,
  };
}

function patchFields(patch: GroupPatch): Raw {
  const set: Raw = {};
  if (patch.orgUid !== undefined) set['orgUid'] = patch.orgUid;
  if (patch.trialEndsAt !== undefined) set['trialEndsAt'] = toDateOrNull(patch.trialEndsAt);
  if (patch.settings !== undefined) set['settings'] = toStoredJson(patch.settings, 'settings');
  return set;
}

export function groupRepository(store: Store): GroupRepository {
  const groups = () => store.collection('groups');
  return {
    get: (tenant, groupId) =>
      store.run('groups.get', async () => {
        checkLookup({ tenant, groupId });
        const doc = await groups().findOne({ _id: keyId(tenant, groupId) });
        return isProvisioned(doc) ? decodeGroup(doc) : null;
      }),

    claim: (tenant, groupId, options) =>
      store.run('groups.claim', () => {
        checkNonEmpty('tenant', tenant);
        checkNonEmpty('groupId', groupId);
        return claimProvision(store, 'groups.claim', keyId(tenant, groupId), spec(tenant, groupId), options);
      }),

    complete: (tenant, groupId, owner, data) =>
      store.run('groups.complete', () => {
        checkLookup({ tenant, groupId, owner });
        checkNonEmpty('companyId', data.companyId);
        checkStorableText('orgUid', data.orgUid);
        checkOptionalDate('trialEndsAt', data.trialEndsAt);
        return completeProvision(store, 'groups.complete', keyId(tenant, groupId), spec(tenant, groupId), owner, {
          companyId: data.companyId,
          status: 'active',
          orgUid: data.orgUid ?? null,
          trialEndsAt: toDateOrNull(data.trialEndsAt),
          settings: toStoredJson(data.settings ?? {}, 'settings'),
          cancelledAt: null,
        });
      }),

    release: (tenant, groupId, owner) =>
      store.run('groups.release', () => {
        checkLookup({ tenant, groupId, owner });
        return releaseProvision(store, 'groups.release', 'groups', keyId(tenant, groupId), owner);
      }),

    update: (tenant, groupId, patch) =>
      store.run('groups.update', () => {
        checkLookup({ tenant, groupId });
        checkStorableText('orgUid', patch.orgUid);
        checkOptionalDate('trialEndsAt', patch.trialEndsAt);
        const set = patchFields(patch);
        return store.modify<GroupRecord | null>('groups.update', 'groups', keyId(tenant, groupId), (doc) => {
          if (!isProvisioned(doc)) return { kind: 'return', value: null };
          return { kind: 'update', set: { ...set, updatedAt: store.now() }, value: decodeGroup };
        });
      }),

    cancel: (tenant, groupId) =>
      store.run('groups.cancel', () => {
        checkLookup({ tenant, groupId });
        return store.modify<{ changed: boolean; group: GroupRecord | null }>('groups.cancel', 'groups', keyId(tenant, groupId), (doc) => {
          if (!isProvisioned(doc)) return { kind: 'return', value: { changed: false, group: null } };
          if (doc['status'] === 'cancelled') return { kind: 'return', value: { changed: false, group: decodeGroup(doc) } };
          const now = store.now();
          return {
            kind: 'update',
            set: { status: 'cancelled', cancelledAt: now, updatedAt: now },
            value: (stored) => ({ changed: true, group: decodeGroup(stored) }),
          };
        });
      }),

    list: (tenant, filter?: { status?: GroupStatus; limit?: number; after?: string }) =>
      store.run('groups.list', async () => {
        checkLookup({ tenant });
        if (filter?.limit !== undefined) checkPositiveInt('limit', filter.limit);
        checkStorableText('after', filter?.after);
        const query: Raw = { tenant, provisioned: true };
        if (filter?.status) query['status'] = filter.status;
        if (filter?.after !== undefined) query['groupId'] = { $gt: filter.after };
        const cursor = groups().find(query).sort({ groupId: 1 });
        if (filter?.limit !== undefined) cursor.limit(filter.limit);
        return (await cursor.toArray()).map(decodeGroup);
      }),
  };
}
