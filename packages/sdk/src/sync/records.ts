/**
 * Pure helpers over Connec! records: id arrays, reference paths (`lines/item_id`), pruning
 * and content hashing. No I/O.
 */
import { createHash } from 'node:crypto';
import type { ConnecRecord } from '../entities/types.js';

export const CONNEC_PROVIDER = 'connec';

export interface IdEntry {
  id: string;
  provider: string;
  realm: string;
}

export interface Owner {
  provider: string;
  realm: string;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIdEntry(value: unknown): value is IdEntry {
  return (
    isObject(value) && typeof value.id === 'string' && typeof value.provider === 'string' && typeof value.realm === 'string'
  );
}

export function idEntries(value: unknown): IdEntry[] {
  return Array.isArray(value) ? value.filter(isIdEntry) : [];
}

/** Connec!'s id in an id value: a plain string, or the `provider: "connec"` entry. */
export function connecIdOf(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  return idEntries(value).find((e) => e.provider === CONNEC_PROVIDER)?.id ?? null;
}

/** Our own id in an id array (matching provider and realm). */
export function ownIdOf(value: unknown, owner: Owner): string | null {
  return idEntries(value).find((e) => e.provider === owner.provider && e.realm === owner.realm)?.id ?? null;
}

/** Merges `additions` into an id value by (provider, realm), keeping order. */
export function mergeIds(value: unknown, additions: IdEntry[], connecRealm: string | null): IdEntry[] {
  const merged = new Map<string, IdEntry>();
  const base: IdEntry[] =
    typeof value === 'string' ? [{ id: value, provider: CONNEC_PROVIDER, realm: connecRealm ?? '' }] : idEntries(value);
  for (const entry of [...base, ...additions]) merged.set(`${entry.provider}\u0000${entry.realm}`, { ...entry });
  return [...merged.values()];
}

/** Every value at `path` (arrays walked), with its concrete location. */
export function valuesAt(record: unknown, path: string): { location: string; value: unknown }[] {
  const parts = path.split('/');
  const out: { location: string; value: unknown }[] = [];
  const walk = (node: unknown, i: number, at: string[]): void => {
    if (Array.isArray(node)) {
      node.forEach((element, index) => {
        walk(element, i, [...at, String(index)]);
      });
      return;
    }
    if (!isObject(node)) return;
    const head = parts[i];
    if (head === undefined || !Object.hasOwn(node, head)) return;
    const child = node[head];
    if (i === parts.length - 1) out.push({ location: [...at, head].join('/'), value: child });
    else walk(child, i + 1, [...at, head]);
  };
  walk(record, 0, []);
  return out;
}

/** A copy of `record` where every value at `path` is replaced by `fn(value)`; absent fields stay absent. */
export function mapAt<T>(record: T, path: string, fn: (value: unknown, location: string) => unknown): T {
  const parts = path.split('/');
  const walk = (node: unknown, i: number, at: string[]): unknown => {
    if (Array.isArray(node)) return node.map((element, index) => walk(element, i, [...at, String(index)]));
    if (!isObject(node)) return node;
    const head = parts[i];
    if (head === undefined || !Object.hasOwn(node, head)) return node;
    const location = [...at, head];
    const next = i === parts.length - 1 ? fn(node[head], location.join('/')) : walk(node[head], i + 1, location);
    return { ...node, [head]: next };
  };
  return walk(record, 0, []) as T;
}

/**
 * Removes `undefined` values and empty objects, recursively (Connec! sends `"billing2": {}`;
 * we never send empty sub-objects back). Arrays keep their length.
 */
export function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : prune(v)));
  if (value instanceof Date) return value.toISOString();
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const pruned = prune(child);
    if (isObject(pruned) && Object.keys(pruned).length === 0) continue;
    // defineProperty, not assignment: a `__proto__` key stays data (sent to Connec!) instead
    // of replacing the copy's prototype.
    if (key === '__proto__') Object.defineProperty(out, key, { value: pruned, enumerable: true, writable: true, configurable: true });
    else out[key] = pruned;
  }
  return out;
}

/** Fields Connec! manages itself; they never make two versions of a record different in content. */
const VOLATILE = new Set(['updated_at', 'created_at', 'group_id', 'channel_id', 'resource_type', 'code', 'version']);

/** `key` is one JavaScript orders first in an object (a canonical array index). */
function isIndexKey(key: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}

/** Keys in the order `JSON.stringify` writes a sorted-key object: array-index keys numerically first, then the rest sorted. */
function canonicalKeys(value: object): string[] {
  const keys = Object.keys(value).sort();
  if (!keys.some(isIndexKey)) return keys;
  const index = keys.filter(isIndexKey).sort((a, b) => Number(a) - Number(b));
  return [...index, ...keys.filter((k) => !isIndexKey(k))];
}

