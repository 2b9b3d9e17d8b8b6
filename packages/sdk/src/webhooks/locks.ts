/**
 * Storage locks shared by the account webhooks and SSO provisioning.
 *
 * The seats lock (`seatsLockKey`) serialises every change of a group's active memberships
 * that is reported to `provisioning.onSeatsChanged`: the member removal webhook and an SSO
 * login that adds a member both hold it around membership write + recount + callback, so
 * the callbacks of one group run one after the other, each with the count its own write left,
 * and the last one always carries the real count.
 *
 * The user lock (`userLockKey`) serialises a member removal with the SSO logins of that user.
 *
 * Lock order (no deadlock): the removal webhook and an SSO login take the user lock first and
 * the seats lock second; the group deletion takes only its group lock; nobody holding the
 * seats lock takes another lock.
 */
import type { Logger } from '../core/types.js';
import { takeOrGiveBack } from '../internal/give-back.js';
import { sleep } from '../internal/sleep.js';
import { monotonicMs } from '../internal/time.js';
import type { StorageAdapter } from '../storage/adapter.js';

/**
 * Key of the per-user lock: held by the member removal webhook for its whole run, and by an
 * SSO login from the user record to `onLogin`, so that neither undoes the other.
 */
export function userLockKey(tenant: string, uid: string): string {
  return `webhook:user:${tenant}:${uid}`;
}

/** Key of the per-group lock a group deletion holds for its whole run (concurrent deliveries wait). */
export function groupLockKey(tenant: string, groupId: string): string {
  return `webhook:group:${tenant}:${groupId}`;
}

/** Key of the per-group lock held around a seat change (membership write + recount + `onSeatsChanged`). */
export function seatsLockKey(tenant: string, groupId: string): string {
  return `seats:${tenant}:${groupId}`;
}

export interface StorageLockOptions {
  /** Unique per run (process + request). */
  owner: string;
  /** Lease: the lock frees itself after this long if the holder dies. */
  ttlMs: number;
  /** How long to wait for a held lock before giving up. */
  waitMs: number;
  logger: Logger;
  /**
   * Renew the lease every third of `ttlMs` while `body` runs, so that a slow body (hooks,
   * `onLogin`) keeps the lock. `held()` turns false once a renewal was refused, or none was
   * confirmed for three quarters of the lease (storage unreachable): another holder may have
   * it soon. Without `renew`, it turns false three quarters of the lease after the take.
   */
  renew?: boolean;
}

/** What `body` can ask of the lock it runs under. */
export interface StorageLease {
  /** False once the lock may have passed to someone else (see `StorageLockOptions.renew`). */
  held(): boolean;
}

/** Runs `body` under the storage lock `key`; `{ acquired: false }` when it was not free within `waitMs`. */
export async function withStorageLock<T>(
  storage: StorageAdapter,
  key: string,
  options: StorageLockOptions,
  body: (lease: StorageLease) => Promise<T>,
): Promise<{ acquired: true; value: T } | { acquired: false }> {
  // The wait is measured on a monotonic clock (a wall clock stepped back must not stretch it);
  // the lease, stored as a wall time, on the wall clock.
  const until = monotonicMs() + options.waitMs;
  for (let i = 0; ; i++) {
    const askedAt = Date.now();
    const taken = await takeOrGiveBack(
      () => storage.locks.acquire(key, options.owner, options.ttlMs),
      () => storage.locks.release(key, options.owner),
    );
    if (taken) {
      return { acquired: true, value: await runHeld(storage, key, options, askedAt, body) };
    }
    if (monotonicMs() >= until) return { acquired: false };
    await sleep(Math.min(20 * 2 ** Math.min(i, 5), 500));
  }
}

async function runHeld<T>(storage: StorageAdapter, key: string, options: StorageLockOptions, acquiredAt: number, body: (lease: StorageLease) => Promise<T>): Promise<T> {
  let confirmedAt = acquiredAt;
  let refused = false;
  let renewing = false;
  const timer = options.renew
    ? setInterval(
        () => {
          if (renewing || refused) return;
          renewing = true;
          const askedAt = Date.now();
          storage.locks
            .refresh(key, options.owner, options.ttlMs)
            .then(
              (ok) => {
                if (ok) confirmedAt = askedAt;
                else refused = true;
              },
              (error: unknown) => {
                options.logger.warn('maestrano: could not renew a lock', { lockKey: key, error: String(error) });
              },
            )
            .finally(() => {
              renewing = false;
            });
        },
        Math.max(50, Math.floor(options.ttlMs / 3)),
      )
    : null;
  // A confirmed take or renewal keeps the lock until then + ttlMs: held up to three quarters of
  // that (a margin for the storage's clock), however slow the next renewal is.
  const lease: StorageLease = {
    held: () => !refused && Date.now() - (options.renew ? confirmedAt : acquiredAt) < options.ttlMs * 0.75,
  };
  try {
    return await body(lease);
  } finally {
    if (timer) clearInterval(timer);
    await storage.locks.release(key, options.owner).catch((error: unknown) => {
      options.logger.warn('maestrano: could not release a lock (it expires on its own)', { lockKey: key, error: String(error) });
    });
  }
}
