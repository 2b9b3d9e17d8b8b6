/**
 * Types shared by the SDK's modules (sso, billing/account, sync, worker). Each module is
 * built from a `Runtime` by `createMaestrano`; none reaches into another's internals.
 */
import type { CursorKey, JobRecord, JsonObject, MembershipRecord, StorageAdapter } from '../storage/adapter.js';
import { UNRECORDED_ROLE } from '../storage/validation.js';

/** One marketplace (tenant / preset), fully resolved: defaults applied, paths absolute. */
export interface Tenant {
  /**
   * Marketplace key, e.g. `maestrano-uat`. Requests find their tenant by it: the last path
   * segment of the default routes, or a configured path's `?marketplace=` query.
   */
  name: string;
  nid: string | null;
  environment: string | null;
  app: {
    host: string;
    /**
     * The connector control endpoints Maestrano calls (PROTOCOL §5.4), as configured
     * (`app.synchronization_start_path`, `…_toggle_path`, `…_status_path`). Absent: the
     * defaults `/maestrano/:tenant/synchronizations`, `…/toggle_sync` and `…/:group_id`.
     * Served only when a connector is configured.
     */
    synchronization?: { startPath?: string; togglePath?: string; statusPath?: string };
  };
  api: {
    /** App id: SAML Issuer and HTTP Basic username. */
    id: string;
    /** Secret: HTTP Basic password. Never logged, never in errors or metadata. */
    key: string;
    /** Account API and IdP host. */
    host: string;
    /** Account API base path with trailing slash, default `/api/v1/`. */
    base: string;
  };
  sso: {
    enabled: boolean;
    sloEnabled: boolean;
    /** Host serving init/consume: `sso.idm` or, when empty, `app.host`. */
    idm: string;
    initPath: string;
    consumePath: string;
    idp: string;
    nameIdFormat: string;
    creationMode: 'real' | 'virtual';
    /**
     * Pinned IdP signing certificate (PEM). Preferred trust anchor. During an IdP key rollover
     * a bundle of several PEM blocks (the old and the new certificate), each one trusted.
     */
    x509Certificate: string | null;
    /** SHA-1 fingerprint (colon hex), only used as a configured fallback. */
    x509Fingerprint: string | null;
  };
  connec: {
    enabled: boolean;
    host: string;
    basePath: string;
    timeoutMs: number;
    externalIds: boolean;
  };
  webhooks: {
    account: { groupPath: string; groupUserPath: string };
    connec: {
      notificationPath: string;
      initializationPath: string | null;
      /**
       * Legacy `webhook.connec.subscriptions` (`collection -> bool`): the Connec! collections
       * the app asks to be notified of, published in the metadata document (PROTOCOL §2).
       */
      subscriptions?: Record<string, boolean>;
    };
  };
}

export interface TenantRegistry {
  get(name: string): Tenant | undefined;
  list(): Tenant[];
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured logger. Fields are redacted by the SDK before they reach it. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What every module is built from. */
export interface Runtime {
  tenants: TenantRegistry;
  storage: StorageAdapter;
  logger: Logger;
  clock: () => Date;
  /** Unique per process; prefix of claim/lease owners. */
  instanceId: string;
  fetch: typeof fetch;
}

/** Arguments of one routed request. `params` holds the path parameters (`id`, `group_id`). */
export interface HandlerArgs {
  request: Request;
  tenant: Tenant;
  params: Record<string, string>;
}

export type RouteHandler = (args: HandlerArgs) => Promise<Response>;

/** Context given to a job handler by the worker. */
export interface JobContext {
  signal: AbortSignal;
  /** Extends the lease; false when it was lost (stop working on the job). */
  heartbeat(): Promise<boolean>;
  logger: Logger;
}

/**
 * A job handler. Resolve to finish the job; throw to fail the attempt (retried with
 * backoff, then dead-lettered). Throw `JobDeferral` to wait for something (a reference).
 * Handlers must be idempotent: a lease can expire and the job be redelivered.
 */
export type JobHandler = ((job: JobRecord, ctx: JobContext) => Promise<void>) & {
  /**
   * Optional batch form: the worker hands it every job of this type claimed together (at most
   * `concurrency` of them) instead of calling the handler once per job. Resolve to one entry
   * per job, in order: `null` when the job is done, otherwise what the single handler would
   * have thrown (a `JobDeferral` or an error). Rejecting fails every job of the batch.
   * `ctx.heartbeat` extends the leases of all of them.
   */
  batch?: (jobs: JobRecord[], ctx: JobContext) => Promise<(unknown | null)[]>;
  /**
   * Optional: called after the worker dead-letters a job of this type without running it (a
   * poison job, redelivered past its attempts because its earlier runs never finished, e.g.
   * they crashed the process). For work a handler does on its last attempt either way, such as
   * scheduling the next run of a recurring job. Called once the dead letter is recorded (not
   * when another worker owns the job, nor when recording it failed and the lease will expire).
   * Errors are logged, not retried: keep it short and idempotent.
   */
  poisoned?: (job: JobRecord) => Promise<void>;
};

/**
 * Thrown by a job handler for a failure no retry can fix (an invalid billing plan your
 * `onCompanyCreated` returned, a request the platform refuses as invalid): the worker records
 * the job as a dead letter at once instead of retrying it up to `maxAttempts`. Fix the cause,
 * then retry the dead letter (`mno.worker.retryDeadLetter`). The dead letter's error is this
 * error's `message`, with its `code` (by default the `code` of `cause`, when it has one).
 */
export class PermanentJobError extends Error {
  readonly code: string | undefined;
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PermanentJobError';
    const causeCode = (options.cause as { code?: unknown } | undefined)?.code;
    this.code = options.code ?? (typeof causeCode === 'string' ? causeCode : undefined);
  }
}

