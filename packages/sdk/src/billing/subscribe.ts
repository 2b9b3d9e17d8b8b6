/**
 * Subscription set-up on company creation (checklist 2.1.1): the `billing.subscribe` job.
 *
 * Guarantees:
 * - The recurring bill starts no earlier than the later of the group's free-trial end
 *   (`group_end_free_trial`), the app's own trial end and now (`subscriptionStart`).
 * - At most one recurring bill per company, whatever retries, replays or concurrent workers:
 *   the ledger key `recurring:<tenant>:<groupId>` is claimed before the POST and records the
 *   bill id after it; a claim taken over from a dead owner first lists the group's recurring
 *   bills and adopts a non-cancelled one matching the plan; before its own POST it refreshes
 *   the claim and defers if another worker took it meanwhile. The POST's timeouts are capped
 *   below the claim TTL (`claimedCallTimeouts`), so no other worker can take the claim over
 *   (and POST again) while it is in flight.
 * - A group whose provisioning is not complete yet is retried later (`JobDeferral`).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AccountClient } from '../account/client.js';
import type { AccountGroup, RecurringBill } from '../account/resources.js';
import { GROUP_DELETED_MARK, GROUP_READY_RETRY_MS, groupNotReady, type JobHandler, JobDeferral, JobTypes, type Logger, PermanentJobError, TENANT_MISSING_RETRY_MS } from '../core/types.js';
import {
  ApiError,
  BillingError,
  ConfigError,
  ConnectionError,
  NotFoundError,
  PayloadValidationError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
} from '../errors/index.js';
import { parseUtcTimestamp } from '../internal/time.js';
import type { JobRecord, JsonObject, StorageAdapter } from '../storage/adapter.js';
import { scheduleDuplicateCheckJob } from './duplicate-job.js';
import { type BillingConfig, type BillingGroup, claimedCallTimeouts, parsePlan, type ResolvedPlan } from './config.js';

const DAY_MS = 86_400_000;

const PayloadSchema = z.object({
  tenant: z.string().min(1),
  groupId: z.string().min(1),
  companyId: z.string().min(1),
  group: z.record(z.string(), z.union([z.string(), z.boolean(), z.null()])).default({}),
});

export function subscriptionLedgerKey(tenant: string, groupId: string): string {
  return `recurring:${tenant}:${groupId}`;
}

function parseDate(value: unknown): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value !== 'string' || value === '') return null;
  // A time without a zone is UTC here, as everywhere Maestrano's times are read.
  const d = new Date(parseUtcTimestamp(value));
  return Number.isNaN(d.getTime()) ? null : d;
}

function latest(...dates: (Date | null | undefined)[]): Date | null {
  let out: Date | null = null;
  for (const d of dates) if (d && (out === null || d.getTime() > out.getTime())) out = d;
  return out;
}

/** The app's own trial end for a plan: the later of `appTrialEndsAt` and creation + `appTrialDays`. */
export function appTrialEnd(plan: Pick<ResolvedPlan, 'appTrialDays' | 'appTrialEndsAt'>, companyCreatedAt: Date): Date | null {
  const byDays =
    plan.appTrialDays === undefined ? null : new Date(companyCreatedAt.getTime() + plan.appTrialDays * DAY_MS);
  return latest(plan.appTrialEndsAt, byDays);
}

/** Start of the recurring bill: the latest of the group's trial end, the app's trial end and now. */
export function subscriptionStart(args: { now: Date; groupTrialEndsAt: Date | null; appTrialEndsAt: Date | null }): Date {
  return latest(args.now, args.groupTrialEndsAt, args.appTrialEndsAt) ?? args.now;
}

/**
 * The group of a `company.created` payload, typed. Accepts the SDK's own payload keys
 * (`name`, `endFreeTrial`, …) and the raw SAML attribute names (`group_name`,
 * `group_end_free_trial`, …).
 */
