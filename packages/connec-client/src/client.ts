/** `createConnecClient`: the entry point of the package. */
import { z } from 'zod';
import { type BatchOp, type BatchOptions, type BatchResult, type GroupBatchOp, runBatch } from './batch.js';
import { ClientConfigError, credentialScrubber, PayloadValidationError } from './errors.js';
import { HttpKernel, isValidTimeout, TIMEOUT_RULE } from './http/kernel.js';
import { defaultRetryPolicy, type RetryPolicy, RetryOptionSchema, resolveRetryPolicy } from './http/retry.js';
import { describeIssues, summarizeIssues } from './internal/issues.js';
import { checkSegment, type ClientContext, CollectionResource, CompanyResource } from './resources.js';

export interface ConnecClientOptions {
  /** Connec! host, e.g. `https://api-connec.maestrano.com` (batch goes to `{host}/batch`). */
  host: string;
  /** API base path. @default '/api/v2' */
  basePath?: string;
  /** The app's API id and key, sent with HTTP Basic on every call. */
  credentials: { apiId: string; apiKey: string };
  /** Send `CONNEC-EXTERNAL-IDS: true`: ids and references come back as `[{id, provider, realm}]`. @default false */
  externalIds?: boolean;
  /** A fetch implementation (tests, edge runtimes). @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** Retry policy, or just the retry count. @default { limit: 2, baseDelayMs: 500, jitter: true } */
  retry?: RetryPolicy | number;
  /**
   * Timeout of each attempt, including reading the body: an integer from 1 to 2^31-1 ms (about
   * 24.8 days), or `Infinity` for no timeout. Calls can override it. @default 60000
   */
  timeoutMs?: number;
  /** @default '@org/connec-client' */
  userAgent?: string;
  /**
   * Largest response body the client reads, in bytes; a longer one is refused with
   * `ResponseValidationError` and its download cancelled. @default 67108864 (64 MiB)
   */
  maxResponseBytes?: number;
}

export const DEFAULT_BASE_PATH = '/api/v2';
export const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_USER_AGENT = '@org/connec-client';

const secret = (name: string) =>
  z.string({ error: `${name} must be a string` }).min(1, { error: `${name} must not be empty` });

const OptionsSchema = z.strictObject({
  host: z.url({ protocol: /^https?$/, error: 'host must be an http(s) URL' }),
  basePath: z.string().regex(/^(\/[A-Za-z0-9_\-.~]+)*\/?$/, { error: 'basePath must be a URL path' }).optional(),
  credentials: z.strictObject({ apiId: secret('apiId'), apiKey: secret('apiKey') }),
  externalIds: z.boolean().optional(),
  fetch: z.custom<typeof globalThis.fetch>((v) => typeof v === 'function', { error: 'fetch must be a function' }).optional(),
  retry: RetryOptionSchema.optional(),
  timeoutMs: z.custom<number>(isValidTimeout, { error: TIMEOUT_RULE }).optional(),
  userAgent: z.string().optional(),
  maxResponseBytes: z.int().min(1, { error: 'maxResponseBytes must be a positive integer' }).optional(),
});

/**
 * Everything under `/{groupId}`: one typed resource per catalog collection, named exactly as the
 * collection (`people`, `sales_orders`, `tax_codes`, ...), the singular `company`, any other
 * collection through `collection(name)`, and batch.
 */
export class ConnecGroup {
  readonly groupId: string;
  readonly organizations: CollectionResource<'organizations'>;
  readonly people: CollectionResource<'people'>;
  readonly items: CollectionResource<'items'>;
  readonly invoices: CollectionResource<'invoices'>;
  readonly sales_orders: CollectionResource<'sales_orders'>;
  readonly purchase_orders: CollectionResource<'purchase_orders'>;
  readonly quotes: CollectionResource<'quotes'>;
  readonly payments: CollectionResource<'payments'>;
  readonly accounts: CollectionResource<'accounts'>;
  readonly tax_codes: CollectionResource<'tax_codes'>;
  readonly opportunities: CollectionResource<'opportunities'>;
  readonly employees: CollectionResource<'employees'>;
  readonly app_users: CollectionResource<'app_users'>;
  readonly company: CompanyResource;
  readonly #client: ConnecClient;
  readonly #ctx: ClientContext;

  constructor(client: ConnecClient, ctx: ClientContext, groupId: string) {
    this.#client = client;
    this.#ctx = ctx;
    this.groupId = checkSegment(groupId, 'group id');
    this.organizations = new CollectionResource(ctx, groupId, 'organizations');
    this.people = new CollectionResource(ctx, groupId, 'people');
    this.items = new CollectionResource(ctx, groupId, 'items');
    this.invoices = new CollectionResource(ctx, groupId, 'invoices');
    this.sales_orders = new CollectionResource(ctx, groupId, 'sales_orders');
    this.purchase_orders = new CollectionResource(ctx, groupId, 'purchase_orders');
    this.quotes = new CollectionResource(ctx, groupId, 'quotes');
    this.payments = new CollectionResource(ctx, groupId, 'payments');
    this.accounts = new CollectionResource(ctx, groupId, 'accounts');
    this.tax_codes = new CollectionResource(ctx, groupId, 'tax_codes');
    this.opportunities = new CollectionResource(ctx, groupId, 'opportunities');
    this.employees = new CollectionResource(ctx, groupId, 'employees');
    this.app_users = new CollectionResource(ctx, groupId, 'app_users');
    this.company = new CompanyResource(ctx, groupId);
  }

