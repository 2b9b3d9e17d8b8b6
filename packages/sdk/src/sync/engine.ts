/**
 * The sync engine: applies Connec! records locally (create if unknown, update if known),
 * imports groups page by page with checkpoints, and pushes local records. Correct with any
 * number of workers in any number of processes: per-record locks (storage `locks`) serialise
 * writers of one record, `idMaps.markApplied` rejects stale versions, and everything that
 * must not be lost is a job in the durable inbox.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { ApiError, ConnectionError, isRetriedByDefault, ResponseValidationError } from '@org/connec-client';
import type { Logger, Tenant, TenantRegistry } from '../core/types.js';
import type {
  AnyEntity,
  ConnecRecord,
  ConnectorDefinition,
  GroupSyncSettings,
  LocalContext,
  MapperContext,
} from '../entities/types.js';
import { StorageConflictError, SyncError } from '../errors/index.js';
import type { CursorKey, CursorRecord, GroupRecord, IdMapRecord, IdMapScope, JobInput, JsonValue, RecordError, StorageAdapter } from '../storage/adapter.js';
import type { EntityReport, RecordFailure, SkipReason, SyncCounters, SyncEvent, SyncReport } from './observe.js';
import { emptyCounters, emptyEntityReport } from './observe.js';
import { scrubErrorText } from '../config/logger.js';
import type { BatchOp, BatchOpResult, ConnecPage, ConnecPort, ListPageOptions } from './ports.js';
import {
  CONNEC_PROVIDER,
  canonicalJson,
  connecIdOf,
  contentHash,
  echoHash,
  type IdEntry,
  isObject,
  mapAt,
  mergeIds,
  type Owner,
  ownIdOf,
  parseTimestamp,
  payloadHash,
  prune,
  rawHash,
  unsentHash,
  valuesAt,
} from './records.js';
import { MAX_ID_LENGTH, MAX_LOCAL_ID_BYTES, unstorableRecord, usableId, usableLocalId } from './storable.js';
import { isStorableText } from '../storage/validation.js';
import { takeOrGiveBack } from '../internal/give-back.js';
import { callObserver } from '../internal/observer.js';
import { requestedRetryAfterMs } from '../internal/retry-after.js';
import { keyPart } from '../internal/keys.js';
import { errorMessage, thrownText } from '../internal/text.js';

export interface SyncOptions {
  /** `$top` of import pages. Default 100. */
  pageSize?: number;
  /** Ops per Connec! batch call (link-backs, pushes). Default 50. */
  batchSize?: number;
  /** Records of one import page applied at the same time. Default 4. */
  importConcurrency?: number;
  /**
   * Import pages applied at the same time (the checkpoint still advances in page order, past
   * fully committed pages only). Default 2.
   */
  importPagesInFlight?: number;
  /** Lease of a per-record lock. Default 30 000 ms. */
  lockTtlMs?: number;
  /** Lease of the per-group import lock, refreshed after every page. Default 120 000 ms. */
  importLockTtlMs?: number;
  /** First delay before a parked record is retried without a wake (doubles per attempt, max 10 min). Default 15 000 ms. */
  parkRetryMs?: number;
  /** Attempts of a `connec.record` job before it is dead-lettered. Default 10. */
  maxAttempts?: number;
  /** Fetch a referenced record from Connec! when it is not known yet (besides parking). Default true. */
  fetchMissingReferences?: boolean;
}

export interface ResolvedSyncOptions {
  pageSize: number;
  batchSize: number;
  importConcurrency: number;
  importPagesInFlight: number;
  lockTtlMs: number;
  importLockTtlMs: number;
  parkRetryMs: number;
  maxAttempts: number;
  fetchMissingReferences: boolean;
}

export function resolveSyncOptions(options: SyncOptions = {}): ResolvedSyncOptions {
  return {
    pageSize: options.pageSize ?? 100,
    batchSize: options.batchSize ?? 50,
    importConcurrency: options.importConcurrency ?? 4,
    importPagesInFlight: options.importPagesInFlight ?? 2,
    lockTtlMs: options.lockTtlMs ?? 30_000,
    importLockTtlMs: options.importLockTtlMs ?? 120_000,
    parkRetryMs: options.parkRetryMs ?? 15_000,
    maxAttempts: options.maxAttempts ?? 10,
    fetchMissingReferences: options.fetchMissingReferences ?? true,
  };
}

export interface EngineDeps {
  storage: StorageAdapter;
  tenants: TenantRegistry;
  connector: ConnectorDefinition;
  clock: () => Date;
  logger: Logger;
  instanceId: string;
  portFor: (tenant: Tenant) => ConnecPort;
  options: ResolvedSyncOptions;
  emit: (event: SyncEvent) => void;
}

/** A group the engine can sync: known tenant, provisioned and active group. */
export interface GroupScope {
  tenant: Tenant;
  groupId: string;
  group: GroupRecord;
  owner: Owner;
  settings: GroupSyncSettings;
  port: ConnecPort;
  /**
   * Set when Connec! refused a batch call of this run as a whole with a `Retry-After`: until
   * then the run sends no other batch call (its ops fail with that refusal, retried later).
   */
  refusal?: { until: number; message: string; status: number | null; cause: unknown };
}

/**
 * The app's sub-record ids (`LocalCreateResult.subIds`) of one version of a record, the one
 * whose content hash is `hash`: what its link-back carries besides the record id.
 */
export interface SubIdLink {
  hash: string;
  ids: Record<string, (string | null)[]>;
}

export type ApplyOutcome =
  | {
      kind: 'created' | 'updated';
      connecId: string;
      localId: string;
      link: BatchOp | null;
      /** The sub-record ids `link` carries: a retried link-back must carry them too. */
      subIds?: SubIdLink | undefined;
    }
  | { kind: 'skipped'; reason: SkipReason; connecId: string | null; link: BatchOp | null }
  | { kind: 'parked'; connecId: string; missing: { entity: string; connecId: string }[] }
  | {
      kind: 'busy';
      connecId: string;
      /**
       * The link-back of a record the app created whose second write (`resolveOwnReferences`)
       * did not complete: sent all the same. Its retry is an update, which links nothing back
       * for a record in the plain id format (it cannot tell whether our id is there already).
       */
      link?: { op: BatchOp; subIds: SubIdLink | undefined };
    };

/** Outcome of one record of `applyBatch`: an `ApplyOutcome`, or the error that failed it (with the link-back still owed, as for `busy`). */
export type BatchOutcome = ApplyOutcome | { kind: 'failed'; connecId: string | null; error: unknown; link?: Extract<ApplyOutcome, { kind: 'busy' }>['link'] };

/** Result of one `connec.record` job of a batch. */
export type RecordJobResult =
  | { done: true }
  | {
      park: string;
      reason: string;
      /** Whether the reference parked on is still unknown: asked once the deferral is recorded (see `JobDeferral`). */
      stillWaiting?: () => Promise<boolean>;
    }
  | {
      retryInMs: number;
      reason: string;
      /** Retry with this payload instead (a record created whose second write did not run: the sub-record ids its create returned). */
      retryWith?: RecordJobPayload;
    }
  | { error: unknown; /** Retry with this payload instead (it carries what the failed link-back did). */ retryWith?: RecordJobPayload };

export interface PushItemResult {
  localId: string;
  status: 'pushed' | 'unchanged' | 'skipped' | 'failed';
  /**
   * The record's Connec! id when this push read it: `pushed`, `unchanged`, a `skipped` push of a
   * tombstoned record, a failed update. Null when the record has none yet, and on a push skipped
   * before its id map was read (the sync switched off, `shouldPush` false): `mno.sync` does not
   * look it up for a record it does not send.
   */
  connecId: string | null;
  httpStatus: number | null;
  error: string | null;
  /** Why a `failed` push failed: `http_<status>`, `push_failed` (no answer), `link_conflict` or `mapper_error`. */
  code?: string;
}

/** Job payload of `connec.record`. */
export interface RecordJobPayload {
  entity: string;
  collection: string;
  /** The record as delivered; absent for an on-demand fetch. */
  record?: ConnecRecord;
  /** Fetch this Connec! id first (a reference some parked record is waiting for). */
  fetchId?: string;
  /**
   * With `fetchId`: fetch and apply Connec!'s current version even when the record is known
   * (a notified version that did not match its schema is read again instead of applied).
   */
  refresh?: boolean;
  /**
   * Apply whatever `importSince` says: a record some other record references (fetched on
   * demand), or one deferred by a full import.
   */
  full?: boolean;
  /**
   * Sub-record ids of a failed link-back: the app returned them when it wrote the version of
   * `record` whose content hash is `linkSubIds.hash`. A retry finding that version applied
   * links them back with the record id (the record is not written again).
   */
  linkSubIds?: SubIdLink;
  /**
   * Not stored: set by the worker on a job claimed again (an earlier attempt of it did not
   * finish, or failed). That attempt may have written the record in the app and died before
   * recording anything (see `applyPass`).
   */
  retried?: boolean;
}

/** A record of a batch that has no local record yet. */
interface PendingCreate {
  i: number;
  record: ConnecRecord;
  unfolded: ConnecRecord;
  connecId: string;
  updatedAt: Date | null;
  hash: string;
  /**
   * The record references itself (an item its own parent): created with that reference empty,
   * then updated with its own local id (`resolveOwnReferences`).
   */
  selfRef: boolean;
}

/** Lookups of id maps already done for a page: `undefined` = not looked up, `null` = known absent. */
type MapCache = Map<string, IdMapRecord | null>;
const cacheKey = (entity: string, connecId: string) => `${entity}\u0000${connecId}`;

/**
 * The error of the Connec! call behind a failed push result (kept off the result itself, which
 * apps receive): an import or a conflict winner failing on it passes it on as the cause, so the
 * worker waits the `Retry-After` it carries.
 */
const pushFailureCauses = new WeakMap<PushItemResult, unknown>();

/**
 * The inbound write running in this async context: `local.create`/`local.update` of `entity`
 * (`localId` null for a create) writing Connec! versions whose content, seen through
 * `toConnec`, is one of `agreed`. An app that pushes from the save path these call (an ORM hook,
 * one `saveContact` for every caller) pushes that version back: Connec! already holds it, and a
 * create pushed before its id map exists would make a second record there.
 */
interface InboundWrite {
  tenant: string;
  groupId: string;
  entity: string;
  localId: string | null;
  agreed: ReadonlySet<string>;
  /**
   * False once the write has returned: the store lives on in every continuation the app
   * started inside it (a queue loop, a timer), whose later pushes must be sent.
   */
  open: boolean;
}
const inboundWrite = new AsyncLocalStorage<InboundWrite>();

/**
 * The mark of the inbound write `writing`. It stays open until the caller has recorded the write
 * (its id map, its agreed hash) and calls `close()`: a push started inside the write and checked
 * after it returned, before that record, was sent (a create: a second record in Connec!).
 */
function inboundMark(entity: AnyEntity, writing: Omit<InboundWrite, 'open'>): { run<T>(write: () => Promise<T>): Promise<T>; close(): void } {
  const store: InboundWrite = { ...writing, open: true };
  return {
    // An entity without `toConnec` is never pushed: its writes need no mark. (On Node 20, the
    // first `AsyncLocalStorage.run` makes every promise of the process pay for context
    // tracking: about 10% of an inbound-only import's CPU.)
    run: (write) => (entity.outbound ? inboundWrite.run(store, write) : write()),
    close: () => {
      store.open = false;
    },
  };
}

export function refWaitKey(tenant: string, groupId: string, entity: string, connecId: string): string {
  return `sync.ref:${tenant}:${keyPart(groupId)}:${entity}:${keyPart(connecId)}`;
}

/** The per-group lock one import, poll or purge of a group holds at a time. */
export function groupSyncLockKey(tenant: string, groupId: string): string {
  return `sync.import:${tenant}:${groupId}`;
}

/**
 * Keeps a group lock held over a long run (an import, a poll, a purge): called between two
 * statements, it renews the lock, and the job's lease with `heartbeat`, at most every tenth of
 * the lock's TTL, and throws `lost('lock' | 'lease')` when either was lost.
 */
export function groupLockRenewer(args: {
  storage: StorageAdapter;
  key: string;
  owner: string;
  ttlMs: number;
  heartbeat?: (() => Promise<boolean>) | undefined;
  lost: (what: 'lock' | 'lease') => Error;
}): () => Promise<void> {
  let renewedAt = Date.now();
  return async () => {
    if (Date.now() - renewedAt < args.ttlMs / 10) return;
    renewedAt = Date.now();
    if (!(await args.storage.locks.refresh(args.key, args.owner, args.ttlMs))) throw args.lost('lock');
    if (args.heartbeat && !(await args.heartbeat())) throw args.lost('lease');
  };
}

export function recordOrderingKey(tenant: string, groupId: string, entity: string, connecId: string): string {
  return `connec.record:${tenant}:${keyPart(groupId)}:${entity}:${keyPart(connecId)}`;
}

function errorInfo(error: unknown): { code: string; message: string } {
  if (error instanceof LinkConflictError) return { code: LINK_CONFLICT, message: error.message };
  if (isObject(error) && typeof error.code === 'string' && typeof error.message === 'string') {
    return { code: error.code, message: error.message };
  }
  if (error instanceof Error) return { code: error.name || 'error', message: error.message };
  return { code: 'error', message: thrownText(error) };
}

/**
 * Whether a group's sync is switched on: `settings.sync.enabled`, which the platform's
 * `toggle_sync` call flips (PROTOCOL §5.4). Anything but `false` (absent included) is on.
 */
export function groupSyncEnabled(settings: GroupRecord['settings']): boolean {
  const raw = settings.sync;
  return !(isObject(raw) && raw.enabled === false);
}

/**
 * Why a run or push of a marketplace whose Connec! is switched off (`connec.enabled`, PROTOCOL
 * §1's "Connec! switch") did nothing. Every group of such a marketplace is synced as one whose
 * sync is switched off: imports and polls wait, pushes are skipped, and Connec! is never called
 * (its `connec.host` may be the production default, unchecked for such a marketplace).
 */
export function connecDisabledMessage(tenantName: string): string {
  return `Connec! is disabled for marketplace "${tenantName}" (connec.enabled: false): nothing is synchronized with it`;
}

function readSettings(group: GroupRecord): GroupSyncSettings {
  const raw = group.settings.sync;
  if (!isObject(raw)) return {};
  const out: GroupSyncSettings = {};
  if (isObject(raw.entities)) {
    const entities: NonNullable<GroupSyncSettings['entities']> = {};
    for (const [name, value] of Object.entries(raw.entities)) {
      if (!isObject(value)) continue;
      entities[name] = {
        ...(typeof value.inbound === 'boolean' ? { inbound: value.inbound } : {}),
        ...(typeof value.outbound === 'boolean' ? { outbound: value.outbound } : {}),
      };
    }
    out.entities = entities;
  }
  if (typeof raw.importSince === 'string') out.importSince = raw.importSince;
  return out;
}

async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      if (item !== undefined) await fn(item, index);
    }
  });
  await Promise.all(runners);
}

/** Clock reads `instantPassed` makes at most while waiting for the clock to move (a few ms for a clock that does not). */
const INSTANT_SPIN_LIMIT = 100_000;
/** How often a running import logs its progress per entity (besides the `import.progress` events). */
const PROGRESS_LOG_MS = 10_000;

export class SyncEngine {
  readonly counters: SyncCounters = emptyCounters();
  private readonly deps: EngineDeps;

  constructor(deps: EngineDeps) {
    this.deps = deps;
  }

  get connector(): ConnectorDefinition {
    return this.deps.connector;
  }

  get options(): ResolvedSyncOptions {
    return this.deps.options;
  }

  get logger(): Logger {
    return this.deps.logger;
  }

  // -------------------------------------------------------------------------------------
  // scopes and switches

  /** The sync scope of a group, or null when the tenant or group is unknown or cancelled. */
  async scope(tenantName: string, groupId: string): Promise<GroupScope | null> {
    const tenant = this.deps.tenants.get(tenantName);
    if (!tenant) return null;
    const group = await this.deps.storage.groups.get(tenantName, groupId);
    if (!group || group.status !== 'active') return null;
    const identity = this.deps.connector.identity;
    const owner: Owner = {
      provider: identity.provider({ tenant: tenant.name, apiId: tenant.api.id, groupId }),
      realm: identity.realm({ tenant: tenant.name, apiId: tenant.api.id, groupId, orgUid: group.orgUid }),
    };
    return { tenant, groupId, group, owner, settings: readSettings(group), port: this.deps.portFor(tenant) };
  }

  /**
   * Whether `entity` syncs in `direction` for the group: the entity has that direction, the
   * group's sync is on (`settings.sync.enabled`, the platform's toggle) and the group's
   * per-entity switch does not turn it off. Every notification, import, poll and push asks.
   */
  enabled(scope: GroupScope, entity: AnyEntity, direction: 'inbound' | 'outbound'): boolean {
    if (!scope.tenant.connec.enabled || !groupSyncEnabled(scope.group.settings)) return false;
    if (direction === 'inbound' && !entity.inbound) return false;
    if (direction === 'outbound' && !entity.outbound) return false;
    return scope.settings.entities?.[entity.name]?.[direction] !== false;
  }

  private idScope(scope: GroupScope, entity: string): IdMapScope {
    return { tenant: scope.tenant.name, groupId: scope.groupId, entity };
  }

  /**
   * Where a push records the local ids of `entity` it sent in references by our id alone (the
   * target not linked: its push skipped, or not made yet). A scope apart from the entity's own
   * (entity names have no `:`): such a map vouches for our id in a reference read back, and
   * for nothing else. In the entity's scope it made a record carrying that id (another app of
   * the group can write any id entry) linked to the local row, which it then overwrote, even
   * one the app never pushes; and it made a sibling entity of the same collection take its own
   * record carrying the same id (separate id sequences) for this entity's.
   */
  private referencedScope(scope: GroupScope, entity: string): IdMapScope {
    return this.idScope(scope, `${entity}:referenced`);
  }

  private mapperContext(scope: GroupScope, entity: AnyEntity, connecId: string | null, localId: string | null, isCreate: boolean): MapperContext {
    return {
      tenant: scope.tenant.name,
      groupId: scope.groupId,
      entity: entity.name,
      connecId,
      localId,
      isCreate,
      settings: scope.group.settings,
    };
  }

  private localContext(base: MapperContext, signal: AbortSignal | undefined): LocalContext {
    return {
      ...base,
      idempotencyKey: `${base.tenant}:${keyPart(base.groupId)}:${base.entity}:${base.connecId ?? base.localId ?? ''}`,
      signal,
      logger: this.deps.logger,
    };
  }

  private skip(scope: GroupScope, entity: string, connecId: string | null, reason: SkipReason): void {
    if (reason === 'replay' || reason === 'unchanged') this.counters.skippedReplay++;
    else if (reason === 'stale') this.counters.skippedStale++;
    else if (reason === 'echo') this.counters.skippedEcho++;
    else this.counters.skippedOther++;
    this.deps.logger.debug('sync: record skipped', { tenant: scope.tenant.name, groupId: scope.groupId, entity, connecId, reason });
    if (connecId !== null) {
      this.deps.emit({ type: 'record.skipped', tenant: scope.tenant.name, groupId: scope.groupId, entity, connecId, reason });
    }
  }

  // -------------------------------------------------------------------------------------
  // id maps

  private async findByConnecId(scope: GroupScope, entity: string, connecId: string, cache?: MapCache): Promise<IdMapRecord | null> {
    const key = cacheKey(entity, connecId);
    const cached = cache?.get(key);
    if (cached !== undefined) return cached;
    const found = await this.deps.storage.idMaps.find(this.idScope(scope, entity), { connecId });
    cache?.set(key, found);
    return found;
  }

  /**
   * Records that `connecId` <-> `localId` (either may be known alone so far). Idempotent and
   * race-safe: a concurrent insert of the same pair is absorbed. A new link marks the pair in
   * sync (`syncedAt`).
   */
  private async linkMap(scope: GroupScope, entity: string, connecId: string, localId: string): Promise<IdMapRecord> {
    const ids = this.idScope(scope, entity);
    for (let attempt = 0; attempt < 3; attempt++) {
      const byConnec = await this.deps.storage.idMaps.find(ids, { connecId });
      if (byConnec) {
        if (byConnec.localId === localId) return byConnec;
        if (byConnec.localId === null) {
          const updated = await this.deps.storage.idMaps.update(ids, { connecId }, { localId, syncedAt: this.deps.clock() });
          if (updated) return updated;
          continue;
        }
        throw new LinkConflictError(
          `Connec! record ${connecId} of "${entity}" is already linked to local record ${byConnec.localId}, not ${localId}`,
        );
      }
      const byLocal = await this.deps.storage.idMaps.find(ids, { localId });
      try {
        if (byLocal) {
          if (byLocal.connecId !== null && byLocal.connecId !== connecId) {
            throw new LinkConflictError(
              `Local record ${localId} of "${entity}" is already linked to Connec! record ${byLocal.connecId}, not ${connecId}`,
            );
          }
          const updated = await this.deps.storage.idMaps.update(ids, { localId }, { connecId, syncedAt: this.deps.clock() });
          if (updated) return updated;
          continue;
        }
        return await this.deps.storage.idMaps.insert({ ...ids, connecId, localId, syncedAt: this.deps.clock() });
      } catch (error) {
        if (error instanceof StorageConflictError) continue;
        throw error;
      }
    }
    throw new SyncError(`Could not link Connec! record ${connecId} to local record ${localId} of "${entity}" (contention)`);
  }

  /**
   * The id map that makes our id `own`, found in a Connec! record, trustworthy: one of this
   * tenant, group and entity holding `own` as its local id (written by an import, a push, or
   * before a create is sent). Anyone who can write Connec! records can put an entry with our
   * provider and realm in an id array; without this check its id would reach `local.update`
   * and `local.get` as ours, naming a record of another company.
   */
  private async ownedLocalMap(scope: GroupScope, entity: string, own: string): Promise<IdMapRecord | null> {
    return this.deps.storage.idMaps.find(this.idScope(scope, entity), { localId: own });
  }

