export type { AdminBill, AdminRecurringBill, AdminState, GroupCredentials, SsoLoginInput, SsoLoginResult } from './admin-client.js';
export { SandboxAdmin, SandboxAdminError } from './admin-client.js';
export { certificateFingerprint } from './certs.js';
export { CONNEC_COLLECTIONS } from './connec/collections.js';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './connec/api.js';
export type { FaultInput } from './faults.js';
export type { GroupInput, SyncControlResult, UserInput } from './platform.js';
export type { SeedOptions, SeedSummary } from './seed.js';
export { SEED_EPOCH } from './seed.js';
export type { Sandbox, SandboxCredentials, SandboxOptions } from './server.js';
export { startSandbox } from './server.js';
export { DataFileLockedError } from './store.js';
export type {
  Delivery,
  DeliveryAttempt,
  ExternalId,
  FaultKind,
  FaultRule,
  Group,
  GroupRole,
  JsonObject,
  SandboxRecord,
  JsonValue,
  Membership,
  OtherApp,
  SyncControlAction,
  User,
} from './types.js';
