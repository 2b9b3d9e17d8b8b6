/**
 * Exactly-once ad-hoc charges (checklist 2.1.2).
 *
 * Protocol, for one idempotency key (ledger key `charge:<tenant>:<idempotencyKey>`):
 * 1. Claim the key in the storage ledger, recording the intent (group, amount, …) BEFORE
 *    the POST. Of N concurrent callers exactly one wins.
 * 2. The winner POSTs the bill and records `{ billId }` as the outcome.
 * 3. Losers wait (polling the ledger) for the winner's outcome and return the same bill
 *    (`replayed: true`); past `charge.waitMs` they fail with `ChargeInProgressError`.
 * 4. A claim whose owner died between the POST and recording the result expires after
 *    `charge.claimTtlMs`; the next call takes it over and reconciles first: it lists the
 *    group's bills and adopts the one matching the intent (see `matchesIntent`) instead of
 *    creating a second one. Before its own POST it refreshes the claim (the listing may have
 *    outlived it) and starts over if another call took the key meanwhile.
 * A definite refusal by the platform (4xx) releases the claim, so the key can be used again
 * (unless the claim was taken over from an earlier owner, whose POST may still land: then it
 * expires, and the next call reconciles first);
 * an unknown outcome (timeout, 5xx) keeps it claimed until reconciliation. So does a failure
 * to record a bill that was created (e.g. a storage outage after the POST): the caller gets
 * `ChargeOutcomeUnknownError`, never a bare storage error that would read as "nothing happened".
 *
 * Aborting (`options.signal`) before the POST is sent fails with `ConnectionError`
 * (`failure: 'aborted'`) and leaves no claim of this call behind: an already-aborted signal
 * fails before the key is claimed, a claim taken just before the abort is released (one taken
 * over from an earlier owner expires instead, as after a refusal), and an
 * abort while waiting for another call with the key takes nothing. An abort once the POST was
 * sent is an unknown outcome.
 *
 * Bill ownership: a bill id is the recorded outcome of at most one idempotency key. Before a
 * key records a bill (created or adopted), it claims the reverse ledger key
 * `chargebill:<tenant>:<billId>` with an intent naming the key; that claim-once entry (its
 * intent, which a takeover never changes) is the ownership. Reconciliation skips bills owned
 * by another key, so two charges of the same thing cannot end up sharing one bill. A bill
 * whose creator died before claiming it has no owner and stays adoptable by the creator's
 * retry. If another key adopted a bill in the instant between its creator's POST and the
 * creator's ownership claim, the creator records nothing and throws
 * `ChargeOutcomeUnknownError`; its retry (after `claimTtlMs`) skips that bill and charges again.
 *
 * The POST's timeouts are capped below the claim TTL (`claimedCallTimeouts`), so the owner
 * is done with the POST before another call can take the claim over and POST again.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AccountClient } from '../account/client.js';
import type { AccountTimeouts } from '../account/http.js';
import { type Bill, currencyCode } from '../account/resources.js';
import type { Logger } from '../core/types.js';
import {
  ApiError,
  ConnectionError,
  isMaestranoError,
  PayloadValidationError,
  RateLimitError,
  ResponseValidationError,
  ServerError,
} from '../errors/index.js';
import { sleep } from '../internal/sleep.js';
import { monotonicMs } from '../internal/time.js';
import type { JsonObject, LedgerEntry, StorageAdapter } from '../storage/adapter.js';
import { type BillingConfig, storableText } from './config.js';
import { scheduleDuplicateCheckJob } from './duplicate-job.js';
import {
  ChargeGroupCancelledError,
  ChargeInProgressError,
  ChargeOutcomeUnknownError,
  ChargeReconciliationError,
  IdempotencyKeyReuseError,
} from './errors.js';

export interface ChargeInput {
  /** Tenant (marketplace) name. */
  tenant: string;
  /** Maestrano group uid (`cld-…`). */
  groupId: string;
  /** Integer > 0. */
  priceCents: number;
  /** ISO 4217. */
  currency: string;
  description: string;
  /** Decimal > 0. Default 1. */
  units?: number;
  /** Pass-through costs (no commission). Default false. */
  thirdParty?: boolean;
  /** Both bounds are needed for the period to show on the invoice. */
  periodStart?: Date;
  periodEnd?: Date;
  /**
   * Stable for one logical charge (e.g. `sms-2030-05:<account>`): retries and replays of the
   * same charge must reuse it. 1-200 characters.
   */
  idempotencyKey: string;
}

