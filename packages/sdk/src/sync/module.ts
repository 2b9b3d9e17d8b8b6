/**
 * The sync module: the Connec! notification route, the platform's control endpoints (with a
 * connector, `control.ts`), the `sync.import` and `connec.record` job handlers, and the
 * public `mno.sync` / `mno.connec` API.
 */
import { createHash } from 'node:crypto';
import { type ConnecClient, type ConnecGroup, type InvalidNotificationRecord, parseNotification, PayloadValidationError } from '@org/connec-client';
import { GROUP_READY_RETRY_MS, groupNotReady, JobDeferral, type HandlerArgs, type JobHandler, JobInterruptedError, JobTypes, type ModuleContribution, type Runtime, TENANT_MISSING_RETRY_MS, type Tenant } from '../core/types.js';
import type { AnyEntity, ConnecRecord, ConnectorDefinition } from '../entities/types.js';
import { ConfigError, SyncError } from '../errors/index.js';
import type { GroupRecord, JobInput, JobRecord, JsonObject } from '../storage/adapter.js';
import { json } from '../http/router.js';
import { invalidCredentialsResponse, verifyTenantBasicAuth } from '../webhooks/auth.js';
import { type DeadLetter, discardDeadLetter, listDeadLetters, retryDeadLetter } from '../worker/dead-letters.js';
import { connecClientFor, connecPort } from './connec-port.js';
import { createSyncControl, FULL_IMPORT_CURSOR, recordSyncSuccess, updateGroupSettings } from './control.js';
import {
  connecDisabledMessage,
  groupSyncEnabled,
  GroupCancelledError,
  ImportBusyError,
  ImportFailedError,
  inboundFailureCode,
  POISONED,
  type PushItemResult,
  type RecordJobPayload,
  type RecordJobResult,
  readSubIdLink,
  resolveSyncOptions,
  SyncDisabledError,
  SyncEngine,
  type SyncOptions,
  syncEnabledWaitKey,
} from './engine.js';
import { type SyncCounters, type SyncEvent, type SyncReport, syncLogger } from './observe.js';
import type { ConnecPort } from './ports.js';
import { createGroupPurge, type GroupPurgeResult } from './purge.js';
import { canonicalJson, connecIdOf, contentHash, isObject, parseTimestamp, rawHash } from './records.js';
import { MAX_ID_LENGTH, MAX_RECORD_DEPTH, overlongId, recordProblem, recordProblemMessage, usableId } from './storable.js';
import { isStorableText } from '../storage/validation.js';
import { callObserver } from '../internal/observer.js';
import { scrubErrorText } from '../config/logger.js';
import { requestedRetryAfterMs } from '../internal/retry-after.js';
import { errorMessage, thrownText } from '../internal/text.js';
import { keyPart } from '../internal/keys.js';

export interface SyncModuleConfig extends SyncOptions {
  /** Replaces the Connec! port (tests, custom transports). Default: @org/connec-client per tenant. */
  connecPort?: (tenant: Tenant) => ConnecPort;
  /** Called for every sync event (progress, applied, skipped, parked, failed, conflicts, pushes). Must not throw. */
  onEvent?: (event: SyncEvent) => void;
  /**
   * `$orderby` of import pages (e.g. `created_at ASC`); default: Connec!'s own stable order. A
   * field the import itself changes (`updated_at`: its link-backs) is refused: pages go by offset.
   */
  importOrderBy?: string;
  /**
   * Polls every synced group this often (ms) for what changed in Connec!, a safety net for
   * missed notifications: a durable `sync.poll` job per group, first scheduled after the
   * initial import and rescheduled after every run, at the group's own point of the interval
   * (the groups spread over it; one that ran late goes back to its point). Default: no polling.
   */
  pollIntervalMs?: number;
  /** How far before the last poll's newest `updated_at` the next poll starts re-reading. Default 60 000 ms. */
  pollOverlapMs?: number;
}

/** The entities `push` takes: those of the connector that sync outbound (`'outbound'` or `'both'`). */
type PushableEntity<E extends readonly AnyEntity[] = readonly AnyEntity[]> = OutboundOnly<E[number]>;
/** The names `push` takes: those of the connector's outbound entities (`string` for entities whose name type is not a literal). */
type PushableEntityName<E extends readonly AnyEntity[] = readonly AnyEntity[]> = PushableEntity<E>['name'];
/**
 * The record `push` takes for `X` (an entity name, or an entity object): the local record type
 * (`L` of `Entity<L>`) of that entity; `unknown` for an entity whose record type is unknown.
 */
type PushRecord<E extends readonly AnyEntity[], X> = EveryOf<X extends unknown ? (record: OneRecord<E, X>) => void : never>;
/** The record of one entity `X` (a name, or an entity object). */
type OneRecord<E extends readonly AnyEntity[], X> = X extends string ? LocalOf<Named<PushableEntity<E>, X>> : LocalOf<X>;
/**
 * The records of the members of `X` (one `(record) => void` per member), as a record that fits
 * every member: their intersection. An entity given as a union (`entity: 'contacts' |
 * 'accounts'`) may be either at run time, so a record of one of them only (an `Account` pushed
 * as a contact) must not compile. For a single name or object it is that entity's record.
 */
type EveryOf<F> = [F] extends [(record: infer All) => void] ? All : never;

/** Drops the inbound-only entities of a union (an entity of unknown direction stays). */
type OutboundOnly<X> = X extends { readonly direction: 'inbound' } ? never : X;
/** The entities of a union that the name `N` can designate (a `string`-named one: any name). */
type Named<X, N extends string> = X extends { readonly name: infer Name } ? (N extends Name ? X : never) : never;
/** The local record type of an entity (`__local` is a phantom, never set at run time). */
type LocalOf<X> = X extends { readonly __local?: infer L } ? L : unknown;
/**
 * What `push` requires of an entity object `X`: itself, unless it is inbound-only (then an
 * outbound direction, so that the compiler reports the direction as the mismatch).
 */
type PushableObject<X> = X extends { readonly direction: 'inbound' } ? Omit<X, 'direction'> & { readonly direction: 'outbound' | 'both' } : X;

export type { DeadLetter };

/**
 * `mno.sync`. `E` is the connector's entities (`createMaestrano` infers them from
 * `defineConnector`), which types the entity names and records `push` and `pushMany` take;
 * the default (`SyncApi` without arguments) takes any name and any record, as the types
 * cannot know the connector.
 */
