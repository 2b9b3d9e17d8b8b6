import { accessControlHeaders } from '../account.js';
import { decodeComponent, decodePathSegments, json, MALFORMED_PATH_MESSAGE, parseBasicAuth, type SandboxRequest, type SandboxResponse } from '../http.js';
import type { Platform } from '../platform.js';
import type { ConnecRecord, Group, JsonObject, JsonValue, Marketplace } from '../types.js';
import { CONNEC_COLLECTIONS, SINGULAR_COLLECTIONS } from './collections.js';
import { compareValues, FilterSyntaxError, parseFilter, parseOrderBy, testCondition } from './filter.js';
import { type ChangeSource, ConnecError, connecErrorBody, recordField, renderRecord } from './records.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

function errorResponse(error: ConnecError): SandboxResponse {
  return json(error.status, connecErrorBody(error), accessControlHeaders());
}

function unauthorized(): ConnecError {
  return new ConnecError(401, 'unauthorized', 'Unauthorized Access', 'Unauthorized Access');
}

function malformedPath(): ConnecError {
  return new ConnecError(400, 'bad-request', 'Bad request', MALFORMED_PATH_MESSAGE);
}

function wantsExternalIds(req: SandboxRequest): boolean {
  return String(req.headers['connec-external-ids'] ?? '').toLowerCase() === 'true';
}

/** A request body (raw text, or a batch op's already parsed `params`) as a JSON object. */
function parseJsonBody(body: string | JsonValue): JsonObject {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body === '' ? '{}' : body);
    } catch {
      throw new ConnecError(400, 'validation', 'Validation error', 'Malformed JSON body');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConnecError(400, 'validation', 'Validation error', 'The body must be a JSON object');
  return parsed as JsonObject;
}

function payloadOf(body: JsonObject, collection: string): JsonObject {
  const inner = body[collection];
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) {
    throw new ConnecError(400, 'validation', 'Validation error', `The body must be {"${collection}": {...}}`);
  }
  return inner;
}

function parseNonNegative(value: string | null, name: string, fallback: number): number {
  if (value === null || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new ConnecError(400, 'validation', 'Validation error', `${name} must be a non-negative integer`);
  return Number(value);
}

/**
 * Identifies the caller with Basic auth and checks its access to the group (PROTOCOL §6.1):
 * the group's own app (its marketplace credentials) or another app connected to the group.
 */
function authorize(platform: Platform, req: SandboxRequest, groupId: string): { group: Group; source: ChangeSource } {
  const creds = parseBasicAuth(req.headers);
  if (!creds) throw unauthorized();
  const group = platform.store.groups.get(groupId);
  if (group?.status !== 'running') throw unauthorized();
  const marketplace: Marketplace | undefined = platform.marketplaceByCredentials(creds.user, creds.password);
  if (marketplace && group.marketplace === marketplace.name) return { group, source: 'app' };
  const other = platform.otherAppByCredentials(creds.user, creds.password);
  if (other?.groupIds.includes(group.id)) return { group, source: 'other-app' };
  throw unauthorized();
}

/** The query options a list answers; a single record takes none. */
const LIST_QUERY_OPTIONS: ReadonlySet<string> = new Set(['$top', '$skip', '$filter', '$orderby']);

/**
 * Refuses a `$` option the sandbox does not implement: a 400 that says so, not an answer that
 * ignores it (a client relying on `$search`, or misspelling `$filter`, would pass here and fail
 * against Connec!). Other parameters are not Connec! query options and are left alone.
 */
function refuseUnsupportedQuery(q: URLSearchParams, allowed: ReadonlySet<string>): void {
  for (const key of q.keys()) {
    // `mappings[]` (PROTOCOL §6.4) is a Connec! list option too, without a `$`: ignored, it
    // answered records Connec! would have filtered out.
    if (/^mappings(\[[^\]]*\])?$/.test(key)) {
      throw new ConnecError(400, 'invalid-query', 'Invalid query', 'the mappings[] filter (records by the apps they are mapped to) is not implemented by the sandbox');
    }
    if (!key.startsWith('$') || allowed.has(key)) continue;
    const detail =
      key === '$search' || key === '$expand'
        ? `${key} (PROTOCOL §6.4) is not implemented by the sandbox`
        : `Unknown query option ${key}${allowed.size > 0 ? `; supported here: ${[...allowed].join(', ')}` : ''}`;
    throw new ConnecError(400, 'invalid-query', 'Invalid query', detail);
  }
}