/** What `writeCanonical` returns besides text: nothing (`undefined`), a value JSON leaves out (a function), an object pruning leaves empty. */
const UNDEFINED = 0;
const UNWRITABLE = 1;
const EMPTY = 2;
type Canonical = string | typeof UNDEFINED | typeof UNWRITABLE | typeof EMPTY;

/**
 * One pass writing the canonical JSON of `value`: sorted keys, `undefined` and empty objects
 * left out of objects, `undefined` as `null` in arrays, Dates as ISO strings. With `reduce`
 * (content hashing), the top level's volatile fields are dropped and every id array becomes its
 * Connec! id. Same text as serialising the pruned, sorted copy, without building the copies
 * (this runs for every record a sync applies).
 */
function writeCanonical(value: unknown, reduce: boolean, top: boolean, dropNulls = false): Canonical {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'bigint':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return UNDEFINED;
    case 'function':
    case 'symbol':
      return UNWRITABLE;
  }
  if (Array.isArray(value)) {
    if (reduce && value.length > 0 && value.every(isIdEntry)) return JSON.stringify(connecIdOf(value));
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const element = writeCanonical(value[i], reduce, false, dropNulls);
      out += typeof element === 'string' ? element : element === EMPTY ? '{}' : 'null';
    }
    return `${out}]`;
  }
  // Content hashing reduces before pruning, and reducing turns a Date (an object without
  // own keys) into an empty object; a plain canonical form writes it as its ISO string.
  if (!reduce && value instanceof Date) return JSON.stringify(value.toISOString());
  const record = value as Record<string, unknown>;
  let out = '{';
  let kept = false;
  for (const key of canonicalKeys(record)) {
    if (top && reduce && VOLATILE.has(key)) continue;
    if (dropNulls && record[key] === null) continue;
    const child = writeCanonical(record[key], reduce, false, dropNulls);
    if (child === UNDEFINED || child === EMPTY) continue;
    // A function keeps its object from being pruned as empty, and JSON leaves it out.
    kept = true;
    if (child === UNWRITABLE) continue;
    out += out.length > 1 ? `,${JSON.stringify(key)}:${child}` : `${JSON.stringify(key)}:${child}`;
  }
  return kept ? `${out}}` : EMPTY;
}

/** Deterministic JSON: sorted keys, pruned. */
export function canonicalJson(value: unknown): string {
  return text(writeCanonical(value, false, true));
}

function text(canonical: Canonical): string {
  return typeof canonical === 'string' ? canonical : canonical === EMPTY ? '{}' : 'null';
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Hash of a record's content as Connec! holds it: volatile fields dropped and every id array
 * reduced to its Connec! id, so a link-back (our id added) or a re-sent record hashes the
 * same, and any real change does not.
 */
export function contentHash(record: ConnecRecord): string {
  return sha256(text(writeCanonical(record, true, true)));
}

/**
 * {@link contentHash} where a field set to null counts as absent: Connec! serialises an unset
 * attribute either way, so the echo of a push may leave out a field its answer gave as null.
 * What an id map's `pushed:` hash holds and an echo is compared with.
 */
export function echoHash(record: ConnecRecord): string {
  return sha256(text(writeCanonical(record, true, true, true)));
}

/**
 * `echoHash` of what a push of `sent` does not write in `record`: every leaf `sent` carries
 * (nested objects followed, an array a leaf) is left out, and so is the id array. Two versions
 * of a record with the same value differ only in what such a push sends.
 */
export function unsentHash(record: ConnecRecord, sent: unknown): string {
  const { id: _id, ...rest } = record;
  return echoHash(unsentPart(rest, sent) as ConnecRecord);
}

function unsentPart(value: Record<string, unknown>, sent: unknown): Record<string, unknown> {
  if (!isPlainObject(sent)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (!(key in sent)) out[key] = child;
    else if (isPlainObject(child) && isPlainObject(sent[key])) out[key] = unsentPart(child, sent[key]);
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Hash of an outbound payload (what `toConnec` produced, before references are folded). */
export function payloadHash(payload: unknown): string {
  return sha256(canonicalJson(payload));
}

/** Hash of the exact raw record (dedupe of identical deliveries). */
export function rawHash(record: unknown): string {
  return sha256(canonicalJson(record)).slice(0, 32);
}

/**
 * An ISO-8601 date-time without an offset (`T` or, as SQL and Ruby print it, a space between
 * date and time): Connec! means UTC (PROTOCOL §6.7), never the host's zone.
 */
const NO_OFFSET = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

/**
 * A Connec! `updated_at`/`created_at` as a Date (null when absent or unreadable). One without
 * an offset is read as UTC: read in the host's zone, a worker west of UTC moved its poll
 * cursor ahead of records it had not read yet.
 */
export function parseTimestamp(value: unknown): Date | null {
  if (typeof value !== 'string' || value === '') return null;
  const ms = Date.parse(NO_OFFSET.test(value) ? `${value}Z` : value);
  return Number.isNaN(ms) ? null : new Date(ms);
}