export interface SyncApi<E extends readonly AnyEntity[] = readonly AnyEntity[]> {
  /**
   * Maps and upserts one local record to Connec! (our id in the `id` array). `entity` is the
   * name of one of the connector's outbound entities (`'outbound'` or `'both'`), or the entity
   * object itself (the one given to `defineConnector`); `record` is that entity's local record.
   * An unknown name, an inbound-only entity or a record of another type does not compile (at
   * run time, for JavaScript callers, the first two throw `SyncError`, as does a `signal` already
   * aborted, before anything is sent or recorded; one aborted before a batch request leaves
   * rejects with `SyncError` too, recording no push failure for what was not sent). An entity declared with
   * explicit type arguments (`defineEntity<'people', Contact>`) has a `string` name type: any
   * name then designates it, and only its record is checked.
   */
  push<const X extends PushableEntityName<E> | PushableEntity<E>>(args: {
    tenant: string;
    groupId: string;
    entity: PushableObject<X>;
    record: PushRecord<E, X>;
    signal?: AbortSignal;
  }): Promise<PushItemResult>;
  /** Batch form: one Connec! batch call per `sync.batchSize` records (default 50); only failed ops are retried by the next push. */
  pushMany<const X extends PushableEntityName<E> | PushableEntity<E>>(args: {
    tenant: string;
    groupId: string;
    entity: PushableObject<X>;
    records: readonly PushRecord<E, X>[];
    signal?: AbortSignal;
  }): Promise<PushItemResult[]>;
  /**
   * Runs (or resumes) the initial import of a group now, in this process. The durable way is
   * the `sync.import` job (enqueued once per new company); both share checkpoints and a lock.
   * Throws `ImportBusyError` while another run holds the lock, `SyncDisabledError` (nothing
   * ran) while the group's sync is switched off, and `ImportFailedError` (with the partial
   * report) when a run stops on an infrastructure failure.
   */
  importGroup(args: {
    tenant: string;
    groupId: string;
    full?: boolean;
    signal?: AbortSignal;
    onProgress?: (progress: { entity: string; done: number; total: number | null }) => void;
  }): Promise<SyncReport>;
  /**
   * Drops a cancelled group's sync state now: every id map and cursor of the group (what the
   * `sync.purge` job does after the group-deletion webhook). Throws `GroupPurgeRefusedError`
   * for an active or unknown group and `ImportBusyError` while an import of it runs. Idempotent.
   * `signal` stops it between two statements (`SyncError`); what it removed stays removed, and
   * calling it again finishes the rest.
   */
  purgeGroup(args: { tenant: string; groupId: string; signal?: AbortSignal }): Promise<GroupPurgeResult>;
  /**
   * Changes a group's settings (the per-entity switches `sync.entities`, `sync.importSince`,
   * keys of your own): `update` gets a copy of the current settings and returns the new ones,
   * which are stored under the group's settings lock, the one the platform's `toggle_sync`
   * takes. Prefer it to reading the group and calling `storage.groups.update` yourself: that
   * read-modify-write can undo a toggle made meanwhile, or be undone by it. Returns the updated
   * group. Throws `SyncError` for an unknown or cancelled group, or when the lock stayed taken
   * for 10 s (retry).
   */
  updateGroupSettings(args: { tenant: string; groupId: string; update: (settings: JsonObject) => JsonObject | Promise<JsonObject> }): Promise<GroupRecord>;
  /**
   * Reads what Connec! changed (a poll, under the conflict policies), then pushes every local
   * record (`local.list` of each outbound entity) that changed since its last push; the others
   * are skipped as unchanged. Returns the push pass's report. Pushes made while the group's sync or an
   * entity's outbound switch was off were answered `skipped`: switching the sync back on with
   * `toggle_sync` runs this as a job by itself; call it after switching an entity's outbound
   * direction back on yourself. Throws as `importGroup` does.
   */
  pushChanged(args: { tenant: string; groupId: string; signal?: AbortSignal }): Promise<SyncReport>;
  /**
   * Enqueues a durable import job, deduplicated per group unless `full`: once the group's import
   * job exists, finished or not, it returns that job with `created: false` and queues nothing
   * (until `purgeCompleted` removes it). Use `full: true` or `importGroup` to run it again:
   * `full: true` queues a full import unless one queued earlier has not started yet (that one
   * is returned, `created: false`: it reads everything when it runs).
   * Throws `SyncError`, enqueuing nothing, for a tenant not in the tenant list.
   */
  enqueueImport(args: { tenant: string; groupId: string; full?: boolean }): Promise<{ jobId: string; created: boolean }>;
  /**
   * Polls a group now: applies what changed in Connec! since the last poll (or since the
   * initial import began), with the `pollOverlapMs` re-read. Shares the import lock. Throws as
   * `importGroup` does (`SyncDisabledError` while the group's sync is switched off).
   */
  pollGroup(args: { tenant: string; groupId: string; signal?: AbortSignal }): Promise<SyncReport>;
  /**
   * Enqueues a durable poll of a group at `runAt` (default now), one per group and time slot: a
   * poll of that slot still pending or running is returned (`created: false`); one that has
   * already run does not stop this one. Throws `SyncError`, enqueuing nothing, for an unknown
   * tenant or a `runAt` that is no valid Date.
   */
  enqueuePoll(args: { tenant: string; groupId: string; runAt?: Date }): Promise<{ jobId: string; created: boolean }>;
  /**
   * Schedules the next poll (within the next `pollIntervalMs` slot) of every active group whose
   * initial import has run, in every tenant or in `tenant`. Polling chains start after an
   * import; run this once after turning `pollIntervalMs` on for a deployment that already has
   * groups. Idempotent: a group whose next poll is already due in that slot gets no second
   * one, and two chains of one group merge at their next run. Throws `SyncError` without
   * `pollIntervalMs`.
   */
  schedulePolls(args?: { tenant?: string }): Promise<{ scheduled: number; alreadyScheduled: number; notImported: number }>;
  /**
   * Dead-lettered sync jobs (records, imports, polls and purges that failed every attempt), newest
   * first: at most `limit` (default 100), of one marketplace (`tenant`) or group (`groupId`) when
   * given. Throws `SyncError` for a filter that is not an object, a `limit` that is not a
   * positive integer, or a `tenant` or `groupId` that is not a string.
   */
  deadLetters(filter?: { tenant?: string; groupId?: string; limit?: number }): Promise<DeadLetter[]>;
  /**
   * Puts a sync dead letter (one `deadLetters()` lists) back in the inbox (after fixing its
   * cause); false, and nothing changes, when there is no dead sync job with that id (a dead job of
   * another type, billing or company set-up, is left alone: `mno.worker.retryDeadLetter` covers
   * every type).
   */
  retryDeadLetter(jobId: string): Promise<boolean>;
  /**
   * Deletes a sync dead letter a person dismissed (a record that will never map): it leaves
   * `deadLetters()`, and its dedupe key is free again. False, and nothing changes, when there is
   * no dead sync job with that id (retried or running meanwhile, or of another type:
   * `mno.worker.discardDeadLetter` covers every type).
   */
  discardDeadLetter(jobId: string): Promise<boolean>;
  /** A snapshot of this process's counters. */
  counters(): SyncCounters;
  /** Subscribes to sync events; returns the unsubscribe function. */
  on(listener: (event: SyncEvent) => void): () => void;
}

export interface SyncModule extends ModuleContribution {
  api: SyncApi;
  /** The typed Connec! client scope of a tenant's group. */
  connec(tenant: string, groupId: string): ConnecGroup;
  engine: SyncEngine;
}

function isConnector(value: unknown): value is ConnectorDefinition {
  return (
    isObject(value) &&
    Array.isArray(value.entities) &&
    Array.isArray(value.importOrder) &&
    typeof value.entity === 'function' &&
    typeof value.forCollection === 'function'
  );
}

const OPTION_KEYS = new Set([
  'pageSize',
  'batchSize',
  'importConcurrency',
  'importPagesInFlight',
  'lockTtlMs',
  'importLockTtlMs',
  'parkRetryMs',
  'maxAttempts',
  'fetchMissingReferences',
  'connecPort',
  'onEvent',
  'importOrderBy',
  'pollIntervalMs',
  'pollOverlapMs',
]);

/** Groups `schedulePolls` reads (and whose polls it enqueues) at once. */
const SCHEDULE_POLLS_PAGE = 500;

/** The job types of the sync module: those `mno.sync.deadLetters()` lists and its `retryDeadLetter`/`discardDeadLetter` act on. */
const SYNC_JOB_TYPES: readonly string[] = [JobTypes.connecRecord, JobTypes.syncImport, JobTypes.syncPoll, JobTypes.syncPurge];

