/**
 * The error taxonomy shared by every @org package.
 *
 * `MaestranoError` is the single root. It lives in this leaf package so that the
 * Connec! client, the Account API client and the SDK (which re-exports everything here
 * and adds its own subclasses) throw one family of errors. `isMaestranoError()` works
 * across realms and duplicated copies of the package through a `Symbol.for` brand.
 */

const BRAND = Symbol.for('org.maestrano.error');

/** Every stable error code. A closed union, so `switch (e.code)` can be exhaustive. */
export type MaestranoErrorCode =
  // HTTP APIs (Connec!, Account API, dev platform, IdP session check)
  | 'api_authentication'
  | 'api_permission_denied'
  | 'api_not_found'
  | 'api_conflict'
  | 'api_validation'
  | 'api_rate_limited'
  | 'api_server'
  | 'api_error'
  | 'connection_error'
  | 'connection_timeout'
  | 'connection_aborted'
  | 'response_validation'
  | 'payload_invalid'
  // SDK
  | 'config_invalid'
  | 'connector_definition_invalid'
  | 'sso_failed'
  | 'webhook_unauthorized'
  | 'storage_error'
  | 'storage_conflict'
  | 'sync_failed'
  | 'billing_failed';

export type ApiService = 'connec' | 'account' | 'dev_platform' | 'idp';

export interface MaestranoErrorOptions {
  cause?: unknown;
}

export abstract class MaestranoError extends Error {
  abstract readonly code: MaestranoErrorCode;
  readonly [BRAND] = true;

  constructor(message: string, options: MaestranoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** True for any error of this family, even from another copy of the package. */
export function isMaestranoError(value: unknown): value is MaestranoError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

// ---------------------------------------------------------------------------------------
// HTTP API errors: the server answered with a non-success status.

export interface ApiErrorInit extends MaestranoErrorOptions {
  service: ApiService;
  status: number;
  method: string;
  /** URL without credentials or query secrets. */
  url: string;
  /** The parsed body when it was JSON, otherwise the raw text (truncated). */
  body?: unknown;
  requestId?: string | undefined;
  /** Delay the server asked for (`Retry-After`), in milliseconds. */
  retryAfterMs?: number | undefined;
}

export class ApiError extends MaestranoError {
  readonly code: MaestranoErrorCode = 'api_error';
  readonly service: ApiService;
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
  readonly requestId: string | undefined;
  /**
   * Delay the server asked for with `Retry-After` (on a 429, a 503, ...), in milliseconds;
   * `undefined` when it sent none. A thrown error's value was not waited for (it exceeded the
   * retry policy's `maxRetryAfterMs`, or no retries were left): the caller can reschedule with it.
   */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: ApiErrorInit) {
    super(message, init);
    this.service = init.service;
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
  }
}

export class AuthenticationError extends ApiError {
  override readonly code = 'api_authentication' as const;
}
export class PermissionDeniedError extends ApiError {
  override readonly code = 'api_permission_denied' as const;
}
export class NotFoundError extends ApiError {
  override readonly code = 'api_not_found' as const;
}
export class ConflictError extends ApiError {
  override readonly code = 'api_conflict' as const;
}
export class ServerError extends ApiError {
  override readonly code = 'api_server' as const;
}

/** One server-side validation message, normalised from Connec!'s JSON:API list or the Account API's map. */
export interface FieldError {
  /** Field or path the message is about, when the server said. */
  field?: string | undefined;
  message: string;
  code?: string | undefined;
}

export class ValidationFailedError extends ApiError {
  override readonly code = 'api_validation' as const;
  readonly errors: FieldError[];
  constructor(message: string, init: ApiErrorInit & { errors: FieldError[] }) {
    super(message, init);
    this.errors = init.errors;
  }
}

/** A 429. Like every `ApiError`, it carries the server's `Retry-After` as `retryAfterMs`. */
export class RateLimitError extends ApiError {
  override readonly code = 'api_rate_limited' as const;
}

// ---------------------------------------------------------------------------------------
// Transport errors: no HTTP response arrived.

export type ConnectionFailure = 'network' | 'timeout' | 'aborted';

export class ConnectionError extends MaestranoError {
  readonly code: MaestranoErrorCode;
  readonly service: ApiService;
  readonly failure: ConnectionFailure;
  readonly method: string;
  readonly url: string;

