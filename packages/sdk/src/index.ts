// Public API of @org/maestrano-sdk. Explicit named exports only (no `export *` of internals).
// Each module keeps its exports in its own section below.

// --- errors ---------------------------------------------------------------------------
export {
  ApiError,
  AuthenticationError,
  BillingError,
  ClientConfigError,
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
  MaestranoErrorOptions,
  SsoErrorReason,
  StorageOperation,
} from './errors/index.js';

// --- core types -----------------------------------------------------------------------
export { JobDeferral, JobInterruptedError, JobTypes, PermanentJobError } from './core/types.js';
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
// The contract's value rules, for adapter authors: storable text, and the storable instants.
// `UNRECORDED_ROLE`: the placeholder role `users.seats` leaves out of the count.
export { isStorableText, MAX_STORED_INSTANT_MS, MIN_STORED_INSTANT_MS, UNRECORDED_ROLE, wellFormedText } from './storage/validation.js';

// --- createMaestrano, configuration and tenants ---------------------------------------
export { createMaestrano, mergeContributions } from './maestrano.js';
export type { Maestrano } from './maestrano.js';
export type { HealthFailure, HealthOptions, HealthReport } from './health.js';
export { MaestranoConfigSchema, parseMaestranoConfig } from './config/schema.js';
export type { MaestranoConfigInput, ResolvedConfig, SsoErrorRenderer, SsoOptions } from './config/schema.js';
export { type ConfigFromEnvOptions, configFromEnv } from './config/from-env.js';
export type { DevPlatformEnvConfig } from './config/from-env.js';
export { consoleLogger, redactFields, redactingLogger } from './config/logger.js';
export { certificateFingerprint, parseMarketplacesDocument, resolveTenants } from './config/tenant.js';
export type { MarketplaceInput, MarketplacesDocumentOptions } from './config/tenant.js';
export { tenantsFromFile } from './tenants/file.js';
export type { FileTenants, FileTenantsOptions } from './tenants/file.js';
export { tenantsFromDevPlatform } from './tenants/dev-platform.js';
export type { DevPlatformOptions, DevPlatformTenants } from './tenants/dev-platform.js';
export { MutableTenantRegistry, staticTenants } from './tenants/registry.js';

// --- http: router and node listener ---------------------------------------------------
export { createRouter, routePaths } from './http/router.js';
export type { RouterOptions } from './http/router.js';
export { toNodeListener } from './http/node.js';
export type { FetchHandler, NodeListenerOptions } from './http/node.js';
export { DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_NOTIFICATION_BODY_BYTES } from './http/body.js';

// --- sso ------------------------------------------------------------------------------
export { createSsoModule } from './sso/module.js';
export { safeReturnPath } from './sso/return-path.js';
export type { SsoApi, SsoModule } from './sso/module.js';
export type { SessionCheckResult } from './sso/session.js';
export type {
  AppRecordRef,
  CompanyHandle,
  CreationMode,
  LoginArgs,
  LoginOutcome,
  OnLogin,
  ProvisioningContext,
  ProvisioningHooks,
  SeatsChange,
  SsoGroup,
  SsoMembership,
  SsoSession,
  SsoUser,
  UserHandle,
} from './sso/types.js';

// --- account API and billing ----------------------------------------------------------
export { createAccountClient } from './account/index.js';
export type {
  AccountClient,
  AccountClientTenant,
  AccountGroup,
  AccountHttpOptions,
  AccountRetryPolicy,
  AccountTimeouts,
  AccountUser,
  Bill,
  BillCreateInput,
  BillsResource,
  BillStatus,
  GroupsResource,
  ListParams as AccountListParams,
  QueryValue as AccountQueryValue,
  RecurringBill,
  RecurringBillCreateInput,
  RecurringBillPeriod,
  RecurringBillsResource,
  RequestOptions as AccountRequestOptions,
  UserAuthenticateInput,
  UsersResource,
} from './account/index.js';
export {
  appTrialEnd,
  BillingConfigSchema,
  ChargeGroupCancelledError,
  ChargeInProgressError,
  ChargeOutcomeUnknownError,
  ChargeReconciliationError,
  createAccountModule,
  IdempotencyKeyReuseError,
  parseBillingConfig,
  subscriptionStart,
} from './billing/index.js';
export type {
  AccountModule,
  AccountModuleOptions,
  BillingApi,
  BillingCompany,
  BillingConfig,
  BillingConfigInput,
  BillingGroup,
  BillingPeriod,
  ChargeInput,
  ChargeOptions,
  ChargeResult,
  OnCompanyCreated,
  ResolvedPlan,
  SubscribeOutcome,
  SubscriptionPlan,
  TenantBillsApi,
  TenantRecurringBillsApi,
  TenantRef,
} from './billing/index.js';
export { maskUser, unmaskUser } from './webhooks/account.js';
export type {
  AccountCompanyRef,
  AccountHookContext,
  AccountSeatsChange,
  AccountUserRef,
  AccountWebhookHooks,
} from './webhooks/account.js';

// --- entities and sync (connector framework) ------------------------------------------
export { defineConnector, defineEntity } from './entities/index.js';
export type {
  AnyEntity,
  BidirectionalEntityDefinition,
  ConflictPolicy,
  ConflictStrategy,
  ConnecRecord as SyncConnecRecord,
  ConnectorDefinition,
  ConnectorInput,
  Entity,
  EntityDefinition,
  GroupSyncSettings,
  IdentityOptions,
  InboundEntityDefinition,
  LocalContext,
  LocalCreateResult,
  LocalLister,
  LocalStore,
  LocalUpdateResult,
  MapperContext,
  MergeArgs,
  OutboundEntityDefinition,
  SyncDirection,
} from './entities/index.js';
export { connecPort, createSyncModule, GroupPurgeRefusedError, ImportBusyError, ImportFailedError, SyncDisabledError } from './sync/index.js';
export type {
  BatchOp as ConnecPortBatchOp,
  BatchOpResult as ConnecPortBatchResult,
  ConnecPage,
  ConnecPort,
  DeadLetter,
  EntityReport,
  GroupPurgeResult,
  ListPageOptions,
  PushItemResult,
  RecordFailure,
  SkipReason,
  SyncApi,
  SyncCounters,
  SyncEvent,
  SyncModule,
  SyncModuleConfig,
  SyncOptions,
  SyncReport,
} from './sync/index.js';

// --- worker ---------------------------------------------------------------------------
export { backoffDelay, companyCreatedFanout, createWorker } from './worker/index.js';
export type { BackoffPolicy, DeadLetterFilter, Worker, WorkerEvent, WorkerRunOptions, WorkerStats } from './worker/index.js';
export type { SyncControlAnswer, SyncControlStatus } from './sync/control.js';
