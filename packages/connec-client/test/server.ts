/**
 * A small Connec! server on 127.0.0.1 for the client's tests, following PROTOCOL §6: Basic auth
 * with per-group access, `/api/v2/{group}/{collection}[/{id}]`, the singular `company`, the
 * plural-key envelope, `$filter/$top/$skip/$orderby`, absolute `pagination.next` URLs, the
 * `CONNEC-EXTERNAL-IDS` id arrays, JSON:API error lists, `{host}/batch`, and scripted faults
 * (statuses, resets, hangs, stalled bodies) for retry and timeout tests.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface IdEntry {
  id: string;
  provider: string;
  realm: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  rawUrl: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export type FaultAction =
  | { kind: 'reply'; status: number; headers?: Record<string, string>; body?: unknown; raw?: string }
  | { kind: 'reset' }
  | { kind: 'hang' }
  /** Answer normally, but only after `ms` milliseconds. */
  | { kind: 'delay'; ms: number }
  | { kind: 'stall-body'; status?: number };

export interface Fault {
  method?: string;
  /** Matches the request path (a string is a prefix). */
  path?: string | RegExp;
  /** How many matching requests it applies to. @default 1 */
  times?: number;
  /** Let this many matching requests through first. @default 0 */
  after?: number;
  action: FaultAction;
}

export const ACCEPTED_COLLECTIONS = new Set([
  'accounts',
  'invoices',
  'sales_orders',
  'purchase_orders',
  'quotes',
  'payments',
  'stock_adjustments',
  'journals',
  'items',
  'organizations',
  'people',
  'projects',
  'tax_codes',
  'tax_rates',
  'warehouses',
  'employees',
  'opportunities',
  'app_users',
]);

interface StoredRecord {
  connecId: string;
  appIds: IdEntry[];
  fields: JsonObject;
}

export interface TestConnecOptions {
  apiId?: string;
  apiKey?: string;
  /** group id -> channel (org uid). */
  groups?: Record<string, string>;
  /** Page size when `$top` is absent. @default 100 */
  defaultTop?: number;
  /** Origin written into `pagination.next` (default: the server's own). */
  publicOrigin?: string;
  /** Omit `pagination.next` (clients must page with `$skip` and `total`). */
  omitNext?: boolean;
  /**
   * Serve everything under this path prefix (e.g. `/connec`), like a gateway in front of Connec!:
   * the prefix is stripped before dispatch (other paths get 404) and, as Connec! knows nothing of
   * it, `pagination.next` is written without it (unless `publicOrigin` carries it).
   */
  mountPath?: string;
}