export interface ChargeResult {
  billId: string;
  idempotencyKey: string;
  /**
   * `created`: this call created the bill. `replayed`: an earlier (or concurrent) call with
   * the key did, and its recorded outcome is returned. `reconciled`: an interrupted earlier
   * attempt had created it; this call found it and recorded it.
   */
  status: 'created' | 'replayed' | 'reconciled';
  /** The bill as the platform returned it; null for `replayed` (not fetched again). */
  bill: Bill | null;
}

export interface ChargeOptions {
  signal?: AbortSignal;
}

const ChargeInputSchema = z
  .strictObject({
    tenant: storableText(z.string().min(1)),
    groupId: storableText(z.string().min(1)),
    priceCents: z.number().int().positive(),
    currency: currencyCode,
    description: storableText(z.string().trim().min(1)),
    units: z.number().positive().optional(),
    thirdParty: z.boolean().optional(),
    periodStart: z.date().optional(),
    periodEnd: z.date().optional(),
    idempotencyKey: storableText(z.string().min(1).max(200)),
  })
  .refine((c) => !c.periodStart || !c.periodEnd || c.periodStart.getTime() <= c.periodEnd.getTime(), {
    message: 'periodStart must not be after periodEnd',
    path: ['periodEnd'],
  });

/** What is recorded in the ledger before the POST, and matched on reconciliation. */
export interface ChargeIntent extends JsonObject {
  kind: 'charge';
  tenant: string;
  groupId: string;
  priceCents: number;
  currency: string;
  description: string;
  units: number;
  thirdParty: boolean;
  periodStart: string | null;
  periodEnd: string | null;
}

const OutcomeSchema = z.object({ billId: z.string().min(1) });

/** The intent of a `chargebill:` entry: which idempotency key owns the bill. */
export interface BillOwnerIntent extends JsonObject {
  kind: 'charge-bill';
  tenant: string;
  billId: string;
  idempotencyKey: string;
}

export interface ChargeDeps {
  storage: StorageAdapter;
  account(tenant: string): AccountClient;
  /** The URL bills are POSTed to (named by the abort error when nothing was sent). */
  billsUrl(tenant: string): string;
  config: BillingConfig['charge'];
  /** Delay of the duplicate check scheduled after a charge recorded under a taken-over claim. */
  duplicateCheckDelayMs: number;
  /** Default: the system clock. */
  clock?: () => Date;
  /** Timeouts of the bill-creating POST (see `claimedCallTimeouts`); default: the client's. */
  createTimeouts?: Required<AccountTimeouts>;
  logger: Logger;
  instanceId: string;
}

export function chargeLedgerKey(tenant: string, idempotencyKey: string): string {
  return `charge:${tenant}:${idempotencyKey}`;
}

/** Ledger key recording which idempotency key owns a bill (see "Bill ownership" above). */
export function chargeBillLedgerKey(tenant: string, billId: string): string {
  return `chargebill:${tenant}:${billId}`;
}

/** The idempotency key that owns a bill per its `chargebill:` entry; null when unreadable. */
export function billOwnerOf(entry: LedgerEntry): string | null {
  const intent = entry.intent;
  if (typeof intent !== 'object' || intent === null || Array.isArray(intent)) return null;
  return intent.kind === 'charge-bill' && typeof intent.idempotencyKey === 'string' ? intent.idempotencyKey : null;
}

function sameIntent(a: unknown, b: ChargeIntent): boolean {
  if (typeof a !== 'object' || a === null) return false;
  const rec = a as Record<string, unknown>;
  return (Object.keys(b) as (keyof ChargeIntent)[]).every((k) => rec[k] === b[k]);
}

/** The same instant to the second: a platform may store times without their milliseconds. */
function sameInstant(a: Date | null, b: string | null): boolean {
  if (a === null || b === null) return a === null && b === null;
  return Math.floor(a.getTime() / 1000) === Math.floor(Date.parse(b) / 1000);
}

