/**
 * Purging a cancelled group's sync state (CONNECTORS §F14, account deletion): every id map
 * of the group (`idMaps.purgeGroup`), every cursor (`cursors.list` + `cursors.reset`) and every
 * dead letter of its sync (`jobs.listDead` + `jobs.discard`).
 *
 * Runs as the `sync.purge` job, which the group-deletion webhook enqueues (deduplicated per
 * group) once the group is cancelled, or directly through `mno.sync.purgeGroup`. Rules:
 * - Only a `cancelled` group is purged. An active (or unknown) group is refused: the job
 *   finishes without touching anything, the API throws `GroupPurgeRefusedError`.
 * - It holds the group's import lock (the one imports and polls take), so it never runs
 *   beside an import that would write maps and checkpoints behind it: while one runs, the
 *   job is deferred and the API throws `ImportBusyError`.
 * - Idempotent: a redelivered job or a second call removes nothing more and reports zeros.
 * - Swept once more later. A record job or a push that read the group as active just before
 *   the cancellation can still write an id map after the purge (they take record locks, not
 *   the group lock). A purge therefore stores one `sync.purge` sweep job (payload
 *   `sweep: true`, one per group) due `sweepDelayMs` later, past the record locks' lease: it
 *   removes what such a straggler wrote, and schedules nothing further.
 * - Stops between two statements when its signal aborts (the worker's shutdown or lost lease,
 *   or the caller's `signal`), throwing `SyncError`: what it removed stays removed, and the
 *   job (or a second call) finishes the rest. A long purge keeps the group lock (and the job's
 *   lease) alive as an import does.
 */
import { randomUUID } from 'node:crypto';
import { JobDeferral, type JobHandler, JobTypes, type Logger } from '../core/types.js';
import { SyncError } from '../errors/index.js';
import { takeOrGiveBack } from '../internal/give-back.js';
import type { StorageAdapter } from '../storage/adapter.js';
import { groupLockRenewer, groupSyncLockKey, ImportBusyError } from './engine.js';
import type { SyncEvent } from './observe.js';
import { isObject } from './records.js';

/** What a purge removed. */
export interface GroupPurgeResult {
  tenant: string;
  groupId: string;
  /** Id maps removed. */
  idMaps: number;
  /** Cursors (import checkpoints, poll cursors, …) reset. */
  cursors: number;
  /**
   * Dead letters of the group's sync discarded (record jobs hold the Connec! record, personal
   * data of a deleted account; dead imports and polls). Billing dead letters stay: a duplicate
   * check of an ended group is exactly about that group's bills.
   */
  deadLetters: number;
}

/** `mno.sync.purgeGroup` refused: the group is not cancelled (`active`) or not known (`unknown_group`). */
export class GroupPurgeRefusedError extends SyncError {
  readonly reason: 'active' | 'unknown_group';
  constructor(tenant: string, groupId: string, reason: 'active' | 'unknown_group') {
    super(
      reason === 'active'
        ? `Refusing to purge the sync state of group "${groupId}" (tenant "${tenant}"): the group is active; only a cancelled group is purged`
        : `Refusing to purge the sync state of group "${groupId}" (tenant "${tenant}"): unknown group`,
    );
    this.reason = reason;
  }
}

export interface GroupPurgeDeps {
  storage: StorageAdapter;
  logger: Logger;
  emit: (event: SyncEvent) => void;
  instanceId: string;
  /** Lease of the group lock while purging (the engine's `importLockTtlMs`). */
  lockTtlMs: number;
  /** Delay of the sweep after a purge: past the lease of the record locks (twice the engine's `lockTtlMs`). */
  sweepDelayMs: number;
  clock: () => Date;
}

type PurgeOutcome =
  | ({ status: 'purged' } & GroupPurgeResult)
  | { status: 'refused'; reason: 'active' | 'unknown_group' }
  | { status: 'busy' };

/** The dead letters a purge discards: the group's sync jobs (not billing or account ones). */
const PURGED_DEAD_LETTER_TYPES = [JobTypes.connecRecord, JobTypes.syncImport, JobTypes.syncPoll] as const;
const DEAD_LETTER_PAGE = 100;
/** Dead letters read at once from an adapter that ignores `listDead`'s `groupId` filter. */
const UNFILTERED_DEAD_LETTER_SCAN = 10_000;

/** First delay before a purge deferred by a running import is tried again (doubles per attempt, max 10 min). */
const BUSY_RETRY_MS = 15_000;