function listRecords(platform: Platform, req: SandboxRequest, group: Group, collection: string, externalIds: boolean): SandboxResponse {
  const q = req.url.searchParams;
  refuseUnsupportedQuery(q, LIST_QUERY_OPTIONS);
  const top = Math.min(parseNonNegative(q.get('$top'), '$top', DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
  const skip = parseNonNegative(q.get('$skip'), '$skip', 0);
  let filter: ReturnType<typeof parseFilter> = [];
  let orderBy: ReturnType<typeof parseOrderBy> = [];
  try {
    const f = q.get('$filter');
    if (f !== null && f.trim() !== '') filter = parseFilter(f);
    const o = q.get('$orderby');
    if (o !== null && o.trim() !== '') orderBy = parseOrderBy(o);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new ConnecError(400, 'invalid-query', 'Invalid query', e.message);
    throw e;
  }
  let records: ConnecRecord[] = platform.store.listRecords(group.id, collection);
  if (filter.length > 0) records = records.filter((r) => filter.every((c) => testCondition(recordField(r, group, c.field), c)));
  if (orderBy.length > 0) {
    records = [...records].sort((a, b) => {
      for (const o of orderBy) {
        const c = compareValues(recordField(a, group, o.field), recordField(b, group, o.field));
        if (c !== 0) return o.descending ? -c : c;
      }
      return 0;
    });
  }
  const total = records.length;
  const page = records.slice(skip, skip + top);
  const pagination: JsonObject = { total, skip, top };
  if (skip + top < total && top > 0) {
    const next = new URL(`${platform.url}${req.url.pathname}`);
    for (const [k, v] of q) if (k !== '$skip' && k !== '$top') next.searchParams.append(k, v);
    next.searchParams.set('$skip', String(skip + top));
    next.searchParams.set('$top', String(top));
    pagination.next = next.toString();
  }
  if (skip > 0) {
    const prev = new URL(`${platform.url}${req.url.pathname}`);
    for (const [k, v] of q) if (k !== '$skip' && k !== '$top') prev.searchParams.append(k, v);
    prev.searchParams.set('$skip', String(Math.max(0, skip - top)));
    prev.searchParams.set('$top', String(top));
    pagination.prev = prev.toString();
  }
  const body: JsonObject = { [collection]: page.map((r) => renderRecord(platform.store, group, r, externalIds)), pagination };
  return json(200, body, accessControlHeaders());
}

/** Handles one Connec! call below `/api/v2`; `path` is the part after `/api/v2`. */
function connecCall(platform: Platform, req: SandboxRequest, method: string, path: string, body: string | JsonValue): SandboxResponse {
  try {
    const segments = decodePathSegments(path);
    if (segments === null) throw malformedPath();
    const [groupId, collection, id, extra] = segments;
    if (groupId === 'json_schema' && collection !== undefined && method === 'GET') {
      if (!CONNEC_COLLECTIONS.includes(collection)) throw new ConnecError(400, 'unknown-resource', 'Unknown Resource', `Unknown resource ${collection}`);
      return json(200, { $schema: 'http://json-schema.org/draft-04/schema#', title: collection, type: 'object', properties: { id: { type: 'string' }, group_id: { type: 'string' }, channel_id: { type: 'string' }, created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' } } });
    }
    if (groupId === undefined) throw new ConnecError(404, 'resource-not-found', 'Resource not found', 'Resource not found');
    const { group, source } = authorize(platform, req, groupId);
    const externalIds = wantsExternalIds(req);
    if (collection === undefined) {
      if (method !== 'GET') throw new ConnecError(405, 'method-not-allowed', 'Method not allowed', `${method} is not allowed here`);
      return json(200, { _links: CONNEC_COLLECTIONS.map((c) => ({ [c]: { href: `/api/v2/${group.id}/${c}` } })) }, accessControlHeaders());
    }
    if (!CONNEC_COLLECTIONS.includes(collection)) throw new ConnecError(400, 'unknown-resource', 'Unknown Resource', `Unknown resource ${collection}`);
    if (extra !== undefined) throw new ConnecError(404, 'resource-not-found', 'Resource not found', 'Resource not found');
    if (SINGULAR_COLLECTIONS.has(collection)) {
      if (id !== undefined) throw new ConnecError(404, 'resource-not-found', 'Resource not found', 'Resource not found');
      const company = platform.company(group.id);
      if (method === 'GET') return json(200, { [collection]: renderRecord(platform.store, group, company, externalIds) }, accessControlHeaders());
      if (method === 'PUT') {
        const updated = platform.connecUpdate(group.id, collection, company.id, payloadOf(parseJsonBody(body), collection), source);
        return json(200, { [collection]: renderRecord(platform.store, group, updated, externalIds) }, accessControlHeaders());
      }
      throw new ConnecError(405, 'method-not-allowed', 'Method not allowed', `${method} is not allowed on ${collection}`);
    }
    if (id === undefined) {
      if (method === 'GET') return listRecords(platform, req, group, collection, externalIds);
      if (method === 'POST') {
        const { record: created, created: isNew } = platform.connecCreateOrMerge(group.id, collection, payloadOf(parseJsonBody(body), collection), source);
        return json(isNew ? 201 : 200, { [collection]: renderRecord(platform.store, group, created, externalIds) }, {
          ...accessControlHeaders(),
          ...(isNew ? { location: `${platform.url}/api/v2/${group.id}/${collection}/${created.id}` } : {}),
        });
      }
      throw new ConnecError(405, 'method-not-allowed', 'Method not allowed', `${method} is not allowed on a collection`);
    }
    if (method === 'GET') {
      refuseUnsupportedQuery(req.url.searchParams, new Set());
      const record = platform.store.records.get(id);
      if (!record || record.groupId !== group.id || record.collection !== collection) throw new ConnecError(404, 'resource-not-found', 'Resource not found', 'Resource not found');
      return json(200, { [collection]: renderRecord(platform.store, group, record, externalIds) }, accessControlHeaders());
    }
    if (method === 'PUT') {
      const updated = platform.connecUpdate(group.id, collection, id, payloadOf(parseJsonBody(body), collection), source);
      return json(200, { [collection]: renderRecord(platform.store, group, updated, externalIds) }, accessControlHeaders());
    }
    if (method === 'POST') throw new ConnecError(409, 'resource-conflict', 'Conflict', 'A record cannot be created with an id', '404');
    if (method === 'DELETE') throw new ConnecError(405, 'method-not-allowed', 'Method not allowed', 'Records cannot be deleted: set status to ARCHIVED');
    throw new ConnecError(405, 'method-not-allowed', 'Method not allowed', `${method} is not allowed`);
  } catch (e) {
    if (e instanceof ConnecError) return errorResponse(e);
    return errorResponse(new ConnecError(500, 'internal-server-error', 'Internal server error', 'Internal server error'));
  }
}

function batch(platform: Platform, req: SandboxRequest): SandboxResponse {
  const creds = parseBasicAuth(req.headers);
  if (!creds || (!platform.marketplaceByCredentials(creds.user, creds.password) && !platform.otherAppByCredentials(creds.user, creds.password))) return errorResponse(unauthorized());
  let body: JsonObject;
  try {
    body = parseJsonBody(req.body);
  } catch (e) {
    if (e instanceof ConnecError) return errorResponse(e);
    throw e;
  }
  const ops = body.ops;
  if (!Array.isArray(ops)) return errorResponse(new ConnecError(400, 'validation', 'Validation error', 'ops must be an array'));
  const results: JsonValue[] = [];
  for (const op of ops) {
    if (typeof op !== 'object' || op === null || Array.isArray(op) || typeof op.method !== 'string' || typeof op.url !== 'string') {
      results.push({ status: 400, body: connecErrorBody(new ConnecError(400, 'validation', 'Validation error', 'Each op needs method and url')) });
      continue;
    }
    const method = op.method.toUpperCase();
    if (!URL.canParse(op.url, platform.url)) {
      results.push({ status: 400, body: connecErrorBody(new ConnecError(400, 'validation', 'Validation error', `${op.url} is not a URL`)) });
      continue;
    }
    const url = new URL(op.url, platform.url);
    const path = url.pathname.startsWith('/api/v2') ? url.pathname.slice('/api/v2'.length) : null;
    if (path === null) {
      results.push({ status: 404, body: connecErrorBody(new ConnecError(404, 'resource-not-found', 'Resource not found', `${op.url} is not a Connec! /api/v2 URL`)) });
      continue;
    }
    const subReq: SandboxRequest = { method, url, headers: req.headers, body: '' };
    const params = op.params;
    // The op's params go in as parsed, and its result comes back as a value: no JSON round trip per op.
    const res = connecCall(platform, subReq, method, path, method === 'GET' ? '' : (params ?? {}));
    let parsed: JsonValue;
    if (res.value !== undefined) parsed = res.value as JsonValue;
    else {
      try {
        parsed = JSON.parse(res.body) as JsonValue;
      } catch {
        parsed = res.body;
      }
    }
    results.push({ status: res.status, body: parsed });
  }
  return json(200, { results }, accessControlHeaders());
}

/** `/api/v2/...`, `POST /batch` and `GET /version` (PROTOCOL §6). */
export function handleConnec(platform: Platform, req: SandboxRequest): SandboxResponse | null {
  const path = req.url.pathname;
  if (path === '/batch' || path === '/batch/') {
    if (req.method === 'OPTIONS') return { status: 204, headers: accessControlHeaders(), body: '' };
    if (req.method !== 'POST') return errorResponse(new ConnecError(405, 'method-not-allowed', 'Method not allowed', 'Use POST /batch'));
    return batch(platform, req);
  }
  if (path === '/version') return json(200, { ci_branch: 'sandbox', ci_commit: 'local', env: 'sandbox' });
  const report = /^\/api\/reports\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (report?.[1] !== undefined && report[2] !== undefined && req.method === 'GET') {
    try {
      const groupId = decodeComponent(report[1]);
      if (groupId === null) throw malformedPath();
      authorize(platform, req, groupId);
      if (report[2] !== 'accounts_summary') throw new ConnecError(400, 'unknown-resource', 'Unknown Resource', `Unknown report ${report[2]}`);
      const q = req.url.searchParams;
      return json(200, { to: q.get('to'), period: q.get('period') ?? 'MONTHLY', accounts: [] }, accessControlHeaders());
    } catch (e) {
      if (e instanceof ConnecError) return errorResponse(e);
      throw e;
    }
  }
  if (path !== '/api/v2' && !path.startsWith('/api/v2/')) return null;
  if (req.method === 'OPTIONS') return { status: 204, headers: accessControlHeaders(), body: '' };
  return connecCall(platform, req, req.method, path.slice('/api/v2'.length), req.body);
}
