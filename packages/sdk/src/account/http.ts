/**
 * The Account API transport (PROTOCOL §4.1-§4.2): HTTP Basic `api.id:api.key`, the
 * `{success, errors, data}` envelope checked together with the HTTP status, the shared
 * error taxonomy (service `account`), timeouts and retries for idempotent calls only.
 *
 * Built on ky, but no ky type or error ever leaves this file.
 *
 * TLS: certificate verification is always on. The client takes no option to turn it off
 * (the legacy SDKs defaulted to `verify_ssl_certs = false`, PROTOCOL §7), and it never sets
 * a dispatcher or agent, so the platform's `fetch` verifies as it always does.
 *
 * Bodies are JSON (`Content-Type: application/json`), as the Java SDK sends them: JSON keeps
 * integers, booleans and `null` typed (`price_cents`, `third_party`, `cycles: null` for
 * unlimited), where Rack-style form encoding turns everything into strings and has no null.
 */
import { credentialScrubber, parseRetryAfter } from '@org/connec-client';
import ky from 'ky';
import { z } from 'zod';
import {
  ApiError,
  AuthenticationError,
  ConflictError,
  ConnectionError,
  type FieldError,
  NotFoundError,
  PayloadValidationError,
  PermissionDeniedError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
  ValidationFailedError,
} from '../errors/index.js';
import { isSensitiveField } from '../config/logger.js';
import { redactByKey } from '../config/redact.js';
import { MAX_TIMER_MS, sleep } from '../internal/sleep.js';
import { trimTrailingSlashes } from '../internal/text.js';
import { readLimitedAnswer } from '../http/body.js';

/** The most of an Account API answer read into memory (lists included): 16 MiB. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

type ApiErrorInit = ConstructorParameters<typeof ApiError>[1];

/** Retry policy for idempotent (GET) calls. POST and DELETE are never retried. */
export interface AccountRetryPolicy {
  /** Retries after the first attempt. Default 2. */
  limit?: number;
  /** Statuses that are retried. Default 408, 429, 500, 502, 503, 504. */
  statusCodes?: number[];
  /** Upper bound of one backoff delay in ms. Default 10 000. */
  backoffLimitMs?: number;
}

export interface AccountTimeouts {
  /**
   * Time allowed until the response status and headers arrive (connection, TLS and the
   * server's processing), in ms. Default 30 000 (PROTOCOL §4.1: 30 s to open). At most
   * 2^31-1 ms (what a timer holds), or `Infinity` for no timeout.
   */
  connectMs?: number;
  /** Time allowed for the whole attempt, body included, in ms. Default 80 000 (PROTOCOL §4.1). Same bounds. */
  totalMs?: number;
}

export interface AccountHttpOptions {
  timeouts?: AccountTimeouts;
  retry?: AccountRetryPolicy;
  /** Default: the global `fetch`. Tests and edge runtimes inject their own. */
  fetch?: typeof fetch;
  /** Value of the `User-Agent` header. */
  userAgent?: string;
}

/** Per-call options, the same shape on every method. */
export interface RequestOptions {
  signal?: AbortSignal;
  timeouts?: AccountTimeouts;
  /** Overrides the client's retry policy for this call (still GET only). */
  retry?: AccountRetryPolicy;
}

export interface AccountCredentials {
  /** `api.host`, e.g. `https://api-hub.maestrano.com`. */
  host: string;
  /** `api.base`, default `/api/v1/`. */
  base: string;
  id: string;
  key: string;
}

export type QueryValue = string | number | boolean | Date;

export interface AccountRequest<T> {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below `{base}account/`, already encoded (use `encodePath`). */
  path: string;
  query?: Record<string, QueryValue | undefined>;
  body?: Record<string, unknown>;
  /** Schema of `data` in a successful envelope. */
  data: z.ZodType<T>;
}

export interface AccountHttp {
  request<T>(request: AccountRequest<T>, options?: RequestOptions): Promise<T>;
}

const DEFAULT_RETRY_STATUSES = [408, 429, 500, 502, 503, 504];
const MAX_ERROR_BODY = 2_000;

