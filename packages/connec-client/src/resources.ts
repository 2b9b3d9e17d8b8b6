/** Group-scoped resources: typed collections, untyped collections and the singular company. */
import type { z } from 'zod';
import { readConnecInstant, TIMESTAMP_SHAPE } from './dates.js';
import { type IssueSummary, PayloadValidationError, ResponseValidationError } from './errors.js';
import { type Filter, gt } from './filter.js';
import { type HttpKernel, type HttpResponse, type RequestOptions, readJson, type WriteOptions, watchAbort } from './http/kernel.js';
import { connecId } from './ids.js';
import { checkRecordList, parseRecordEnvelope, parseRecordList } from './internal/envelope.js';
import { describeIssues, summarizeIssues } from './internal/issues.js';
import { PagePromise, type PagePromiseOptions, type Pagination } from './pagination.js';
import type { Company } from './schemas/company.js';
import { connecCollections, isCollectionName, type RecordInput, type RecordOf, schemaFor } from './schemas/catalog.js';
import { ConnecRecord, type IdMap } from './schemas/shared.js';

/** Query options of `list()`, sent as Connec!'s OData-like parameters (PROTOCOL §6.4). */
export interface ListQuery {
  /** `$filter`: a {@link Filter} from the builder, or a raw expression. */
  filter?: Filter | string;
  /**
   * Adds `updated_at gt '<ISO>'` to the filter (incremental sync). A string must be an ISO-8601
   * date-time; one without an offset is UTC (as Connec! timestamps are), not the host's local time.
   */
  updatedSince?: Date | string;
  /** `$top`: page size. */
  top?: number;
  /** `$skip`: offset of the first record. */
  skip?: number;
  /** `$orderby`, e.g. `created_at ASC`. */
  orderBy?: string;
  /** `$search`: free text. */
  search?: string;
  /** `$expand`, e.g. `matching_records`. */
  expand?: string;
  /**
   * Extra query parameters, sent as they are. An array repeats the parameter, one value each, in
   * order (an empty array sends none): `{ 'mappings[]': [a, b] }` is `mappings%5B%5D=a&mappings%5B%5D=b`.
   */
  params?: Record<string, string | readonly string[]>;
}

/**
 * One signal aborted when either input is; `dispose()` detaches it from the inputs once the
 * request is over (the caller's signal may outlive thousands of page requests).
 */
function linkSignals(a: AbortSignal | undefined, b: AbortSignal | undefined): { signal: AbortSignal | undefined; dispose(): void } {
  if (!a || !b) return { signal: a ?? b, dispose: () => undefined };
  const controller = new AbortController();
  const early = a.aborted ? a : b.aborted ? b : undefined;
  if (early) {
    controller.abort(early.reason);
    return { signal: controller.signal, dispose: () => undefined };
  }
  // Watched like the kernel watches it: one listener on the caller's signal for every listing
  // reading ahead on it, not one each.
  const stopA = watchAbort(a, () => controller.abort(a.reason));
  const stopB = watchAbort(b, () => controller.abort(b.reason));
  return {
    signal: controller.signal,
    dispose: () => {
      stopA();
      stopB();
    },
  };
}

/** Options of `list()`: the per-call options plus paging behaviour. */
/** A listed record that does not match its collection's schema (see `ListOptions.onInvalidRecord`). */
export interface InvalidListedRecord {
  /** Its position in the page Connec! answered (0-based). */
  index: number;
  /** The record as Connec! sent it. */
  record: unknown;
  /** What does not match, with paths such as `people/3/email/address`. */
  issues: IssueSummary[];
  /** The same as one line: `Connec! list people: people/3/email/address: …`. */
  message: string;
}

export interface ListOptions extends RequestOptions, PagePromiseOptions {
  /**
   * Called for each record of a page that does not match the collection's schema; the record
   * is then left out of the page (`data` and the iteration) instead of the whole page being
   * rejected with a `ResponseValidationError`. Paging is not affected: the next page starts
   * after every record Connec! sent, valid or not. A data-sharing connector uses it so that
   * one malformed record fails on its own instead of stopping an import at its page.
   */
  onInvalidRecord?: (invalid: InvalidListedRecord) => void;
}

