// Public API of @org/maestrano-sdk. Explicit named exports only (no `export *` of internals).
// Each module keeps its exports in its own section below.

// --- errors ---------------------------------------------------------------------------
export {
  ApiError,
  AuthenticationError,
  BillingError,
  ConfigError,
  ConflictError,
  ConnectionError,
  ConnectorDefinitionError,
  isMaestranoError,
  MaestranoError,
  NotFoundError,
  PayloadValidationError,
  PermissionDeniedError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
  SsoError,
  StorageConflictError,
  StorageError,
  SyncError,
  ValidationFailedError,
  WebhookError,
} from './errors/index.js';
export type {
  ApiService,
  ConnectionFailure,
  FieldError,
  IssueSummary,
  MaestranoErrorCode,
  SsoErrorReason,
  StorageOperation,
} from './errors/index.js';

// --- core types -----------------------------------------------------------------------
export { JobDeferral, JobTypes } from './core/types.js';
export type {
  CompanyCreatedPayload,
  HandlerArgs,
  JobContext,
  JobHandler,
  Logger,
  LogLevel,
  ModuleContribution,
  RouteHandler,
  RouteKind,
  RouteTable,
  Runtime,
  Tenant,
  TenantRegistry,
} from './core/types.js';

// --- webhooks auth --------------------------------------------------------------------
export { parseBasicAuth, safeEqual, verifyTenantBasicAuth } from './webhooks/auth.js';

// --- storage contract -----------------------------------------------------------------
export type * from './storage/adapter.js';
export { memoryAdapter } from './storage/memory.js';
export type { MemoryAdapterOptions } from './storage/memory.js';