export function billingGroupFrom(groupId: string, attributes: Record<string, string | boolean | null>): BillingGroup {
  const str = (...keys: string[]) => {
    for (const k of keys) {
      const v = attributes[k];
      if (typeof v === 'string' && v !== '') return v;
    }
    return null;
  };
  const card = attributes.group_has_credit_card ?? attributes.hasCreditCard;
  return {
    uid: groupId,
    name: str('group_name', 'name'),
    endFreeTrial: parseDate(attributes.group_end_free_trial ?? attributes.endFreeTrial),
    hasCreditCard: card === true || card === 'true' ? true : card === false || card === 'false' ? false : null,
    currency: str('group_currency', 'currency'),
    country: str('group_country', 'country'),
    email: str('group_email', 'email'),
    timezone: str('group_timezone', 'timezone'),
    city: str('group_city', 'city'),
    orgUid: str('group_org_uid', 'orgUid'),
    resellerId: str('group_reseller_id', 'resellerId'),
    attributes,
  };
}

/** Whether a ledger intent is a subscription attempt's plan (`RecurringIntent`). */
export function isRecurringIntent(value: unknown): value is RecurringIntent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<RecurringIntent>;
  return v.kind === 'recurring' && typeof v.groupId === 'string' && typeof v.priceCents === 'number' && typeof v.description === 'string' && typeof v.period === 'string' && typeof v.frequency === 'number';
}

export interface RecurringIntent extends JsonObject {
  kind: 'recurring';
  tenant: string;
  groupId: string;
  companyId: string;
  priceCents: number;
  description: string;
  currency: string | null;
  period: string;
  frequency: number;
  cycles: number | null;
  initialCents: number | null;
  startDate: string;
}

/** A non-cancelled recurring bill of the group with the plan's price, description, currency and period. */
export function matchesPlan(bill: RecurringBill, intent: RecurringIntent): boolean {
  return (
    bill.groupId === intent.groupId &&
    bill.status !== 'cancelled' &&
    bill.priceCents === intent.priceCents &&
    (bill.description ?? '').trim() === intent.description &&
    (intent.currency === null || (bill.currency ?? '').toUpperCase() === intent.currency) &&
    (bill.period ?? 'month').toLowerCase() === intent.period.toLowerCase() &&
    (bill.frequency ?? 1) === intent.frequency
  );
}

function isDefiniteRefusal(error: unknown): boolean {
  if (error instanceof PayloadValidationError || error instanceof RateLimitError) return true;
  if (error instanceof ServerError || error instanceof ConnectionError || error instanceof ResponseValidationError) {
    return false;
  }
  return error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 408;
}

export interface SubscribeDeps {
  storage: StorageAdapter;
  account(tenant: string): AccountClient;
  config: BillingConfig;
  logger: Logger;
  clock: () => Date;
  instanceId: string;
}

export type SubscribeOutcome =
  | { status: 'subscribed' | 'reconciled' | 'already_subscribed'; recurringBillId: string | null }
  | { status: 'no_plan' | 'group_cancelled' | 'disabled' };

