/**
 * Account API resources (PROTOCOL §4.4), parsed from the wire's snake_case into camelCase
 * with `Date` objects. Response schemas are plain (non-strict) objects: the platform may add
 * fields and that must not break a client. Every field but `id` (and the keys a bill cannot
 * exist without) is nullable, because the platform's serialisers omit empty values.
 */
import { z } from 'zod';
import { parseUtcTimestamp } from '../internal/time.js';

const isoDate = z
  .union([z.string(), z.null()])
  .optional()
  .transform((value, ctx) => {
    if (value == null || value === '') return null;
    const date = new Date(parseUtcTimestamp(value));
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: `not an ISO-8601 date: ${value}` });
      return z.NEVER;
    }
    return date;
  });

/** Rails serialises decimals as strings (`"1.0"`). */
const decimal = z
  .union([z.number(), z.string()])
  .nullish()
  .transform((value, ctx) => {
    if (value == null || value === '') return null;
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(n)) {
      ctx.addIssue({ code: 'custom', message: `not a number: ${String(value)}` });
      return z.NEVER;
    }
    return n;
  });

const integer = decimal.refine((n) => n === null || Number.isInteger(n), 'expected an integer');

const bool = z
  .union([z.boolean(), z.enum(['true', 'false'])])
  .nullish()
  .transform((value) => (value == null ? null : value === true || value === 'true'));

const text = z.string().nullish().transform((v) => v ?? null);

function objectTag(tag: string) {
  return z.literal(tag).optional();
}

export const AccountGroupSchema = z
  .object({
    object: objectTag('account_group'),
    id: z.string().min(1),
    name: text,
    email: text,
    has_credit_card: bool,
    free_trial_end_at: isoDate,
    currency: text,
    country: text,
    city: text,
    timezone: text,
    status: text,
    main_accounting: text,
    metadata: z.record(z.string(), z.unknown()).nullish(),
    created_at: isoDate,
    updated_at: isoDate,
  })
  .transform((g) => ({
    id: g.id,
    name: g.name,
    email: g.email,
    hasCreditCard: g.has_credit_card,
    freeTrialEndAt: g.free_trial_end_at,
    currency: g.currency,
    country: g.country,
    city: g.city,
    timezone: g.timezone,
    status: g.status,
    mainAccounting: g.main_accounting,
    metadata: g.metadata ?? null,
    createdAt: g.created_at,
    updatedAt: g.updated_at,
  }));
export type AccountGroup = z.output<typeof AccountGroupSchema>;

/** `sso_session` is deliberately not exposed: it is a live session token. */
export const AccountUserSchema = z
  .object({
    object: objectTag('account_user'),
    id: z.string().min(1),
    name: text,
    surname: text,
    email: text,
    company_name: text,
    country: text,
    created_at: isoDate,
    updated_at: isoDate,
  })
  .transform((u) => ({
    id: u.id,
    name: u.name,
    surname: u.surname,
    email: u.email,
    companyName: u.company_name,
    country: u.country,
    createdAt: u.created_at,
    updatedAt: u.updated_at,
  }));
export type AccountUser = z.output<typeof AccountUserSchema>;

export type BillStatus = 'submitted' | 'invoiced' | 'cancelled';

export const BillSchema = z
  .object({
    object: objectTag('account_bill'),
    id: z.string().min(1),
    group_id: z.string().min(1),
    price_cents: integer,
    description: text,
    currency: text,
    units: decimal,
    period_started_at: isoDate,
    period_ended_at: isoDate,
    third_party: bool,
    status: text,
    created_at: isoDate,
    updated_at: isoDate,
  })
  .transform((b) => ({
    id: b.id,
    groupId: b.group_id,
    priceCents: b.price_cents,
    description: b.description,
    currency: b.currency,
    units: b.units,
    periodStartedAt: b.period_started_at,
    periodEndedAt: b.period_ended_at,
    thirdParty: b.third_party,
    /** `submitted`, `invoiced` or `cancelled` (kept as a string: the platform may add states). */
    status: b.status,
    createdAt: b.created_at,
    updatedAt: b.updated_at,
  }));
export type Bill = z.output<typeof BillSchema>;

export type RecurringBillPeriod = 'Day' | 'Week' | 'SemiMonth' | 'Month' | 'Year';

