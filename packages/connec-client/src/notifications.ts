/**
 * Connec! webhook notifications (PROTOCOL §6.12): a JSON body mapping collection names to arrays
 * of changed records, each carrying its `group_id`; one body can mix collections and groups.
 */
import { type IssueSummary, PayloadValidationError } from './errors.js';
import { describeIssues, summarizeIssues } from './internal/issues.js';
import { validateRecord } from './internal/validator.js';
import {
  type CollectionName,
  type CollectionRecord,
  isCollectionName,
  normalizeCollectionName,
  schemaFor,
} from './schemas/catalog.js';
import type { ConnecRecord } from './schemas/shared.js';

/** One changed record, with its normalised collection and its group. */
export interface NotificationEntry {
  /** Plural collection name (`Person` in the body becomes `people`). */
  collection: string;
  /** The key as it appeared in the body. */
  key: string;
  groupId: string;
  record: ConnecRecord;
}

/** Typed records of the catalog's collections. */
export type CatalogRecords = { [K in CollectionName]?: CollectionRecord<K>[] };

/** Every change of one group. */
export interface NotificationGroup {
  groupId: string;
  /** Records of typed collections, parsed with their schema. */
  records: CatalogRecords;
  /** Records of collections without a typed schema, by normalised name. */
  other: Record<string, ConnecRecord[]>;
  /** Every entry of this group, in body order. */
  entries: NotificationEntry[];
}

export interface ConnecNotification {
  /** Every record, in body order. */
  entries: NotificationEntry[];
  /** Changes grouped by `group_id`, in order of first appearance. */
  groups: NotificationGroup[];
  /**
   * Top-level keys skipped without validation, in body order: keys whose value is a scalar (not a
   * collection) and, with `options.collections`, keys that name no collection or name a refused
   * collection with a value that is not an array of records (no records to count).
   */
  ignoredKeys: string[];
  /**
   * Records of collections refused by `options.collections`, by normalised collection name:
   * neither validated nor returned.
   */
  ignoredRecords: Record<string, number>;
}

export interface ParseNotificationOptions {
  /**
   * Which collections (normalised plural names) the caller handles. Records of the others are
   * skipped without validation and only counted in `ignoredRecords`, so a schema change in a
   * collection you do not sync cannot make a notification invalid. A key that names no collection,
   * or a refused one whose value is not an array, is listed in `ignoredKeys` instead of making the
   * body invalid. Default: every collection.
   */
  collections?: (collection: string) => boolean;
  /**
   * Called for each record that fails on its own (not an object, no `group_id`, or not matching
   * its collection's schema); the record is then left out instead of the whole body being
   * refused. The body's shape (a JSON object of arrays keyed by collection names) is still
   * checked as a whole. Connec! does not deliver a refused notification again, so a receiver
   * keeps the valid records beside a bad one this way (and may read the bad one again by id).
   */
  onInvalidRecord?: (invalid: InvalidNotificationRecord) => void;
}

/** A record of a notification that fails on its own (see `ParseNotificationOptions.onInvalidRecord`). */
export interface InvalidNotificationRecord {
  /** The normalised collection name (`people`). */
  collection: string;
  /** The key as sent (`Person`). */
  key: string;
  /** Its position in that key's array. */
  index: number;
  /** The record as sent. */
  record: unknown;
  /** What is wrong, with paths such as `people/3/email/address`. */
  issues: IssueSummary[];
  /** The same as one line: `Invalid Connec! notification record: people/3/email/address: …`. */
  message: string;
}

function pushTyped<K extends CollectionName>(
  target: { [P in K]?: CollectionRecord<P>[] },
  name: K,
  record: CollectionRecord<K>,
): void {
  const list: CollectionRecord<K>[] = target[name] ?? [];
  list.push(record);
  target[name] = list;
}

function fail(issues: IssueSummary[]): PayloadValidationError {
  return new PayloadValidationError(`Invalid Connec! notification: ${describeIssues(issues, 10)}`, { issues });
}

function decode(body: unknown): unknown {
  let text: string | undefined;
  if (typeof body === 'string') text = body;
  else if (body instanceof Uint8Array) text = new TextDecoder('utf-8', { fatal: false }).decode(body);
  if (text === undefined) return body;
  try {
    return JSON.parse(text);
  } catch {
    throw fail([{ path: '', message: 'body is not valid JSON' }]);
  }
}