/** Validates the `sync` config section (typed `unknown` at the top level). */
export function parseSyncConfig(value: unknown): SyncModuleConfig {
  if (value === undefined) return {};
  if (!isObject(value)) throw new ConfigError('sync must be an object', { issues: [{ path: 'sync', message: 'expected an object' }] });
  const issues: { path: string; message: string }[] = [];
  for (const key of Object.keys(value)) if (!OPTION_KEYS.has(key)) issues.push({ path: `sync.${key}`, message: 'unknown key' });
  const positive = (key: string, min: number, max: number) => {
    const v = value[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      issues.push({ path: `sync.${key}`, message: `expected an integer from ${min} to ${max}` });
    }
  };
  positive('pageSize', 1, 1000);
  positive('batchSize', 1, 1000);
  positive('importConcurrency', 1, 64);
  positive('importPagesInFlight', 1, 8);
  positive('lockTtlMs', 1000, 3_600_000);
  positive('importLockTtlMs', 1000, 3_600_000);
  positive('parkRetryMs', 1, 3_600_000);
  positive('maxAttempts', 1, 1000);
  positive('pollIntervalMs', 1000, 7 * 24 * 3_600_000);
  positive('pollOverlapMs', 0, 24 * 3_600_000);
  for (const key of ['connecPort', 'onEvent'] as const) {
    if (value[key] !== undefined && typeof value[key] !== 'function') issues.push({ path: `sync.${key}`, message: 'expected a function' });
  }
  if (value.fetchMissingReferences !== undefined && typeof value.fetchMissingReferences !== 'boolean') {
    issues.push({ path: 'sync.fetchMissingReferences', message: 'expected a boolean' });
  }
  if (value.importOrderBy !== undefined && typeof value.importOrderBy !== 'string') {
    issues.push({ path: 'sync.importOrderBy', message: 'expected a string' });
  } else if (typeof value.importOrderBy === 'string' && /\bupdated_at\b/i.test(value.importOrderBy)) {
    // Import pages go by offset ($skip), and the import's own link-backs move `updated_at`: a
    // linked record jumps to the end of that order, and the offsets then skip unread ones.
    issues.push({
      path: 'sync.importOrderBy',
      message: 'must not order by updated_at: the import changes it (link-backs) while it pages by offset, so records would be skipped; use a field that does not change, e.g. created_at ASC',
    });
  }
  if (issues.length > 0) {
    throw new ConfigError(`Invalid sync options: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
  }
  return value as SyncModuleConfig;
}

/** `base` ms on the first attempt, doubling with each further one, never more than `cap`. */
function doubling(base: number, attempt: number, cap: number): number {
  return Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
}

/** Why the worker aborted a job's signal, or null when it did not. */
type Interruption = JobInterruptedError['kind'] | null;

function interruption(signal: AbortSignal): Interruption {
  return signal.aborted && signal.reason instanceof JobInterruptedError ? signal.reason.kind : null;
}

function readRecordPayload(job: JobRecord): RecordJobPayload {
  const p = job.payload;
  if (!isObject(p) || typeof p.entity !== 'string' || typeof p.collection !== 'string') {
    throw new SyncError(`connec.record job ${job.id} has a malformed payload`);
  }
  const out: RecordJobPayload = { entity: p.entity, collection: p.collection };
  if (isObject(p.record)) out.record = p.record;
  if (typeof p.fetchId === 'string') out.fetchId = p.fetchId;
  if (p.refresh === true) out.refresh = true;
  if (p.full === true) out.full = true;
  const linkSubIds = readSubIdLink(p.linkSubIds);
  if (linkSubIds) out.linkSubIds = linkSubIds;
  return out;
}

/**
 * A retry of a job of a record in the plain id format (`id` a Connec! id string) that carries
 * no `linkSubIds`: its earlier attempt may have applied the record and then failed to link it
 * back. Such a retry is told by `linkSubIds` (its content hash, no sub-record ids), but jobs an
 * earlier release stored never carry it (that release linked plain-id records on every
 * notification), nor does a job whose replacement could not be stored: read without it, the
 * retry skipped the applied record as a replay and the link-back was never sent. At worst one
 * more link-back of a record linked already, whose echo is skipped as unchanged.
 */
function owedLinkBack(job: JobRecord, payload: RecordJobPayload): RecordJobPayload {
  if (job.attempts <= 1 || payload.linkSubIds !== undefined || !payload.record || typeof payload.record.id !== 'string') return payload;
  return { ...payload, linkSubIds: { hash: contentHash(payload.record), ids: {} } };
}

/**
 * Refuses group settings the sync would silently misread: a `sync.importSince` that is no
 * timestamp (no record would be held back), switches that are not booleans (ignored), and an
 * entity name the connector does not define (a typo switches nothing off). A name already in the
 * settings is kept whatever it is: an entity removed from the connector must not block updates.
 * Nor does a value stored as it is now (written before settings were checked): only what the
 * update changes is checked.
 */
function checkSyncSettings(next: unknown, previous: JsonObject, entities: readonly string[]): void {
  if (!isObject(next)) return;
  const issues: { path: string; message: string }[] = [];
  const sync = next.sync;
  const stored = isObject(previous.sync) ? previous.sync : {};
  // A value stored as it is now (by a release that did not check settings, or by hand) is kept
  // whatever it is: refusing it would block every other change of the group's settings.
  const kept = (value: unknown, before: unknown) => value !== undefined && before !== undefined && canonicalJson(value) === canonicalJson(before);
  if (sync !== undefined && sync !== null) {
    if (!isObject(sync)) issues.push({ path: 'sync', message: 'must be an object' });
    else {
      if (sync.enabled !== undefined && typeof sync.enabled !== 'boolean' && !kept(sync.enabled, stored.enabled)) issues.push({ path: 'sync.enabled', message: 'must be true or false' });
      const since = sync.importSince;
      if (since !== undefined && since !== null && (typeof since !== 'string' || parseTimestamp(since) === null) && !kept(since, stored.importSince)) {
        issues.push({ path: 'sync.importSince', message: 'must be an ISO-8601 timestamp such as 2016-07-28T00:00:00Z' });
      }
      if (sync.entities !== undefined && sync.entities !== null) {
        if (!isObject(sync.entities)) issues.push({ path: 'sync.entities', message: 'must be an object keyed by entity name' });
        else {
          const before = isObject(previous.sync) && isObject(previous.sync.entities) ? previous.sync.entities : {};
          for (const [name, value] of Object.entries(sync.entities)) {
            const path = `sync.entities.${name}`;
            if (!entities.includes(name) && !Object.hasOwn(before, name)) {
              issues.push({ path, message: `is not an entity of the connector (${entities.join(', ')})` });
              continue;
            }
            const was = before[name];
            if (!isObject(value)) {
              if (!kept(value, was)) issues.push({ path, message: 'must be an object { inbound?, outbound? }' });
              continue;
            }
            for (const direction of ['inbound', 'outbound'] as const) {
              if (value[direction] !== undefined && typeof value[direction] !== 'boolean' && !kept(value[direction], isObject(was) ? was[direction] : undefined)) {
                issues.push({ path: `${path}.${direction}`, message: 'must be true or false' });
              }
            }
          }
        }
      }
    }
  }
  if (issues.length > 0) {
    throw new PayloadValidationError(`Invalid group settings: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { issues });
  }
}

/**
 * Builds the sync module from the runtime and the validated `connector` and `sync` config
 * sections. Without a connector the module still serves the notification route (answering
 * 2xx and storing nothing) and `mno.connec`, so apps without entities keep working.
 */
