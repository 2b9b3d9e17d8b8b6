import { randomUUID } from 'node:crypto';
import { StorageConflictError, StorageError, type StorageOperation } from '../errors/index.js';
import type {
  ClaimOptions,
  CursorKey,
  CursorRecord,
  CursorRepository,
  EnqueueResult,
  FailOutcome,
  GroupCompletion,
  GroupPatch,
  GroupRecord,
  GroupRepository,
  GroupSeats,
  GroupStatus,
  IdMapInsert,
  IdMapKey,
  IdMapPatch,
  IdMapRecord,
  IdMapRepository,
  IdMapScope,
  JobError,
  JobInput,
  JobRecord,
  JobRepository,
  JobStatus,
  JsonObject,
  JsonValue,
  LedgerClaim,
  LedgerEntry,
  LedgerRepository,
  LockRepository,
  MarkAppliedOptions,
  MembershipRecord,
  MembershipStatus,
  ProvisionClaim,
  RecordError,
  ReplayRepository,
  StorageAdapter,
  StorageOptions,
  UserRecord,
  UserRepository,
  UserStatus,
} from './adapter.js';
import {
  checkClaimOptions as checkClaimShape,
  checkDate,
  checkStorableJson,
  checkNonEmpty as checkNonEmptyString,
  checkPositiveInt,
  copy,
  DEFAULT_MAX_ATTEMPTS,
  expired,
  isStorableText,
  later,
  UNRECORDED_ROLE,
} from './validation.js';

const ADAPTER_ID = 'memory';

/**
 * A text argument the adapter stores (an id, a key, an owner, a worker, a type, a hash, …):
 * one holding a NUL character or an unpaired UTF-16 surrogate is refused naming it, as JSON
 * holding one is, since PostgreSQL cannot store it as given. `null` and `undefined` pass.
 */
function checkStorableText(name: string, value: unknown): void {
  if (typeof value === 'string' && !isStorableText(value)) {
    throw new RangeError(`${name} must not hold a NUL character or an unpaired UTF-16 surrogate`);
  }
}

/** A non-empty, storable text argument. */
function checkNonEmpty(name: string, value: unknown): asserts value is string {
  checkNonEmptyString(name, value);
  checkStorableText(name, value);
}

function checkClaimOptions(options: Pick<ClaimOptions, 'owner' | 'ttlMs'>): void {
  checkClaimShape(options);
  checkStorableText('owner', options.owner);
}

/**
 * The text arguments an operation looks rows up by, by name: each must be
 * storable text, as when it is stored, so a lookup never finds a row stored under a different
 * text (PostgreSQL stores an unpaired surrogate as U+FFFD).
 */
function checkLookup(args: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(args)) checkStorableText(name, value);
}

// ---------------------------------------------------------------------------------------
// The stored state. Exported for the memory inspector (`@org/maestrano-sdk/testing`);
// not part of the public API.

/** A group row: a provisioned group (`companyId` set) or an unfinished claim. */
export interface MemoryGroupRow {
  tenant: string;
  groupId: string;
  companyId: string | null;
  status: GroupStatus | 'provisioning';
  orgUid: string | null;
  trialEndsAt: Date | null;
  settings: JsonObject;
  createdAt: Date;
  updatedAt: Date;
  cancelledAt: Date | null;
  claimOwner: string | null;
  claimExpiresAt: Date | null;
}

export interface MemoryUserRow {
  tenant: string;
  uid: string;
  userId: string | null;
  status: UserStatus | 'provisioning';
  createdAt: Date;
  updatedAt: Date;
  claimOwner: string | null;
  claimExpiresAt: Date | null;
}

export interface MemoryIdMapRow extends IdMapRecord {
  seq: number;
}

export interface MemoryJobRow extends JobRecord {
  seq: number;
}

export interface MemoryReplayRow {
  tenant: string;
  assertionId: string;
  expiresAt: Date;
}

export interface MemoryLockRow {
  key: string;
  owner: string;
  expiresAt: Date;
}

export interface MemoryState {
  groups: Map<string, MemoryGroupRow>;
  users: Map<string, MemoryUserRow>;
  memberships: Map<string, MembershipRecord>;
  /** The same membership records by (tenant, groupId), then uid: a group's seats read its own members only. */
  groupMembers: Map<string, Map<string, MembershipRecord>>;
  idMaps: MemoryIdMapRow[];
  cursors: Map<string, CursorRecord>;
  jobs: Map<string, MemoryJobRow>;
  ledger: Map<string, LedgerEntry>;
  replay: Map<string, MemoryReplayRow>;
  locks: Map<string, MemoryLockRow>;
  /** Removes every stored row (tests). */
  clear(): void;
}

const states = new WeakMap<StorageAdapter, MemoryState>();

/** The raw state behind a `memoryAdapter()` (for inspectors and tests); throws for other adapters. */
export function memoryState(adapter: StorageAdapter): MemoryState {
  const state = states.get(adapter);
  if (!state) throw new TypeError(`memoryState: adapter "${adapter.id}" was not created by memoryAdapter()`);
  return state;
}

function createState(): MemoryState {
  const state: MemoryState = {
    groups: new Map(),
    users: new Map(),
    memberships: new Map(),
    groupMembers: new Map(),
    idMaps: [],
    cursors: new Map(),
    jobs: new Map(),
    ledger: new Map(),
    replay: new Map(),
    locks: new Map(),
    clear() {
      state.groups.clear();
      state.users.clear();
      state.memberships.clear();
      state.groupMembers.clear();
      state.idMaps.length = 0;
      state.cursors.clear();
      state.jobs.clear();
      state.ledger.clear();
      state.replay.clear();
      state.locks.clear();
    },
  };
  return state;
}

const key = (...parts: string[]): string => JSON.stringify(parts);

// ---------------------------------------------------------------------------------------

export interface MemoryAdapterOptions extends StorageOptions {}

/**
 * The reference implementation of the storage contract, in process memory. Every method
 * runs synchronously between its first and last line (no `await` inside), so each one is
 * atomic with respect to every other call. Values are deep-copied in and out: callers
 * never share objects with the store. Data is lost when the process exits: for tests,
 * demos and single-process development only.
 */