const Envelope = z.object({
  success: z.boolean(),
  errors: z.record(z.string(), z.union([z.array(z.unknown()), z.string(), z.null()])).nullish(),
  data: z.unknown(),
});
type Envelope = z.infer<typeof Envelope>;

/** Encodes each path segment: `encodePath('bills', id)` -> `bills/bill-1`. */
export function encodePath(...segments: string[]): string {
  return segments.map((s) => encodeURIComponent(s)).join('/');
}

/** The Account API's `errors` map flattened into one `FieldError` per message. */
function toFieldErrors(errors: Envelope['errors']): FieldError[] {
  const out: FieldError[] = [];
  for (const [field, value] of Object.entries(errors ?? {})) {
    const messages = Array.isArray(value) ? value : value == null ? [] : [value];
    for (const message of messages) out.push({ field, message: String(message) });
  }
  return out;
}

function summarise(fieldErrors: FieldError[]): string {
  return fieldErrors.map((e) => (e.field ? `${e.field} ${e.message}` : e.message)).join('; ');
}

function serialiseQuery(query: Record<string, QueryValue | undefined> | undefined): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    params.set(key, value instanceof Date ? value.toISOString() : String(value));
  }
  return params;
}

/**
 * An answer as an error carries it: secret-looking fields (each user's `sso_session`, a live
 * session token) redacted as the logger would, since apps print and report errors whole.
 */
function safeBody(body: unknown): unknown {
  return redactByKey({ body }, isSensitiveField, 16)['body'];
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_BODY ? `${text.slice(0, MAX_ERROR_BODY)}…` : text;
}

type Attempt =
  | { kind: 'response'; status: number; headers: Headers; text: string }
  | { kind: 'failure'; error: ConnectionError };

class AttemptTimeout extends Error {
  constructor(readonly phase: 'connect' | 'total') {
    super(`timeout (${phase})`);
  }
}

/** The URL of an Account API path (`bills`, `groups/cld-1`, …; already encoded) for these credentials. */
export function accountApiUrl(credentials: Pick<AccountCredentials, 'host' | 'base'>, path = ''): string {
  const base = credentials.base.endsWith('/') ? credentials.base : `${credentials.base}/`;
  return `${trimTrailingSlashes(credentials.host)}${base.startsWith('/') ? base : `/${base}`}account/${path}`;
}