  constructor(
    message: string,
    init: MaestranoErrorOptions & { service: ApiService; failure: ConnectionFailure; method: string; url: string },
  ) {
    super(message, init);
    this.service = init.service;
    this.failure = init.failure;
    this.method = init.method;
    this.url = init.url;
    this.code =
      init.failure === 'timeout'
        ? 'connection_timeout'
        : init.failure === 'aborted'
          ? 'connection_aborted'
          : 'connection_error';
  }
}

// ---------------------------------------------------------------------------------------
// Contract errors: data arrived but does not match its schema.

export interface IssueSummary {
  /** Slash-separated path into the data, e.g. `people/0/email/address`. */
  path: string;
  message: string;
}

/** A response arrived but failed our schema (the request itself succeeded). */
export class ResponseValidationError extends MaestranoError {
  readonly code = 'response_validation' as const;
  readonly issues: IssueSummary[];
  readonly body: unknown;
  constructor(message: string, init: MaestranoErrorOptions & { issues: IssueSummary[]; body?: unknown }) {
    super(message, init);
    this.issues = init.issues;
    this.body = init.body;
  }
}

/** An inbound payload (e.g. a Connec! notification body) failed validation. */
export class PayloadValidationError extends MaestranoError {
  readonly code = 'payload_invalid' as const;
  readonly issues: IssueSummary[];
  constructor(message: string, init: MaestranoErrorOptions & { issues: IssueSummary[] }) {
    super(message, init);
    this.issues = init.issues;
  }
}

// ---------------------------------------------------------------------------------------
// Caller mistakes detected before anything is sent.

/**
 * Invalid options given to a client constructor (e.g. `createConnecClient`). Same code as the
 * SDK's `ConfigError`. `issues` name the bad option paths; option values are never echoed.
 */
export class ClientConfigError extends MaestranoError {
  readonly code = 'config_invalid' as const;
  readonly issues: IssueSummary[];
  constructor(message: string, init: MaestranoErrorOptions & { issues: IssueSummary[] }) {
    super(message, init);
    this.issues = init.issues;
  }
}

// ---------------------------------------------------------------------------------------
// Helpers that map an HTTP answer onto the taxonomy, for every client of an HTTP service.

/**
 * Normalise a server's error body into field errors: a JSON:API list
 * (`{errors:[{title, detail, code, source}]}`), an Account-API map (`{errors:{field:[msg]}}`),
 * or `{error: "..."}` / `{message: "..."}`.
 */
export function fieldErrorsFromBody(body: unknown): FieldError[] {
  if (typeof body !== 'object' || body === null) return [];
  const record = body as Record<string, unknown>;
  const errors = record.errors;
  const out: FieldError[] = [];
  if (Array.isArray(errors)) {
    for (const entry of errors) {
      if (typeof entry === 'string') {
        out.push({ message: entry });
        continue;
      }
      if (typeof entry !== 'object' || entry === null) continue;
      const item = entry as Record<string, unknown>;
      const source = typeof item.source === 'object' && item.source !== null ? (item.source as Record<string, unknown>) : {};
      const field = [item.field, item.attribute, source.pointer, source.parameter].find((v) => typeof v === 'string');
      const message = [item.detail, item.title, item.message].find((v) => typeof v === 'string' && v !== '');
      out.push({
        field: typeof field === 'string' ? field : undefined,
        message: typeof message === 'string' ? message : 'Unknown error',
        code: typeof item.code === 'string' ? item.code : undefined,
      });
    }
  } else if (typeof errors === 'object' && errors !== null) {
    for (const [field, messages] of Object.entries(errors)) {
      const list = Array.isArray(messages) ? messages : [messages];
      for (const message of list) out.push({ field, message: String(message) });
    }
  } else {
    const message = [record.error, record.message].find((v) => typeof v === 'string' && v !== '');
    if (typeof message === 'string') out.push({ message });
  }
  return out;
}

/**
 * Parse a `Retry-After` header (delta seconds or an HTTP date) into milliseconds from `now`.
 * Returns `undefined` when absent or unparseable; never negative, never above
 * `Number.MAX_SAFE_INTEGER`.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    // A delay of hundreds of digits is Infinity as a number; it still means "not soon", so it
    // stays the longest delay a number can carry rather than being dropped (and the short
    // backoff used).
    return Math.min(Math.round(Number(trimmed) * 1000), Number.MAX_SAFE_INTEGER);
  }
  // An HTTP date starts with a day name (RFC 9110 §5.6.7). Anything else (`-5`, `2027`) is
  // unparseable here: `Date.parse` would read it as a year, a date long past, and "retry now".
  if (!/^[A-Za-z]{3,9},?\s/.test(trimmed)) return undefined;
  // The asctime form carries no zone; HTTP dates are always GMT.
  const date = Date.parse(/\b(GMT|UTC)$/i.test(trimmed) ? trimmed : `${trimmed} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Credentials shorter than this are not searched for: replacing them would mangle ordinary text. */
const MIN_SECRET_LENGTH = 8;

/**
 * Replaces the HTTP Basic credentials `apiId:apiKey` (the header's token, `id:key`, the key) in a
 * server's answer before it goes into an error: a proxy's error page that lists the request
 * headers must not put them on the thrown error. Values under 8 characters are not searched for.
 */
export function credentialScrubber(apiId: string, apiKey: string): (text: string) => string {
  const pair = `${apiId}:${apiKey}`;
  // The longest first: `id:key` holds the key.
  const secrets = [Buffer.from(pair, 'utf8').toString('base64'), pair, apiKey].filter((secret) => secret.length >= MIN_SECRET_LENGTH);
  return (text) => secrets.reduce((out, secret) => (out.includes(secret) ? out.split(secret).join('[redacted]') : out), text);
}

/** Strip credentials and secret-looking query parameters from a URL before it goes into an error. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
  parsed.username = '';
  parsed.password = '';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/session|token|key|secret|password|signature/i.test(key)) parsed.searchParams.set(key, 'REDACTED');
  }
  return parsed.toString();
}

export interface ApiErrorFromStatusInit extends ApiErrorInit {
  /** Overrides the generated message (`<service> <method> <url> failed with <status>: <detail>`). */
  message?: string;
}