/**
 * The reconciliation matching rule: a bill of the intent's group that is not cancelled, has
 * the same price, currency, description (trimmed), units, third-party flag and period
 * bounds, and was created no earlier than the claim minus `reconcileSkewMs`. A matching bill
 * is adopted only when no other idempotency key owns it (see "Bill ownership" above).
 */
export function matchesIntent(bill: Bill, intent: ChargeIntent, claimedAt: Date, skewMs: number): boolean {
  return (
    bill.groupId === intent.groupId &&
    bill.status !== 'cancelled' &&
    bill.priceCents === intent.priceCents &&
    (bill.currency ?? '').toUpperCase() === intent.currency &&
    (bill.description ?? '').trim() === intent.description &&
    (bill.units ?? 1) === intent.units &&
    (bill.thirdParty ?? false) === intent.thirdParty &&
    sameInstant(bill.periodStartedAt, intent.periodStart) &&
    sameInstant(bill.periodEndedAt, intent.periodEnd) &&
    (bill.createdAt === null || bill.createdAt.getTime() >= claimedAt.getTime() - skewMs)
  );
}

/** 4xx other than a timeout or rate limit: the platform refused, nothing was created. */
function isDefiniteRefusal(error: unknown): boolean {
  if (error instanceof PayloadValidationError) return true;
  if (error instanceof RateLimitError) return true;
  if (error instanceof ServerError || error instanceof ConnectionError || error instanceof ResponseValidationError) {
    return false;
  }
  return error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 408;
}

