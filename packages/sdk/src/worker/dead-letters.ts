/**
 * Dead letters: jobs that failed every attempt and wait for a person. Listed across job
 * types, newest first, with what locates them (tenant, group, and for sync jobs the entity
 * and Connec! id).
 */
import { duplicateCheckPending } from '../billing/duplicates.js';
import { subscriptionInDoubt } from '../billing/subscribe.js';
import type { Logger } from '../core/types.js';
import { BillingError } from '../errors/index.js';
import type { JobRecord, StorageAdapter } from '../storage/adapter.js';
import { isStorableText } from '../storage/validation.js';
import { recordDiscardedFailure } from '../sync/control.js';
import { connecIdOf, isObject } from '../sync/records.js';

export interface DeadLetter {
  jobId: string;
  type: string;
  tenant: string | null;
  groupId: string | null;
  /** The sync entity of a record job; null for other jobs. */
  entity: string | null;
  /** The Connec! record of a record job; null for other jobs. */
  connecId: string | null;
  attempts: number;
  error: { message: string; code?: string | undefined } | null;
  failedAt: Date;
}

export interface DeadLetterFilter {
  tenant?: string;
  /** Only the jobs of this group (a job without a group never matches). */
  groupId?: string;
  /** At most this many, newest first. Default 100. */
  limit?: number;
}

/**
 * The newest dead letters of `types` (each type's own newest, so a limit never hides recent ones
 * behind old ones). A filter that is not one (not an object, `limit` not a positive integer, a `tenant`,
 * `groupId` or type that is not a string storage can hold) is refused with the error `invalid`
 * builds, before storage is asked: the caller's mistake, not a storage failure.
 */
export async function listDeadLetters(
  storage: StorageAdapter,
  types: readonly string[],
  filter: DeadLetterFilter = {},
  invalid: (message: string) => Error = (message) => new TypeError(message),
): Promise<DeadLetter[]> {
  // From JavaScript: `null` (or a string) is no filter, not a TypeError thrown while reading it.
  if (typeof filter !== 'object' || filter === null) throw invalid('deadLetters: the filter must be an object');
  const { tenant, groupId } = filter;
  const limit = filter.limit ?? 100;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) throw invalid(`deadLetters: limit must be a positive integer (got ${String(limit)})`);
  // A value storage cannot hold (a NUL character, an unpaired surrogate) names no job: refused
  // here like a wrong type, not by the adapter as a StorageError.
  for (const [key, value] of [['tenant', tenant], ['groupId', groupId]] as const) {
    if (value !== undefined && (typeof value !== 'string' || !isStorableText(value))) throw invalid(`deadLetters: ${key} must be a string without NUL characters or unpaired surrogates`);
  }
  for (const type of types) {
    if (typeof type !== 'string' || !isStorableText(type)) throw invalid('deadLetters: type must be a string without NUL characters or unpaired surrogates');
  }
  const out: DeadLetter[] = [];
  for (const type of types) {
    const jobs = await storage.jobs.listDead({ type, ...(tenant !== undefined ? { tenant } : {}), ...(groupId !== undefined ? { groupId } : {}), limit, newestFirst: true });
    for (const job of jobs) {
      // An adapter written before the `groupId` filter ignores it: its other groups' jobs are not this group's.
      if (groupId !== undefined && job.groupId !== groupId) continue;
      const p = isObject(job.payload) ? job.payload : {};
      const record = isObject(p.record) ? p.record : null;
      out.push({
        jobId: job.id,
        type: job.type,
        tenant: job.tenant,
        groupId: job.groupId,
        entity: typeof p.entity === 'string' ? p.entity : null,
        connecId: record ? connecIdOf(record.id) : typeof p.fetchId === 'string' ? p.fetchId : null,
        attempts: job.attempts,
        error: job.lastError,
        failedAt: job.updatedAt,
      });
    }
  }
  out.sort((a, b) => b.failedAt.getTime() - a.failedAt.getTime());
  return out.slice(0, limit);
}