/** Runs the subscription for one `company.created` payload. Throws to retry. */
export function createSubscriber(deps: SubscribeDeps) {
  const { storage, config, logger } = deps;
  const createTimeouts = claimedCallTimeouts(config.accountApi, config.subscription.claimTtlMs);

  /**
   * `signal`: the job's `ctx.signal` (a worker's shutdown, a lost lease): every Account API call
   * stops when it aborts, its outcome then unknown as after a timeout (a retry reconciles).
   */
  return async function subscribe(payload: unknown, jobId: string, signal?: AbortSignal): Promise<SubscribeOutcome> {
    const parsed = PayloadSchema.safeParse(payload);
    if (!parsed.success) {
      throw new BillingError(`billing.subscribe: invalid job payload (${parsed.error.issues.map((i) => i.path.join('.')).join(', ')})`);
    }
    const { tenant, groupId, companyId } = parsed.data;
    const onCompanyCreated = config.onCompanyCreated;
    if (!onCompanyCreated) return { status: 'disabled' };
    const client = accountOrDefer(deps, tenant);
    const call = signal ? { signal } : {};
    const key = subscriptionLedgerKey(tenant, groupId);
    const existing = await storage.ledger.get(key);
    /** Cancels a recurring bill; one cancelled already (by a concurrent attempt) is fine. */
    const cancelRecurring = async (id: string): Promise<void> => {
      try {
        await client.recurringBills.cancel(id, call);
      } catch (error) {
        const current = await client.recurringBills.retrieve(id, call).catch(() => null);
        if (current?.status !== 'cancelled') throw error;
      }
    };
    const cancelOnDeletion = config.cancelRecurringBillsOnGroupDeleted;
    /**
     * A subscription recorded for a group that is cancelled by now: the group's deletion ran
     * while it was set up (the status is checked once, before the POST, and the deletion's bill
     * passes may have listed the group's bills before the POST landed). Its bill is cancelled
     * here (a failure fails the job: its retry finds the subscription recorded and comes back
     * here). Whatever the order of the two, the deletion's pass after marking the group
     * cancelled or this look after recording the bill sees the other's write. Only when the app
     * lets the SDK cancel the bills of deleted groups (`cancelRecurringBillsOnGroupDeleted`,
     * default true): an app that keeps them keeps this one too, whenever it was recorded (no
     * timestamps of two processes compared). A bill recorded long before the deletion is one the
     * deletion cancelled already, so cancelling it again changes nothing.
     */
    const unlessCancelled = async (outcome: SubscribeOutcome): Promise<SubscribeOutcome> => {
      const billId = 'recurringBillId' in outcome ? outcome.recurringBillId : null;
      if (billId === null || !cancelOnDeletion) return outcome;
      if ((await storage.groups.get(tenant, groupId))?.status !== 'cancelled') return outcome;
      await cancelRecurring(billId);
      logger.warn('billing: recurring bill cancelled: the group was cancelled while its subscription was set up', { tenant, groupId, recurringBillId: billId });
      return { status: 'group_cancelled' };
    };
    /**
     * A group found ended while an earlier attempt's claim is still unrecorded: that attempt
     * may have POSTed (its outcome unknown, a worker that died) and its bill may land after the
     * deletion's passes and after this run. A `billing.check_duplicates` job looks again once
     * the claim has expired and the duplicate check delay has passed, and cancels every live
     * recurring bill of the attempt's plan if the group is still ended then.
     */
    const checkLateBillsOfEndedGroup = async (): Promise<void> => {
      if (!cancelOnDeletion || !existing || existing.status === 'done' || !isRecurringIntent(existing.intent)) return;
      const now = deps.clock();
      const from = existing.claimExpiresAt && existing.claimExpiresAt.getTime() > now.getTime() ? existing.claimExpiresAt : now;
      await scheduleDuplicateCheckJob(storage, { kind: 'ended-group', tenant, groupId }, from, config.duplicateCheckDelayMs);
    };

    if (existing?.status === 'done') return unlessCancelled({ status: 'already_subscribed', recurringBillId: billIdOf(existing.outcome) });

    const group = await storage.groups.get(tenant, groupId);
    if (!group) {
      // Deleted (and acknowledged) before a first login completed it: it never will be (the
      // next login is refused), so waiting for it would only end as a dead letter.
      if (await storage.cursors.get({ tenant, groupId, ...GROUP_DELETED_MARK })) {
        logger.info('billing: group deleted before its first login completed; no subscription', { tenant, groupId });
        await checkLateBillsOfEndedGroup();
        return { status: 'group_cancelled' };
      }
      // Woken as soon as a login completes the group; otherwise tried again well later.
      throw groupNotReady(storage, tenant, groupId, Math.max(config.subscription.retryDelayMs, GROUP_READY_RETRY_MS));
    }
    if (group.status === 'cancelled') {
      logger.info('billing: group cancelled before its subscription was set up; skipping', { tenant, groupId });
      await checkLateBillsOfEndedGroup();
      return { status: 'group_cancelled' };
    }

    const billingGroup = billingGroupFrom(groupId, parsed.data.group);
    const platformGroup = await currentGroup(client, tenant, groupId, logger, call);
    // Ended on the platform while its deletion webhook is late or lost: no subscription (the
    // platform would refuse it, and every retry would call onCompanyCreated again).
    if (platformGroup && ENDED_GROUP_STATUSES.has(platformGroup.status ?? '')) {
      logger.info('billing: group ended on the platform before its subscription was set up; skipping', { tenant, groupId, status: platformGroup.status });
      await checkLateBillsOfEndedGroup();
      return { status: 'group_cancelled' };
    }
    // The trial may have been extended since the login that created the company (a deferred job
    // runs much later): the platform's current free-trial end counts too, whichever is later.
    billingGroup.endFreeTrial = latest(billingGroup.endFreeTrial, platformGroup?.freeTrialEndAt ?? null);
    // A job enqueued without the login's group data (`mno.billing.subscribe`): the platform's.
    if (platformGroup) {
      billingGroup.currency ??= platformGroup.currency || null;
      billingGroup.hasCreditCard ??= platformGroup.hasCreditCard ?? null;
      billingGroup.name ??= platformGroup.name || null;
      billingGroup.country ??= platformGroup.country || null;
      billingGroup.email ??= platformGroup.email || null;
      billingGroup.timezone ??= platformGroup.timezone || null;
      billingGroup.city ??= platformGroup.city || null;
    }
    const returned = await onCompanyCreated({ id: group.companyId || companyId, tenant, groupId }, billingGroup);
    const owner = `${deps.instanceId}:billing.subscribe:${jobId}:${randomUUID()}`;

    if (returned == null) {
      const claim = await storage.ledger.claim(key, { owner, ttlMs: config.subscription.claimTtlMs, intent: null });
      // Another attempt holds the key (a failed earlier run of this job among them): not done
      // until it is recorded; retried once that claim can be taken over.
      if (claim.state === 'pending') {
        const expires = claim.entry.claimExpiresAt?.getTime() ?? deps.clock().getTime();
        throw new JobDeferral(`subscription of group ${groupId} is being set up by another worker`, {
          retryInMs: Math.max(1_000, expires - deps.clock().getTime() + 100),
        });
      }
      if (claim.state === 'claimed') {
        // Taken over from an attempt that had a plan (and may have POSTed it): its bill would
        // be live and recorded nowhere. Cancelled before "no plan" is recorded, and checked
        // for again later (its POST may still land), as after a takeover with a plan.
        const earlier = claim.recovered ? claim.entry.intent : null;
        if (isRecurringIntent(earlier)) {
          for (const bill of await client.recurringBills.list({ groupId }, call)) {
            if (!matchesPlan(bill, earlier)) continue;
            await cancelRecurring(bill.id);
            logger.warn('billing: recurring bill of an earlier attempt cancelled (the plan is now none)', { tenant, groupId, recurringBillId: bill.id });
          }
          await scheduleDuplicateCheckJob(storage, { kind: 'recurring', tenant, groupId, billId: null }, deps.clock(), config.duplicateCheckDelayMs);
        }
        await storage.ledger.complete(key, owner, { recurringBillId: null, plan: null });
      }
      return { status: 'no_plan' };
    }
    const planResult = parsePlan(returned);
    if ('issues' in planResult) {
      // The same plan comes back on every retry (and each one calls onCompanyCreated again): a
      // dead letter at once, retried by hand once the plan is fixed.
      const invalid = new BillingError(
        `billing.onCompanyCreated returned an invalid plan for group ${groupId}: ${planResult.issues
          .map((i) => `${i.path}: ${i.message}`)
          .join('; ')}`,
      );
      throw new PermanentJobError(`${invalid.message}; fix the plan, then retry this dead letter`, { cause: invalid });
    }
    const plan = planResult.plan;
    const now = deps.clock();
    const groupTrialEndsAt = latest(billingGroup.endFreeTrial, group.trialEndsAt);
    const appTrialEndsAt = appTrialEnd(plan, group.createdAt);
    let start = subscriptionStart({ now, groupTrialEndsAt, appTrialEndsAt });
    const trialEndsAt = latest(groupTrialEndsAt, appTrialEndsAt);

    const intent: RecurringIntent = {
      kind: 'recurring',
      tenant,
      groupId,
      companyId,
      priceCents: plan.priceCents,
      description: plan.description,
      currency: plan.currency ?? null,
      period: plan.period,
      frequency: plan.frequency,
      cycles: plan.cycles,
      initialCents: plan.initialCents ?? null,
      startDate: start.toISOString(),
    };

    const claim = await storage.ledger.claim(key, { owner, ttlMs: config.subscription.claimTtlMs, intent });
    if (claim.state === 'done') return unlessCancelled({ status: 'already_subscribed', recurringBillId: billIdOf(claim.entry.outcome) });
    if (claim.state === 'pending') {
      const wait = (claim.entry.claimExpiresAt?.getTime() ?? now.getTime()) - now.getTime();
      throw new JobDeferral(`subscription of group ${groupId} is being set up by another worker`, {
        retryInMs: Math.max(1_000, wait + 100),
      });
    }

    // After a takeover, an earlier attempt may have POSTed with its own start and land late:
    // every attempt sends the first attempt's start (a trial extended since moves it, the same
    // for all), so that the duplicate check knows its twins. Not once it is nearly an hour in
    // the past: the platform refuses a start more than 1 h in the past (PROTOCOL §4.4).
    if (claim.recovered) {
      const first = claim.entry.intent as RecurringIntent | null;
      const firstStart = first?.kind === 'recurring' && samePlan(first, intent) ? parseDate(first.startDate) : null;
      const anchored = firstStart ? latest(firstStart, groupTrialEndsAt, appTrialEndsAt) : null;
      if (anchored && anchored.getTime() >= now.getTime() - START_REUSE_WINDOW_MS) start = anchored;
    }
    intent.startDate = start.toISOString();

    if (trialEndsAt && group.trialEndsAt?.getTime() !== trialEndsAt.getTime()) {
      await storage.groups.update(tenant, groupId, { trialEndsAt });
    }

    // After an unknown outcome (our claim was taken over from an owner that may have POSTed),
    // that POST can still land after we subscribe: check again later, before recording.
    const scheduleDuplicateCheck = async (billId: string) => {
      if (!claim.recovered) return;
      await scheduleDuplicateCheckJob(storage, { kind: 'recurring', tenant, groupId, billId }, deps.clock(), config.duplicateCheckDelayMs);
    };
    /**
     * Records `bill` as the group's subscription; when our claim was taken over meanwhile, the
     * key's answer is what the new owner recorded (this bill is then a twin its duplicate
     * check cancels), or, not recorded yet, a deferral.
     */
    const recordBill = async (bill: RecurringBill, status: 'reconciled' | 'subscribed'): Promise<SubscribeOutcome> => {
      if (await storage.ledger.complete(key, owner, { recurringBillId: bill.id, startDate: intent.startDate })) return { status, recurringBillId: bill.id };
      const entry = await storage.ledger.get(key);
      const recordedId = entry?.status === 'done' ? billIdOf(entry.outcome) : null;
      logger.warn('billing: subscription claim taken over', { tenant, groupId, recurringBillId: bill.id, recordedRecurringBillId: recordedId });
      if (recordedId === bill.id) return { status, recurringBillId: bill.id };
      if (entry?.status === 'done' && recordedId === null) {
        // The new owner found no plan and recorded none: no duplicate check covers this bill.
        await cancelRecurring(bill.id);
        logger.warn('billing: recurring bill cancelled (the plan is now none)', { tenant, groupId, recurringBillId: bill.id });
        return { status: 'no_plan' };
      }
      if (entry?.status === 'done') return { status: 'already_subscribed', recurringBillId: recordedId };
      throw new JobDeferral(`subscription of group ${groupId} is being recorded by another worker`, { retryInMs: 1_000 });
    };
    const adopt = async (status: 'reconciled', bill: RecurringBill): Promise<SubscribeOutcome> => {
      await scheduleDuplicateCheck(bill.id);
      const outcome = await recordBill(bill, status);
      logger.info('billing: existing recurring bill adopted', { tenant, groupId, recurringBillId: 'recurringBillId' in outcome ? outcome.recurringBillId : null });
      return unlessCancelled(outcome);
    };
    const findExisting = async (): Promise<RecurringBill | null> => {
      const bills = await client.recurringBills.list({ groupId }, call);
      return bills.find((b) => matchesPlan(b, intent)) ?? null;
    };

    if (claim.recovered) {
      // The attempt taken over may have POSTed another plan (the app's plan changed since): its
      // bill matches neither this plan nor `findExisting`, and would stay live next to ours
      // until the duplicate check. Cancelled first, as when the plan is now none.
      const earlier = claim.entry.intent;
      if (isRecurringIntent(earlier) && !samePlan(earlier, intent)) {
        for (const bill of await client.recurringBills.list({ groupId }, call)) {
          if (!matchesPlan(bill, earlier) || matchesPlan(bill, intent)) continue;
          await cancelRecurring(bill.id);
          logger.warn('billing: recurring bill of an earlier attempt cancelled (the plan has changed since)', { tenant, groupId, recurringBillId: bill.id });
        }
      }
      const found = await findExisting();
      if (found) return adopt('reconciled', found);
      // The listing may have outlived the claim: refresh it so the POST starts with the full
      // TTL, and never POST once another worker took it over (it may have POSTed meanwhile).
      // Taken over from an attempt that found no plan (it sent nothing): a takeover keeps the
      // first claim's intent, which would say "no plan" of the POST below, and then neither a
      // dead letter's discard, a retry that finds no plan, nor a deletion of the group would
      // look for its bill. The claim is given back and taken afresh with this plan instead, so
      // that a claim without a plan never has a POST under it.
      if (!isRecurringIntent(earlier)) await storage.ledger.release(key, owner);
      const refreshed = await storage.ledger.claim(key, { owner, ttlMs: config.subscription.claimTtlMs, intent });
      if (refreshed.state === 'done') {
        return unlessCancelled({ status: 'already_subscribed', recurringBillId: billIdOf(refreshed.entry.outcome) });
      }
      if (refreshed.state !== 'claimed' || refreshed.recovered) {
        const expires = refreshed.entry.claimExpiresAt?.getTime() ?? deps.clock().getTime();
        const why = refreshed.state === 'pending' ? 'is being set up by another worker' : 'lost its claim while reconciling';
        throw new JobDeferral(`subscription of group ${groupId} ${why}`, {
          retryInMs: Math.max(1_000, expires - deps.clock().getTime() + 100),
        });
      }
    }
    let bill: RecurringBill;
    try {
      bill = await client.recurringBills.create({
        groupId,
        priceCents: plan.priceCents,
        description: plan.description,
        ...(plan.currency === undefined ? {} : { currency: plan.currency }),
        period: plan.period,
        frequency: plan.frequency,
        cycles: plan.cycles,
        startDate: start,
        ...(plan.initialCents === undefined ? {} : { initialCents: plan.initialCents }),
      }, { ...call, timeouts: createTimeouts });
    } catch (error) {
      if (isDefiniteRefusal(error)) {
        // A taken-over claim is kept until it expires (an earlier POST may still land; the
        // next run reconciles first and has a late twin checked for).
        if (!claim.recovered) await storage.ledger.release(key, owner);
        // The client's own check of the request: the same plan fails it on every retry.
        if (error instanceof PayloadValidationError) {
          throw new PermanentJobError(`billing.subscribe: the recurring bill of group ${groupId} is invalid (${error.message}); fix the plan, then retry this dead letter`, { cause: error });
        }
        throw error;
      }
      const found = await findExisting().catch(() => null);
      if (found) return adopt('reconciled', found);
      throw error; // the claim stays until it expires; the retry reconciles first
    }
    // A storage failure here (or recording below) fails the job; its retry adopts this bill.
    await scheduleDuplicateCheck(bill.id);
    const outcome = await recordBill(bill, 'subscribed');
    logger.info('billing: recurring bill created', { tenant, groupId, recurringBillId: bill.id, startDate: intent.startDate });
    return unlessCancelled(outcome);
  };
}

