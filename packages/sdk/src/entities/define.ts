import {
  connecCollections,
  isCollectionName,
  knownCollectionNames,
  normalizeCollectionName,
  type RecordOf,
  referenceFields,
} from '@org/connec-client';
import { ConnectorDefinitionError } from '../errors/index.js';
import { closest, closestOf } from '../internal/suggest.js';
import type {
  AnyEntity,
  BidirectionalEntityDefinition,
  ConflictPolicy,
  ConflictStrategy,
  ConnecRecord,
  ConnectorDefinition,
  ConnectorInput,
  EntityDefinition,
  InboundEntityDefinition,
  LocalContext,
  OutboundEntityDefinition,
  SyncDirection,
} from './types.js';

const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const DEFAULT_SKEW_MS = 2_000;

/**
 * A typed entity; `AnyEntity` plus types for tooling: `L` the local record, `K` the Connec!
 * collection, `D` the direction and `N` the name, as `defineEntity` infers them. `D` and `N`
 * default to any direction and any name, so `Entity<Contact>` is any entity of Contacts.
 */
export type Entity<L = unknown, K extends string = string, D extends SyncDirection = SyncDirection, N extends string = string> = AnyEntity & {
  readonly name: N;
  readonly connec: K;
  readonly direction: D;
  /** Phantom: the local record type (never set at run time). */
  readonly __local?: L;
};

const STRATEGIES: readonly unknown[] = ['newest-wins', 'connec-wins', 'local-wins'] satisfies Extract<ConflictStrategy<unknown>, string>[];
const STRATEGY_HINT = '"newest-wins", "connec-wins", "local-wins" or { merge: (args) => record }';

/** A strategy as given (JavaScript callers and casts included): one of the three names or `{ merge }`. */
function checkStrategy(entity: string, strategy: unknown): ConflictStrategy<unknown> {
  if (isStrategyName(strategy)) return strategy;
  if (typeof strategy === 'object' && strategy !== null && 'merge' in strategy) {
    if (isMergeStrategy(strategy)) return strategy;
    throw new ConnectorDefinitionError(`Entity "${entity}": conflict "merge" must be a function ({ connec, local, ... }) => record`);
  }
  throw new ConnectorDefinitionError(`Entity "${entity}": unknown conflict strategy ${show(strategy)}; use ${STRATEGY_HINT}`);
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// The engine treats any strategy it does not recognise as newest-wins, so a misspelt one
// (`'local_wins'`) must fail here rather than silently resolve conflicts the other way.
function policyOf(entity: string, conflict: ConflictStrategy<unknown> | ConflictPolicy<unknown> | undefined) {
  if (conflict === undefined) return { strategy: 'newest-wins' as const, skewMs: DEFAULT_SKEW_MS, tieBreaker: 'connec' as const };
  if (typeof conflict !== 'object' || conflict === null || 'merge' in conflict) {
    return { strategy: checkStrategy(entity, conflict), skewMs: DEFAULT_SKEW_MS, tieBreaker: 'connec' as const };
  }
  if (!('strategy' in conflict)) {
    throw new ConnectorDefinitionError(`Entity "${entity}": conflict must be ${STRATEGY_HINT}, or { strategy, skewMs?, tieBreaker? }`);
  }
  const strategy = checkStrategy(entity, conflict.strategy);
  const skewMs: unknown = conflict.skewMs ?? DEFAULT_SKEW_MS;
  if (typeof skewMs !== 'number' || !Number.isFinite(skewMs) || skewMs < 0) {
    throw new ConnectorDefinitionError(`Entity "${entity}": conflict skewMs must be a finite number of milliseconds >= 0, not ${show(skewMs)}`);
  }
  const tieBreaker: unknown = conflict.tieBreaker ?? 'connec';
  if (!isTieBreaker(tieBreaker)) {
    throw new ConnectorDefinitionError(`Entity "${entity}": conflict tieBreaker must be "connec" or "local", not ${show(tieBreaker)}`);
  }
  return { strategy, skewMs, tieBreaker };
}

function isStrategyName(value: unknown): value is Extract<ConflictStrategy<unknown>, string> {
  return STRATEGIES.includes(value);
}

function isMergeStrategy(value: { merge: unknown }): value is Extract<ConflictStrategy<unknown>, object> {
  return typeof value.merge === 'function';
}

function isTieBreaker(value: unknown): value is 'connec' | 'local' {
  return value === 'connec' || value === 'local';
}

function checkPath(entity: string, kind: string, path: unknown): void {
  if (typeof path !== 'string' || path === '') {
    throw new ConnectorDefinitionError(`Entity "${entity}": ${kind} paths must be non-empty strings, not ${show(path)}`);
  }
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p.trim() !== p)) {
    throw new ConnectorDefinitionError(`Entity "${entity}": invalid ${kind} path "${path}" (segments joined by "/")`);
  }
  // Connec! field names never contain ".": `lines.item_id` is a nested path written the wrong way.
  if (parts.some((p) => p.includes('.'))) {
    throw new ConnectorDefinitionError(
      `Entity "${entity}": invalid ${kind} path "${path}": nested paths are joined by "/", use "${parts.map((p) => p.split('.').join('/')).join('/')}"`,
    );
  }
}

