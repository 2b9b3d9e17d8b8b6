/**
 * The account/billing module, built by `createMaestrano` from the runtime: the Account API
 * client per tenant (`mno.account(tenant)`), `mno.billing` (charges, bills, recurring bills),
 * the `billing.subscribe` job handler and the two account webhook routes.
 */
import { type AccountClient, createAccountClient, type ListParams } from '../account/client.js';
import { accountApiUrl, type RequestOptions } from '../account/http.js';
import type {
  Bill,
  BillCreateInput,
  RecurringBill,
  RecurringBillCreateInput,
} from '../account/resources.js';
import { JobTypes, type ModuleContribution, type Runtime, type Tenant } from '../core/types.js';
import { ConfigError } from '../errors/index.js';
import { type AccountWebhookHooks, createAccountWebhooks } from '../webhooks/account.js';
import { type ChargeInput, type ChargeOptions, type ChargeResult, createCharge } from './charge.js';
import { type BillingConfig, claimedCallTimeouts, parseBillingConfig } from './config.js';
import { createDuplicateChecker, duplicateCheckJobHandler } from './duplicates.js';
import { createSubscriber, type SubscribeOutcome, subscribeJobHandler } from './subscribe.js';

/** A tenant, by name or as the resolved object. */
export type TenantRef = string | Tenant;

export interface TenantBillsApi {
  list(tenant: TenantRef, params?: ListParams, options?: RequestOptions): Promise<Bill[]>;
  retrieve(tenant: TenantRef, id: string, options?: RequestOptions): Promise<Bill>;
  /** A plain create (not idempotent). Prefer `charge` with an idempotency key. */
  create(tenant: TenantRef, input: BillCreateInput, options?: RequestOptions): Promise<Bill>;
  cancel(tenant: TenantRef, id: string, options?: RequestOptions): Promise<Bill>;
}

export interface TenantRecurringBillsApi {
  list(tenant: TenantRef, params?: ListParams, options?: RequestOptions): Promise<RecurringBill[]>;
  retrieve(tenant: TenantRef, id: string, options?: RequestOptions): Promise<RecurringBill>;
  create(tenant: TenantRef, input: RecurringBillCreateInput, options?: RequestOptions): Promise<RecurringBill>;
  cancel(tenant: TenantRef, id: string, options?: RequestOptions): Promise<RecurringBill>;
}

/** `mno.billing`. */
export interface BillingApi {
  /**
   * An ad-hoc bill, exactly once per `idempotencyKey` (see `charge.ts` for the protocol):
   * concurrent calls with one key create one bill; a call interrupted between the POST and
   * recording the result is reconciled by the next call with the key.
   */
  charge(input: ChargeInput, options?: ChargeOptions): Promise<ChargeResult>;
  readonly bills: TenantBillsApi;
  readonly recurringBills: TenantRecurringBillsApi;
  /**
   * Runs the subscription set-up of one company now (what the `billing.subscribe` job does).
   * Idempotent: never creates a second recurring bill for the group.
   */
  subscribe(payload: { tenant: string; groupId: string; companyId: string; group?: Record<string, string | boolean | null> }): Promise<SubscribeOutcome>;
}

export interface AccountModule {
  contribution: ModuleContribution;
  /** The Account API client of one tenant (groups, users, bills, recurring bills). */
  account(tenant: TenantRef): AccountClient;
  billing: BillingApi;
  /** The validated `billing` section (defaults filled). */
  config: BillingConfig;
}

export interface AccountModuleOptions {
  /** `config.billing` as the user wrote it; validated here (`ConfigError`, paths `billing.*`). */
  billing: unknown;
  /** The provisioning hooks the webhooks call (`cancelCompany`, `removeMembership`, `blockUser`, `onSeatsChanged`). */
  hooks?: AccountWebhookHooks;
  /**
   * Job types the group-deletion webhook enqueues once the group is cancelled, one per group
   * (`createMaestrano` passes `sync.purge` when the sync module handles it). Default: none.
   */
  groupCancelledJobs?: readonly string[];
}

export function createAccountModule(runtime: Runtime, options: AccountModuleOptions): AccountModule {
  const config = parseBillingConfig(options.billing);
  const clients = new WeakMap<Tenant, AccountClient>();
  const httpOptions = {
    fetch: runtime.fetch,
    timeouts: { connectMs: config.accountApi.connectTimeoutMs, totalMs: config.accountApi.timeoutMs },
    retry: { limit: config.accountApi.retry.limit, backoffLimitMs: config.accountApi.retry.backoffLimitMs },
  };

  function resolveTenant(ref: TenantRef): Tenant {
    if (typeof ref !== 'string') return ref;
    const tenant = runtime.tenants.get(ref);
    if (!tenant) {
      throw new ConfigError(`Unknown tenant ${JSON.stringify(ref)}`, { issues: [{ path: 'tenant', message: 'unknown tenant' }] });
    }
    return tenant;
  }

  function account(ref: TenantRef): AccountClient {
    const tenant = resolveTenant(ref);
    let client = clients.get(tenant);
    if (!client) {
      client = createAccountClient(tenant, httpOptions);
      clients.set(tenant, client);
    }
    return client;
  }

  const charge = createCharge({
    storage: runtime.storage,
    account,
    billsUrl: (tenant) => accountApiUrl(resolveTenant(tenant).api, 'bills'),
    config: config.charge,
    duplicateCheckDelayMs: config.duplicateCheckDelayMs,
    clock: runtime.clock,
    createTimeouts: claimedCallTimeouts(config.accountApi, config.charge.claimTtlMs),
    logger: runtime.logger,
    instanceId: runtime.instanceId,
  });
  const subscribe = createSubscriber({
    storage: runtime.storage,
    account,
    config,
    logger: runtime.logger,
    clock: runtime.clock,
    instanceId: runtime.instanceId,
  });
  const webhooks = createAccountWebhooks({
    storage: runtime.storage,
    logger: runtime.logger,
    hooks: options.hooks ?? {},
    account,
    cancelRecurringBills: config.cancelRecurringBillsOnGroupDeleted,
    instanceId: runtime.instanceId,
    groupCancelledJobs: options.groupCancelledJobs,
  });

  const billing: BillingApi = {
    charge,
    bills: {
      list: (t, params, o) => account(t).bills.list(params, o),
      retrieve: (t, id, o) => account(t).bills.retrieve(id, o),
      create: (t, input, o) => account(t).bills.create(input, o),
      cancel: (t, id, o) => account(t).bills.cancel(id, o),
    },
    recurringBills: {
      list: (t, params, o) => account(t).recurringBills.list(params, o),
      retrieve: (t, id, o) => account(t).recurringBills.retrieve(id, o),
      create: (t, input, o) => account(t).recurringBills.create(input, o),
      cancel: (t, id, o) => account(t).recurringBills.cancel(id, o),
    },
    subscribe: (payload) => subscribe({ group: {}, ...payload }, 'direct'),
  };

  return {
    contribution: {
      routes: { groupDeleted: webhooks.groupDeleted, groupUserDeleted: webhooks.groupUserDeleted },
      jobs: {
        ...(config.onCompanyCreated ? { [JobTypes.billingSubscribe]: subscribeJobHandler(subscribe) } : {}),
        [JobTypes.billingCheckDuplicates]: duplicateCheckJobHandler(
          createDuplicateChecker({ storage: runtime.storage, account, config, logger: runtime.logger }),
        ),
      },
    },
    account,
    billing,
    config,
  };
}