export function createAccountHttp(credentials: AccountCredentials, options: AccountHttpOptions = {}): AccountHttp {
  const prefix = accountApiUrl(credentials);
  const authorization = `Basic ${Buffer.from(`${credentials.id}:${credentials.key}`, 'utf8').toString('base64')}`;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const client = ky.create({
    prefixUrl: prefix,
    fetch: fetchImpl,
    retry: 0,
    timeout: false,
    throwHttpErrors: false,
    headers: {
      accept: 'application/json',
      authorization,
      'user-agent': options.userAgent ?? 'maestrano-ts',
    },
  });

  /** An answer's text without the credentials this client sends (see `credentialScrubber`). */
  const withoutOwnSecrets = credentialScrubber(credentials.id, credentials.key);

  async function attempt(
    method: string,
    path: string,
    searchParams: URLSearchParams,
    body: Record<string, unknown> | undefined,
    timeouts: Required<AccountTimeouts>,
    signal: AbortSignal | undefined,
    url: string,
  ): Promise<Attempt> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Infinity (no timeout) arms no timer: setTimeout would turn it into 1 ms.
    const arm = (ms: number, phase: 'connect' | 'total') =>
      ms === Number.POSITIVE_INFINITY ? undefined : setTimeout(() => controller.abort(new AttemptTimeout(phase)), ms);
    const connectTimer = arm(timeouts.connectMs, 'connect');
    const totalTimer = arm(timeouts.totalMs, 'total');
    try {
      const response = await client(path, {
        method,
        searchParams,
        signal: controller.signal,
        ...(body === undefined ? {} : { json: body }),
      });
      clearTimeout(connectTimer);
      // Scrubbed whatever the status: a 2xx answer that is not the API's (a proxy page echoing
      // the request headers, a body without the envelope) is kept as a thrown error's `body` too.
      const text = withoutOwnSecrets(await readLimitedAnswer(response, MAX_ANSWER_BYTES));
      return { kind: 'response', status: response.status, headers: response.headers, text };
    } catch (cause) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof AttemptTimeout) {
        const limit = reason.phase === 'connect' ? timeouts.connectMs : timeouts.totalMs;
        return {
          kind: 'failure',
          error: new ConnectionError(
            `Account API ${method} ${url} timed out (${reason.phase === 'connect' ? 'no response' : 'incomplete response'} after ${limit} ms)`,
            { service: 'account', failure: 'timeout', method, url },
          ),
        };
      }
      if (signal?.aborted) {
        return {
          kind: 'failure',
          error: new ConnectionError(`Account API ${method} ${url} was aborted`, {
            service: 'account',
            failure: 'aborted',
            method,
            url,
            cause: signal.reason,
          }),
        };
      }
      const detail = cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : '';
      return {
        kind: 'failure',
        error: new ConnectionError(`Account API ${method} ${url} failed: ${detail || 'network error'}`, {
          service: 'account',
          failure: 'network',
          method,
          url,
          cause,
        }),
      };
    } finally {
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  function toError(method: string, url: string, status: number, headers: Headers, text: string, retryAfterMs?: number) {
    let parsedBody: unknown = text;
    let envelope: Envelope | undefined;
    try {
      parsedBody = JSON.parse(text);
      const result = Envelope.safeParse(parsedBody);
      if (result.success) envelope = result.data;
    } catch {
      // not JSON: keep the text as the body (cut, below)
    }
    const fieldErrors = toFieldErrors(envelope?.errors);
    const init: ApiErrorInit = {
      service: 'account',
      status,
      method,
      url,
      body: typeof parsedBody === 'string' ? safeBody(truncate(parsedBody)) : safeBody(parsedBody),
      requestId: headers.get('x-request-id') ?? undefined,
      // Every status error carries the server's Retry-After (a 503 as much as a 429).
      retryAfterMs,
    };
    const detail = fieldErrors.length > 0 ? `: ${summarise(fieldErrors)}` : '';
    const prefix = `Account API ${method} ${url} answered ${status}`;
    if (status === 401) return new AuthenticationError(`${prefix} (invalid API credentials)${detail}`, init);
    if (status === 403) return new PermissionDeniedError(`${prefix}${detail}`, init);
    if (status === 404) return new NotFoundError(`${prefix}${detail}`, init);
    if (status === 409) return new ConflictError(`${prefix}${detail}`, init);
    if (status === 429) return new RateLimitError(`${prefix}${detail}`, init);
    if (status >= 500) return new ServerError(`${prefix}${detail}`, init);
    if (isUnknownIdOnly(fieldErrors)) return new NotFoundError(`${prefix}${detail}`, init);
    if (status === 400 || status === 422 || (status < 300 && fieldErrors.length > 0)) {
      return new ValidationFailedError(`${prefix}${detail || ' (validation failed)'}`, { ...init, errors: fieldErrors });
    }
    return new ApiError(`${prefix}${detail}`, init);
  }

  async function request<T>(req: AccountRequest<T>, callOptions: RequestOptions = {}): Promise<T> {
    const searchParams = serialiseQuery(req.query);
    const qs = searchParams.toString();
    // Never carries credentials: they travel in the Authorization header only.
    const url = `${prefix}${req.path}${qs ? `?${qs}` : ''}`;
    const timeouts: Required<AccountTimeouts> = {
      connectMs: callOptions.timeouts?.connectMs ?? options.timeouts?.connectMs ?? 30_000,
      totalMs: callOptions.timeouts?.totalMs ?? options.timeouts?.totalMs ?? 80_000,
    };
    checkTimeouts(timeouts);
    const retry = { ...options.retry, ...callOptions.retry };
    const retryLimit = req.method === 'GET' ? (retry.limit ?? 2) : 0;
    const retryStatuses = retry.statusCodes ?? DEFAULT_RETRY_STATUSES;
    const backoffLimitMs = retry.backoffLimitMs ?? 10_000;

    for (let attemptNo = 0; ; attemptNo++) {
      const result = await attempt(req.method, req.path, searchParams, req.body, timeouts, callOptions.signal, url);
      const canRetry = attemptNo < retryLimit;
      const backoff = Math.min(backoffLimitMs, 300 * 2 ** attemptNo);
      if (result.kind === 'failure') {
        if (canRetry && result.error.failure !== 'aborted') {
          await sleepOrAbort(backoff, callOptions.signal, req.method, url);
          continue;
        }
        throw result.error;
      }
      const { status, headers, text } = result;
      const ok = status >= 200 && status < 300;
      if (!ok) {
        const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
        if (canRetry && retryStatuses.includes(status)) {
          await sleepOrAbort(Math.min(backoffLimitMs, retryAfterMs ?? backoff), callOptions.signal, req.method, url);
          continue;
        }
        throw toError(req.method, url, status, headers, text, retryAfterMs);
      }
      return parseSuccess(req, url, status, headers, text);
    }
  }

  function parseSuccess<T>(req: AccountRequest<T>, url: string, status: number, headers: Headers, text: string): T {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new ResponseValidationError(`Account API ${req.method} ${url} answered ${status} with a non-JSON body`, {
        issues: [{ path: '', message: 'expected a JSON body' }],
        body: safeBody(truncate(text)),
        cause,
      });
    }
    const envelope = Envelope.safeParse(json);
    if (!envelope.success) {
      throw new ResponseValidationError(
        `Account API ${req.method} ${url} answered ${status} without the {success, errors, data} envelope`,
        { issues: toIssues(envelope.error), body: safeBody(json) },
      );
    }
    if (!envelope.data.success) {
      // 2xx with success=false: the sandbox answers an unknown id in `show` this way.
      const fieldErrors = toFieldErrors(envelope.data.errors);
      if (fieldErrors.length === 0) {
        throw new ResponseValidationError(
          `Account API ${req.method} ${url} answered ${status} with success=false and no errors`,
          { issues: [{ path: 'success', message: 'false without errors' }], body: safeBody(json) },
        );
      }
      throw toError(req.method, url, status, headers, text);
    }
    const data = req.data.safeParse(envelope.data.data);
    if (!data.success) {
      throw new ResponseValidationError(
        `Account API ${req.method} ${url} answered data that does not match the expected shape`,
        { issues: toIssues(data.error), body: safeBody(json) },
      );
    }
    return data.data;
  }

  return { request };
}

