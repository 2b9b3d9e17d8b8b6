/**
 * The connector control endpoints Maestrano calls (PROTOCOL §5.4, the Rails connector's
 * `SynchronizationsController`, CONNECTORS §A8): start a sync of a group, read its status,
 * switch its sync off or on, and `update_metadata`. Served only when a connector is
 * configured, authenticated like every webhook (HTTP Basic `api.id:api.key` of the tenant).
 *
 * State, all through the storage contract (so every adapter serves it):
 * - the switch is `settings.sync.enabled` of the group (absent: on), which the engine's
 *   `enabled()` honours for every notification, import, poll and push;
 * - the last sync a start enqueued is a cursor of the group (entity `*`, kind `sync.control`)
 *   holding its job id, read back with `jobs.get`;
 * - the outcome of syncs the endpoint did not start (the import after a company's first login,
 *   the poll chain) comes from the group's dead letters (`jobs.listDead`) and checkpoints
 *   (`cursors.list`), and from the note a discarded dead import or poll leaves (a cursor of the
 *   group, entity `*`, kind `sync.discarded`: see `recordDiscardedFailure`).
 */
import { randomUUID } from 'node:crypto';
import { type HandlerArgs, JobTypes, type Runtime } from '../core/types.js';
import { json } from '../http/router.js';
import type { CursorKey, CursorRecord, GroupRecord, JobRecord, JsonObject } from '../storage/adapter.js';
import { isStorableText } from '../storage/validation.js';
import type { AnyEntity } from '../entities/types.js';
import { invalidCredentialsResponse, verifyTenantBasicAuth } from '../webhooks/auth.js';
import { withStorageLock } from '../webhooks/locks.js';
import { connecDisabledMessage, groupSyncEnabled, type SyncEngine, syncEnabledWaitKey } from './engine.js';
import { isObject } from './records.js';
import { keyPart } from '../internal/keys.js';
import { errorMessage } from '../internal/text.js';
import { SDK_VERSION } from '../internal/version.js';

/** What the status of a group's sync can be (PROTOCOL §5.4). */
export type SyncControlStatus = 'RUNNING' | 'ENQUEUED' | 'SUCCESS' | 'ERROR' | 'DISABLED';

/** The answer of every control endpoint. */
export interface SyncControlAnswer {
  group_id: string;
  sync_enabled: boolean;
  status: SyncControlStatus;
  message?: string;
  /** ISO 8601: when the last sync's state changed (finished, failed). */
  updated_at?: string;
}

export interface SyncControlDeps {
  runtime: Runtime;
  engine: SyncEngine;
  /** The sync module's `enqueueImport` (deduplicated per group unless `full`). */
  enqueueImport(args: { tenant: string; groupId: string; full?: boolean }): Promise<{ jobId: string; created: boolean }>;
}

/** The cursor entity and kind under which a group's last started sync is kept. */
export const CONTROL_CURSOR = { entity: '*', kind: 'sync.control' } as const;
/** The cursor entity and kind noting the group's last full import enqueued (`enqueueImport({ full: true })`). */
export const FULL_IMPORT_CURSOR = { entity: '*', kind: 'sync.full' } as const;
/** The cursor entity and kind the import and poll handlers touch when a run of the group succeeds. */
export const SUCCEEDED_CURSOR = { entity: '*', kind: 'sync.succeeded' } as const;
/** Cursor (entity `*`) holding the job id of the last catch-up a toggle enqueued. */
export const CATCH_UP_CURSOR = { entity: '*', kind: 'sync.catchup' } as const;
/** The cursor entity and kind noting the newest dead import, poll or set-up (`company.created`) of the group discarded (`recordDiscardedFailure`). */
export const DISCARDED_CURSOR = { entity: '*', kind: 'sync.discarded' } as const;

/** The per-group lock every SDK read-modify-write of a group's settings takes. */
export function groupSettingsLockKey(tenant: string, groupId: string): string {
  return `group-settings:${tenant}:${groupId}`;
}

/** Outcome of `updateGroupSettings`: the updated group, `unknown` (or cancelled), or `busy` (the lock stayed taken). */
export type GroupSettingsUpdate = { status: 'updated'; group: GroupRecord } | { status: 'unknown' } | { status: 'busy' };

/**
 * Reads a group's settings, computes the new ones with `update`, and writes them, under the
 * group's settings lock: two such updates (the platform's `toggle_sync`, the app's own
 * switches through `mno.sync.updateGroupSettings`) never lose each other's change, which a
 * bare read then `storage.groups.update` could.
 */