const KNOWN_COLLECTIONS: ReadonlySet<string> = new Set(knownCollectionNames);
const DIRECTIONS = ['inbound', 'outbound', 'both'] as const;

/**
 * Every key of a definition and the half of the sync that uses it. A `Record` over the keys of
 * the widest definition, so a key added to the types and not here (or the reverse) does not
 * compile.
 */
const KEY_SIDE: Record<keyof BidirectionalEntityDefinition, 'common' | 'inbound' | 'outbound'> = {
  name: 'common',
  connec: 'common',
  direction: 'common',
  references: 'common',
  subRecords: 'common',
  filter: 'common',
  toLocal: 'inbound',
  toLocalOnCreate: 'inbound',
  local: 'inbound',
  conflict: 'inbound',
  toConnec: 'outbound',
  toConnecOnCreate: 'outbound',
  localId: 'outbound',
  localUpdatedAt: 'outbound',
  shouldPush: 'outbound',
  matchingFields: 'outbound',
};
const ENTITY_KEYS: readonly string[] = Object.keys(KEY_SIDE);

function isKey(key: string): key is keyof typeof KEY_SIDE {
  return Object.hasOwn(KEY_SIDE, key);
}

/**
 * Keys the types reject but JavaScript callers and spreads can pass: a likely typo of a known key
 * (it would be ignored, and the key it stands for missing) and a key the entity's direction
 * never uses (`toConnec` on an inbound entity would silently never push). Other unknown keys
 * (helpers of a base object spread into the definition) are ignored, as are the members of
 * `local` an outbound entity does not use (a shared repository object may have them all). A key
 * set to `undefined` or `null` counts as absent.
 */
function checkKeys(name: string, direction: 'inbound' | 'outbound' | 'both', definition: object): void {
  for (const [key, value] of Object.entries(definition)) {
    if (value === undefined || value === null) continue;
    if (!isKey(key)) {
      const suggestion = closest(key, ENTITY_KEYS);
      if (suggestion !== undefined) throw new ConnectorDefinitionError(`Entity "${name}": unknown key "${key}" (did you mean "${suggestion}"?)`);
      continue;
    }
    const side = KEY_SIDE[key];
    if (direction === 'inbound' && side === 'outbound') {
      throw new ConnectorDefinitionError(
        `Entity "${name}": "${key}" is only used by outbound sync, and this entity's direction is "inbound"; remove it, or use direction "both"`,
      );
    }
    // `local` is used both ways (outbound reads `local.list` alone, and ignores the rest).
    if (direction === 'outbound' && side === 'inbound' && key !== 'local') {
      throw new ConnectorDefinitionError(
        `Entity "${name}": "${key}" is only used by inbound sync, and this entity's direction is "outbound"; remove it, or use direction "both"`,
      );
    }
  }
}

const NOT_A_PROMISE_HINT = {
  inbound: 'do async work in local.create/update',
  outbound: 'load what the record needs before pushing it',
} as const;

/**
 * A mapper's result, checked not to be a Promise: an async mapper (JavaScript, or cast past
 * the types) would hand `local.create` or Connec! a Promise instead of the record.
 */