const TIMEOUT_RULE = `must be a number of ms from 1 to ${MAX_TIMER_MS} (what a timer can hold), or Infinity for no timeout`;

/**
 * Refuses a timeout no timer can hold: Node fires a delay above 2^31-1 ms (or NaN, or <= 0)
 * after 1 ms, so every attempt would time out at once (and GETs be retried just as fast).
 */
function checkTimeouts(timeouts: Required<AccountTimeouts>): void {
  const valid = (ms: unknown) => ms === Number.POSITIVE_INFINITY || (typeof ms === 'number' && ms >= 1 && ms <= MAX_TIMER_MS);
  const issues = (['connectMs', 'totalMs'] as const).filter((key) => !valid(timeouts[key])).map((key) => ({ path: `timeouts/${key}`, message: TIMEOUT_RULE }));
  if (issues.length > 0) {
    throw new PayloadValidationError(`Invalid request options: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { issues });
  }
}

function isUnknownIdOnly(fieldErrors: FieldError[]): boolean {
  return fieldErrors.length > 0 && fieldErrors.every((e) => e.field === 'id');
}

async function sleepOrAbort(ms: number, signal: AbortSignal | undefined, method: string, url: string): Promise<void> {
  try {
    await sleep(ms, signal);
  } catch (cause) {
    throw new ConnectionError(`Account API ${method} ${url} was aborted`, {
      service: 'account',
      failure: 'aborted',
      method,
      url,
      cause,
    });
  }
}

function toIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('/'), message: issue.message }));
}