/**
 * Thrown by a job handler to park its job until something happens (e.g. a referenced record
 * gets linked): the worker records a failed attempt with `waitKey`, due again after
 * `retryInMs` or as soon as `storage.jobs.wake(waitKey)` is called, whichever comes first.
 * Attempts still count, so a reference that never resolves ends as a dead letter.
 *
 * `stillWaiting`: asked once the deferral is recorded (with a `waitKey`); false wakes the key
 * at once (one that throws or takes over 10 s is logged, and the job runs at its retry time). A wake sent while the job was still running (another process made the condition
 * true after the handler looked) finds no job waiting and is lost: the job would otherwise
 * sleep for the whole `retryInMs`.
 */
export class JobDeferral extends Error {
  readonly waitKey: string | null;
  readonly retryInMs: number | undefined;
  readonly reason: string;
  readonly stillWaiting: (() => Promise<boolean>) | undefined;
  constructor(reason: string, options: { waitKey?: string | null; retryInMs?: number; stillWaiting?: () => Promise<boolean> } = {}) {
    super(reason);
    this.name = 'JobDeferral';
    this.reason = reason;
    this.waitKey = options.waitKey ?? null;
    this.retryInMs = options.retryInMs;
    this.stillWaiting = options.stillWaiting;
  }
}

/**
 * Why a worker aborted a job's `ctx.signal` (its `reason`): the worker's `shutdown` (the job
 * is given back uncounted when its handler then fails), its lease `lease_lost` (another
 * worker redelivers it), or `jobTimeoutMs` (`timeout`: the attempt counts as failed).
 */
export class JobInterruptedError extends Error {
  readonly kind: 'shutdown' | 'lease_lost' | 'timeout';
  constructor(kind: 'shutdown' | 'lease_lost' | 'timeout', message: string) {
    super(message);
    this.name = 'JobInterruptedError';
    this.kind = kind;
  }
}

/** Job types the SDK enqueues. */
/**
 * The wait key of jobs that need a group to be provisioned (its company created and
 * recorded): SSO provisioning wakes it as soon as it completes the group, which can be a
 * later login when completing it failed the first time.
 */
export function groupReadyWaitKey(tenant: string, groupId: string): string {
  return `group-ready:${tenant}:${groupId}`;
}

/**
 * The deferral of a job that found its group not provisioned yet: woken by the login that
 * completes it, also when that login (in another process) completed it while the job ran.
 */
export function groupNotReady(storage: StorageAdapter, tenant: string, groupId: string, retryInMs: number): JobDeferral {
  return new JobDeferral(`group ${groupId} of tenant ${tenant} is not provisioned yet`, {
    waitKey: groupReadyWaitKey(tenant, groupId),
    retryInMs,
    stillWaiting: async () => (await storage.groups.get(tenant, groupId)) === null,
  });
}

/**
 * Cursor kind (entity `*`) of the mark a group deletion leaves for a group the app had not
 * provisioned yet: the deletion was acknowledged, so a first login arriving afterwards (its
 * assertion issued before the deletion) is refused instead of creating a company nothing
 * would ever cancel.
 */
export const GROUP_DELETED_MARK = { entity: '*', kind: 'group.deleted' } as const;