  /**
   * Whether our id `own` in a record of `entity`'s collection is another entity's local id.
   * Every entity writes the same provider and realm into Connec!'s id arrays, so when several
   * entities share a collection (filters: leads and customers on `people`), the entry alone
   * does not say whose record it is: it is a sibling's when a sibling maps `own` to this
   * Connec! record (or to none yet; not with `linkedOnly`, for our id vouched for by a
   * referenced-only map: only a sibling linked to this very record then takes it).
   */
  private async ownIdOfSibling(scope: GroupScope, entity: string, own: string, connecId: string | null, linkedOnly = false): Promise<boolean> {
    const def = this.deps.connector.entity(entity);
    if (!def) return false;
    for (const sibling of this.deps.connector.forCollection(def.connec)) {
      if (sibling.name === entity) continue;
      const map = await this.deps.storage.idMaps.find(this.idScope(scope, sibling.name), { localId: own });
      if (map && (linkedOnly ? map.connecId !== null && map.connecId === connecId : map.connecId === null || map.connecId === connecId)) return true;
    }
    return false;
  }

  /**
   * The content app and Connec! agree on once `data` is written on both sides, in the form a
   * push compares (`toConnec`, pruned, hashed); null for an entity without `toConnec` or when
   * it throws (then nothing counts as agreed).
   */
  private agreedHash(entity: AnyEntity, data: unknown, mctx: MapperContext): string | null {
    const sent = this.pushedView(entity, data, mctx);
    return sent === NOT_PUSHED ? null : payloadHash(sent);
  }

  /**
   * The `agreedHash` of an inbound version, and its `unsentHash` against what a push of it
   * (mapped through `toLocal`) sends (`toConnec` runs once for both); nulls for an entity that
   * never pushes, or when a mapper throws.
   */
  private agreedAndUnsent(entity: AnyEntity, record: ConnecRecord, data: unknown, mctx: MapperContext): { agreed: string | null; unsent: string | null } {
    const sent = this.pushedView(entity, data, mctx);
    return sent === NOT_PUSHED ? { agreed: null, unsent: null } : { agreed: payloadHash(sent), unsent: unsentHash(record, sent) };
  }

  /**
   * The `unsentHash` of a push's answer as an inbound write of that version records it (against
   * what a push of it, mapped through `toLocal`, sends), or null when it cannot be told. Not
   * against the body pushed: `toConnec` may send fields `toLocal` does not read (the app's own
   * record number), and the hash an inbound write recorded would then never match the answer's,
   * so every push after an inbound write wrote its own answer back in the app.
   */
  private async answerUnsent(
    scope: GroupScope,
    entity: AnyEntity,
    record: ConnecRecord,
    connecId: string | null,
    localId: string,
    cache: MapCache,
  ): Promise<string | null> {
    const inbound = entity.inbound;
    if (!inbound) return null;
    try {
      const { record: unfolded } = await this.unfold(scope, entity, record, cache);
      const mctx = this.mapperContext(scope, entity, connecId, localId, false);
      return this.agreedAndUnsent(entity, record, inbound.toLocal(unfolded, mctx), mctx).unsent;
    } catch {
      return null;
    }
  }

  /** What a push of `data` sends (`toConnec`, pruned), or `NOT_PUSHED` (no outbound mapper, or it threw). */
  private pushedView(entity: AnyEntity, data: unknown, mctx: MapperContext): unknown {
    const outbound = entity.outbound;
    if (!outbound) return NOT_PUSHED;
    try {
      return prune(outbound.toConnec(data, mctx));
    } catch {
      return NOT_PUSHED;
    }
  }

  /** Whether `record`, mapped, is what our last push sent (its echo). False when that cannot be told. */
  private async echoOfPush(scope: GroupScope, entity: AnyEntity, record: ConnecRecord, map: IdMapRecord, connecId: string, cache: MapCache): Promise<boolean> {
    const inbound = entity.inbound;
    if (!inbound || !entity.outbound || map.lastPushedHash === null || map.localId === null) return false;
    // Told by the mappers only when Connec!'s answer to that push is unknown (see `update`).
    if (answerKnown(map)) return false;
    try {
      const { record: unfolded, missing } = await this.unfold(scope, entity, record, cache);
      if (missing.length > 0) return false;
      const mctx = this.mapperContext(scope, entity, connecId, map.localId, false);
      return this.agreedHash(entity, inbound.toLocal(unfolded, mctx), mctx) === map.lastPushedHash;
    } catch {
      return false;
    }
  }

  /**
   * On a job claimed again whose version the id map would skip (see `applyPass`): whether the
   * skip stands. It falls only when the app holds the retried version itself (which a dead
   * attempt may have written) while the id map says both sides agree on other content. It
   * stands when the app cannot be read (no `local.get`: a blind re-write would overwrite an
   * edit its user made since, on every job retried for an ordinary reason), when the record is
   * gone from the app, when it holds the agreed content (nothing to repair), and when it holds
   * anything else: an edit made since, which the app pushes. Not told apart by `localUpdatedAt`
   * either: an edit stamped no later than the last sync (timestamps kept to the second, an
   * autosave during a push) would be overwritten. So a poll killed mid-write is not repaired:
   * its retry lists Connec!'s current version, not the one the dead attempt wrote.
   * 'rewrite' when the skip falls, 'agreed' when it stands because the app holds the agreed
   * content, 'keep' otherwise.
   */
  private async recheckVerdict(
    scope: GroupScope,
    entity: AnyEntity,
    record: ConnecRecord,
    map: IdMapRecord,
    localId: string,
    connecId: string,
    signal: AbortSignal | undefined,
    cache: MapCache,
  ): Promise<'keep' | 'agreed' | 'rewrite'> {
    const inbound = entity.inbound;
    if (!inbound?.local.get || !entity.outbound) return 'keep';
    const mctx = this.mapperContext(scope, entity, connecId, localId, false);
    const current = await inbound.local.get(localId, this.localContext(mctx, signal));
    if (current === null) return 'keep';
    const held = this.agreedHash(entity, current, mctx);
    if (held === null) return 'keep';
    if (map.lastPushedHash !== null && held === map.lastPushedHash) return 'agreed';
    try {
      const { record: unfolded, missing } = await this.unfold(scope, entity, record, cache);
      return missing.length > 0 || this.agreedHash(entity, inbound.toLocal(unfolded, mctx), mctx) !== held ? 'keep' : 'rewrite';
    } catch {
      return 'keep';
    }
  }

  private async wake(scope: GroupScope, entity: string, connecId: string): Promise<void> {
    await this.deps.storage.jobs.wake(refWaitKey(scope.tenant.name, scope.groupId, entity, connecId));
  }

  // -------------------------------------------------------------------------------------
  // inbound: one record

  /** Replaces declared references by local ids (or null); lists the ones not known yet. */
  private async unfold(
    scope: GroupScope,
    entity: AnyEntity,
    record: ConnecRecord,
    cache: MapCache | undefined,
  ): Promise<{ record: ConnecRecord; missing: { entity: string; connecId: string }[] }> {
    let out = record;
    const missing: { entity: string; connecId: string }[] = [];
    for (const [path, target] of Object.entries(entity.references)) {
      // A target this group never imports (outbound-only, or inbound switched off for the
      // group) can only be known through a push of ours; a record it has no map for will
      // never arrive, so the reference is left empty instead of parking the record for good.
      const targetDef = this.deps.connector.entity(target);
      const canArrive = targetDef !== undefined && this.enabled(scope, targetDef, 'inbound');
      const resolved = new Map<string, string | null>();
      for (const { location, value } of valuesAt(record, path)) {
        if (value === null || value === undefined || value === '') {
          resolved.set(location, null);
          continue;
        }
        const own = ownIdOf(value, scope.owner);
        const cid = connecIdOf(value);
        // The map found by the Connec! id is ours whatever id entries the value carries.
        const map = cid === null ? null : await this.findByConnecId(scope, target, cid, cache);
        if (map?.localId && !map.tombstonedAt) {
          resolved.set(location, map.localId);
          continue;
        }
        if (own !== null && !map?.tombstonedAt) {
          // Our id without a map by Connec! id (a push whose answer was lost) is used only when
          // a map of the target in this group holds it as a local id. That map may name another
          // Connec! id (the target's push was merged by `matching_fields` into an existing
          // record); then our id may also be a sibling entity's of the same collection (a lead,
          // where the reference is to customers, each with its own id sequence): no record of
          // the target, and none will arrive.
          // Or, when the target has no map, one a push of ours recorded naming it by that id
          // alone (`referencedScope`): Connec! keeps our id in the reference it stored. That map
          // vouches for our id, not for the record the reference names: a sibling's record
          // linked to the same id (another app moved the reference to it) is not the target.
          const ownMap = await this.ownedLocalMap(scope, target, own);
          const referenced = ownMap === null && (await this.deps.storage.idMaps.find(this.referencedScope(scope, target), { localId: own })) !== null;
          const agrees = ownMap !== null && (ownMap.connecId === null || ownMap.connecId === cid);
          if (!agrees && (await this.ownIdOfSibling(scope, target, own, cid, referenced))) {
            resolved.set(location, null);
            continue;
          }
          if (ownMap || referenced) {
            resolved.set(location, ownMap?.tombstonedAt ? null : own);
            continue;
          }
        }
        resolved.set(location, null);
        // A target deleted in the app (tombstoned) is never linked again: nothing to wait for.
        if (cid !== null && canArrive && !map?.tombstonedAt) missing.push({ entity: target, connecId: cid });
      }
      out = mapAt(out, path, (_value, location) => resolved.get(location) ?? null);
    }
    for (const path of entity.subRecords) {
      out = mapAt(out, `${path}/id`, (value) => ownIdOf(value, scope.owner));
    }
    return { record: out, missing };
  }

  /**
   * Pushes the version that won a conflict (the app's, or a merge of both). True when Connec!
   * holds it now (pushed, or already equal), false when the group's settings skip the push;
   * a failed push throws, so the inbound attempt fails and is retried.
   */
  private async pushWinner(scope: GroupScope, entity: AnyEntity, record: unknown, signal: AbortSignal | undefined, why: 'local_wins' | 'merge'): Promise<'pushed' | 'unchanged' | 'skipped'> {
    const [result] = await this.pushRecords(scope, entity, [record], signal);
    if (!result || result.status === 'unchanged') return 'unchanged';
    if (result.status === 'pushed') return 'pushed';
    if (result.status === 'skipped') return 'skipped';
    const what = why === 'merge' ? 'the merged version' : 'the local version that won the conflict';
    // The push's own code (`http_503`, …) is what the failed attempt records on the map: a later
    // push of the same content is then sent again (`isPushFailure`), not answered `unchanged`.
    throw new WinnerPushError(`Pushing ${what} of ${entity.name} ${result.localId} to Connec! failed: ${result.error ?? 'no answer'}`, result.code ?? PUSH_FAILED, pushFailureCauses.get(result));
  }

  /**
   * The link-back op adding our ids (record and sub-records) to Connec!'s id arrays, or null
   * when present. A record in the plain format (`id` a string: `webhooks.connec.external_ids`
   * off) cannot show whether our id is there: it is linked back when the app first writes it
   * (`linked` false) or when an earlier link-back of it failed (`linked` 'failed'), not on every
   * notification of a record linked already. Each link-back is a write in Connec!, which
   * notifies again: linked every time, a record would go back and forth without end.
   */
  private linkOp(
    scope: GroupScope,
    entity: AnyEntity,
    record: ConnecRecord,
    connecId: string,
    localId: string,
    subIds: Record<string, (string | null)[]> | undefined,
    linked: boolean | 'failed' = true,
  ): BatchOp | null {
    // The realm of Connec!'s own ids is the org uid (PROTOCOL §6.6), which SSO stores when the
    // IdP sends `group_org_uid`; without it, the record's `channel_id` is that uid.
    const realm = scope.group.orgUid ?? (typeof record.channel_id === 'string' && record.channel_id !== '' ? record.channel_id : null);
    const ours: IdEntry = { id: localId, provider: scope.owner.provider, realm: scope.owner.realm };
    let needed = typeof record.id === 'string' ? linked !== true : ownIdOf(record.id, scope.owner) !== localId;
    const body: ConnecRecord = { id: mergeIds(record.id, [ours], realm) };
    for (const [path, ids] of Object.entries(subIds ?? {})) {
      // A nested path (`details/lines`) sends its whole top-level field, siblings included; the
      // ids are aligned with the path's elements in document order (as `valuesAt` reads them).
      const top = path.split('/')[0] as string;
      const source = Object.hasOwn(body, top) ? body : record;
      if (!Object.hasOwn(source, top)) continue;
      let offset = 0;
      let found = false;
      const mapped = mapAt({ [top]: source[top] }, path, (lines) => {
        if (!Array.isArray(lines)) return lines;
        found = true;
        const start = offset;
        offset += lines.length;
        return lines.map((line: unknown, index: number) => {
          const subId = ids[start + index];
          if (!isObject(line) || !subId) return line;
          if (ownIdOf(line.id, scope.owner) !== subId) needed = true;
          return { ...line, id: mergeIds(line.id, [{ ...ours, id: subId }], realm) };
        });
      });
      if (found) body[top] = mapped[top];
    }
    if (!needed) return null;
    return {
      method: 'put',
      groupId: scope.groupId,
      collection: entity.connec,
      id: entity.connec === 'company' ? undefined : connecId,
      record: body,
    };
  }

  /**
   * Why a known record's version is not applied, or null to apply it. `same_instant`: another
   * content with the `updated_at` last applied. Connec! stamps to the second, so two edits in
   * one second share it, and the payload alone cannot tell the newer: the caller asks Connec!
   * for the current version and decides again with `confirmed` (that version is the newest).
   */
  private staleness(map: IdMapRecord | null, updatedAt: Date | null, hash: string, record: ConnecRecord, confirmed = false): SkipReason | typeof SAME_INSTANT | null {
    if (!map?.localId) return null;
    // Hashed only when the map holds a push's answer (most maps hold an inbound version).
    const echo = () => map.lastReceivedHash?.startsWith(PUSHED_PREFIX) === true && receivedMark(map) === pushedContent(echoHash(record));
    if (map.lastAppliedAt && updatedAt) {
      const at = updatedAt.getTime();
      const last = map.lastAppliedAt.getTime();
      if (at < last) return 'stale';
      if (at === last) {
        if (sameReceived(map, hash)) return 'replay';
        if (echo()) return 'echo';
        // The answer to our push, which the app does not hold yet (see `pushRecords`).
        if (map.lastReceivedHash?.startsWith(APPLY_PREFIX) === true && map.lastReceivedHash === applyContent(echoHash(record))) return null;
        return confirmed ? null : SAME_INSTANT;
      }
    }
    if (sameReceived(map, hash)) return 'unchanged';
    // The content Connec! answered for our last push (only Connec!-managed fields may differ).
    if (echo()) return 'echo';
    return null;
  }

  private async update(
    scope: GroupScope,
    entity: AnyEntity,
    record: ConnecRecord,
    unfolded: ConnecRecord,
    map: IdMapRecord,
    connecId: string,
    updatedAt: Date | null,
    hash: string,
    signal: AbortSignal | undefined,
    held: () => boolean,
    /**
     * The second write of a record just created without its reference to itself
     * (`resolveOwnReferences`): the same version, so no conflict to look for, and counted once.
     */
    ownReference = false,
    /**
     * 'failed': this version's link-back failed before (the retry of a record whose second
     * write failed too): a record in the plain id format is linked back again (see `linkOp`).
     */
    linked: true | 'failed' = true,
  ): Promise<ApplyOutcome> {
    const inbound = entity.inbound;
    const localId = map.localId;
    if (!inbound || localId === null) throw new SyncError(`Entity "${entity.name}" is not inbound`);
    // The record's lock ran out (another writer may hold it now): write nothing, retry later.
    if (!held()) return { kind: 'busy', connecId };
    const ids = this.idScope(scope, entity.name);
    const mctx = this.mapperContext(scope, entity, connecId, localId, false);
    const lctx = this.localContext(mctx, signal);
    let data = inbound.toLocal(unfolded, mctx);

    // Echo of our own push: the same content as we last pushed, seen through the mappers.
    const outbound = entity.outbound;
    // What both sides will agree on once this version is written (the merge below may change it),
    // and what of it a push does not send.
    const viewed = this.agreedAndUnsent(entity, record, data, mctx);
    const unsent = viewed.unsent;
    let agreed = viewed.agreed;
    // Only when Connec!'s answer to our last push is unknown (no record in it, or a map
    // written before answers were recorded) is an echo told by the mappers alone. Otherwise
    // `staleness` compared the content with that answer already, and a version that differs
    // from it is an edit made in Connec!, even when it maps to what we pushed: `toConnec` may
    // send fewer fields than `toLocal` reads, and a change to one of the others must be applied.
    if (map.lastPushedHash !== null && !answerKnown(map)) {
      if (agreed === map.lastPushedHash) {
        // Acknowledged, not synced: the push that produced it already set `syncedAt`, and a
        // local edit made since must still count as one.
        await this.deps.storage.idMaps.markApplied(ids, { connecId }, updatedAt ?? this.deps.clock(), receivedContent(hash), { inSync: false });
        return { kind: 'skipped', reason: 'echo', connecId, link: this.linkOp(scope, entity, record, connecId, localId, undefined, linked) };
      }
    }

    // Conflict policy: only when the app can tell us its current version and when it changed.
    let pushBack = false;
    const policy = inbound.conflict;
    if (!ownReference && policy.strategy !== 'connec-wins' && inbound.local.get && outbound?.localUpdatedAt) {
      const current = await inbound.local.get(localId, lctx);
      if (current === null) {
        await this.deps.storage.idMaps.update(ids, { connecId }, { tombstonedAt: this.deps.clock() });
        return { kind: 'skipped', reason: 'tombstoned', connecId, link: null };
      }
      const localAt = outbound.localUpdatedAt(current);
      // Changed since app and Connec! were last in sync. Not `updatedAt`: writes that only
      // record an error (a failed attempt, a failed push) move it past the local edit. Maps
      // stored before `syncedAt` existed fall back to it.
      const syncedAt = map.syncedAt ?? map.updatedAt;
      // A timestamp after the last sync is not enough: the app's clock may run ahead of the
      // worker's. The record must also differ from the content both sides last agreed on.
      // One in the sync's own millisecond cannot be ordered by time. After an inbound write it
      // is that write's own stamp (the app stamps the SDK's writes like its edits, and the
      // record it stores may differ from the agreed content: sub-record ids, normalised
      // fields), never an edit. After one of our pushes, whose agreed content is exactly what
      // was sent, a record that differs from it was edited since (an edit made in the
      // millisecond of a push was overwritten by Connec!'s older version).
      const lastSyncPushed = map.lastReceivedHash?.startsWith(PUSHED_PREFIX) === true || map.lastReceivedHash?.startsWith(APPLY_PREFIX) === true;
      const differsFromAgreed = () => map.lastPushedHash !== null && this.agreedHash(entity, current, mctx) !== map.lastPushedHash;
      const changedLocally =
        localAt !== null &&
        (localAt.getTime() > syncedAt.getTime()
          ? map.lastPushedHash === null || differsFromAgreed()
          : localAt.getTime() === syncedAt.getTime() && lastSyncPushed && differsFromAgreed());
      if (changedLocally) {
        let winner: 'connec' | 'local' | 'merged';
        const strategy = policy.strategy;
        if (typeof strategy === 'object') {
          data = strategy.merge({ connec: data, local: current, connecUpdatedAt: updatedAt, localUpdatedAt: localAt, ctx: mctx });
          agreed = this.agreedHash(entity, data, mctx);
          winner = 'merged';
        } else if (strategy === 'local-wins') {
          winner = 'local';
        } else {
          const diff = localAt.getTime() - (updatedAt?.getTime() ?? 0);
          winner = Math.abs(diff) <= policy.skewMs ? policy.tieBreaker : diff > 0 ? 'local' : 'connec';
        }
        this.counters.conflicts++;
        this.deps.emit({ type: 'conflict', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, localId, winner });
        this.deps.logger.info('sync: conflict resolved', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, localId, winner });
        if (winner === 'local') {
          // The local version is pushed first, and Connec!'s losing version marked handled only
          // then: marked first, a push that failed (or met a storage outage) left a retry that
          // saw a replay and never sent the winning version. A failed push fails the attempt
          // (retried with backoff, then dead-lettered and listed).
          const winner = await this.pushWinner(scope, entity, current, signal, 'local_wins');
          // Not in sync unless the push said so (`pushRecords` sets `syncedAt`): a push the
          // group's settings skip leaves the next inbound version a conflict again.
          if (winner !== 'pushed') await this.deps.storage.idMaps.markApplied(ids, { connecId }, updatedAt ?? this.deps.clock(), receivedContent(hash), { inSync: false });
          return { kind: 'skipped', reason: 'local_wins', connecId, link: this.linkOp(scope, entity, record, connecId, localId, undefined, linked) };
        }
        if (winner === 'merged') {
          const connecView = payloadHash(prune(outbound.toConnec(inbound.toLocal(unfolded, mctx), mctx)));
          const mergedView = payloadHash(prune(outbound.toConnec(data, mctx)));
          if (connecView !== mergedView) pushBack = true;
        }
      }
    }

