/**
 * Billing-specific refinements of `BillingError` (code `billing_failed`). Each names one
 * situation a caller handles differently.
 */
import { BillingError } from '../errors/index.js';

/**
 * Another call with the same idempotency key is running and did not finish within
 * `billing.charge.waitMs`. Nothing was charged by this call; retry later with the same key.
 */
export class ChargeInProgressError extends BillingError {
  readonly idempotencyKey: string;
  constructor(idempotencyKey: string, message: string) {
    super(message);
    this.idempotencyKey = idempotencyKey;
  }
}

/**
 * The group was cancelled (Maestrano deleted it: the company left the marketplace) before this
 * charge was sent. Nothing was charged by this call and the key is free again: at once, or,
 * when this call took over the claim of an interrupted one (whose POST may still land, and is
 * checked for later), once that claim expires (`claimTtlMs`). A charge recorded before the
 * cancellation is still returned as `replayed`.
 */
export class ChargeGroupCancelledError extends BillingError {
  readonly idempotencyKey: string;
  readonly tenant: string;
  readonly groupId: string;
  constructor(idempotencyKey: string, tenant: string, groupId: string, message: string) {
    super(message);
    this.idempotencyKey = idempotencyKey;
    this.tenant = tenant;
    this.groupId = groupId;
  }
}

/**
 * The idempotency key was already used for a different charge (another group, amount,
 * description, …). Nothing was charged by this call.
 */
export class IdempotencyKeyReuseError extends BillingError {
  readonly idempotencyKey: string;
  constructor(idempotencyKey: string, message: string) {
    super(message);
    this.idempotencyKey = idempotencyKey;
  }
}

/**
 * The Account API call that creates the bill failed in a way that leaves its outcome unknown
 * (timeout, connection lost, 5xx, unreadable answer) and no matching bill was found right
 * after. The key stays claimed until its claim expires (`claimTtlMs`); a retry with the
 * same key after that reconciles by listing the group's bills, so nothing is billed twice.
 *
 * Also thrown, with no `cause`, when another key's reconciliation adopted the bill this call
 * had just created (before this call recorded its ownership): the bill counts for that key,
 * nothing is recorded for this one, and a retry after `claimTtlMs` charges it again.
 */
export class ChargeOutcomeUnknownError extends BillingError {
  readonly idempotencyKey: string;
  constructor(idempotencyKey: string, message: string, cause: unknown) {
    super(message, { cause });
    this.idempotencyKey = idempotencyKey;
  }
}

/**
 * Reconciliation found more than one bill matching the charge's intent that no other
 * idempotency key owns, so it cannot tell which one (if any) this key created. Needs a
 * human: the claim is left as it is.
 */
export class ChargeReconciliationError extends BillingError {
  readonly idempotencyKey: string;
  readonly candidateBillIds: string[];
  constructor(idempotencyKey: string, candidateBillIds: string[], message: string) {
    super(message);
    this.idempotencyKey = idempotencyKey;
    this.candidateBillIds = candidateBillIds;
  }
}