/**
 * The tenant's Account API client; a tenant missing from the tenant list (a marketplaces
 * document refreshed without it, a deploy) defers the job for long enough for it to come
 * back, instead of failing attempts within minutes and ending as a dead letter.
 */
export function accountOrDefer(deps: Pick<SubscribeDeps, 'account'>, tenant: string): AccountClient {
  try {
    return deps.account(tenant);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new JobDeferral(`tenant ${tenant} is not in the current tenant list`, { retryInMs: TENANT_MISSING_RETRY_MS });
    }
    throw error;
  }
}

/**
 * The group's free-trial end as the Account API has it now; null when it has none or does not
 * know the group (404: the SSO attributes are all there is). Other failures throw: the job retries.
 */
/** Account API group statuses of a group Maestrano ended (PROTOCOL §4.4 knows `running` and `terminated`). */
export const ENDED_GROUP_STATUSES = new Set(['terminated', 'cancelled']);

/** How far in the past a retry may still send the first attempt's start date (the platform's limit is 1 h). */
const START_REUSE_WINDOW_MS = 50 * 60_000;

/** Same price, description, currency, period, frequency, cycles and initial amount. */
function samePlan(a: RecurringIntent, b: RecurringIntent): boolean {
  return (
    a.priceCents === b.priceCents &&
    a.description === b.description &&
    a.currency === b.currency &&
    a.period === b.period &&
    a.frequency === b.frequency &&
    a.cycles === b.cycles &&
    a.initialCents === b.initialCents
  );
}