export function memoryAdapter(options: MemoryAdapterOptions = {}): StorageAdapter {
  const clock = options.clock ?? (() => new Date());
  const state = createState();
  let closed = false;
  let seq = 0;

  const now = (): Date => {
    const value = clock();
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
      throw new StorageError('memory storage: the clock returned an invalid Date', {
        adapterId: ADAPTER_ID,
        operation: 'storage.clock',
      });
    }
    return new Date(value.getTime());
  };

  /** Wraps an operation: closed check, argument errors typed, result deep-copied out. */
  function op<A extends unknown[], R>(operation: StorageOperation, fn: (...args: A) => R): (...args: A) => Promise<R> {
    return (...args: A) => {
      try {
        if (closed) {
          throw new StorageError(`${operation} failed: the memory adapter is closed`, {
            adapterId: ADAPTER_ID,
            operation,
          });
        }
        return Promise.resolve(copy(fn(...args)));
      } catch (error) {
        if (error instanceof StorageError) return Promise.reject(error);
        if (error instanceof RangeError || error instanceof TypeError) {
          return Promise.reject(
            new StorageError(`${operation}: ${error.message}`, { adapterId: ADAPTER_ID, operation, cause: error }),
          );
        }
        return Promise.reject(
          new StorageError(`${operation} failed`, { adapterId: ADAPTER_ID, operation, cause: error }),
        );
      }
    };
  }

  const conflict = (operation: StorageOperation, message: string): StorageConflictError =>
    new StorageConflictError(`${operation}: ${message}`, { adapterId: ADAPTER_ID, operation });

  // --- provisioning claims (groups and users) ------------------------------------------

  type ClaimRow = { claimOwner: string | null; claimExpiresAt: Date | null; createdAt: Date; updatedAt: Date };

  function claimRow<Row extends ClaimRow, Rec>(
    rows: Map<string, Row>,
    id: string,
    options: ClaimOptions,
    provisioned: (row: Row) => Rec | null,
    create: (at: Date) => Row,
  ): ProvisionClaim<Rec> {
    checkClaimOptions(options);
    const at = now();
    const row = rows.get(id);
    if (!row) {
      const fresh = create(at);
      fresh.claimOwner = options.owner;
      fresh.claimExpiresAt = later(at, options.ttlMs);
      rows.set(id, fresh);
      return { state: 'claimed', takeover: false };
    }
    const record = provisioned(row);
    if (record) return { state: 'exists', record };
    const live = row.claimExpiresAt !== null && !expired(row.claimExpiresAt, at);
    if (live && row.claimOwner !== options.owner && row.claimExpiresAt) {
      return { state: 'pending', claimExpiresAt: row.claimExpiresAt };
    }
    const takeover = row.claimOwner !== options.owner;
    row.claimOwner = options.owner;
    row.claimExpiresAt = later(at, options.ttlMs);
    row.updatedAt = at;
    return { state: 'claimed', takeover };
  }

  // --- groups ---------------------------------------------------------------------------

  const groupRecord = (row: MemoryGroupRow): GroupRecord | null =>
    row.companyId !== null && (row.status === 'active' || row.status === 'cancelled')
      ? {
          tenant: row.tenant,
          groupId: row.groupId,
          companyId: row.companyId,
          status: row.status,
          orgUid: row.orgUid,
          trialEndsAt: row.trialEndsAt,
          settings: row.settings,
          createdAt: row.createdAt,
          updatedAt: row.updatedAt,
          cancelledAt: row.cancelledAt,
        }
      : null;

  const provisionedGroup = (tenant: string, groupId: string): MemoryGroupRow | null => {
    const row = state.groups.get(key(tenant, groupId));
    return row && groupRecord(row) ? row : null;
  };

  const groups: GroupRepository = {
    get: op('groups.get', (tenant: string, groupId: string) => {
      checkLookup({ tenant, groupId });
      const row = state.groups.get(key(tenant, groupId));
      return row ? groupRecord(row) : null;
    }),
    claim: op('groups.claim', (tenant: string, groupId: string, options: ClaimOptions) => {
      checkNonEmpty('tenant', tenant);
      checkNonEmpty('groupId', groupId);
      return claimRow<MemoryGroupRow, GroupRecord>(state.groups, key(tenant, groupId), options, groupRecord, (at) => ({
        tenant,
        groupId,
        companyId: null,
        status: 'provisioning',
        orgUid: null,
        trialEndsAt: null,
        settings: {},
        createdAt: at,
        updatedAt: at,
        cancelledAt: null,
        claimOwner: null,
        claimExpiresAt: null,
      }));
    }),
    complete: op('groups.complete', (tenant: string, groupId: string, owner: string, data: GroupCompletion) => {
      checkLookup({ tenant, groupId, owner });
      checkNonEmpty('companyId', data.companyId);
      checkStorableText('orgUid', data.orgUid);
      if (data.trialEndsAt) checkDate('trialEndsAt', data.trialEndsAt);
      if (data.settings !== undefined) checkStorableJson('settings', data.settings);
      const row = state.groups.get(key(tenant, groupId));
      if (!row || groupRecord(row) || row.claimOwner !== owner) {
        throw conflict('groups.complete', `the caller does not own the provisioning claim of group ${groupId}`);
      }
      const at = now();
      row.companyId = data.companyId;
      row.status = 'active';
      row.orgUid = data.orgUid ?? null;
      row.trialEndsAt = copy(data.trialEndsAt ?? null);
      row.settings = copy(data.settings ?? {});
      row.createdAt = at; // provisioned now (not when a claim, maybe abandoned, was first taken)
      row.updatedAt = at;
      row.claimOwner = null;
      row.claimExpiresAt = null;
      return provisioned(groupRecord(row));
    }),
    release: op('groups.release', (tenant: string, groupId: string, owner: string) => {
      checkLookup({ tenant, groupId, owner });
      const id = key(tenant, groupId);
      const row = state.groups.get(id);
      if (row && !groupRecord(row) && row.claimOwner === owner) state.groups.delete(id);
    }),
    update: op('groups.update', (tenant: string, groupId: string, patch: GroupPatch) => {
      checkLookup({ tenant, groupId });
      checkStorableText('orgUid', patch.orgUid);
      if (patch.trialEndsAt) checkDate('trialEndsAt', patch.trialEndsAt);
      if (patch.settings !== undefined) checkStorableJson('settings', patch.settings);
      const row = provisionedGroup(tenant, groupId);
      if (!row) return null;
      if (patch.orgUid !== undefined) row.orgUid = patch.orgUid;
      if (patch.trialEndsAt !== undefined) row.trialEndsAt = copy(patch.trialEndsAt);
      if (patch.settings !== undefined) row.settings = copy(patch.settings);
      row.updatedAt = now();
      return groupRecord(row);
    }),
    cancel: op('groups.cancel', (tenant: string, groupId: string) => {
      checkLookup({ tenant, groupId });
      const row = provisionedGroup(tenant, groupId);
      if (!row) return { changed: false, group: null };
      if (row.status === 'cancelled') return { changed: false, group: groupRecord(row) };
      const at = now();
      row.status = 'cancelled';
      row.cancelledAt = at;
      row.updatedAt = at;
      return { changed: true, group: groupRecord(row) };
    }),
    list: op('groups.list', (tenant: string, filter?: { status?: GroupStatus; limit?: number; after?: string }) => {
      checkLookup({ tenant });
      if (filter?.limit !== undefined) checkPositiveInt('limit', filter.limit);
      checkStorableText('after', filter?.after);
      const after = filter?.after;
      const found = [...state.groups.values()]
        .filter((row) => row.tenant === tenant && (after === undefined || compare(row.groupId, after) > 0))
        .map(groupRecord)
        .filter((record): record is GroupRecord => record !== null)
        .filter((record) => !filter?.status || record.status === filter.status)
        .sort((a, b) => compare(a.groupId, b.groupId));
      return filter?.limit === undefined ? found : found.slice(0, filter.limit);
    }),
  };

  // --- users ----------------------------------------------------------------------------

  const userRecord = (row: MemoryUserRow): UserRecord | null =>
    row.userId !== null && (row.status === 'active' || row.status === 'blocked')
      ? {
          tenant: row.tenant,
          uid: row.uid,
          userId: row.userId,
          status: row.status,
          createdAt: row.createdAt,
          updatedAt: row.updatedAt,
        }
      : null;

  const membershipKey = (tenant: string, uid: string, groupId: string) => key(tenant, uid, groupId);

  const users: UserRepository = {
    get: op('users.get', (tenant: string, uid: string) => {
      checkLookup({ tenant, uid });
      const row = state.users.get(key(tenant, uid));
      return row ? userRecord(row) : null;
    }),
    findByUserId: op('users.findByUserId', (tenant: string, userId: string) => {
      checkLookup({ tenant, userId });
      return [...state.users.values()]
        .filter((row) => row.tenant === tenant && row.userId === userId)
        .map(userRecord)
        .filter((record): record is UserRecord => record !== null)
        .sort((a, b) => compare(a.uid, b.uid));
    }),
    claim: op('users.claim', (tenant: string, uid: string, options: ClaimOptions) => {
      checkNonEmpty('tenant', tenant);
      checkNonEmpty('uid', uid);
      return claimRow<MemoryUserRow, UserRecord>(state.users, key(tenant, uid), options, userRecord, (at) => ({
        tenant,
        uid,
        userId: null,
        status: 'provisioning',
        createdAt: at,
        updatedAt: at,
        claimOwner: null,
        claimExpiresAt: null,
      }));
    }),
    complete: op('users.complete', (tenant: string, uid: string, owner: string, data: { userId: string }) => {
      checkLookup({ tenant, uid, owner });
      checkNonEmpty('userId', data.userId);
      const row = state.users.get(key(tenant, uid));
      if (!row || userRecord(row) || row.claimOwner !== owner) {
        throw conflict('users.complete', `the caller does not own the provisioning claim of user ${uid}`);
      }
      row.userId = data.userId;
      row.status = 'active';
      row.updatedAt = now();
      row.claimOwner = null;
      row.claimExpiresAt = null;
      return provisioned(userRecord(row));
    }),
    release: op('users.release', (tenant: string, uid: string, owner: string) => {
      checkLookup({ tenant, uid, owner });
      const id = key(tenant, uid);
      const row = state.users.get(id);
      if (row && !userRecord(row) && row.claimOwner === owner) state.users.delete(id);
    }),
    setStatus: op('users.setStatus', (tenant: string, uid: string, status: UserStatus) => {
      if (status !== 'active' && status !== 'blocked') throw new RangeError(`unknown user status "${String(status)}"`);
      checkLookup({ tenant, uid });
      const row = state.users.get(key(tenant, uid));
      if (!row || !userRecord(row)) return { changed: false, user: null };
      if (row.status === status) return { changed: false, user: userRecord(row) };
      row.status = status;
      row.updatedAt = now();
      return { changed: true, user: userRecord(row) };
    }),
    upsertMembership: op('users.upsertMembership', (tenant: string, uid: string, groupId: string, role: string) => {
      checkStorableText('tenant', tenant);
      checkStorableText('uid', uid);
      checkStorableText('groupId', groupId);
      checkNonEmpty('role', role);
      const id = membershipKey(tenant, uid, groupId);
      const at = now();
      const existing = state.memberships.get(id);
      if (!existing) {
        const membership: MembershipRecord = {
          tenant,
          uid,
          groupId,
          role,
          status: 'active',
          createdAt: at,
          updatedAt: at,
        };
        state.memberships.set(id, membership);
        const group = key(tenant, groupId);
        const members = state.groupMembers.get(group) ?? new Map<string, MembershipRecord>();
        state.groupMembers.set(group, members.set(uid, membership));
        return { membership, created: true, changed: true };
      }
      const changed = existing.role !== role || existing.status !== 'active';
      if (changed) {
        existing.role = role;
        existing.status = 'active';
        existing.updatedAt = at;
      }
      return { membership: existing, created: false, changed };
    }),
    setMembershipStatus: op(
      'users.setMembershipStatus',
      (tenant: string, uid: string, groupId: string, status: MembershipStatus) => {
        if (status !== 'active' && status !== 'removed') {
          throw new RangeError(`unknown membership status "${String(status)}"`);
        }
        checkLookup({ tenant, uid, groupId });
        const existing = state.memberships.get(membershipKey(tenant, uid, groupId));
        if (!existing) return { changed: false, membership: null };
        if (existing.status === status) return { changed: false, membership: existing };
        existing.status = status;
        existing.updatedAt = now();
        return { changed: true, membership: existing };
      },
    ),
    listMemberships: op(
      'users.listMemberships',
      (tenant: string, filter: { uid?: string; groupId?: string; status?: MembershipStatus }) => {
        checkLookup({ tenant, uid: filter.uid, groupId: filter.groupId });
        // One membership (a login, a session re-check): read by its key, not by scanning every
        // membership of every tenant. (A removal lists the user's memberships by `uid`: a scan.)
        if (filter.uid !== undefined && filter.groupId !== undefined) {
          const found = state.memberships.get(membershipKey(tenant, filter.uid, filter.groupId));
          return found && (filter.status === undefined || found.status === filter.status) ? [found] : [];
        }
        return [...state.memberships.values()]
          .filter(
            (m) =>
              m.tenant === tenant &&
              (filter.uid === undefined || m.uid === filter.uid) &&
              (filter.groupId === undefined || m.groupId === filter.groupId) &&
              (filter.status === undefined || m.status === filter.status),
          )
          .sort((a, b) => compare(a.groupId, b.groupId) || compare(a.uid, b.uid));
      },
    ),
    seats: op('users.seats', (tenant: string, groupId: string, options?: { exceptUid?: string }): GroupSeats => {
      const exceptUid = options?.exceptUid;
      if (exceptUid !== undefined && typeof exceptUid !== 'string') throw new TypeError('exceptUid must be a string when given');
      checkLookup({ tenant, groupId, exceptUid });
      let active = 0;
      let latest: Date | null = null;
      for (const m of state.groupMembers.get(key(tenant, groupId))?.values() ?? []) {
        if (m.uid === exceptUid) continue;
        if (m.status === 'active' && m.role !== UNRECORDED_ROLE) active++;
        if (latest === null || m.updatedAt.getTime() > latest.getTime()) latest = m.updatedAt;
      }
      return { active, latestChange: latest };
    }),
  };

  // --- idMaps ---------------------------------------------------------------------------

  const inScope = (row: IdMapScope, scope: IdMapScope) =>
    row.tenant === scope.tenant && row.groupId === scope.groupId && row.entity === scope.entity;

  const checkScope = (scope: IdMapScope) =>
    checkLookup({ tenant: scope.tenant, groupId: scope.groupId, entity: scope.entity });

  const findMap = (scope: IdMapScope, mapKey: IdMapKey): MemoryIdMapRow | undefined => {
    checkScope(scope);
    if ('connecId' in mapKey) {
      checkNonEmpty('connecId', mapKey.connecId);
      return state.idMaps.find((row) => inScope(row, scope) && row.connecId === mapKey.connecId);
    }
    checkNonEmpty('localId', mapKey.localId);
    return state.idMaps.find((row) => inScope(row, scope) && row.localId === mapKey.localId);
  };

  const assertUnique = (
    operation: StorageOperation,
    scope: IdMapScope,
    ids: { connecId: string | null; localId: string | null },
    self?: MemoryIdMapRow,
  ) => {
    for (const row of state.idMaps) {
      if (row === self || !inScope(row, scope)) continue;
      if (ids.connecId !== null && row.connecId === ids.connecId) {
        throw conflict(operation, `a map with connecId ${ids.connecId} already exists for ${scope.entity}`);
      }
      if (ids.localId !== null && row.localId === ids.localId) {
        throw conflict(operation, `a map with localId ${ids.localId} already exists for ${scope.entity}`);
      }
    }
  };

  const toIdMap = (row: MemoryIdMapRow): IdMapRecord => {
    const { seq: _seq, ...record } = row;
    return record;
  };

  const checkRecordError = (error: RecordError | null | undefined) => {
    if (error) {
      checkNonEmptyString('lastError.code', error.code); // free diagnostic text: recorded, never refused
      checkDate('lastError.at', error.at);
    }
  };

  const checkMapInsert = (map: IdMapInsert) => {
    checkNonEmpty('tenant', map.tenant);
    checkNonEmpty('groupId', map.groupId);
    checkNonEmpty('entity', map.entity);
    if (map.connecId === null && map.localId === null) {
      throw new RangeError('an id map needs a connecId or a localId (both are null)');
    }
    if (map.connecId !== null) checkNonEmpty('connecId', map.connecId);
    if (map.localId !== null) checkNonEmpty('localId', map.localId);
    checkStorableText('lastPushedHash', map.lastPushedHash);
    checkStorableText('lastReceivedHash', map.lastReceivedHash);
    checkStorableText('linkSubIds', map.linkSubIds);
    if (map.lastAppliedAt) checkDate('lastAppliedAt', map.lastAppliedAt);
    if (map.syncedAt) checkDate('syncedAt', map.syncedAt);
  };

  const insertMap = (map: IdMapInsert): IdMapRecord => {
    checkMapInsert(map);
    const scope = { tenant: map.tenant, groupId: map.groupId, entity: map.entity };
    assertUnique('idMaps.insert', scope, map);
    const at = now();
    const row: MemoryIdMapRow = {
      ...scope,
      connecId: map.connecId,
      localId: map.localId,
      lastAppliedAt: copy(map.lastAppliedAt ?? null),
      lastPushedHash: map.lastPushedHash ?? null,
      lastReceivedHash: map.lastReceivedHash ?? null,
      tombstonedAt: null,
      lastError: null,
      syncedAt: copy(map.syncedAt ?? null),
      linkSubIds: map.linkSubIds ?? null,
      createdAt: at,
      updatedAt: at,
      seq: ++seq,
    };
    state.idMaps.push(row);
    return toIdMap(row);
  };

  const idMaps: IdMapRepository = {
    find: op('idMaps.find', (scope: IdMapScope, mapKey: IdMapKey) => {
      const row = findMap(scope, mapKey);
      return row ? toIdMap(row) : null;
    }),
    findManyByConnecIds: op('idMaps.findManyByConnecIds', (scope: IdMapScope, connecIds: string[]) => {
      checkScope(scope);
      if (Array.isArray(connecIds)) for (const connecId of connecIds) checkStorableText('connecId', connecId);
      const wanted = new Set(connecIds);
      return state.idMaps
        .filter((row) => inScope(row, scope) && row.connecId !== null && wanted.has(row.connecId))
        .map(toIdMap);
    }),
    insert: op('idMaps.insert', (map: IdMapInsert) => insertMap(map)),
    insertMany: op('idMaps.insertMany', (maps: IdMapInsert[]) => {
      if (!Array.isArray(maps)) throw new TypeError('maps must be an array');
      for (const map of maps) checkMapInsert(map);
      return maps.map((map) => {
        try {
          return insertMap(map);
        } catch (error) {
          if (error instanceof StorageConflictError) return null;
          throw error;
        }
      });
    }),
    update: op('idMaps.update', (scope: IdMapScope, mapKey: IdMapKey, patch: IdMapPatch) => {
      for (const name of ['connecId', 'localId', 'lastPushedHash', 'lastReceivedHash', 'linkSubIds'] as const) checkStorableText(name, patch[name]);
      if (patch.lastAppliedAt) checkDate('lastAppliedAt', patch.lastAppliedAt);
      if (patch.tombstonedAt) checkDate('tombstonedAt', patch.tombstonedAt);
      if (patch.syncedAt) checkDate('syncedAt', patch.syncedAt);
      checkRecordError(patch.lastError);
      const row = findMap(scope, mapKey);
      if (!row) return null;
      const connecId = patch.connecId !== undefined ? patch.connecId : row.connecId;
      const localId = patch.localId !== undefined ? patch.localId : row.localId;
      if (connecId === null && localId === null) {
        throw new RangeError('an id map needs a connecId or a localId (the patch would clear both)');
      }
      assertUnique('idMaps.update', scope, { connecId, localId }, row);
      row.connecId = connecId;
      row.localId = localId;
      if (patch.lastAppliedAt !== undefined) row.lastAppliedAt = copy(patch.lastAppliedAt);
      if (patch.lastPushedHash !== undefined) row.lastPushedHash = patch.lastPushedHash;
      if (patch.lastReceivedHash !== undefined) row.lastReceivedHash = patch.lastReceivedHash;
      if (patch.tombstonedAt !== undefined) row.tombstonedAt = copy(patch.tombstonedAt);
      if (patch.lastError !== undefined) row.lastError = copy(patch.lastError);
      if (patch.syncedAt !== undefined) row.syncedAt = copy(patch.syncedAt);
      if (patch.linkSubIds !== undefined) row.linkSubIds = patch.linkSubIds;
      row.updatedAt = now();
      return toIdMap(row);
    }),
    markApplied: op('idMaps.markApplied', (scope: IdMapScope, mapKey: IdMapKey, appliedAt: Date, hash: string, options?: MarkAppliedOptions) => {
      checkDate('appliedAt', appliedAt);
      checkStorableText('hash', hash);
      checkStorableText('options.linkSubIds', options?.linkSubIds);
      const row = findMap(scope, mapKey);
      if (!row) return false;
      const last = row.lastAppliedAt?.getTime() ?? null;
      if (last !== null && (last > appliedAt.getTime() || (last === appliedAt.getTime() && row.lastReceivedHash === hash))) return false;
      row.lastAppliedAt = new Date(appliedAt.getTime());
      row.lastReceivedHash = hash;
      row.updatedAt = now();
      if (options?.inSync !== false) row.syncedAt = new Date(row.updatedAt.getTime());
      if (options?.linkSubIds !== undefined) row.linkSubIds = options.linkSubIds;
      return true;
    }),
    clearError: op('idMaps.clearError', (scope: IdMapScope, mapKey: IdMapKey, error: RecordError) => {
      if (typeof error !== 'object' || error === null) throw new TypeError('error must be an object');
      checkNonEmptyString('error.code', error.code);
      checkDate('error.at', error.at);
      const row = findMap(scope, mapKey);
      if (!row?.lastError || row.lastError.code !== error.code || row.lastError.at.getTime() !== error.at.getTime()) return false;
      row.lastError = null;
      row.updatedAt = now();
      return true;
    }),
    list: op('idMaps.list', (scope: IdMapScope, options: { limit: number; after?: string }) => {
      checkPositiveInt('limit', options.limit);
      checkScope(scope);
      checkStorableText('after', options.after);
      const rows = state.idMaps.filter((row) => inScope(row, scope)).sort(byCreation);
      let start = 0;
      if (options.after !== undefined) {
        const index = rows.findIndex((row) => (row.connecId ?? row.localId) === options.after);
        if (index === -1) return [];
        start = index + 1;
      }
      return rows.slice(start, start + options.limit).map(toIdMap);
    }),
    purgeGroup: op('idMaps.purgeGroup', (tenant: string, groupId: string) => {
      checkLookup({ tenant, groupId });
      const before = state.idMaps.length;
      const kept = state.idMaps.filter((row) => !(row.tenant === tenant && row.groupId === groupId));
      state.idMaps.length = 0;
      state.idMaps.push(...kept);
      return before - kept.length;
    }),
  };

  // --- cursors --------------------------------------------------------------------------

  const cursorId = (k: CursorKey) => key(k.tenant, k.groupId, k.entity, k.kind);

  const checkCursorKey = (k: CursorKey) =>
    checkLookup({ tenant: k.tenant, groupId: k.groupId, entity: k.entity, kind: k.kind });

  const cursors: CursorRepository = {
    get: op('cursors.get', (k: CursorKey) => {
      checkCursorKey(k);
      return state.cursors.get(cursorId(k)) ?? null;
    }),
    advance: op('cursors.advance', (k: CursorKey, position: number, data: JsonObject, complete = false) => {
      checkStorableText('tenant', k.tenant);
      checkStorableText('groupId', k.groupId);
      checkStorableText('entity', k.entity);
      checkNonEmpty('kind', k.kind);
      checkStorableJson('data', data);
      if (typeof position !== 'number' || !Number.isFinite(position)) {
        throw new RangeError(`position must be a finite number (got ${String(position)})`);
      }
      const id = cursorId(k);
      const stored = state.cursors.get(id);
      const moves =
        !stored || position > stored.position || (position === stored.position && complete && !stored.complete);
      if (!moves) return false;
      state.cursors.set(id, {
        tenant: k.tenant,
        groupId: k.groupId,
        entity: k.entity,
        kind: k.kind,
        position,
        data: copy(data),
        complete,
        updatedAt: now(),
      });
      return true;
    }),
    reset: op('cursors.reset', (k: CursorKey) => {
      checkCursorKey(k);
      state.cursors.delete(cursorId(k));
    }),
    list: op('cursors.list', (tenant: string, groupId: string) => {
      checkLookup({ tenant, groupId });
      return [...state.cursors.values()]
        .filter((c) => c.tenant === tenant && c.groupId === groupId)
        .sort((a, b) => compare(a.entity, b.entity) || compare(a.kind, b.kind));
    }),
  };

  // --- jobs -----------------------------------------------------------------------------

  /**
   * The job holding each dedupe key (every job is stored by `enqueueOne`), so an enqueue does not
   * scan every job: a notification of thousands of records was quadratic. An entry whose job was
   * purged or cleared is checked on use.
   */
  const jobsByDedupeKey = new Map<string, string>();

  const toJob = (row: MemoryJobRow): JobRecord => {
    const { seq: _seq, ...record } = row;
    return record;
  };

  /** Every check of one job input; throws before anything is stored. */
  const validateJob = (input: JobInput): void => {
    checkNonEmpty('type', input.type);
    checkPositiveInt('maxAttempts', input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    if (input.runAt !== undefined) checkDate('runAt', input.runAt);
    if (input.payload === undefined) throw new TypeError('payload is required (use null for none)');
    checkStorableJson('payload', input.payload);
    if (input.dedupeKey !== undefined && input.dedupeKey !== null) checkNonEmpty('dedupeKey', input.dedupeKey);
    checkStorableText('tenant', input.tenant);
    checkStorableText('groupId', input.groupId);
    checkStorableText('orderingKey', input.orderingKey);
  };

  const enqueueOne = (input: JobInput): EnqueueResult => {
    validateJob(input);
    const maxAttempts = input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const dedupeKey = input.dedupeKey ?? null;
    if (dedupeKey !== null) {
      const id = jobsByDedupeKey.get(dedupeKey);
      const job = id === undefined ? undefined : state.jobs.get(id);
      if (job && job.dedupeKey === dedupeKey) return { id: job.id, created: false };
    }
    const at = now();
    const row: MemoryJobRow = {
      id: randomUUID(),
      type: input.type,
      tenant: input.tenant ?? null,
      groupId: input.groupId ?? null,
      payload: copy(input.payload),
      dedupeKey,
      orderingKey: input.orderingKey ?? null,
      waitKey: null,
      status: 'pending',
      attempts: 0,
      maxAttempts,
      runAt: input.runAt ? new Date(input.runAt.getTime()) : at,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      createdAt: at,
      updatedAt: at,
      completedAt: null,
      seq: ++seq,
    };
    state.jobs.set(row.id, row);
    if (dedupeKey !== null) jobsByDedupeKey.set(dedupeKey, row.id);
    return { id: row.id, created: true };
  };

  const owned = (id: string, worker: string): MemoryJobRow | null => {
    checkStorableText('worker', worker);
    const row = state.jobs.get(id);
    return row && row.status === 'running' && row.leaseOwner === worker ? row : null;
  };

  /** The running jobs holding a live lease at `at`, by ordering key (read once, on first use). */
  function liveLeasesByKey(at: Date): () => Map<string, MemoryJobRow[]> {
    let holders: Map<string, MemoryJobRow[]> | null = null;
    return () => {
      if (holders) return holders;
      holders = new Map();
      for (const row of state.jobs.values()) {
        if (row.orderingKey === null || row.status !== 'running' || row.leaseExpiresAt === null || expired(row.leaseExpiresAt, at)) continue;
        const rows = holders.get(row.orderingKey);
        if (rows) rows.push(row);
        else holders.set(row.orderingKey, [row]);
      }
      return holders;
    };
  }

  /**
   * Extends the owner's lease, unless another job of its ordering key holds a live lease: the
   * owner's lease lapsed and the key's turn moved on (an older job requeued and claimed), so
   * extending it would run two jobs of the key at once. `holders` is `liveLeasesByKey(at)`,
   * kept up to date here.
   */
  function renewLease(id: string, worker: string, leaseMs: number, at: Date, holders: () => Map<string, MemoryJobRow[]>): boolean {
    const row = owned(id, worker);
    if (!row) return false;
    const orderingKey = row.orderingKey;
    if (orderingKey !== null) {
      const live = holders().get(orderingKey) ?? [];
      if (live.some((other) => other !== row)) return false;
      if (!live.includes(row)) holders().set(orderingKey, [...live, row]);
    }
    row.leaseExpiresAt = later(at, leaseMs);
    row.updatedAt = at;
    return true;
  }

  function completeJob(id: string, worker: string): boolean {
    const row = owned(id, worker);
    if (!row) return false;
    const at = now();
    row.status = 'done';
    row.leaseOwner = null;
    row.leaseExpiresAt = null;
    row.completedAt = at;
    row.updatedAt = at;
    return true;
  }

  function wakeJobs(waitKeys: string[]): number {
    for (const waitKey of waitKeys) checkNonEmpty('waitKey', waitKey);
    const wanted = new Set(waitKeys);
    const at = now();
    let count = 0;
    for (const row of state.jobs.values()) {
      if (row.status === 'pending' && row.waitKey !== null && wanted.has(row.waitKey)) {
        row.waitKey = null;
        if (row.runAt.getTime() > at.getTime()) row.runAt = at;
        row.updatedAt = at;
        count += 1;
      }
    }
    return count;
  }

  const jobs: JobRepository = {
    enqueue: op('jobs.enqueue', (input: JobInput) => enqueueOne(input)),
    enqueueMany: op('jobs.enqueueMany', (inputs: JobInput[]) => {
      // Validate everything first (with the very checks enqueueOne makes) so a bad entry stores nothing.
      for (const input of inputs) validateJob(input);
      return inputs.map(enqueueOne);
    }),
    claim: op('jobs.claim', (options: { worker: string; limit: number; leaseMs: number; types?: string[] }) => {
      checkNonEmpty('worker', options.worker);
      checkPositiveInt('limit', options.limit);
      checkPositiveInt('leaseMs', options.leaseMs);
      if (Array.isArray(options.types)) for (const type of options.types) checkStorableText('type', type);
      const at = now();
      const all = [...state.jobs.values()];
      const types = options.types ? new Set(options.types) : null;
      const due = (row: MemoryJobRow) =>
        (row.status === 'pending' && row.runAt.getTime() <= at.getTime()) ||
        (row.status === 'running' && row.leaseExpiresAt !== null && expired(row.leaseExpiresAt, at));
      const blocked = (row: MemoryJobRow) =>
        row.orderingKey !== null &&
        all.some(
          (other) =>
            other !== row &&
            other.orderingKey === row.orderingKey &&
            ((other.status === 'running' && other.leaseExpiresAt !== null && !expired(other.leaseExpiresAt, at)) ||
              // An older job parked on a wait key (a record waiting for a reference that may never
              // arrive) does not hold back the younger ones until it is due again: they are newer
              // versions of the record. Due, it is the head again (never claimed beside them).
              (((other.status === 'pending' && (other.waitKey === null || other.runAt.getTime() <= at.getTime())) || other.status === 'running') &&
                byCreation(other, row) < 0)),
        );
      const candidates = all
        .filter((row) => due(row) && (!types || types.has(row.type)))
        .sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || byCreation(a, b));
      const claimed: JobRecord[] = [];
      const takenKeys = new Set<string>();
      for (const row of candidates) {
        if (claimed.length >= options.limit) break;
        if (row.orderingKey !== null && (takenKeys.has(row.orderingKey) || blocked(row))) continue;
        row.status = 'running';
        row.leaseOwner = options.worker;
        row.leaseExpiresAt = later(at, options.leaseMs);
        row.attempts += 1;
        row.updatedAt = at;
        if (row.orderingKey !== null) takenKeys.add(row.orderingKey);
        claimed.push(toJob(row));
      }
      return claimed;
    }),
    heartbeat: op('jobs.heartbeat', (id: string, worker: string, leaseMs: number) => {
      checkPositiveInt('leaseMs', leaseMs);
      const at = now();
      return renewLease(id, worker, leaseMs, at, liveLeasesByKey(at));
    }),
    heartbeatMany: op('jobs.heartbeatMany', (ids: string[], worker: string, leaseMs: number) => {
      if (!Array.isArray(ids)) throw new TypeError('ids must be an array');
      checkPositiveInt('leaseMs', leaseMs);
      checkStorableText('worker', worker);
      const at = now();
      const holders = liveLeasesByKey(at);
      return [...new Set(ids)].filter((id) => renewLease(id, worker, leaseMs, at, holders));
    }),
    complete: op('jobs.complete', (id: string, worker: string) => completeJob(id, worker)),
    completeMany: op('jobs.completeMany', (ids: string[], worker: string) => {
      if (!Array.isArray(ids)) throw new TypeError('ids must be an array');
      checkStorableText('worker', worker);
      return [...new Set(ids)].filter((id) => completeJob(id, worker));
    }),
    fail: op(
      'jobs.fail',
      (id: string, worker: string, failure: { error: JobError; retryAt: Date; waitKey?: string | null; final?: boolean }): FailOutcome => {
        checkDate('retryAt', failure.retryAt);
        if (typeof failure.error?.message !== 'string') throw new TypeError('failure.error.message must be a string');
        checkStorableText('waitKey', failure.waitKey);
        const row = owned(id, worker);
        if (!row) return 'lost';
        const at = now();
        row.lastError =
          failure.error.code === undefined
            ? { message: failure.error.message }
            : { message: failure.error.message, code: failure.error.code };
        row.leaseOwner = null;
        row.leaseExpiresAt = null;
        row.updatedAt = at;
        if (row.attempts >= row.maxAttempts || failure.final === true) {
          row.status = 'dead';
          return 'dead';
        }
        row.status = 'pending';
        row.runAt = new Date(failure.retryAt.getTime());
        row.waitKey = failure.waitKey ?? null;
        return 'retrying';
      },
    ),
    release: op('jobs.release', (id: string, worker: string) => {
      const row = owned(id, worker);
      if (!row) return false;
      const at = now();
      row.status = 'pending';
      row.attempts = Math.max(0, row.attempts - 1);
      row.runAt = at;
      row.leaseOwner = null;
      row.leaseExpiresAt = null;
      row.updatedAt = at;
      return true;
    }),
    wake: op('jobs.wake', (waitKey: string) => wakeJobs([waitKey])),
    wakeMany: op('jobs.wakeMany', (waitKeys: string[]) => {
      if (!Array.isArray(waitKeys)) throw new TypeError('waitKeys must be an array');
      return wakeJobs(waitKeys);
    }),
    get: op('jobs.get', (id: string) => {
      const row = state.jobs.get(id);
      return row ? toJob(row) : null;
    }),
    listDead: op('jobs.listDead', (filter?: { tenant?: string; type?: string; groupId?: string; limit?: number; newestFirst?: boolean }) => {
      if (filter?.limit !== undefined) checkPositiveInt('limit', filter.limit);
      checkLookup({ tenant: filter?.tenant, type: filter?.type, groupId: filter?.groupId });
      return [...state.jobs.values()]
        .filter(
          (row) =>
            row.status === 'dead' &&
            (filter?.tenant === undefined || row.tenant === filter.tenant) &&
            (filter?.type === undefined || row.type === filter.type) &&
            (filter?.groupId === undefined || row.groupId === filter.groupId),
        )
        .sort(filter?.newestFirst ? (a, b) => b.updatedAt.getTime() - a.updatedAt.getTime() || byCreation(b, a) : byCreation)
        .slice(0, filter?.limit ?? Number.POSITIVE_INFINITY)
        .map(toJob);
    }),
    requeue: op('jobs.requeue', (id: string) => {
      const row = state.jobs.get(id);
      if (row?.status !== 'dead' || !row) return false;
      const at = now();
      row.status = 'pending';
      row.attempts = 0;
      row.runAt = at;
      row.waitKey = null;
      row.leaseOwner = null;
      row.leaseExpiresAt = null;
      // The attempts start over: the error belongs to the earlier ones. Kept, it would tell the
      // worker that an attempt of this round recorded an outcome (see its crash suspects).
      row.lastError = null;
      row.updatedAt = at;
      return true;
    }),
    discard: op('jobs.discard', (id: string) => {
      const row = state.jobs.get(id);
      if (row?.status !== 'dead') return false;
      state.jobs.delete(id);
      if (row.dedupeKey !== null && jobsByDedupeKey.get(row.dedupeKey) === id) jobsByDedupeKey.delete(row.dedupeKey);
      return true;
    }),
    counts: op('jobs.counts', (filter?: { tenant?: string; type?: string }) => {
      checkLookup({ tenant: filter?.tenant, type: filter?.type });
      const counts: Record<JobStatus, number> = { pending: 0, running: 0, done: 0, dead: 0 };
      for (const row of state.jobs.values()) {
        if (filter?.tenant !== undefined && row.tenant !== filter.tenant) continue;
        if (filter?.type !== undefined && row.type !== filter.type) continue;
        counts[row.status] += 1;
      }
      return counts;
    }),
    purgeCompleted: op('jobs.purgeCompleted', (before: Date) => {
      checkDate('before', before);
      let count = 0;
      for (const [id, row] of state.jobs) {
        if (row.status === 'done' && row.completedAt !== null && row.completedAt.getTime() < before.getTime()) {
          state.jobs.delete(id);
          if (row.dedupeKey !== null && jobsByDedupeKey.get(row.dedupeKey) === id) jobsByDedupeKey.delete(row.dedupeKey);
          count += 1;
        }
      }
      return count;
    }),
  };

  // --- ledger ---------------------------------------------------------------------------

  const ledger: LedgerRepository = {
    get: op('ledger.get', (k: string) => {
      checkLookup({ key: k });
      return state.ledger.get(k) ?? null;
    }),
    claim: op('ledger.claim', (k: string, options: ClaimOptions & { intent: JsonValue }): LedgerClaim => {
      checkNonEmpty('key', k);
      checkClaimOptions(options);
      if (options.intent === undefined) throw new TypeError('intent is required (use null for none)');
      checkStorableJson('intent', options.intent);
      const at = now();
      const entry = state.ledger.get(k);
      if (!entry) {
        const fresh: LedgerEntry = {
          key: k,
          status: 'pending',
          owner: options.owner,
          claimExpiresAt: later(at, options.ttlMs),
          intent: copy(options.intent),
          outcome: null,
          createdAt: at,
          updatedAt: at,
        };
        state.ledger.set(k, fresh);
        return { state: 'claimed', recovered: false, entry: fresh };
      }
      if (entry.status === 'done') return { state: 'done', entry };
      const live = entry.claimExpiresAt !== null && !expired(entry.claimExpiresAt, at);
      if (live && entry.owner !== options.owner) return { state: 'pending', entry };
      const recovered = !live;
      entry.owner = options.owner;
      entry.claimExpiresAt = later(at, options.ttlMs);
      entry.updatedAt = at;
      return { state: 'claimed', recovered, entry };
    }),
    complete: op('ledger.complete', (k: string, owner: string, outcome: JsonValue) => {
      if (outcome === undefined) throw new TypeError('outcome is required (use null for none)');
      checkStorableJson('outcome', outcome);
      checkLookup({ key: k, owner });
      const entry = state.ledger.get(k);
      if (entry?.status !== 'pending' || entry.owner !== owner) return false;
      entry.status = 'done';
      entry.outcome = copy(outcome);
      entry.claimExpiresAt = null;
      entry.updatedAt = now();
      return true;
    }),
    release: op('ledger.release', (k: string, owner: string) => {
      checkLookup({ key: k, owner });
      const entry = state.ledger.get(k);
      if (entry && entry.status === 'pending' && entry.owner === owner) state.ledger.delete(k);
    }),
  };

  // --- replay ---------------------------------------------------------------------------

  const replay: ReplayRepository = {
    remember: op('replay.remember', (tenant: string, assertionId: string, expiresAt: Date) => {
      checkNonEmpty('tenant', tenant);
      checkNonEmpty('assertionId', assertionId);
      checkDate('expiresAt', expiresAt);
      const at = now();
      const id = key(tenant, assertionId);
      const stored = state.replay.get(id);
      if (stored && !expired(stored.expiresAt, at)) return false;
      state.replay.set(id, { tenant, assertionId, expiresAt: new Date(expiresAt.getTime()) });
      return true;
    }),
    forget: op('replay.forget', (tenant: string, assertionId: string, expiresAt: Date) => {
      checkNonEmpty('tenant', tenant);
      checkNonEmpty('assertionId', assertionId);
      checkDate('expiresAt', expiresAt);
      const id = key(tenant, assertionId);
      const stored = state.replay.get(id);
      if (!stored || expired(stored.expiresAt, now()) || stored.expiresAt.getTime() !== expiresAt.getTime()) return false;
      state.replay.delete(id);
      return true;
    }),
    purgeExpired: op('replay.purgeExpired', () => {
      const at = now();
      let count = 0;
      for (const [id, row] of state.replay) {
        if (expired(row.expiresAt, at)) {
          state.replay.delete(id);
          count += 1;
        }
      }
      return count;
    }),
  };

  // --- locks ----------------------------------------------------------------------------

  const locks: LockRepository = {
    acquire: op('locks.acquire', (k: string, owner: string, ttlMs: number) => {
      checkNonEmpty('key', k);
      checkClaimOptions({ owner, ttlMs });
      return acquireLock(k, owner, ttlMs);
    }),
    refresh: op('locks.refresh', (k: string, owner: string, ttlMs: number) => {
      checkClaimOptions({ owner, ttlMs });
      checkLookup({ key: k });
      const at = now();
      const held = state.locks.get(k);
      if (!held || held.owner !== owner || expired(held.expiresAt, at)) return false;
      held.expiresAt = later(at, ttlMs);
      return true;
    }),
    release: op('locks.release', (k: string, owner: string) => {
      checkLookup({ key: k, owner });
      return releaseLock(k, owner);
    }),
    acquireMany: op('locks.acquireMany', (keys: string[], owner: string, ttlMs: number) => {
      if (!Array.isArray(keys)) throw new TypeError('keys must be an array');
      for (const k of keys) checkNonEmpty('key', k);
      checkClaimOptions({ owner, ttlMs });
      return [...new Set(keys)].filter((k) => acquireLock(k, owner, ttlMs));
    }),
    releaseMany: op('locks.releaseMany', (keys: string[], owner: string) => {
      if (!Array.isArray(keys)) throw new TypeError('keys must be an array');
      for (const k of keys) checkStorableText('key', k);
      checkStorableText('owner', owner);
      return [...new Set(keys)].filter((k) => releaseLock(k, owner)).length;
    }),
  };

  function acquireLock(k: string, owner: string, ttlMs: number): boolean {
    const at = now();
    const held = state.locks.get(k);
    if (held && held.owner !== owner && !expired(held.expiresAt, at)) return false;
    state.locks.set(k, { key: k, owner, expiresAt: later(at, ttlMs) });
    return true;
  }

  function releaseLock(k: string, owner: string): boolean {
    const held = state.locks.get(k);
    if (!held || held.owner !== owner) return false;
    state.locks.delete(k);
    return true;
  }

  const adapter: StorageAdapter = {
    id: ADAPTER_ID,
    capabilities: { transactions: false },
    groups,
    users,
    idMaps,
    cursors,
    jobs,
    ledger,
    replay,
    locks,
    close: async () => {
      closed = true;
    },
  };
  states.set(adapter, state);
  return adapter;
}

function provisioned<T>(record: T | null): T {
  if (record === null) throw new Error('memory storage invariant: a completed row must be a provisioned record');
  return record;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byCreation(a: { createdAt: Date; seq: number }, b: { createdAt: Date; seq: number }): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || a.seq - b.seq;
}
