/**
 * The storage contract. Everything the SDK persists goes through these repositories.
 *
 * Rules for implementers (the conformance suite in `@org/maestrano-sdk/testing/storage`
 * checks them):
 * - Every method is required. Each method is atomic on its own: no caller ever needs a
 *   multi-document transaction, so MongoDB (single-document atomics + unique indexes) can
 *   implement the whole contract.
 * - Times are taken from the adapter's clock (`StorageOptions.clock`, default `Date.now`),
 *   never from the database server, so expiry behaves the same on every backend and tests
 *   can move time.
 * - A unique violation surfaces as `StorageConflictError`; any other driver failure as
 *   `StorageError` naming the operation (e.g. `idMaps.insert`) with the driver error as
 *   `cause`. Operations must fail within a bounded time when the database is unreachable.
 * - Values round-trip exactly: `Date` stays `Date` (millisecond precision), JSON stays JSON,
 *   `null` stays `null`. Any JSON key round-trips, including one holding `.`, one starting
 *   with `$`, the empty key and `__proto__` (kept as data; no prototype changes).
 * - JSON holding a NUL character or an unpaired UTF-16 surrogate (in a string or a key) is
 *   refused up front with a `StorageError` naming the argument (`payload`, `data`, `intent`,
 *   …) and changes nothing; a batch holding one stores nothing. So is a text argument holding
 *   one that the adapter stores or looks up (an id, a key, a tenant, an owner, a worker, a
 *   type, a hash, …): PostgreSQL would store it changed (an unpaired surrogate as U+FFFD, so
 *   two different ids would collide) or fail. Lookups and key-addressed writes refuse it too
 *   (`groups.get`, `idMaps.find`, `jobs.counts({ tenant })`, `locks.release`, …): a lookup by
 *   'cld-\uD800' would otherwise find the row PostgreSQL stored as 'cld-\uFFFD'. In the text of
 *   a `lastError` (a job's, an id map's) such characters are recorded, possibly each replaced
 *   by U+FFFD.
 * - Dates are stored from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z: a date argument outside
 *   that range is refused with `StorageError`. An expiry computed from a huge TTL (claim,
 *   lease, lock) ends at 9999-12-31T23:59:59.999Z.
 * - `groups.complete` sets the group's `createdAt`: the time it was provisioned, not when its
 *   claim was first taken.
 * - An expiry instant (claim, lease, lock, replay record) has passed once `expiresAt <= now`.
 * - Invalid arguments (a non-positive or non-integer `ttlMs`/`leaseMs`/`limit`/`maxAttempts`,
 *   an invalid `Date`, an empty `type`/`owner`/`worker`, a non-finite cursor position, an id
 *   map with neither id) are rejected with `StorageError` (not a conflict) and change nothing.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface StorageCapabilities {
  /** True when the backend runs on multi-document transactions internally (informational only). */
  readonly transactions: boolean;
}

export interface StorageOptions {
  /** Clock used for every expiry and timestamp. Default: `() => new Date()`. */
  clock?: () => Date;
}