    if (!held()) return { kind: 'busy', connecId };
    const writing = { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, localId, agreed: new Set(agreed === null || pushBack ? [] : [agreed]) };
    const mark = inboundMark(entity, writing);
    let result: Awaited<ReturnType<typeof inbound.local.update>>;
    let pushedBack = false;
    // The link-back of this version and the sub-record ids it carries (the ones `local.update`
    // returned): computed before `markApplied`, which stores those ids with the version.
    let link: BatchOp | null = null;
    let owed: SubIdLink | undefined;
    try {
      try {
        result = await mark.run(async () => inbound.local.update(localId, data, lctx));
      } catch (error) {
        await this.inboundWriteFailed(ids, connecId, updatedAt, error);
        throw error;
      }
      if (result && typeof result === 'object' && result.gone) {
        await this.deps.storage.idMaps.update(ids, { connecId }, { tombstonedAt: this.deps.clock() });
        this.deps.logger.info('sync: local record gone, id map tombstoned', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, localId });
        return { kind: 'skipped', reason: 'tombstoned', connecId, link: null };
      }
      const returned = storableSubIdsOf(keptSubIds(unfolded, entity.subRecords, result && typeof result === 'object' ? result.subIds : undefined));
      if (returned.dropped > 0) {
        this.deps.logger.warn('sync: local.update returned sub-record ids storage cannot hold; they are not linked back', {
          tenant: scope.tenant.name,
          groupId: scope.groupId,
          entity: entity.name,
          connecId,
          localId,
          dropped: returned.dropped,
        });
      }
      link = this.linkOp(scope, entity, record, connecId, localId, returned.subIds, linked);
      owed = subIdLink(link, hash, returned.subIds, record);
      // A merge that differs from Connec!'s version is pushed back before the version is marked
      // applied: marked first, a push that failed (or a storage outage during it) left a retry
      // that saw a replay, and the merge never reached Connec!. A failed push fails the attempt.
      /** The map's `lastPushedHash` as stored now. */
      let storedAgreed = map.lastPushedHash;
      if (pushBack && inbound.local.get) {
        // The app's record as it now stands (the merge result, as stored).
        const fresh = await inbound.local.get(localId, lctx);
        // Connec! holds another version: our last push is not what it holds any more.
        if (fresh !== null && storedAgreed !== null) {
          await this.deps.storage.idMaps.update(ids, { connecId }, { lastPushedHash: null });
          storedAgreed = null;
        }
        if (fresh !== null) pushedBack = (await this.pushWinner(scope, entity, fresh, signal, 'merge')) !== 'skipped';
      }
      // Both sides now hold this version: it replaces our last push as the content they agree on.
      // Keeping the old push hash made a later Connec! edit back to it look like an echo, and a
      // local edit back to it look 'unchanged' (never pushed). Written before `markApplied`: an
      // outage between the two leaves the version unapplied, and the retry writes both again
      // (after it, the retry saw a replay and the old hash stayed for good). A merge pushed back
      // wrote its own hash with the push.
      if (!pushedBack) {
        if (pushBack) agreed = null;
        if (storedAgreed !== agreed) await this.deps.storage.idMaps.update(ids, { connecId }, { lastPushedHash: agreed });
        // The error the job read (an earlier attempt's) is over; only that one: a push of the
        // record failing while `local.update` ran recorded its own, which must stay (the next
        // push of this content is then sent again, `isPushFailure`: Connec! may hold the failed
        // push's content).
        if (map.lastError) await this.deps.storage.idMaps.clearError(ids, { connecId }, map.lastError);
      }
    } finally {
      mark.close();
    }
    // A merge that differs from Connec!'s version is in sync once it is pushed back.
    // The sub-record ids this version's link-back owes go in the same write. None owed: those
    // stored for this very version stay (a create's, whose second write or retry returned none),
    // those of another version are cleared (never taken for a later version of their content).
    const owedNow = storedSubIdLink(owed, record);
    const owedText = owedNow !== null ? { linkSubIds: owedNow } : typeof map.linkSubIds === 'string' && !storedFor(map.linkSubIds, hash) ? { linkSubIds: null } : {};
    const applied =
      pushedBack ||
      (await this.deps.storage.idMaps.markApplied(ids, { connecId }, updatedAt ?? this.deps.clock(), withUnsent(receivedContent(hash), unsent), { inSync: !pushBack, ...owedText }));
    // A merge pushed back is the newer version itself (its answer's `updated_at` is recorded).
    if (!applied && updatedAt !== null) {
      // A newer version was applied while this write ran (the lock was lost, or a push of the
      // app landed meanwhile), and this older one may have landed last. The map must not claim
      // the newer version: it goes back to this one (the hash cleared) so the newer version,
      // delivered again, is written. Nor may it claim that both sides agree on anything: when
      // the newer version is our own push, its hash as `lastPushedHash` made that version look
      // like an echo and kept the local record on this older content for good.
      await this.deps.storage.idMaps.update(ids, { connecId }, { lastAppliedAt: updatedAt, lastReceivedHash: null, lastPushedHash: null, syncedAt: this.deps.clock() });
      this.deps.logger.warn('sync: a newer version was applied during this write; retrying', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, localId });
      return { kind: 'busy', connecId };
    }
    if (!ownReference) {
      this.counters.updated++;
      this.counters.applied++;
      this.deps.emit({ type: 'record.applied', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, localId, action: 'updated' });
    }
    return { kind: 'updated', connecId, localId, link, subIds: owed };
  }

  /**
   * A `local.update` that threw may have committed (its answer lost): its failure is recorded
   * on the id map at once, the record's lock still held, so that a push of the record answered
   * from now on is not taken as agreed (`inboundFailedSince`). The worker records it only when
   * it settles the job, after the batch's locks are released and its link-back answered: a push
   * answered in between was taken as agreed. One answered before (a newer version applied
   * during the write) was: the map goes back to this version, as after a write that landed
   * last, so that the push's echo is written in the app instead of skipped. Best effort: the
   * app's error is the attempt's, not a storage outage's.
   */
  private async inboundWriteFailed(ids: IdMapScope, connecId: string, updatedAt: Date | null, error: unknown): Promise<void> {
    const { code, message } = errorInfo(error);
    const lastError = { code: inboundFailureCode(code, error), message: scrubErrorText(message).slice(0, 500), at: this.deps.clock() };
    const map = await this.deps.storage.idMaps.update(ids, { connecId }, { lastError }).catch(() => null);
    // At the same instant too: Connec! stamps to the second, so a push answered during the write
    // often shares this version's `updated_at`; kept as applied, its echo was skipped for good.
    if (map?.lastAppliedAt && updatedAt !== null && map.lastAppliedAt.getTime() >= updatedAt.getTime()) {
      await this.deps.storage.idMaps.update(ids, { connecId }, { lastAppliedAt: updatedAt, lastReceivedHash: null, lastPushedHash: null }).catch(() => null);
    }
  }

  // -------------------------------------------------------------------------------------
  // inbound: many records of one entity

  /**
   * Keeps the record locks of one `applyPass` while it runs: renews them every third of their
   * TTL (a timer, so a fast pass costs no extra round trip) and tells which are still held. A
   * lock is held until a renewal is refused (another owner took it after it expired) or until
   * its lease runs out without a successful renewal (storage unreachable, event loop blocked).
   */
  private keepLocks(keys: string[], owner: string, ttlMs: number, acquiredAt: number): { held: (key: string) => boolean; stop: () => void } {
    const validUntil = new Map(keys.map((key) => [key, acquiredAt + ttlMs]));
    const lost = new Set<string>();
    let renewing = false;
    const renew = async () => {
      if (renewing) return;
      renewing = true;
      const startedAt = Date.now();
      try {
        const live = keys.filter((key) => !lost.has(key));
        const results = await Promise.all(live.map((key) => this.deps.storage.locks.refresh(key, owner, ttlMs).catch(() => null)));
        live.forEach((key, k) => {
          const ok = results[k];
          if (ok === true) validUntil.set(key, startedAt + ttlMs);
          else if (ok === false) lost.add(key);
        });
      } finally {
        renewing = false;
      }
    };
    const timer = setInterval(() => void renew(), Math.max(1, Math.floor(ttlMs / 3)));
    timer.unref?.();
    return {
      held: (key) => !lost.has(key) && Date.now() < (validUntil.get(key) ?? 0),
      stop: () => clearInterval(timer),
    };
  }

  /** The refusal this run is still under (Connec!'s `Retry-After` not over yet), or null. */
  private refusedCall(scope: GroupScope): { message: string; status: number | null; cause: unknown } | null {
    const refusal = scope.refusal;
    return refusal && this.deps.clock().getTime() < refusal.until ? refusal : null;
  }

  /**
   * Notes a batch call refused with a `Retry-After` (thrown, or carried by its results as
   * `cause`): the run sends no other call before it is over.
   */
  private noteRefusal(scope: GroupScope, refused: { cause?: unknown; status: number | null; message: string } | undefined): void {
    const wait = requestedRetryAfterMs(refused?.cause);
    if (!refused || wait === null) return;
    scope.refusal = { until: this.deps.clock().getTime() + wait, message: refused.message, status: refused.status, cause: refused.cause };
  }

  /** The whole-call failure batch results carry (each op holds the call's error as `cause`), if any. */
  private static wholeCallFailure(results: readonly BatchOpResult[]): { cause: unknown; status: number | null; message: string } | undefined {
    const failed = results.find((r) => r.cause !== undefined);
    return failed && { cause: failed.cause, status: failed.status, message: failed.error ?? 'batch call refused' };
  }

  private recordLockKey(scope: GroupScope, entity: string, connecId: string): string {
    return `sync.record:${scope.tenant.name}:${keyPart(scope.groupId)}:${entity}:${keyPart(connecId)}`;
  }

  /** Loads into `cache` the id maps of `records` and of every record they reference (one query per entity). */
  private async preload(scope: GroupScope, entity: AnyEntity, records: readonly ConnecRecord[], cache: MapCache): Promise<void> {
    const load = async (target: string, cids: string[]) => {
      const unique = [...new Set(cids)].filter((cid) => !cache.has(cacheKey(target, cid)));
      if (unique.length === 0) return;
      const found = await this.deps.storage.idMaps.findManyByConnecIds(this.idScope(scope, target), unique);
      for (const cid of unique) cache.set(cacheKey(target, cid), null);
      for (const map of found) if (map.connecId) cache.set(cacheKey(target, map.connecId), map);
    };
    const wanted = new Map<string, string[]>([[entity.name, records.map((r) => connecIdOf(r.id)).filter((c): c is string => c !== null)]]);
    for (const [path, target] of Object.entries(entity.references)) {
      const cids = wanted.get(target) ?? [];
      for (const r of records) {
        for (const { value } of valuesAt(r, path)) {
          const cid = connecIdOf(value);
          if (cid) cids.push(cid);
        }
      }
      wanted.set(target, cids);
    }
    // One query per entity, all at once.
    await Promise.all([...wanted].map(([target, cids]) => load(target, cids)));
  }

  /**
   * Applies many records of one entity (an import page, a batch of inbox jobs) with a constant
   * number of storage round trips: one batch lock, one id-map load (plus one per referenced
   * entity), the local creates (`local.createMany` when the entity has it), one id-map insert,
   * one wake and one release. Known records are updated one by one (conflict policy, stale
   * checks). A record referencing one created by the same batch is applied in a second pass.
   * Never throws for a single record (its outcome is `failed`); throws when storage fails.
   */
  async applyBatch(
    scope: GroupScope,
    entity: AnyEntity,
    records: readonly ConnecRecord[],
    options: {
      signal?: AbortSignal | undefined;
      full?: boolean;
      /** Per record (same order): sub-record ids of an earlier link-back of it that failed. */
      subIds?: readonly (SubIdLink | undefined)[];
      /** Per record (same order): a job claimed again (`RecordJobPayload.retried`). */
      retried?: readonly boolean[];
    } = {},
  ): Promise<BatchOutcome[]> {
    const out: BatchOutcome[] = new Array(records.length);
    const todo: number[] = [];
    const repeats: number[] = [];
    const seen = new Set<string>();
    const since = !options.full && scope.settings.importSince ? parseTimestamp(scope.settings.importSince) : null;
    const enabled = entity.inbound !== undefined && this.enabled(scope, entity, 'inbound');
    // The app's filter runs per record: one that throws fails that record only (as a throwing
    // `toLocal` does), not the batch of notifications or the import page it came with.
    const filteredOut = (record: ConnecRecord): boolean | Error => {
      if (!entity.filter) return false;
      try {
        return !entity.filter(record);
      } catch (error) {
        return new SyncError(`The filter of entity "${entity.name}" threw: ${errorInfo(error).message}`, { cause: error });
      }
    };
    records.forEach((record, i) => {
      const connecId = connecIdOf(record.id);
      if (!enabled) {
        out[i] = { kind: 'skipped', reason: 'disabled', connecId, link: null };
        return;
      }
      const invalid = INVALID_RECORDS.get(record);
      if (invalid !== undefined) {
        out[i] = { kind: 'failed', connecId, error: new SyncError(`A "${entity.connec}" record Connec! sent does not match its schema (${invalid})`) };
        return;
      }
      if (connecId === null) {
        out[i] = { kind: 'failed', connecId, error: new SyncError(`A "${entity.connec}" record without a Connec! id cannot be applied`) };
        return;
      }
      const filtered = filteredOut(record);
      if (filtered === true) {
        out[i] = { kind: 'skipped', reason: 'filtered', connecId, link: null };
        return;
      }
      // Ids that cannot key storage, text no adapter stores: the record fails on its own (a
      // storage call would refuse it, and a page or batch that throws is retried for ever).
      const unstorable = this.unstorable(entity, record);
      if (unstorable) out[i] = unstorable;
      else if (filtered instanceof Error) out[i] = { kind: 'failed', connecId, error: filtered };
      else if (seen.has(connecId)) repeats.push(i);
      else {
        seen.add(connecId);
        todo.push(i);
      }
    });
    let pending = todo;
    for (let pass = 0; pending.length > 0 && pass < 3; pass++) {
      pending = await this.applyPass(scope, entity, records, pending, out, since, options.signal, options.subIds, options.retried);
    }
    // The same record twice in one batch (never from Connec! pages or the inbox): in order, one by one.
    for (const i of repeats) {
      const [outcome] = await this.applyBatch(scope, entity, [records[i] as ConnecRecord], { ...options, subIds: [options.subIds?.[i]], retried: [options.retried?.[i] === true] });
      if (outcome) out[i] = outcome;
    }
    return out;
  }

  /** One pass of `applyBatch`; returns the records parked only on records this pass created. */
  private async applyPass(
    scope: GroupScope,
    entity: AnyEntity,
    records: readonly ConnecRecord[],
    indexes: number[],
    out: BatchOutcome[],
    since: Date | null,
    signal: AbortSignal | undefined,
    carried: readonly (SubIdLink | undefined)[] | undefined,
    retried?: readonly boolean[],
  ): Promise<number[]> {
    const ids = this.idScope(scope, entity.name);
    const cid = (i: number) => connecIdOf((records[i] as ConnecRecord).id) as string;
    const lockOwner = `${this.deps.instanceId}:${randomUUID()}`;
    const ttl = this.deps.options.lockTtlMs;
    const acquiredAt = Date.now();
    const keys = indexes.map((i) => this.recordLockKey(scope, entity.name, cid(i)));
    const taken = new Set(
      await takeOrGiveBack(
        () => this.deps.storage.locks.acquireMany(keys, lockOwner, ttl),
        () => this.deps.storage.locks.releaseMany(keys, lockOwner),
      ),
    );
    const locked: number[] = [];
    for (const i of indexes) {
      if (taken.has(this.recordLockKey(scope, entity.name, cid(i)))) locked.push(i);
      else out[i] = { kind: 'busy', connecId: cid(i) };
    }
    if (locked.length === 0) return [];
    const lease = this.keepLocks(
      locked.map((i) => this.recordLockKey(scope, entity.name, cid(i))),
      lockOwner,
      ttl,
      acquiredAt,
    );
    const held = (connecId: string) => lease.held(this.recordLockKey(scope, entity.name, connecId));
    let released: Promise<unknown> | null = null;
    const release = () => {
      lease.stop();
      return (released ??= this.deps.storage.locks
        .releaseMany(
          locked.map((i) => this.recordLockKey(scope, entity.name, cid(i))),
          lockOwner,
        )
        .catch(() => 0));
    };
    try {
      const cache: MapCache = new Map();
      await this.preload(
        scope,
        entity,
        locked.map((i) => records[i] as ConnecRecord),
        cache,
      );
      const creates: PendingCreate[] = [];
      const updates: { i: number; record: ConnecRecord; unfolded: ConnecRecord; map: IdMapRecord; updatedAt: Date | null; hash: string; owed: boolean }[] = [];
      for (const i of locked) {
        let record = records[i] as ConnecRecord;
        const connecId = cid(i);
        try {
          let updatedAt = parseTimestamp(record.updated_at);
          let hash = contentHash(record);
          let map = cache.get(cacheKey(entity.name, connecId)) ?? null;
          if (!map) {
            const own = ownIdOf(record.id, scope.owner);
            if (own !== null && (await this.ownedLocalMap(scope, entity.name, own)) && !(await this.ownIdOfSibling(scope, entity.name, own, connecId))) {
              map = await this.linkMap(scope, entity.name, connecId, own);
              // Records parked on this one resolve it from now on.
              await this.wake(scope, entity.name, connecId);
            }
          }
          if (map?.tombstonedAt) {
            out[i] = { kind: 'skipped', reason: 'tombstoned', connecId, link: null };
            continue;
          }
          // `importSince` only keeps older records from being created: a known one is always updated.
          if (!map?.localId && since && (parseTimestamp(record.created_at)?.getTime() ?? Number.POSITIVE_INFINITY) < since.getTime()) {
            out[i] = { kind: 'skipped', reason: 'before_import_since', connecId, link: null };
            continue;
          }
          if (map?.localId) {
            const localId = map.localId;
            let stale = this.staleness(map, updatedAt, hash, record);
            // The echo of our last push carries that push's `updated_at`: told apart by its
            // content, it needs no fetch (`update` skips it as an echo).
            if (stale === SAME_INSTANT && (await this.echoOfPush(scope, entity, record, map, connecId, cache))) stale = null;
            if (stale === SAME_INSTANT) {
              // Applying the payload could bring back an older edit of the same second (a late
              // page, a redelivery); Connec!'s current version is the newest by definition.
              const current = await scope.port.fetch(scope.groupId, entity.connec, connecId, signal ? { signal } : {});
              const unstorable = current === null ? null : this.unstorable(entity, current);
              if (unstorable) {
                // The listed version goes to the inbox as a re-read too (it would fetch this one again).
                if (unstorable.kind === 'failed' && unstorable.connecId !== null) UNSTORABLE_RECORDS.add(record);
                out[i] = unstorable;
                continue;
              }
              if (current === null) stale = 'stale';
              else {
                record = current;
                updatedAt = parseTimestamp(current.updated_at);
                hash = contentHash(current);
                stale = this.staleness(map, updatedAt, hash, current, true);
              }
            }
            if (stale === SAME_INSTANT) stale = 'stale';
            // A record job claimed again whose earlier attempt may have written the record in
            // the app and died before recording anything (a SIGKILL right after `local.update`
            // committed, or the record of its failure failing too: `inboundWriteFailed` never
            // ran). A push of the record answered meanwhile was taken as agreed: its echo is
            // skipped, and this version, older than the push, is stale. Skipped, the app kept
            // this version while Connec! held the pushed one, for good. For an entity the app
            // pushes, when the app holds this very version (`recheckVerdict`), the map's claim
            // that both sides agree is dropped and Connec!'s current version written in the app
            // instead (through the conflict policy). The same for a version read as the last
            // applied (`replay`, `unchanged`): that echo may have been skipped before this retry
            // (another job, a poll), which marked it applied. Not when the retry owes a link-back
            // (`carried`): that version was written, and is linked. Costs nothing on a first
            // attempt; on such a retry, one `local.get`, and for a re-write one id-map write
            // (and a fetch of Connec!'s current version for a stale one) before the usual update.
            const recheck = stale === 'stale' || stale === 'echo' || ((stale === 'replay' || stale === 'unchanged') && carried?.[i] === undefined);
            // A job dead-lettered as poisoned left its mark on the map: its requeue (attempts
            // start over) or the record's next job re-checks as a retry would.
            const mayHaveWritten = retried?.[i] === true || map.lastError?.code === POISONED;
            const verdict = recheck && mayHaveWritten && this.enabled(scope, entity, 'outbound') ? await this.recheckVerdict(scope, entity, record, map, localId, connecId, signal, cache) : 'keep';
            // The app holds the agreed content: whatever the dead attempt wrote is gone, and the
            // mark goes too. Kept, every later job of the record re-checked, and a much later one
            // (an old version delivered again) wrote Connec!'s version over an edit made since.
            // Only that mark: a push of the record failing while the check awaited the app
            // recorded its own error, which must stay (the next push of the agreed content is
            // then sent again, `isPushFailure`: Connec! may hold the failed push's content).
            if (verdict === 'agreed' && map.lastError?.code === POISONED) {
              const cleared = await this.deps.storage.idMaps.clearError(ids, { connecId }, map.lastError);
              // Read back as `update` returned it: what the rest of the job weighs is the map as
              // stored now, that error included.
              map = (await this.deps.storage.idMaps.find(ids, { connecId })) ?? (cleared ? { ...map, lastError: null } : map);
              cache.set(cacheKey(entity.name, connecId), map);
            }
            if (verdict === 'rewrite') {
              const current = stale !== 'stale' ? record : await scope.port.fetch(scope.groupId, entity.connec, connecId, signal ? { signal } : {});
              const unstorable = current === null || current === record ? null : this.unstorable(entity, current);
              if (unstorable) {
                if (unstorable.kind === 'failed' && unstorable.connecId !== null) UNSTORABLE_RECORDS.add(record);
                out[i] = unstorable;
                continue;
              }
              if (current !== null) {
                map = (await this.deps.storage.idMaps.update(ids, { connecId }, { lastReceivedHash: null, lastPushedHash: null })) ?? { ...map, lastReceivedHash: null, lastPushedHash: null };
                cache.set(cacheKey(entity.name, connecId), map);
                record = current;
                updatedAt = parseTimestamp(current.updated_at);
                hash = contentHash(current);
                stale = this.staleness(map, updatedAt, hash, current, true);
                if (stale === SAME_INSTANT) stale = 'stale';
              }
            }
            if (stale) {
              // Same content as last applied: acknowledged, but a local edit made since still counts.
              // The same content as Connec! held: what a push does not send is unchanged too.
              if (stale === 'unchanged' || stale === 'echo') await this.deps.storage.idMaps.markApplied(ids, { connecId }, updatedAt ?? this.deps.clock(), withUnsent(receivedContent(hash), unsentOf(map)), { inSync: false });
              // The version applied, whose link-back failed: the retry links its sub-record ids
              // too (only that version's: they are aligned with its sub-record arrays). Those the
              // job carries, else those stored with the version (a link-back lost with its process
              // or with its retry job, see `owedSubIdLink`).
              const owedIds = stale === 'replay' || stale === 'unchanged' ? owedSubIdLink(carried?.[i], map, hash, record) : undefined;
              let again = owedIds?.ids;
              let linked: ConnecRecord = record;
              // A link-back owed again (its first try failed, or its process died) is sent later
              // than the version it belongs to: Connec! may have moved on (another app edited the
              // record meanwhile). The link-back sends the whole sub-record arrays, so built on
              // this payload it would write its lines back over that edit. Built on Connec!'s
              // current version instead, when that still is this content; else only the record
              // id is linked. One read, only when such a link-back is still owed (rare), and only
              // when it carries sub-record ids (one of the record id alone writes no line). The
              // record id alone is still a link-back owed: a record in the plain id format cannot
              // show it landed (`linkOp`), so it is sent as failed, else it was never sent at all.
              if (again !== undefined && Object.keys(again).length > 0 && this.linkOp(scope, entity, record, connecId, localId, again, 'failed') !== null) {
                const current = await scope.port.fetch(scope.groupId, entity.connec, connecId, signal ? { signal } : {});
                // Deleted in Connec! meanwhile: nothing to link (a PUT would answer 404 on every
                // retry until the job is dead-lettered); its deletion reaches the map on its own.
                if (current === null) {
                  out[i] = { kind: 'skipped', reason: stale, connecId, link: null };
                  continue;
                }
                if (contentHash(current) === hash) linked = current;
                else again = {};
              }
              out[i] = { kind: 'skipped', reason: stale, connecId, link: this.linkOp(scope, entity, linked, connecId, localId, again, again === undefined || 'failed') };
              continue;
            }
          }
          const unfoldedAll = await this.unfold(scope, entity, record, cache);
          const unfolded = unfoldedAll.record;
          // A new record naming itself waits for nothing: that reference arrives with it.
          const itself = (m: { entity: string; connecId: string }) => m.entity === entity.name && m.connecId === connecId;
          const selfRef = !map?.localId && unfoldedAll.missing.some(itself);
          const missing = selfRef ? unfoldedAll.missing.filter((m) => !itself(m)) : unfoldedAll.missing;
          if (missing.length > 0) out[i] = { kind: 'parked', connecId, missing };
          else if (map?.localId) {
            // This version, not applied yet, with a link-back owed (`linkSubIds`, carried by the
            // job or stored with the map): a record the app created whose second write
            // (`resolveOwnReferences`) failed or never ran (its process killed). Its sub-records
            // are the ones that create made, which Connec! does not name yet: as new (`null`),
            // the update would add them again. And the link-back is sent again.
            // A newer version, whose sub-records an earlier version's link-back was to name (its
            // process killed, or its retry built on that older version): the ids stored with
            // that version are matched to this one's sub-records by their Connec! ids, so the
            // app updates its lines instead of creating them again, and the link-back names them.
            const owed = owedSubIdLink(carried?.[i], map, hash, record)?.ids ?? carriedOverSubIds(map, record, hash);
            const withOwn = owed ? withSubRecordIds(unfolded, entity.subRecords, owed) : unfolded;
            updates.push({ i, record, unfolded: withOwn, map, updatedAt, hash, owed: owed !== undefined });
          }
          else creates.push({ i, record, unfolded, connecId, updatedAt, hash, selfRef });
        } catch (error) {
          out[i] = { kind: 'failed', connecId, error };
        }
      }
      const created = await this.createBatch(scope, entity, creates, out, signal, held);
      await this.resolveOwnReferences(scope, entity, creates, out, cache, signal, held);
      await pool(updates, this.deps.options.importConcurrency, async (u) => {
        try {
          out[u.i] = await this.update(scope, entity, u.record, u.unfolded, u.map, cid(u.i), u.updatedAt, u.hash, signal, () => held(cid(u.i)), false, u.owed ? 'failed' : true);
        } catch (error) {
          out[u.i] = { kind: 'failed', connecId: cid(u.i), error };
        }
      });
      if (created.size === 0) return [];
      // Wake the jobs parked on the new records while the locks are released. Best effort:
      // parked jobs run again on their own backoff (`parkRetryMs`), and a failed wake-up must not
      // fail records already written (their retry is a replay that has lost the sub-record ids
      // the app returned, which only the link-back below carries).
      const wakeKeys = [...created].map((c) => refWaitKey(scope.tenant.name, scope.groupId, entity.name, c));
      await Promise.all([
        this.deps.storage.jobs.wakeMany(wakeKeys).catch((error: unknown) => {
          this.deps.logger.warn('sync: waking records parked on new records failed; they retry on their own', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, count: wakeKeys.length, error: errorInfo(error).message });
          return 0;
        }),
        release(),
      ]);
      return locked.filter((i) => {
        const o = out[i];
        return o?.kind === 'parked' && o.missing.every((m) => m.entity === entity.name && created.has(m.connecId));
      });
    } finally {
      await release();
    }
  }

  /**
   * Second write of the records `createBatch` just created without their reference to
   * themselves (an item that is its own parent): now that their local id is known, the same
   * version is written again through `update`, that reference resolved to it, and only then
   * marked applied. The create's outcome (and its link-back) stands; a failure here fails the
   * record, whose retry applies the version over its map (never marked applied) as an update.
   */
  private async resolveOwnReferences(
    scope: GroupScope,
    entity: AnyEntity,
    creates: readonly PendingCreate[],
    out: BatchOutcome[],
    cache: MapCache,
    signal: AbortSignal | undefined,
    held: (connecId: string) => boolean,
  ): Promise<void> {
    for (const c of creates) {
      const created = out[c.i];
      if (!c.selfRef || created?.kind !== 'created') continue;
      const owed = created.link ? { link: { op: created.link, subIds: created.subIds } } : {};
      try {
        const map = await this.deps.storage.idMaps.find(this.idScope(scope, entity.name), { connecId: c.connecId });
        if (!map?.localId) throw new SyncError(`The id map of ${entity.name} ${c.connecId} is gone right after its create`);
        cache.set(cacheKey(entity.name, c.connecId), map);
        const { record: resolved, missing } = await this.unfold(scope, entity, c.record, cache);
        if (missing.some((m) => m.entity === entity.name && m.connecId === c.connecId)) {
          throw new SyncError(`The reference of ${entity.name} ${c.connecId} to itself did not resolve after its create`);
        }
        // The sub-records are the ones the create just made: Connec! does not hold their ids
        // yet (the link-back is still owed), and as new (`null`) the app would add them again.
        const unfolded = withSubRecordIds(resolved, entity.subRecords, created.subIds?.ids ?? {});
        const outcome = await this.update(scope, entity, c.record, unfolded, map, c.connecId, c.updatedAt, c.hash, signal, () => held(c.connecId), true);
        if (outcome.kind === 'busy') out[c.i] = { ...outcome, ...owed };
        else if (outcome.kind === 'updated' && outcome.subIds && Object.keys(outcome.subIds.ids).length > 0) {
          // The sub-record ids the app holds now are the ones its update returned.
          const link = this.linkOp(scope, entity, c.record, c.connecId, created.localId, outcome.subIds.ids, false);
          out[c.i] = { ...created, link, subIds: subIdLink(link, c.hash, outcome.subIds.ids, c.record) };
        } else if (outcome.kind !== 'updated') out[c.i] = outcome;
      } catch (error) {
        out[c.i] = { kind: 'failed', connecId: c.connecId, error, ...owed };
      }
    }
  }

  /**
   * The failure of a record read from Connec! that cannot be stored (`unstorableRecord`), or
   * null. Its Connec! id goes with it only when it can key a job (the one that reads it again).
   */
  private unstorable(entity: AnyEntity, record: ConnecRecord): BatchOutcome | null {
    const found = unstorableRecord(record, entity);
    if (!found) return null;
    if (found.idUsable) UNSTORABLE_RECORDS.add(record);
    return {
      kind: 'failed',
      connecId: found.idUsable ? connecIdOf(record.id) : null,
      error: new SyncError(`A "${entity.connec}" record Connec! sent cannot be stored: ${found.message}`),
    };
  }

  /** Local creates of a batch (`local.createMany` or `create` per record), then one id-map insert. Returns the Connec! ids created. */
  private async createBatch(
    scope: GroupScope,
    entity: AnyEntity,
    items: PendingCreate[],
    out: BatchOutcome[],
    signal: AbortSignal | undefined,
    held: (connecId: string) => boolean,
  ): Promise<Set<string>> {
    const created = new Set<string>();
    const inbound = entity.inbound;
    if (!inbound || items.length === 0) return created;
    const prepared: (PendingCreate & { data: unknown; ctx: LocalContext; agreed: string | null; unsent: string | null })[] = [];
    for (const item of items) {
      if (!held(item.connecId)) {
        out[item.i] = { kind: 'busy', connecId: item.connecId };
        continue;
      }
      try {
        const mctx = this.mapperContext(scope, entity, item.connecId, null, true);
        const data = (inbound.toLocalOnCreate ?? inbound.toLocal)(item.unfolded, mctx);
        const read = inbound.toLocalOnCreate ? inbound.toLocal(item.unfolded, mctx) : data;
        const { agreed, unsent } = this.agreedAndUnsent(entity, item.record, read, mctx);
        prepared.push({ ...item, data, ctx: this.localContext(mctx, signal), agreed, unsent });
      } catch (error) {
        out[item.i] = { kind: 'failed', connecId: item.connecId, error };
      }
    }
    const marks: { close(): void }[] = [];
    try {
      const results: unknown[] = new Array(prepared.length);
      const createMany = inbound.local.createMany;
      const writing = (agreed: (string | null)[]): Omit<InboundWrite, 'open'> => ({
        tenant: scope.tenant.name,
        groupId: scope.groupId,
        entity: entity.name,
        localId: null,
        agreed: new Set(agreed.filter((a): a is string => a !== null)),
      });
      if (createMany && prepared.length > 1) {
        try {
          const mark = inboundMark(entity, writing(prepared.map((p) => p.agreed)));
          marks.push(mark);
          const many = await mark.run(async () => createMany(prepared.map((p) => ({ data: p.data, ctx: p.ctx }))));
          if (!Array.isArray(many) || many.length !== prepared.length) {
            throw new SyncError(
              `local.createMany of "${entity.name}" must resolve to one result per item (${prepared.length} expected, got ${Array.isArray(many) ? many.length : typeof many})`,
            );
          }
          many.forEach((r, k) => {
            results[k] = r;
          });
        } catch (error) {
          results.fill(error instanceof Error ? error : new SyncError(`local.createMany of "${entity.name}" threw ${thrownText(error)}`));
        }
      } else {
        await pool(prepared, this.deps.options.importConcurrency, async (p, k) => {
          try {
            const mark = inboundMark(entity, writing([p.agreed]));
            marks.push(mark);
            results[k] = await mark.run(async () => inbound.local.create(p.data, p.ctx));
          } catch (error) {
            results[k] = error instanceof Error ? error : new SyncError(`local.create of "${entity.name}" threw ${thrownText(error)}`);
          }
        });
      }
      const ids = this.idScope(scope, entity.name);
      const ok: { p: (typeof prepared)[number]; localId: string; subIds: Record<string, (string | null)[]> | undefined }[] = [];
      prepared.forEach((p, k) => {
        const r = results[k];
        if (r instanceof Error) out[p.i] = { kind: 'failed', connecId: p.connecId, error: r };
        else if (!isObject(r) || typeof r.id !== 'string' || r.id === '') {
          out[p.i] = { kind: 'failed', connecId: p.connecId, error: new SyncError(`local.create of "${entity.name}" must resolve to { id: string }`) };
        } else if (!usableLocalId(r.id) || !storableSubIds(r.subIds)) {
          // Storage would refuse the id map (and fail the page with it): this record fails alone.
          const what = usableLocalId(r.id) ? `sub-record ids holding a NUL character or an unpaired UTF-16 surrogate, or longer than ${MAX_LOCAL_ID_BYTES} bytes` : unusableIdProblem(r.id);
          out[p.i] = { kind: 'failed', connecId: p.connecId, error: new SyncError(`local.create of "${entity.name}" resolved to ${what}: no record can be keyed by it`) };
        } else ok.push({ p, localId: r.id, subIds: (r as { subIds?: Record<string, (string | null)[]> }).subIds });
      });
      if (ok.length === 0) return created;
      const syncedAt = this.deps.clock();
      // The link-back of each record, and the sub-record ids it carries: stored with the map, in
      // the write that records the version, so that a replay of it links them again when this
      // process dies before the link-back answers (or its retry job is lost). Only the app holds
      // them: the next version would otherwise name its sub-records by nobody's id, and the app
      // would create them again.
      const links = ok.map(({ p, localId, subIds }) => {
        const link = this.linkOp(scope, entity, p.record, p.connecId, localId, subIds, false);
        const owed = subIdLink(link, p.hash, subIds, p.record);
        return { link, owed, stored: storedSubIdLink(owed, p.record) };
      });
      const inserts = ok.map(({ p, localId }, k) => ({
        ...ids,
        connecId: p.connecId,
        localId,
        // A record created without its reference to itself is not applied until the update
        // that resolves it (`resolveOwnReferences`): a retry after a crash in between applies it.
        lastAppliedAt: p.selfRef ? null : (p.updatedAt ?? syncedAt),
        lastReceivedHash: p.selfRef ? null : withUnsent(receivedContent(p.hash), p.unsent),
        lastPushedHash: p.selfRef ? null : p.agreed,
        syncedAt,
        linkSubIds: links[k]?.stored ?? null,
      }));
      const stored = await this.deps.storage.idMaps.insertMany(inserts).catch((error: unknown) => this.insertedAfterAll(ids, inserts, error));
      for (const [k, { p, localId }] of ok.entries()) {
        let map = stored[k] ?? null;
        const { link, owed, stored: owedText } = links[k] as (typeof links)[number];
        if (!map) {
          // The local id is already mapped (a push linked it meanwhile): merge the link.
          try {
            map = await this.linkMap(scope, entity.name, p.connecId, localId);
            await this.deps.storage.idMaps.update(ids, { connecId: p.connecId }, {
              lastAppliedAt: p.selfRef ? null : (p.updatedAt ?? this.deps.clock()),
              lastReceivedHash: p.selfRef ? null : withUnsent(receivedContent(p.hash), p.unsent),
              lastPushedHash: p.selfRef ? null : p.agreed,
              lastError: null,
              syncedAt: this.deps.clock(),
              ...(owedText === null ? {} : { linkSubIds: owedText }),
            });
          } catch (error) {
            out[p.i] = { kind: 'failed', connecId: p.connecId, error };
            continue;
          }
        }
        this.counters.created++;
        this.counters.applied++;
        created.add(p.connecId);
        this.deps.emit({ type: 'record.applied', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId: p.connecId, localId, action: 'created' });
        out[p.i] = { kind: 'created', connecId: p.connecId, localId: map.localId ?? localId, link, subIds: owed };
      }
      return created;
    } finally {
      for (const mark of marks) mark.close();
    }
  }

  /**
   * The maps of a failed `idMaps.insertMany` of created records when it committed all the same
   * (the connection lost after COMMIT, an operation timeout answered before the database did):
   * read back, every one of them stored with its local id. Then the batch goes on as if the insert
   * had answered, and links the records back with the sub-record ids `local.create` returned,
   * which only this call holds: retried instead, the records are replays whose link-back carries
   * the record ids alone, and the next version of each names its sub-records (invoice lines) by
   * nobody's id, which the app creates again. Otherwise (nothing or only part of it stored, or
   * the read failing too) the insert's own failure is thrown, as before.
   */
  private async insertedAfterAll(ids: IdMapScope, inserts: { connecId: string; localId: string }[], failure: unknown): Promise<IdMapRecord[]> {
    const found = await this.deps.storage.idMaps.findManyByConnecIds(ids, inserts.map((m) => m.connecId)).catch(() => null);
    const byConnecId = new Map((found ?? []).map((map) => [map.connecId, map]));
    const stored = inserts.map((m) => byConnecId.get(m.connecId));
    if (!stored.every((map, k): map is IdMapRecord => map !== undefined && map.localId === inserts[k]?.localId)) throw failure;
    this.deps.logger.warn('sync: an id-map insert reported a failure but was stored; going on with the batch', {
      tenant: ids.tenant,
      groupId: ids.groupId,
      entity: ids.entity,
      records: inserts.length,
      error: errorMessage(failure),
    });
    return stored;
  }

  /**
   * A page of a collection, its records that do not match their schema (`ConnecPage.invalid`)
   * marked so that `applyBatch` fails each of them on its own, wherever the page goes.
   */
  private async listPage(scope: GroupScope, collection: string, options: ListPageOptions): Promise<ConnecPage> {
    const page = await scope.port.listPage(scope.groupId, collection, options);
    for (const [index, message] of page.invalid ?? []) {
      const record = page.records[index];
      if (record) INVALID_RECORDS.set(record, message);
    }
    return page;
  }

  /** Sends link-back ops in batches; returns the indexes of failed ops with their errors. */
  async sendLinks(
    scope: GroupScope,
    ops: BatchOp[],
    signal?: AbortSignal,
    onApplied?: (index: number, answered: ConnecRecord | null) => void,
  ): Promise<Map<number, { message: string; cause?: unknown }>> {
    const failed = new Map<number, { message: string; cause?: unknown }>();
    const size = this.deps.options.batchSize;
    const starts: number[] = [];
    for (let start = 0; start < ops.length; start += size) starts.push(start);
    // Batch calls of one page go out together (a few at a time), not one after the other.
    await pool(starts, 4, async (start) => {
      const chunk = ops.slice(start, start + size);
      const refused = this.refusedCall(scope);
      if (refused) {
        for (let i = 0; i < chunk.length; i++) failed.set(start + i, { message: refused.message, cause: refused.cause });
        return;
      }
      const results = await scope.port.batch(chunk, signal ? { signal } : {});
      this.noteRefusal(scope, SyncEngine.wholeCallFailure(results));
      chunk.forEach((_op, i) => {
        const r = results[i];
        if (r && r.status !== null && r.status >= 200 && r.status < 300) {
          this.counters.linked++;
          onApplied?.(start + i, r.record);
        } else {
          const message = r ? (r.error ?? (r.status === null ? 'no answer' : `HTTP ${r.status}`)) : 'no result for op';
          failed.set(start + i, r?.cause === undefined ? { message } : { message, cause: r.cause });
        }
      });
    });
    return failed;
  }

  // -------------------------------------------------------------------------------------
  // the connec.record job

  /**
   * Processes many inbox records at once (the worker's batch of `connec.record` jobs): per
   * group, referenced entities first, each entity through `applyBatch`, and every link-back
   * in one Connec! batch call. Returns one result per item, in order.
   */
  async processRecordJobs(
    items: readonly { tenant: string; groupId: string; payload: RecordJobPayload }[],
    signal: AbortSignal | undefined,
  ): Promise<RecordJobResult[]> {
    const results: (RecordJobResult | undefined)[] = new Array(items.length);
    const byGroup = new Map<string, number[]>();
    items.forEach((item, i) => {
      const key = `${item.tenant}\u0000${item.groupId}`;
      const list = byGroup.get(key);
      if (list) list.push(i);
      else byGroup.set(key, [i]);
    });
    for (const indexes of byGroup.values()) {
      const first = items[indexes[0] as number] as (typeof items)[number];
      try {
        await this.processGroupJobs(first.tenant, first.groupId, items, indexes, results, signal);
      } catch (error) {
        for (const i of indexes) if (results[i] === undefined) results[i] = { error };
      }
    }
    return results.map((r) => r ?? { done: true });
  }

  private async processGroupJobs(
    tenantName: string,
    groupId: string,
    items: readonly { payload: RecordJobPayload }[],
    indexes: number[],
    results: (RecordJobResult | undefined)[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const scope = await this.scope(tenantName, groupId);
    if (!scope && !this.deps.tenants.get(tenantName)) {
      // The tenant left the tenant list (a marketplaces document refreshed without it, a
      // deploy): accepted records wait for it (retried, then dead-lettered), never dropped.
      const error = new SyncError(`Tenant "${tenantName}" is not in the current tenant list; its records are kept and retried`);
      this.deps.logger.warn('sync: records of a tenant missing from the tenant list kept for a retry', { tenant: tenantName, groupId, records: indexes.length });
      for (const i of indexes) results[i] = { error };
      return;
    }
    if (!scope) {
      this.deps.logger.info('sync: records for an unknown or cancelled group ignored', { tenant: tenantName, groupId, records: indexes.length });
      for (const i of indexes) {
        // Counted and reported as skipped (`unknown_group`), like every other skip.
        this.counters.skippedOther++;
        const payload = (items[i] as { payload: Partial<RecordJobPayload> }).payload;
        const connecId = payload.record ? connecIdOf(payload.record.id) : (payload.fetchId ?? null);
        if (connecId !== null) {
          this.deps.emit({ type: 'record.skipped', tenant: tenantName, groupId, entity: payload.entity ?? '', connecId, reason: 'unknown_group' });
        }
        results[i] = { done: true };
      }
      return;
    }
    const records = new Map<number, ConnecRecord>();
    for (const i of indexes) {
      const payload = (items[i] as { payload: RecordJobPayload }).payload;
      const entity = this.deps.connector.entity(payload.entity);
      if (!entity) {
        this.counters.skippedOther++;
        this.deps.logger.info('sync: record of an unknown entity ignored', { tenant: tenantName, groupId, entity: payload.entity });
        results[i] = { done: true };
      } else if (payload.record) records.set(i, payload.record);
      else if (!payload.fetchId) results[i] = { done: true };
      else if (!this.enabled(scope, entity, 'inbound')) {
        // Switched off (the group's sync, or this entity's inbound): what a fetch would bring is
        // skipped anyway, so Connec! is not asked for it.
        this.skip(scope, entity.name, payload.fetchId, 'disabled');
        results[i] = { done: true };
      } else {
        try {
          const existing = await this.findByConnecId(scope, entity.name, payload.fetchId);
          const fetched = existing?.localId && !payload.refresh ? null : await scope.port.fetch(groupId, entity.connec, payload.fetchId, signal ? { signal } : {});
          if (fetched) records.set(i, fetched);
          else {
            if (!existing?.localId) {
              this.deps.logger.warn('sync: referenced record not found in Connec!', { tenant: tenantName, groupId, entity: entity.name, connecId: payload.fetchId });
            }
            results[i] = { done: true };
          }
        } catch (error) {
          results[i] = { error };
        }
      }
    }
    const links: { i: number; op: BatchOp; entity: string; connecId: string; subIds: SubIdLink | undefined }[] = [];
    const fetches: { entity: string; connecId: string }[] = [];
    // Records fetched on demand (something references them) and records a full import deferred
    // are applied whatever `importSince` says; the others are not.
    const full = (i: number) => {
      const payload = (items[i] as { payload: RecordJobPayload }).payload;
      // A re-read of an invalid record is the record itself, not something another references.
      return payload.full === true || (payload.fetchId !== undefined && payload.refresh !== true);
    };
    // A throw part way (a later entity's storage call, a lock) must not lose what the earlier
    // entities wrote: their records are done, and their link-backs and fetches still go out
    // below before the throw reaches the caller (which fails only the records left undecided).
    let thrown: { error: unknown } | null = null;
    const fetchedFor: number[] = [];
    try {
      for (const entity of this.deps.connector.importOrder) {
        const ofEntity = indexes.filter((i) => records.has(i) && (items[i] as { payload: RecordJobPayload }).payload.entity === entity.name);
        for (const mine of [ofEntity.filter((i) => !full(i)), ofEntity.filter(full)]) {
          if (mine.length === 0) continue;
          const outcomes = await this.applyBatch(
            scope,
            entity,
            mine.map((i) => records.get(i) as ConnecRecord),
            {
              signal,
              full: full(mine[0] as number),
              subIds: mine.map((i) => (items[i] as { payload: RecordJobPayload }).payload.linkSubIds),
              retried: mine.map((i) => (items[i] as { payload: RecordJobPayload }).payload.retried === true),
            },
          );
          outcomes.forEach((outcome, k) => {
            const i = mine[k] as number;
            if ((outcome.kind === 'failed' || outcome.kind === 'busy') && outcome.link && outcome.connecId) {
              links.push({ i, op: outcome.link.op, entity: entity.name, connecId: outcome.connecId, subIds: outcome.link.subIds });
            }
            // A record created whose second write failed or did not run (its lock was lost): its
            // retry (an update) must name the sub-records that create made, whose ids only the
            // app returned (see `applyPass`).
            const owedRetry = (): RecordJobPayload | undefined => {
              if (outcome.kind !== 'failed' && outcome.kind !== 'busy') return undefined;
              const owed = outcome.link?.subIds;
              const payload = (items[i] as { payload: RecordJobPayload }).payload;
              const record = records.get(i);
              if (!owed || Object.keys(owed.ids).length === 0 || !record || sameSubIds(payload.linkSubIds, owed)) return undefined;
              return { entity: payload.entity, collection: payload.collection, record, ...(full(i) ? { full: true } : {}), linkSubIds: owed };
            };
            if (outcome.kind === 'failed') {
              const retryWith = owedRetry();
              results[i] = retryWith ? { error: outcome.error, retryWith } : { error: outcome.error };
            } else if (outcome.kind === 'busy') {
              const retryWith = owedRetry();
              results[i] = { retryInMs: 1_000, reason: `record ${outcome.connecId} is being written by another worker`, ...(retryWith ? { retryWith } : {}) };
            } else if (outcome.kind === 'parked') {
              const first = outcome.missing[0];
              if (!first) {
                results[i] = { retryInMs: 1_000, reason: 'unresolved reference' };
                return;
              }
              if (this.deps.options.fetchMissingReferences) {
                fetches.push(...outcome.missing);
                fetchedFor.push(i);
              }
              this.counters.parked++;
              this.deps.emit({ type: 'record.parked', tenant: tenantName, groupId, entity: entity.name, connecId: outcome.connecId, waitingFor: `${first.entity}:${first.connecId}` });
              results[i] = {
                park: refWaitKey(tenantName, groupId, first.entity, first.connecId),
                reason: `waiting for ${first.entity} ${first.connecId}`,
                // Linked by another worker after this one looked (its wake found this job still
                // running): resolved as `unfold` does, by a map with a local id or a tombstone.
                stillWaiting: async () => {
                  const map = await this.findByConnecId(scope, first.entity, first.connecId);
                  return !map?.localId && !map?.tombstonedAt;
                },
              };
            } else {
              if (outcome.kind === 'skipped') this.skip(scope, entity.name, outcome.connecId, outcome.reason);
              const subIds = outcome.kind === 'skipped' ? undefined : outcome.subIds;
              if (outcome.link && outcome.connecId) links.push({ i, op: outcome.link, entity: entity.name, connecId: outcome.connecId, subIds });
              results[i] = { done: true };
            }
          });
        }
      }
    } catch (error) {
      thrown = { error };
    }
    // Records of entities without an inbound direction: nothing to apply.
    if (!thrown) {
      for (const i of records.keys()) {
        if (results[i] === undefined) {
          this.counters.skippedOther++;
          results[i] = { done: true };
        }
      }
    }
    if (fetches.length > 0) {
      try {
        await this.requestFetch(scope, fetches);
      } catch (error) {
        // Parked without the fetch they need: retried instead, they ask for it again.
        for (const i of fetchedFor) results[i] = { error };
      }
    }
    if (links.length > 0) {
      let failed: Map<number, { message: string; cause?: unknown }>;
      // The batch call's own failure (a 429 or 503 after the client's retries) is each link's
      // cause: the worker waits the `Retry-After` it carries before the retry.
      let batchError: unknown;
      try {
        failed = await this.sendLinks(
          scope,
          links.map((l) => l.op),
          signal,
        );
      } catch (error) {
        // No answer for the batch: every link-back is retried (a record already linked is
        // linked again, which changes nothing).
        failed = new Map(links.map((_link, index) => [index, { message: errorInfo(error).message }]));
        batchError = error;
      }
      for (const [index, { message, cause: callError }] of failed) {
        const link = links[index];
        if (!link) continue;
        const cause = batchError ?? callError;
        const error = new SyncError(`Linking ${link.entity} ${link.connecId} back to Connec! failed: ${message}`, cause === undefined ? {} : { cause });
        const payload = (items[link.i] as { payload: RecordJobPayload }).payload;
        const record = records.get(link.i);
        // The job's own payload does not hold the sub-record ids this link-back carried (the
        // app returned them): retried as it is, it would link the record id only, and the
        // next version would re-create every line. The retry is a job that carries them.
        if (link.subIds && record && !sameSubIds(payload.linkSubIds, link.subIds)) {
          results[link.i] = {
            error,
            retryWith: { entity: payload.entity, collection: payload.collection, record, ...(full(link.i) ? { full: true } : {}), linkSubIds: link.subIds },
          };
        } else results[link.i] = { error };
      }
    }
    if (thrown) throw thrown.error;
  }

  /**
   * Enqueues on-demand fetches of referenced records: at most one per record per
   * `FETCH_AGAIN_AFTER_MS` window (the window is part of the dedupe key). Dedupe keys stay
   * taken by finished jobs until they are purged, so a key without the window would let a
   * record be fetched only once ever: after a fetch that died in an outage, a record
   * referencing it later could never get it. One storage call, whatever the history.
   */
  private async requestFetch(scope: GroupScope, missing: { entity: string; connecId: string }[]): Promise<void> {
    const window = this.fetchWindow();
    const jobs = new Map<string, JobInput>();
    for (const m of missing) {
      const target = this.deps.connector.entity(m.entity);
      if (!target?.inbound || !this.enabled(scope, target, 'inbound')) continue;
      const job = this.recordJob(scope.tenant.name, scope.groupId, target, { entity: target.name, collection: target.connec, fetchId: m.connecId, full: true }, m.connecId);
      const dedupeKey = `${job.dedupeKey as string}:${window}`;
      jobs.set(dedupeKey, { ...job, dedupeKey });
    }
    if (jobs.size > 0) await this.deps.storage.jobs.enqueueMany([...jobs.values()]);
  }

  /**
   * The job that reads a record from Connec! again and applies its current version, also over
   * a known record (one that did not match its schema when listed or notified). At most one per
   * record and `FETCH_AGAIN_AFTER_MS` window: a finished one keeps its dedupe key, and the
   * record may turn invalid again later.
   */
  rereadJob(tenant: string, groupId: string, entity: AnyEntity, connecId: string, full: boolean): JobInput {
    const job = this.recordJob(tenant, groupId, entity, { entity: entity.name, collection: entity.connec, fetchId: connecId, refresh: true, ...(full ? { full: true } : {}) }, connecId);
    return { ...job, dedupeKey: `${job.dedupeKey as string}:refresh:${this.fetchWindow()}` };
  }

  /** The current `FETCH_AGAIN_AFTER_MS` window, part of the dedupe key of fetches and re-reads. */
  private fetchWindow(): number {
    return Math.floor(this.deps.clock().getTime() / FETCH_AGAIN_AFTER_MS);
  }

  /**
   * A `connec.record` job input: ordered per record, deduplicated by what it does (the content,
   * the sub-record ids it links, and `full`: a full import's job applies what `importSince`
   * keeps a notification's from creating, so the two are not the same job).
   */
  recordJob(tenant: string, groupId: string, entity: AnyEntity, payload: RecordJobPayload, connecId: string): JobInput {
    const content = `${payload.record ? rawHash(payload.record) : 'fetch'}${payload.linkSubIds ? `:link:${rawHash(payload.linkSubIds)}` : ''}${payload.full ? ':full' : ''}`;
    return {
      type: 'connec.record',
      tenant,
      groupId,
      payload: jsonPayload(payload),
      dedupeKey: `connec.record:${tenant}:${keyPart(groupId)}:${entity.name}:${keyPart(connecId)}:${content}`,
      orderingKey: recordOrderingKey(tenant, groupId, entity.name, connecId),
      maxAttempts: this.deps.options.maxAttempts,
    };
  }

  // -------------------------------------------------------------------------------------
  // push (app -> Connec!)

  /**
   * Maps and upserts local records of one entity through the batch endpoint (our id in the
   * `id` array, `opts.matching_fields` on first pushes). Records whose mapped content equals
   * the last successful push are not sent again, so after a partial failure only the failed
   * ones are retried.
   */
  async pushRecords(
    scope: GroupScope,
    entity: AnyEntity,
    records: readonly unknown[],
    signal?: AbortSignal,
    recovering = false,
    /**
     * A catch-up pass (records read from `local.list`, not handed over by the app), started at
     * `startedAt`. A record synced since (pushed by the app, or a Connec! version written) is
     * left alone, as its listed copy may be older; and one whose content is what was last
     * agreed is not sent, even with an error noted on its map (an inbound version the app
     * failed to apply must not be overwritten by the app's unchanged copy).
     */
    catchUp?: { startedAt: Date },
  ): Promise<PushItemResult[]> {
    const outbound = entity.outbound;
    if (!outbound) throw new SyncError(`Entity "${entity.name}" has no outbound direction (toConnec)`);
    throwIfPushAborted(signal);
    const results: PushItemResult[] = [];
    if (!this.enabled(scope, entity, 'outbound')) {
      for (const record of records) {
        const id = pushLocalId(entity.name, outbound.localId, record);
        results.push(
          id.error === null
            ? { localId: id.localId, status: 'skipped', connecId: null, httpStatus: null, error: scope.tenant.connec.enabled ? 'outbound sync disabled for this group' : connecDisabledMessage(scope.tenant.name) }
            : { localId: id.localId, status: 'failed', connecId: null, httpStatus: null, error: id.error, code: MAPPER_ERROR },
        );
      }
      return results;
    }
    const ids = this.idScope(scope, entity.name);
    const pending: {
      index: number;
      localId: string;
      hash: string;
      op: BatchOp;
      connecId: string | null;
      record: unknown;
      appliedAt: Date | null;
      /** The map's `lastPushedHash` when the push was prepared. */
      agreedBefore: string | null;
      /** The map's `syncedAt` when the push was prepared. */
      syncedBefore: Date | null;
      /** The map's `lastError` when the push was prepared. */
      errorBefore: RecordError | null;
    }[] = [];
    // Creates Connec! refused with 409: a record with our id already exists there (an earlier
    // attempt was applied but its answer was lost). Found and linked, they go again as updates.
    const alreadyThere: { index: number; localId: string; record: unknown }[] = [];
    /** Local ids about to be sent for the first time, with no id map yet. */
    const unmapped: string[] = [];
    /** Per target entity, local ids the bodies name in references by our id alone (no id map yet). */
    const unmappedTargets = new Map<string, Set<string>>();
    for (const record of records) {
      const index = results.length;
      // `localId` and `shouldPush` are mappers too: one that fails for a record (no usable id, a
      // null record from JavaScript) fails that record only, like a throwing `toConnec`.
      const id = pushLocalId(entity.name, outbound.localId, record);
      const localId = id.localId;
      if (id.error !== null) {
        // No id to record the failure under: it lives in the result and the event only.
        this.counters.pushFailed++;
        results.push({ localId, status: 'failed', connecId: null, httpStatus: null, error: id.error, code: MAPPER_ERROR });
        this.emitPushed(scope, entity, localId, null, 0, false);
        continue;
      }
      results.push({ localId, status: 'skipped', connecId: null, httpStatus: null, error: null });
      let optedOut = false;
      try {
        optedOut = outbound.shouldPush !== undefined && !outbound.shouldPush(record);
      } catch (error) {
        const message = `shouldPush of entity "${entity.name}" threw for "${localId}": ${errorMessage(error)}`;
        const code = MAPPER_ERROR;
        results[index] = await this.failedPush(ids, localId, null, { code, message, status: null });
        this.emitPushed(scope, entity, localId, null, 0, false);
        continue;
      }
      if (optedOut) {
        results[index] = { localId, status: 'skipped', connecId: null, httpStatus: null, error: 'opted out' };
        continue;
      }
      const map = await this.deps.storage.idMaps.find(ids, { localId });
      if (map?.tombstonedAt) {
        results[index] = { localId, status: 'skipped', connecId: map.connecId, httpStatus: null, error: 'tombstoned' };
        continue;
      }
      if (map && catchUp && map.syncedAt && map.syncedAt.getTime() > catchUp.startedAt.getTime()) {
        results[index] = { localId, status: 'unchanged', connecId: map.connecId, httpStatus: null, error: null };
        continue;
      }
      const connecId = map?.connecId ?? null;
      const isCreate = connecId === null;
      const mctx = this.mapperContext(scope, entity, connecId, localId, isCreate);
      let payload: ConnecRecord;
      let hash: string;
      try {
        const plain = prune(outbound.toConnec(record, mctx));
        if (!isObject(plain)) throw new SyncError(`toConnec of "${entity.name}" must return an object`);
        const onCreate = isCreate && outbound.toConnecOnCreate ? prune(outbound.toConnecOnCreate(record, mctx)) : plain;
        if (!isObject(onCreate)) throw new SyncError(`toConnecOnCreate of "${entity.name}" must return an object`);
        payload = onCreate;
        // The hash of `toConnec` even when the OnCreate payload is sent: the echo check and the
        // next push compare against `toConnec`, so an OnCreate hash would never match either.
        hash = payloadHash(plain);
      } catch (error) {
        // A mapper bug fails this record only, like a rejected op; the others are still pushed.
        const message = `Mapping ${entity.name} "${localId}" for Connec! failed: ${errorMessage(error)}`;
        const code = MAPPER_ERROR;
        results[index] = await this.failedPush(ids, localId, connecId, { code, message, status: null });
        this.emitPushed(scope, entity, localId, connecId, 0, false);
        continue;
      }
      // The content both sides last agreed on is not sent again, unless the record's last push
      // failed: Connec! may then hold something else (a timed-out op it applied after all). An
      // error from an inbound attempt does not count: Connec! holds the version that failed to
      // apply, which its retry writes in the app, and sending the record would overwrite it.
      if (map && connecId !== null && map.lastPushedHash === hash && (catchUp !== undefined || !isPushFailure(map.lastError))) {
        results[index] = { localId, status: 'unchanged', connecId, httpStatus: null, error: null };
        continue;
      }
      // Pushed from inside the inbound write of this very version (the app's save path): Connec!
      // holds it. Sent, it bumped the record in Connec! (and, as a create before its id map
      // exists, made a second one); the write records it as agreed once it returns.
      const writing = inboundWrite.getStore();
      if (
        writing?.open === true &&
        writing.tenant === scope.tenant.name &&
        writing.groupId === scope.groupId &&
        writing.entity === entity.name &&
        (writing.localId === null ? connecId === null : writing.localId === localId) &&
        writing.agreed.has(hash)
      ) {
        results[index] = { localId, status: 'unchanged', connecId, httpStatus: null, error: null };
        continue;
      }
      let body: ConnecRecord;
      try {
        body = await this.fold(scope, entity, payload, localId, connecId, unmappedTargets);
      } catch (error) {
        if (!(error instanceof UnusableReferenceError)) throw error;
        // A reference no record can be keyed by (the mapper's output): this record fails alone.
        const message = `Mapping ${entity.name} "${localId}" for Connec! failed: ${error.message}`;
        const code = MAPPER_ERROR;
        results[index] = await this.failedPush(ids, localId, connecId, { code, message, status: null });
        this.emitPushed(scope, entity, localId, connecId, 0, false);
        continue;
      }
      if (isCreate && entity.matchingFields.length > 0) {
        const opts = isObject(body.opts) ? body.opts : {};
        body.opts = { ...opts, matching_fields: [...entity.matchingFields] };
      }
      if (!map) unmapped.push(localId);
      const singular = entity.connec === 'company';
      pending.push({
        index,
        localId,
        hash,
        connecId,
        record,
        appliedAt: map?.lastAppliedAt ?? null,
        agreedBefore: map?.lastPushedHash ?? null,
        syncedBefore: map?.syncedAt ?? null,
        errorBefore: map?.lastError ?? null,
        op: {
          method: isCreate && !singular ? 'post' : 'put',
          groupId: scope.groupId,
          collection: entity.connec,
          id: singular ? undefined : (connecId ?? undefined),
          record: body,
        },
      });
    }
    // Before a create leaves, a map records the local id as ours in this group: Connec! will
    // carry it in the record's id array, and an inbound copy (a notification, a poll) is only
    // linked through our id when such a map vouches for it, even if the answer is lost or the
    // process dies before it. A map a concurrent push inserted first is as good (null result).
    if (unmapped.length > 0) await this.deps.storage.idMaps.insertMany(unmapped.map((localId) => ({ ...ids, connecId: null, localId })));
    // So does a reference sent by our id alone (its target not linked: its push skipped, or
    // not made yet): Connec! keeps our id in it (on a placeholder record it reserves), and the
    // record read back names the target by it. Without a map vouching for that id, the
    // reference resolved to nobody, and the read-back of a push whose answer was lost wrote
    // the reference empty in the app. That map vouches for references only (`referencedScope`).
    for (const [target, localIds] of unmappedTargets) {
      await this.deps.storage.idMaps.insertMany([...localIds].map((localId) => ({ ...this.referencedScope(scope, target), connecId: null, localId })));
    }
    const size = this.deps.options.batchSize;
    /** The `syncedAt` this call wrote per local id (a record given twice is not overtaken by itself). */
    const syncedHere = new Map<string, Date>();
    /** Id maps of the references the answers name (`answerUnsent`), read once per call. */
    const answerMaps: MapCache = new Map();
    const chunks: (typeof pending)[] = [];
    for (let start = 0; start < pending.length; start += size) chunks.push(pending.slice(start, start + size));
    for (let chunk = chunks.shift(); chunk !== undefined; chunk = chunks.shift()) {
      // A call that throws (Connec! down after the client's retries) fails this chunk's ops
      // only: earlier chunks stay pushed and linked, and every record gets its result.
      // Also since the push began (during the reads above, or between two chunks).
      throwIfPushAborted(signal);
      let answers: BatchOpResult[] = [];
      let thrown: { message: string; status: number | null; cause: unknown } | null = this.refusedCall(scope);
      try {
        if (!thrown) {
          answers = await scope.port.batch(
            chunk.map((p) => p.op),
            signal ? { signal } : {},
          );
          this.noteRefusal(scope, SyncEngine.wholeCallFailure(answers));
        }
      } catch (error) {
        if (signal?.aborted) throw error;
        const status = isObject(error) && typeof error.status === 'number' ? error.status : null;
        thrown = { message: errorMessage(error), status, cause: error };
        this.noteRefusal(scope, thrown);
      }
      // A body Connec! refuses as too large (413) is the call's, not any one record's: halves
      // are sent instead, down to a single record, which alone fails if it is still too large.
      // Otherwise one oversized record failed every record sent with it, on every retry.
      if ((thrown ?? SyncEngine.wholeCallFailure(answers))?.status === 413 && chunk.length > 1) {
        const half = Math.ceil(chunk.length / 2);
        chunks.unshift(chunk.slice(0, half), chunk.slice(half));
        this.deps.logger.debug('sync: batch body too large for Connec! (413); sending it in halves', {
          tenant: scope.tenant.name,
          groupId: scope.groupId,
          entity: entity.name,
          records: chunk.length,
        });
        continue;
      }
      for (const [i, item] of chunk.entries()) {
        const answer: BatchOpResult | undefined = thrown ? { status: thrown.status, record: null, error: thrown.message } : answers[i];
        const ok = answer !== undefined && answer.status !== null && answer.status >= 200 && answer.status < 300;
        // A Connec! id no storage can key a map by (a NUL, an unpaired surrogate, overlong) is
        // not taken: a create answered with one fails alone, as one answered with no id does,
        // instead of the storage error rejecting the whole call (the records after it applied
        // in Connec! but left unlinked, with no result).
        const answeredId = ok && answer.record ? connecIdOf(answer.record.id) : null;
        const returnedId = answeredId !== null && usableId(answeredId) ? answeredId : null;
        const connecId = returnedId ?? item.connecId;
        // Connec! may merge the op into a record already linked to another local record (two
        // local records matching one Connec! record on `matching_fields`): that op fails alone.
        let conflict: LinkConflictError | null = null;
        let current: IdMapRecord | null = null;
        if (ok && connecId !== null) {
          try {
            current = await this.linkMap(scope, entity.name, connecId, item.localId);
          } catch (error) {
            if (!(error instanceof LinkConflictError)) throw error;
            conflict = error;
          }
        }
        const linked = ok && connecId !== null && conflict === null;
        if (!thrown && item.op.method === 'post' && answer?.status === 409 && !recovering) {
          alreadyThere.push({ index: item.index, localId: item.localId, record: item.record });
          continue;
        }
        if (linked) {
          // Connec!'s versions older than the one this push made are stale from now on: a late
          // notification of another app's earlier edit must not revert the push. One of the
          // same second (Connec! stamps to the second) is the same instant: Connec!'s current
          // version is fetched and decides; the push's own echo is told apart without a fetch.
          const answeredAt = answer?.record ? parseTimestamp(answer.record.updated_at) : null;
          const applied = answeredAt && (!item.appliedAt || answeredAt.getTime() > item.appliedAt.getTime()) ? { lastAppliedAt: answeredAt } : {};
          // An inbound version written in the app while this push was in flight may have
          // overwritten the record the app had read and pushed: the local record may not hold
          // the pushed content, so it is not recorded as agreed, and Connec!'s version (this
          // push's) is written locally when delivered instead of skipped as an echo. Such a
          // write (or its rollback) moves the map's `syncedAt` (`markApplied` in sync), even when
          // it leaves the agreed hash as it was (a version that changed only fields `toConnec`
          // does not send); an echo or an unchanged version skipped meanwhile wrote nothing in
          // the app and moves neither. A create's own link sets `syncedAt`, so for a create only
          // a moved agreed hash tells. A concurrent push of the same record with other content moves
          // `syncedAt` too and this one is not taken as agreed either: harmless, the next push
          // sends the record again and its echo is written in the app, which already holds it.
          // This push's own echo, delivered (and written, as it could not be recognised yet)
          // before the batch answered, moves `syncedAt` too, but leaves this push's content as
          // the agreed one: that is no overtaking.
          // An inbound attempt that failed meanwhile counts too: `local.update` may have thrown
          // after its write committed (the answer lost), so the app may hold that version. Not
          // taken as agreed, the push's echo writes Connec!'s version in the app; taken, the echo
          // was skipped and the failed attempt's retry, older than the push, too.
          const overtaken =
            current !== null &&
            ((current.lastPushedHash !== item.agreedBefore && current.lastPushedHash !== item.hash) ||
              (item.connecId !== null &&
                current.lastPushedHash !== item.hash &&
                !sameInstant(current.syncedAt, syncedHere.get(item.localId) ?? item.syncedBefore)) ||
              (item.connecId !== null && inboundFailedSince(current.lastError, item.errorBefore)));
          // A create Connec! merged into a record it already held (`matching_fields`: 200, not
          // 201) answers that record, whose other fields the app may never have had: the app
          // does not hold Connec!'s content, so its listing (the import's inbound half, a poll)
          // is applied instead of skipped as this push's echo (`MERGED_ANSWER`).
          const merged = item.op.method === 'post' && answer?.status === 200;
          // An update's answer may carry an edit another app made before it (its notification,
          // older than the answer, will be skipped as stale): what the push did not send
          // differs from what Connec! last held. Such an answer, and a merged create's, is
          // written in the app through the inbound path (a record job, in order with the
          // record's notifications, under the conflict policy) instead of taken as the echo.
          // An answer still to write (a push before its job ran) makes the next one written too.
          // Hashed as an inbound write of the answer would hash it (`answerUnsent`), so the two compare.
          const inboundOn = entity.inbound !== undefined && this.enabled(scope, entity, 'inbound');
          // The answer as Connec!'s content, or null when it holds none of what the push sent
          // (an envelope with little more than the id array, CONNECTORS §A7): taken as the
          // content, its echo (the whole record) was not recognised and written over the app's
          // record, and a merged create's id-only answer was written in the app as the record.
          const content = answer?.record && answerHoldsContent(answer.record, item.op.record) ? answer.record : null;
          const unsent = content && inboundOn ? await this.answerUnsent(scope, entity, content, connecId, item.localId, answerMaps) : null;
          const carried =
            item.op.method === 'put' &&
            current !== null &&
            (current.lastReceivedHash?.startsWith(APPLY_PREFIX) === true || (unsent !== null && unsentOf(current) !== null && unsentOf(current) !== unsent));
          const apply = content !== null && (merged || carried) && inboundOn;
          // Connec!'s content after this push, as answered: its echo is recognised by it.
          // A merged create whose answer holds no content still reads as merged: its listing or
          // notification is written in the app, not taken as this push's echo.
          const answered = content
            ? apply
              ? applyContent(echoHash(content))
              : merged
                ? MERGED_ANSWER
                : withUnsent(pushedContent(echoHash(content)), unsent)
            : merged && answer?.record
              ? MERGED_ANSWER
              : null;
          const received = overtaken ? {} : { lastReceivedHash: answered };
          const syncedAt = this.deps.clock();
          await this.deps.storage.idMaps.update(
            ids,
            { localId: item.localId },
            { lastPushedHash: overtaken ? null : item.hash, syncedAt, ...applied, ...received },
          );
          // The error the push was prepared with is over; only that one: another push of the
          // record failing while this one was in flight recorded its own, which must stay (the
          // next push of this content is then sent again, `isPushFailure`: Connec! may hold that
          // push's content, applied after this one).
          if (item.errorBefore) await this.deps.storage.idMaps.clearError(ids, { localId: item.localId }, item.errorBefore);
          syncedHere.set(item.localId, syncedAt);
          if (apply && !overtaken && content && connecId !== null) {
            const job = this.recordJob(scope.tenant.name, scope.groupId, entity, { entity: entity.name, collection: entity.connec, record: content }, connecId);
            await this.deps.storage.jobs.enqueueMany([job]);
          }
          await this.wake(scope, entity.name, connecId);
          this.counters.pushed++;
          results[item.index] = { localId: item.localId, status: 'pushed', connecId, httpStatus: answer?.status ?? null, error: null };
        } else {
          const message = conflict
            ? conflict.message
            : answeredId !== null && returnedId === null
              ? `Connec! answered HTTP ${answer?.status} with a Connec! id ${isStorableText(answeredId) ? `longer than ${MAX_ID_LENGTH} characters` : 'holding a NUL character or an unpaired UTF-16 surrogate'}, which no record can be keyed by`
              : answer
                ? (answer.error ?? (answer.status === null ? 'no answer' : `HTTP ${answer.status}`))
                : 'no result for op';
          const status = thrown ? thrown.status : (answer?.status ?? null);
          const code = conflict ? LINK_CONFLICT : !thrown && answer?.invalid === true ? MAPPER_ERROR : status === null ? PUSH_FAILED : `http_${status}`;
          results[item.index] = await this.failedPush(ids, item.localId, item.connecId, { code, message, status, cause: thrown ? thrown.cause : answer?.cause });
          if (conflict) {
            this.deps.logger.warn('sync: pushed record merged into a Connec! record linked to another local record', {
              tenant: scope.tenant.name,
              groupId: scope.groupId,
              entity: entity.name,
              localId: item.localId,
              connecId,
            });
          }
        }
        this.emitPushed(scope, entity, item.localId, linked ? connecId : item.connecId, answer?.status ?? 0, linked);
      }
    }
    for (const item of alreadyThere) {
      try {
        results[item.index] = await this.recoverCreate(scope, entity, item.localId, item.record, signal);
      } catch (error) {
        // Connec! failing the look-up (down after the client's retries) fails this record only,
        // as a failed batch call does: thrown, the records already pushed and linked in this
        // call got no result, and the caller saw the whole call fail.
        if (signal?.aborted || !(error instanceof ApiError || error instanceof ConnectionError || error instanceof ResponseValidationError)) throw error;
        const status = isObject(error) && typeof error.status === 'number' ? error.status : null;
        const code = status === null ? PUSH_FAILED : `http_${status}`;
        results[item.index] = await this.failedPush(ids, item.localId, null, { code, message: errorMessage(error), status, cause: error });
        this.emitPushed(scope, entity, item.localId, null, status ?? 0, false);
      }
    }
    return results;
  }

  /**
   * A create Connec! refused with 409 because a record already carries our id: an earlier
   * attempt went through and its answer was lost (a timeout, a dropped connection), so the id
   * map never got the Connec! id and every later create would be refused the same way. The
   * record is looked up among those updated recently, linked, and pushed again as an update.
   */
  private async recoverCreate(scope: GroupScope, entity: AnyEntity, localId: string, record: unknown, signal: AbortSignal | undefined): Promise<PushItemResult> {
    const ids = this.idScope(scope, entity.name);
    const map = await this.deps.storage.idMaps.find(ids, { localId });
    const now = this.deps.clock().getTime();
    const since = new Date(Math.min(map?.createdAt.getTime() ?? now, now) - PUSH_RECOVERY_WINDOW_MS);
    const top = this.deps.options.pageSize;
    let connecId: string | null = null;
    let skip = 0;
    for (let pages = 0; pages < PUSH_RECOVERY_MAX_PAGES && connecId === null; pages++) {
      const page = await this.listPage(scope, entity.connec, {
        skip,
        top,
        filter: `updated_at gte '${since.toISOString()}'`,
        // Newest first: the record the lost create made is among the last updated. Read oldest
        // first, a group where more records were updated in the window than the pages read
        // hold never reached it, and every later push of the record failed with 409.
        orderBy: 'updated_at DESC',
        signal,
      });
      const found = page.records.find((r) => ownIdOf(r.id, scope.owner) === localId && usableId(connecIdOf(r.id)));
      if (found) connecId = connecIdOf(found.id);
      if (!hasMorePages(page, top)) break;
      skip += page.records.length;
    }
    let message = `Connec! already holds a "${entity.connec}" record with local id ${localId} (an earlier push went through), and it is not among the records updated since ${since.toISOString()}`;
    let code = 'http_409';
    if (connecId !== null) {
      try {
        await this.linkMap(scope, entity.name, connecId, localId);
        this.deps.logger.info('sync: a create already applied by Connec! was linked; pushing it again as an update', {
          tenant: scope.tenant.name,
          groupId: scope.groupId,
          entity: entity.name,
          localId,
          connecId,
        });
        const [again] = await this.pushRecords(scope, entity, [record], signal, true);
        if (again) return again;
      } catch (error) {
        if (!(error instanceof LinkConflictError)) throw error;
        message = error.message;
        code = LINK_CONFLICT;
      }
    }
    const failed = await this.failedPush(ids, localId, null, { code, message, status: 409 });
    this.emitPushed(scope, entity, localId, null, 409, false);
    return failed;
  }

  private emitPushed(scope: GroupScope, entity: AnyEntity, localId: string, connecId: string | null, status: number, ok: boolean): void {
    this.deps.emit({ type: 'record.pushed', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, localId, connecId, status, ok });
  }

  /** A record's failed push: recorded on its id map and counted; its result keeps the cause (`pushFailureCauses`). */
  private async failedPush(
    ids: IdMapScope,
    localId: string,
    connecId: string | null,
    failure: { code: string; message: string; status: number | null; cause?: unknown },
  ): Promise<PushItemResult> {
    await this.recordPushFailure(ids, localId, { code: failure.code, message: failure.message, at: this.deps.clock() });
    this.counters.pushFailed++;
    const failed: PushItemResult = { localId, status: 'failed', connecId, httpStatus: failure.status, error: failure.message, code: failure.code };
    if (failure.cause !== undefined) pushFailureCauses.set(failed, failure.cause);
    return failed;
  }

  /** Records a failed push on the local record's id map (created, unlinked, when it has none). */
  private async recordPushFailure(ids: IdMapScope, localId: string, lastError: RecordError): Promise<void> {
    const existing = await this.deps.storage.idMaps.find(ids, { localId });
    if (!existing) {
      try {
        await this.deps.storage.idMaps.insert({ ...ids, connecId: null, localId });
      } catch (error) {
        if (!(error instanceof StorageConflictError)) throw error;
      }
    }
    // Stored as the logger would write it: without the credentials the failure text quotes.
    await this.deps.storage.idMaps.update(ids, { localId }, { lastError: { ...lastError, message: scrubErrorText(lastError.message) } });
  }

  /** Turns local-id references of an outbound payload into id arrays. */
  private async fold(
    scope: GroupScope,
    entity: AnyEntity,
    payload: ConnecRecord,
    localId: string,
    connecId: string | null,
    /** Collects, per target entity, the local ids sent by our id alone (no id map). */
    unmappedTargets: Map<string, Set<string>>,
  ): Promise<ConnecRecord> {
    const realm = scope.group.orgUid;
    const ours = (id: string): IdEntry => ({ id, provider: scope.owner.provider, realm: scope.owner.realm });
    // Connec!'s entries need the org uid as realm: unknown (an IdP that sends no
    // `group_org_uid`), they are left out rather than sent with an empty realm, which would
    // read as another realm's id. Our own entry names the record (and the op's path its
    // Connec! id); Connec! resolves references by it.
    const connec = (id: string): IdEntry[] => (realm ? [{ id, provider: CONNEC_PROVIDER, realm }] : []);
    let out: ConnecRecord = { ...payload, id: connecId ? [...connec(connecId), ours(localId)] : [ours(localId)] };
    for (const [path, target] of Object.entries(entity.references)) {
      const resolved = new Map<string, IdEntry[] | null>();
      for (const { location, value } of valuesAt(out, path)) {
        if (typeof value !== 'string' || value === '') {
          resolved.set(location, value === null || value === undefined || value === '' ? null : idArrayOrNull(value));
          continue;
        }
        if (!usableLocalId(value)) throw new UnusableReferenceError(`${path} (${location}) is ${unusableIdProblem(value)}, which no record can be keyed by`);
        const map = await this.deps.storage.idMaps.find(this.idScope(scope, target), { localId: value });
        if (!map) unmappedTargets.set(target, (unmappedTargets.get(target) ?? new Set()).add(value));
        resolved.set(location, map?.connecId ? [...connec(map.connecId), ours(value)] : [ours(value)]);
      }
      out = mapAt(out, path, (value, location) => (resolved.has(location) ? resolved.get(location) : value));
    }
    // Sub-record ids (invoice lines) as `toConnec` gives them, our ids as strings, become id
    // arrays too, as for the record itself (PROTOCOL §6.6: `lines/id`): sent as strings, Connec!
    // kept none of them, and the next version brought every pushed line back with `id: null`
    // (a new line to the app).
    for (const path of entity.subRecords) {
      out = mapAt(out, `${path}/id`, (value, location) => {
        if (typeof value !== 'string' || value === '') return value;
        if (!usableLocalId(value)) throw new UnusableReferenceError(`${path}/id (${location}) is ${unusableIdProblem(value)}, which no sub-record can be keyed by`);
        return [ours(value)];
      });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------
  // initial import

  /**
   * Imports a group: first the outbound half (local records pushed with `matching_fields`
   * so Connec! merges instead of duplicating), then every inbound entity in reference order,
   * page by page, checkpointing after each committed page. A second run resumes where the
   * first stopped; a completed import is not repeated unless `full` is set.
   */
  async importGroup(
    tenantName: string,
    groupId: string,
    options: {
      full?: boolean;
      signal?: AbortSignal | undefined;
      onProgress?: (progress: { entity: string; done: number; total: number | null }) => void;
      heartbeat?: () => Promise<boolean>;
      /**
       * Only the outbound half, over every local record again (`local.list`): what changed
       * since its last push is pushed, the rest is skipped as unchanged. What catches Connec!
       * up with edits made while the group's sync (or an entity's outbound switch) was off,
       * which were answered `skipped`.
       */
      outboundOnly?: boolean;
      /**
       * What identifies a full import across its attempts (its job's id): a retry of it resumes
       * from the checkpoints this run wrote instead of starting over. Without it, `full`
       * starts from the first page every time.
       */
      fullRun?: string;
    } = {},
  ): Promise<SyncReport> {
    return this.runLocked('import', tenantName, groupId, options, async (scope, { entities, failures, startedAt, keepAlive }) => {
      // Referenced entities first (`pushOrder`): a record pushed before the one it references
      // is linked names it by our id only, which Connec! resolves to a placeholder record, not
      // to the one the target's push then merges into (`matching_fields`).
      for (const entity of this.deps.connector.pushOrder ?? this.deps.connector.entities) {
        if (!entity.outbound || !entity.list || !this.enabled(scope, entity, 'outbound')) continue;
        const report = (entities[entity.name] ??= emptyEntityReport());
        // A catch-up pass has a cursor of its own: the initial import's stays complete.
        const pass = options.outboundOnly ? { full: true, kind: 'outbound.catchup' } : { full: options.full ?? false, kind: 'import.outbound' };
        const fullRun = !options.outboundOnly && options.full ? options.fullRun : undefined;
        await this.importOutbound(scope, entity, report, failures, pass.full, options.signal, keepAlive, pass.kind, fullRun);
      }
      if (options.outboundOnly) return;
      for (const entity of this.deps.connector.importOrder) {
        if (!this.enabled(scope, entity, 'inbound')) continue;
        const report = (entities[entity.name] ??= emptyEntityReport());
        const began = await this.importEntity(scope, entity, report, failures, { ...options, startedAt }, keepAlive);
        // Later polls read what changed since this import first began (pages read earlier, by
        // this run or by an earlier one it resumed, may have changed since).
        await this.seedPollCursor(scope, entity, began);
      }
    });
  }

  /**
   * Runs an import or a poll of a group under the group's lock (one import, poll or purge of
   * a group at a time) and builds its `SyncReport`: `complete`, or `partial` inside an
   * `ImportFailedError` when it stopped. `keepAlive`, called between pages, renews the lock
   * and the job lease once a tenth of the lock TTL has passed (not on every page: two round
   * trips per page would cost more than the page), and stops on abort or once the group is
   * cancelled (one status read per call).
   */
  private async runLocked(
    kind: 'import' | 'poll',
    tenantName: string,
    groupId: string,
    options: { signal?: AbortSignal | undefined; heartbeat?: () => Promise<boolean> },
    body: (
      scope: GroupScope,
      run: { entities: Record<string, EntityReport>; failures: RecordFailure[]; startedAt: Date; keepAlive: () => Promise<void> },
    ) => Promise<void>,
  ): Promise<SyncReport> {
    const startedAt = this.deps.clock();
    const scope = await this.scope(tenantName, groupId);
    if (!scope) throw new SyncError(`Cannot ${kind} group "${groupId}" of tenant "${tenantName}": unknown tenant or group, or group cancelled`);
    const lockKey = groupSyncLockKey(tenantName, groupId);
    const lockOwner = `${this.deps.instanceId}:${randomUUID()}`;
    const ttl = this.deps.options.importLockTtlMs;
    const taken = await takeOrGiveBack(
      () => this.deps.storage.locks.acquire(lockKey, lockOwner, ttl),
      () => this.deps.storage.locks.release(lockKey, lockOwner),
    );
    if (!taken) {
      throw new ImportBusyError(`An import or poll of group "${groupId}" (tenant "${tenantName}") is already running`);
    }
    const entities: Record<string, EntityReport> = {};
    const failures: RecordFailure[] = [];
    // An import can run for minutes: say it began (polls, every interval per group, stay at debug).
    this.deps.logger[kind === 'import' ? 'info' : 'debug'](`sync: ${kind} started`, { tenant: tenantName, groupId });
    const renew = groupLockRenewer({
      storage: this.deps.storage,
      key: lockKey,
      owner: lockOwner,
      ttlMs: ttl,
      heartbeat: options.heartbeat,
      lost: (what) => new SyncError(what === 'lock' ? `Lost the import lock of group "${groupId}" (tenant "${tenantName}")` : `Lost the lease of the ${kind} job`),
    });
    const keepAlive = async () => {
      if (options.signal?.aborted) throw new SyncError(`${kind === 'import' ? 'Import' : 'Poll'} aborted`, { cause: options.signal.reason });
      // A group deleted while the run goes on (the webhook takes no group sync lock): stop
      // before the next page instead of writing it into a cancelled company (and its Connec!).
      // A failed read stops nothing here (the run's own writes meet a storage outage anyway).
      const now = await this.deps.storage.groups.get(tenantName, groupId).catch(() => null);
      if (now && now.status !== 'active') throw new GroupCancelledError(`Group "${groupId}" (tenant "${tenantName}") was cancelled during the ${kind}`);
      await renew();
    };
    const reportOf = (status: SyncReport['status']): SyncReport => ({ tenant: tenantName, groupId, status, startedAt, finishedAt: this.deps.clock(), entities, failures });
    try {
      // Decided on the settings the run reads, under the group's lock: a run of a group whose
      // sync is switched off would read nothing and still count as done.
      if (!scope.tenant.connec.enabled) throw new SyncDisabledError(`${connecDisabledMessage(tenantName)}; the ${kind} did not run`);
      if (!groupSyncEnabled(scope.group.settings)) {
        throw new SyncDisabledError(`The sync of group "${groupId}" (tenant "${tenantName}") is switched off; the ${kind} did not run`);
      }
      await body(scope, { entities, failures, startedAt, keepAlive });
      const report = reportOf('complete');
      if (kind === 'import') this.deps.emit({ type: 'import.completed', tenant: tenantName, groupId, report });
      const fetched = Object.values(entities).reduce((n, e) => n + e.fetched, 0);
      // Like its start: a poll runs every interval for every group, so a routine one stays at
      // debug; one with failures says so (each failure is also reported on its own).
      this.deps.logger[kind === 'import' || failures.length > 0 ? 'info' : 'debug'](`sync: ${kind} completed`, { tenant: tenantName, groupId, fetched, failures: failures.length });
      return report;
    } catch (error) {
      if (error instanceof SyncDisabledError) throw error;
      const what = kind === 'import' ? 'Import' : 'Poll';
      throw new ImportFailedError(`${what} of group "${groupId}" (tenant "${tenantName}") stopped: ${errorInfo(error).message}`, reportOf('partial'), error);
    } finally {
      await this.deps.storage.locks.release(lockKey, lockOwner).catch(() => false);
    }
  }

  // -------------------------------------------------------------------------------------
  // incremental poll (a safety net beside notifications)

  /**
   * Reads what changed in Connec! since the last poll and applies it like notifications:
   * per inbound entity, `updated_at gte '<cursor - overlap>'` ordered by `updated_at`, paged
   * by key (the last `updated_at` seen, skipping the records of that instant already read)
   * so records updated during the run shift nothing. The cursor (kind `poll`) then moves to
   * the newest `updated_at` applied; the overlap makes the next run re-read the boundary, and
   * re-reads are replays (no write). Shares the group's lock: a poll never runs beside an
   * import, a purge or another poll.
   */
  async pollGroup(
    tenantName: string,
    groupId: string,
    options: {
      overlapMs: number;
      signal?: AbortSignal | undefined;
      heartbeat?: () => Promise<boolean>;
      /** Only entities already polled or imported (a catch-up must not import an entity from scratch). */
      existingCursorsOnly?: boolean;
    },
  ): Promise<SyncReport> {
    return this.runLocked('poll', tenantName, groupId, options, async (scope, { entities, failures, keepAlive }) => {
      for (const entity of this.deps.connector.importOrder) {
        if (!this.enabled(scope, entity, 'inbound')) continue;
        if (options.existingCursorsOnly && !(await this.deps.storage.cursors.get(this.pollKey(scope, entity)))) continue;
        const report = (entities[entity.name] ??= emptyEntityReport());
        await this.pollEntity(scope, entity, report, failures, options.overlapMs, options.signal, keepAlive);
        await keepAlive();
      }
    });
  }

  private pollKey(scope: GroupScope, entity: AnyEntity) {
    return { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, kind: 'poll' };
  }

  /** Starts an entity's poll cursor at `at` unless it has one (after an import: what changed since it began). */
  private async seedPollCursor(scope: GroupScope, entity: AnyEntity, at: Date): Promise<void> {
    const key = this.pollKey(scope, entity);
    if (await this.deps.storage.cursors.get(key)) return;
    await this.deps.storage.cursors.advance(key, at.getTime(), { since: at.toISOString() }, false);
  }

  private async pollEntity(
    scope: GroupScope,
    entity: AnyEntity,
    report: EntityReport,
    failures: RecordFailure[],
    overlapMs: number,
    signal: AbortSignal | undefined,
    betweenPages?: () => Promise<void>,
  ): Promise<void> {
    const key = this.pollKey(scope, entity);
    const cursor = await this.deps.storage.cursors.get(key);
    const since = typeof cursor?.data.since === 'string' ? parseTimestamp(cursor.data.since) : null;
    const top = this.deps.options.pageSize;
    if (entity.connec === 'company') {
      const page = await this.listPage(scope, entity.connec, { skip: 0, top: 1, signal });
      const tail = await this.importPage(scope, entity, page.records, report, failures, { signal });
      await tail();
      return;
    }
    let lower = since ? new Date(since.getTime() - overlapMs) : new Date(0);
    // Key paging on `updated_at`: each page asks for `gte` the newest instant read so far and
    // drops the versions this run already applied. No `$skip` offsets, which a record updated
    // meanwhile (another app, or our own link-back) would shift past unread records.
    const applied = new Map<string, number>();
    let stepOver = 0;
    let newest: Date | null = null;
    for (;;) {
      if (signal?.aborted) throw new SyncError('Poll aborted', { cause: signal.reason });
      const page = await this.listPage(scope, entity.connec, {
        skip: stepOver,
        top,
        filter: `updated_at gte '${lower.toISOString()}'`,
        orderBy: 'updated_at ASC',
        signal,
      });
      // Before the page is applied: the lock and lease renewed, the group still active.
      await betweenPages?.();
      const stampOf = (r: ConnecRecord) => parseTimestamp(r.updated_at)?.getTime() ?? null;
      // A record without a readable Connec! id (one that does not match its schema) is told
      // apart by its content: re-read at the same instant, it is not reported again.
      const keyOf = (r: ConnecRecord) => connecIdOf(r.id) ?? `raw:${rawHash(r)}`;
      // A record without a readable `updated_at` is remembered too (as stamp -Infinity).
      const stampKey = (r: ConnecRecord) => stampOf(r) ?? Number.NEGATIVE_INFINITY;
      const fresh = page.records.filter((r) => applied.get(keyOf(r)) !== stampKey(r));
      const stamps = page.records.map(stampOf).filter((t): t is number => t !== null);
      const last = stamps.length > 0 ? Math.max(...stamps) : null;
      if (last !== null && last < lower.getTime()) {
        throw new SyncError(`Connec! answered "${entity.connec}" records older than the updated_at filter; polling cannot page them`);
      }
      if (fresh.length === 0) {
        // Versions this run read or wrote (its link-backs' answers): the cursor still moves past them.
        if (last !== null && (newest === null || last > newest.getTime())) newest = new Date(last);
        if (!hasMorePages(page, top)) break;
        // A whole page of versions already applied at one instant: step over it.
        stepOver += page.records.length;
        continue;
      }
      stepOver = 0;
      // A record this run links back is answered with a new `updated_at` (our link-back's
      // version), which a later page lists again: when that version holds the content applied
      // (no other app's edit in between), it is taken as read too, so it is neither applied
      // again nor counted twice. One that holds another change is read and applied.
      const linked = new Map<string, number>();
      const onLinked = (connecId: string, answered: ConnecRecord | null, appliedRecord: ConnecRecord) => {
        const stamp = answered ? stampOf(answered) : null;
        if (answered && stamp !== null && contentHash(answered) === contentHash(appliedRecord)) linked.set(connecId, stamp);
      };
      const tail = await this.importPage(scope, entity, fresh, report, failures, { signal, onLinked });
      await tail();
      for (const r of fresh) applied.set(keyOf(r), stampKey(r));
      for (const [connecId, stamp] of linked) applied.set(connecId, stamp);
      if (last !== null && (newest === null || last > newest.getTime())) newest = new Date(last);
      if (!hasMorePages(page, top) || last === null) break;
      if (last > lower.getTime()) {
        lower = new Date(last);
        for (const [cid, t] of applied) if (t < last) applied.delete(cid);
      }
    }
    if (newest) await this.deps.storage.cursors.advance(key, newest.getTime(), { since: newest.toISOString() }, false);
    this.deps.emit({ type: 'import.progress', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, done: report.fetched, total: null });
  }

  /**
   * Now, returned once the clock reads later than it (under a millisecond): whatever is stamped
   * with it or earlier happened before the caller's next step. The clock is spun, not waited on
   * with a timer: under a test's fake timers a timer may never fire, and a catch-up hung. A
   * clock that does not move (a test's) is read a bounded number of times (some milliseconds).
   */
  private instantPassed(): Date {
    const at = this.deps.clock().getTime();
    for (let i = 0; i < INSTANT_SPIN_LIMIT && this.deps.clock().getTime() <= at; i++);
    return new Date(at);
  }

  private async importOutbound(
    scope: GroupScope,
    entity: AnyEntity,
    report: EntityReport,
    failures: RecordFailure[],
    full: boolean,
    signal: AbortSignal | undefined,
    keepAlive: () => Promise<void>,
    kind = 'import.outbound',
    fullRun?: string,
  ): Promise<void> {
    const key = { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, kind };
    if (full && !(await this.sameFullRun(key, fullRun))) await this.deps.storage.cursors.reset(key);
    const cursor = await this.deps.storage.cursors.get(key);
    if (cursor?.complete || !entity.list) return;
    const mctx = this.mapperContext(scope, entity, null, null, false);
    // Taken before the lister starts: a record synced after it (a push of the app, an inbound
    // write) is newer than any copy the lister holds. Not per page: a lister may read a page
    // once and yield its records one by one, each copy as old as that read. The clock is waited
    // past it first, so that a map synced within that millisecond was synced before the lister
    // started: a push of the import this catch-up followed, finishing in the same millisecond,
    // otherwise left the edit made while the sync was off looking synced since, never pushed.
    const catchUp = kind !== 'import.outbound' ? { startedAt: this.instantPassed() } : undefined;
    let batch: unknown[] = [];
    let done = 0;
    const transient: PushItemResult[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const results = await this.pushRecords(scope, entity, batch, signal, false, catchUp);
      for (const r of results) {
        if (r.status === 'pushed') report.pushed++;
        if (r.status === 'failed') {
          if (isTransientPushFailure(r)) transient.push(r);
          report.failed++;
          failures.push({ entity: entity.name, direction: 'outbound', connecId: r.connecId, localId: r.localId, code: r.code ?? (r.httpStatus === null ? PUSH_FAILED : `http_${r.httpStatus}`), message: r.error ?? 'push failed' });
        }
      }
      done += batch.length;
      batch = [];
      await keepAlive();
    };
    for await (const item of entity.list(this.localContext(mctx, signal))) {
      if (Array.isArray(item)) batch.push(...item);
      else batch.push(item);
      if (batch.length >= this.deps.options.batchSize) await flush();
    }
    await flush();
    // A push Connec! may accept on a retry must not be given up: the inbound half would import
    // its Connec! match as a second local record. Fail the import before the cursor moves, so
    // the retry pushes again (only the failed records: the others are unchanged now).
    if (transient.length > 0) {
      const first = transient[0] as PushItemResult;
      const failed = transient.length;
      // The call's own error (a 429's `Retry-After`) is the cause: the retry waits for it.
      const cause = transient.map((r) => pushFailureCauses.get(r)).find((c) => c !== undefined);
      throw new SyncError(
        `${failed} push${failed === 1 ? '' : 'es'} of "${entity.name}" failed with a retryable status (${first.httpStatus === null ? 'no answer' : `HTTP ${first.httpStatus}`}: ${first.error ?? 'push failed'}); the import stops before the inbound half and is retried`,
        cause === undefined ? {} : { cause },
      );
    }
    await this.deps.storage.cursors.advance(key, done, fullRun !== undefined ? { fullRun } : {}, true);
  }

  /**
   * Whether the cursor at `key` was written by the full import `fullRun` (an earlier attempt of
   * the same job): its retry resumes from it rather than resetting it again.
   */
  private async sameFullRun(key: CursorKey, fullRun: string | undefined): Promise<boolean> {
    if (fullRun === undefined) return false;
    const cursor = await this.deps.storage.cursors.get(key);
    return cursor?.data.fullRun === fullRun;
  }

  private async importEntity(
    scope: GroupScope,
    entity: AnyEntity,
    report: EntityReport,
    failures: RecordFailure[],
    options: {
      full?: boolean;
      signal?: AbortSignal | undefined;
      onProgress?: (p: { entity: string; done: number; total: number | null }) => void;
      /** When this run began. */
      startedAt: Date;
      /** See `importGroup`. */
      fullRun?: string | undefined;
    },
    keepAlive: () => Promise<void>,
  ): Promise<Date> {
    const key = { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, kind: 'import' };
    const fullRun = options.full ? options.fullRun : undefined;
    if (options.full && !(await this.sameFullRun(key, fullRun))) await this.deps.storage.cursors.reset(key);
    const cursor = await this.deps.storage.cursors.get(key);
    // When the entity's import first began: a resumed run keeps the first run's start, which
    // its checkpoints carry (`startedAt`), since the pages that run read may have changed since.
    const began = importBegan(cursor, options.startedAt);
    if (cursor?.complete) return began;
    let skip = cursor?.position ?? 0;
    const top = entity.connec === 'company' ? 1 : this.deps.options.pageSize;
    const fetchPage = (at: number) => {
      const promise = this.listPage(scope, entity.connec, { skip: at, top, signal: options.signal });
      // Awaited below; this only keeps a prefetch that fails while a page is applied from
      // surfacing as an unhandled rejection.
      promise.catch(() => undefined);
      return promise;
    };
    let next = fetchPage(skip);
    // Operators watching the worker's log see a long import move: one line per entity at most
    // every PROGRESS_LOG_MS (by the engine's clock), and one when the entity is done.
    let loggedAt = this.deps.clock().getTime();
    // Up to `importPagesInFlight` pages are applied at once, each with its link-backs and
    // deferred jobs; checkpoints are written in page order, each only once its page and every
    // page before it are fully committed, so a resumed import never skips a record.
    let checkpoint: Promise<void> = Promise.resolve();
    const inFlight: Promise<void>[] = [];
    try {
      for (;;) {
        const page = await next;
        // Before the page is applied (the group may have been cancelled while it downloaded).
        await keepAlive();
        const fetchedTo = skip + page.records.length;
        const last = isLastPage(page, top, fetchedTo);
        // The next page downloads while this one is applied.
        if (!last) next = fetchPage(fetchedTo);
        skip = fetchedTo;
        const total = page.total;
        const applying = this.importPage(scope, entity, page.records, report, failures, options);
        applying.catch(() => undefined);
        const previous = checkpoint;
        checkpoint = (async () => {
          const tail = await applying;
          await tail();
          await previous;
          await this.deps.storage.cursors.advance(key, fetchedTo, { total, startedAt: began.toISOString(), ...(fullRun !== undefined ? { fullRun } : {}) }, last);
          // Observability never breaks syncing: a throwing (or rejecting) progress callback is logged, not fatal.
          callObserver(options.onProgress, [{ entity: entity.name, done: fetchedTo, total }], (error) =>
            this.deps.logger.warn('sync: onProgress failed; ignored', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, error: errorInfo(error).message }),
          );
          this.deps.emit({ type: 'import.progress', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, done: fetchedTo, total });
          const now = this.deps.clock().getTime();
          if (last || now - loggedAt >= PROGRESS_LOG_MS) {
            loggedAt = now;
            this.deps.logger.info(last ? 'sync: import of an entity done' : 'sync: import progress', {
              tenant: scope.tenant.name,
              groupId: scope.groupId,
              entity: entity.name,
              done: fetchedTo,
              total,
              created: report.created,
              updated: report.updated,
              failed: report.failed,
            });
          }
        })();
        checkpoint.catch(() => undefined);
        inFlight.push(checkpoint);
        if (last) {
          await checkpoint;
          return began;
        }
        if (inFlight.length >= this.deps.options.importPagesInFlight) await inFlight.shift();
      }
    } finally {
      // Never leave page work or a checkpoint write running behind a failed import.
      await Promise.allSettled(inFlight);
    }
  }

  private async importPage(
    scope: GroupScope,
    entity: AnyEntity,
    records: ConnecRecord[],
    report: EntityReport,
    failures: RecordFailure[],
    options: {
      full?: boolean;
      signal?: AbortSignal | undefined;
      /** Each record whose link-back Connec! applied: the version it answered, and the one applied. */
      onLinked?: (connecId: string, answered: ConnecRecord | null, applied: ConnecRecord) => void;
    },
  ): Promise<() => Promise<void>> {
    report.fetched += records.length;
    const outcomes = await this.applyBatch(scope, entity, records, { signal: options.signal, full: options.full ?? false });
    // Jobs deferred by a full import keep ignoring `importSince` when they run.
    const fullFlag = options.full ? { full: true } : {};
    const links: { op: BatchOp; record: ConnecRecord; connecId: string; localId: string | null; subIds: SubIdLink | undefined }[] = [];
    const deferred: { job: JobInput; connecId: string }[] = [];
    outcomes.forEach((outcome, index) => {
      const record = records[index] as ConnecRecord;
      if ((outcome.kind === 'failed' || outcome.kind === 'busy') && outcome.link && outcome.connecId) {
        links.push({ op: outcome.link.op, record, connecId: outcome.connecId, localId: ownIdOf(outcome.link.op.record.id, scope.owner), subIds: outcome.link.subIds });
      }
      switch (outcome.kind) {
        case 'created':
          report.created++;
          break;
        case 'updated':
          report.updated++;
          break;
        case 'skipped':
          report.skipped++;
          this.skip(scope, entity.name, outcome.connecId, outcome.reason);
          break;
        case 'parked':
        case 'busy':
          if (outcome.kind === 'parked') {
            // As for a parked notification: counted and reported (a busy record is not parked).
            const first = outcome.missing[0];
            this.counters.parked++;
            if (first) {
              this.deps.emit({ type: 'record.parked', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId: outcome.connecId, waitingFor: `${first.entity}:${first.connecId}` });
            }
          }
          deferred.push({
            // A busy record created whose second write did not run carries its create's sub-record ids.
            job: this.recordJob(scope.tenant.name, scope.groupId, entity, { entity: entity.name, collection: entity.connec, record, ...fullFlag, ...(outcome.kind === 'busy' ? owedSubIds(outcome) : {}) }, outcome.connecId),
            connecId: outcome.connecId,
          });
          return;
        case 'failed': {
          const info = errorInfo(outcome.error);
          const connecId = outcome.connecId;
          report.failed++;
          this.counters.failed++;
          failures.push({ entity: entity.name, direction: 'inbound', connecId, localId: null, code: info.code, message: info.message });
          this.deps.emit({ type: 'record.failed', tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, error: info, deadLettered: false });
          // A record whose id cannot key a job (`unstorableRecord`) has none: listed, not retried.
          if (connecId !== null) {
            // A record that does not match its schema, or that cannot be stored as it is, is not
            // handed over as it is (the inbox trusts its payloads): the job reads it from Connec!
            // again, which fails until another app fixes it (retried with backoff, then
            // dead-lettered and listed).
            deferred.push({
              job:
                INVALID_RECORDS.has(record) || UNSTORABLE_RECORDS.has(record)
                  ? this.rereadJob(scope.tenant.name, scope.groupId, entity, connecId, options.full ?? false)
                  : this.recordJob(scope.tenant.name, scope.groupId, entity, { entity: entity.name, collection: entity.connec, record, ...fullFlag, ...owedSubIds(outcome) }, connecId),
              connecId,
            });
          }
          return;
        }
      }
      const subIds = outcome.kind === 'skipped' ? undefined : outcome.subIds;
      // A skipped version (an echo, local wins) is linked too: its local id is ours in the link's ids.
      const localId = outcome.kind === 'skipped' ? (outcome.link ? ownIdOf(outcome.link.record.id, scope.owner) : null) : outcome.localId;
      if (outcome.link && outcome.connecId) links.push({ op: outcome.link, record, connecId: outcome.connecId, localId, subIds });
    });
    // What is left (link-backs, deferred jobs) runs while the next page is applied.
    return async () => {
      const failedLinks = await this.sendLinks(
        scope,
        links.map((l) => l.op),
        options.signal,
        options.onLinked ? (index, answered) => {
          const link = links[index];
          if (link) options.onLinked?.(link.connecId, answered, link.record);
        } : undefined,
      );
      for (const [index, { message, cause }] of failedLinks) {
        const link = links[index];
        if (!link) continue;
        failures.push({ entity: entity.name, direction: 'outbound', connecId: link.connecId, localId: link.localId, code: 'link_failed', message });
        // The inbox job re-applies (a no-op) and retries the link-back until it succeeds, with
        // the sub-record ids the app returned (they are in no other place); not before the
        // `Retry-After` Connec! sent with a refused call (due at once, it called again at once).
        const subIds = link.subIds ? { linkSubIds: link.subIds } : {};
        const retryAfter = requestedRetryAfterMs(cause);
        const job = this.recordJob(scope.tenant.name, scope.groupId, entity, { entity: entity.name, collection: entity.connec, record: link.record, ...fullFlag, ...subIds }, link.connecId);
        deferred.push({
          job: retryAfter === null ? job : { ...job, runAt: new Date(this.deps.clock().getTime() + retryAfter) },
          connecId: link.connecId,
        });
      }
      report.linked += links.length - failedLinks.size;
      // Awaited before the sum is read: with pages in flight, another page's tail adds to
      // `deferred` while this one hands over (`x += await y` reads x first and loses it).
      if (deferred.length > 0) {
        const handed = await this.handOver(scope, entity, deferred);
        report.deferred += handed;
      }
    };
  }

  /**
   * Stores the jobs of records an import or poll hands to the inbox; returns how many of those
   * records are in it now. Deduplicated by what the job does (`recordJob`): an equal job still
   * pending is the same hand-over, so a record read again (a poll's overlap, a page re-read
   * after a crash) is not queued twice. But a finished job keeps its dedupe key until it is
   * purged, and it may never have applied this content (skipped while the group's sync was
   * off, filtered, for an unknown group) or may be finishing now: the record then goes in
   * under a key naming that job (`:after:<job id>`), which lets in one job per finished one.
   * An equal job that died is among the dead letters, where it is retried: not queued again.
   */
  private async handOver(scope: GroupScope, entity: AnyEntity, jobs: { job: JobInput; connecId: string }[]): Promise<number> {
    let handed = 0;
    const notHanded: { connecId: string; reason: string }[] = [];
    let todo = jobs.map(({ job, connecId }) => ({ job, connecId, base: job.dedupeKey as string }));
    for (let hop = 0; todo.length > 0; hop++) {
      const results = await this.deps.storage.jobs.enqueueMany(todo.map((t) => t.job));
      const existing = await Promise.all(results.map((r) => (r.created ? null : this.deps.storage.jobs.get(r.id))));
      const next: typeof todo = [];
      todo.forEach((t, k) => {
        const result = results[k];
        const found = existing[k];
        if (!result || result.created || found?.status === 'pending') {
          handed++;
          return;
        }
        const connecId = t.connecId;
        if (found?.status === 'dead') notHanded.push({ connecId, reason: `an equal job (${found.id}) is among the dead letters` });
        else if (hop >= HAND_OVER_MAX_HOPS) notHanded.push({ connecId, reason: `${HAND_OVER_MAX_HOPS + 1} equal jobs finished before` });
        else next.push({ ...t, job: { ...t.job, dedupeKey: `${t.base}:after:${result.id}` } });
      });
      todo = next;
    }
    for (const { connecId, reason } of notHanded) {
      this.deps.logger.warn('sync: a record was not handed to the inbox again', { tenant: scope.tenant.name, groupId: scope.groupId, entity: entity.name, connecId, reason });
    }
    return handed;
  }
}

/** How far back `recoverCreate` looks for a record an earlier, unanswered create made. */
const PUSH_RECOVERY_WINDOW_MS = 24 * 60 * 60 * 1000;
/** At most this many pages of recently updated records are searched. */
const PUSH_RECOVERY_MAX_PAGES = 50;

/**
 * A referenced record is fetched on demand at most once per window of this length: records
 * parked on it retry often, and a record Connec! does not return yet (or any more) must not
 * be asked for on every retry. 60 s.
 */
export const FETCH_AGAIN_AFTER_MS = 60_000;

/** The push of a version that won a conflict failed: the inbound attempt fails with the push's code. */
class WinnerPushError extends Error {
  /** The push's failure code (`http_503`, `push_failed`, …), recorded as the attempt's. */
  readonly code: string;
  /** `cause`: the batch call's error (its `Retry-After` is what the retry waits for). */
  constructor(message: string, code: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'WinnerPushError';
    this.code = code;
  }
}

/** `staleness`: same `updated_at` as last applied, other content (see there). */
const SAME_INSTANT = 'same_instant' as const;

/** Listed records that do not match their schema, with why (see `ConnecPage.invalid`). */
const INVALID_RECORDS = new WeakMap<object, string>();

/**
 * When an entity's import first began, as its import cursor says (`startedAt` in its data), or
 * `now` for a run with nothing to resume. A cursor written before checkpoints carried it (an
 * import stopped part way, or completed, under an earlier release) does not say: its pages were
 * read at some unknown earlier time, so the answer is the epoch, and the first poll reads the
 * whole collection once (every record it already holds a replay, written nowhere).
 */
function importBegan(cursor: CursorRecord | null, now: Date): Date {
  if (!cursor) return now;
  const recorded = typeof cursor.data.startedAt === 'string' ? parseTimestamp(cursor.data.startedAt) : null;
  return recorded ?? new Date(0);
}

/** How many finished equal jobs `handOver` steps past before giving up on a record (logged). */
const HAND_OVER_MAX_HOPS = 8;

/** Records read from Connec! that cannot be stored as they are (`unstorableRecord`) but whose id can key a re-read. */
const UNSTORABLE_RECORDS = new WeakSet<object>();

/**
 * What an id map's `lastReceivedHash` holds: the content hash of the last inbound version
 * applied (`in:<hash>`), or of the record Connec! answered for our last push
 * (`pushed:<hash>`). A bare hash was written before the two were told apart: replays
 * compare with it too.
 */
function receivedContent(hash: string): string {
  return `in:${hash}`;
}
const PUSHED_PREFIX = 'pushed:';
function pushedContent(hash: string): string {
  return `${PUSHED_PREFIX}${hash}`;
}
/**
 * `lastReceivedHash` after a push Connec! merged into a record it already held: its answer is
 * known (an echo is not told by the mappers, which see only the fields pushed) but matches no
 * content, so the merged record, when listed or notified, is written in the app.
 */
const MERGED_ANSWER = pushedContent('merged');
/** `pushedView` of an entity without an outbound mapper, or whose mapper threw. */
const NOT_PUSHED = Symbol('not pushed');
/**
 * `lastReceivedHash` after a push whose answer the app does not hold (`apply:<echo hash>`): a
 * record job writes it in the app, and that version is applied, not skipped as the echo.
 */
const APPLY_PREFIX = 'apply:';
function applyContent(hash: string): string {
  return `${APPLY_PREFIX}${hash}`;
}
/**
 * After `~`, `lastReceivedHash` may carry the `unsentHash` of that version: what a push of the
 * record does not write. A push whose answer has another is written in the app (`pushRecords`).
 */
const UNSENT_SEPARATOR = '~';
function withUnsent(mark: string, unsent: string | null): string {
  return unsent === null ? mark : `${mark}${UNSENT_SEPARATOR}${unsent}`;
}
/** `lastReceivedHash` without its `unsentHash`. */
function receivedMark(map: IdMapRecord): string | null {
  const value = map.lastReceivedHash;
  if (value === null) return null;
  const at = value.indexOf(UNSENT_SEPARATOR);
  return at < 0 ? value : value.slice(0, at);
}
/** The `unsentHash` `lastReceivedHash` carries, or null. */
function unsentOf(map: IdMapRecord): string | null {
  const value = map.lastReceivedHash;
  const at = value?.indexOf(UNSENT_SEPARATOR) ?? -1;
  return value && at >= 0 ? value.slice(at + 1) : null;
}
/** Whether this content hash is the last inbound version applied (either form). */
function sameReceived(map: IdMapRecord, hash: string): boolean {
  const mark = receivedMark(map);
  return mark === receivedContent(hash) || mark === hash;
}
/**
 * Whether the map says what Connec! holds since our last push or inbound write: then an echo
 * is told by content, not by the mappers. A bare hash (a map written before pushes recorded
 * their answer) counts: nearly always an inbound write, after which a version mapping to the
 * agreed content is an edit of a field the app does not push, not an echo.
 */
function answerKnown(map: IdMapRecord): boolean {
  return map.lastReceivedHash !== null;
}

/**
 * Whether a page of a filtered listing (polls) may be followed by another: Connec!'s
 * `pagination.next` when the port reports it (a page shorter than `$top` is not the end when
 * Connec! caps `$top`), else a full page.
 */
function hasMorePages(page: ConnecPage, top: number): boolean {
  if (page.records.length === 0) return false;
  return page.hasNextPage ?? page.records.length >= top;
}

/**
 * Whether an import page is the collection's last: Connec!'s `pagination.next` and `total`
 * when it sent them, else a page shorter than `$top`. An empty page always ends the listing.
 */
function isLastPage(page: ConnecPage, top: number, fetchedTo: number): boolean {
  if (page.records.length === 0) return true;
  const reachedTotal = page.total !== null && fetchedTo >= page.total;
  if (page.hasNextPage === true) return false;
  if (page.hasNextPage === false) return page.total === null || reachedTotal;
  return page.records.length < top || reachedTotal;
}

/**
 * The id `localId` gives a record to push, or why it gives none: it must return a non-empty
 * string. `localId` is then the value as text when it has one (`42`), '' otherwise.
 */
function pushLocalId(entity: string, localId: (record: unknown) => string, record: unknown): { localId: string; error: string | null } {
  let value: unknown;
  try {
    value = localId(record);
  } catch (error) {
    return {
      localId: '',
      error: `localId of entity "${entity}" threw (it must return a non-empty string): ${errorMessage(error)}`,
    };
  }
  if (typeof value === 'string' && value !== '') {
    if (usableLocalId(value)) return { localId: value, error: null };
    return { localId: value, error: `localId of entity "${entity}" returned ${unusableIdProblem(value)}: no record can be keyed by it` };
  }
  const scalar = typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean';
  const shown = typeof value === 'string' ? JSON.stringify(value) : scalar || value == null ? String(value) : `a ${typeof value}`;
  return { localId: scalar ? String(value) : '', error: `localId of entity "${entity}" must return a non-empty string, not ${shown}` };
}

/**
 * An aborted push stops before its next request, as an abort does anywhere else: the client
 * would answer each op of a request it never sent as failed, which was then recorded as the
 * record's push failure (`lastError`, `pushFailed`, `record.pushed` not ok) though Connec! was
 * never asked. At the start, nothing is read or written either.
 */
function throwIfPushAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SyncError('Push aborted before its request was sent: nothing of it was sent', { cause: signal.reason });
}

