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
}

export class ApiError extends MaestranoError {
  readonly code: MaestranoErrorCode = 'api_error';
  readonly service: ApiService;
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
  readonly requestId: string | undefined;

  constructor(message: string, init: ApiErrorInit) {
    super(message, init);
    this.service = init.service;
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
    this.requestId = init.requestId;
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

export class RateLimitError extends ApiError {
  override readonly code = 'api_rate_limited' as const;
  /** Delay the server asked for (Retry-After), in milliseconds, when present. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, init: ApiErrorInit & { retryAfterMs?: number | undefined }) {
    super(message, init);
    this.retryAfterMs = init.retryAfterMs;
  }
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