export function createCharge(deps: ChargeDeps) {
  const { storage, config, logger } = deps;

  /**
   * Makes `idempotencyKey` the owner of `billId` unless another key already is: claim-once
   * on `chargebill:<tenant>:<billId>`. Ownership is the entry's intent (kept by takeovers),
   * so an entry left pending by a dead call of the same key still counts as ours, and one
   * of another key never becomes ours. Returns the owning key (ours on success; null when
   * the entry is unreadable).
   */
  async function claimBill(tenant: string, idempotencyKey: string, billId: string, owner: string): Promise<string | null> {
    const key = chargeBillLedgerKey(tenant, billId);
    const intent: BillOwnerIntent = { kind: 'charge-bill', tenant, billId, idempotencyKey };
    const claim = await storage.ledger.claim(key, { owner, ttlMs: config.claimTtlMs, intent });
    const ownerKey = billOwnerOf(claim.entry);
    // Only our own key's entry is completed; another key's (even one just taken over) is left as it is.
    if (ownerKey === idempotencyKey && claim.state === 'claimed') {
      await storage.ledger.complete(key, owner, { idempotencyKey });
    }
    return ownerKey;
  }

  /**
   * Looks for the bill an interrupted attempt of `idempotencyKey` may have created: a bill
   * matching the intent (`matchesIntent`) that this key owns, or else the only matching bill
   * no key owns, which then becomes this key's. Bills owned by other keys are never adopted.
   */
  async function reconcile(
    idempotencyKey: string,
    intent: ChargeIntent,
    claimedAt: Date,
    owner: string,
  ): Promise<Bill | null> {
    const bills = await deps.account(intent.tenant).bills.list({ groupId: intent.groupId });
    const matches = bills.filter((b) => matchesIntent(b, intent, claimedAt, config.reconcileSkewMs));
    if (matches.length === 0) return null;
    const entries = await Promise.all(matches.map((b) => storage.ledger.get(chargeBillLedgerKey(intent.tenant, b.id))));
    const ours = matches.filter((_, i) => entries[i] != null && billOwnerOf(entries[i]!) === idempotencyKey);
    const unowned = matches.filter((_, i) => entries[i] == null);
    const candidates = ours.length > 0 ? ours : unowned;
    if (candidates.length > 1) {
      throw new ChargeReconciliationError(
        idempotencyKey,
        candidates.map((b) => b.id),
        `Charge ${JSON.stringify(idempotencyKey)}: ${candidates.length} bills of group ${intent.groupId} that no other ` +
          'charge owns match the interrupted charge; cannot tell which one it created. Resolve it by hand (the key stays claimed).',
      );
    }
    const candidate = candidates[0];
    if (!candidate) {
      logger.debug('billing: the matching bills belong to other charges; not adopted', {
        idempotencyKey,
        billIds: matches.map((b) => b.id),
      });
      return null;
    }
    // Atomic: of two keys reconciling at once, one owns the bill; for the other it is not there.
    const ownerKey = await claimBill(intent.tenant, idempotencyKey, candidate.id, owner);
    return ownerKey === idempotencyKey ? candidate : null;
  }

  /**
   * Runs `record` (storing the ownership and outcome of a bill that exists on the platform).
   * Any failure there leaves the outcome unknown to the caller, never "nothing happened":
   * it becomes a `ChargeOutcomeUnknownError` (cause: the failure) and the key stays claimed
   * until `claimTtlMs`, after which a retry reconciles into the bill.
   */
  async function recording<T>(idempotencyKey: string, billId: string, record: () => Promise<T>): Promise<T> {
    try {
      return await record();
    } catch (error) {
      if (error instanceof ChargeOutcomeUnknownError) throw error;
      const what = error instanceof Error ? error.message : String(error);
      logger.error('billing: the bill exists but recording it failed', { idempotencyKey, billId, error: what });
      throw new ChargeOutcomeUnknownError(
        idempotencyKey,
        `Charge with idempotency key ${JSON.stringify(idempotencyKey)}: the bill may exist (${billId} was created on ` +
          `the platform) but recording it failed (${what}). Retry with the same key after ${config.claimTtlMs} ms ` +
          'to reconcile; it will not bill twice.',
        error,
      );
    }
  }

  async function complete(ledgerKey: string, owner: string, bill: Bill, idempotencyKey: string): Promise<void> {
    if (await storage.ledger.complete(ledgerKey, owner, { billId: bill.id })) return;
    // Our claim expired and was taken over. The new owner may have adopted this bill (owned by
    // this key), or listed before it existed and created another: then the key's outcome is
    // that one, and this bill is a twin its duplicate check cancels. Only the recorded bill
    // is the key's answer, so this call reports it, or that it does not know it yet.
    const entry = await storage.ledger.get(ledgerKey);
    const outcome = entry?.status === 'done' ? OutcomeSchema.safeParse(entry.outcome) : null;
    if (outcome?.success && outcome.data.billId === bill.id) return;
    logger.warn('billing: claim taken over; this call\'s bill is not the recorded outcome', {
      ledgerKey,
      billId: bill.id,
      recordedBillId: outcome?.success ? outcome.data.billId : null,
    });
    throw new ChargeOutcomeUnknownError(
      idempotencyKey,
      `Charge with idempotency key ${JSON.stringify(idempotencyKey)}: another call took the key over while this one ` +
        `ran${outcome?.success ? ` and recorded bill ${outcome.data.billId}` : ''}; retry with the same key for the recorded bill ` +
        '(it will not bill twice).',
      undefined,
    );
  }

  return async function charge(input: ChargeInput, options: ChargeOptions = {}): Promise<ChargeResult> {
    const parsed = ChargeInputSchema.safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('/'), message: i.message }));
      throw new PayloadValidationError(
        `Invalid charge: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        { issues },
      );
    }
    const c = parsed.data;
    const intent: ChargeIntent = {
      kind: 'charge',
      tenant: c.tenant,
      groupId: c.groupId,
      priceCents: c.priceCents,
      currency: c.currency,
      description: c.description,
      units: c.units ?? 1,
      thirdParty: c.thirdParty ?? false,
      periodStart: c.periodStart?.toISOString() ?? null,
      periodEnd: c.periodEnd?.toISOString() ?? null,
    };
    const client = deps.account(c.tenant); // unknown tenant fails here, before any write
    const ledgerKey = chargeLedgerKey(c.tenant, c.idempotencyKey);
    // Unique per call: the ledger treats a re-claim by the same owner as a refresh.
    const owner = `${deps.instanceId}:charge:${randomUUID()}`;
    // On a monotonic clock: a wall clock stepped back must not stretch the wait.
    const waitUntil = monotonicMs() + config.waitMs;

    // Nothing was sent by this call when these are thrown (see "Aborting" above).
    const aborted = (cause: unknown, waiting = false) =>
      new ConnectionError(
        `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)} was aborted ` +
          (waiting
            ? 'while waiting for another call with the same key; nothing was charged by this call'
            : 'before its bill was requested; nothing was charged and the key is not held by this call'),
        { service: 'account', failure: 'aborted', method: 'POST', url: deps.billsUrl(c.tenant), cause },
      );
    const signal = options.signal;

    const reuse = (entry: LedgerEntry) =>
      new IdempotencyKeyReuseError(
        c.idempotencyKey,
        `Idempotency key ${JSON.stringify(c.idempotencyKey)} was already used for a different charge` +
          ` (recorded ${entry.createdAt.toISOString()}); nothing was charged`,
      );

    claiming: for (let poll = 0; ; poll++) {
      // Before every claim: an aborted call takes no key (a claim would block it for claimTtlMs).
      if (signal?.aborted) throw aborted(signal.reason);
      const claim = await storage.ledger.claim(ledgerKey, { owner, ttlMs: config.claimTtlMs, intent });
      if (claim.state !== 'claimed' || claim.recovered) {
        if (!sameIntent(claim.entry.intent, intent)) throw reuse(claim.entry);
      }
      if (claim.state === 'done') {
        const outcome = OutcomeSchema.safeParse(claim.entry.outcome);
        if (!outcome.success) {
          throw new ChargeReconciliationError(c.idempotencyKey, [], `Charge ${JSON.stringify(ledgerKey)} has an unreadable recorded outcome`);
        }
        return { billId: outcome.data.billId, idempotencyKey: c.idempotencyKey, status: 'replayed', bill: null };
      }
      if (claim.state === 'pending') {
        if (monotonicMs() >= waitUntil) {
          throw new ChargeInProgressError(
            c.idempotencyKey,
            `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)} is in progress in another call` +
              ` (claim expires ${claim.entry.claimExpiresAt?.toISOString() ?? 'never'}); nothing was charged by this call, retry later`,
          );
        }
        try {
          await sleep(Math.min(25 * 2 ** Math.min(poll, 5), Math.max(1, waitUntil - monotonicMs())), signal);
        } catch (cause) {
          throw aborted(cause, true);
        }
        continue;
      }

      // We own the claim. Records a bill as this key's outcome (any failure there is an unknown
      // outcome, see `recording`). Under a taken-over claim the earlier owner's POST may still
      // reach the platform, so a later job cancels what it creates (`./duplicates.ts`); it is
      // stored before the outcome, so a failure leaves the key to a retry that schedules again.
      const record = (bill: Bill) =>
        recording(c.idempotencyKey, bill.id, async () => {
          if (claim.recovered) {
            const target = { kind: 'charge' as const, tenant: c.tenant, groupId: c.groupId, idempotencyKey: c.idempotencyKey, billId: bill.id };
            await scheduleDuplicateCheckJob(storage, target, deps.clock?.() ?? new Date(), deps.duplicateCheckDelayMs);
          }
          await complete(ledgerKey, owner, bill, c.idempotencyKey);
        });
      if (claim.recovered) {
        for (let lapses = 0; ; lapses++) {
          const found = await reconcile(c.idempotencyKey, intent, claim.entry.createdAt, owner);
          if (found) {
            await record(found);
            logger.info('billing: interrupted charge reconciled', { ledgerKey, billId: found.id });
            return { billId: found.id, idempotencyKey: c.idempotencyKey, status: 'reconciled', bill: found };
          }
          // The listing (with its GET retries) may have outlived the claim: refresh it, so the
          // POST starts with the full TTL, and never POST once another call took the key over.
          const refreshed = await storage.ledger.claim(ledgerKey, { owner, ttlMs: config.claimTtlMs, intent });
          if (refreshed.state !== 'claimed') continue claiming; // wait for, or replay, the other call's outcome
          if (!refreshed.recovered) break;
          // Our claim lapsed and we took it back: another call may have POSTed meanwhile; reconcile again.
          if (!sameIntent(refreshed.entry.intent, intent)) throw reuse(refreshed.entry);
          if (lapses >= 2) {
            throw new ChargeOutcomeUnknownError(
              c.idempotencyKey,
              `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)}: reconciliation kept outlasting the ` +
                `claim (${config.claimTtlMs} ms); nothing was charged by this call. Retry with the same key later.`,
              undefined,
            );
          }
        }
      }
      // Nothing of ours was sent: give the key back. Not a claim taken over from an earlier
      // owner: its POST may still reach the platform, and only a holder of a taken-over claim
      // reconciles first and has a late twin checked for (`./duplicates.ts`); it expires instead.
      const giveBack = async () => {
        if (!claim.recovered) await storage.ledger.release(ledgerKey, owner);
      };
      if (signal?.aborted) {
        await giveBack();
        throw aborted(signal.reason);
      }
      // A company that left the marketplace is not billed any more (checked here, not before
      // the claim, so that a charge recorded before the cancellation still replays).
      if ((await storage.groups.get(c.tenant, c.groupId))?.status === 'cancelled') {
        await giveBack();
        throw new ChargeGroupCancelledError(
          c.idempotencyKey,
          c.tenant,
          c.groupId,
          `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)}: group ${c.groupId} of tenant ${c.tenant} was cancelled; nothing was charged`,
        );
      }
      let bill: Bill;
      try {
        bill = await client.bills.create(
          {
            groupId: c.groupId,
            priceCents: c.priceCents,
            currency: c.currency,
            description: c.description,
            ...(c.units === undefined ? {} : { units: c.units }),
            ...(c.thirdParty === undefined ? {} : { thirdParty: c.thirdParty }),
            ...(c.periodStart === undefined ? {} : { periodStartedAt: c.periodStart }),
            ...(c.periodEnd === undefined ? {} : { periodEndedAt: c.periodEnd }),
          },
          {
            ...(signal ? { signal } : {}),
            ...(deps.createTimeouts ? { timeouts: deps.createTimeouts } : {}),
          },
        );
      } catch (error) {
        if (isDefiniteRefusal(error)) {
          await giveBack();
          throw error;
        }
        // Unknown outcome: look once for the bill; otherwise leave the claim for a later reconciliation.
        const found = await reconcile(c.idempotencyKey, intent, claim.entry.createdAt, owner).catch(() => null);
        if (found) {
          // Under a taken-over claim the bill found may be the earlier owner's, and ours may still land.
          await record(found);
          return { billId: found.id, idempotencyKey: c.idempotencyKey, status: 'reconciled', bill: found };
        }
        const what = isMaestranoError(error) ? error.message : 'unexpected failure';
        throw new ChargeOutcomeUnknownError(
          c.idempotencyKey,
          `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)}: outcome unknown (${what}). ` +
            `Retry with the same key after ${config.claimTtlMs} ms to reconcile; it will not bill twice.`,
          error,
        );
      }
      // Ownership first: from here on no other key can adopt the bill, and ours is on record
      // before the outcome is.
      const ownerKey = await recording(c.idempotencyKey, bill.id, () =>
        claimBill(c.tenant, c.idempotencyKey, bill.id, owner),
      );
      if (ownerKey !== c.idempotencyKey) {
        // Another key's reconciliation adopted the bill between our POST and this claim. It is
        // recorded there; this charge records nothing, so its retry (after the claim TTL)
        // skips that bill and charges again.
        logger.error('billing: bill created by this charge was adopted by another charge', {
          ledgerKey,
          billId: bill.id,
          adoptedBy: ownerKey,
        });
        throw new ChargeOutcomeUnknownError(
          c.idempotencyKey,
          `Charge with idempotency key ${JSON.stringify(c.idempotencyKey)}: the bill it created (${bill.id}) was ` +
            `meanwhile adopted by ${ownerKey === null ? 'another charge' : `the charge ${JSON.stringify(ownerKey)}`}; ` +
            'nothing was recorded for this key. ' +
            `Retry with the same key after ${config.claimTtlMs} ms: it will charge again.`,
          undefined,
        );
      }
      await record(bill);
      return { billId: bill.id, idempotencyKey: c.idempotencyKey, status: 'created', bill };
    }
  };
}

export type Charge = ReturnType<typeof createCharge>;