/**
 * A failed push op that a retry may get through: no answer or a network failure (status 0),
 * a status @org/connec-client retries by default, or a 401. A 401 refuses the tenant's
 * credentials, never the record: an `api.key` rotated on Maestrano's side before the tenant
 * list was refreshed. Each run looks its tenant up again, so the retry sends the current key;
 * given up, the records stayed unpushed (and unlinked) until they next changed.
 */
function isTransientPushFailure(result: PushItemResult): boolean {
  // A mapper bug fails again on every retry.
  if (result.code === LINK_CONFLICT || result.code === MAPPER_ERROR) return false;
  const status = result.httpStatus;
  return status === null || status === 0 || status === 401 || isRetriedByDefault(status);
}

/**
 * Whether Connec!'s answer to a push holds the record's content: some field the push sent (not
 * only the id array and the fields Connec! manages), or the push sent none. An answer holding
 * only ids says nothing of what Connec! holds.
 */
function answerHoldsContent(answer: ConnecRecord, sent: ConnecRecord): boolean {
  const fields = Object.keys(sent).filter((key) => key !== 'id' && key !== 'opts');
  return fields.length === 0 || fields.some((key) => Object.hasOwn(answer, key));
}

function idArrayOrNull(value: unknown): IdEntry[] | null {
  return Array.isArray(value) ? mergeIds(value, [], null) : null;
}