export async function updateGroupSettings(
  runtime: Pick<Runtime, 'storage' | 'logger' | 'instanceId'>,
  tenant: string,
  groupId: string,
  update: (settings: JsonObject, group: GroupRecord) => JsonObject | Promise<JsonObject>,
  options: {
    waitMs?: number;
    /**
     * Runs under the same lock once the settings are written (with the updated group); when it
     * throws, the error is the caller's (after whatever undo `after` did itself). `held()`
     * says whether the lock is still held: a write made after it lapsed may undo a later
     * caller's change.
     */
    after?: (group: GroupRecord, held: () => boolean) => Promise<void>;
  } = {},
): Promise<GroupSettingsUpdate> {
  const { storage } = runtime;
  const locked = await withGroupSettingsLock(runtime, tenant, groupId, options.waitMs ?? 10_000, async (lease): Promise<GroupSettingsUpdate> => {
    const group = await storage.groups.get(tenant, groupId);
    if (group?.status !== 'active') return { status: 'unknown' };
    const next = await update(structuredClone(group.settings), group);
    if (!isObject(next)) throw new TypeError('updateGroupSettings: the update must return the settings object');
    // The lock may have lapsed while `update` ran (a paused process): another change may
    // have been made since the read, so nothing is written.
    if (!lease.held()) return { status: 'busy' };
    const updated = await storage.groups.update(tenant, groupId, { settings: next as JsonObject });
    if (updated?.status !== 'active') return { status: 'unknown' };
    await options.after?.(updated, () => lease.held());
    return { status: 'updated', group: updated };
  });
  return locked.acquired ? locked.value : { status: 'busy' };
}

/** Runs `body` under the group's settings lock (renewed while it runs). */
function withGroupSettingsLock<T>(
  runtime: Pick<Runtime, 'storage' | 'logger' | 'instanceId'>,
  tenant: string,
  groupId: string,
  waitMs: number,
  body: (lease: { held(): boolean }) => Promise<T>,
) {
  const owner = `${runtime.instanceId}:group-settings:${randomUUID()}`;
  return withStorageLock(runtime.storage, groupSettingsLockKey(tenant, groupId), { owner, ttlMs: 30_000, waitMs, logger: runtime.logger, renew: true }, body);
}

/**
 * Records that an import or poll of the group just succeeded (for the status endpoint): a
 * successful poll that read no change moves no checkpoint, and would otherwise leave an older
 * dead poll as the group's last outcome.
 */
export async function recordSyncSuccess(storage: Runtime['storage'], now: Date, tenant: string, groupId: string): Promise<void> {
  const key = { tenant, groupId, ...SUCCEEDED_CURSOR };
  // Positions only move forward: a clock behind the one that noted the last success (another
  // instance's running ahead, or this one's stepped back) must still record this one.
  const stored = await storage.cursors.get(key);
  // The discarded failure noted when this success is (`recordDiscardedFailure`) happened before
  // it, even when both carry the same millisecond (a failure wins a tie of times): noted with it.
  const discarded = await storage.cursors.get({ tenant, groupId, ...DISCARDED_CURSOR });
  const data: JsonObject = { at: now.toISOString() };
  if (discarded) data.afterDiscarded = discarded.position;
  await storage.cursors.advance(key, Math.max(now.getTime(), (stored?.position ?? 0) + 1), data, false);
}

/**
 * Notes, before a dead import or poll is discarded (`mno.sync.discardDeadLetter` or
 * `mno.worker.discardDeadLetter`: both go through the one dead-letter helper that calls this),
 * that the group's sync failed then and how: discarding dismisses the dead letter from the
 * listings, it neither makes the failed sync succeed nor queues one. Without the note, the
 * status endpoint, which reads a group's failures from its dead letters, would lose the failure
 * with the job: a dead initial import discarded left nothing known, answered `ENQUEUED` with
 * nothing queued, and a dead poll discarded let the import's older success show through as
 * `SUCCESS`. The note is one cursor per group (so every storage adapter keeps it, no contract
 * change), at the failure's time as its position: discarding an older dead letter after a newer
 * one keeps the newer's note, and the purge of a deleted group removes it with the other
 * cursors. Written before the job is deleted: a failed write throws and the dead letter stays,
 * and a discard that then finds the job retried meanwhile leaves a note `lastOutcome` ignores
 * while that job exists. Also a dead `company.created` (its group's set-up, which queues the
 * initial import: see `failedSetUp`). A no-op for every other job (they give no status), and
 * for a group that is not active: the status endpoint answers 404 for a deleted group, and a
 * note written after its purge would bring back a cursor (holding the job's error text) that
 * the purge had removed.
 */
export async function recordDiscardedFailure(storage: Runtime['storage'], job: JobRecord): Promise<void> {
  if (job.type !== JobTypes.syncImport && job.type !== JobTypes.syncPoll && job.type !== JobTypes.companyCreated) return;
  if (job.tenant === null || job.groupId === null) return;
  if ((await storage.groups.get(job.tenant, job.groupId))?.status !== 'active') return;
  const data: JsonObject = { jobId: job.id, type: job.type, ...failure(job) };
  await storage.cursors.advance({ tenant: job.tenant, groupId: job.groupId, ...DISCARDED_CURSOR }, job.updatedAt.getTime(), data, false);
}

/** The `message` of a group's `SUCCESS` when its import covers no entity (see `lastOutcome`). */
const NOTHING_TO_SYNC = 'No entity is enabled for this group: there is nothing to synchronize';

