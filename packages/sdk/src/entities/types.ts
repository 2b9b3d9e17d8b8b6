/**
 * The entity-mapping plugin contract: what an integrator writes per synchronised entity
 * (`defineEntity`) and per app (`defineConnector`). Mappers are pure; all I/O goes through
 * the `local` store functions and the context objects the engine passes in.
 */
import type { JsonObject } from '../storage/adapter.js';
import type { Logger } from '../core/types.js';

/** A Connec! record as it travels through the engine (id arrays, loose fields). */
export type ConnecRecord = Record<string, unknown>;

/** Which halves of the sync an entity takes part in. */
export type SyncDirection = 'inbound' | 'outbound' | 'both';

/** What the engine passes to mappers. Read-only facts; no I/O. */
export interface MapperContext {
  tenant: string;
  groupId: string;
  /** The entity name (`defineEntity({ name })`). */
  entity: string;
  /** Connec! id of the record, null for a first push. */
  connecId: string | null;
  /** The app's id of the record, null before the local create. */
  localId: string | null;
  /** True when the record is being created on the receiving side (creation-only mappers run). */
  isCreate: boolean;
  /** The group's stored settings (`storage.groups`), e.g. the app's per-company options. */
  settings: JsonObject;
}

/** What the engine passes to `local.*` functions. */
export interface LocalContext extends MapperContext {
  /**
   * Stable per (tenant, group, entity, Connec! id). A create can be repeated with the same key
   * after a crash between the app's insert and the engine's id-map write: store it with the
   * record (unique) and return the existing row to make creates exactly-once.
   */
  idempotencyKey: string;
  signal: AbortSignal | undefined;
  logger: Logger;
}

/**
 * Result of a local create. `subIds` gives the app's ids of sub-records (invoice lines),
 * keyed by the declared sub-record path (`lines`), aligned with the Connec! array order;
 * they are linked back into the Connec! id arrays of those sub-records.
 */
export interface LocalCreateResult {
  id: string;
  subIds?: Record<string, (string | null)[]>;
}

/**
 * Result of a local update. `gone: true` when the local record no longer exists (tombstones the
 * map). `subIds` as for a create; a path without them keeps the sub-record ids the update was given.
 */
export type LocalUpdateResult = undefined | { gone?: boolean; subIds?: Record<string, (string | null)[]> };

/** The app's own store for an entity, as used by inbound sync. */
export interface LocalStore<L> {
  // Property (not method) syntax throughout: method parameters are checked bivariantly, which
  // would let `create: (data: NewRow) => …` accept a `toLocal` that omits NewRow's fields.
  create: (data: L, ctx: LocalContext) => Promise<LocalCreateResult>;
  /**
   * Optional batch form of `create`, used for import pages and batched notifications: one
   * multi-row insert instead of one insert per record. Resolve to one result per item, in
   * order. Same contract as `create`: idempotent on each item's `ctx.idempotencyKey`.
   * Without it the engine calls `create` per record.
   */
  createMany?: (items: { data: L; ctx: LocalContext }[]) => Promise<LocalCreateResult[]>;
  // biome-ignore lint/suspicious/noConfusingVoidType: an `async (id, data) => { await db.update(…) }` (Promise<void>) is a valid update
  update: (id: string, data: L, ctx: LocalContext) => Promise<LocalUpdateResult | undefined | void>;
  /** Current local version, used by conflict policies (with `localUpdatedAt`). */
  get?: (id: string, ctx: LocalContext) => Promise<L | null>;
}

/**
 * Enumerates the app's records for the outbound half of an initial import (smart merge) and of
 * a catch-up: yield only the records of the company being synced (`ctx.tenant`, `ctx.groupId`),
 * one by one or in arrays. Every record yielded is pushed into that company's Connec!: another
 * company's records would be copied into it.
 */
export type LocalLister<L> = (ctx: LocalContext) => AsyncIterable<L | L[]>;

/** Arguments of a custom merge (conflict policy). Returns the local data to keep. */
export interface MergeArgs<L> {
  /** The Connec! version mapped to local shape. */
  connec: L;
  /** The current local record. */
  local: L;
  connecUpdatedAt: Date | null;
  localUpdatedAt: Date | null;
  ctx: MapperContext;
}

/**
 * How an inbound change to a record that also changed locally is resolved:
 * - `newest-wins` (default): the later `updated_at` wins; within `skewMs` the `tieBreaker` decides;
 * - `connec-wins` / `local-wins`: that side always wins;
 * - `{ merge }`: a function combining both (e.g. the app owns `job_title`); the result is
 *   written locally and pushed back when it differs from the Connec! version.
 * Conflicts are only evaluated when the entity provides `local.get` and `localUpdatedAt`.
 */