function jsonPayload(payload: RecordJobPayload): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = { entity: payload.entity, collection: payload.collection };
  if (payload.fetchId !== undefined) out.fetchId = payload.fetchId;
  if (payload.refresh === true) out.refresh = true;
  if (payload.record !== undefined) out.record = toJson(payload.record);
  if (payload.full === true) out.full = true;
  if (payload.linkSubIds !== undefined) out.linkSubIds = { hash: payload.linkSubIds.hash, ids: toJson(payload.linkSubIds.ids) };
  return out;
}

/**
 * The sub-record ids a link-back op carries (none when it carries none, or is not sent). For a
 * record in the plain id format, even none: the retry of a failed link-back must know it failed
 * (`linkOp` cannot tell from such a record whether it is linked).
 */
function subIdLink(link: BatchOp | null, hash: string, subIds: Record<string, (string | null)[]> | undefined, record: ConnecRecord): SubIdLink | undefined {
  if (link === null) return undefined;
  const ids = Object.fromEntries(Object.entries(subIds ?? {}).filter(([, list]) => Array.isArray(list) && list.some((id) => typeof id === 'string' && id !== '')));
  return Object.keys(ids).length > 0 || typeof record.id === 'string' ? { hash, ids } : undefined;
}

/**
 * `record` (unfolded) with the elements of its sub-record arrays that have no id of ours
 * (`null`) given the app's, from `ids` (per path, aligned with the elements in document order,
 * as `local.create` returned them).
 */