function synchronous<T>(entity: string, mapper: string, side: keyof typeof NOT_A_PROMISE_HINT, result: T): T {
  if ((typeof result === 'object' || typeof result === 'function') && result !== null && 'then' in result && typeof result.then === 'function') {
    // The abandoned Promise's rejection must not surface as an unhandled rejection.
    Promise.resolve(result).catch(() => undefined);
    throw new ConnectorDefinitionError(
      `${mapper} of entity "${entity}" returned a Promise: mappers must be synchronous and pure; ${NOT_A_PROMISE_HINT[side]}`,
    );
  }
  return result;
}

/**
 * An inbound mapper's result, checked to be a record: `undefined` or `null` (a missing
 * `return`, an arrow function with a block body) would otherwise reach `local.create` as the
 * record, and fail there with an error about your own code.
 */
function localRecord<T>(entity: string, mapper: string, result: T): T {
  const checked = synchronous(entity, mapper, 'inbound', result);
  if (checked === undefined || checked === null) {
    throw new ConnectorDefinitionError(
      `${mapper} of entity "${entity}" returned ${String(checked)}: it must return the local record (leave records out with filter)`,
    );
  }
  return checked;
}

/**
 * The fields the typed catalog knows for a collection (its schema's keys), or null when it
 * knows none (a collection outside the catalog, or a schema that does not list its fields).
 */
function catalogFields(collection: string): readonly string[] | null {
  if (!isCollectionName(collection)) return null;
  const schema: unknown = connecCollections[collection];
  if (typeof schema !== 'object' || schema === null || !('shape' in schema)) return null;
  const shape = schema.shape;
  if (typeof shape !== 'object' || shape === null) return null;
  const fields = Object.keys(shape);
  return fields.length > 0 ? fields : null;
}

/**
 * Paths of an entity against the fields the catalog knows for its collection: a warning for
 * each first segment the schema does not list that is within a typo of one it does
 * (`organisation_id` of people may be `organization_id` misspelt, and would then never resolve:
 * the reference would silently reach `toLocal` unresolved). Never an error: the schemas are not
 * a complete list of Connec! fields (`payment_method_id` of invoices, `work_locations` of
 * employees are real ones they omit), and an app may reference a custom field.
 */
function catalogPathWarnings(entity: AnyEntity, collection: string): string[] {
  const warnings: string[] = [];
  const fields = catalogFields(collection);
  if (fields === null || !isCollectionName(collection)) return warnings;
  const references = referenceFields[collection].map((r) => r.path);
  const known = new Set([...fields, ...references.map((p) => firstSegment(p))]);
  const listed = references.length > 0 ? `its reference fields: ${references.join(', ')}` : 'it has no reference fields';
  for (const path of Object.keys(entity.references)) {
    const first = firstSegment(path);
    if (references.includes(path) || known.has(first)) continue;
    const suggestion = closestOf([
      { word: path, candidates: references },
      { word: first, candidates: fields },
    ]);
    if (suggestion !== undefined) {
      warnings.push(`Entity "${entity.name}": reference path "${path}" is not a field of ${collection} (${listed}); did you mean "${suggestion}"?`);
    }
  }
  const check = (kind: string, path: string, first: string) => {
    if (known.has(first)) return;
    const suggestion = closest(first, fields);
    if (suggestion !== undefined) {
      warnings.push(`Entity "${entity.name}": ${kind} "${path}" is not a field of ${collection}; did you mean "${suggestion}"?`);
    }
  };
  for (const path of entity.subRecords) check('sub-record path', path, firstSegment(path));
  // Connec! may write a nested matching field either way (`email/address`, `email.address`).
  for (const field of entity.matchingFields) check('matching field', field, field.split(/[/.]/)[0] ?? field);
  return warnings;
}

function firstSegment(path: string): string {
  return path.split('/')[0] ?? path;
}

/**
 * Refuses an async `toLocal`/`toLocalOnCreate` at compile time: `L` (what they return) is then
 * a Promise, which would reach `local.create` as is. Mappers are synchronous and pure; I/O
 * belongs in `local.*`. `NoInfer`, so that `L` is still inferred from the mappers alone.
 */
