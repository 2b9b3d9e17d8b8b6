/**
 * The `billing.check_duplicates` job: the late half of exactly-once billing.
 *
 * A bill-creating POST whose answer was lost (a timeout, a worker or process that died) may
 * reach the platform long after the claim that covered it expired. The retry that took the
 * claim over lists the group's bills, finds nothing yet, and POSTs again; the late POST then
 * leaves a second bill. Every bill recorded under a taken-over claim therefore schedules this
 * check (`duplicateCheckDelayMs` later), which cancels what the late POST created:
 * - a subscription: the group's active recurring bills matching the recorded plan
 *   (`matchesPlan`) other than the recorded one, whose start date is one an attempt of this
 *   subscription sent: the first attempt's (the ledger's intent) or the recorded bill's (a
 *   trial end is the same for every attempt). A recurring bill the app creates for the same
 *   plan starts at another instant and is left alone, unless it starts at that same trial end.
 *   (A POST of a middle attempt, itself taken over and lost, starting "now", is not caught.)
 * - a charge: the group's bills matching the charge's intent (`matchesIntent`) other than the
 *   recorded one and owned by no idempotency key. Before cancelling one, the check makes the
 *   charge's key its owner (the claim-once `chargebill:` entry): a charge of another key that
 *   created the very same bill and is about to claim it then finds it taken and retries, as
 *   when a reconciliation adopted its bill, instead of reporting a cancelled bill as created.
 * - a group found ended (cancelled in storage, or `terminated`/`cancelled` on the platform) by
 *   a subscription run while an earlier attempt's claim was unrecorded (its POST's outcome
 *   unknown): the group's live recurring bills matching that attempt's plan (the ledger's
 *   intent), whatever their start date, as long as the group is still ended and no bill is
 *   recorded for it. Nothing of a live group is ever cancelled.
 * It changes nothing unless the ledger still records the checked bill.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AccountClient } from '../account/client.js';
import { type JobHandler, JobTypes, type Logger } from '../core/types.js';
import type { JobRecord, StorageAdapter } from '../storage/adapter.js';
import { type BillOwnerIntent, billOwnerOf, chargeBillLedgerKey, chargeLedgerKey, type ChargeIntent, matchesIntent } from './charge.js';
import type { BillingConfig } from './config.js';
import { BillingError, NotFoundError } from '../errors/index.js';
import {
  accountOrDefer,
  billIdOf,
  ENDED_GROUP_STATUSES,
  isRecurringIntent,
  matchesPlan,
  type RecurringIntent,
  subscriptionLedgerKey,
} from './subscribe.js';

const PayloadSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('recurring'), tenant: z.string().min(1), groupId: z.string().min(1), billId: z.string().min(1).nullable() }),
  z.object({
    kind: z.literal('charge'),
    tenant: z.string().min(1),
    groupId: z.string().min(1),
    idempotencyKey: z.string().min(1),
    billId: z.string().min(1),
  }),
  z.object({ kind: z.literal('ended-group'), tenant: z.string().min(1), groupId: z.string().min(1) }),
]);

export interface DuplicateCheckDeps {
  storage: StorageAdapter;
  account(tenant: string): AccountClient;
  config: BillingConfig;
  logger: Logger;
}

export interface DuplicateCheckOutcome {
  /** Ids of the bills (or recurring bills) cancelled as duplicates. */
  cancelled: string[];
}

type Target = z.infer<typeof PayloadSchema>;

/**
 * What the ledger still records for a check, read before the platform is asked: the checked
 * bill of a subscription or a charge (with its intent), or the ended group's unrecorded attempt.
 * Null when the ledger moved on (a later run recorded something else, or nothing was sent): the
 * check has nothing left to cancel.
 */
type StillRecorded =
  | { kind: 'ended-group'; intent: RecurringIntent }
  | { kind: 'recurring'; intent: RecurringIntent }
  | { kind: 'charge'; intent: ChargeIntent; chargedAt: Date };