function withSubRecordIds(record: ConnecRecord, subRecords: readonly string[], ids: Record<string, (string | null)[]>): ConnecRecord {
  let out = record;
  for (const path of subRecords) {
    const own = ids[path];
    if (!own) continue;
    let offset = 0;
    out = mapAt(out, path, (lines) => {
      if (!Array.isArray(lines)) return lines;
      const start = offset;
      offset += lines.length;
      return lines.map((line: unknown, index: number) => {
        const id = own[start + index];
        return isObject(line) && (line.id === null || line.id === undefined) && typeof id === 'string' && id !== '' ? { ...line, id } : line;
      });
    });
  }
  return out;
}

/**
 * The `linkSubIds` a failed (or busy) record's job carries: those of a record created whose
 * second write failed or did not run (`resolveOwnReferences`), which its retry names its
 * sub-records by.
 */
function owedSubIds(outcome: Extract<BatchOutcome, { kind: 'failed' | 'busy' }>): { linkSubIds?: SubIdLink } {
  const owed = outcome.link?.subIds;
  return owed && Object.keys(owed.ids).length > 0 ? { linkSubIds: owed } : {};
}

/**
 * What `IdMapRecord.linkSubIds` stores for the sub-record ids a version's link-back carries:
 * JSON text of `{ hash, ids, connec }` (`connec`: Connec!'s ids of `record`'s sub-records,
 * aligned with `ids`, which `carriedOverSubIds` matches a later version's by), or null when it
 * carries none.
 */
