/**
 * The representation mapping between the contract's records and stored documents, kept in
 * one place (like Auth.js's `format` helper):
 *
 * - Natural keys become a string `_id` (`keyId`), so uniqueness needs no extra index and
 *   inserts are the atomic "create once" primitive on every server.
 * - Surrogate ids (jobs, id maps) are ObjectIds; the contract sees their hex string.
 * - `Date` is stored as a BSON date, `null` as `null`. A JSON value is stored as BSON
 *   (subdocuments/arrays/scalars) when every server accepts it as it is; otherwise as its
 *   JSON text in a BSON Binary of subtype 0x80 (`JSON_TEXT_SUBTYPE`). It needs the text form
 *   when an object key holds `.`, starts with `$` or is empty (FerretDB refuses them, MongoDB
 *   restricts them) or is `_bsontype` (the BSON serializer takes it for a type tag), when an
 *   array holds an array (FerretDB refuses nested arrays), or when it nests deeper than
 *   `MAX_BSON_NESTING` levels (MongoDB refuses documents nested deeper than 100). The earlier
 *   versions never stored a Binary in a JSON field, so both forms read back unambiguously,
 *   and documents written before are read as they are. No query filter or index reaches
 *   inside a JSON field.
 * - A stored JSON value takes at most `MAX_STORED_JSON_BYTES` (a BSON document holds at most
 *   16 MiB, the rest is left to the record's other fields); a larger one is refused, naming
 *   the argument, before anything is written. Two JSON values of one document (a ledger
 *   entry's intent and outcome) share that limit. Recorded error text is cut to
 *   `MAX_ERROR_MESSAGE_BYTES` / `MAX_ERROR_CODE_BYTES` (`recordedText`).
 * - Nullable unique columns get a companion key field that is never null (`uniqueSlot`):
 *   the value itself when set, otherwise a placeholder unique to the document. A plain
 *   unique index on it behaves like a partial unique index (which FerretDB lacks).
 * - `_rev` is the document's revision token, replaced by every write (see `store.ts`).
 *
 * Internal fields (`_id`, `_rev`, `*Key` slots) never reach the contract's records.
 */
import { Binary, BSON, ObjectId } from 'mongodb';
import { isStorableText, type JsonObject, type JsonValue, wellFormedText } from '@org/maestrano-sdk';
import { InvalidArgumentError } from './validation.js';

/** Document ids: a natural-key string or an ObjectId. */
export type DocId = string | ObjectId;

export interface Raw {
  _id?: DocId;
  [key: string]: unknown;
}

/** A stored document: `_id` plus the revision token. */
export interface Stored extends Raw {
  _id: DocId;
  _rev: string;
}

/** A string `_id` for a composite natural key (unambiguous for any strings). */
export function keyId(...parts: string[]): string {
  return JSON.stringify(parts);
}

/** A fresh, never reused revision token. */
export function newRev(): string {
  return new ObjectId().toHexString() + Math.random().toString(36).slice(2, 8);
}

/** The hex string of an ObjectId `_id`. */
export function idString(value: unknown): string {
  if (value instanceof ObjectId) return value.toHexString();
  return String(value);
}

/** Parses a contract id into an ObjectId; null when it cannot be one of ours. */
export function parseObjectId(id: string): ObjectId | null {
  return /^[0-9a-f]{24}$/.test(id) ? new ObjectId(id) : null;
}

/** The never-null companion of a nullable unique field. */
export function uniqueSlot(value: string | null, id: ObjectId): string {
  return value === null ? `n:${id.toHexString()}` : `v:${value}`;
}

export function valueSlot(value: string): string {
  return `v:${value}`;
}

// --- typed readers for raw documents ------------------------------------------------------

export function str(doc: Raw, key: string): string {
  const value = doc[key];
  if (typeof value !== 'string') throw new TypeError(`stored field '${key}' is not a string`);
  return value;
}

export function strOrNull(doc: Raw, key: string): string | null {
  const value = doc[key];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new TypeError(`stored field '${key}' is not a string`);
  return value;
}

export function num(doc: Raw, key: string): number {
  const value = doc[key];
  if (typeof value !== 'number') throw new TypeError(`stored field '${key}' is not a number`);
  return value;
}

export function bool(doc: Raw, key: string): boolean {
  return doc[key] === true;
}

export function date(doc: Raw, key: string): Date {
  const value = doc[key];
  if (!(value instanceof Date)) throw new TypeError(`stored field '${key}' is not a date`);
  return new Date(value.getTime());
}

export function dateOrNull(doc: Raw, key: string): Date | null {
  const value = doc[key];
  if (value === null || value === undefined) return null;
  if (!(value instanceof Date)) throw new TypeError(`stored field '${key}' is not a date`);
  return new Date(value.getTime());
}

/** Binary subtype (user-defined range) of a JSON value stored as its UTF-8 JSON text. */
export const JSON_TEXT_SUBTYPE = 0x80;