/**
 * Parse and validate a notification body (the raw text, bytes, or the parsed JSON). Keys are
 * normalised (`Person`, `people`, `Invoice` -> `invoices`); every record must be an object with a
 * `group_id` and must match its collection's schema. Any problem throws one
 * `PayloadValidationError` listing every bad path, and nothing is returned. With
 * `options.collections`, keys of the collections it refuses (and keys that name no collection)
 * are skipped unvalidated, whatever their value: they go to `ignoredRecords` or `ignoredKeys`.
 */
export function parseNotification(body: unknown, options: ParseNotificationOptions = {}): ConnecNotification {
  const parsed = decode(body);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw fail([{ path: '', message: 'expected a JSON object keyed by collection name' }]);
  }
  const issues: IssueSummary[] = [];
  const entries: NotificationEntry[] = [];
  const typedEntries: { name: CollectionName; index: number }[] = [];
  const ignoredKeys: string[] = [];
  const ignoredRecords: Record<string, number> = {};

  for (const [key, value] of Object.entries(parsed)) {
    if (value === null || typeof value !== 'object') {
      ignoredKeys.push(key);
      continue;
    }
    const collection = normalizeCollectionName(key);
    // The caller's filter comes before any check: what it refuses (or cannot be one of the
    // collections it handles) is skipped, whatever its shape.
    if (options.collections && (collection === undefined || !options.collections(collection))) {
      if (collection !== undefined && Array.isArray(value)) {
        ignoredRecords[collection] = (ignoredRecords[collection] ?? 0) + value.length;
      } else {
        ignoredKeys.push(key);
      }
      continue;
    }
    if (collection === undefined) {
      issues.push({ path: key, message: 'not a collection name' });
      continue;
    }
    if (!Array.isArray(value)) {
      issues.push({ path: key, message: 'expected an array of records' });
      continue;
    }
    const schema = schemaFor(collection);
    value.forEach((raw: unknown, i: number) => {
      const found: IssueSummary[] = [];
      const invalid = (): void => {
        if (options.onInvalidRecord) {
          options.onInvalidRecord({ collection, key, index: i, record: raw, issues: found, message: `Invalid Connec! notification record: ${describeIssues(found, 10)}` });
        } else issues.push(...found);
      };
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        found.push({ path: `${key}/${i}`, message: 'expected a record object' });
        invalid();
        return;
      }
      const groupId = (raw as Record<string, unknown>).group_id;
      if (typeof groupId !== 'string' || groupId === '') {
        found.push({ path: `${key}/${i}/group_id`, message: 'expected the group id (cld-...) of the record' });
      }
      const result = validateRecord(schema, raw);
      if (!result.success) found.push(...summarizeIssues(result.error.issues, [key, i]));
      if (found.length > 0 || !result.success) {
        invalid();
        return;
      }
      if (typeof groupId !== 'string' || groupId === '') return;
      const index = entries.length;
      entries.push({ collection, key, groupId, record: result.data });
      if (isCollectionName(collection)) typedEntries.push({ name: collection, index });
    });
  }
  if (issues.length > 0) throw fail(issues);

  const byGroup = new Map<string, NotificationGroup>();
  const typedAt = new Map(typedEntries.map((t) => [t.index, t.name]));
  entries.forEach((entry, index) => {
    let group = byGroup.get(entry.groupId);
    if (!group) {
      group = { groupId: entry.groupId, records: {}, other: {}, entries: [] };
      byGroup.set(entry.groupId, group);
    }
    group.entries.push(entry);
    const typedName = typedAt.get(index);
    if (typedName !== undefined) {
      addTyped(group.records, typedName, entry.record);
    } else {
      (group.other[entry.collection] ??= []).push(entry.record);
    }
  });
  return { entries, groups: [...byGroup.values()], ignoredKeys, ignoredRecords };
}

function addTyped<K extends CollectionName>(target: CatalogRecords, name: K, record: ConnecRecord): void {
  // The record was parsed above with schemaFor(name), i.e. connecCollections[name], so it is a
  // CollectionRecord<K>; TypeScript cannot correlate the dynamic key with the schema.
  pushTyped(target, name, record as CollectionRecord<K>);
}
