import { Store } from '../store.js';
import type { ConnecRecord, ExternalId, Group, JsonObject, JsonValue } from '../types.js';
import { newUuid } from '../util.js';
import { isReferenceField, LINE_ARRAYS, REFERENCE_TARGETS, transactionClassToCollection } from './collections.js';

export class ConnecError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly bodyStatus: string;
  constructor(status: number, code: string, title: string, detail: string, bodyStatus?: string) {
    super(detail);
    this.status = status;
    this.code = code;
    this.title = title;
    this.bodyStatus = bodyStatus ?? String(status);
  }
}

/** JSON:API-style error body (PROTOCOL §6.9). */
export function connecErrorBody(error: ConnecError): JsonObject {
  return {
    errors: [
      {
        id: newUuid(),
        href: `http://maestrano.github.io/connec/#${error.code}`,
        status: error.bodyStatus,
        code: error.code,
        title: error.title,
        detail: error.message,
      },
    ],
  };
}

function isIdMapArray(value: JsonValue | undefined): value is Array<{ [key: string]: JsonValue }> {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && typeof e.id === 'string' && typeof e.provider === 'string')
  );
}

function toExternalIds(value: Array<{ [key: string]: JsonValue }>): ExternalId[] {
  return value.map((e) => ({ id: String(e.id), provider: String(e.provider), realm: typeof e.realm === 'string' ? e.realm : '' }));
}

/**
 * Id resolution for one write. External-id bindings are collected in `pending` and only
 * applied once the whole payload is valid, so a rejected write changes nothing.
 */
class ResolveContext {
  readonly store: Store;
  readonly group: Group;
  readonly #pending = new Map<string, { scope: string; uuid: string; ext: ExternalId }>();

  constructor(store: Store, group: Group) {
    this.store = store;
    this.group = group;
  }

  find(scope: string, ext: ExternalId): string | undefined {
    return this.#pending.get(Store.externalKey(this.group.id, scope, ext))?.uuid ?? this.store.findByExternalId(this.group.id, scope, ext);
  }

  attach(scope: string, uuid: string, ext: ExternalId): void {
    this.#pending.set(Store.externalKey(this.group.id, scope, ext), { scope, uuid, ext });
  }

  commit(): void {
    for (const { scope, uuid, ext } of this.#pending.values()) this.store.attachExternalId(this.group.id, scope, uuid, ext);
    this.#pending.clear();
  }
}

/**
 * Resolves an id value (a Connec! UUID string or an id-map array) to a Connec! UUID.
 * Unknown external ids get a fresh UUID that later records carrying the same external
 * id will reuse, so references may arrive before their target.
 */
function resolveId(ctx: ResolveContext, scope: string, value: JsonValue, field: string): string | null {
  if (value === null || (Array.isArray(value) && value.length === 0)) return null;
  if (typeof value === 'string') return value;
  if (!isIdMapArray(value)) throw new ConnecError(400, 'validation', 'Validation error', `${field} must be a string or an array of {id, provider, realm}`);
  const ids = toExternalIds(value);
  const connec = ids.find((e) => e.provider === 'connec');
  let uuid = connec?.id;
  if (!uuid) {
    for (const ext of ids) {
      const found = ctx.find(scope, ext);
      if (found) {
        uuid = found;
        break;
      }
    }
  }
  uuid ??= newUuid();
  for (const ext of ids) if (ext.provider !== 'connec') ctx.attach(scope, uuid, ext);
  return uuid;
}

function normalizeObject(ctx: ResolveContext, scope: string, input: { [key: string]: JsonValue }, parentKey: string | null): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(input)) {
    if (key === 'group_id' || key === 'channel_id' || key === 'resource_type' || key === 'created_at' || key === 'updated_at') continue;
    if (key === 'id' && parentKey !== null) {
      if (parentKey === 'linked_transactions') {
        out.id = resolveId(ctx, transactionClassToCollection(input.class), value, 'linked_transactions/id');
      } else {
        out.id = resolveId(ctx, scope, value, `${parentKey}/id`);
      }
      continue;
    }
    if (key === 'id') continue;
    if (isReferenceField(key)) {
      out[key] = resolveId(ctx, REFERENCE_TARGETS[key] ?? `ref:${key}`, value, key);
      continue;
    }
    out[key] = normalizeValue(ctx, `${scope}/${key}`, value, key);
  }
  if (parentKey !== null && LINE_ARRAYS.has(parentKey) && out.id === undefined) out.id = newUuid();
  return out;
}