function errorBody(status: number, title: string, detail = title, code = 'error'): JsonObject {
  return {
    errors: [{ id: randomUUID(), href: 'http://maestrano.github.io/connec/#errors', status: String(status), code, title, detail }],
  };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIdArray(value: unknown): value is IdEntry[] {
  return Array.isArray(value) && value.every((v) => isObject(v) && typeof v.id === 'string' && typeof v.provider === 'string');
}

// --- $filter ------------------------------------------------------------------------------

type Term = { field: string; op: string; value: Json | RegExp };

function splitAnd(filter: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let regex = false;
  for (let i = 0; i < filter.length; i += 1) {
    const ch = filter[i] ?? '';
    if (ch === "'" && !regex) quoted = !quoted;
    if (ch === '/' && !quoted && filter[i - 1] !== '\\') regex = !regex;
    if (!quoted && !regex && /^ and /i.test(filter.slice(i, i + 5))) {
      parts.push(current);
      current = '';
      i += 4;
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export function parseFilter(filter: string): Term[] {
  return splitAnd(filter).map((term) => {
    const m = /^([A-Za-z_][A-Za-z0-9_./]*)\s+(eq|ne|gt|lt|gte|lte|match)\s+(.+)$/i.exec(term);
    if (!m) throw new Error(`bad filter term: ${term}`);
    const [, field = '', opRaw = '', rawValue = ''] = m;
    const op = opRaw.toLowerCase();
    let value: Json | RegExp;
    if (rawValue.startsWith("'") && rawValue.endsWith("'") && rawValue.length >= 2) {
      value = rawValue.slice(1, -1).replaceAll("''", "'");
    } else if (rawValue === 'null') value = null;
    else if (rawValue === 'true' || rawValue === 'false') value = rawValue === 'true';
    else if (/^-?\d+(\.\d+)?$/.test(rawValue)) value = Number(rawValue);
    else if (/^\/.*\/i?$/.test(rawValue)) {
      const flags = rawValue.endsWith('i') ? 'i' : '';
      value = new RegExp(rawValue.slice(1, flags ? -2 : -1), flags);
    } else throw new Error(`bad filter value: ${rawValue}`);
    if (op === 'match' && !(value instanceof RegExp)) throw new Error('match needs a /regex/');
    return { field, op, value };
  });
}

function fieldValue(record: JsonObject, field: string): Json | undefined {
  let node: Json | undefined = record;
  for (const part of field.split(/[./]/)) {
    if (!isObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

function comparable(value: Json | undefined): number | string | boolean | null | undefined {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  if (value === undefined || typeof value === 'object') return value === undefined ? undefined : null;
  return value;
}

function matches(record: JsonObject, terms: Term[]): boolean {
  return terms.every(({ field, op, value }) => {
    const actual = fieldValue(record, field);
    if (value instanceof RegExp) return typeof actual === 'string' && value.test(actual);
    if (value === null) return op === 'eq' ? actual == null : actual != null;
    const a = comparable(actual);
    const b = comparable(value);
    if (a === undefined || a === null || b === undefined || b === null) return op === 'ne';
    switch (op) {
      case 'eq':
        return a === b;
      case 'ne':
        return a !== b;
      case 'gt':
        return a > b;
      case 'lt':
        return a < b;
      case 'gte':
        return a >= b;
      case 'lte':
        return a <= b;
      default:
        return false;
    }
  });
}

// --- server --------------------------------------------------------------------------------

export class TestConnecServer {
  readonly apiId: string;
  readonly apiKey: string;
  readonly requests: RecordedRequest[] = [];
  /** Requests held by a `hang` fault whose client went away (aborted or timed out). */
  abandonedHangs = 0;
  readonly #groups: Map<string, string>;
  readonly #store = new Map<string, StoredRecord[]>();
  readonly #companies = new Map<string, StoredRecord>();
  readonly #faults: Fault[] = [];
  readonly #options: TestConnecOptions;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #url = '';
  #clock = Date.parse('2026-01-01T00:00:00Z');

  private constructor(options: TestConnecOptions) {
    this.#options = options;
    this.apiId = options.apiId ?? 'app-test';
    this.apiKey = options.apiKey ?? 'key-test-secret';
    this.#groups = new Map(Object.entries(options.groups ?? { 'cld-9a1b': 'org-f6zi' }));
  }

  static async start(options: TestConnecOptions = {}): Promise<TestConnecServer> {
    const server = new TestConnecServer(options);
    await server.#listen();
    return server;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return this.#url;
  }

  async #listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.#send(res, 500, errorBody(500, 'Internal server error', String(error)));
      });
    });
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  fault(fault: Fault): void {
    this.#faults.push({ times: 1, ...fault });
  }

  /** Store records as Connec! would after creation; returns their Connec! ids. */
  seed(group: string, collection: string, records: JsonObject[]): string[] {
    const list = this.#list(group, collection);
    return records.map((fields) => {
      const stored = this.#newRecord(group, collection, fields);
      list.push(stored);
      return stored.connecId;
    });
  }

  seedCompany(group: string, fields: JsonObject): string {
    const stored = this.#newRecord(group, 'company', fields);
    this.#companies.set(group, stored);
    return stored.connecId;
  }

  /** The stored records, rendered with external ids. */
  stored(group: string, collection: string): JsonObject[] {
    return this.#list(group, collection).map((r) => this.#render(r, group, true));
  }

  #list(group: string, collection: string): StoredRecord[] {
    const key = `${group}/${collection}`;
    let list = this.#store.get(key);
    if (!list) {
      list = [];
      this.#store.set(key, list);
    }
    return list;
  }

  #now(): string {
    this.#clock += 1000;
    return new Date(this.#clock).toISOString().replace('.000Z', 'Z');
  }

  #newRecord(group: string, collection: string, input: JsonObject): StoredRecord {
    const { id, ...fields } = input;
    const now = this.#now();
    return {
      connecId: randomUUID(),
      appIds: isIdArray(id) ? id.filter((e) => e.provider !== 'connec') : [],
      fields: {
        ...fields,
        group_id: group,
        channel_id: this.#groups.get(group) ?? null,
        resource_type: collection,
        created_at: typeof fields.created_at === 'string' ? fields.created_at : now,
        updated_at: typeof fields.updated_at === 'string' ? fields.updated_at : now,
      },
    };
  }

  #render(record: StoredRecord, group: string, external: boolean): JsonObject {
    const realm = this.#groups.get(group) ?? 'org-unknown';
    const convert = (value: Json): Json => {
      if (Array.isArray(value)) return value.map(convert);
      if (!isObject(value)) return value;
      const out: JsonObject = {};
      for (const [key, v] of Object.entries(value)) {
        const isRef = (key.endsWith('_id') && key !== 'group_id' && key !== 'channel_id') || key === 'id';
        if (isRef && typeof v === 'string') out[key] = external ? [{ id: v, provider: 'connec', realm }] : v;
        else if (isRef && isIdArray(v)) {
          const connec = v.find((e) => e.provider === 'connec');
          out[key] = external ? v : (connec?.id ?? null);
        } else out[key] = convert(v);
      }
      return out;
    };
    const id: Json = external
      ? [{ id: record.connecId, provider: 'connec', realm }, ...record.appIds.map((e) => ({ ...e }))]
      : record.connecId;
    return { id, ...(convert(record.fields) as JsonObject) };
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/vnd.api+json', ...headers });
    res.end(text);
  }

  #takeFault(method: string, path: string): Fault | undefined {
    const index = this.#faults.findIndex((f) => {
      if (f.method && f.method !== method) return false;
      if (f.path instanceof RegExp) return f.path.test(path);
      if (typeof f.path === 'string') return path.startsWith(f.path);
      return true;
    });
    if (index < 0) return undefined;
    const fault = this.#faults[index];
    if (!fault) return undefined;
    if ((fault.after ?? 0) > 0) {
      fault.after = (fault.after ?? 0) - 1;
      return undefined;
    }
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.#faults.splice(index, 1);
    return fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.#url);
    const requestPath = url.pathname;
    const mount = this.#options.mountPath;
    const mounted = mount === undefined || requestPath.startsWith(`${mount}/`);
    if (mount !== undefined && mounted) url.pathname = requestPath.slice(mount.length);
    const method = req.method ?? 'GET';
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    this.requests.push({ method, path: requestPath, query: url.searchParams, rawUrl: req.url ?? '', headers: req.headers, body });
    if (!mounted) {
      this.#send(res, 404, errorBody(404, 'Not found'));
      return;
    }

    const fault = this.#takeFault(method, url.pathname);
    if (fault?.action.kind === 'delay') {
      const { ms } = fault.action;
      await new Promise((resolve) => setTimeout(resolve, ms));
    } else if (fault) {
      const action = fault.action;
      if (action.kind === 'reply' && action.raw !== undefined) {
        res.writeHead(action.status, action.headers);
        res.end(action.raw);
        return;
      }
      if (action.kind === 'reply') {
        this.#send(res, action.status, action.body, action.headers);
        return;
      }
      if (action.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (action.kind === 'hang') {
        res.on('close', () => {
          this.abandonedHangs += 1;
        });
        return;
      }
      res.writeHead(action.status ?? 200, { 'content-type': 'application/vnd.api+json' });
      res.write('{"people":[');
      return;
    }

    if (!this.#authorized(req)) {
      this.#send(res, 401, errorBody(401, 'Unauthorized Access'));
      return;
    }
    if (method === 'POST' && url.pathname === '/batch') {
      this.#batch(res, body, req.headers);
      return;
    }
    const external = req.headers['connec-external-ids'] === 'true';
    const result = this.#dispatch(method, url, body, external);
    this.#send(res, result.status, result.body, result.headers);
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const m = /^Basic (.+)$/.exec(header);
    if (!m?.[1]) return false;
    const [id, key] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
    return id === this.apiId && key === this.apiKey;
  }

  #batch(res: ServerResponse, body: unknown, headers: IncomingMessage['headers']): void {
    if (!isObject(body) || !Array.isArray(body.ops)) {
      this.#send(res, 400, errorBody(400, 'Invalid batch'));
      return;
    }
    const external = headers['connec-external-ids'] === 'true';
    const results = body.ops.map((op) => {
      if (!isObject(op) || typeof op.url !== 'string' || typeof op.method !== 'string') {
        return { status: 400, body: errorBody(400, 'Invalid op') };
      }
      const result = this.#dispatch(op.method.toUpperCase(), new URL(op.url, this.#url), op.params, external);
      return { status: result.status, body: result.body };
    });
    this.#send(res, 200, { results });
  }

  #dispatch(
    method: string,
    url: URL,
    body: unknown,
    external: boolean,
  ): { status: number; body: unknown; headers?: Record<string, string> } {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    if (parts[0] !== 'api' || parts[1] !== 'v2' || parts.length < 4) {
      return { status: 404, body: errorBody(404, 'Resource not found') };
    }
    const group = decodeURIComponent(parts[2] ?? '');
    const collection = parts[3] ?? '';
    const id = parts[4] === undefined ? undefined : decodeURIComponent(parts[4]);
    if (!this.#groups.has(group)) return { status: 401, body: errorBody(401, 'Unauthorized Access') };

    if (collection === 'company') return this.#company(method, group, body, external);
    if (!ACCEPTED_COLLECTIONS.has(collection)) {
      return { status: 400, body: errorBody(400, 'Unknown Resource', `Unknown resource ${collection}`, 'unknown-resource') };
    }
    const list = this.#list(group, collection);
    if (method === 'GET' && id === undefined) return this.#index(url, group, collection, list, external);
    if (method === 'GET') {
      const found = list.find((r) => r.connecId === id);
      if (!found) return { status: 404, body: errorBody(404, 'Resource not found', 'Resource not found', 'resource-not-found') };
      return { status: 200, body: { [collection]: this.#render(found, group, external) } };
    }
    const payload = isObject(body) ? body[collection] : undefined;
    if (!isObject(payload)) return { status: 400, body: errorBody(400, 'Invalid payload', `expected {"${collection}": {...}}`) };
    const invalid = this.#validate(payload);
    if (invalid) return { status: 400, body: errorBody(400, invalid, invalid, 'validation') };

    if (method === 'POST' && id === undefined) {
      const pid = payload.id;
      if (typeof pid === 'string' || (isIdArray(pid) && pid.some((e) => e.provider === 'connec'))) {
        return { status: 409, body: errorBody(404, 'Resource already exists', 'Resource already exists', 'conflict') };
      }
      const opts = isObject(payload.opts) ? payload.opts : {};
      const matching = Array.isArray(opts.matching_fields) ? opts.matching_fields.filter((f) => typeof f === 'string') : [];
      const { opts: _ignored, ...fields } = payload;
      if (matching.length > 0) {
        const existing = list.find((r) => matching.every((f) => r.fields[f] !== undefined && r.fields[f] === fields[f]));
        if (existing) {
          this.#merge(existing, fields);
          return { status: 200, body: { [collection]: this.#render(existing, group, external) } };
        }
      }
      const stored = this.#newRecord(group, collection, fields);
      list.push(stored);
      return {
        status: 201,
        body: { [collection]: this.#render(stored, group, external) },
        headers: { location: `${this.#url}/api/v2/${group}/${collection}/${stored.connecId}` },
      };
    }
    if (method === 'PUT' && id !== undefined) {
      const found = list.find((r) => r.connecId === id);
      if (!found) return { status: 404, body: errorBody(404, 'Resource not found', 'Resource not found', 'resource-not-found') };
      this.#merge(found, payload);
      return { status: 200, body: { [collection]: this.#render(found, group, external) } };
    }
    return { status: 405, body: errorBody(405, 'Method not allowed') };
  }

  #validate(payload: JsonObject): string | undefined {
    const email = payload.email;
    if (isObject(email) && typeof email.address === 'string' && !email.address.includes('@')) return 'email is invalid';
    return undefined;
  }

  #merge(record: StoredRecord, patch: JsonObject): void {
    const { id, opts: _opts, ...fields } = patch;
    if (isIdArray(id)) {
      for (const entry of id) {
        if (entry.provider === 'connec') continue;
        const at = record.appIds.findIndex((e) => e.provider === entry.provider && e.realm === entry.realm);
        if (at >= 0) record.appIds[at] = entry;
        else record.appIds.push(entry);
      }
    }
    Object.assign(record.fields, fields, { updated_at: this.#now() });
  }

  #company(method: string, group: string, body: unknown, external: boolean) {
    let company = this.#companies.get(group);
    if (!company) {
      company = this.#newRecord(group, 'company', { name: `Company of ${group}` });
      this.#companies.set(group, company);
    }
    if (method === 'PUT') {
      const payload = isObject(body) ? body.company : undefined;
      if (!isObject(payload)) return { status: 400, body: errorBody(400, 'Invalid payload') };
      this.#merge(company, payload);
    } else if (method !== 'GET') return { status: 405, body: errorBody(405, 'Method not allowed') };
    return { status: 200, body: { company: this.#render(company, group, external) } };
  }

  #index(url: URL, group: string, collection: string, list: StoredRecord[], external: boolean) {
    let terms: Term[] = [];
    const filter = url.searchParams.get('$filter');
    if (filter) {
      try {
        terms = parseFilter(filter);
      } catch (error) {
        return { status: 400, body: errorBody(400, 'Invalid filter', String(error), 'invalid-filter') };
      }
    }
    const rendered = list.map((r) => this.#render(r, group, false));
    let selected = list.filter((_, i) => matches(rendered[i] ?? {}, terms));
    const orderby = url.searchParams.get('$orderby');
    if (orderby) {
      const [field = '', dir = 'ASC'] = orderby.trim().split(/\s+/);
      const sign = dir.toUpperCase() === 'DESC' ? -1 : 1;
      selected = [...selected].sort((a, b) => {
        const x = comparable(fieldValue(a.fields, field));
        const y = comparable(fieldValue(b.fields, field));
        if (x === y || x == null || y == null) return 0;
        return x < y ? -sign : sign;
      });
    }
    const top = Number(url.searchParams.get('$top') ?? this.#options.defaultTop ?? 100);
    const skip = Number(url.searchParams.get('$skip') ?? 0);
    const page = selected.slice(skip, skip + top);
    const pagination: JsonObject = { skip, top, total: selected.length };
    if (skip + top < selected.length && !this.#options.omitNext) {
      const next = new URLSearchParams();
      if (filter) next.set('$filter', filter);
      if (orderby) next.set('$orderby', orderby);
      next.set('$skip', String(skip + top));
      next.set('$top', String(top));
      pagination.next = `${this.#options.publicOrigin ?? this.#url}${url.pathname}?${next.toString()}`;
    }
    return { status: 200, body: { [collection]: page.map((r) => this.#render(r, group, external)), pagination } };
  }
}