/** The group as the Account API has it now; null when the platform does not know it (404). */
async function currentGroup(client: AccountClient, tenant: string, groupId: string, logger: Logger, options: { signal?: AbortSignal }): Promise<AccountGroup | null> {
  try {
    return await client.groups.retrieve(groupId, options);
  } catch (error) {
    if (error instanceof NotFoundError) {
      logger.warn('billing: the Account API does not know the group; using the trial end of its login', { tenant, groupId });
      return null;
    }
    throw error;
  }
}

/**
 * Whether the `billing.subscribe` job `job` left its group's subscription in doubt: one of its
 * attempts claimed the group's ledger key with a plan and nothing is recorded since, so a POST may have
 * created a recurring bill (its outcome unknown: a timeout, a lost answer, a worker that died)
 * that only a run of the subscription reconciles. That run adopts the bill, or cancels it when
 * `onCompanyCreated` now returns no plan for the company or the group has ended. Nothing else
 * reads the claim (no sweep; nothing enqueues `billing.subscribe` again for a provisioned
 * group), so such a dead letter is retried, never discarded (`discardDeadLetter` refuses it).
 * False for any other job, an unreadable payload, no claim, or a claim without a plan: nothing
 * was sent under it (an attempt with a plan that takes such a claim over takes it afresh with
 * its plan before it POSTs).
 */
export async function subscriptionInDoubt(storage: StorageAdapter, job: Pick<JobRecord, 'type' | 'payload'>): Promise<boolean> {
  if (job.type !== JobTypes.billingSubscribe) return false;
  const parsed = PayloadSchema.safeParse(job.payload);
  if (!parsed.success) return false;
  const entry = await storage.ledger.get(subscriptionLedgerKey(parsed.data.tenant, parsed.data.groupId));
  return entry !== null && entry.status !== 'done' && isRecurringIntent(entry.intent);
}

export function billIdOf(outcome: unknown): string | null {
  if (typeof outcome === 'object' && outcome !== null && 'recurringBillId' in outcome) {
    const id = (outcome as { recurringBillId: unknown }).recurringBillId;
    return typeof id === 'string' ? id : null;
  }
  return null;
}

/** The `billing.subscribe` job handler. */
export function subscribeJobHandler(subscribe: ReturnType<typeof createSubscriber>): JobHandler {
  return async (job, ctx) => {
    const outcome = await subscribe(job.payload, job.id, ctx.signal);
    ctx.logger.debug('billing.subscribe done', { jobId: job.id, ...outcome });
  };
}