function normalizeValue(ctx: ResolveContext, scope: string, value: JsonValue, key: string): JsonValue {
  if (Array.isArray(value)) {
    return value.map((v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? normalizeObject(ctx, scope, v, key) : v));
  }
  if (typeof value === 'object' && value !== null) return normalizeObject(ctx, scope, value, key);
  return value;
}

/** Who made a change: the group's own app (never notified back), another app, the admin API or the UI. */
export type ChangeSource = 'app' | 'other-app' | 'admin' | 'ui';

export interface WriteOptions {
  store: Store;
  group: Group;
  collection: string;
  source: ChangeSource;
}

/** Creates a record from a request payload. POST with a Connec! id, or with ids already bound to a record, is a 409. */
export function createRecord(opts: WriteOptions, payload: JsonObject): ConnecRecord {
  const { store, group, collection } = opts;
  const ctx = new ResolveContext(store, group);
  let uuid: string | undefined;
  const rawId = payload.id;
  if (rawId !== undefined && rawId !== null) {
    if (typeof rawId === 'string') throw new ConnecError(409, 'resource-conflict', 'Conflict', 'A record cannot be created with an id', '404');
    if (!isIdMapArray(rawId)) throw new ConnecError(400, 'validation', 'Validation error', 'id must be an array of {id, provider, realm}');
    const ids = toExternalIds(rawId);
    if (ids.some((e) => e.provider === 'connec')) throw new ConnecError(409, 'resource-conflict', 'Conflict', 'A record cannot be created with a Connec! id', '404');
    for (const ext of ids) {
      const found = ctx.find(collection, ext);
      if (found && store.records.has(found)) {
        throw new ConnecError(409, 'resource-conflict', 'Conflict', `A record with id ${ext.id} (${ext.provider}/${ext.realm}) already exists`, '404');
      }
      if (found) uuid = found;
    }
    uuid ??= newUuid();
    for (const ext of ids) ctx.attach(collection, uuid, ext);
  }
  uuid ??= newUuid();
  const { opts: _options, ...fields } = payload;
  const data = normalizeObject(ctx, collection, fields, null);
  const now = store.clock.next();
  const record: ConnecRecord = { id: uuid, groupId: group.id, collection, data, createdAt: now, updatedAt: now };
  ctx.commit();
  store.putRecord(record);
  return record;
}

/**
 * Smart merging on create: with `opts.matching_fields` (e.g. `["name"]`), the record of the
 * collection whose fields all equal the payload's, if any. Connec! then treats the POST as an
 * update of that record and answers 200 with it. None when a field is missing from the
 * payload, or when the payload's ids are already bound (that POST is a 409).
 */
export function matchingRecord(opts: WriteOptions, payload: JsonObject): ConnecRecord | null {
  const { store, group, collection } = opts;
  const options = payload.opts;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return null;
  const fields = options.matching_fields;
  if (!Array.isArray(fields) || fields.length === 0 || !fields.every((f) => typeof f === 'string' && f !== '')) return null;
  if (isIdMapArray(payload.id)) {
    const ctx = new ResolveContext(store, group);
    const bound = toExternalIds(payload.id).some((ext) => {
      const found = ctx.find(collection, ext);
      return found !== undefined && store.records.has(found);
    });
    if (bound) return null;
  }
  const wanted: [string[], string][] = [];
  for (const field of fields as string[]) {
    const path = field.split('/');
    let value: JsonValue | undefined = payload;
    for (const key of path) value = typeof value === 'object' && value !== null && !Array.isArray(value) ? value[key] : undefined;
    if (value === undefined || value === null) return null;
    wanted.push([path, JSON.stringify(value)]);
  }
  return store.listRecords(group.id, collection).find((record) => wanted.every(([path, value]) => JSON.stringify(recordField(record, group, path)) === value)) ?? null;
}