/** Options of `retrieve(id, options)`: the per-call options plus the query of a single GET. */
export interface RetrieveOptions extends RequestOptions {
  /**
   * `$expand` (PROTOCOL §6.4), e.g. `matching_records`: what Connec! embeds in the record. An
   * array is sent comma-separated.
   */
  expand?: string | readonly string[];
}

/** The `$expand=...` query of a single GET, or `''`; an empty or non-string value is refused. */
function expandQuery(expand: RetrieveOptions['expand']): string {
  if (expand === undefined) return '';
  const list: readonly unknown[] = typeof expand === 'string' ? [expand] : Array.isArray(expand) ? expand : [undefined];
  if (list.length === 0 || list.some((v) => typeof v !== 'string' || v.trim() === '')) {
    throw new PayloadValidationError('Invalid retrieve options: expand must be a non-empty string or array of them', {
      issues: [{ path: 'expand', message: 'expected a non-empty string or a non-empty array of non-empty strings' }],
    });
  }
  return `?${encodeURIComponent('$expand')}=${encodeURIComponent(list.join(','))}`;
}

/** What a group scope needs from its client. */
export interface ClientContext {
  readonly kernel: HttpKernel;
  /** `host + basePath`, without a trailing slash. */
  readonly apiBase: string;
  /** The configured origin; `pagination.next` URLs are always sent there. */
  readonly origin: string;
  /** The API base path (`/api/v2`, or `''`), without the host's own path. */
  readonly basePath: string;
}

/** The id of a record: a Connec! id string, or an id array (its `provider: "connec"` entry is used). */
export type RecordId = string | IdMap[];

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_\-.~]*$/;

export function checkSegment(value: string, what: string): string {
  if (typeof value !== 'string' || !SEGMENT.test(value)) {
    throw new PayloadValidationError(`Invalid ${what}: expected a non-empty path segment`, {
      issues: [{ path: what, message: 'expected letters, digits, "_", "-", "." or "~"' }],
    });
  }
  return value;
}

/**
 * The path segment for a record id: the Connec! id, percent-encoded. Ids that URL parsing would
 * treat as `.`/`..` segments are rejected, so an id from untrusted input cannot move the path.
 */
export function resolveId(id: RecordId | undefined, path = 'id'): string {
  const value = id === undefined ? undefined : typeof id === 'string' ? id : connecId(id);
  if (value === undefined || value === '') {
    throw new PayloadValidationError('Record id has no Connec! entry', {
      issues: [{ path, message: 'expected a Connec! id string or an id array with a provider "connec" entry' }],
    });
  }
  if (/^(\.|%2e){1,2}$/i.test(value)) {
    throw new PayloadValidationError('Invalid record id', { issues: [{ path, message: 'not a valid id' }] });
  }
  return encodeURIComponent(value);
}

const inputSchemas = new Map<string, z.ZodType>();

function inputSchemaFor(name: string): z.ZodType {
  const cached = inputSchemas.get(name);
  if (cached) return cached;
  const schema: z.ZodType = isCollectionName(name) ? connecCollections[name].partial() : ConnecRecord.partial();
  inputSchemas.set(name, schema);
  return schema;
}

/** Validate a record the caller wants to send; nothing is sent when it is invalid. */
export function checkInput(collection: string, record: unknown, prefix: readonly PropertyKey[] = []): void {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new PayloadValidationError(`Invalid ${collection} record: expected an object`, {
      issues: [{ path: [...prefix].map(String).join('/'), message: 'expected an object' }],
    });
  }
  const result = inputSchemaFor(collection).safeParse(record);
  if (!result.success) {
    const issues = summarizeIssues(result.error.issues, prefix);
    throw new PayloadValidationError(`Invalid ${collection} record: ${describeIssues(issues)}`, { issues });
  }
}