type Synchronous<L> =
  Extract<NoInfer<L>, PromiseLike<unknown>> extends never
    ? unknown
    : { toLocal: 'mappers must be synchronous: toLocal and toLocalOnCreate return the record, not a Promise' };

/**
 * Declares one synchronised entity. `direction` decides at the type level which functions
 * are required: inbound needs `toLocal` + `local.create/update`; outbound needs `toConnec` +
 * `localId`; both needs all of them. Shape errors that types cannot catch (bad names and
 * paths, misspelt keys, keys the direction does not use) throw `ConnectorDefinitionError` here; cross-entity checks run in `defineConnector`.
 *
 * Type arguments: `K` the Connec! collection, `L` the app's record, `C` the Connec! record the
 * mappers see, by default the catalog's type for `K` (`RecordOf<K>` of @org/connec-client),
 * `N` the name. All are inferred from the definition; given explicitly (`defineEntity<'people',
 * Contact>`), the name is typed `string` unless given too, and `mno.sync.push` then takes any
 * name for this entity (its record is still checked).
 */
export function defineEntity<const K extends string, L, C extends object = RecordOf<K>, const N extends string = string>(
  definition: InboundEntityDefinition<C, L, K, N> & Synchronous<L>,
): Entity<L, K, 'inbound', N>;
export function defineEntity<const K extends string, L, C extends object = RecordOf<K>, const N extends string = string>(
  definition: OutboundEntityDefinition<C, L, K, N>,
): Entity<L, K, 'outbound', N>;
export function defineEntity<const K extends string, L, C extends object = RecordOf<K>, const N extends string = string>(
  definition: BidirectionalEntityDefinition<C, L, K, N> & Synchronous<L>,
): Entity<L, K, 'both', N>;
// Last, so that a definition matching none of the above is reported against the union: the
// compiler then names the missing or forbidden key of the definition's own `direction`.
export function defineEntity<const K extends string, L, C extends object = RecordOf<K>, const N extends string = string>(
  definition: EntityDefinition<C, L, K, N> & Synchronous<L>,
): Entity<L, K, SyncDirection, N>;
export function defineEntity<const K extends string, L, C extends object = RecordOf<K>, const N extends string = string>(
  definition: EntityDefinition<C, L, K, N>,
): Entity<L, K, SyncDirection, N> {
  if (typeof definition !== 'object' || definition === null) {
    throw new ConnectorDefinitionError(`defineEntity takes a definition object, not ${show(definition)}`);
  }
  const name = definition.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConnectorDefinitionError(
      `Entity name ${JSON.stringify(name)} is invalid: use letters, digits, "_", "-" or "." and start with a letter`,
    );
  }
  if (typeof definition.connec !== 'string' || definition.connec.trim() === '') {
    throw new ConnectorDefinitionError(`Entity "${name}": "connec" must name a Connec! collection`);
  }
  // Import, poll, fetch and push put the name in the URL as is: a known collection, typed or
  // not, must be spelt as in the API (`people`, not `Person`; `projects`, not `project`), or
  // every call would answer 404 while notifications (normalised) still reach the entity.
  const canonical = normalizeCollectionName(definition.connec);
  if (canonical !== undefined && canonical !== definition.connec && (isCollectionName(canonical) || KNOWN_COLLECTIONS.has(canonical))) {
    throw new ConnectorDefinitionError(
      `Entity "${name}": "connec" must be the collection's API name ${JSON.stringify(canonical)}, not ${JSON.stringify(definition.connec)}`,
    );
  }
  const direction = definition.direction;
  if (direction !== 'inbound' && direction !== 'outbound' && direction !== 'both') {
    const suggestion = typeof direction === 'string' ? closest(direction, DIRECTIONS) : undefined;
    throw new ConnectorDefinitionError(
      `Entity "${name}": direction must be "inbound", "outbound" or "both", not ${show(direction)}${suggestion !== undefined ? ` (did you mean "${suggestion}"?)` : ''}`,
    );
  }
  checkKeys(name, direction, definition);
  const references = { ...(definition.references ?? {}) };
  for (const [path, target] of Object.entries(references)) {
    checkPath(name, 'reference', path);
    if (typeof target !== 'string' || target === '') {
      throw new ConnectorDefinitionError(`Entity "${name}": reference "${path}" must name a target entity`);
    }
  }
  const subRecords = [...(definition.subRecords ?? [])];
  for (const path of subRecords) checkPath(name, 'sub-record', path);

  // The one place where typed records are erased to the engine's `unknown` view. The engine
  // only ever hands a mapper records of this entity's collection, and hands `local.*` exactly
  // what this entity's own `toLocal` produced, so the narrowing casts below are sound.
  const asC = (record: ConnecRecord): C => record as C;
  const asL = (data: unknown): L => data as L;
  const filter = definition.filter;

  let inbound: AnyEntity['inbound'];
  let outbound: AnyEntity['outbound'];
  let list: AnyEntity['list'];
  let matchingFields: string[] = [];

  if (definition.direction === 'inbound' || definition.direction === 'both') {
    const d = definition;
    if (typeof d.toLocal !== 'function') throw new ConnectorDefinitionError(`Entity "${name}": toLocal is required`);
    if (typeof d.local?.create !== 'function' || typeof d.local.update !== 'function') {
      throw new ConnectorDefinitionError(`Entity "${name}": local.create and local.update are required for inbound sync`);
    }
    const local = d.local;
    const onCreate = d.toLocalOnCreate;
    const get = local.get;
    const createMany = local.createMany;
    inbound = {
      toLocal: (record, ctx) => localRecord(name, 'toLocal', d.toLocal(asC(record), ctx)),
      toLocalOnCreate: onCreate ? (record, ctx) => localRecord(name, 'toLocalOnCreate', onCreate(asC(record), ctx)) : undefined,
      local: {
        create: (data, ctx) => local.create(asL(data), ctx),
        update: (id, data, ctx) => local.update(id, asL(data), ctx),
        ...(get ? { get: (id: string, ctx: Parameters<typeof get>[1]) => get(id, ctx) } : {}),
        ...(createMany
          ? { createMany: (items: { data: unknown; ctx: LocalContext }[]) => createMany(items.map((i) => ({ data: asL(i.data), ctx: i.ctx }))) }
          : {}),
      },
      conflict: policyOf(name, d.conflict as ConflictStrategy<unknown> | ConflictPolicy<unknown> | undefined),
    };
    const lister = local.list;
    if (lister) list = (ctx) => lister(ctx);
  }
  if (definition.direction === 'outbound' || definition.direction === 'both') {
    const d = definition;
    if (typeof d.toConnec !== 'function') throw new ConnectorDefinitionError(`Entity "${name}": toConnec is required`);
    if (typeof d.localId !== 'function') throw new ConnectorDefinitionError(`Entity "${name}": localId is required`);
    const onCreate = d.toConnecOnCreate;
    const updatedAt = d.localUpdatedAt;
    const shouldPush = d.shouldPush;
    outbound = {
      toConnec: (record, ctx) => synchronous(name, 'toConnec', 'outbound', d.toConnec(asL(record), ctx)),
      toConnecOnCreate: onCreate ? (record, ctx) => synchronous(name, 'toConnecOnCreate', 'outbound', onCreate(asL(record), ctx)) : undefined,
      localId: (record) => d.localId(asL(record)),
      localUpdatedAt: updatedAt ? (record) => updatedAt(asL(record)) : undefined,
      shouldPush: shouldPush ? (record) => shouldPush(asL(record)) : undefined,
    };
    matchingFields = [...(d.matchingFields ?? [])];
    for (const field of matchingFields) {
      if (typeof field !== 'string' || field.trim() === '') {
        throw new ConnectorDefinitionError(`Entity "${name}": matchingFields must be non-empty Connec! field names, not ${show(field)}`);
      }
    }
    const lister = d.local?.list;
    if (lister) list = (ctx) => lister(ctx);
  }

  // A conflict policy other than connec-wins needs the local record's current version and the
  // time it last changed (`local.get` and `localUpdatedAt`, the latter an outbound function):
  // without them it could never apply, and local edits would be overwritten silently.
  const explicit = definition.direction !== 'outbound' ? definition.conflict : undefined;
  const explicitStrategy = explicit === undefined ? undefined : policyOf(name, explicit as ConflictStrategy<unknown> | ConflictPolicy<unknown>).strategy;
  if (explicitStrategy !== undefined && explicitStrategy !== 'connec-wins' && (!inbound?.local.get || !outbound?.localUpdatedAt)) {
    const missing = [!inbound?.local.get ? 'local.get' : null, !outbound?.localUpdatedAt ? 'localUpdatedAt (direction "both")' : null].filter(Boolean);
    throw new ConnectorDefinitionError(
      `Entity "${name}": a ${typeof explicitStrategy === 'string' ? `"${explicitStrategy}"` : 'merge'} conflict policy needs ${missing.join(' and ')}; without ${missing.length === 1 ? 'it' : 'them'} only "connec-wins" can apply`,
    );
  }

  return Object.freeze({
    name,
    connec: definition.connec,
    direction,
    references: Object.freeze(references),
    subRecords: Object.freeze(subRecords),
    matchingFields: Object.freeze(matchingFields),
    filter: filter ? (record: ConnecRecord) => filter(asC(record)) : undefined,
    inbound,
    outbound,
    list,
  });
}

