import type { CursorKey, IdMapScope, StorageAdapter } from '../../storage/adapter.js';
import type { TestClock } from './clock.js';

// ---------------------------------------------------------------------------------------
// The second channel: raw stored state, read straight from the database

/**
 * Stored values in the suite's neutral form. Inspectors read the database directly (SQL,
 * the driver's `find`, the memory store), never through the adapter, and hand back one
 * object per row/document whose keys are the contract's field names (camelCase, whatever
 * the column is called). Values are what the database holds, translated only as follows:
 *
 * - timestamp: a `Date` when the database stored a date/time type (PostgreSQL
 *   `timestamp(tz)`, BSON Date, SQLite `DATETIME` column holding the adapter's canonical
 *   format, memory `Date`). A timestamp stored as a string in a text column is returned as
 *   that string, so the suite can see it.
 * - JSON: the parsed value when the database stored JSON (`jsonb`/`json`, a BSON
 *   subdocument/array, SQLite's JSON-in-TEXT column). A JSON string stored as an opaque
 *   string in a non-JSON column is returned as the string.
 * - integers as `number` (a `BIGINT` that the driver returns as `string`/`bigint` is
 *   converted); booleans as `boolean` (SQLite `0`/`1` converted); SQL `NULL` / missing field
 *   as `null`; strings as-is.
 * - backend internals (`_id`, surrogate keys, version columns) are left out.
 *
 * A method returns `null` (or `[]`) when nothing is stored for the key: a dropped claim
 * or a released lock must leave no row behind.
 */
export interface StorageInspector {
  /**
   * The group's stored state, including an unfinished provisioning claim when the adapter
   * stores claims in the same place (report its owner in `claimOwner`). null when nothing
   * at all is stored for the key (e.g. after `release`).
   */
  group(tenant: string, groupId: string): Promise<StoredGroup | null>;
  /** As `group`, for users. */
  user(tenant: string, uid: string): Promise<StoredUser | null>;
  membership(tenant: string, uid: string, groupId: string): Promise<StoredMembership | null>;
  /** Every stored map of the scope, any order. */
  idMaps(scope: IdMapScope): Promise<StoredIdMap[]>;
  cursor(key: CursorKey): Promise<StoredCursor | null>;
  job(id: string): Promise<StoredJob | null>;
  /** Every stored job (optionally of one type), any order. */
  jobs(filter?: { type?: string }): Promise<StoredJob[]>;
  ledger(key: string): Promise<StoredLedgerEntry | null>;
  replay(tenant: string, assertionId: string): Promise<StoredReplay | null>;
  lock(key: string): Promise<StoredLock | null>;
}

/** One stored row/document in neutral form. Each key is required; values are `unknown` on purpose: the suite checks their stored types. */
export interface StoredGroup {
  tenant: unknown;
  groupId: unknown;
  /** null while only a claim is stored. */
  companyId: unknown;
  /** `active`/`cancelled` once provisioned; while only a claim is stored, whatever the adapter uses. */
  status: unknown;
  orgUid: unknown;
  trialEndsAt: unknown;
  settings: unknown;
  createdAt: unknown;
  updatedAt: unknown;
  cancelledAt: unknown;
  /** Owner of a live or expired unfinished claim; null/absent once provisioned or when claims live elsewhere. */
  claimOwner: unknown;
  claimExpiresAt: unknown;
}

export interface StoredUser {
  tenant: unknown;
  uid: unknown;
  /** null while only a claim is stored. */
  userId: unknown;
  status: unknown;
  createdAt: unknown;
  updatedAt: unknown;
  claimOwner: unknown;
  claimExpiresAt: unknown;
}

export interface StoredMembership {
  tenant: unknown;
  uid: unknown;
  groupId: unknown;
  role: unknown;
  status: unknown;
  createdAt: unknown;
  updatedAt: unknown;
}

export interface StoredIdMap {
  tenant: unknown;
  groupId: unknown;
  entity: unknown;
  connecId: unknown;
  localId: unknown;
  lastAppliedAt: unknown;
  lastPushedHash: unknown;
  lastReceivedHash: unknown;
  tombstonedAt: unknown;
  /** JSON (`{ code, message, at }`); `at` may be an ISO string inside JSON. */
  lastError: unknown;
  /** A timestamp or null (null also for rows stored before the field existed). */
  syncedAt: unknown;
  /** Text or null (null also for rows stored before the field existed). */
  linkSubIds: unknown;
  createdAt: unknown;
  updatedAt: unknown;
}

export interface StoredCursor {
  tenant: unknown;
  groupId: unknown;
  entity: unknown;
  kind: unknown;
  position: unknown;
  data: unknown;
  complete: unknown;
  updatedAt: unknown;
}

