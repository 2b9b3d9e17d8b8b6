/**
 * Helpers for Connec! ids and references.
 *
 * With external ids on, `id` and every reference are arrays of `{id, provider, realm}`; the
 * `provider: "connec"` entry is Connec!'s own id and each app adds its own entry. With external ids
 * off they are plain Connec! id strings. Every helper accepts both and never mutates its input.
 */
import { PayloadValidationError } from './errors.js';
import type { IdMap, IdValue } from './schemas/shared.js';

export const CONNEC_PROVIDER = 'connec';

/** Who owns an id: an app's `provider` key and its `realm` (the app's account id for that org). */
export interface IdOwner {
  provider: string;
  realm: string;
}

export function idMap(id: string, owner: IdOwner): IdMap {
  return { id, provider: owner.provider, realm: owner.realm };
}

export function isIdMap(value: unknown): value is IdMap {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.id === 'string' && typeof candidate.provider === 'string' && typeof candidate.realm === 'string'
  );
}

export function isIdMapArray(value: unknown): value is IdMap[] {
  return Array.isArray(value) && value.every(isIdMap);
}

/** The Connec! id of a record or reference: the plain string, or the `provider: "connec"` entry. */
export function connecId(value: IdValue | null | undefined): string | undefined {
  if (value == null) return undefined;
  if (typeof value === 'string') return value;
  return value.find((entry) => entry.provider === CONNEC_PROVIDER)?.id;
}

/** The id map owned by `owner` (same provider and realm), if any. */
export function findIdMap(value: IdValue | null | undefined, owner: IdOwner): IdMap | undefined {
  if (value == null || typeof value === 'string') return undefined;
  return value.find((entry) => entry.provider === owner.provider && entry.realm === owner.realm);
}

/** The id `owner` gave this record or reference, if it has one. */
export function externalId(value: IdValue | null | undefined, owner: IdOwner): string | undefined {
  return findIdMap(value, owner)?.id;
}

/**
 * Merge id arrays by (provider, realm). Entries keep the position where their key first appears;
 * a later array's entry replaces an earlier one with the same key. Plain strings are read as the
 * Connec! entry only when `connecRealm` is given, otherwise they are rejected.
 */
export function mergeIdMaps(
  values: readonly (IdValue | null | undefined)[],
  options: { connecRealm?: string } = {},
): IdMap[] {
  const merged = new Map<string, IdMap>();
  for (const value of values) {
    if (value == null) continue;
    for (const entry of toIdMaps(value, options.connecRealm)) {
      merged.set(`${entry.provider}\u0000${entry.realm}`, { ...entry });
    }
  }
  return [...merged.values()];
}

/** Add or replace `owner`'s id on an id array (a copy). */
export function attachId(
  value: IdValue | null | undefined,
  id: string,
  owner: IdOwner,
  options: { connecRealm?: string } = {},
): IdMap[] {
  return mergeIdMaps([value, [idMap(id, owner)]], options);
}

/** Remove `owner`'s entry from an id array (a copy). */
export function detachId(value: IdValue | null | undefined, owner: IdOwner): IdValue | undefined {
  if (value == null) return undefined;
  if (typeof value === 'string') return value;
  return value.filter((entry) => !(entry.provider === owner.provider && entry.realm === owner.realm));
}

function toIdMaps(value: IdValue, connecRealm: string | undefined): IdMap[] {
  if (typeof value !== 'string') return value;
  if (connecRealm === undefined) {
    throw new PayloadValidationError('A plain-string id cannot be merged into an id array without its Connec! realm', {
      issues: [{ path: '', message: 'plain-string id; pass connecRealm (the org uid) or enable external ids' }],
    });
  }
  return [{ id: value, provider: CONNEC_PROVIDER, realm: connecRealm }];
}

// ---------------------------------------------------------------------------------------
// Paths such as `lines/item_id`: every array met on the way is walked element by element.

