/**
 * The `billing` section of the configuration, validated by this module with its own strict
 * schema (the top-level schema types it `unknown`). Errors are `ConfigError`s whose paths
 * start with `billing.`.
 */
import { z } from 'zod';
import { currencyCode, MAX_FREQUENCY } from '../account/resources.js';
import { CONFIG_PARSE_OPTIONS, configErrorFrom, configIssues, strictObject } from '../config/issues.js';
import { isStorableText } from '../storage/validation.js';

/** The app's company that a subscription is for. */
export interface BillingCompany {
  /** The app's company id. */
  id: string;
  tenant: string;
  /** Maestrano group uid (`cld-…`). */
  groupId: string;
}

/** The group as SSO saw it when the company was created. */
export interface BillingGroup {
  /** `cld-…`. */
  uid: string;
  name: string | null;
  /** End of Maestrano's free trial for the group (`group_end_free_trial`), or null. */
  endFreeTrial: Date | null;
  hasCreditCard: boolean | null;
  currency: string | null;
  country: string | null;
  email: string | null;
  timezone: string | null;
  city: string | null;
  orgUid: string | null;
  /** Reseller that introduced the group (`group_reseller_id`), or null. */
  resellerId: string | null;
  /** The group attributes of the `company.created` event, as received. */
  attributes: Record<string, string | boolean | null>;
}

export type BillingPeriod = 'Day' | 'Week' | 'SemiMonth' | 'Month' | 'Year';

/** The plan `onCompanyCreated` returns: one recurring bill per company. */
export interface SubscriptionPlan {
  /** Price per period, in cents (integer > 0). */
  priceCents: number;
  /** Shown on the customer's invoice. */
  description: string;
  /** ISO 4217. Default on the platform: AUD. */
  currency?: string;
  /** Default `Month`. */
  period?: BillingPeriod;
  /** Periods between charges. Default 1; `frequency × period` must be ≤ 1 year; SemiMonth needs 1. */
  frequency?: number;
  /** Number of charges; null/absent means unlimited. */
  cycles?: number | null;
  /** One-off amount charged at set-up, in cents. */
  initialCents?: number;
  /** The app's own trial, in days from the company's creation. */
  appTrialDays?: number;
  /** The app's own trial end (the later of this and `appTrialDays` wins). */
  appTrialEndsAt?: Date;
}

export type OnCompanyCreated = (
  company: BillingCompany,
  group: BillingGroup,
) => SubscriptionPlan | null | undefined | Promise<SubscriptionPlan | null | undefined>;

const fn = <T>(label: string) => z.custom<T>((v) => typeof v === 'function', { error: `${label} must be a function` });

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

export const BillingConfigSchema = strictObject({
  /**
   * Returns the plan of a new company (or null for none). Called from the durable
   * `billing.subscribe` job, possibly more than once for one company (a retried job): keep
   * it free of side effects. The SDK creates exactly one recurring bill per company.
   */
  onCompanyCreated: fn<OnCompanyCreated>('billing.onCompanyCreated').optional(),
  /** Cancel the group's active recurring bills when Maestrano deletes the group. Default true. */
  cancelRecurringBillsOnGroupDeleted: z.boolean().default(true),
  /**
   * A subscription or charge recorded after an unknown outcome (an earlier POST timed out, or
   * its worker died mid-call) is checked again this long after: a duplicate that the earlier
   * POST created late is cancelled (the `billing.check_duplicates` job, run by `mno.worker`).
   * Default 1 800 000 ms (30 minutes).
   */
  duplicateCheckDelayMs: ms(1_000, 86_400_000).default(1_800_000),
  subscription: strictObject({
      /**
       * How long a subscription claim blocks other workers if its owner dies. Default 120 000 ms.
       * The recurring bill's POST is given at most 3/4 of it (see `claimedCallTimeouts`).
       */
      claimTtlMs: ms(1_000, 3_600_000).default(120_000),
      /**
       * Delay before retrying a subscription whose group is not provisioned yet (a login
       * completing the group runs it at once). Default 600 000 ms; a shorter one counts as 10
       * minutes, so a group whose first login never completes does not use up the job's attempts
       * within seconds.
       */
      retryDelayMs: ms(10, 3_600_000).default(600_000),
    })
    .prefault({}),
  charge: strictObject({
      /**
       * How long a charge claim blocks other callers of the same key if its owner dies
       * between the POST and recording the result. After it, a retry reconciles by listing
       * the group's bills. Default 120 000 ms (longer than one Account API call). The bill's
       * POST is given at most 3/4 of it (see `claimedCallTimeouts`), so a call never outlives
       * its claim and a second caller cannot POST while the first one's POST is in flight.
       */
      claimTtlMs: ms(1_000, 3_600_000).default(120_000),
      /**
       * How long a concurrent call with the same key waits for the winner's outcome before
       * failing with `ChargeInProgressError`. Default 15 000 ms.
       */
      waitMs: ms(0, 600_000).default(15_000),
      /**
       * Reconciliation accepts bills created up to this long before the claim (clock skew
       * between this host and the platform). Default 300 000 ms.
       */
      reconcileSkewMs: ms(0, 86_400_000).default(300_000),
    })
    .prefault({}),
  /** Account API transport (PROTOCOL §4.1 defaults). TLS verification cannot be turned off. */
  accountApi: strictObject({
      /** Time to the response headers, in ms. Default 30 000. */
      connectTimeoutMs: ms(1, 600_000).default(30_000),
      /** Time for the whole attempt, in ms. Default 80 000. */
      timeoutMs: ms(1, 600_000).default(80_000),
      retry: strictObject({
          /** Retries of GET calls (POST/DELETE are never retried). Default 2. */
          limit: z.number().int().min(0).max(10).default(2),
          /** Upper bound of one backoff delay, in ms. Default 10 000. */
          backoffLimitMs: ms(0, 600_000).default(10_000),
        })
        .prefault({}),
    })
    .prefault({}),
});

