export { createAccountModule } from './module.js';
export type {
  AccountModule,
  AccountModuleOptions,
  BillingApi,
  TenantBillsApi,
  TenantRecurringBillsApi,
  TenantRef,
} from './module.js';
export { chargeBillLedgerKey, chargeLedgerKey, matchesIntent } from './charge.js';
export type { ChargeInput, ChargeOptions, ChargeResult } from './charge.js';
export { BillingConfigSchema, claimedCallTimeouts, parseBillingConfig } from './config.js';
export type {
  BillingCompany,
  BillingConfig,
  BillingConfigInput,
  BillingGroup,
  BillingPeriod,
  OnCompanyCreated,
  ResolvedPlan,
  SubscriptionPlan,
} from './config.js';
export {
  ChargeGroupCancelledError,
  ChargeInProgressError,
  ChargeOutcomeUnknownError,
  ChargeReconciliationError,
  IdempotencyKeyReuseError,
} from './errors.js';
export { appTrialEnd, billingGroupFrom, subscriptionLedgerKey, subscriptionStart } from './subscribe.js';
export type { SubscribeOutcome } from './subscribe.js';
