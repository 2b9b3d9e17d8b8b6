/**
 * The SDK's error classes. The root (`MaestranoError`) and the HTTP/transport/contract
 * errors come from @org/connec-client so that one taxonomy covers every package.
 */
import { ClientConfigError, type IssueSummary, MaestranoError, type MaestranoErrorOptions } from '@org/connec-client';

export {
  ApiError,
  AuthenticationError,
  ClientConfigError,
  ConflictError,
  ConnectionError,
  isMaestranoError,
  MaestranoError,
  NotFoundError,
  PayloadValidationError,
  PermissionDeniedError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
  ValidationFailedError,
} from '@org/connec-client';
export type {
  ApiService,
  ConnectionFailure,
  FieldError,
  IssueSummary,
  MaestranoErrorCode,
  MaestranoErrorOptions,
} from '@org/connec-client';

/**
 * Invalid configuration. `issues` name the bad keys; secret values are never echoed.
 * It is a connec-client `ClientConfigError` (same code, `config_invalid`), so one
 * `instanceof ClientConfigError` (exported by this package too) catches bad SDK configuration and
 * bad Connec! client options.
 */
export class ConfigError extends ClientConfigError {
  constructor(message: string, options: MaestranoErrorOptions & { issues?: IssueSummary[] } = {}) {
    super(message, { ...options, issues: options.issues ?? [] });
  }
}

/** A connector/entity definition is inconsistent (unknown reference target, duplicate name, …). */
export class ConnectorDefinitionError extends MaestranoError {
  readonly code = 'connector_definition_invalid' as const;
}

export type StorageOperation = `${string}.${string}`;

/** A storage adapter operation failed. `cause` keeps the driver error. */
export class StorageError extends MaestranoError {
  readonly code: 'storage_error' | 'storage_conflict' = 'storage_error';
  readonly adapterId: string;
  readonly operation: StorageOperation;
  constructor(message: string, init: MaestranoErrorOptions & { adapterId: string; operation: StorageOperation }) {
    super(message, init);
    this.adapterId = init.adapterId;
    this.operation = init.operation;
  }
}

/** A unique constraint was violated (the same on every adapter). */
export class StorageConflictError extends StorageError {
  override readonly code = 'storage_conflict' as const;
}

export type SsoErrorReason =
  | 'signature'
  | 'certificate'
  | 'embedded_certificate_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'audience'
  | 'recipient'
  | 'destination'
  | 'in_response_to'
  | 'replay'
  | 'malformed'
  | 'unknown_tenant'
  | 'status'
  | 'provisioning_failed'
  | 'storage_unavailable'
  | 'session_check_failed';

/** The status of a reason when the thrower sets none; every other reason is a 400. */
const SSO_STATUS: Partial<Record<SsoErrorReason, number>> = {
  unknown_tenant: 404,
  provisioning_failed: 500,
  storage_unavailable: 503,
};

/**
 * SSO failed. `message` is safe to show to an end user; details stay in `cause` (log it,
 * never send it to the browser). `status` is the HTTP status the route answers with.
 */
export class SsoError extends MaestranoError {
  readonly code = 'sso_failed' as const;
  readonly reason: SsoErrorReason;
  readonly status: number;
  constructor(reason: SsoErrorReason, message: string, options: MaestranoErrorOptions & { status?: number } = {}) {
    super(message, options);
    this.reason = reason;
    this.status = options.status ?? SSO_STATUS[reason] ?? 400;
  }
}

/** Inbound webhook refused (credentials or payload). */
export class WebhookError extends MaestranoError {
  readonly code = 'webhook_unauthorized' as const;
  readonly reason: 'credentials' | 'payload' | 'too_large' | 'method';
  constructor(reason: WebhookError['reason'], message: string, options: MaestranoErrorOptions = {}) {
    super(message, options);
    this.reason = reason;
  }
}

/** A sync run aborted (infrastructure failure); per-record failures live in the SyncReport instead. */
export class SyncError extends MaestranoError {
  readonly code = 'sync_failed' as const;
}

/** A billing operation could not be completed safely (e.g. an ambiguous charge that needs reconciliation). */
export class BillingError extends MaestranoError {
  readonly code = 'billing_failed' as const;
}