/** Share of a ledger claim's TTL that the POST made under it may take (the rest: recording the outcome). */
export const CLAIMED_CALL_SHARE = 0.75;

/**
 * Timeouts of a bill-creating POST made under a ledger claim of `claimTtlMs`: the configured
 * Account API timeouts, capped at `CLAIMED_CALL_SHARE` of the claim. A POST that outlived its
 * claim would let another caller take the key over, find no bill yet and POST a second one.
 * With the defaults (80 s timeout, 120 s claims) nothing is capped.
 */
export function claimedCallTimeouts(
  accountApi: BillingConfig['accountApi'],
  claimTtlMs: number,
): { connectMs: number; totalMs: number } {
  const totalMs = Math.max(1, Math.min(accountApi.timeoutMs, Math.floor(claimTtlMs * CLAIMED_CALL_SHARE)));
  return { connectMs: Math.min(accountApi.connectTimeoutMs, totalMs), totalMs };
}

/** What a user writes in `billing` (defaults optional). */
export type BillingConfigInput = z.input<typeof BillingConfigSchema>;
/** The validated section with defaults filled. */
export type BillingConfig = z.output<typeof BillingConfigSchema>;

/**
 * Text the ledger records (a charge's key and intent, a plan's description): one holding a NUL
 * character or an unpaired UTF-16 surrogate is bad input, refused up front like any other,
 * where no storage adapter can record it (it failed as a `StorageError`, read as an outage).
 */
export function storableText<T extends z.ZodType<string>>(schema: T) {
  return schema.refine((text) => isStorableText(text), { message: 'must not hold a NUL character or an unpaired UTF-16 surrogate' });
}

export const SubscriptionPlanSchema = strictObject({
    priceCents: z.number().int().positive(),
    description: storableText(z.string().trim().min(1)),
    currency: currencyCode.optional(),
    period: z.enum(['Day', 'Week', 'SemiMonth', 'Month', 'Year']).default('Month'),
    frequency: z.number().int().positive().default(1),
    cycles: z.number().int().positive().nullable().default(null),
    initialCents: z.number().int().nonnegative().optional(),
    appTrialDays: z.number().int().nonnegative().max(3650).optional(),
    appTrialEndsAt: z.date().optional(),
  })
  // Plans the platform always refuses are an error of the plan, named here, not a 400 retried.
  .refine((p) => p.frequency <= MAX_FREQUENCY[p.period], {
    path: ['frequency'],
    message: 'frequency × period must not exceed one year (SemiMonth requires frequency 1)',
  });
export type ResolvedPlan = z.output<typeof SubscriptionPlanSchema>;

/** Validates `config.billing` (undefined means all defaults). Throws `ConfigError`. */
export function parseBillingConfig(input: unknown): BillingConfig {
  const parsed = BillingConfigSchema.safeParse(input ?? {}, CONFIG_PARSE_OPTIONS);
  if (!parsed.success) throw configErrorFrom(parsed.error, 'billing', 'billing configuration');
  return parsed.data;
}

/** Validates a plan returned by `onCompanyCreated`; returns the issues on failure. */
export function parsePlan(input: unknown): { plan: ResolvedPlan } | { issues: { path: string; message: string }[] } {
  const parsed = SubscriptionPlanSchema.safeParse(input, CONFIG_PARSE_OPTIONS);
  if (parsed.success) return { plan: parsed.data };
  return { issues: configIssues(parsed.error, 'plan') };
}