export type ConflictStrategy<L> = 'newest-wins' | 'connec-wins' | 'local-wins' | { merge: (args: MergeArgs<L>) => L };

export interface ConflictPolicy<L> {
  strategy: ConflictStrategy<L>;
  /** Timestamps closer than this are a tie. Default 2 000 ms. */
  skewMs?: number;
  /** Who wins a tie under `newest-wins`. Default `'connec'`. */
  tieBreaker?: 'connec' | 'local';
}

interface EntityCommon<C extends object, K extends string, N extends string> {
  /** Stable key for id maps, cursors, jobs and logs (and the name `mno.sync.push` takes). */
  name: N;
  /** The Connec! collection (`people`, `organizations`, the singular `company`, …). */
  connec: K;
  /**
   * Reference fields (Connec! paths, nested arrays with `/`, e.g. `lines/item_id`) -> the
   * name of the entity they point at. Inbound, each is replaced by the app's id (a string)
   * or null before `toLocal`; outbound, the app id returned by `toConnec` is folded into an
   * id array. A record whose reference is not known yet is parked until it is.
   */
  references?: Record<string, string>;
  /**
   * Paths of sub-record arrays whose elements carry their own Connec! id arrays (`lines`).
   * Inbound, each element's `id` is replaced by the app's sub-record id or null (new line).
   * Outbound, an element's `id` returned by `toConnec` as a string (your sub-record id) is
   * folded into an id array, so Connec! keeps it.
   */
  subRecords?: readonly string[];
  /** Only records passing this predicate belong to the entity (two entities on one collection). */
  filter?: (record: NoInfer<C>) => boolean;
}

interface InboundFunctions<C extends object, L> {
  /** Connec! -> app. Pure and synchronous (never async). References are already app ids (string) or null. */
  toLocal: (record: NoInfer<C>, ctx: MapperContext) => L;
  /** Used instead of `toLocal` the first time a record is created locally. */
  toLocalOnCreate?: (record: NoInfer<C>, ctx: MapperContext) => L;
  local: LocalStore<L> & { list?: LocalLister<L> };
  /** Conflict policy (default `newest-wins`, 2 s skew, ties to Connec!). */
  conflict?: ConflictStrategy<L> | ConflictPolicy<L>;
}

interface OutboundFunctions<C extends object, L> {
  /** App -> Connec!. Pure. References are app ids (strings); the engine folds them. */
  toConnec: (record: L, ctx: MapperContext) => NoInfer<Partial<C>> & ConnecRecord;
  /** Used instead of `toConnec` for the first push of a record. */
  toConnecOnCreate?: (record: L, ctx: MapperContext) => NoInfer<Partial<C>> & ConnecRecord;
  /** The app's id of a local record. */
  localId: (record: L) => string;
  /** Local modification time (conflict policies). */
  localUpdatedAt?: (record: L) => Date | null;
  /** Per-record opt-out: records for which this returns false are never pushed. */
  shouldPush?: (record: L) => boolean;
  /** Connec! fields used to merge with an existing record on first push (`opts.matching_fields`). */
  matchingFields?: readonly string[];
}

/**
 * The type of a key that the entity's `direction` does not use. No value has it (it is a branded
 * message), so setting the key fails to compile, and the compiler's last line quotes the message.
 */
export type DirectionMismatch<Message extends string> = { readonly 'defineEntity: direction mismatch': Message };

export interface InboundEntityDefinition<C extends object = ConnecRecord, L = unknown, K extends string = string, N extends string = string>
  extends EntityCommon<C, K, N>,
    InboundFunctions<C, L> {
  direction: 'inbound';
  toConnec?: DirectionMismatch<'an inbound entity has no toConnec (it never pushes): remove it, or set direction: both'>;
  toConnecOnCreate?: DirectionMismatch<'an inbound entity has no toConnecOnCreate (it never pushes): remove it, or set direction: both'>;
  /**
   * Only `'connec-wins'`: conflicts need `localUpdatedAt`, an outbound function, so any other
   * policy could never apply (`defineEntity` throws for one); use direction `'both'`.
   */
  conflict?: 'connec-wins' | (ConflictPolicy<L> & { strategy: 'connec-wins' });
}

export interface OutboundEntityDefinition<C extends object = ConnecRecord, L = unknown, K extends string = string, N extends string = string>
  extends EntityCommon<C, K, N>,
    OutboundFunctions<C, L> {
  direction: 'outbound';
  toLocal?: DirectionMismatch<'an outbound entity has no toLocal (it never writes Connec! records locally): remove it, or set direction: both'>;
  toLocalOnCreate?: DirectionMismatch<'an outbound entity has no toLocalOnCreate (it never writes Connec! records locally): remove it, or set direction: both'>;
  /** Only `list` is used outbound (the import's smart-merge half). */
  local?: { list?: LocalLister<L> };
}