function checkInteger(value: number | undefined, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw new PayloadValidationError(`Invalid list query: ${name} must be an integer >= ${min}`, {
      issues: [{ path: name, message: `expected an integer >= ${min}` }],
    });
  }
}

/** Encode a query the way Connec! expects (`%24filter=...`, spaces as `%20`). */
export function encodeQuery(query: ListQuery): string {
  checkInteger(query.top, 'top', 1);
  checkInteger(query.skip, 'skip', 0);
  const terms: string[] = [];
  if (query.filter !== undefined) {
    const text = query.filter.toString().trim();
    if (text !== '') terms.push(text);
  }
  if (query.updatedSince !== undefined) {
    // A string is read like a Connec! timestamp: without an offset it is UTC, never local time.
    const raw: unknown = query.updatedSince;
    const since = raw instanceof Date ? (Number.isNaN(raw.getTime()) ? undefined : raw) : readConnecInstant(raw);
    if (since === undefined) {
      throw new PayloadValidationError('Invalid list query: updatedSince is not a date', {
        issues: [{ path: 'updatedSince', message: `expected a valid Date or ${TIMESTAMP_SHAPE}` }],
      });
    }
    terms.push(gt('updated_at', since).toString());
  }
  const pairs: [string, string][] = [];
  if (terms.length > 0) pairs.push(['$filter', terms.join(' and ')]);
  if (query.orderBy !== undefined) pairs.push(['$orderby', query.orderBy]);
  if (query.top !== undefined) pairs.push(['$top', String(query.top)]);
  if (query.skip !== undefined) pairs.push(['$skip', String(query.skip)]);
  if (query.search !== undefined) pairs.push(['$search', query.search]);
  if (query.expand !== undefined) pairs.push(['$expand', query.expand]);
  for (const [key, value] of Object.entries(query.params ?? {})) {
    const values: readonly unknown[] = Array.isArray(value) ? value : [value];
    for (const item of values) pairs.push([key, String(item)]);
  }
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function readPagination(body: unknown): Pagination {
  if (typeof body !== 'object' || body === null) return {};
  const raw = (body as Record<string, unknown>).pagination;
  if (typeof raw !== 'object' || raw === null) return {};
  const p = raw as Record<string, unknown>;
  const num = (v: unknown): number | undefined => {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
  };
  return {
    ...p,
    next: typeof p.next === 'string' && p.next !== '' ? p.next : undefined,
    total: num(p.total),
    skip: num(p.skip),
    top: num(p.top),
  };
}

/** A path prefix `prefix` covers (`''` covers everything). */
function isUnder(path: string, prefix: string): boolean {
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * The path of a `pagination.next` link on the configured API base. Connec! writes its links as
 * `{basePath}/...`, unaware of a path the configured host adds in front (a gateway at
 * `https://gw/connec`): such a link is moved under `host + basePath`. A link that already
 * carries the host's path is kept; any other one goes under the host's path.
 */
function rebaseNextPath(path: string, base: Pick<ClientContext, 'apiBase' | 'origin' | 'basePath'>): string {
  const apiPath = base.apiBase.slice(base.origin.length);
  if (isUnder(path, apiPath)) return path;
  if (isUnder(path, base.basePath)) return `${apiPath}${path.slice(base.basePath.length)}`;
  const hostPath = apiPath.slice(0, apiPath.length - base.basePath.length);
  return isUnder(path, hostPath) ? path : `${hostPath}${path}`;
}

/**
 * Where the next page is: `pagination.next` (resolved against the current URL and always sent
 * to the configured origin, so credentials never go elsewhere, with its path re-based on the
 * configured host path and base path, see {@link rebaseNextPath}), otherwise `$skip` while
 * records remain (known from `total`, or a full page when there is no total).
 */
export function nextPageUrl(
  currentUrl: string,
  base: Pick<ClientContext, 'apiBase' | 'origin' | 'basePath'>,
  pagination: Pagination,
  received: number,
): string | undefined {
  const current = new URL(currentUrl);
  const skip = Number(current.searchParams.get('$skip') ?? pagination.skip ?? 0) || 0;
  // An empty page ends the listing, `next` link or not: a server that writes `next` on every
  // page (empty ones past the end too) would otherwise be followed one offset at a time forever.
  if (received !== 0 && pagination.next !== undefined) {
    let next: URL;
    try {
      next = new URL(pagination.next, current);
    } catch (cause) {
      throw new ResponseValidationError('Connec! answered a pagination.next that is not a URL', {
        issues: [{ path: 'pagination/next', message: 'not a valid URL' }],
        cause,
      });
    }
    return `${base.origin}${rebaseNextPath(next.pathname, base)}${next.search}`;
  }
  if (received === 0) {
    // The same answer says records remain past this offset yet sends none: ending here would
    // silently drop them.
    if (pagination.total !== undefined && skip < pagination.total) {
      throw new ResponseValidationError(`Connec! answered an empty page at $skip=${skip} though its total is ${pagination.total}`, {
        issues: [{ path: 'pagination/total', message: `no records at offset ${skip} of ${pagination.total}` }],
      });
    }
    return undefined;
  }
  const topParam = current.searchParams.get('$top');
  const top = topParam !== null ? Number(topParam) : pagination.top;
  const nextSkip = skip + received;
  const more = pagination.total !== undefined ? nextSkip < pagination.total : top !== undefined && received >= top;
  if (!more) return undefined;
  const params = current.search
    .slice(1)
    .split('&')
    .filter((part) => part !== '' && !/^(\$|%24)skip=/i.test(part));
  params.push(`%24skip=${nextSkip}`);
  return `${current.origin}${current.pathname}?${params.join('&')}`;
}

/**
 * The ids of a page's records, in order: equal for two consecutive pages only when they hold the
 * same records (a repeated page is skipped, so it must be the same records, not just the same
 * ends). Undefined when a record has no id.
 */
function pageFingerprint(list: readonly unknown[]): string | undefined {
  const ids: string[] = [];
  for (const record of list) {
    const id = typeof record === 'object' && record !== null ? (record as Record<string, unknown>).id : undefined;
    if (id === undefined) return undefined;
    ids.push(JSON.stringify(id));
  }
  return ids.length === 0 ? undefined : ids.join(',');
}

/** A Connec! collection of one group: `/{group}/{collection}`. */
export class CollectionResource<K extends string> {
  readonly name: K;
  readonly groupId: string;
  readonly #ctx: ClientContext;
  readonly #schema: z.ZodType<RecordOf<K>>;

  constructor(ctx: ClientContext, groupId: string, name: K) {
    this.#ctx = ctx;
    this.groupId = groupId;
    this.name = name;
    this.#schema = recordSchema(name);
  }

  get #base(): string {
    return `${this.#ctx.apiBase}/${encodeURIComponent(this.groupId)}/${this.name}`;
  }

  /**
   * List records. `await` it for the first page (with `total`); iterate it with `for await` for
   * every record of every page, fetched lazily one page at a time.
   */
  list(query: ListQuery = {}, options: ListOptions = {}): PagePromise<RecordOf<K>> {
    let search: string;
    try {
      search = encodeQuery(query);
    } catch (error) {
      // Invalid queries reject the promise (and the iteration) instead of throwing synchronously.
      return new PagePromise<RecordOf<K>>(this.#base, () => Promise.reject(error));
    }
    const first = search === '' ? this.#base : `${this.#base}?${search}`;
    const what = `Connec! list ${this.name}`;
    const ctx = this.#ctx;
    const { readAhead, onInvalidRecord, ...requestOptions } = options;
    return new PagePromise<RecordOf<K>>(
      first,
      async (url, cancel) => {
        const link = linkSignals(requestOptions.signal, cancel);
        let response: HttpResponse;
        try {
          response = await ctx.kernel.request({
            method: 'GET',
            url,
            options: link.signal ? { ...requestOptions, signal: link.signal } : requestOptions,
          });
        } finally {
          link.dispose();
        }
        return () => {
          const body = readJson(response, 'GET');
          const list = checkRecordList(body, this.name, what);
          const pagination = readPagination(body);
          return {
            pagination,
            nextUrl: nextPageUrl(url, ctx, pagination, list.length),
            fingerprint: pageFingerprint(list),
            decode: () => parseRecordList(list, this.name, this.#schema, what, body, onInvalidRecord),
          };
        };
      },
      { readAhead: readAhead ?? true },
    );
  }

  /**
   * One record (`GET /{group}/{collection}/{id}`). `options.expand` adds `$expand` (e.g.
   * `matching_records`).
   */
  async retrieve(id: RecordId, options: RetrieveOptions = {}): Promise<RecordOf<K>> {
    const { expand, ...requestOptions } = options;
    const url = `${this.#base}/${resolveId(id)}${expandQuery(expand)}`;
    const response = await this.#ctx.kernel.request({ method: 'GET', url, options: requestOptions });
    return parseRecordEnvelope(readJson(response, 'GET'), this.name, this.#schema, `Connec! retrieve ${this.name}`);
  }

  /**
   * Create a record (`POST`, answered 201; 200 when Connec! smart-merged it into an existing
   * record via `opts.matching_fields`). Retried only on a 429 (not processed), unless
   * `options.idempotent`.
   */
  async create(record: RecordInput<K>, options: WriteOptions = {}): Promise<RecordOf<K>> {
    checkInput(this.name, record);
    const response = await this.#ctx.kernel.request({
      method: 'POST',
      url: this.#base,
      body: { [this.name]: record },
      options,
    });
    return parseRecordEnvelope(readJson(response, 'POST'), this.name, this.#schema, `Connec! create ${this.name}`);
  }

  /** Partial update (`PUT`): only the fields sent change. */
  async update(id: RecordId, patch: RecordInput<K>, options: RequestOptions = {}): Promise<RecordOf<K>> {
    checkInput(this.name, patch);
    const url = `${this.#base}/${resolveId(id)}`;
    const response = await this.#ctx.kernel.request({ method: 'PUT', url, body: { [this.name]: patch }, options });
    return parseRecordEnvelope(readJson(response, 'PUT'), this.name, this.#schema, `Connec! update ${this.name}`);
  }
}

/** The schema records of `name` are parsed with. */
export function recordSchema<K extends string>(name: K): z.ZodType<RecordOf<K>> {
  // RecordOf<K> is by definition the output type of schemaFor(K); TS cannot follow the conditional.
  return schemaFor(name) as z.ZodType<RecordOf<K>>;
}

/** The singular `company` resource of a group: `GET/PUT /{group}/company`, no id. */
export class CompanyResource {
  readonly groupId: string;
  readonly #ctx: ClientContext;

  constructor(ctx: ClientContext, groupId: string) {
    this.#ctx = ctx;
    this.groupId = groupId;
  }

  get #url(): string {
    return `${this.#ctx.apiBase}/${encodeURIComponent(this.groupId)}/company`;
  }

  async retrieve(options: RequestOptions = {}): Promise<Company> {
    const response = await this.#ctx.kernel.request({ method: 'GET', url: this.#url, options });
    return parseRecordEnvelope(readJson(response, 'GET'), 'company', connecCollections.company, 'Connec! retrieve company');
  }

  async update(patch: RecordInput<'company'>, options: RequestOptions = {}): Promise<Company> {
    checkInput('company', patch);
    const response = await this.#ctx.kernel.request({ method: 'PUT', url: this.#url, body: { company: patch }, options });
    return parseRecordEnvelope(readJson(response, 'PUT'), 'company', connecCollections.company, 'Connec! update company');
  }
}