function mergeInto(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    if (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current)
    ) {
      const copy: JsonObject = { ...current };
      mergeInto(copy, value);
      target[key] = copy;
    } else {
      target[key] = value;
    }
  }
}

/**
 * Partial update (PROTOCOL §6.3): fields are merged, nested objects deep-merged, arrays
 * replaced. `opts: {sparse: false}` in the payload asks for full replacement.
 */
export function updateRecord(opts: WriteOptions, record: ConnecRecord, payload: JsonObject): ConnecRecord {
  const { store, group, collection } = opts;
  const ctx = new ResolveContext(store, group);
  const rawId = payload.id;
  if (rawId !== undefined && rawId !== null && typeof rawId !== 'string') {
    if (!isIdMapArray(rawId)) throw new ConnecError(400, 'validation', 'Validation error', 'id must be an array of {id, provider, realm}');
    for (const ext of toExternalIds(rawId)) {
      if (ext.provider === 'connec') {
        if (ext.id !== record.id) throw new ConnecError(400, 'validation', 'Validation error', 'The Connec! id in the body does not match the URL');
        continue;
      }
      const found = ctx.find(collection, ext);
      if (found && found !== record.id && store.records.has(found)) {
        throw new ConnecError(409, 'resource-conflict', 'Conflict', `id ${ext.id} (${ext.provider}/${ext.realm}) is bound to another record`);
      }
      ctx.attach(collection, record.id, ext);
    }
  }
  const rawOpts = payload.opts;
  const sparse = !(typeof rawOpts === 'object' && rawOpts !== null && !Array.isArray(rawOpts) && rawOpts.sparse === false);
  const { opts: _ignored, ...rest } = payload;
  const patch = normalizeObject(ctx, collection, rest, null);
  const data: JsonObject = sparse ? { ...record.data } : {};
  mergeInto(data, patch);
  const updated: ConnecRecord = { ...record, data, updatedAt: store.clock.next() };
  ctx.commit();
  store.putRecord(updated);
  return updated;
}

function renderIds(store: Store, group: Group, value: JsonValue, parentKey: string | null): JsonValue {
  if (Array.isArray(value)) return value.map((v) => renderIds(store, group, v, parentKey));
  if (typeof value !== 'object' || value === null) return value;
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'string' && (isReferenceField(key) || (key === 'id' && parentKey !== null))) out[key] = idArray(store, group, v);
    else out[key] = renderIds(store, group, v, key);
  }
  return out;
}

function idArray(store: Store, group: Group, uuid: string): JsonValue {
  const list: JsonValue[] = [{ id: uuid, provider: 'connec', realm: group.orgUid }];
  for (const ext of store.idMaps.get(uuid) ?? []) list.push({ id: ext.id, provider: ext.provider, realm: ext.realm });
  return list;
}

/** The record as the API returns it: plain ids, or id-map arrays with `CONNEC-EXTERNAL-IDS`. */
export function renderRecord(store: Store, group: Group, record: ConnecRecord, externalIds: boolean): JsonObject {
  const data = externalIds ? renderIds(store, group, record.data, '') : record.data;
  const body: JsonObject = {
    id: externalIds ? idArray(store, group, record.id) : record.id,
    group_id: group.id,
    channel_id: group.orgUid,
    resource_type: record.collection,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
    for (const [k, v] of Object.entries(data)) body[k] = v;
  }
  return body;
}

/** Reads a field of a record (system fields first) for filtering and ordering. */
export function recordField(record: ConnecRecord, group: Group, path: string[]): JsonValue | undefined {
  const [head, ...rest] = path;
  if (head === undefined) return undefined;
  let value: JsonValue | undefined;
  switch (head) {
    case 'id':
      value = record.id;
      break;
    case 'group_id':
      value = group.id;
      break;
    case 'channel_id':
      value = group.orgUid;
      break;
    case 'resource_type':
      value = record.collection;
      break;
    case 'created_at':
      value = record.createdAt;
      break;
    case 'updated_at':
      value = record.updatedAt;
      break;
    default:
      value = record.data[head];
  }
  for (const key of rest) {
    if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = value[key];
  }
  return value;
}