export function createSyncModule(runtime: Runtime, config: { connector?: unknown; sync?: unknown }): SyncModule {
  const connector = config.connector;
  if (connector !== undefined && !isConnector(connector)) {
    throw new ConfigError('connector must be the result of defineConnector(...)', {
      issues: [{ path: 'connector', message: 'expected defineConnector(...)' }],
    });
  }
  const options = parseSyncConfig(config.sync);
  const clients = new WeakMap<Tenant, ConnecClient>();
  const clientFor = (tenant: Tenant): ConnecClient => {
    let client = clients.get(tenant);
    if (!client) {
      client = connecClientFor(tenant, runtime.fetch);
      clients.set(tenant, client);
    }
    return client;
  };
  const ports = new WeakMap<Tenant, ConnecPort>();
  const portFor =
    options.connecPort ??
    ((tenant: Tenant) => {
      let port = ports.get(tenant);
      if (!port) {
        port = connecPort(clientFor(tenant), options.importOrderBy ? { orderBy: options.importOrderBy } : {});
        ports.set(tenant, port);
      }
      return port;
    });
  const listeners = new Set<(event: SyncEvent) => void>();
  const emit = (event: SyncEvent) => {
    // Observability never breaks syncing: a throwing or rejecting listener is ignored.
    for (const listener of [options.onEvent, ...listeners]) callObserver(listener, [event]);
  };
  const definition: ConnectorDefinition =
    connector ??
    Object.freeze({
      entities: [],
      importOrder: [],
      identity: { provider: ({ apiId }: { apiId: string }) => apiId, realm: ({ groupId }: { groupId: string }) => groupId },
      entity: () => undefined,
      forCollection: () => [],
    });
  const engine = new SyncEngine({
    storage: runtime.storage,
    tenants: runtime.tenants,
    connector: definition,
    clock: runtime.clock,
    logger: syncLogger(runtime.logger),
    instanceId: runtime.instanceId,
    portFor,
    options: resolveSyncOptions(options),
    emit,
  });
  const counters = engine.counters;
  const logger = engine.logger;

  // --- the notification route ------------------------------------------------------------
  const handled = (collection: string): boolean => definition.forCollection(collection).some((e) => e.inbound);
  const connecNotification = async ({ request, tenant }: HandlerArgs): Promise<Response> => {
    if (!verifyTenantBasicAuth(request, tenant)) return invalidCredentialsResponse();
    if (request.method !== 'POST') return json(405, { error: 'method_not_allowed' });
    let parsed: ReturnType<typeof parseNotification>;
    // Records that fail on their own (no group, not matching their schema): Connec! never
    // delivers a refused body again, so the valid records beside them are stored, and each of
    // them is read again from Connec! by id when it has one (retried, then dead-lettered).
    const invalid: InvalidNotificationRecord[] = [];
    try {
      // Only the collections the connector applies are validated: a schema change in one it
      // does not sync must not make Connec! drop (a 4xx is never retried) the records it does.
      parsed = parseNotification(await request.text(), { collections: handled, onInvalidRecord: (bad) => invalid.push(bad) });
    } catch (error) {
      if (error instanceof PayloadValidationError) {
        return json(400, { error: 'invalid_notification', message: error.message, issues: error.issues.slice(0, 50) });
      }
      throw error;
    }
    // Records that cannot be stored fail on their own too, like the invalid ones above: nested
    // absurdly deep (hashed and pruned recursively later: a stack overflow), text PostgreSQL
    // cannot store (NUL, unpaired surrogate: a 503 Connec! would retry forever), or an id too
    // long for a storage key (PostgreSQL refuses index rows over 2,704 bytes). A body of
    // nothing else is refused whole (a 400).
    const storable: typeof parsed.entries = [];
    // Each entry's position in its key's array (for the issue path): the positions the invalid
    // records above took are skipped.
    const taken = new Set(invalid.map((bad) => `${bad.key}\u0000${bad.index}`));
    const next = new Map<string, number>();
    for (const entry of parsed.entries) {
      let index = next.get(entry.key) ?? 0;
      while (taken.has(`${entry.key}\u0000${index}`)) index++;
      next.set(entry.key, index + 1);
      const problem = isStorableText(entry.groupId) ? recordProblem(entry.record, MAX_RECORD_DEPTH) : 'nul';
      const long = problem === null ? overlongId(entry.groupId, entry.record, definition.forCollection(entry.collection)) : null;
      if (problem === null && long === null) {
        storable.push(entry);
        continue;
      }
      const path = long === null ? `${entry.collection}/${index}` : `${entry.collection}/${index}/${long}`;
      const message = problem !== null ? `record ${recordProblemMessage(problem)}` : `${long} is longer than ${MAX_ID_LENGTH} characters`;
      invalid.push({ collection: entry.collection, key: entry.key, index, record: entry.record, issues: [{ path, message }], message: `Invalid Connec! notification: ${message}` });
    }
    const jobs: JobInput[] = [];
    // How many jobs each stored record became (one per inbound entity of its collection: two
    // filtered entities on `people` give two), so that the answer and the counters count records.
    const jobsPerRecord: number[] = [];
    // Records of collections no inbound entity maps: received, not stored.
    const unhandled = Object.values(parsed.ignoredRecords).reduce((sum, n) => sum + n, 0);
    counters.received += unhandled;
    let ignored = unhandled;
    for (const entry of storable) {
      counters.received++;
      const entities = definition.forCollection(entry.collection).filter((e) => e.inbound);
      const record: ConnecRecord = entry.record;
      const cid = connecIdOf(record.id);
      if (entities.length === 0 || cid === null) {
        ignored++;
        continue;
      }
      for (const entity of entities) {
        jobs.push(
          engine.recordJob(tenant.name, entry.groupId, entity, { entity: entity.name, collection: entity.connec, record }, cid),
        );
      }
      jobsPerRecord.push(entities.length);
    }
    // Each invalid record with a usable group and Connec! id: one re-read per inbound entity
    // (`rereadJob`: Connec!'s current version, at most once a minute however often delivered).
    let reread = 0;
    for (const bad of invalid) {
      counters.received++;
      const raw = isObject(bad.record) ? bad.record : null;
      const groupId = typeof raw?.group_id === 'string' ? raw.group_id : '';
      const cid = raw ? connecIdOf(raw.id) : null;
      if (!usableId(groupId) || !usableId(cid)) continue;
      for (const entity of definition.forCollection(bad.collection).filter((e) => e.inbound)) jobs.push(engine.rereadJob(tenant.name, groupId, entity, cid, false));
      reread++;
    }
    if (invalid.length > 0) {
      const issues = invalid.flatMap((bad) => bad.issues).slice(0, 50);
      // Nothing else in the body: bad input, refused whole (nothing stored).
      if (jobs.length === 0) {
        return json(400, { error: 'invalid_notification', message: invalid.length === 1 ? (invalid[0] as InvalidNotificationRecord).message : `${invalid.length} invalid records: ${invalid.slice(0, 5).map((bad) => bad.message).join('; ')}`, issues });
      }
      logger.warn('sync: notification records that do not match their schema or cannot be stored; read again from Connec! by id', {
        tenant: tenant.name,
        invalid: invalid.length,
        reread,
        issues: issues.slice(0, 10),
      });
    }
    let results: { created: boolean }[] = [];
    try {
      if (jobs.length > 0) results = await runtime.storage.jobs.enqueueMany(jobs);
    } catch (error) {
      logger.error('sync: could not store notification records; asking Connec! to retry', {
        tenant: tenant.name,
        records: jobs.length,
        error: errorMessage(error),
      });
      return json(503, { error: 'storage_unavailable', message: 'Notification not stored; retry later' });
    }
    // A record is stored when any of its jobs is new, a duplicate when all of them were already there.
    let created = 0;
    let offset = 0;
    for (const count of jobsPerRecord) {
      if (results.slice(offset, offset + count).some((r) => r.created)) created++;
      offset += count;
    }
    const duplicates = jobsPerRecord.length - created;
    counters.accepted += created;
    counters.duplicates += duplicates;
    logger.debug('sync: notification stored', { tenant: tenant.name, stored: created, duplicates, ignored, jobs: results.filter((r) => r.created).length });
    const answer = { received: storable.length + unhandled + invalid.length, stored: created, duplicates, ignored };
    if (invalid.length === 0) return json(200, answer);
    return json(200, { ...answer, invalid: invalid.length, reread, issues: invalid.flatMap((bad) => bad.issues).slice(0, 50) });
  };

  // --- job handlers ---------------------------------------------------------------------------
  /**
   * Counts a failed record attempt and reports it (`record.failed`, a warning, the id map's
   * `lastError`); `last` when the worker dead-letters the job after this attempt. `error`: what
   * the attempt threw, which decides the code the id map records (`inboundFailureCode`).
   */
  const reportRecordFailure = async (job: JobRecord, payload: RecordJobPayload | null, raw: { code: string; message: string }, last: boolean, error?: unknown): Promise<void> => {
    // Emitted and stored (the id map's lastError) as the logger would write it: no credentials.
    const info = { code: raw.code, message: scrubErrorText(raw.message) };
    counters.failed++;
    if (last) counters.deadLettered++;
    const entity = payload?.entity ?? 'unknown';
    const connecId = payload?.record ? connecIdOf(payload.record.id) : (payload?.fetchId ?? null);
    if (job.tenant !== null && job.groupId !== null) {
      emit({ type: 'record.failed', tenant: job.tenant, groupId: job.groupId, entity, connecId, error: info, deadLettered: last });
      logger.warn('sync: record failed', { tenant: job.tenant, groupId: job.groupId, entity, connecId, attempt: job.attempts, deadLettered: last, code: info.code, error: info.message });
      if (connecId !== null) {
        await runtime.storage.idMaps
          .update({ tenant: job.tenant, groupId: job.groupId, entity }, { connecId }, { lastError: { code: inboundFailureCode(info.code, error), message: info.message.slice(0, 500), at: runtime.clock() } })
          .catch(() => null);
      }
    }
  };
  /**
   * A deferral is an attempt too: the worker dead-letters a job deferred on its last attempt
   * (as it does a failed one), so that record is reported as failed and dead-lettered.
   */
  const deferRecordJob = async (job: JobRecord, payload: RecordJobPayload | null, deferral: JobDeferral, interrupted: Interruption): Promise<JobDeferral> => {
    // A deferral is settled even after a shutdown (only failures are given back uncounted);
    // a job whose lease was lost belongs to another worker now.
    if (job.attempts >= job.maxAttempts && interrupted !== 'lease_lost') {
      const message = `gave up after ${job.attempts} attempts: ${deferral.reason}`;
      await reportRecordFailure(job, payload, { code: deferral.waitKey !== null ? 'parked' : 'busy', message }, true);
    }
    return deferral;
  };
  /**
   * Turns a record job's result into what the worker expects: nothing (done), or what to throw.
   * A failure after the worker's shutdown or a lost lease is not reported: the worker gives the
   * job back uncounted, or another worker owns it now. One after `jobTimeoutMs` is a failure.
   */
  const settleRecordJob = async (job: JobRecord, payload: RecordJobPayload | null, result: RecordJobResult, interrupted: Interruption): Promise<unknown | null> => {
    if ('done' in result) return null;
    if ('park' in result) {
      const delay = doubling(engine.options.parkRetryMs, job.attempts, 600_000);
      const deferral = new JobDeferral(result.reason, { waitKey: result.park, retryInMs: delay, ...(result.stillWaiting ? { stillWaiting: result.stillWaiting } : {}) });
      return deferRecordJob(job, payload, deferral, interrupted);
    }
    if ('retryInMs' in result) {
      // Busy record: another worker holds its lock, or a dead one did (SIGKILL) until the lock
      // expires. Every deferral is an attempt, so back off until past the lock's TTL rather
      // than dead-lettering the record while a crashed holder's lock is still live.
      const delay = doubling(result.retryInMs, job.attempts, Math.max(result.retryInMs, engine.options.lockTtlMs));
      // A retry that must carry what this job's payload does not (a created record's sub-record
      // ids): a replacement, due after the same delay. Not stored: deferred as it is.
      if (result.retryWith && (await replaceRecordJob(job, result.retryWith, null, delay))) return null;
      return deferRecordJob(job, payload, new JobDeferral(result.reason, { retryInMs: delay }), interrupted);
    }
    const error = result.error;
    const info = error instanceof Error ? { code: 'code' in error && typeof error.code === 'string' ? error.code : error.name, message: error.message } : { code: 'error', message: thrownText(error) };
    if (result.retryWith && (await replaceRecordJob(job, result.retryWith, error))) {
      // Retried by the replacement (this failure counted, not a dead letter): this job is done.
      if (interrupted !== 'shutdown' && interrupted !== 'lease_lost') await reportRecordFailure(job, payload, info, false, error);
      return null;
    }
    if (interrupted !== 'shutdown' && interrupted !== 'lease_lost') await reportRecordFailure(job, payload, info, job.attempts >= job.maxAttempts, error);
    return error;
  };
  /**
   * Enqueues the retry of a record job with another payload (a failed link-back's sub-record
   * ids, which the job's own payload cannot get): same record, same ordering key, due after
   * the delay a parked record waits, or the `Retry-After` Connec! sent with the failure when
   * longer (or after `delayMs`, a busy record's). False when it could not be stored (then the
   * job itself is retried, as before).
   */
  const replaceRecordJob = async (job: JobRecord, payload: RecordJobPayload, failure: unknown, delayMs?: number): Promise<boolean> => {
    const entity = definition.entity(payload.entity);
    const connecId = payload.record ? connecIdOf(payload.record.id) : null;
    if (!entity || connecId === null || job.tenant === null || job.groupId === null) return false;
    const input = engine.recordJob(job.tenant, job.groupId, entity, payload, connecId);
    const wait = delayMs ?? Math.max(doubling(engine.options.parkRetryMs, job.attempts, 600_000), requestedRetryAfterMs(failure) ?? 0);
    const runAt = new Date(runtime.clock().getTime() + wait);
    try {
      const [stored] = await runtime.storage.jobs.enqueueMany([{ ...input, runAt }]);
      return stored?.created === true;
    } catch (error) {
      logger.warn('sync: could not store the retry of a failed link-back; retrying the record job as it is', {
        tenant: job.tenant,
        groupId: job.groupId,
        entity: payload.entity,
        connecId,
        error: errorMessage(error),
      });
      return false;
    }
  };

  // Inbox records claimed together are applied together: a constant number of storage round
  // trips and one Connec! link-back call per batch instead of per record. A job claimed alone
  // is a batch of one.
  const applyRecordJobs = async (jobs: JobRecord[], signal: AbortSignal): Promise<unknown[]> => {
    const payloads = jobs.map((job): RecordJobPayload | { error: unknown } => {
      try {
        if (job.tenant === null || job.groupId === null) throw new SyncError(`connec.record job ${job.id} has no tenant/group`);
        const payload = owedLinkBack(job, readRecordPayload(job));
        return job.attempts > 1 ? { ...payload, retried: true } : payload;
      } catch (error) {
        return { error };
      }
    });
    const items = jobs.flatMap((job, k) => {
      const payload = payloads[k];
      return payload && !('error' in payload) && job.tenant !== null && job.groupId !== null ? [{ k, tenant: job.tenant, groupId: job.groupId, payload }] : [];
    });
    const processed = await engine.processRecordJobs(items, signal);
    const results: RecordJobResult[] = payloads.map((p) => (p && 'error' in p ? { error: p.error } : { done: true }));
    items.forEach((item, n) => {
      results[item.k] = processed[n] ?? { done: true };
    });
    return Promise.all(
      jobs.map((job, k) => {
        const payload = payloads[k];
        return settleRecordJob(job, payload && !('error' in payload) ? payload : null, results[k] ?? { done: true }, interruption(signal));
      }),
    );
  };
  const recordHandler: JobHandler = async (job, ctx) => {
    const [outcome] = await applyRecordJobs([job], ctx.signal);
    if (outcome !== null && outcome !== undefined) throw outcome;
  };
  recordHandler.batch = (jobs, ctx) => applyRecordJobs(jobs, ctx.signal);
  // A record whose runs crashed the process past its attempts is dead-lettered unrun: report it
  // like any record that died (`record.failed`, counters, the id map's lastError).
  recordHandler.poisoned = async (job) => {
    let payload: RecordJobPayload | null = null;
    try {
      payload = readRecordPayload(job);
    } catch {
      // An unreadable payload is still reported, as entity "unknown".
    }
    await reportRecordFailure(job, payload, { code: POISONED, message: 'earlier attempts never finished (worker crash or lease lost)' }, true);
  };

  const pollOverlapMs = options.pollOverlapMs ?? 60_000;
  /** One poll job per group and time slot: a replayed or doubled schedule never polls twice. */
  const pollJob = (tenant: string, groupId: string, runAt: Date): JobInput => {
    const slot = options.pollIntervalMs ? Math.floor(runAt.getTime() / options.pollIntervalMs) : runAt.getTime();
    const key = `${JobTypes.syncPoll}:${tenant}:${keyPart(groupId)}`;
    return {
      type: JobTypes.syncPoll,
      tenant,
      groupId,
      payload: { tenant, groupId },
      // No ordering key: a poll scheduled for later must not hold back one due now; the
      // group's import lock keeps two runs apart.
      dedupeKey: `${key}:${slot}`,
      runAt,
    };
  };
  /** The group's own point of every poll interval (a hash of the group: a deployment's groups spread over the interval). */
  const pollPhase = (tenant: string, groupId: string, interval: number): number =>
    createHash('sha256').update(`${tenant}:${groupId}`).digest().readUIntBE(0, 6) % interval;
  /**
   * When a group's next poll runs: at the group's own point of the interval, the first one at
   * least half an interval from now. A chain on time (or late by less than half an interval)
   * stays one interval apart; one that ran late (an outage, a backlog, chains started together
   * by imports) goes back to its own point instead of polling with the others for good. Never
   * in the interval of the poll that is running (`runningAt`): that poll holds its dedupe key.
   */
  const nextPollAt = (tenant: string, groupId: string, interval: number, runningAt?: Date): Date => {
    const earliest = runtime.clock().getTime() + interval / 2;
    const phase = pollPhase(tenant, groupId, interval);
    let at = phase + Math.ceil((earliest - phase) / interval) * interval;
    if (runningAt !== undefined && Math.floor(at / interval) === Math.floor(runningAt.getTime() / interval)) at += interval;
    return new Date(at);
  };
  /** `running`: the poll job that is scheduling its successor (none after an import). */
  const scheduleNextPoll = async (tenant: string, groupId: string, running?: JobRecord) => {
    if (!options.pollIntervalMs) return;
    // A cancelled or unknown group ends the chain; its tenant missing from the tenant list for a
    // while (a refresh without it) does not.
    const group = await runtime.storage.groups.get(tenant, groupId);
    if (group?.status !== 'active') return;
    await runtime.storage.jobs.enqueue(pollJob(tenant, groupId, nextPollAt(tenant, groupId, options.pollIntervalMs, running?.runAt)));
  };

  /**
   * When to retry an import or poll of a group another run holds: 5 s, doubling per attempt, up
   * to the import lock's TTL. A worker killed mid-import leaves its lock until that TTL; retrying
   * every 5 s spent every attempt before it expired and dead-lettered the company's only import.
   */
  const busyRetryMs = (job: JobRecord) => doubling(5_000, job.attempts, Math.max(5_000, engine.options.importLockTtlMs));

  /** An import or poll that stopped because its group was cancelled while it ran. */
  const cancelledMidway = (error: unknown) => error instanceof ImportFailedError && error.cause instanceof GroupCancelledError;

  /** How often an import deferred while its group's sync is off looks again (toggle_sync wakes it at once). */
  const SYNC_OFF_RETRY_MS = 60 * 60 * 1000;

  const importHandler: JobHandler = async (job, ctx) => {
    if (job.tenant === null || job.groupId === null) throw new SyncError(`sync.import job ${job.id} has no tenant/group`);
    const full = isObject(job.payload) && job.payload.full === true;
    // A catch-up of the app's changes (queued when the sync is switched back on).
    const outboundOnly = isObject(job.payload) && job.payload.outbound === true;
    // Its tenant missing from the tenant list (a refresh without it): wait for it to come back.
    if (!runtime.tenants.get(job.tenant)) {
      throw new JobDeferral(`tenant ${job.tenant} is not in the current tenant list`, { retryInMs: TENANT_MISSING_RETRY_MS });
    }
    // A company whose first login failed to record its group: wait for a login to complete it.
    const group = await runtime.storage.groups.get(job.tenant, job.groupId);
    if (!group) {
      throw groupNotReady(runtime.storage, job.tenant, job.groupId, GROUP_READY_RETRY_MS);
    }
    // Cancelled meanwhile (an import that waited while the group's sync was off, say): nothing
    // to import, and no dead letter for a deleted account.
    if (group.status !== 'active') {
      logger.info('sync: import of a cancelled group dropped', { tenant: job.tenant, groupId: job.groupId });
      return;
    }
    try {
      // A catch-up reads what Connec! changed first (a poll, with the conflict policies), so
      // that a newer edit made there meanwhile is weighed, not overwritten by the app's copy.
      if (outboundOnly) await engine.pollGroup(job.tenant, job.groupId, { overlapMs: pollOverlapMs, signal: ctx.signal, heartbeat: ctx.heartbeat, existingCursorsOnly: true });
      // A full import's retry resumes from the checkpoints its earlier attempts wrote (`fullRun`).
      await engine.importGroup(job.tenant, job.groupId, { full, outboundOnly, signal: ctx.signal, heartbeat: ctx.heartbeat, ...(full ? { fullRun: job.id } : {}) });
    } catch (error) {
      if (error instanceof ImportBusyError) throw new JobDeferral(error.message, { retryInMs: busyRetryMs(job) });
      // The group was deleted while the import ran: it stopped before its next page; nothing
      // more to import, and no failure or dead letter for a deleted account.
      if (cancelledMidway(error)) {
        logger.info('sync: import of a group cancelled while it ran stopped', { tenant: job.tenant, groupId: job.groupId });
        return;
      }
      // The group's sync is switched off: the import waits (neither done, which would keep its
      // dedupe key and start the poll chain with nothing imported, nor failed). toggle_sync wakes
      // it; a switch made through storage is seen at the next retry.
      if (error instanceof SyncDisabledError) {
        // A catch-up has nothing to wait for: switching the sync back on enqueues another.
        if (outboundOnly) {
          logger.info('sync: catch-up of a group whose sync is off again ended (the next switch-on enqueues one)', { tenant: job.tenant, groupId: job.groupId });
          return;
        }
        // Switched back on since the run read the settings (toggle_sync's wake found this job
        // still running): try again shortly rather than in an hour.
        const { tenant, groupId } = job;
        const onAgain = (group: GroupRecord | null) =>
          group?.status === 'active' && runtime.tenants.get(tenant)?.connec.enabled === true && groupSyncEnabled(group.settings);
        const now = await runtime.storage.groups.get(tenant, groupId).catch(() => null);
        throw new JobDeferral(error.message, {
          waitKey: syncEnabledWaitKey(tenant, groupId),
          retryInMs: onAgain(now) ? 1_000 : SYNC_OFF_RETRY_MS,
          // Switched on after that read, before the deferral was recorded: woken then.
          stillWaiting: async () => !onAgain(await runtime.storage.groups.get(tenant, groupId)),
        });
      }
      throw error;
    }
    await succeeded(job.tenant, job.groupId);
    await scheduleNextPoll(job.tenant, job.groupId);
  };

  /** For the status endpoint: a run of the group succeeded (never fails the job; not once the group is gone). */
  const succeeded = async (tenant: string, groupId: string) => {
    const unrecorded = (error: unknown) => {
      logger.warn('sync: could not record a successful run for the status endpoint', { tenant, groupId, error: errorMessage(error) });
      return null;
    };
    const group = await runtime.storage.groups.get(tenant, groupId).catch(unrecorded);
    if (group?.status !== 'active') return;
    await recordSyncSuccess(runtime.storage, runtime.clock(), tenant, groupId).catch(unrecorded);
  };

  /**
   * Whether an import of the group (not `full`) has anything left to do: an entity it covers
   * whose checkpoint is not complete. Read before the run (which takes the group's lock): an
   * import that completes the group meanwhile records its own success. Unknown (the group is
   * gone, a failed read): true, the run itself then refuses or fails.
   */
  const importLeft = async (tenant: string, groupId: string): Promise<boolean> => {
    try {
      const scope = await engine.scope(tenant, groupId);
      if (!scope) return true;
      const complete = new Set((await runtime.storage.cursors.list(tenant, groupId)).filter((c) => c.complete).map((c) => `${c.kind}\u0000${c.entity}`));
      const outbound = engine.connector.entities.some((e) => e.outbound && e.list && engine.enabled(scope, e, 'outbound') && !complete.has(`import.outbound\u0000${e.name}`));
      return outbound || engine.connector.importOrder.some((e) => engine.enabled(scope, e, 'inbound') && !complete.has(`import\u0000${e.name}`));
    } catch {
      return true;
    }
  };

  const pollHandler: JobHandler = async (job, ctx) => {
    if (job.tenant === null || job.groupId === null) throw new SyncError(`sync.poll job ${job.id} has no tenant/group`);
    try {
      // A tenant missing from the tenant list (a refresh without it) fails the attempt: the
      // poll is retried, and its last attempt still schedules the next one.
      if (!runtime.tenants.get(job.tenant)) throw new SyncError(`Tenant "${job.tenant}" is not in the current tenant list; the poll is retried`);
      if (!(await engine.scope(job.tenant, job.groupId))) {
        logger.info('sync: poll of an unknown or cancelled group dropped', { tenant: job.tenant, groupId: job.groupId });
        return;
      }
      try {
        await engine.pollGroup(job.tenant, job.groupId, { overlapMs: pollOverlapMs, signal: ctx.signal, heartbeat: ctx.heartbeat });
      } catch (error) {
        // Cancelled while it ran: it stopped, and the chain ends (the group is not active).
        if (cancelledMidway(error)) {
          logger.info('sync: poll of a group cancelled while it ran stopped', { tenant: job.tenant, groupId: job.groupId });
          return;
        }
        // Switched off: nothing read and no success to record; the chain goes on.
        if (!(error instanceof SyncDisabledError)) throw error;
        await scheduleNextPoll(job.tenant, job.groupId, job);
        return;
      }
      await succeeded(job.tenant, job.groupId);
    } catch (error) {
      // The last attempt's failure (or deferral) dead-letters this poll: schedule the next one
      // anyway, so a Connec! outage longer than the retries does not stop polling for good.
      // Not when a shutdown or a lost lease interrupted it (unless deferred): the worker gives the
      // job back uncounted, or another worker runs it. A `jobTimeoutMs` abort is a failure.
      const interrupted = interruption(ctx.signal);
      if (job.attempts >= job.maxAttempts && (error instanceof ImportBusyError || (interrupted !== 'shutdown' && interrupted !== 'lease_lost'))) {
        await scheduleNextPoll(job.tenant, job.groupId, job).catch((scheduleError: unknown) => {
          logger.error('sync: could not schedule the next poll after the last attempt failed', {
            tenant: job.tenant,
            groupId: job.groupId,
            error: scheduleError instanceof Error ? scheduleError.message : String(scheduleError),
          });
        });
      }
      if (error instanceof ImportBusyError) throw new JobDeferral(error.message, { retryInMs: busyRetryMs(job) });
      throw error;
    }
    await scheduleNextPoll(job.tenant, job.groupId, job);
  };

  // A poll whose runs crashed the process past its attempts is dead-lettered unrun: keep the chain.
  pollHandler.poisoned = async (job) => {
    if (job.tenant !== null && job.groupId !== null) await scheduleNextPoll(job.tenant, job.groupId, job);
  };

  // Account deletion (CONNECTORS §F14). Only with a connector is `sync.purge` handled, and its
  // handler is what makes the group-deletion webhook enqueue purges (see createMaestrano).
  const purge = createGroupPurge({
    storage: runtime.storage,
    logger,
    emit,
    instanceId: runtime.instanceId,
    lockTtlMs: engine.options.importLockTtlMs,
    sweepDelayMs: 2 * engine.options.lockTtlMs,
    clock: runtime.clock,
  });

  // --- public API -----------------------------------------------------------------------------
  /** Why a tenant and group have no sync scope, in words an integrator can act on. */
  const noScope = async (tenant: string, groupId: string): Promise<SyncError> => {
    if (!runtime.tenants.get(tenant)) return new SyncError(`Unknown tenant "${tenant}": not one of the marketplaces this app serves`);
    const group = await runtime.storage.groups.get(tenant, groupId);
    if (!group) {
      return new SyncError(`Unknown group "${groupId}" (tenant "${tenant}"): the company is created at its first single sign-on, and none of its users has signed in yet`);
    }
    if (group.status === 'cancelled') {
      return new SyncError(`Group "${groupId}" (tenant "${tenant}") is cancelled: its company was deleted on Maestrano, nothing of it is synchronized`);
    }
    return new SyncError(`Group "${groupId}" (tenant "${tenant}") was being provisioned; retry`);
  };
  const scopeOrThrow = async (tenant: string, groupId: string) => {
    const scope = await engine.scope(tenant, groupId);
    if (!scope) throw await noScope(tenant, groupId);
    return scope;
  };
  const entityOrThrow = (given: string | AnyEntity) => {
    const name = typeof given === 'string' ? given : given.name;
    const entity = definition.entity(name);
    if (!entity) throw new SyncError(`Unknown entity "${name}"`);
    if (typeof given !== 'string' && given !== entity) {
      throw new SyncError(`Entity "${name}" is not the one this connector was defined with: pass the object given to defineConnector, or its name`);
    }
    return entity;
  };

  /** A job enqueued for a tenant not in the list would only wait for it, then be dead-lettered. */
  const knownTenant = (tenant: string, what: string) => {
    if (!runtime.tenants.get(tenant)) throw new SyncError(`Cannot enqueue ${what} for tenant "${tenant}": unknown tenant (nothing was enqueued)`);
  };

  const api: SyncApi = {
    async push({ tenant, groupId, entity, record, signal }) {
      const scope = await scopeOrThrow(tenant, groupId);
      const [result] = await engine.pushRecords(scope, entityOrThrow(entity), [record], signal);
      if (!result) throw new SyncError('push produced no result');
      return result;
    },
    async pushMany({ tenant, groupId, entity, records, signal }) {
      const scope = await scopeOrThrow(tenant, groupId);
      const target = entityOrThrow(entity);
      // From JavaScript: `records` not a list was a TypeError ("records is not iterable").
      if (!Array.isArray(records)) throw new SyncError(`pushMany takes records as an array, not ${records === null ? 'null' : typeof records}`);
      return engine.pushRecords(scope, target, records, signal);
    },
    // A run made by hand is a sync of the group like a job's: its success is noted for the
    // status endpoint, or an earlier dead import or poll would stay the group's ERROR after it.
    // Not a run that had nothing left to do: a completed import is not repeated (without
    // `full`), so the call read nothing from Connec! and pushed nothing, which says nothing of
    // whether the group syncs again (Connec! may still be down).
    async importGroup({ tenant, groupId, full, signal, onProgress }) {
      const runs = full === true || (await importLeft(tenant, groupId));
      const report = await engine.importGroup(tenant, groupId, { full: full ?? false, signal, ...(onProgress ? { onProgress } : {}) });
      if (runs) await succeeded(tenant, groupId);
      return report;
    },
    purgeGroup: (args) => purge.purgeGroup(args),
    async pushChanged({ tenant, groupId, signal }) {
      // What Connec! changed first, under the conflict policies (see the catch-up job).
      // Entities not imported yet are not read: pushing is what was asked, not an import.
      await engine.pollGroup(tenant, groupId, { overlapMs: pollOverlapMs, signal, existingCursorsOnly: true });
      const report = await engine.importGroup(tenant, groupId, { outboundOnly: true, signal });
      await succeeded(tenant, groupId);
      return report;
    },
    async updateGroupSettings({ tenant, groupId, update }) {
      const result = await updateGroupSettings(runtime, tenant, groupId, async (settings) => {
        const next = await update(settings);
        checkSyncSettings(next, settings, definition.entities.map((e) => e.name));
        return next;
      });
      if (result.status === 'unknown') throw await noScope(tenant, groupId);
      if (result.status === 'busy') throw new SyncError(`The settings of group "${groupId}" are being changed by another call; retry`);
      return result.group;
    },
    async enqueueImport({ tenant, groupId, full }) {
      knownTenant(tenant, 'an import');
      const key = `${JobTypes.syncImport}:${tenant}:${keyPart(groupId)}`;
      if (!full) {
        const result = await runtime.storage.jobs.enqueue({ type: JobTypes.syncImport, tenant, groupId, payload: { tenant, groupId, full: false }, dedupeKey: key, orderingKey: key });
        return { jobId: result.id, created: result.created };
      }
      // A full import that has not started yet is the one asked for: it reads everything when
      // it runs, so a second one queued behind it (a resync clicked twice) would read it all
      // again for nothing. One that started (or failed once: its retry resumes from a
      // checkpoint) may have passed records changed since: a new one is queued.
      const noted = { tenant, groupId, ...FULL_IMPORT_CURSOR };
      const last = await runtime.storage.cursors.get(noted);
      const lastId = last?.data['jobId'];
      const waiting = typeof lastId === 'string' ? await runtime.storage.jobs.get(lastId) : null;
      if (waiting?.status === 'pending' && waiting.attempts === 0) return { jobId: waiting.id, created: false };
      // Keyed by a position past the last one noted, not the clock alone: two calls in one
      // millisecond deduplicated to one job even after it started.
      const at = Math.max(runtime.clock().getTime(), (last?.position ?? 0) + 1);
      const result = await runtime.storage.jobs.enqueue({
        type: JobTypes.syncImport,
        tenant,
        groupId,
        payload: { tenant, groupId, full: true },
        dedupeKey: `${key}:full:${at}`,
        orderingKey: key,
      });
      await runtime.storage.cursors.advance(noted, at, { jobId: result.id });
      return { jobId: result.id, created: result.created };
    },
    async pollGroup({ tenant, groupId, signal }) {
      const report = await engine.pollGroup(tenant, groupId, { overlapMs: pollOverlapMs, signal });
      await succeeded(tenant, groupId);
      return report;
    },
    async enqueuePoll({ tenant, groupId, runAt }) {
      knownTenant(tenant, 'a poll');
      if (runAt !== undefined && !(runAt instanceof Date && !Number.isNaN(runAt.getTime()))) {
        throw new SyncError('enqueuePoll: runAt must be a valid Date (nothing was enqueued)');
      }
      const job = pollJob(tenant, groupId, runAt ?? runtime.clock());
      const first = await runtime.storage.jobs.enqueue(job);
      if (first.created) return { jobId: first.id, created: true };
      // The slot's poll has already run (a chain's poll, finished or dead-lettered, keeps its key):
      // this call asks for another one, not a double of that one, which a pending or running poll is.
      const existing = await runtime.storage.jobs.get(first.id);
      if (existing?.status !== 'done' && existing?.status !== 'dead') return { jobId: first.id, created: false };
      const again = await runtime.storage.jobs.enqueue({ ...job, dedupeKey: `${job.dedupeKey}:after:${first.id}` });
      return { jobId: again.id, created: again.created };
    },
    async schedulePolls({ tenant } = {}) {
      const interval = options.pollIntervalMs;
      if (!interval) throw new SyncError('schedulePolls needs sync.pollIntervalMs: polling is off');
      const names = tenant !== undefined ? [tenant] : runtime.tenants.list().map((t) => t.name);
      const result = { scheduled: 0, alreadyScheduled: 0, notImported: 0 };
      // Every group's poll goes at its own point of the next interval, where its chain schedules
      // its polls (a chain already due there dedupes it): the same interval, whenever in this one
      // this runs again.
      const nextSlot = (Math.floor(runtime.clock().getTime() / interval) + 1) * interval;
      for (const name of names) {
        if (!runtime.tenants.get(name)) throw new SyncError(`Unknown tenant "${name}"`);
        // A page of groups at a time (a marketplace may have thousands), their polls enqueued together.
        for (let after: string | undefined; ; ) {
          const page = await runtime.storage.groups.list(name, { status: 'active', limit: SCHEDULE_POLLS_PAGE, ...(after !== undefined ? { after } : {}) });
          // An adapter written for the contract before `limit` and `after` answers every group
          // each time: the first answer held them all.
          if (after !== undefined && page.some((group) => group.groupId === after)) break;
          const jobs: JobInput[] = [];
          for (const group of page) {
            // An import seeds a poll cursor per entity it finished: no cursor, nothing to poll from yet.
            const cursors = await runtime.storage.cursors.list(name, group.groupId);
            if (!cursors.some((c) => c.kind === 'poll')) {
              result.notImported++;
              continue;
            }
            jobs.push(pollJob(name, group.groupId, new Date(nextSlot + pollPhase(name, group.groupId, interval))));
          }
          if (jobs.length > 0) {
            for (const { created } of await runtime.storage.jobs.enqueueMany(jobs)) {
              if (created) result.scheduled++;
              else result.alreadyScheduled++;
            }
          }
          const last = page[page.length - 1];
          if (page.length !== SCHEDULE_POLLS_PAGE || last === undefined) break;
          after = last.groupId;
        }
      }
      logger.info('sync: polls scheduled', { tenant: tenant ?? null, ...result });
      return result;
    },
    async deadLetters(filter = {}) {
      return listDeadLetters(runtime.storage, SYNC_JOB_TYPES, filter, (message) => new SyncError(message));
    },
    retryDeadLetter(jobId) {
      // Only the jobs `deadLetters()` lists: another module's dead letter is `mno.worker`'s.
      return retryDeadLetter(runtime.storage, jobId, SYNC_JOB_TYPES);
    },
    discardDeadLetter(jobId) {
      return discardDeadLetter(runtime.storage, logger, jobId, { types: SYNC_JOB_TYPES, message: 'sync: dead letter discarded' });
    },
    counters: () => ({ ...counters }),
    on(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };

  // The platform's control endpoints (PROTOCOL §5.4): only a connector has syncs to control.
  const control = connector !== undefined ? createSyncControl({ runtime, engine, enqueueImport: (args) => api.enqueueImport(args) }) : null;

  return {
    routes: { connecNotification, ...(control ? control.routes : {}) },
    // Without a connector there is nothing to import, apply, poll or purge: no sync job is run
    // (nor queued for a new company), instead of an import per company that reads nothing.
    jobs:
      connector !== undefined
        ? { [JobTypes.connecRecord]: recordHandler, [JobTypes.syncImport]: importHandler, [JobTypes.syncPoll]: pollHandler, [JobTypes.syncPurge]: purge.handler }
        : {},
    api,
    engine,
    connec(tenantName, groupId) {
      const tenant = runtime.tenants.get(tenantName);
      if (!tenant) throw new SyncError(`Unknown tenant "${tenantName}"`);
      // Its `connec.host` is not checked (it may be the production default): never called.
      if (!tenant.connec.enabled) throw new ConfigError(connecDisabledMessage(tenantName));
      return clientFor(tenant).group(groupId);
    },
  };
}

/** Exposed for tests: the dedupe key a notification record gets (content-addressed). */
export function notificationDedupeKey(tenant: string, groupId: string, entity: string, record: ConnecRecord): string {
  return `connec.record:${tenant}:${keyPart(groupId)}:${entity}:${keyPart(connecIdOf(record.id) ?? '')}:${rawHash(record)}`;
}
