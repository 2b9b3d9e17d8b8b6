// Public API of @org/connec-client. Explicit named exports only.

// --- errors (the taxonomy shared by every @org package) -------------------------------
export {
  ApiError,
  apiErrorFromStatus,
  AuthenticationError,
  ClientConfigError,
  ConflictError,
  ConnectionError,
  credentialScrubber,
  fieldErrorsFromBody,
  isMaestranoError,
  MaestranoError,
  NotFoundError,
  PayloadValidationError,
  PermissionDeniedError,
  parseRetryAfter,
  RateLimitError,
  redactUrl,
  ResponseValidationError,
  ServerError,
  ValidationFailedError,
} from './errors.js';
export type {
  ApiErrorFromStatusInit,
  ApiErrorInit,
  ApiService,
  ConnectionFailure,
  FieldError,
  IssueSummary,
  MaestranoErrorCode,
  MaestranoErrorOptions,
} from './errors.js';

// --- client -----------------------------------------------------------------------------
export { ConnecGroup, createConnecClient, DEFAULT_BASE_PATH, DEFAULT_TIMEOUT_MS } from './client.js';
export type { ConnecClient, ConnecClientOptions } from './client.js';
export type { RequestOptions, WriteOptions } from './http/kernel.js';
export { isRetriedByDefault } from './http/retry.js';
export type { RetryEvent, RetryPolicy } from './http/retry.js';
export { CollectionResource, CompanyResource, checkInput } from './resources.js';
export type { InvalidListedRecord, ListOptions, ListQuery, RecordId, RetrieveOptions } from './resources.js';

// --- paging -----------------------------------------------------------------------------
export { MAX_TO_ARRAY_LIMIT, PagePromise } from './pagination.js';
export type { Page, PagePromiseOptions, Pagination } from './pagination.js';

// --- $filter builder --------------------------------------------------------------------
export {
  and,
  eq,
  Filter,
  formatFilterDate,
  formatFilterValue,
  gt,
  gte,
  isNull,
  lt,
  lte,
  match,
  ne,
  notNull,
} from './filter.js';
export type { ComparisonOperator, FilterValue } from './filter.js';

// --- ids --------------------------------------------------------------------------------
export {
  attachId,
  CONNEC_PROVIDER,
  connecId,
  detachId,
  externalId,
  findIdMap,
  foldReferences,
  idMap,
  isIdMap,
  isIdMapArray,
  mapAtPath,
  mergeIdMaps,
  unfoldReferences,
  valuesAtPath,
} from './ids.js';
export type { IdOwner, PathValue, UnfoldResult, UnresolvedReference } from './ids.js';

// --- batch ------------------------------------------------------------------------------
export { DEFAULT_BATCH_CHUNK_SIZE } from './batch.js';
export type {
  BatchCreateOp,
  BatchFailure,
  BatchOp,
  BatchOptions,
  BatchResult,
  BatchSuccess,
  BatchUpdateOp,
  GroupBatchOp,
} from './batch.js';

// --- notifications ----------------------------------------------------------------------
export { parseNotification } from './notifications.js';
export type { CatalogRecords, ConnecNotification, InvalidNotificationRecord, NotificationEntry, NotificationGroup, ParseNotificationOptions } from './notifications.js';

// --- entity catalog (also at '@org/connec-client/entities') -----------------------------
export {
  Account,
  Address,
  AddressGroup,
  AppUser,
  Company,
  ConnecRecord,
  ContactChannel,
  collectionNames,
  connecCollections,
  Email,
  Employee,
  IdMap,
  IdMapArray,
  IdValue,
  Invoice,
  Item,
  isCollectionName,
  knownCollectionNames,
  LinkedTransaction,
  Money,
  Note,
  normalizeCollectionName,
  Opportunity,
  Organization,
  Payment,
  PaymentLine,
  Person,
  Phone,
  PurchaseOrder,
  parseConnecDate,
  Quote,
  Reference,
  referenceFields,
  SalesOrder,
  StatusChange,
  schemaFor,
  subRecordIdPaths,
  TaxCode,
  TaxComponent,
  Timestamp,
  TransactionLine,
  Website,
} from './entities.js';
export type {
  CollectionName,
  CollectionRecord,
  ConnecCollections,
  PluralCollectionName,
  RecordInput,
  RecordOf,
  ReferenceField,
} from './entities.js';
