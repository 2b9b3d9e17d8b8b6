/**
 * Scheduling of the `billing.check_duplicates` job (see `./duplicates.ts`), apart so that the
 * charge and subscription code can enqueue it without importing the checker.
 */
import { JobTypes } from '../core/types.js';
import type { StorageAdapter } from '../storage/adapter.js';
import { keyPart } from '../internal/keys.js';

/** What a duplicate check looks at: the recorded bill of one subscription or one charge. */
export type DuplicateCheckTarget =
  /** `billId` null: the group's subscription was recorded as "no plan" over a taken-over attempt that had one. */
  | { kind: 'recurring'; tenant: string; groupId: string; billId: string | null }
  | { kind: 'charge'; tenant: string; groupId: string; idempotencyKey: string; billId: string }
  /**
   * A group found cancelled (or ended on the platform) while a subscription attempt's claim was
   * unrecorded: that attempt's POST may land late, after the deletion's bill passes.
   */
  | { kind: 'ended-group'; tenant: string; groupId: string };

/**
 * Enqueues the check of a bill recorded after an unknown outcome (a claim taken over from an
 * owner that may have POSTed): the earlier POST can still reach the platform after it.
 */
export async function scheduleDuplicateCheckJob(
  storage: StorageAdapter,
  target: DuplicateCheckTarget,
  now: Date,
  delayMs: number,
): Promise<void> {
  await storage.jobs.enqueue({
    type: JobTypes.billingCheckDuplicates,
    tenant: target.tenant,
    groupId: target.groupId,
    payload: { ...target },
    dedupeKey: `${JobTypes.billingCheckDuplicates}:${target.kind}:${target.tenant}:${target.kind === 'ended-group' ? keyPart(target.groupId) : target.billId !== null ? keyPart(target.billId) : `no-plan:${keyPart(target.groupId)}`}`,
    runAt: new Date(now.getTime() + delayMs),
  });
}