  /**
   * Any collection by its Connec! name (`'journals'`, `'tax_rates'`, ...). Typed when the name is
   * in the catalog (`collection('people')` parses with the `Person` schema). The singular
   * `company` is not a collection (no list, no id): it is `group.company`, and refused here.
   */
  collection<K extends string>(name: K & (Lowercase<K> extends 'company' ? never : unknown)): CollectionResource<K> {
    checkSegment(name, 'collection');
    if (name.toLowerCase() === 'company') {
      throw new PayloadValidationError('`company` is the singular resource of a group, not a collection: use `group.company.retrieve()` / `.update()`', {
        issues: [{ path: 'collection', message: 'use group.company' }],
      });
    }
    return new CollectionResource(this.#ctx, this.groupId, name);
  }

  /** `client.batch()` with every op in this group. */
  batch<K extends string>(ops: readonly GroupBatchOp<K>[], options?: BatchOptions): Promise<BatchResult<K>[]> {
    // What is not an array of objects goes through as it is, for `client.batch` to reject it with
    // a `PayloadValidationError`: `ops.map` on a JavaScript caller's `undefined` threw a
    // synchronous TypeError, and spreading a null op hid it behind a missing method.
    const scoped = Array.isArray(ops)
      ? ops.map((op): BatchOp<K> => (typeof op === 'object' && op !== null ? { ...op, group: this.groupId } : op))
      : ops;
    return this.#client.batch(scoped as readonly BatchOp<K>[], options);
  }
}

export interface ConnecClient {
  /** Resources of one group (customer account), e.g. `client.group('cld-123').people.list()`. */
  group(groupId: string): ConnecGroup;
  /**
   * Send ops through `{host}/batch` in chunks (default 50, `sequential: true`). Resolves with one
   * result per op, in op order; an op that failed carries its typed error. Invalid ops throw a
   * `PayloadValidationError` before anything is sent.
   */
  batch<K extends string>(ops: readonly BatchOp<K>[], options?: BatchOptions): Promise<BatchResult<K>[]>;
  /** The resolved, non-secret settings. */
  readonly config: { readonly host: string; readonly basePath: string; readonly externalIds: boolean; readonly timeoutMs: number };
}

function basicAuth(apiId: string, apiKey: string): string {
  return `Basic ${Buffer.from(`${apiId}:${apiKey}`, 'utf8').toString('base64')}`;
}

/** Create a Connec! client. Throws `ClientConfigError` (listing every bad option, never its value) on invalid options. */
export function createConnecClient(options: ConnecClientOptions): ConnecClient {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = summarizeIssues(parsed.error.issues).map((issue) => ({
      path: issue.path,
      // zod messages never include received values; keep them as they are.
      message: issue.message,
    }));
    throw new ClientConfigError(`Invalid Connec! client options: ${describeIssues(issues)}`, { issues });
  }
  const opts = parsed.data;
  const hostUrl = new URL(opts.host);
  if (hostUrl.username || hostUrl.password || hostUrl.search || hostUrl.hash) {
    throw new ClientConfigError('Invalid Connec! client options: host must not carry credentials, a query or a fragment', {
      issues: [{ path: 'host', message: 'credentials, query and fragment are not allowed' }],
    });
  }
  const host = trimTrailingSlashes(`${hostUrl.origin}${hostUrl.pathname}`);
  const basePath = `/${trimTrailingSlashes(opts.basePath ?? DEFAULT_BASE_PATH).replace(/^\/+/, '')}`.replace(/^\/$/, '');
  // `https://api-connec.example.com/api/v2` as the host would call `/api/v2/api/v2/…`, which
  // Connec! answers with a misleading 401 or 404: the base path is added to the host.
  if (basePath !== '' && trimTrailingSlashes(hostUrl.pathname).endsWith(basePath)) {
    const suggested = trimTrailingSlashes(`${hostUrl.origin}${trimTrailingSlashes(hostUrl.pathname).slice(0, -basePath.length)}`);
    throw new ClientConfigError(
      `Invalid Connec! client options: host ${host} ends with the base path ${basePath}, which the client adds to it; use ${suggested}`,
      { issues: [{ path: 'host', message: `must not end with the base path ${basePath} (use ${suggested})` }] },
    );
  }
  const externalIds = opts.externalIds ?? false;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string> = {
    authorization: basicAuth(opts.credentials.apiId, opts.credentials.apiKey),
    accept: 'application/vnd.api+json',
    'content-type': 'application/vnd.api+json',
    'user-agent': opts.userAgent ?? DEFAULT_USER_AGENT,
  };
  if (externalIds) headers['connec-external-ids'] = 'true';
  const kernel = new HttpKernel({
    service: 'connec',
    headers,
    fetch: opts.fetch,
    retry: resolveRetryPolicy(defaultRetryPolicy, opts.retry),
    timeoutMs,
    maxResponseBytes: opts.maxResponseBytes,
    scrubAnswer: credentialScrubber(opts.credentials.apiId, opts.credentials.apiKey),
  });
  const ctx = { kernel, apiBase: `${host}${basePath}`, origin: hostUrl.origin, batchUrl: `${host}/batch`, basePath };
  const client: ConnecClient = {
    group: (groupId) => new ConnecGroup(client, ctx, groupId),
    batch: (ops, batchOptions) => runBatch(ctx, ops, batchOptions),
    config: Object.freeze({ host, basePath, externalIds, timeoutMs }),
  };
  return client;
}

/** `text` without its trailing `/` characters (a loop: `/\/+$/` is quadratic on a long run of slashes). */
function trimTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 47) end--;
  return text.slice(0, end);
}