async function stillRecorded(storage: StorageAdapter, target: Target): Promise<StillRecorded | null> {
  if (target.kind === 'ended-group') {
    const entry = await storage.ledger.get(subscriptionLedgerKey(target.tenant, target.groupId));
    // A subscription recorded since is settled by `billing.subscribe` itself (a bill of a
    // cancelled group is cancelled once recorded); no plan: nothing was sent.
    return entry && entry.status !== 'done' && isRecurringIntent(entry.intent) ? { kind: 'ended-group', intent: entry.intent } : null;
  }
  if (target.kind === 'recurring') {
    const entry = await storage.ledger.get(subscriptionLedgerKey(target.tenant, target.groupId));
    const intent = entry?.intent as RecurringIntent | null | undefined;
    return entry?.status === 'done' && billIdOf(entry.outcome) === target.billId && intent?.kind === 'recurring' ? { kind: 'recurring', intent } : null;
  }
  const entry = await storage.ledger.get(chargeLedgerKey(target.tenant, target.idempotencyKey));
  const intent = entry?.intent as ChargeIntent | null | undefined;
  const recorded = entry?.outcome as { billId?: unknown } | null | undefined;
  return entry?.status === 'done' && recorded?.billId === target.billId && intent?.kind === 'charge' ? { kind: 'charge', intent, chargedAt: entry.createdAt } : null;
}

/**
 * What a dead `billing.check_duplicates` job still had to look for (text for an operator), from
 * storage alone; null when a run of it could cancel nothing (the ledger moved on, or its payload
 * is not one). Discarding a job for which this is not null can leave a customer billed twice:
 * nothing else looks for that duplicate again.
 */
export async function duplicateCheckPending(storage: StorageAdapter, job: Pick<JobRecord, 'type' | 'payload'>): Promise<string | null> {
  if (job.type !== JobTypes.billingCheckDuplicates) return null;
  const parsed = PayloadSchema.safeParse(job.payload);
  if (!parsed.success) return null;
  const target = parsed.data;
  const pending = await stillRecorded(storage, target);
  if (pending === null) return null;
  if (target.kind === 'ended-group') return 'a recurring bill that a subscription POST may have created late for the ended group';
  if (target.kind === 'recurring') return `a second recurring bill that a late subscription POST may have created beside the recorded ${target.billId ?? '"no plan"'}`;
  return `a second bill that a late POST of the charge may have created beside the recorded ${target.billId}`;
}

