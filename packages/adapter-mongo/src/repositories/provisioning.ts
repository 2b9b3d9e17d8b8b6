import type { ClaimOptions, ProvisionClaim, StorageOperation } from '@org/maestrano-sdk';
import { dateOrNull, type Raw, type Stored, strOrNull } from '../documents.js';
import { conflict } from '../errors.js';
import { checkClaimOptions, expiryAfter } from '../validation.js';
import type { CollectionNames, Store } from '../store.js';

/**
 * The provisioning claim shared by groups and users. One document per key holds first the
 * claim (`claimOwner`, `claimExpiresAt`, `provisioned: false`) and then the record.
 * The first claim is an insert (unique `_id`); a takeover of an expired claim is a
 * compare-and-set; completion is a compare-and-set conditional on the owner.
 */
export interface ProvisioningSpec<T> {
  collection: keyof CollectionNames;
  /** Identity fields stored on the claim document (tenant, groupId/uid). */
  identity: Raw;
  /** Decodes a provisioned document. */
  decode(doc: Raw): T;
  /** Stored fields of the claim-only document besides identity and claim fields. */
  claimFields: Raw;
  /** `createdAt` becomes the completion time (a group is created when provisioned, not when first claimed). */
  createdOnComplete?: boolean;
}

export function isProvisioned(doc: Raw | null): doc is Stored {
  return doc !== null && doc['provisioned'] === true;
}

export async function claimProvision<T>(
  store: Store,
  operation: StorageOperation,
  id: string,
  spec: ProvisioningSpec<T>,
  options: ClaimOptions,
): Promise<ProvisionClaim<T>> {
  checkClaimOptions(options);
  const now = store.now();
  const expiresAt = expiryAfter(now, options.ttlMs);
  return store.modify<ProvisionClaim<T>>(operation, spec.collection, id, (doc) => {
    if (doc === null) {
      return {
        kind: 'insert',
        doc: {
          ...spec.identity,
          ...spec.claimFields,
          provisioned: false,
          claimOwner: options.owner,
          claimExpiresAt: expiresAt,
          createdAt: now,
          updatedAt: now,
        },
        value: () => ({ state: 'claimed', takeover: false }),
      };
    }
    if (isProvisioned(doc)) return { kind: 'return', value: { state: 'exists', record: spec.decode(doc) } };
    const claimExpiresAt = dateOrNull(doc, 'claimExpiresAt');
    const live = claimExpiresAt !== null && claimExpiresAt.getTime() > now.getTime();
    if (live && claimExpiresAt && strOrNull(doc, 'claimOwner') !== options.owner) {
      return { kind: 'return', value: { state: 'pending', claimExpiresAt } };
    }
    const takeover = strOrNull(doc, 'claimOwner') !== options.owner;
    return {
      kind: 'update',
      set: { claimOwner: options.owner, claimExpiresAt: expiresAt, updatedAt: now },
      value: () => ({ state: 'claimed', takeover }),
    };
  });
}

export async function completeProvision<T>(
  store: Store,
  operation: StorageOperation,
  id: string,
  spec: ProvisioningSpec<T>,
  owner: string,
  fields: Raw,
): Promise<T> {
  const now = store.now();
  return store.modify<T>(operation, spec.collection, id, (doc) => {
    if (doc === null || isProvisioned(doc) || strOrNull(doc, 'claimOwner') !== owner) {
      throw conflict(operation, 'the caller does not own the provisioning claim (it expired and was taken over, or was released)');
    }
    return {
      kind: 'update',
      set: { ...fields, provisioned: true, claimOwner: null, claimExpiresAt: null, ...(spec.createdOnComplete ? { createdAt: now } : {}), updatedAt: now },
      value: (stored) => spec.decode(stored),
    };
  });
}

export async function releaseProvision(
  store: Store,
  operation: StorageOperation,
  collection: keyof CollectionNames,
  id: string,
  owner: string,
): Promise<void> {
  await store.modify<void>(operation, collection, id, (doc) => {
    if (doc === null || isProvisioned(doc) || strOrNull(doc, 'claimOwner') !== owner) return { kind: 'return', value: undefined };
    return { kind: 'delete', value: undefined };
  });
}