export interface StoredJob {
  id: unknown;
  type: unknown;
  tenant: unknown;
  groupId: unknown;
  payload: unknown;
  dedupeKey: unknown;
  orderingKey: unknown;
  waitKey: unknown;
  status: unknown;
  attempts: unknown;
  maxAttempts: unknown;
  runAt: unknown;
  leaseOwner: unknown;
  leaseExpiresAt: unknown;
  /** JSON (`{ message, code? }`). */
  lastError: unknown;
  createdAt: unknown;
  updatedAt: unknown;
  completedAt: unknown;
}

export interface StoredLedgerEntry {
  key: unknown;
  status: unknown;
  owner: unknown;
  claimExpiresAt: unknown;
  intent: unknown;
  outcome: unknown;
  createdAt: unknown;
  updatedAt: unknown;
}

export interface StoredReplay {
  tenant: unknown;
  assertionId: unknown;
  expiresAt: unknown;
}

export interface StoredLock {
  key: unknown;
  owner: unknown;
  expiresAt: unknown;
}

// ---------------------------------------------------------------------------------------
// The runner's options

/**
 * Abilities a backend may lack. A skip names the ability and a written reason, which is
 * printed and appears in the skipped test names.
 * - `inspect`: cases that read raw stored state (needs `inspect` from `setup`).
 * - `clock`: cases that move the adapter clock (expiry of claims, leases, locks, replay).
 * - `concurrency`: cases that race concurrent callers.
 * - `outage`: the database-outage case (needs `outage` hooks from `setup`).
 */
export type StorageAbility = 'inspect' | 'clock' | 'concurrency' | 'outage';

/** The suite's sections: one per repository, plus `outage` (failure behaviour across all of them). */
export type StorageRepositoryName =
  | 'groups'
  | 'users'
  | 'idMaps'
  | 'cursors'
  | 'jobs'
  | 'ledger'
  | 'replay'
  | 'locks'
  | 'outage';

/**
 * Makes the database unreachable for the adapter and brings it back, for the outage case:
 * stop and restart the server, or cut and reopen a TCP proxy the adapter connects through.
 */
export interface StorageOutageHooks {
  /** Resolves once the database is unreachable (new and existing connections fail). */
  cut(): Promise<void>;
  /** Resolves once the database accepts connections again. */
  restore(): Promise<void>;
}

export interface StorageSetupContext {
  /**
   * The suite's controllable clock. Give it to the adapter as `StorageOptions.clock`; the
   * suite resets it before each case and moves it to test expiry.
   */
  clock: () => Date;
}

export interface StorageSetupResult {
  adapter: StorageAdapter;
  /** The raw-state reader (second channel). Without it, `inspect` cases are skipped with a printed reason. */
  inspect?: StorageInspector;
  /**
   * Opens another adapter on the same database with its own connections (as a second
   * app process would). Concurrency cases race the main adapter and these peers. The suite
   * closes each peer it opened.
   */
  createPeer?: () => Promise<StorageAdapter>;
  /**
   * Hooks for the outage case. Without them (and without `skip.outage`), that case is
   * skipped at run time with a printed reason.
   */
  outage?: StorageOutageHooks;
  /** Called once after the last case (after `adapter.close()`): drop databases, stop servers. */
  teardown?: () => Promise<void>;
}

export interface DescribeStorageAdapterOptions {
  /** Backend name shown in every test name, e.g. `postgresql`, `sqlite`, `ferretdb`. */
  name: string;
  /** Runs once before the first case. Must pass `context.clock` to the adapter. */
  setup(context: StorageSetupContext): Promise<StorageSetupResult>;
  /** Runs before each case: remove every stored row/document (the adapter stays open). */
  reset(setup: StorageSetupResult): Promise<void>;
  /** Abilities this backend lacks, each with the reason (printed). */
  skip?: Partial<Record<StorageAbility, string>>;
  /**
   * Set when the whole backend is unavailable on this machine (e.g. no server reachable):
   * every case is registered as skipped with this reason, never silently passed.
   */
  unavailable?: string | null | undefined;
  /** Only these repositories (default: all). */
  repositories?: StorageRepositoryName[];
}

// ---------------------------------------------------------------------------------------
// Cases

export interface StorageCaseContext {
  adapter: StorageAdapter;
  /** Throws when the backend has no inspector (cases using it declare the `inspect` ability). */
  inspect: StorageInspector;
  /** Throws when the backend gave no outage hooks (cases using them declare the `outage` ability). */
  outage: StorageOutageHooks;
  clock: TestClock;
  /**
   * Adapters to race concurrent callers across: the main adapter first, then a peer when
   * the backend offers `createPeer`.
   */
  racers: StorageAdapter[];
  /** The backend name given to the runner. */
  backend: string;
}

export type StorageCaseFn = (context: StorageCaseContext) => Promise<void>;

export interface StorageCase {
  /** Abilities the case needs; skipped with the backend's reason when one is missing. */
  needs: StorageAbility[];
  run: StorageCaseFn;
  /** Test timeout for this case (default: the vitest project's). */
  timeoutMs?: number;
}

/** A repository's cases, keyed by their description. */
export type StorageCases = Record<string, StorageCase | StorageCaseFn>;