export function createDuplicateChecker(deps: DuplicateCheckDeps) {
  const { storage, logger } = deps;
  /** `signal`: the job's `ctx.signal`; every Account API call stops when it aborts. */
  return async function checkDuplicates(payload: unknown, signal?: AbortSignal): Promise<DuplicateCheckOutcome> {
    const parsed = PayloadSchema.safeParse(payload);
    if (!parsed.success) {
      throw new BillingError(`billing.check_duplicates: invalid job payload (${parsed.error.issues.map((i) => i.path.join('.')).join(', ')})`);
    }
    const target = parsed.data;
    const client = accountOrDefer(deps, target.tenant);
    const call = signal ? { signal } : {};
    const cancelled: string[] = [];

    const pending = await stillRecorded(storage, target);
    if (pending === null) return { cancelled };

    if (target.kind === 'ended-group' && pending.kind === 'ended-group') {
      const { intent } = pending;
      const group = await storage.groups.get(target.tenant, target.groupId);
      if (group?.status !== 'cancelled') {
        // Ended on the platform while its deletion webhook is late or lost; otherwise live.
        const platform = await client.groups.retrieve(target.groupId, call).catch((error: unknown) => {
          if (error instanceof NotFoundError) return null;
          throw error;
        });
        if (!platform || !ENDED_GROUP_STATUSES.has(platform.status ?? '')) return { cancelled };
      }
      for (const bill of await client.recurringBills.list({ groupId: target.groupId }, call)) {
        if (!matchesPlan(bill, intent)) continue;
        try {
          await client.recurringBills.cancel(bill.id, call);
        } catch (error) {
          const current = await client.recurringBills.retrieve(bill.id, call).catch(() => null);
          if (current?.status !== 'cancelled') throw error;
        }
        cancelled.push(bill.id);
        logger.warn('billing: recurring bill of an ended group cancelled (a subscription POST landed late)', { tenant: target.tenant, groupId: target.groupId, cancelledId: bill.id });
      }
      return { cancelled };
    }

    if (target.kind === 'recurring' && pending.kind === 'recurring') {
      const { intent } = pending;
      const bills = await client.recurringBills.list({ groupId: target.groupId }, call);
      // The start dates this subscription's attempts sent: the first attempt's (kept in the
      // ledger's intent by every takeover) and the recorded bill's (a trial end is the same for all).
      const recorded = bills.find((b) => b.id === target.billId);
      const starts = [Date.parse(intent.startDate), recorded?.startDate?.getTime()].filter((t): t is number => t !== undefined && !Number.isNaN(t));
      // Within the second: the platform stores a start date without its milliseconds (its answers
      // read `…:20.000Z`), cut or rounded, so the start an attempt sent comes back up to 1 s off.
      const sentByAnAttempt = (start: Date | null | undefined): boolean => !!start && starts.some((sent) => Math.abs(start.getTime() - sent) < 1000);
      // With "no plan" recorded (`billId` null), every bill an attempt sent is a twin.
      const twins = bills.filter((b) => b.id !== target.billId && matchesPlan(b, intent) && sentByAnAttempt(b.startDate));
      for (const twin of twins) {
        await client.recurringBills.cancel(twin.id, call);
        cancelled.push(twin.id);
        logger.warn('billing: duplicate recurring bill cancelled', { tenant: target.tenant, groupId: target.groupId, recurringBillId: target.billId, cancelledId: twin.id });
      }
      return { cancelled };
    }

    if (target.kind !== 'charge' || pending.kind !== 'charge') return { cancelled };
    const { intent } = pending;
    const bills = await client.bills.list({ groupId: target.groupId }, call);
    const matches = bills.filter((b) => b.id !== target.billId && matchesIntent(b, intent, pending.chargedAt, deps.config.charge.reconcileSkewMs));
    const owner = `billing.check_duplicates:${randomUUID()}`;
    for (const twin of matches) {
      // A bill some charge recorded (or is recording) is that charge's, however alike. Claimed
      // for this key first (claim-once), so that no charge can claim it after it is cancelled.
      const ownerKey = chargeBillLedgerKey(target.tenant, twin.id);
      const ownership: BillOwnerIntent = { kind: 'charge-bill', tenant: target.tenant, billId: twin.id, idempotencyKey: target.idempotencyKey };
      const claim = await storage.ledger.claim(ownerKey, { owner, ttlMs: deps.config.charge.claimTtlMs, intent: ownership });
      // Another key's bill stays. One of this key (taken by an earlier run of this check that
      // failed to cancel it, or by a stalled call of the key whose POST landed late) is a twin.
      if (billOwnerOf(claim.entry) !== target.idempotencyKey) continue;
      if (claim.state === 'claimed') await storage.ledger.complete(ownerKey, owner, { idempotencyKey: target.idempotencyKey, duplicate: true });
      await client.bills.cancel(twin.id, call);
      cancelled.push(twin.id);
      logger.warn('billing: duplicate bill cancelled', { tenant: target.tenant, groupId: target.groupId, idempotencyKey: target.idempotencyKey, billId: target.billId, cancelledId: twin.id });
    }
    return { cancelled };
  };
}

/** The `billing.check_duplicates` job handler. */
export function duplicateCheckJobHandler(check: ReturnType<typeof createDuplicateChecker>): JobHandler {
  return async (job, ctx) => {
    const outcome = await check(job.payload, ctx.signal);
    ctx.logger.debug('billing.check_duplicates done', { jobId: job.id, ...outcome });
  };
}