/**
 * Cursor kind (entity `*`) recording the app company a first login created (`data.companyId`),
 * written as soon as `createCompany` returns, before the group is completed: should that login
 * never complete (its process died), a deletion of the group still finds the company and
 * cancels it, where it used to acknowledge the deletion of a group it did not know.
 */
export const GROUP_COMPANY_MARK = { entity: '*', kind: 'group.company' } as const;

/**
 * Cursor (entity `*`, one per uid) recording the app user a login put in the group's company
 * before the SDK recorded the membership (`data.userId`), and the membership state that login
 * started from (`data.from`: the membership's `updatedAt` in ms, or null for none). Written
 * by a first login (the SDK records a new or email-linked user only once the app accepted the
 * membership) and by a login adding a known user back after a removal (the membership stays
 * `removed` until written active): a login failing in between (seats lock timed out, storage
 * down, the process dying) leaves the app holding a membership the SDK does not know of, and
 * the member removal webhook reads this mark to call `removeMembership` all the same. It
 * counts only while the membership is still in the `from` state (any write of it moves its
 * `updatedAt`), is dropped once the login wrote the membership or the removal was recorded,
 * and is purged with the group's cursors.
 */
export function pendingUserMark(uid: string): { entity: '*'; kind: string } {
  return { entity: '*', kind: `user.pending:${uid}` };
}

/**
 * Writes a mark cursor whatever it holds: `advance` only moves forward, so the position is
 * `atLeast` or just past the stored one. A mark whose clock reads no later than the stored
 * one's (stepped back, another instance behind, the same millisecond) would otherwise keep
 * the stored data. Never deleted first: a crash in between would leave none.
 */
async function overwriteMark(storage: StorageAdapter, key: CursorKey, atLeast: number, data: JsonObject): Promise<void> {
  const previous = await storage.cursors.get(key);
  await storage.cursors.advance(key, Math.max(atLeast, previous ? previous.position + 1 : 0), data);
}

/**
 * Writes the `pendingUserMark` of `uid` in the group, replacing whatever note is there (one
 * kept would hold a `from` that no longer matches, and the next removal would tell the app
 * nothing). `created`: the app user is one `createUser` made (not an email link), so that a
 * retry whose `findUserByEmail` finds it still reports it created.
 */
export function notePendingUser(
  storage: StorageAdapter,
  tenant: string,
  groupId: string,
  uid: string,
  at: number,
  note: { userId: string; from: number | null; created?: boolean },
): Promise<void> {
  return overwriteMark(storage, { tenant, groupId, ...pendingUserMark(uid) }, at, note);
}

/**
 * Drops the `pendingUserMark` of `uid` once inert (the membership written, or the removal
 * recorded): a group keeps no row per member who signed in or was removed. Left in place when
 * that fails: it only costs its row.
 */
export async function dropPendingUser(storage: StorageAdapter, tenant: string, groupId: string, uid: string): Promise<void> {
  await storage.cursors.reset({ tenant, groupId, ...pendingUserMark(uid) }).catch(() => {});
}

// The placeholder role of a removal the SDK held no membership for (defined with the storage
// rules: `users.seats` leaves it out of the count).
export { UNRECORDED_ROLE };

/**
 * When the membership was removed, or null when it is held: a `removed` membership, or a
 * placeholder a removal left active between its two writes (`UNRECORDED_ROLE`).
 */
export function removedAt(membership: MembershipRecord | undefined): Date | null {
  if (!membership) return null;
  return membership.status === 'removed' || membership.role === UNRECORDED_ROLE ? membership.updatedAt : null;
}

/**
 * Cursor (entity `*`, one per uid) of a removal delivered for a membership already removed: its
 * `updatedAt` (the storage clock, as a membership's) is when. Maestrano may have added the user
 * back in between through a sign-in that failed before the SDK wrote anything (its response
 * given back for a retry): that response was issued after the earlier removal, and only this
 * record of the later one refuses it (see `lastRemovalAt`). The membership itself is left as it
 * was, so a replayed removal changes nothing the app or the seat counts see.
 */
export function repeatedRemovalMark(uid: string): { entity: '*'; kind: string } {
  return { entity: '*', kind: `user.removed:${uid}` };
}

/** Records that a removal of `uid`'s membership, already removed, was delivered now (`repeatedRemovalMark`). */
export function noteRepeatedRemoval(storage: StorageAdapter, tenant: string, groupId: string, uid: string): Promise<void> {
  return overwriteMark(storage, { tenant, groupId, ...repeatedRemovalMark(uid) }, 1, {});
}