function storedSubIdLink(owed: SubIdLink | undefined, record: ConnecRecord): string | null {
  if (!owed || Object.keys(owed.ids).length === 0) return null;
  return JSON.stringify({ hash: owed.hash, ids: owed.ids, connec: connecSubIds(record, Object.keys(owed.ids)) });
}

/** Connec!'s ids of `record`'s sub-records at each of `paths`, in document order (as sub-record ids are aligned); null where none. */
function connecSubIds(record: ConnecRecord, paths: readonly string[]): Record<string, (string | null)[]> {
  const out: Record<string, (string | null)[]> = {};
  for (const path of paths) {
    const list: (string | null)[] = [];
    for (const { value } of valuesAt(record, path)) {
      if (Array.isArray(value)) for (const line of value) list.push(isObject(line) ? connecIdOf(line.id) : null);
    }
    out[path] = list;
  }
  return out;
}

/**
 * The app's ids for the sub-records of `record` (content hash `hash`, a version not applied yet)
 * that the map's stored link-back (`IdMapRecord.linkSubIds`) of another version owed: matched by
 * Connec! id, since the versions' sub-record arrays may differ (a line added, removed or
 * reordered). That link-back never landed when this version's sub-records lack our ids, which
 * is the only case where the ids are used (`withSubRecordIds` fills only lines without one).
 * Without them, the app would take those lines for new ones and create them again. Only for
 * a record in the id-array format (see `owedSubIdLink`); undefined when nothing matches.
 */