/** How each service is named in error messages. */
export const serviceNames: Record<ApiService, string> = {
  connec: 'Connec!',
  account: 'Account API',
  dev_platform: 'Developer platform',
  idp: 'IdP',
};

/**
 * The error class for an HTTP status: 401 authentication, 403 permission, 404 not found, 409
 * conflict, 400/422 validation (with the server's field errors), 429 rate limited, 5xx server,
 * anything else `ApiError`. Each carries `retryAfterMs` when given.
 */
export function apiErrorFromStatus(init: ApiErrorFromStatusInit): ApiError {
  const errors = fieldErrorsFromBody(init.body);
  const detail = errors
    .slice(0, 3)
    .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
    .join('; ');
  const message =
    init.message ??
    `${serviceNames[init.service]} ${init.method} ${redactUrl(init.url)} failed with ${init.status}${detail ? `: ${detail}` : ''}`;
  const safeInit: ApiErrorInit = { ...init, url: redactUrl(init.url) };
  const { status } = init;
  if (status === 401) return new AuthenticationError(message, safeInit);
  if (status === 403) return new PermissionDeniedError(message, safeInit);
  if (status === 404) return new NotFoundError(message, safeInit);
  if (status === 409) return new ConflictError(message, safeInit);
  if (status === 400 || status === 422) return new ValidationFailedError(message, { ...safeInit, errors });
  if (status === 429) return new RateLimitError(message, safeInit);
  if (status >= 500 && status <= 599) return new ServerError(message, safeInit);
  return new ApiError(message, safeInit);
}