/** A JSON value as stored (BSON subdocument/array/scalar, or JSON text), copied into plain JSON. */
export function json(doc: Raw, key: string): JsonValue {
  return fromStoredJson(doc[key]);
}

export function jsonObject(doc: Raw, key: string): JsonObject {
  const value = fromStoredJson(doc[key]);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

export function jsonOrNull(doc: Raw, key: string): JsonValue | null {
  const value = doc[key];
  return value === undefined ? null : fromStoredJson(value);
}

/** Reads a stored JSON field: JSON text in a Binary of `JSON_TEXT_SUBTYPE`, or plain BSON. */
export function fromStoredJson(value: unknown): JsonValue {
  if (value instanceof Binary && value.sub_type === JSON_TEXT_SUBTYPE) {
    // JSON.parse builds JSON values only (a `__proto__` key is an own data property).
    return JSON.parse(Buffer.from(value.buffer).toString('utf8')) as JsonValue;
  }
  return toJson(value);
}

/** What a write found walking a JSON value: whether it needs the JSON-text form. */
interface WriteScan {
  field: string;
  needsText: boolean;
}

/**
 * Deepest nesting (objects and arrays inside a JSON value) stored as BSON; a deeper value is
 * stored as JSON text. MongoDB refuses a document nested deeper than 100 levels, and the
 * value sits inside the record's document (and, for a job, a claim's filters and updates).
 */
export const MAX_BSON_NESTING = 90;

/** The BSON document limit of MongoDB and FerretDB: 16 MiB. */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * Most bytes a stored JSON value (its BSON form, or its JSON text) may take: the document
 * limit less 64 KiB for the record's other fields (keys, dates, recorded error text).
 */
export const MAX_STORED_JSON_BYTES = MAX_DOCUMENT_BYTES - 64 * 1024;

/** `depth`: how many objects/arrays enclose `value` inside the JSON value being written. */
function toJson(value: unknown, scan?: WriteScan, depth = 0): JsonValue {
  const writing = scan !== undefined;
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') {
    if (scan && !isStorableText(value)) throw unstorable(scan.field);
    return value;
  }
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Object.is(value, -0) ? 0 : value;
  if (Array.isArray(value)) {
    if (scan && depth >= MAX_BSON_NESTING) scan.needsText = true;
    const items = value.map((v) => toJson(v, scan, depth + 1));
    // An array directly inside an array: FerretDB refuses it in a document.
    if (scan && items.some((item) => Array.isArray(item))) scan.needsText = true;
    return items;
  }
  if (typeof value === 'object') {
    if (scan && depth >= MAX_BSON_NESTING) scan.needsText = true;
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      // Written: as JSON does (a Date becomes its ISO string, as on the SQL adapters).
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (writing && typeof toJSON === 'function') return toJson(toJSON.call(value), scan, depth);
      // Read back: a Date, an ObjectId, a Binary ... stored by hand is no JSON value; refused,
      // not turned into its fields.
      throw new TypeError(`stored value is a ${proto?.constructor?.name ?? 'non-JSON object'}, not JSON`);
    }
    const out: JsonObject = {};
    // defineProperty, not assignment: a `__proto__` key (JSON.parse and BSON both make it an
    // own property) stays data instead of replacing the copy's prototype.
    for (const [k, v] of Object.entries(value)) {
      // As JSON (and the SQL adapters) do: a key holding `undefined` is left out (the driver
      // would store it as null); in arrays `undefined` becomes null, as JSON.stringify does.
      if (v === undefined) continue;
      if (scan) {
        if (!isStorableText(k)) throw unstorable(scan.field);
        if (!bsonSafeKey(k)) scan.needsText = true;
      }
      Object.defineProperty(out, k, { value: toJson(v, scan, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  throw new TypeError('stored JSON holds a non-JSON value');
}

/** A nested `{ …, at: Date }` error object (idMaps `lastError`). */
export function recordErrorOrNull(doc: Raw, key: string): { code: string; message: string; at: Date } | null {
  const value = doc[key];
  if (value === null || value === undefined || typeof value !== 'object') return null;
  const raw = value as Raw;
  return { code: str(raw, 'code'), message: str(raw, 'message'), at: date(raw, 'at') };
}

export function jobErrorOrNull(doc: Raw, key: string): { message: string; code?: string } | null {
  const value = doc[key];
  if (value === null || value === undefined || typeof value !== 'object') return null;
  const raw = value as Raw;
  const code = strOrNull(raw, 'code');
  return code === null ? { message: str(raw, 'message') } : { message: str(raw, 'message'), code };
}

// --- writers --------------------------------------------------------------------------------

/** Copies a Date (the caller's object is never stored or mutated). */
export function toDate(value: Date): Date {
  return new Date(value.getTime());
}

export function toDateOrNull(value: Date | null | undefined): Date | null {
  return value === null || value === undefined ? null : new Date(value.getTime());
}

/**
 * The stored form of the JSON value of argument `field`: a deep copy as BSON, or its JSON text
 * (a Binary of `JSON_TEXT_SUBTYPE`) when not every server stores it as BSON (a key that
 * cannot be a field name, an array inside an array, deep nesting).
 * Throws `InvalidArgumentError` naming `field`, before any write, for text no adapter can
 * store (a NUL character or an unpaired UTF-16 surrogate, which PostgreSQL refuses) and for a
 * value taking more than `MAX_STORED_JSON_BYTES` (a document holds at most 16 MiB).
 */
export function toStoredJson(value: JsonValue, field: string): unknown {
  const scan: WriteScan = { field, needsText: false };
  const copy = toJson(value, scan);
  const stored = scan.needsText ? new Binary(Buffer.from(JSON.stringify(copy), 'utf8'), JSON_TEXT_SUBTYPE) : copy;
  const bytes = storedJsonBytes(stored);
  if (bytes > MAX_STORED_JSON_BYTES) {
    throw new InvalidArgumentError(
      `${field} is too large to store: it takes ${bytes} bytes, over the ${MAX_STORED_JSON_BYTES} bytes (16 MiB less 64 KiB for the record's other fields) a MongoDB document leaves for it`,
    );
  }
  return stored;
}

/**
 * The bytes a stored JSON value (`toStoredJson`'s result, or a JSON field read back) takes, as
 * the size limit counts them: its JSON text, its BSON as the value of one field, or a string's
 * UTF-8 bytes (a number, boolean or null counts as nothing).
 */
export function storedJsonBytes(stored: unknown): number {
  if (stored instanceof Binary) return stored.length();
  if (typeof stored === 'object' && stored !== null) return BSON.calculateObjectSize({ v: stored });
  if (typeof stored === 'string') return Buffer.byteLength(stored, 'utf8');
  return 0;
}

/**
 * Refuses, naming `field`, a JSON value that would share its document with an already stored
 * one (`otherField`) when the two together take more than `MAX_STORED_JSON_BYTES` (a ledger
 * entry's outcome next to its intent): each passed the limit alone, but the document would
 * exceed 16 MiB.
 */
export function checkStoredJsonTogether(field: string, stored: unknown, otherField: string, otherStored: unknown): void {
  const bytes = storedJsonBytes(stored);
  const otherBytes = storedJsonBytes(otherStored);
  if (bytes + otherBytes > MAX_STORED_JSON_BYTES) {
    throw new InvalidArgumentError(
      `${field} is too large to store next to the recorded ${otherField}: together they take ${bytes + otherBytes} bytes (${field} ${bytes}, ${otherField} ${otherBytes}), over the ${MAX_STORED_JSON_BYTES} bytes (16 MiB less 64 KiB for the record's other fields) a MongoDB document leaves for them`,
    );
  }
}

/** Most UTF-8 bytes of a recorded error message (a job's or an id map's `lastError`). */
export const MAX_ERROR_MESSAGE_BYTES = 16 * 1024;
/** Most UTF-8 bytes of a recorded error code. */
export const MAX_ERROR_CODE_BYTES = 1024;
/** What ends recorded error text that was cut to fit. */
const CUT_MARKER = '…';

/**
 * Recorded error text as stored: each NUL or unpaired surrogate made U+FFFD (the contract's
 * rule), then cut, at a character boundary, to at most `maxBytes` UTF-8 bytes ending with `…`
 * when longer. The cap keeps a job's or an id map's document within 16 MiB whatever the error
 * (an HTTP error carrying a response body): the 64 KiB the JSON size limit leaves covers it.
 */
export function recordedText(text: string, maxBytes: number): string {
  const clean = wellFormedText(text);
  if (clean.length * 3 <= maxBytes || Buffer.byteLength(clean, 'utf8') <= maxBytes) return clean;
  const budget = maxBytes - Buffer.byteLength(CUT_MARKER, 'utf8');
  let bytes = 0;
  let end = 0;
  // Code points of well-formed text: a surrogate pair is never split.
  for (const char of clean) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return `${clean.slice(0, end)}${CUT_MARKER}`;
}

/**
 * A key every server accepts as a field name (not empty, no `.`, no leading `$`) and the BSON
 * serializer writes as data: it reads an object's `_bsontype` as the tag of one of its own
 * types, and refuses a plain object holding one (`BSONVersionError`).
 */
function bsonSafeKey(key: string): boolean {
  return key.length > 0 && !key.startsWith('$') && !key.includes('.') && key !== '_bsontype';
}

function unstorable(field: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field} holds a NUL character or an unpaired UTF-16 surrogate, which storage refuses`);
}

/** The contract's rule for recorded error text (re-exported for the repositories). */
export { wellFormedText };