function splitPath(path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '');
  if (parts.length === 0) {
    throw new PayloadValidationError(`Invalid field path "${path}"`, {
      issues: [{ path, message: 'empty path' }],
    });
  }
  return parts;
}

/** A value found at a path, with its concrete location (`lines/1/item_id`). */
export interface PathValue {
  path: string;
  value: unknown;
}

/** Every value at `path` (arrays are walked), with its concrete location. Missing fields are skipped. */
export function valuesAtPath(record: unknown, path: string): PathValue[] {
  const out: PathValue[] = [];
  const walk = (node: unknown, parts: readonly string[], at: string[]): void => {
    if (Array.isArray(node)) {
      node.forEach((element, index) => {
        walk(element, parts, [...at, String(index)]);
      });
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const [head, ...rest] = parts;
    if (head === undefined || !Object.hasOwn(node, head)) return;
    const child = (node as Record<string, unknown>)[head];
    if (rest.length === 0) out.push({ path: [...at, head].join('/'), value: child });
    else walk(child, rest, [...at, head]);
  };
  walk(record, splitPath(path), []);
  return out;
}

/**
 * A copy of `record` where every value at `path` is replaced by `fn(value, location)`. Only the
 * objects and arrays on the path are copied; fields that are absent stay absent.
 */
export function mapAtPath<T>(record: T, path: string, fn: (value: unknown, location: string) => unknown): T {
  const parts = splitPath(path);
  const walk = (node: unknown, index: number, at: string[]): unknown => {
    if (Array.isArray(node)) return node.map((element, i) => walk(element, index, [...at, String(i)]));
    if (typeof node !== 'object' || node === null) return node;
    const head = parts[index];
    if (head === undefined || !Object.hasOwn(node, head)) return node;
    const source = node as Record<string, unknown>;
    const location = [...at, head];
    const next =
      index === parts.length - 1 ? fn(source[head], location.join('/')) : walk(source[head], index + 1, location);
    return { ...source, [head]: next };
  };
  // The walk rebuilds the same shape it was given, so the result is still a T.
  return walk(record, 0, []) as T;
}

/** A reference that could not be unfolded because the owner has no id for the target yet. */
export interface UnresolvedReference {
  /** Concrete location, e.g. `lines/1/item_id`. */
  path: string;
  /** The Connec! id of the referenced record, when known. */
  connecId: string | undefined;
}

export interface UnfoldResult<T> {
  record: T;
  /** References the owner has no id for yet (the caller may park the record until they exist). */
  unresolved: UnresolvedReference[];
}

/**
 * Turn reference fields (and `id`, when listed in `paths`) from Connec! id values into the owner's
 * own ids, as plain strings. A reference the owner has no id for becomes `null` and is listed in
 * `unresolved`; `null`/absent references stay as they are.
 */
export function unfoldReferences<T>(record: T, paths: readonly string[], owner: IdOwner): UnfoldResult<T> {
  const unresolved: UnresolvedReference[] = [];
  let out = record;
  for (const path of paths) {
    out = mapAtPath(out, path, (value, location) => {
      if (value == null) return value;
      if (typeof value !== 'string' && !isIdMapArray(value)) return value;
      const own = externalId(value, owner);
      if (own !== undefined) return own;
      unresolved.push({ path: location, connecId: connecId(value) });
      return null;
    });
  }
  return { record: out, unresolved };
}

/**
 * Turn the owner's own ids (plain strings) at `paths` into id arrays `[{id, provider, realm}]`,
 * the shape Connec! expects when an app pushes a record with its references. Values that already
 * are id arrays are kept; `null`/absent values stay as they are.
 */
export function foldReferences<T>(record: T, paths: readonly string[], owner: IdOwner): T {
  let out = record;
  for (const path of paths) {
    out = mapAtPath(out, path, (value) => (typeof value === 'string' ? [idMap(value, owner)] : value));
  }
  return out;
}