export const RecurringBillSchema = z
  .object({
    object: objectTag('account_recurring_bill'),
    id: z.string().min(1),
    group_id: z.string().min(1),
    price_cents: integer,
    description: text,
    currency: text,
    period: text,
    frequency: integer,
    cycles: integer,
    start_date: isoDate,
    initial_cents: integer,
    status: text,
    last_execution_at: isoDate,
    next_execution_at: isoDate,
    remaining_cycles: integer,
    created_at: isoDate,
    updated_at: isoDate,
  })
  .transform((r) => ({
    id: r.id,
    groupId: r.group_id,
    priceCents: r.price_cents,
    description: r.description,
    currency: r.currency,
    /** As stored by the platform (the sandbox lower-cases it: `month`). */
    period: r.period,
    frequency: r.frequency,
    /** null means unlimited. */
    cycles: r.cycles,
    startDate: r.start_date,
    initialCents: r.initial_cents,
    /** `submitted`, `active`, `expired` or `cancelled`. */
    status: r.status,
    lastExecutionAt: r.last_execution_at,
    nextExecutionAt: r.next_execution_at,
    remainingCycles: r.remaining_cycles,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
export type RecurringBill = z.output<typeof RecurringBillSchema>;

// ---------------------------------------------------------------------------------------
// Inputs (validated before any request: bad input never reaches the network)

let isoCurrencies: ReadonlySet<string> | null | undefined;

/** The ISO 4217 codes the runtime's Intl knows; null when it cannot list them (checked by shape only). */
function knownCurrencies(): ReadonlySet<string> | null {
  if (isoCurrencies === undefined) {
    try {
      isoCurrencies = new Set(Intl.supportedValuesOf('currency'));
    } catch {
      isoCurrencies = null;
    }
  }
  return isoCurrencies;
}

/** True for an upper-case ISO 4217 currency code (`USD`, `AUD`, …), per `Intl.supportedValuesOf('currency')`. */
export function isIsoCurrency(code: string): boolean {
  if (!/^[A-Z]{3}$/.test(code)) return false;
  const known = knownCurrencies();
  return known === null || known.has(code);
}

/**
 * A currency of a bill, recurring bill, charge or plan: an ISO 4217 code (PROTOCOL §4.4), so a
 * typo fails before any request instead of billing in a currency that does not exist.
 */
export const currencyCode = z.string().superRefine((code, ctx) => {
  if (!/^[A-Z]{3}$/.test(code)) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 4217 code such as "USD"' });
  } else if (!isIsoCurrency(code)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(code)} is not an ISO 4217 currency code` });
  }
});

export const BillCreateSchema = z
  .strictObject({
    groupId: z.string().min(1),
    priceCents: z.number().int().positive(),
    description: z.string().trim().min(1),
    /** Default on the platform: AUD. */
    currency: currencyCode.optional(),
    /** Decimal > 0; default on the platform: 1. */
    units: z.number().positive().optional(),
    periodStartedAt: z.date().optional(),
    periodEndedAt: z.date().optional(),
    /** Pass-through costs (e.g. SMS credits): no commission. */
    thirdParty: z.boolean().optional(),
  })
  .refine((b) => !b.periodStartedAt || !b.periodEndedAt || b.periodStartedAt.getTime() <= b.periodEndedAt.getTime(), {
    message: 'periodStartedAt must not be after periodEndedAt',
    path: ['periodEndedAt'],
  });
export type BillCreateInput = z.input<typeof BillCreateSchema>;

/** The most periods of each kind one billing cycle may span: frequency × period ≤ 1 year (PROTOCOL §4.4). */
export const MAX_FREQUENCY: Record<RecurringBillPeriod, number> = { Day: 365, Week: 52, SemiMonth: 1, Month: 12, Year: 1 };

export const RecurringBillCreateSchema = z
  .strictObject({
    groupId: z.string().min(1),
    priceCents: z.number().int().positive(),
    description: z.string().trim().min(1),
    currency: currencyCode.optional(),
    period: z.enum(['Day', 'Week', 'SemiMonth', 'Month', 'Year']).optional(),
    frequency: z.number().int().positive().optional(),
    /** null or absent: unlimited. */
    cycles: z.number().int().positive().nullable().optional(),
    /** Default on the platform: now. The platform rejects dates more than 1 h in the past. */
    startDate: z.date().optional(),
    /** One-off amount charged at set-up. */
    initialCents: z.number().int().nonnegative().optional(),
  })
  .refine((r) => r.period !== 'SemiMonth' || (r.frequency ?? 1) === 1, {
    message: 'SemiMonth requires frequency 1',
    path: ['frequency'],
  })
  // frequency × period must not exceed one year (PROTOCOL §4.4): the platform always refuses more.
  .refine((r) => (r.frequency ?? 1) <= MAX_FREQUENCY[r.period ?? 'Month'], {
    message: 'frequency × period must not exceed one year',
    path: ['frequency'],
  });
export type RecurringBillCreateInput = z.input<typeof RecurringBillCreateSchema>;

export function billCreateBody(input: z.output<typeof BillCreateSchema>): Record<string, unknown> {
  return dropUndefined({
    group_id: input.groupId,
    price_cents: input.priceCents,
    description: input.description,
    currency: input.currency,
    units: input.units,
    period_started_at: input.periodStartedAt?.toISOString(),
    period_ended_at: input.periodEndedAt?.toISOString(),
    third_party: input.thirdParty,
  });
}

export function recurringBillCreateBody(input: z.output<typeof RecurringBillCreateSchema>): Record<string, unknown> {
  return dropUndefined({
    group_id: input.groupId,
    price_cents: input.priceCents,
    description: input.description,
    currency: input.currency,
    period: input.period,
    frequency: input.frequency,
    cycles: input.cycles,
    start_date: input.startDate?.toISOString(),
    initial_cents: input.initialCents,
  });
}

function dropUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}