export interface BidirectionalEntityDefinition<
  C extends object = ConnecRecord,
  L = unknown,
  K extends string = string,
  N extends string = string,
> extends EntityCommon<C, K, N>,
    InboundFunctions<C, L>,
    OutboundFunctions<C, L> {
  direction: 'both';
}

export type EntityDefinition<C extends object = ConnecRecord, L = unknown, K extends string = string, N extends string = string> =
  | InboundEntityDefinition<C, L, K, N>
  | OutboundEntityDefinition<C, L, K, N>
  | BidirectionalEntityDefinition<C, L, K, N>;

/**
 * An entity as the engine sees it, erased to `unknown` data so entities of different types
 * fit in one connector. Produced only by `defineEntity` (the sole place that widens).
 */
export interface AnyEntity {
  readonly name: string;
  readonly connec: string;
  readonly direction: SyncDirection;
  readonly references: Readonly<Record<string, string>>;
  readonly subRecords: readonly string[];
  readonly matchingFields: readonly string[];
  readonly filter: ((record: ConnecRecord) => boolean) | undefined;
  readonly inbound:
    | {
        toLocal: (record: ConnecRecord, ctx: MapperContext) => unknown;
        toLocalOnCreate: ((record: ConnecRecord, ctx: MapperContext) => unknown) | undefined;
        local: LocalStore<unknown>;
        conflict: Required<Omit<ConflictPolicy<unknown>, 'strategy'>> & { strategy: ConflictStrategy<unknown> };
      }
    | undefined;
  readonly outbound:
    | {
        toConnec: (record: unknown, ctx: MapperContext) => ConnecRecord;
        toConnecOnCreate: ((record: unknown, ctx: MapperContext) => ConnecRecord) | undefined;
        localId: (record: unknown) => string;
        localUpdatedAt: ((record: unknown) => Date | null) | undefined;
        shouldPush: ((record: unknown) => boolean) | undefined;
      }
    | undefined;
  readonly list: LocalLister<unknown> | undefined;
}

/**
 * How our own entries in Connec! id arrays are written. Default: provider = the tenant's
 * `api.id`, realm = the Maestrano group id.
 */
export interface IdentityOptions {
  provider?: (args: { tenant: string; apiId: string; groupId: string }) => string;
  realm?: (args: { tenant: string; apiId: string; groupId: string; orgUid: string | null }) => string;
}

/** `E`: the entities as given, a tuple when written as an array literal (what types `mno.sync.push`). */
export interface ConnectorInput<E extends readonly AnyEntity[] = readonly AnyEntity[]> {
  entities: E;
  identity?: IdentityOptions;
}

/**
 * What `defineConnector` returns. `E` keeps the entities' types (names, directions, local
 * records), from which `createMaestrano` types `mno.sync.push`; the default is any entities.
 */
export interface ConnectorDefinition<E extends readonly AnyEntity[] = readonly AnyEntity[]> {
  readonly entities: E;
  /** Inbound entities in reference order (targets before the entities pointing at them). */
  readonly importOrder: readonly AnyEntity[];
  /**
   * Outbound entities in the same reference order: what the import's outbound half and
   * `pushChanged` push first, so a record's references are linked (and carry the Connec! id)
   * before it is sent. Always set by `defineConnector`; a connector built by hand without it
   * is pushed in `entities` order.
   */
  readonly pushOrder?: readonly AnyEntity[];
  readonly identity: Required<IdentityOptions>;
  entity(name: string): AnyEntity | undefined;
  /** Entities fed by a Connec! collection (normalised plural name). */
  forCollection(collection: string): readonly AnyEntity[];
  /**
   * What `defineConnector` found suspicious but not certainly wrong, such as a path close to, but
   * not, a field the catalog lists for the collection (the catalog is not a complete list of
   * Connec! fields). `createMaestrano` logs each one. Always set by `defineConnector`; optional
   * for connectors built by hand.
   */
  readonly warnings?: readonly string[];
}

/**
 * Per-group switches, stored in the group's settings under `sync`:
 * `{ sync: { entities: { items: { inbound: false } }, importSince: '2016-07-28T00:00:00Z' } }`.
 * Every switch defaults to enabled.
 *
 * A type literal, not an interface: it is stored as JSON (`updateGroupSettings` returns
 * `{ ...settings, sync }`), and only a type literal is assignable to `JsonObject`.
 */
export type GroupSyncSettings = {
  /** `false` switches the whole group off, every entity in both directions (what `toggle_sync` flips). */
  enabled?: boolean;
  entities?: Record<string, { inbound?: boolean; outbound?: boolean }>;
  /** Connec! records created before this are not imported (unless a full import is requested). */
  importSince?: string;
};