const MAX_GROUP_ID_LENGTH = 255;
/**
 * Newest dead letters of a tenant read per job type when the storage adapter ignores the
 * `groupId` filter of `jobs.listDead` (written for the contract before it): the group's last
 * failure is then looked for among them, as before the filter existed.
 */
const UNFILTERED_DEAD_LETTER_SCAN = 100;

const notFound = () => json(404, { errors: [{ message: 'Organization not found', code: 404 }] });
const badRequest = (message: string) => json(400, { errors: [{ message, code: 400 }] });

class BadRequest extends Error {}

/**
 * Rails-style form fields: `opts[full_sync]=true` -> `{ opts: { full_sync: "true" } }`. Only
 * one level of nesting (what the platform sends); a repeated key keeps its last value.
 */
function formFields(form: URLSearchParams): Record<string, unknown> {
  // Prototype-less holders, and no key that names a prototype: `__proto__[x]=y` must not reach
  // Object.prototype (these routes serve every tenant's process).
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, value] of form) {
    const nested = /^([^[\]]+)\[([^[\]]*)\]$/.exec(key);
    if (nested) {
      const [, outer, inner] = nested as unknown as [string, string, string];
      if (UNSAFE_KEYS.has(outer) || UNSAFE_KEYS.has(inner)) continue;
      const existing = Object.hasOwn(out, outer) ? out[outer] : undefined;
      const holder: Record<string, unknown> = isObject(existing) ? existing : Object.create(null);
      holder[inner] = value;
      out[outer] = holder;
    } else if (!UNSAFE_KEYS.has(key)) out[key] = value;
  }
  return out;
}

const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The request's parameters: the query string, overridden by the body (JSON or a form, as the
 * platform may send either). Throws `BadRequest` for a body that is neither.
 */
async function readParams(request: Request): Promise<Record<string, unknown>> {
  const params = formFields(new URL(request.url).searchParams);
  const text = await request.text();
  if (text.trim() === '') return params;
  const type = request.headers.get('content-type') ?? '';
  const looksJson = /\bjson\b/i.test(type) || (!/urlencoded/i.test(type) && /^\s*[{[]/.test(text));
  if (looksJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new BadRequest('The request body is not valid JSON');
    }
    if (!isObject(parsed)) throw new BadRequest('The request body must be a JSON object');
    return { ...params, ...parsed };
  }
  return { ...params, ...formFields(new URLSearchParams(text)) };
}

/** A usable group id, or why not. */
function groupIdProblem(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return 'group_id is required';
  if (typeof value !== 'string') return 'group_id must be a string';
  if (value.length > MAX_GROUP_ID_LENGTH) return `group_id is longer than ${MAX_GROUP_ID_LENGTH} characters`;
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return 'group_id contains control characters';
  // Storage refuses such an id (PostgreSQL would look up 'cld-\uD800' as the group 'cld-\uFFFD').
  if (!isStorableText(value)) return 'group_id contains an unpaired UTF-16 surrogate';
  return null;
}

/** `opts.full_sync` (JSON or form): `true`, `1`, `"true"`, `"1"`, `"yes"`, `"on"` ask for a full import. */
function wantsFullSync(opts: unknown): boolean {
  let value: unknown = opts;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return false;
    }
  }
  if (!isObject(value)) return false;
  const full = value.full_sync;
  if (full === true || full === 1) return true;
  return typeof full === 'string' && ['true', '1', 'yes', 'on'].includes(full.trim().toLowerCase());
}

/** The `message` of a failed sync: its job's last error, cut to 500 characters. */
function failure(job: JobRecord): { message?: string } {
  return job.lastError ? { message: job.lastError.message.slice(0, 500) } : {};
}

/** The control endpoints as route handlers. */
/** `GET /maestrano/dependancies` (PROTOCOL §5.4). */
export const CONNECTOR_DEPENDENCIES = Object.freeze({ connec: '1.0', impac: '1.0', maestrano_hub: '1.0' });