/** The dead job `jobId` when it is one of `types` (any type when omitted); null for an id that is not a string (untyped JavaScript). */
async function deadJob(storage: StorageAdapter, jobId: string, types: readonly string[] | undefined): Promise<JobRecord | null> {
  if (typeof jobId !== 'string') return null;
  const job = await storage.jobs.get(jobId);
  return job !== null && job.status === 'dead' && (types === undefined || types.includes(job.type)) ? job : null;
}

/**
 * Puts the dead job `jobId` back in the queue when it is one of `types` (any type when omitted,
 * without reading it first: `jobs.requeue` refuses a job that is not dead); false, and nothing
 * changes, for an id that is not a string, an unknown job, one of another type or one not dead.
 */
export async function retryDeadLetter(storage: StorageAdapter, jobId: string, types?: readonly string[]): Promise<boolean> {
  if (typeof jobId !== 'string') return false;
  if (types !== undefined && (await deadJob(storage, jobId, types)) === null) return false;
  return storage.jobs.requeue(jobId);
}

/**
 * Deletes the dead job `jobId` when it is one of `types` (any type when omitted): false, and
 * nothing changes, for an id that is not a string, an unknown job, one of another type, or one
 * that is not dead (`jobs.discard` checks that again atomically: a job retried or claimed
 * meanwhile stays). Logs `message` with the job's id and type, never its payload (personal data).
 *
 * Refuses (`BillingError`, nothing changes) a dead billing job whose discard could leave a
 * customer billed for something nothing records or cancels, unless `force` (the operator checked
 * the group's bills on the platform), which is logged as a warning naming the group:
 * - a `billing.subscribe` whose group's subscription is in doubt (`subscriptionInDoubt`): an
 *   attempt may have created a recurring bill that nothing recorded, and only a retry of the job
 *   reconciles it;
 * - a `billing.check_duplicates` that still had a duplicate to look for (`duplicateCheckPending`):
 *   nothing else looks for the bill a late POST may have left.
 *
 * A dead import or poll is first noted as its group's last failure (`recordDiscardedFailure`):
 * here, not in `mno.sync`, so the status endpoint stays truthful whichever API discarded it,
 * `mno.worker`'s included, and a worker an app builds itself with `createWorker` too.
 */
export async function discardDeadLetter(
  storage: StorageAdapter,
  logger: Logger,
  jobId: string,
  options: { types?: readonly string[]; message: string; force?: boolean },
): Promise<boolean> {
  const job = await deadJob(storage, jobId, options.types);
  if (job === null) return false;
  const risk = await billingRisk(storage, job);
  if (risk && options.force !== true) throw new BillingError(`discardDeadLetter: the ${job.type} job ${job.id} is not discarded: ${risk.refusal}`);
  await recordDiscardedFailure(storage, job);
  if (!(await storage.jobs.discard(jobId))) return false;
  if (risk) logger.warn(`${options.message} (forced: ${risk.warning})`, { jobId: job.id, type: job.type, groupId: job.groupId });
  else logger.info(options.message, { jobId: job.id, type: job.type });
  return true;
}

/** Why discarding the dead billing job `job` could leave a customer wrongly billed; null when it cannot. */
async function billingRisk(storage: StorageAdapter, job: JobRecord): Promise<{ refusal: string; warning: string } | null> {
  const group = `group ${job.groupId ?? '?'} (tenant ${job.tenant ?? '?'})`;
  const force = 'Pass { force: true } only once you have checked the group\'s bills on the platform yourself';
  if (await subscriptionInDoubt(storage, job)) {
    return {
      refusal:
        `an attempt of it may have created a recurring bill for ${group} that nothing recorded. ` +
        'Retry it with mno.worker.retryDeadLetter: the retry reconciles first (it adopts that bill, or cancels it when onCompanyCreated now returns no plan for the company or the group has ended). ' +
        force,
      warning: "its group's subscription was in doubt; a recurring bill may be live and unrecorded",
    };
  }
  const pending = await duplicateCheckPending(storage, job);
  if (pending !== null) {
    return {
      refusal:
        `it is the only check for ${pending} for ${group}, and nothing else will cancel such a duplicate. ` +
        'Retry it with mno.worker.retryDeadLetter once the Account API answers again. ' +
        force,
      warning: `the duplicate check of its group did not run; ${pending} may be live`,
    };
  }
  return null;
}