export function createGroupPurge(deps: GroupPurgeDeps): {
  /** `mno.sync.purgeGroup`: throws `GroupPurgeRefusedError` or `ImportBusyError` instead of purging. */
  purgeGroup(args: { tenant: string; groupId: string; signal?: AbortSignal }): Promise<GroupPurgeResult>;
  /** The `sync.purge` job handler. */
  handler: JobHandler;
} {
  const { storage, logger } = deps;

  /**
   * Discards the group's dead sync jobs, a page at a time. An adapter written before the
   * `groupId` filter of `listDead` answers the tenant's dead letters of every group: once a
   * full page shows it (another group's job in it), up to `UNFILTERED_DEAD_LETTER_SCAN` are
   * read at once and only this group's are discarded (best effort beyond that many).
   */
  async function discardDeadLetters(tenant: string, groupId: string, keepAlive: () => Promise<void>): Promise<number> {
    let discarded = 0;
    for (const type of PURGED_DEAD_LETTER_TYPES) {
      let limit = DEAD_LETTER_PAGE;
      for (;;) {
        const page = await storage.jobs.listDead({ tenant, type, groupId, limit });
        if (limit === DEAD_LETTER_PAGE && page.length === limit && page.some((job) => job.groupId !== groupId)) {
          limit = UNFILTERED_DEAD_LETTER_SCAN;
          continue;
        }
        const mine = page.filter((job) => job.groupId === groupId && job.tenant === tenant && job.type === type);
        let gone = 0;
        for (const job of mine) {
          await keepAlive();
          if (await storage.jobs.discard(job.id)) gone++;
        }
        discarded += gone;
        // A page none of which could be discarded (retried meanwhile) would come back as it was.
        if (gone === 0 || page.length < limit) break;
      }
    }
    return discarded;
  }

  async function purge(tenant: string, groupId: string, sweep: boolean, run: { signal?: AbortSignal | undefined; heartbeat?: () => Promise<boolean> }): Promise<PurgeOutcome> {
    const stopped = () => new SyncError(`Purge of group "${groupId}" (tenant "${tenant}") aborted; what it removed stays removed, purge again to finish`, { cause: run.signal?.reason });
    if (run.signal?.aborted) throw stopped();
    const lockKey = groupSyncLockKey(tenant, groupId);
    const owner = `${deps.instanceId}:purge:${randomUUID()}`;
    const taken = await takeOrGiveBack(
      () => storage.locks.acquire(lockKey, owner, deps.lockTtlMs),
      () => storage.locks.release(lockKey, owner),
    );
    if (!taken) return { status: 'busy' };
    const renew = groupLockRenewer({
      storage,
      key: lockKey,
      owner,
      ttlMs: deps.lockTtlMs,
      heartbeat: run.heartbeat,
      lost: (what) =>
        new SyncError(what === 'lock' ? `Lost the sync lock of group "${groupId}" (tenant "${tenant}") while purging it; purge again to finish` : 'Lost the lease of the sync.purge job'),
    });
    /** Between two statements: stop when aborted; renew the lock (and the job's lease) now and then. */
    const keepAlive = async () => {
      if (run.signal?.aborted) throw stopped();
      await renew();
    };
    try {
      // Read under the lock: what is purged is what the status says now.
      const group = await storage.groups.get(tenant, groupId);
      if (!group) return { status: 'refused', reason: 'unknown_group' };
      if (group.status !== 'cancelled') return { status: 'refused', reason: 'active' };
      const idMaps = await storage.idMaps.purgeGroup(tenant, groupId);
      const cursors = await storage.cursors.list(tenant, groupId);
      for (const cursor of cursors) {
        await keepAlive();
        await storage.cursors.reset({ tenant, groupId, entity: cursor.entity, kind: cursor.kind });
      }
      const deadLetters = await discardDeadLetters(tenant, groupId, keepAlive);
      await keepAlive();
      const result: GroupPurgeResult = { tenant, groupId, idMaps, cursors: cursors.length, deadLetters };
      if (sweep) {
        // Nothing to report unless a straggler wrote behind the first purge.
        if (idMaps + cursors.length + deadLetters > 0) {
          logger.info('sync: sweep after a purge removed state written while the group was being cancelled', { tenant, groupId, idMaps, cursors: cursors.length, deadLetters });
          deps.emit({ type: 'group.purged', ...result });
        }
        return { status: 'purged', ...result };
      }
      // Stored before the purge counts as done: should this fail, the job (or the caller)
      // retries the whole purge, which is idempotent.
      await storage.jobs.enqueue({
        type: JobTypes.syncPurge,
        tenant,
        groupId,
        payload: { tenant, groupId, sweep: true },
        dedupeKey: `${JobTypes.syncPurge}.sweep:${tenant}:${groupId}`,
        runAt: new Date(deps.clock().getTime() + deps.sweepDelayMs),
      });
      logger.info('sync: cancelled group purged', { tenant, groupId, idMaps, cursors: cursors.length, deadLetters });
      deps.emit({ type: 'group.purged', ...result });
      return { status: 'purged', ...result };
    } finally {
      await storage.locks.release(lockKey, owner).catch(() => false);
    }
  }

  const handler: JobHandler = async (job, ctx) => {
    if (job.tenant === null || job.groupId === null) throw new SyncError(`sync.purge job ${job.id} has no tenant/group`);
    const sweep = isObject(job.payload) && job.payload.sweep === true;
    const outcome = await purge(job.tenant, job.groupId, sweep, { signal: ctx.signal, heartbeat: ctx.heartbeat });
    if (outcome.status === 'busy') {
      // An import or poll of the group is still running (started before the cancellation):
      // purge once it has stopped, or once its lock expired if its worker died.
      const delay = Math.min(600_000, BUSY_RETRY_MS * 2 ** Math.max(0, job.attempts - 1));
      throw new JobDeferral('an import or poll of the group is running', { retryInMs: delay });
    }
    if (outcome.status === 'refused') {
      logger.warn('sync: purge refused; the group is not cancelled, nothing removed', {
        tenant: job.tenant,
        groupId: job.groupId,
        reason: outcome.reason,
      });
    }
  };

  return {
    async purgeGroup({ tenant, groupId, signal }) {
      const outcome = await purge(tenant, groupId, false, { signal });
      if (outcome.status === 'busy') {
        throw new ImportBusyError(`An import or poll of group "${groupId}" (tenant "${tenant}") is running; purge once it has stopped`);
      }
      if (outcome.status === 'refused') throw new GroupPurgeRefusedError(tenant, groupId, outcome.reason);
      const { status: _status, ...result } = outcome;
      return result;
    },
    handler,
  };
}