export interface StorageAdapter {
  /** `"memory"`, `"prisma"`, `"mongo"` or a third-party id. Used in errors and logs. */
  readonly id: string;
  readonly capabilities: StorageCapabilities;
  readonly groups: GroupRepository;
  readonly users: UserRepository;
  readonly idMaps: IdMapRepository;
  readonly cursors: CursorRepository;
  readonly jobs: JobRepository;
  readonly ledger: LedgerRepository;
  readonly replay: ReplayRepository;
  readonly locks: LockRepository;
  /** Releases connections the adapter opened itself (never the user's own client). */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Provisioning claims (shared by groups and users)

/**
 * Result of a provisioning claim: of N concurrent callers for one new key exactly one gets
 * `claimed`; the others get `pending` (poll `get` until it is provisioned, or claim again
 * after the claim expires) or `exists` once the winner completed.
 */
export type ProvisionClaim<T> =
  | { state: 'claimed'; /** true when an expired claim of another owner was taken over */ takeover: boolean }
  | { state: 'pending'; claimExpiresAt: Date }
  | { state: 'exists'; record: T };

export interface ClaimOptions {
  /** Opaque id of the caller (process + request). */
  owner: string;
  /** How long the claim blocks other callers if its owner never completes or releases. */
  ttlMs: number;
}

// ---------------------------------------------------------------------------------------
// groups: (tenant, groupId) -> the app's company

export type GroupStatus = 'active' | 'cancelled';

export interface GroupRecord {
  tenant: string;
  /** Maestrano group uid (`cld-…`). */
  groupId: string;
  /** The app's own company id, returned by `provisioning.createCompany`. */
  companyId: string;
  status: GroupStatus;
  /** Maestrano organization uid (`org-…`); Connec!'s channel and the realm of its ids. */
  orgUid: string | null;
  /** The later of the group's free-trial end and the app's own trial end, when known. */
  trialEndsAt: Date | null;
  /** Per-group settings (connector switches, billing plan, …). */
  settings: JsonObject;
  /**
   * When the group was provisioned (`complete`), not when its claim was first taken: a claim
   * abandoned by a crashed login and taken over days later must not date the company (the
   * app's own trial is counted from here).
   */
  createdAt: Date;
  updatedAt: Date;
  cancelledAt: Date | null;
}

export interface GroupCompletion {
  companyId: string;
  orgUid?: string | null;
  trialEndsAt?: Date | null;
  settings?: JsonObject;
}

export interface GroupPatch {
  orgUid?: string | null;
  trialEndsAt?: Date | null;
  settings?: JsonObject;
}

export interface GroupRepository {
  /** A provisioned group, or null (also null while a claim is pending). */
  get(tenant: string, groupId: string): Promise<GroupRecord | null>;
  /**
   * Atomic provisioning claim. `claimed` when no record exists (or an expired claim is
   * taken over), `pending` while another owner's claim is live, `exists` once provisioned.
   */
  claim(tenant: string, groupId: string, options: ClaimOptions): Promise<ProvisionClaim<GroupRecord>>;
  /**
   * Turns the owner's claim into an active group. Throws `StorageConflictError` when the
   * caller no longer owns the claim (it expired and was taken over).
   */
  complete(tenant: string, groupId: string, owner: string, data: GroupCompletion): Promise<GroupRecord>;
  /**
   * Drops the owner's unfinished claim so the next attempt can start over: nothing stays
   * stored for the key. No-op otherwise.
   */
  release(tenant: string, groupId: string, owner: string): Promise<void>;
  /** Partial update of a provisioned group; null when unknown. */
  update(tenant: string, groupId: string, patch: GroupPatch): Promise<GroupRecord | null>;
  /**
   * Compare-and-set active -> cancelled. `changed` is false when the group was already
   * cancelled (a webhook replay) or unknown (`group` null).
   */
  cancel(tenant: string, groupId: string): Promise<{ changed: boolean; group: GroupRecord | null }>;
  /**
   * Provisioned groups of a tenant, ordered by groupId. With `limit`, at most that many; with
   * `after` (the last groupId of the previous page), only the groups ordered after it: a
   * deployment with thousands of groups is read a page at a time.
   */
  list(tenant: string, filter?: { status?: GroupStatus; limit?: number; after?: string }): Promise<GroupRecord[]>;
}

// ---------------------------------------------------------------------------------------
// users: (tenant, uid) -> the app's user; memberships

export type UserStatus = 'active' | 'blocked';

export interface UserRecord {
  tenant: string;
  /** Maestrano uid as keyed by the identity mode: `usr-…` (real) or `usr-….cld-…` (virtual). */
  uid: string;
  /** The app's own user id. */
  userId: string;
  status: UserStatus;
  createdAt: Date;
  updatedAt: Date;
}

export type MembershipStatus = 'active' | 'removed';

export interface MembershipRecord {
  tenant: string;
  uid: string;
  groupId: string;
  /** Maestrano role: `Member`, `Power User`, `Admin`, `Super Admin`, `Guest`, … */
  role: string;
  status: MembershipStatus;
  createdAt: Date;
  updatedAt: Date;
}

export interface UserRepository {
  get(tenant: string, uid: string): Promise<UserRecord | null>;
  /** All uids linked to one app user (several after email-based linking). */
  findByUserId(tenant: string, userId: string): Promise<UserRecord[]>;
  /** Same semantics as `GroupRepository.claim`. */
  claim(tenant: string, uid: string, options: ClaimOptions): Promise<ProvisionClaim<UserRecord>>;
  /** Same semantics as `GroupRepository.complete`; the user starts `active`. */
  complete(tenant: string, uid: string, owner: string, data: { userId: string }): Promise<UserRecord>;
  release(tenant: string, uid: string, owner: string): Promise<void>;
  /** Compare-and-set of the status; `changed` false when already in that status or unknown. */
  setStatus(tenant: string, uid: string, status: UserStatus): Promise<{ changed: boolean; user: UserRecord | null }>;
  /**
   * Insert or update the (tenant, uid, groupId) membership to `active` with `role`.
   * `created` true when it did not exist; `changed` true when created or when role or status changed.
   */
  upsertMembership(
    tenant: string,
    uid: string,
    groupId: string,
    role: string,
  ): Promise<{ membership: MembershipRecord; created: boolean; changed: boolean }>;
  /** Compare-and-set of a membership status; `changed` false when unchanged or unknown. */
  setMembershipStatus(
    tenant: string,
    uid: string,
    groupId: string,
    status: MembershipStatus,
  ): Promise<{ changed: boolean; membership: MembershipRecord | null }>;
  listMemberships(
    tenant: string,
    filter: { uid?: string; groupId?: string; status?: MembershipStatus },
  ): Promise<MembershipRecord[]>;
  /**
   * The seats of one group, from one aggregate read (a seat change counts them under the
   * group's seats lock, in groups of any size: never a listing of the group). `exceptUid`
   * leaves that member's membership out of both figures.
   */
  seats(tenant: string, groupId: string, options?: { exceptUid?: string }): Promise<GroupSeats>;
}

export interface GroupSeats {
  /** Memberships `active` whose role is not `UNRECORDED_ROLE` (`mno:unrecorded`, a removal's placeholder). */
  active: number;
  /** The latest `updatedAt` of the group's memberships, whatever their status and role; null when none. */
  latestChange: Date | null;
}

// ---------------------------------------------------------------------------------------
// idMaps: (tenant, group, entity, connecId) <-> localId

export interface IdMapScope {
  tenant: string;
  groupId: string;
  /** The connector entity name (`defineEntity({ name })`), not the Connec! collection. */
  entity: string;
}

export interface RecordError {
  code: string;
  message: string;
  at: Date;
}

export interface IdMapRecord extends IdMapScope {
  /** Connec! id (the `provider: "connec"` entry); null until a push returned it. */
  connecId: string | null;
  /** The app's id; null until the local record exists. */
  localId: string | null;
  /** Connec! `updated_at` of the last inbound version applied locally. */
  lastAppliedAt: Date | null;
  /**
   * Content hash, in the form a push sends (`toConnec`), of what the app and Connec! last
   * agreed on: the last version pushed, or the last inbound version written locally. Echo
   * suppression, unchanged pushes and local-edit detection compare against it.
   */
  lastPushedHash: string | null;
  /**
   * Content hash of the last inbound version applied (`in:<hash>`, replay detection), or of
   * the record Connec! answered for our last push (`pushed:<hash>`, echo detection); a bare
   * hash from before the two were told apart. Opaque to adapters: stored and returned as given.
   */
  lastReceivedHash: string | null;
  /** Set when the record was deleted on either side; no more syncing. */
  tombstonedAt: Date | null;
  lastError: RecordError | null;
  /**
   * The last time this record was in sync between the app and Connec!: set when the map is
   * created by an inbound create or a link, when an inbound version is written locally
   * (`markApplied`) and when a push succeeds. Never moved by writes that only record an error
   * (`lastError`) or a tombstone. The conflict policy counts a local record changed after this
   * instant as a local edit. null for maps stored before the field existed (the engine then
   * falls back to `updatedAt`) and for maps never in sync (a local record whose pushes failed).
   */
  syncedAt: Date | null;
  /**
   * The app's sub-record ids (invoice lines) that the link-back of the version last written
   * locally carries, as the engine wrote them with that version (`insert`, `update`,
   * `markApplied`'s `options.linkSubIds`): JSON text of `{ hash, ids, connec }` that only the
   * engine reads, so that a replay of that version (same content hash) after a crash or a lost
   * retry can send them to Connec! again, and a newer version can be matched to them. Opaque to adapters: stored and returned as given. null when
   * nothing is owed, for entities without sub-records and for maps stored before the field
   * existed.
   */
  linkSubIds: string | null;
  createdAt: Date;
  /** Moved by every write, error-only writes included. */
  updatedAt: Date;
}

export type IdMapKey = { connecId: string } | { localId: string };

/** At least one of `connecId` and `localId` must be set. */
export interface IdMapInsert extends IdMapScope {
  connecId: string | null;
  localId: string | null;
  lastAppliedAt?: Date | null;
  lastPushedHash?: string | null;
  lastReceivedHash?: string | null;
  /** Stored as given; default null (not in sync yet). */
  syncedAt?: Date | null;
  /** Stored as given (opaque text, see `IdMapRecord.linkSubIds`); default null. */
  linkSubIds?: string | null;
}

export interface IdMapPatch {
  connecId?: string | null;
  localId?: string | null;
  lastAppliedAt?: Date | null;
  lastPushedHash?: string | null;
  lastReceivedHash?: string | null;
  tombstonedAt?: Date | null;
  lastError?: RecordError | null;
  syncedAt?: Date | null;
  linkSubIds?: string | null;
}

export interface MarkAppliedOptions {
  /**
   * Default true: the version was written to the local record, so app and Connec! are in sync
   * and `syncedAt` moves to now (the adapter's clock, the same instant as `updatedAt`). false
   * for a version only acknowledged (an echo of our own push, unchanged content, a version the
   * local side won against): `lastAppliedAt`/`lastReceivedHash` move, `syncedAt` does not.
   */
  inSync?: boolean;
  /**
   * When given, stored as `linkSubIds` in the same write (only when the version is applied: a
   * refused version changes nothing): the sub-record ids this version's link-back carries, or
   * null when it owes none. Left as stored when undefined (the default).
   */
  linkSubIds?: string | null;
}

export interface IdMapRepository {
  find(scope: IdMapScope, key: IdMapKey): Promise<IdMapRecord | null>;
  /** Batch lookup by Connec! ids (import pages, reference resolution). Missing ids are absent. */
  findManyByConnecIds(scope: IdMapScope, connecIds: string[]): Promise<IdMapRecord[]>;
  /**
   * Creates a map. (scope, connecId) and (scope, localId) are each unique when not null:
   * a second insert for either throws `StorageConflictError`.
   */
  insert(map: IdMapInsert): Promise<IdMapRecord>;
  /**
   * Batch form of `insert` (import pages, batched record jobs): one round trip for many maps.
   * Each entry is inserted on its own, the batch is not atomic as a whole: an entry that would
   * break uniqueness (against a stored map or an earlier entry of the same call) is skipped and
   * stores nothing. Returns, in input order, the stored record or `null` for a skipped entry.
   * An invalid entry rejects the whole call with `StorageError` before anything is written.
   */
  insertMany(maps: IdMapInsert[]): Promise<(IdMapRecord | null)[]>;
  /** Partial update of the map found by `key`; null when none. Conflicts as for insert. */
  update(scope: IdMapScope, key: IdMapKey, patch: IdMapPatch): Promise<IdMapRecord | null>;
  /**
   * Compare-and-set for inbound versions: sets `lastAppliedAt = appliedAt` and
   * `lastReceivedHash = hash` (and `syncedAt = now` unless `options.inSync` is false, and
   * `linkSubIds = options.linkSubIds` when that is given) only
   * when `lastAppliedAt` is null or strictly older, or equal with another `lastReceivedHash`
   * (Connec! stamps `updated_at` to the second: two edits of one second share it).
   * Returns false (and changes nothing) for a stale version or the same version again.
   */
  markApplied(scope: IdMapScope, key: IdMapKey, appliedAt: Date, hash: string, options?: MarkAppliedOptions): Promise<boolean>;
  /**
   * Compare-and-set for clearing an error: sets `lastError` to null (and moves `updatedAt`, as
   * `update` does) only when the stored `lastError` is still `error`, the same `code` and `at`
   * (a caller passes the error it read from the map). Returns false (and changes nothing) when
   * another error was recorded since, when none is stored, or when there is no map: a write
   * made between the caller's read and this call is never lost, as a plain `update` would lose it.
   */
  clearError(scope: IdMapScope, key: IdMapKey, error: RecordError): Promise<boolean>;
  /** Maps of one scope ordered by creation, for paging (`after` = last `connecId ?? localId` seen). */
  list(scope: IdMapScope, options: { limit: number; after?: string }): Promise<IdMapRecord[]>;
  /** Removes every map, cursor-free, of one group (account deletion). Returns the count removed. */
  purgeGroup(tenant: string, groupId: string): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// cursors: per (tenant, group, entity, kind) checkpoint, monotonic

export interface CursorKey extends IdMapScope {
  /** e.g. `import` (initial import checkpoint) or `incremental`. */
  kind: string;
}

export interface CursorRecord extends CursorKey {
  /** Monotonic position (records committed, or a timestamp in ms). */
  position: number;
  /** Opaque resume data (next URL, skip, last updated_at, …). */
  data: JsonObject;
  /** True once the run this cursor tracks has finished. */
  complete: boolean;
  updatedAt: Date;
}

export interface CursorRepository {
  get(key: CursorKey): Promise<CursorRecord | null>;
  /**
   * Moves the cursor forward. Writes only when no cursor exists or `position` is strictly
   * greater than the stored one (or equal with `complete` turning true); returns whether
   * it wrote. A cursor never moves backwards through this method.
   */
  advance(key: CursorKey, position: number, data: JsonObject, complete?: boolean): Promise<boolean>;
  /** Deletes the cursor (explicit re-import). */
  reset(key: CursorKey): Promise<void>;
  list(tenant: string, groupId: string): Promise<CursorRecord[]>;
}

// ---------------------------------------------------------------------------------------
// jobs: the durable inbox

export type JobStatus = 'pending' | 'running' | 'done' | 'dead';

export interface JobError {
  message: string;
  code?: string | undefined;
}

export interface JobRecord {
  id: string;
  type: string;
  tenant: string | null;
  groupId: string | null;
  payload: JsonValue;
  /** Unique among stored jobs: enqueueing a second job with it returns the first. */
  dedupeKey: string | null;
  /**
   * Jobs sharing it never run concurrently and are claimed oldest first: at most one of them
   * holds a live lease at any time, whatever claims and heartbeats interleave.
   */
  orderingKey: string | null;
  /** A key the job waits on (a missing reference); `wake(waitKey)` makes it due now. */
  waitKey: string | null;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  lastError: JobError | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

export interface JobInput {
  type: string;
  payload: JsonValue;
  tenant?: string | null;
  groupId?: string | null;
  dedupeKey?: string | null;
  orderingKey?: string | null;
  /** Default: now. */
  runAt?: Date;
  /** Default: 8. */
  maxAttempts?: number;
}

export interface EnqueueResult {
  id: string;
  /** false when a job with the same dedupeKey was already stored. */
  created: boolean;
}

export interface ClaimJobsOptions {
  /** Opaque worker id; only the owner can heartbeat/complete/fail a claimed job. */
  worker: string;
  limit: number;
  leaseMs: number;
  /** Only these job types (default: any). */
  types?: string[];
}

export type FailOutcome = 'retrying' | 'dead' | 'lost';

export interface JobRepository {
  enqueue(job: JobInput): Promise<EnqueueResult>;
  /** Enqueue several jobs (one notification body). Results are in input order. */
  enqueueMany(jobs: JobInput[]): Promise<EnqueueResult[]>;
  /**
   * Atomically claims up to `limit` due jobs: `pending` with `runAt <= now`, or `running`
   * with an expired lease (redelivery). A job is never held by two workers at once, and a
   * job is skipped while another job with the same `orderingKey` is running with a live
   * lease or is older and still pending (unless that older job waits on a `waitKey` and is not
   * due yet: a record parked on a reference that may never arrive must not hold back newer
   * versions of it; due again, it is the head, and two jobs of one key are never claimed
   * together). Claiming sets `running`, the lease and `attempts + 1`. Ordered by runAt, then
   * creation.
   */
  claim(options: ClaimJobsOptions): Promise<JobRecord[]>;
  /**
   * Extends the lease; false when the caller no longer owns the job, or when another job of
   * its `orderingKey` holds a live lease (the caller's lease lapsed and the key's turn moved
   * on, e.g. to an older job requeued and claimed meanwhile): the lease then stays lapsed.
   * Otherwise, even after its lease lapsed and the key's turn passed to another job that has
   * since finished, the owner's lease is extended and the job holds its key again: no other
   * job of the key is claimed while that lease is live.
   */
  heartbeat(id: string, worker: string, leaseMs: number): Promise<boolean>;
  /**
   * Batch `heartbeat` (one round trip where the database allows): extends the leases of the
   * jobs the worker still owns (under `heartbeat`'s rule for ordering keys) and returns their
   * ids, in the caller's order, without duplicates.
   */
  heartbeatMany(ids: string[], worker: string, leaseMs: number): Promise<string[]>;
  /** Marks the owner's job `done`. Idempotent: false (no error) when not owned or already done. */
  complete(id: string, worker: string): Promise<boolean>;
  /** Batch `complete` (one round trip): returns the ids marked done, those the worker still owned. */
  completeMany(ids: string[], worker: string): Promise<string[]>;
  /**
   * Records a failed attempt. `dead` once `attempts >= maxAttempts` (dead letter), or at once
   * when `final` is true (a failure no retry can fix: the handler threw `PermanentJobError`);
   * otherwise back to `pending` at `retryAt` (the caller computes backoff) with `waitKey` set
   * when given. `lost` when the caller no longer owns the job. An adapter written before
   * `final` existed retries such a job up to `maxAttempts`, which is safe, only slower.
   */
  fail(id: string, worker: string, failure: { error: JobError; retryAt: Date; waitKey?: string | null; final?: boolean }): Promise<FailOutcome>;
  /**
   * Gives the owner's running job back without counting the attempt its claim made (a worker
   * shutting down mid-job): `pending`, due now, `attempts - 1`, lease cleared, `lastError`
   * kept. False when the caller no longer owns the job.
   */
  release(id: string, worker: string): Promise<boolean>;
  /** Makes pending jobs waiting on `waitKey` due now and clears their `waitKey`; returns how many. */
  wake(waitKey: string): Promise<number>;
  /** Batch `wake` over several wait keys (one round trip); returns how many jobs were woken. */
  wakeMany(waitKeys: string[]): Promise<number>;
  get(id: string): Promise<JobRecord | null>;
  /**
   * Dead jobs, oldest first (by creation); with `newestFirst`, the most recently failed first
   * (by `updatedAt`), so a `limit` keeps the latest failures. `tenant`, `type` and `groupId`
   * keep only the jobs with that value (applied before the `limit`: `{ tenant, groupId,
   * newestFirst: true, limit: 1 }` is the group's latest failure however many other groups
   * failed since); a job without a group never matches a `groupId`.
   */
  listDead(filter?: { tenant?: string; type?: string; groupId?: string; limit?: number; newestFirst?: boolean }): Promise<JobRecord[]>;
  /**
   * dead -> pending, attempts reset, `lastError` and lease cleared, due now. False when not
   * dead. The attempts start over, so the error of the earlier ones goes: the worker reads a
   * job claimed again with no error recorded as one whose attempts all crashed their process,
   * and runs it alone (a dead letter retried keeps that protection).
   */
  requeue(id: string): Promise<boolean>;
  /**
   * Deletes a dead job (a dead letter a person dismissed: it will never run), its dedupe key
   * becoming free as with `purgeCompleted`. A compare-and-set on `dead`: false, and nothing
   * changes, when no dead job has that id (unknown, or pending, running or done, e.g. requeued
   * or claimed meanwhile). Of a concurrent `requeue` and `discard` of one dead job exactly one
   * returns true, and a job requeued is never deleted.
   */
  discard(id: string): Promise<boolean>;
  counts(filter?: { tenant?: string; type?: string }): Promise<Record<JobStatus, number>>;
  /**
   * Deletes `done` jobs completed before `before` (their dedupe keys become free). An adapter
   * that deletes in several statements stops between two once `signal` has aborted, and
   * returns what it deleted (the worker aborts it when its shutdown stops waiting for it).
   */
  purgeCompleted(before: Date, options?: { signal?: AbortSignal }): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// ledger: idempotency keys for side effects (charges)

export type LedgerStatus = 'pending' | 'done';

export interface LedgerEntry {
  key: string;
  status: LedgerStatus;
  owner: string | null;
  claimExpiresAt: Date | null;
  /** What the side effect is about to do (written at claim time; used to reconcile). */
  intent: JsonValue;
  /** Recorded outcome (e.g. the created bill id). */
  outcome: JsonValue | null;
  createdAt: Date;
  updatedAt: Date;
}

export type LedgerClaim =
  | {
      state: 'claimed';
      /**
       * true when an expired claim was taken over: the previous owner may have performed
       * the side effect without recording it, so the caller must reconcile first.
       */
      recovered: boolean;
      entry: LedgerEntry;
    }
  | { state: 'pending'; entry: LedgerEntry }
  | { state: 'done'; entry: LedgerEntry };

export interface LedgerRepository {
  get(key: string): Promise<LedgerEntry | null>;
  /** Claim-once. Exactly one of N concurrent callers gets `claimed`. */
  claim(key: string, options: ClaimOptions & { intent: JsonValue }): Promise<LedgerClaim>;
  /** Records the outcome; false when the caller no longer owns the claim. */
  complete(key: string, owner: string, outcome: JsonValue): Promise<boolean>;
  /** Drops (deletes) an unfinished claim of the owner (the side effect certainly did not happen). */
  release(key: string, owner: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// replay: SAML assertion ids until they expire

export interface ReplayRepository {
  /**
   * Records an assertion id. true the first time; false when it is already recorded and
   * not expired (a replay). An expired record is replaced (true).
   */
  remember(tenant: string, assertionId: string, expiresAt: Date): Promise<boolean>;
  /**
   * Gives a remembered assertion id back (a login that failed before its session existed, so
   * the browser may post the same response again): deletes the record only while it is live
   * and holds exactly `expiresAt`, the expiry it was remembered with; true when one was
   * deleted. So a caller can only delete its own record: while it is live every other
   * `remember` of the id is refused, and a record remembered again after it expired, with the
   * same expiry, is itself expired. Unknown, expired or differently dated records: false,
   * nothing changed.
   */
  forget(tenant: string, assertionId: string, expiresAt: Date): Promise<boolean>;
  /** Deletes expired records; returns the count. */
  purgeExpired(): Promise<number>;
}

// ---------------------------------------------------------------------------------------
// locks: exclusive leases

export interface LockRepository {
  /** Takes the lock when free, expired or already held by `owner` (refreshing it). */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends the owner's live lock; false when not held by owner. */
  refresh(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases (deletes) the owner's lock; false when not held by owner. */
  release(key: string, owner: string): Promise<boolean>;
  /**
   * Batch `acquire` (one round trip): each key is taken on its own under the same rules;
   * returns the keys taken, without duplicates. An empty list takes nothing.
   */
  acquireMany(keys: string[], owner: string, ttlMs: number): Promise<string[]>;
  /** Batch `release`: returns how many of the owner's locks were released. */
  releaseMany(keys: string[], owner: string): Promise<number>;
}