/** What `defineEntity` returns (by shape: an entity of another copy of the package counts too). */
function isDefinedEntity(value: unknown): value is AnyEntity {
  if (typeof value !== 'object' || value === null) return false;
  const entity = value as Record<string, unknown>;
  return (
    typeof entity.name === 'string' &&
    typeof entity.references === 'object' &&
    entity.references !== null &&
    Array.isArray(entity.subRecords) &&
    Array.isArray(entity.matchingFields) &&
    'inbound' in entity &&
    'outbound' in entity
  );
}

/** `Person` / `person` / `people` -> `people`; `Invoice` -> `invoices` (the Connec! client's rules). */
export function normalizeCollection(key: string): string {
  return normalizeCollectionName(key) ?? key.trim().toLowerCase();
}

/**
 * Assembles entities into a connector and checks what types cannot: unique names, reference
 * targets that exist, and an import order in which referenced entities come first (cycles are
 * allowed: records whose reference is still unknown are parked until it arrives). Paths that
 * look like a misspelt field of a catalog collection are not errors (the catalog is not a
 * complete list of Connec! fields): they are listed in `warnings`, which `createMaestrano` logs.
 *
 * The result keeps the entities' types (`E`, a tuple for an array literal): `createMaestrano`
 * uses them to type `mno.sync.push` and `pushMany` (entity names and their records).
 */