export function createSyncControl(deps: SyncControlDeps) {
  const { runtime, engine } = deps;
  const { storage, logger } = runtime;

  const cursorKey = (tenant: string, groupId: string): CursorKey => ({ tenant, groupId, ...CONTROL_CURSOR });

  /**
   * The job a control route last enqueued and noted in the cursor `which`: the last start
   * (`CONTROL_CURSOR`) or the last catch-up (`CATCH_UP_CURSOR`); null when none, or purged since.
   */
  const trackedJob = async (tenant: string, groupId: string, which: { entity: string; kind: string } = CONTROL_CURSOR): Promise<JobRecord | null> => {
    const cursor = await storage.cursors.get({ tenant, groupId, ...which });
    const jobId = cursor?.data.jobId;
    return typeof jobId === 'string' ? storage.jobs.get(jobId) : null;
  };

  /**
   * Records the job a start enqueued as the one to track. `job.position` is the one its dedupe
   * key was built from (`enqueueStart`): the cursor takes at least that one, so a clock stepped
   * back between the two reads cannot leave it behind the key (a later start would then build
   * the same key and dedupe to this start's job, finished by then, and nothing would run).
   */
  const track = async (tenant: string, groupId: string, job: { jobId: string; type: string; full: boolean; position?: number }): Promise<void> => {
    const key = cursorKey(tenant, groupId);
    const stored = await storage.cursors.get(key);
    const now = runtime.clock().getTime();
    const data: JsonObject = { jobId: job.jobId, type: job.type, full: job.full, at: new Date(now).toISOString() };
    // Positions only move forward: two starts within one millisecond still record the second.
    await storage.cursors.advance(key, Math.max(now, job.position ?? 0, (stored?.position ?? 0) + 1), data, false);
  };

  const leased = (job: JobRecord): boolean => job.status === 'running' && job.leaseExpiresAt !== null && job.leaseExpiresAt.getTime() > runtime.clock().getTime();
  /** Pending, or running under an expired lease (a worker died: it is redelivered). */
  const waiting = (job: JobRecord): boolean => job.status === 'pending' || (job.status === 'running' && !leased(job));

  /**
   * Where the group's initial import stands, from one read of its checkpoints. `done`: it has
   * completed for everything it covers now (false when it covers nothing); the inbound half
   * runs after the outbound one, so its checkpoints tell on their own, and the outbound ones
   * only count for a connector without inbound entities (an entity that gains `local.list`
   * later must not make an imported group look not imported). `outboundMissing`: an enabled
   * outbound entity with `local.list` has no complete outbound checkpoint (added to the
   * connector since): a start then runs the import, whose outbound half pushes its records
   * (the rest resumes from its complete checkpoints). `empty`: it covers no entity (every one
   * switched off for the group by its per-entity switches, or only outbound entities without
   * `local.list` left on). `idle`: no entity is on for the group in either direction (`empty`
   * without even a push-only entity: nothing moves at all).
   */
  const importProgress = async (
    tenant: string,
    groupId: string,
    cursors?: readonly CursorRecord[],
  ): Promise<{ done: boolean; outboundMissing: boolean; empty: boolean; idle: boolean }> => {
    const found = await engine.scope(tenant, groupId);
    if (!found) return { done: false, outboundMissing: false, empty: false, idle: false };
    const complete = new Set((cursors ?? (await storage.cursors.list(tenant, groupId))).filter((c) => c.complete).map((c) => `${c.kind}\u0000${c.entity}`));
    const pushed = (entity: AnyEntity) => complete.has(`import.outbound\u0000${entity.name}`);
    const listed = engine.connector.entities.filter((entity) => entity.outbound && entity.list);
    const outboundMissing = listed.some((entity) => engine.enabled(found, entity, 'outbound') && !pushed(entity));
    // What the import covers when the group's sync is on (the per-entity switches only).
    const sync = isObject(found.group.settings.sync) ? found.group.settings.sync : {};
    const scope = { ...found, group: { ...found.group, settings: { ...found.group.settings, sync: { ...sync, enabled: true } } } };
    const inbound = engine.connector.importOrder.filter((entity) => engine.enabled(scope, entity, 'inbound'));
    if (inbound.length > 0) return { done: inbound.every((entity) => complete.has(`import\u0000${entity.name}`)), outboundMissing, empty: false, idle: false };
    const outbound = listed.filter((entity) => engine.enabled(scope, entity, 'outbound'));
    const empty = outbound.length === 0;
    const idle = empty && !engine.connector.entities.some((entity) => entity.outbound && engine.enabled(scope, entity, 'outbound'));
    return { done: !empty && outbound.every(pushed), outboundMissing, empty, idle };
  };
  const initialImportDone = async (tenant: string, groupId: string, cursors?: readonly CursorRecord[]): Promise<boolean> =>
    (await importProgress(tenant, groupId, cursors)).done;

  /**
   * The group's newest dead job of `types` (by default its imports and polls). Storage filters
   * by group, so however many other groups of the tenant failed since, one row per type is read.
   * What comes back is still checked: an adapter written for the contract before `groupId`
   * ignores the filter and returns the tenant's newest dead job, perhaps another group's; the
   * tenant's newest dead letters are then scanned for the group's, as before the filter existed.
   */
  const lastDeadLetter = async (tenant: string, groupId: string, types: readonly string[] = [JobTypes.syncImport, JobTypes.syncPoll]): Promise<JobRecord | null> => {
    const isMine = (job: JobRecord, type: string) => job.groupId === groupId && job.tenant === tenant && job.type === type;
    let newest: JobRecord | null = null;
    for (const type of types) {
      const [first] = await storage.jobs.listDead({ tenant, type, groupId, limit: 1, newestFirst: true });
      let mine = first && isMine(first, type) ? first : undefined;
      if (first && !mine) {
        const dead = await storage.jobs.listDead({ tenant, type, groupId, limit: UNFILTERED_DEAD_LETTER_SCAN, newestFirst: true });
        mine = dead.find((job) => isMine(job, type));
      }
      if (mine && (!newest || mine.updatedAt > newest.updatedAt)) newest = mine;
    }
    return newest;
  };

  /** The outcome of the group's last sync that ended, or null when none is known. */
  const lastOutcome = async (group: GroupRecord, job: JobRecord | null): Promise<{ status: 'SUCCESS' | 'ERROR'; message?: string; at: Date } | null> => {
    const candidates: { status: 'SUCCESS' | 'ERROR'; message?: string; at: Date }[] = [];
    const cursors = await storage.cursors.list(group.tenant, group.groupId);
    const { done: imported, empty, idle: nothingOn } = await importProgress(group.tenant, group.groupId, cursors);
    // An import that ended without completing the group's checkpoints (it ran while the sync was
    // off, or before an entity was switched on) imported nothing: not a success. Nor is a poll
    // that ran while the sync was off (done, having read nothing): a poll counts only when a
    // success of the group was noted (`SUCCEEDED_CURSOR`) since it was enqueued, and so does an
    // import of a group whose import covers no entity (`empty`, see below).
    const noted = cursors.find((c) => c.entity === SUCCEEDED_CURSOR.entity && c.kind === SUCCEEDED_CURSOR.kind);
    const notedSince = (done: JobRecord): boolean => noted !== undefined && noted.updatedAt.getTime() >= done.createdAt.getTime();
    const succeeded = (done: JobRecord): boolean => {
      if (done.type === JobTypes.syncImport) return imported || (empty && notedSince(done));
      if (done.type === JobTypes.syncPoll) return notedSince(done);
      return true;
    };
    // Every entity switched off for the group: its import has no checkpoint to complete, so it
    // never counts as done, and a status read from checkpoints alone stayed `ENQUEUED` for good
    // with nothing queued (each start queuing another import that did nothing). Such an import
    // runs, reads and writes nothing, and notes its success: there is nothing to synchronize and
    // nothing failed, as a Rails connector run with no entity ticked ended `SUCCESS`. When no
    // entity is on in either direction, the `message` says so, so the platform shows why no data
    // moves (not for an app that pushes entities it cannot list: their changes still move).
    const idle = nothingOn ? { message: NOTHING_TO_SYNC } : {};
    if (job?.status === 'done' && succeeded(job)) candidates.push({ status: 'SUCCESS', ...idle, at: job.completedAt ?? job.updatedAt });
    if (job?.status === 'dead') candidates.push({ status: 'ERROR', ...failure(job), at: job.updatedAt });
    const dead = await lastDeadLetter(group.tenant, group.groupId);
    if (dead && dead.id !== job?.id) candidates.push({ status: 'ERROR', ...failure(dead), at: dead.updatedAt });
    // A dead import or poll discarded since is still the failure it was (`recordDiscardedFailure`),
    // unless its job exists again: a discard that lost to a retry noted a job now queued anew.
    const discarded = cursors.find((c) => c.entity === DISCARDED_CURSOR.entity && c.kind === DISCARDED_CURSOR.kind);
    const discardedId = discarded?.data.jobId;
    // A success noted while this note existed came after it, whatever the times say.
    let discardedFailure: (typeof candidates)[number] | null = null;
    if (discarded && (typeof discardedId !== 'string' || (await storage.jobs.get(discardedId)) === null)) {
      const message = discarded.data.message;
      const failure = { status: 'ERROR' as const, ...(typeof message === 'string' ? { message } : {}), at: new Date(discarded.position) };
      if (noted?.data.afterDiscarded === discarded.position) discardedFailure = failure;
      candidates.push(failure);
    }
    if (imported) {
      // Checkpoints move only when records change: the group's last successful import or poll
      // (`SUCCEEDED_CURSOR`) counts too, so a poll that succeeds after a dead one clears the ERROR.
      const checkpoints = cursors.filter(
        (c) => c.kind === 'import' || c.kind === 'import.outbound' || c.kind === 'poll' || (c.entity === SUCCEEDED_CURSOR.entity && c.kind === SUCCEEDED_CURSOR.kind),
      );
      const at = checkpoints.reduce<Date | null>((latest, c) => (latest === null || c.updatedAt > latest ? c.updatedAt : latest), null);
      if (at) candidates.push({ status: 'SUCCESS', at });
    } else if (empty && noted) candidates.push({ status: 'SUCCESS', ...idle, at: noted.updatedAt });
    // The latest wins; at the same instant, a failure, except a discarded one that a success
    // noted since is known to follow (the whole fail-discard-start-import sequence can fit in
    // one millisecond: that sync then said ERROR although it had succeeded).
    const rank = (c: (typeof candidates)[number]) => (c === discardedFailure ? 2 : c.status === 'ERROR' ? 0 : 1);
    candidates.sort((a, b) => b.at.getTime() - a.at.getTime() || rank(a) - rank(b));
    return candidates[0] ?? (await failedSetUp(group, job));
  };

  /**
   * When nothing else is known of the group's sync: the failure of its company's set-up. The
   * group's initial import is enqueued by the `company.created` job (the fan-out after its first
   * login); when that job died, no import was ever queued, and `ENQUEUED` (nothing known) would
   * be a lie for good. Its dead letter is the outcome, an `ERROR` with its failure, while it
   * exists (retried, it is pending again: the import will be queued, `ENQUEUED` is true), and
   * only as long as nothing better is known: any import or poll outcome of the group, or a job a
   * start enqueued since (an import that ran may then have been queued by other means).
   */
  const failedSetUp = async (group: GroupRecord, job: JobRecord | null): Promise<{ status: 'ERROR'; message?: string; at: Date } | null> => {
    const dead = await lastDeadLetter(group.tenant, group.groupId, [JobTypes.companyCreated]);
    if (!dead || (job && job.createdAt >= dead.updatedAt)) return null;
    return { status: 'ERROR', ...failure(dead), at: dead.updatedAt };
  };

  /**
   * A group's status: `RUNNING` while the sync the last start enqueued is leased; `DISABLED`
   * while the group's sync is switched off; `ENQUEUED` while that sync waits; else the last
   * sync's `SUCCESS` or `ERROR`; `ENQUEUED` again while the initial import has not completed
   * (it is queued, running or retrying; a dead one is an `ERROR`, discarded or not). An import
   * that covers no entity is a `SUCCESS` once it ran, and a group whose `company.created` died
   * before queuing its import is that job's `ERROR` (see `lastOutcome` and `failedSetUp`).
   */
  const answerFor = async (group: GroupRecord, job?: JobRecord | null): Promise<SyncControlAnswer> => {
    const tracked = job === undefined ? await trackedJob(group.tenant, group.groupId) : job;
    const enabled = groupSyncEnabled(group.settings);
    const base = { group_id: group.groupId, sync_enabled: enabled };
    if (tracked && leased(tracked)) return { ...base, status: 'RUNNING' };
    const last = await lastOutcome(group, tracked);
    const extra = last ? { ...(last.message !== undefined ? { message: last.message } : {}), updated_at: last.at.toISOString() } : {};
    if (!enabled) return { ...base, status: 'DISABLED', ...extra };
    // The marketplace's Connec! is switched off (`connec.enabled: false`): nothing runs, whatever the group's switch.
    if (runtime.tenants.get(group.tenant)?.connec.enabled === false) return { ...base, status: 'DISABLED', ...extra, message: connecDisabledMessage(group.tenant) };
    if (tracked && waiting(tracked)) return { ...base, status: 'ENQUEUED', ...extra };
    if (last) return { ...base, status: last.status, ...extra };
    return { ...base, status: 'ENQUEUED' };
  };

  /** Enqueues what a start asks for; returns the job to track. */
  const enqueueStart = async (tenant: string, groupId: string, full: boolean): Promise<{ jobId: string; type: string; created: boolean; position?: number }> => {
    if (full) {
      const { jobId, created } = await deps.enqueueImport({ tenant, groupId, full: true });
      return { jobId, type: JobTypes.syncImport, created };
    }
    // Keyed by the position this start's tracking will take (see `track`), not the clock alone:
    // a start in the millisecond of the last one deduped to that one's job, finished already,
    // and nothing ran.
    const stored = await storage.cursors.get(cursorKey(tenant, groupId));
    const now = runtime.clock();
    const at = Math.max(now.getTime(), (stored?.position ?? 0) + 1);
    const progress = await importProgress(tenant, groupId);
    if (progress.done && !progress.outboundMissing) {
      // A completed import is not repeated: read what changed since (an incremental poll).
      const { id, created } = await storage.jobs.enqueue({
        type: JobTypes.syncPoll,
        tenant,
        groupId,
        payload: { tenant, groupId },
        dedupeKey: `${JobTypes.syncPoll}:${tenant}:${keyPart(groupId)}:start:${at}`,
        runAt: now,
      });
      return { jobId: id, type: JobTypes.syncPoll, created, position: at };
    }
    // The group's import (the one after its first login, when still stored) resumes; when
    // that one has ended (an entity added since, a failed run), a new one.
    const first = await deps.enqueueImport({ tenant, groupId });
    const existing = first.created ? null : await storage.jobs.get(first.jobId);
    if (first.created || (existing && (existing.status === 'pending' || existing.status === 'running'))) {
      return { jobId: first.jobId, type: JobTypes.syncImport, created: first.created };
    }
    const key = `${JobTypes.syncImport}:${tenant}:${keyPart(groupId)}`;
    const { id, created } = await storage.jobs.enqueue({
      type: JobTypes.syncImport,
      tenant,
      groupId,
      payload: { tenant, groupId, full: false },
      dedupeKey: `${key}:start:${at}`,
      orderingKey: key,
    });
    return { jobId: id, type: JobTypes.syncImport, created, position: at };
  };

  /** Common prologue: credentials, parameters, group. */
  const prologue = async (
    { request, tenant }: HandlerArgs,
    groupIdFrom: (params: Record<string, unknown>) => unknown,
  ): Promise<{ response: Response } | { params: Record<string, unknown>; group: GroupRecord }> => {
    if (!verifyTenantBasicAuth(request, tenant)) return { response: invalidCredentialsResponse() };
    let params: Record<string, unknown>;
    try {
      params = await readParams(request);
    } catch (error) {
      if (error instanceof BadRequest) return { response: badRequest(error.message) };
      throw error;
    }
    const groupId = groupIdFrom(params);
    const problem = groupIdProblem(groupId);
    if (problem !== null) return { response: badRequest(problem) };
    const group = await storage.groups.get(tenant.name, groupId as string);
    if (group?.status !== 'active') return { response: notFound() };
    return { params, group };
  };

  const syncStart = async (args: HandlerArgs): Promise<Response> => {
    const ready = await prologue(args, (p) => p.group_id);
    if ('response' in ready) return ready.response;
    const { params, group } = ready;
    const tenant = args.tenant.name;
    if (!groupSyncEnabled(group.settings)) {
      const answer = await answerFor(group);
      return json(201, { ...answer, message: 'Synchronization is disabled for this group: switch it on with toggle_sync first' });
    }
    if (!args.tenant.connec.enabled) return json(201, await answerFor(group));
    const current = await trackedJob(tenant, group.groupId);
    if (current && (leased(current) || waiting(current))) return json(201, await answerFor(group, current));
    const full = wantsFullSync(params.opts);
    const started = await enqueueStart(tenant, group.groupId, full);
    await track(tenant, group.groupId, { ...started, full });
    logger.info('sync: synchronization started by the platform', { tenant, groupId: group.groupId, job: started.type, full });
    const job = await storage.jobs.get(started.jobId);
    return json(201, await answerFor(group, job));
  };

  const syncStatus = async (args: HandlerArgs): Promise<Response> => {
    // The group id is the status path's parameter (whatever it is called); a configured path
    // without one takes it from the query, as the other routes do.
    const ready = await prologue(args, (p) => args.params.group_id ?? Object.values(args.params)[0] ?? p.group_id);
    if ('response' in ready) return ready.response;
    return json(200, await answerFor(ready.group));
  };

  /**
   * The catch-up of a switch-on: the app's pushes while the sync was off were skipped, so the
   * outbound half runs again (unchanged records are not sent); it polls Connec! first. It shares
   * the imports' ordering key: queued behind an import, it runs after it. One catch-up waiting at
   * a time, however often the sync is switched off and on: the group's catch-up key, or (once
   * that job has finished) one keyed by the time. A waiting one covers this switch-on; a running
   * one may have listed some records already, so another follows it.
   */
  const enqueueCatchUp = async (tenant: string, groupId: string): Promise<void> => {
    const last = await trackedJob(tenant, groupId, CATCH_UP_CURSOR);
    if (last && waiting(last)) return;
    const input = {
      type: JobTypes.syncImport,
      tenant,
      groupId,
      payload: { tenant, groupId, full: false, outbound: true },
      orderingKey: `${JobTypes.syncImport}:${tenant}:${keyPart(groupId)}`,
    };
    const key = `${JobTypes.syncImport}:${tenant}:${keyPart(groupId)}:outbound`;
    // Positions only move forward: a clock behind the last catch-up's must still record this one.
    // The key takes the position too: keyed by the clock, a catch-up in the millisecond of the
    // last one deduped to that one's job, finished (or past the record) already, and the edits
    // made while off were never pushed.
    const tracked = await storage.cursors.get({ tenant, groupId, ...CATCH_UP_CURSOR });
    const position = Math.max(runtime.clock().getTime(), (tracked?.position ?? 0) + 1);
    const first = await storage.jobs.enqueue({ ...input, dedupeKey: key });
    const jobId = first.created ? first.id : (await storage.jobs.enqueue({ ...input, dedupeKey: `${key}:${position}` })).id;
    await storage.cursors.advance({ tenant, groupId, ...CATCH_UP_CURSOR }, position, { jobId }, false);
    logger.info('sync: the app changes made while the sync was off are pushed by a catch-up job', { tenant, groupId });
  };

  /**
   * What a switch-on enqueues, run under the group's settings lock right after the switch is
   * written (so two toggles never both enqueue a catch-up): the initial import again when it
   * has not completed and none waits or runs; a catch-up when some of the app's records may have
   * been passed already (the import completed, an import's outbound half completed, or an
   * import runs now: its outbound half may have listed them before their edits made while
   * off); then the wake of the imports that found the sync off.
   */
  const switchedOn = async (tenant: string, groupId: string): Promise<void> => {
    const cursors = await storage.cursors.list(tenant, groupId);
    const imported = await initialImportDone(tenant, groupId, cursors);
    let importRuns = false;
    if (!imported) {
      const current = await trackedJob(tenant, groupId);
      if (current && (leased(current) || waiting(current))) {
        importRuns = current.type === JobTypes.syncImport && leased(current);
      } else {
        // The group's import (the one after its first login, when still stored) is tracked, or
        // one is enqueued again as an earlier one ended.
        const started = await enqueueStart(tenant, groupId, false);
        await track(tenant, groupId, { ...started, full: false });
        if (!started.created) {
          const job = await storage.jobs.get(started.jobId);
          importRuns = job !== null && job.type === JobTypes.syncImport && leased(job);
        }
        logger.info('sync: initial import enqueued again as the sync was switched back on', { tenant, groupId });
      }
    }
    const outboundPassed = cursors.some((c) => c.kind === 'import.outbound' && c.complete);
    if (imported || outboundPassed || importRuns) await enqueueCatchUp(tenant, groupId);
    // Imports that found the sync off wait on this key: they run now.
    await storage.jobs.wake(syncEnabledWaitKey(tenant, groupId));
  };

  const syncToggle = async (args: HandlerArgs): Promise<Response> => {
    const ready = await prologue(args, (p) => p.group_id);
    if ('response' in ready) return ready.response;
    const { group } = ready;
    const { tenant, groupId } = group;
    // Under the group's settings lock: the app's own settings changes (updateGroupSettings)
    // neither undo this switch nor are undone by it, and what a switch-on enqueues is decided
    // and stored under it too. When that fails (a storage error), the switch is undone before
    // the error answer, so the platform's retry switches it on again rather than off.
    let enabled = false;
    const result = await updateGroupSettings(
      runtime,
      tenant,
      groupId,
      (settings) => {
        const sync = isObject(settings.sync) ? settings.sync : {};
        enabled = !groupSyncEnabled(settings);
        return { ...settings, sync: { ...sync, enabled } };
      },
      {
        after: async (written, held) => {
          if (!enabled) return;
          try {
            await switchedOn(tenant, groupId);
          } catch (error) {
            // The switch is undone only while the group is as this call wrote it: once the lock
            // has lapsed, another toggle may have switched the sync since, and its acknowledged
            // switch must stay (the lock is then taken again for the check and the write).
            const undo = held()
              ? undoSwitchOn(written)
              : withGroupSettingsLock(runtime, tenant, groupId, 10_000, async (lease) => lease.held() && (await undoSwitchOn(written))).then((l) => l.acquired && l.value);
            await undo.then(
              (undone) =>
                logger.warn(`sync: switching the sync on failed (a storage error): ${undone ? 'it stays off until the platform retries' : 'the group changed since; left as it is'}`, {
                  tenant,
                  groupId,
                  error: errorMessage(error),
                }),
              (undoError: unknown) =>
                logger.error('sync: the sync was switched on, but what must follow could not be stored nor the switch undone; switch it off and on again', {
                  tenant,
                  groupId,
                  error: undoError instanceof Error ? undoError.message : String(undoError),
                }),
            );
            throw error;
          }
        },
      },
    );
    if (result.status === 'busy') return json(503, { errors: [{ message: 'The group settings are being changed; please retry', code: 503 }] }, { 'retry-after': '5' });
    if (result.status !== 'updated') return notFound();
    logger.info(`sync: synchronization switched ${enabled ? 'on' : 'off'} by the platform`, { tenant, groupId });
    return json(200, await answerFor(result.group));
  };

  /**
   * Switches the group's sync back off (under the settings lock) after a switch-on whose
   * follow-up failed, when the group is still as that switch-on `written` it; true when it did.
   */
  const undoSwitchOn = async (written: GroupRecord): Promise<boolean> => {
    const { tenant, groupId } = written;
    const current = await storage.groups.get(tenant, groupId);
    if (current?.status !== 'active' || !groupSyncEnabled(current.settings)) return false;
    const unchanged = current.updatedAt.getTime() === written.updatedAt.getTime() && JSON.stringify(current.settings) === JSON.stringify(written.settings);
    if (!unchanged) return false;
    const sync = isObject(current.settings.sync) ? current.settings.sync : {};
    await storage.groups.update(tenant, groupId, { settings: { ...current.settings, sync: { ...sync, enabled: false } } });
    return true;
  };

  /**
   * The Rails connector re-reads the external app's instance metadata and re-aligns its entity
   * list here; entities are code in this SDK, so there is nothing to refresh or store: the
   * call is authenticated, its group checked, and answered with the group's state.
   */
  const syncUpdateMetadata = async (args: HandlerArgs): Promise<Response> => {
    const ready = await prologue(args, (p) => p.group_id);
    if ('response' in ready) return ready.response;
    logger.debug('sync: update_metadata received (nothing to refresh)', { tenant: ready.group.tenant, groupId: ready.group.groupId });
    return json(200, await answerFor(ready.group));
  };

  /** The platform APIs (and versions) the connector speaks, as the Rails connector answers. */
  const connectorDependencies = async (): Promise<Response> => json(200, CONNECTOR_DEPENDENCIES);

  /**
   * The Rails connector's version answer, with this SDK's version and Node.js in place of Ruby;
   * `ci_branch` and `ci_commit` come from the environment variables of those names.
   */
  const connectorVersion = async ({ tenant }: HandlerArgs): Promise<Response> => {
    const env = typeof process === 'undefined' ? {} : process.env;
    return json(200, {
      framework: '@org/maestrano-sdk',
      framework_version: SDK_VERSION,
      ci_branch: env.CI_BRANCH ?? null,
      ci_commit: env.CI_COMMIT ?? null,
      env: env.NODE_ENV ?? tenant.environment ?? null,
      node_version: typeof process === 'undefined' ? null : process.version,
    });
  };

  return { routes: { syncStart, syncStatus, syncToggle, syncUpdateMetadata, connectorDependencies, connectorVersion } };
}