function carriedOverSubIds(map: IdMapRecord, record: ConnecRecord, hash: string): Record<string, (string | null)[]> | undefined {
  const text = map.linkSubIds;
  if (typeof record.id === 'string' || typeof text !== 'string' || storedFor(text, hash)) return undefined;
  const stored = readStoredSubIdLink(text);
  const connec = stored?.connec;
  if (!stored || !connec) return undefined;
  const out: Record<string, (string | null)[]> = {};
  for (const [path, ids] of Object.entries(stored.link.ids)) {
    const before = connec[path];
    if (!Array.isArray(before) || before.length !== ids.length) continue;
    // A Connec! id on several lines (a line copied with its id array) is matched occurrence by
    // occurrence: each app id goes to one line at most, never two lines the app would merge.
    const byConnecId = new Map<string, (string | null)[]>();
    before.forEach((connecId: unknown, k) => {
      if (typeof connecId !== 'string' || connecId === '') return;
      const id = ids[k];
      const queue = byConnecId.get(connecId);
      const own = typeof id === 'string' && id !== '' ? id : null;
      if (queue) queue.push(own);
      else byConnecId.set(connecId, [own]);
    });
    const now = (connecSubIds(record, [path])[path] ?? []).map((connecId) => (connecId === null ? null : (byConnecId.get(connecId)?.shift() ?? null)));
    if (now.some((id) => id !== null)) out[path] = now;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The sub-record ids the link-back of `record` (content hash `hash`) owes: those the job carries
 * (`RecordJobPayload.linkSubIds`, a failed link-back's retry), else those stored with the id map
 * (`IdMapRecord.linkSubIds`, written with the version itself: a process killed before its
 * link-back answered, or a retry job that could not be stored, loses nothing). Ids of another
 * version, and stored text that is not what the engine writes, are none.
 *
 * Stored ids only for a record in the id-array format: its ids show whether the link-back
 * landed, and `linkOp` sends nothing when every id is there, so a duplicate delivery of a
 * version already linked costs nothing. A record in the plain format cannot show it: a link-back
 * sent for every delivery of it is a write in Connec! that notifies again (and the plain format
 * names no sub-record by our id anyway, so the app could not match the lines by them).
 */
function owedSubIdLink(carried: SubIdLink | undefined, map: IdMapRecord, hash: string, record: ConnecRecord): SubIdLink | undefined {
  const fromJob = carried?.hash === hash ? carried : undefined;
  if (typeof record.id === 'string' || (fromJob && Object.keys(fromJob.ids).length > 0)) return fromJob;
  const text = map.linkSubIds;
  // Most maps store none; one of another version is told by its first characters, unparsed.
  if (typeof text !== 'string' || !storedFor(text, hash)) return fromJob;
  const stored = readStoredSubIdLink(text)?.link;
  return stored?.hash === hash && Object.keys(stored.ids).length > 0 ? stored : fromJob;
}

/**
 * `IdMapRecord.linkSubIds` text read back: the link it stores and Connec!'s ids of the
 * sub-records it was aligned with (absent from text written before they were stored); undefined
 * for text that is not what `storedSubIdLink` writes.
 */
function readStoredSubIdLink(text: string): { link: SubIdLink; connec: Record<string, unknown> | undefined } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const link = readSubIdLink(parsed);
  if (!link) return undefined;
  return { link, connec: isObject(parsed) && isObject(parsed.connec) ? parsed.connec : undefined };
}

/** Whether `IdMapRecord.linkSubIds` text (as `storedSubIdLink` writes it) is that of the version whose content hash is `hash`. */
function storedFor(text: string, hash: string): boolean {
  return text.startsWith(`{"hash":${JSON.stringify(hash)},`);
}

function sameSubIds(a: SubIdLink | undefined, b: SubIdLink): boolean {
  return a !== undefined && a.hash === b.hash && canonicalJson(a.ids) === canonicalJson(b.ids);
}

/** Reads a job payload's `linkSubIds` (undefined when absent or malformed). */
export function readSubIdLink(value: unknown): SubIdLink | undefined {
  if (!isObject(value) || typeof value.hash !== 'string' || !isObject(value.ids)) return undefined;
  const ids: Record<string, (string | null)[]> = {};
  for (const [path, list] of Object.entries(value.ids)) {
    if (!Array.isArray(list) || !list.every((id) => id === null || typeof id === 'string')) return undefined;
    ids[path] = list as (string | null)[];
  }
  return { hash: value.hash, ids };
}

function toJson(value: unknown): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Date) return value.toISOString();
  if (isObject(value)) {
    const out: { [key: string]: JsonValue } = {};
    // defineProperty, not assignment: a `__proto__` key (an own property of parsed JSON) stays
    // data instead of replacing the copy's prototype and vanishing from the stored payload.
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      if (k === '__proto__') Object.defineProperty(out, k, { value: toJson(v), enumerable: true, writable: true, configurable: true });
      else out[k] = toJson(v);
    }
    return out;
  }
  return null;
}

function sameInstant(a: Date | null, b: Date | null): boolean {
  return a === null || b === null ? a === b : a.getTime() === b.getTime();
}

/**
 * Whether an id map's `lastError` was recorded by a failed push of its record: `push_failed`,
 * `http_<status>` or `mapper_error` (what `recordPushFailure` writes for a record with a Connec!
 * id). Inbound attempts record other codes: `parked`, `busy`, `poisoned`, or the thrown error's
 * code or name (`sync_failed`, the Connec! client's `api_*`, the app's own; an app error coded
 * like a push failure is recorded as `app_<code>`, see `inboundFailureCode`).
 * `link_conflict`, which both directions record, is left out: a push records it only for a
 * record it could not link, which has no Connec! id and is always sent again anyway. When an
 * inbound attempt fails after a failed push (its error replacing the push's), the unchanged
 * record is not sent again: the record job's retry writes Connec!'s version in the app (the
 * record holds the agreed content, so it is no local edit to weigh), and both sides end equal.
 */
function isPushFailure(error: RecordError | null): boolean {
  return error !== null && isPushFailureCode(error.code);
}

function isPushFailureCode(code: string): boolean {
  return code === PUSH_FAILED || code === MAPPER_ERROR || /^http_\d+$/.test(code);
}

/**
 * The code the id map's `lastError` records for a failed inbound attempt: the thrown error's own
 * (as the `record.failed` event reports it), except that an error coded like a push failure
 * (`http_503` from an API the app's `local.update` calls, `push_failed`, `mapper_error`) is
 * recorded as `app_<code>`. Recorded as it is, it read as a failed push of the record
 * (`isPushFailure`): a push racing the failed write was taken as agreed (`inboundFailedSince`),
 * and an unchanged record was sent again over another app's edit. The push of a version that
 * won a conflict keeps the push's code: that attempt did fail on its push.
 */
export function inboundFailureCode(code: string, error: unknown): string {
  return isPushFailureCode(code) && !(error instanceof WinnerPushError) ? `app_${code}` : code;
}

/**
 * Whether `now` is an inbound attempt's failure recorded after `before` (the id map's
 * `lastError` when a push was prepared): a record job that failed while the push was in flight.
 */
function inboundFailedSince(now: RecordError | null, before: RecordError | null): boolean {
  if (now === null || isPushFailure(now)) return false;
  return before === null || now.at.getTime() !== before.at.getTime() || now.code !== before.code || now.message !== before.message;
}

/** Whether `subIds` returned by `local.create` (paths to arrays of ids or nulls) can be stored. */
function storableSubIds(subIds: unknown): boolean {
  if (!isObject(subIds)) return true;
  return Object.values(subIds).every((ids) => !Array.isArray(ids) || ids.every((id) => id === null || typeof id !== 'string' || id === '' || usableLocalId(id)));
}

/** What is wrong with a non-empty local id storage cannot key (see `usableLocalId`). */
function unusableIdProblem(id: string): string {
  return isStorableText(id) ? `an id longer than ${MAX_LOCAL_ID_BYTES} bytes` : 'an id holding a NUL character or an unpaired UTF-16 surrogate';
}

/**
 * The sub-record ids an update links back: those `local.update` returned and, for each declared
 * path it returned none for, the ids it was given (`unfolded`'s lines: those Connec! names by
 * our ids, and those the engine filled in from a link-back owed or an earlier version's stored
 * ids). An update that returns nothing keeps its lines, so their ids are still the app's.
 * Without this, lines filled in for a newer version were never linked, the ids stored with the
 * earlier version were cleared, and the version after named those lines by nobody's id: the
 * app created them again. Lines already linked cost nothing (`linkOp` sends only what Connec!
 * lacks); a new line (`null`) stays unlinked, as only the app knows its id.
 */
function keptSubIds(
  unfolded: ConnecRecord,
  subRecords: readonly string[],
  returned: Record<string, (string | null)[]> | undefined,
): Record<string, (string | null)[]> | undefined {
  let out = returned;
  for (const path of subRecords) {
    if (isObject(returned) && Object.hasOwn(returned, path)) continue;
    const ids: (string | null)[] = [];
    let any = false;
    for (const { value } of valuesAt(unfolded, path)) {
      if (!Array.isArray(value)) continue;
      for (const line of value) {
        const id = isObject(line) && typeof line.id === 'string' && line.id !== '' ? line.id : null;
        if (id !== null) any = true;
        ids.push(id);
      }
    }
    if (any) out = { ...out, [path]: ids };
  }
  return out;
}

/**
 * `subIds` returned by `local.update` with every id storage cannot hold replaced by null (that
 * sub-record is then not linked back): the update is applied already, so failing the record
 * would not undo it, and the ids would fail the job that retries a failed link-back.
 */
function storableSubIdsOf(subIds: Record<string, (string | null)[]> | undefined): { subIds: Record<string, (string | null)[]> | undefined; dropped: number } {
  if (subIds === undefined || storableSubIds(subIds)) return { subIds, dropped: 0 };
  let dropped = 0;
  const out: Record<string, (string | null)[]> = {};
  for (const [path, ids] of Object.entries(subIds)) {
    out[path] = Array.isArray(ids)
      ? ids.map((id) => {
          if (typeof id === 'string' && id !== '' && !usableLocalId(id)) {
            dropped++;
            return null;
          }
          return id;
        })
      : ids;
  }
  return { subIds: out, dropped };
}

/** A reference of an outbound payload names a local id storage cannot key: that record fails alone. */
class UnusableReferenceError extends SyncError {}

/** Failure code of a Connec! id and a local id that cannot be linked (one of them is linked elsewhere). */
export const LINK_CONFLICT = 'link_conflict';
/** `code` of a push whose `toConnec`/`toConnecOnCreate` threw (nothing was sent). */
export const MAPPER_ERROR = 'mapper_error';
/**
 * `code` the id map's `lastError` records for a record job dead-lettered because its attempts
 * never finished (a worker killed, or its lease lost, each time): the last one may have written
 * the record in the app and died before recording it, like a job claimed again (`retried`).
 */
export const POISONED = 'poisoned';
/** `code` of a push op that got no answer (the batch call threw without a status, or left it out). */
const PUSH_FAILED = 'push_failed';

/** A Connec! record and a local record cannot be linked: either is already linked to another record. */
export class LinkConflictError extends SyncError {}

/** Another import of the same group holds the lock. */
export class ImportBusyError extends SyncError {}

/** An import or poll stopped because its group was cancelled (deleted on Maestrano) while it ran. */
export class GroupCancelledError extends SyncError {}

/** An import or poll of a group whose sync is switched off (`settings.sync.enabled: false`): nothing ran. */
export class SyncDisabledError extends SyncError {}

/** The wait key of imports deferred while their group's sync is off; switching it on wakes them. */
export function syncEnabledWaitKey(tenant: string, groupId: string): string {
  return `sync-enabled:${tenant}:${groupId}`;
}

/** An import stopped on an infrastructure failure; `report` holds what was done (status `partial`). */
export class ImportFailedError extends SyncError {
  readonly report: SyncReport;
  constructor(message: string, report: SyncReport, cause: unknown) {
    super(message, { cause });
    this.report = report;
  }
}