export function defineConnector<const E extends readonly AnyEntity[]>(
  input: ConnectorInput<E>,
): ConnectorDefinition<E> & { readonly warnings: readonly string[] } {
  if (typeof input !== 'object' || input === null) {
    throw new ConnectorDefinitionError(`defineConnector takes { entities: [...] }, not ${show(input)}`);
  }
  if (input.entities !== undefined && !Array.isArray(input.entities)) {
    throw new ConnectorDefinitionError(`defineConnector: entities must be an array of defineEntity(...) results, not ${typeof input.entities === 'object' && input.entities !== null ? 'an object' : show(input.entities)}`);
  }
  const entities: AnyEntity[] = [...(input.entities ?? [])];
  if (entities.length === 0) throw new ConnectorDefinitionError('A connector needs at least one entity');
  // From JavaScript, an element may be what defineEntity never returned: `undefined` (an import
  // cycle evaluates defineConnector before the entity's module), or the plain definition object
  // itself. Reading its `references` below was a TypeError that said neither.
  entities.forEach((entity: unknown, index) => {
    if (isDefinedEntity(entity)) return;
    const named = typeof entity === 'object' && entity !== null && typeof (entity as { name?: unknown }).name === 'string';
    throw new ConnectorDefinitionError(
      named
        ? `defineConnector: entities[${index}] ("${(entity as { name: string }).name}") is a plain definition object: pass defineEntity(...) of it`
        : `defineConnector: entities[${index}] must be a defineEntity(...) result, not ${show(entity)}${entity === undefined ? ' (an import cycle can leave an entity undefined when defineConnector runs)' : ''}`,
    );
  });
  const byName = new Map<string, AnyEntity>();
  const warnings: string[] = [];
  for (const entity of entities) {
    if (byName.has(entity.name)) throw new ConnectorDefinitionError(`Duplicate entity name "${entity.name}"`);
    byName.set(entity.name, entity);
  }
  for (const entity of entities) {
    for (const [path, target] of Object.entries(entity.references)) {
      if (!byName.has(target)) {
        // `references` name entities, not collections: `organization_id: 'organizations'` for an
        // entity named "customers" that syncs organizations is a likely first mistake.
        const syncing = entities.filter((e) => e.connec === target).map((e) => `"${e.name}"`);
        const hint = syncing.length > 0 ? `; references name entities, not collections: ${target} is synced by ${syncing.join(', ')}` : '';
        throw new ConnectorDefinitionError(
          `Entity "${entity.name}": reference "${path}" points at unknown entity "${target}" (known: ${[...byName.keys()].join(', ')})${hint}`,
        );
      }
    }
    // A reference the catalog knows points at one collection: the target entity must sync it,
    // or the engine would look the id up in the wrong id maps and park the record forever.
    // Paths the catalog does not list are accepted (the catalog may be incomplete).
    const collection = normalizeCollection(entity.connec);
    const known = isCollectionName(collection) ? referenceFields[collection] : [];
    for (const [path, target] of Object.entries(entity.references)) {
      const expected = known.find((r) => r.path === path)?.target;
      const targetEntity = byName.get(target);
      if (expected && targetEntity && normalizeCollection(targetEntity.connec) !== expected) {
        throw new ConnectorDefinitionError(
          `Entity "${entity.name}": \`${path}\` of ${collection} references ${expected}, but entity "${target}" syncs ${normalizeCollection(targetEntity.connec)}`,
        );
      }
    }
    warnings.push(...catalogPathWarnings(entity, collection));
    // A collection Connec! is not known to have is taken as written (an app's own), but one a
    // typo away from a known one (`invoicez`) would only show as 404s and silent notifications.
    if (!isCollectionName(collection) && !KNOWN_COLLECTIONS.has(collection)) {
      const suggestion = closest(collection, knownCollectionNames);
      if (suggestion !== undefined) {
        warnings.push(`Entity "${entity.name}": "connec" ${JSON.stringify(entity.connec)} is not a collection Connec! is known to have; did you mean "${suggestion}"?`);
      }
    }
    for (const path of entity.subRecords) {
      if (Object.hasOwn(entity.references, path)) {
        throw new ConnectorDefinitionError(`Entity "${entity.name}": "${path}" is declared both as a reference and a sub-record`);
      }
    }
  }
  const byCollection = new Map<string, AnyEntity[]>();
  for (const entity of entities) {
    const key = normalizeCollection(entity.connec);
    const list = byCollection.get(key) ?? [];
    if (list.length > 0 && (!entity.filter || list.some((e) => !e.filter))) {
      throw new ConnectorDefinitionError(
        `Entities ${[...list.map((e) => `"${e.name}"`), `"${entity.name}"`].join(' and ')} share collection "${key}": each needs a filter`,
      );
    }
    list.push(entity);
    byCollection.set(key, list);
  }

  // Depth-first topological order over references; back edges (cycles) are ignored.
  const order: AnyEntity[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (entity: AnyEntity): void => {
    if (state.get(entity.name)) return;
    state.set(entity.name, 'visiting');
    for (const target of Object.values(entity.references)) {
      const t = byName.get(target);
      if (t && t !== entity) visit(t);
    }
    state.set(entity.name, 'done');
    order.push(entity);
  };
  for (const entity of entities) visit(entity);

  const identity = {
    provider: input.identity?.provider ?? (({ apiId }: { apiId: string }) => apiId),
    realm: input.identity?.realm ?? (({ groupId }: { groupId: string }) => groupId),
  };
  return Object.freeze({
    // The same entities in the same order: `E` describes them exactly (a copy, frozen).
    entities: Object.freeze(entities) as readonly AnyEntity[] as E,
    importOrder: Object.freeze(order.filter((e) => e.inbound !== undefined)),
    pushOrder: Object.freeze(order.filter((e) => e.outbound !== undefined)),
    identity,
    entity: (name: string) => byName.get(name),
    forCollection: (collection: string) => byCollection.get(normalizeCollection(collection)) ?? [],
    warnings: Object.freeze(warnings),
  });
}