/**
 * When the membership was last removed: its own removal (`removedAt`), or a later delivery of a
 * removal of it already removed (`repeatedRemovalMark`), whichever is later; null when it is held.
 */
export async function lastRemovalAt(storage: StorageAdapter, tenant: string, groupId: string, uid: string, membership: MembershipRecord | undefined): Promise<Date | null> {
  const own = removedAt(membership);
  if (own === null) return null;
  const repeated = await storage.cursors.get({ tenant, groupId, ...repeatedRemovalMark(uid) });
  return repeated && repeated.updatedAt.getTime() > own.getTime() ? repeated.updatedAt : own;
}

/** The app company id a first login of the group recorded (`GROUP_COMPANY_MARK`), or null. */
export async function recordedCompanyId(storage: StorageAdapter, tenant: string, groupId: string): Promise<string | null> {
  const mark = await storage.cursors.get({ tenant, groupId, ...GROUP_COMPANY_MARK });
  return typeof mark?.data.companyId === 'string' ? mark.data.companyId : null;
}

/** The idempotency key of `cancelCompany` for a group: the same from the deletion webhook and from a refused login. */
export function cancelCompanyKey(tenant: string, groupId: string): string {
  return `mno:cancel-company:${tenant}:${groupId}`;
}

/**
 * How long a job waiting for its group to be provisioned waits between attempts unless the
 * group completes first (it is woken then): with the default 8 attempts, about 80 minutes
 * before it is a dead letter. A later login that completes the group queues it again.
 */
export const GROUP_READY_RETRY_MS = 10 * 60 * 1000;

/**
 * How long a job of a tenant missing from the tenant list (a marketplaces document refreshed
 * without it, a deploy with a config that forgot it) waits between attempts: with the default
 * 8 attempts, about 80 minutes for the tenant to come back before it is a dead letter.
 */
export const TENANT_MISSING_RETRY_MS = 10 * 60 * 1000;

export const JobTypes = {
  /** Emitted once per new company by SSO provisioning; fans out to billing and import. */
  companyCreated: 'company.created',
  billingSubscribe: 'billing.subscribe',
  /**
   * Enqueued by `billing.subscribe` and `mno.billing.charge` when they record a bill under a
   * claim taken over after an unknown outcome (a POST timed out, a worker died): later, cancels
   * the duplicate a late POST created.
   */
  billingCheckDuplicates: 'billing.check_duplicates',
  syncImport: 'sync.import',
  /** Incremental poll of a group (`sync.pollIntervalMs`), rescheduled after each run. */
  syncPoll: 'sync.poll',
  connecRecord: 'connec.record',
  syncPush: 'sync.push',
  /** Enqueued by the group-deletion webhook when a connector is configured: drops the group's id maps and cursors. */
  syncPurge: 'sync.purge',
} as const;

/** Payload of a `company.created` job. */
export interface CompanyCreatedPayload {
  tenant: string;
  groupId: string;
  companyId: string;
  /** The SSO group attributes at creation time (ISO dates as strings). */
  group: Record<string, string | boolean | null>;
}

/**
 * Every route `mno.handler` serves (ARCHITECTURE §3). Each module contributes the handlers
 * for its kinds; the router matches the tenant's configured paths to a kind.
 */
export type RouteKind =
  | 'metadata'
  | 'samlMetadata'
  | 'ssoInit'
  | 'ssoConsume'
  | 'groupDeleted'
  | 'groupUserDeleted'
  | 'connecNotification'
  /** `POST …/synchronizations`: start a sync of a group (PROTOCOL §5.4; served with a connector). */
  | 'syncStart'
  /** `GET …/synchronizations/:group_id`: a group's sync status. */
  | 'syncStatus'
  /** `PUT …/synchronizations/toggle_sync`: switch a group's sync off or on. */
  | 'syncToggle'
  /** `PUT …/synchronizations/update_metadata`. */
  | 'syncUpdateMetadata'
  /** `GET /maestrano/dependancies` (sic): the platform APIs the connector speaks (served with a connector). */
  | 'connectorDependencies'
  /** `GET /version`: the connector framework's version (served with a connector). */
  | 'connectorVersion';

export type RouteTable = Partial<Record<RouteKind, RouteHandler>>;

/** What a module built by `createMaestrano` contributes. */
export interface ModuleContribution {
  routes?: RouteTable;
  /** Job handlers by job type, run by `mno.worker`. */
  jobs?: Record<string, JobHandler>;
}
