/**
 * The longest wait a `Retry-After` (or a deferral's `retryInMs`) can impose on a job: a server
 * may send any number of seconds, and a date past year 9999 is one no storage records (the
 * failure could then not be recorded at all, and the job would never back off or die). 24 h.
 */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * The wait a server asked for (`Retry-After`, as `retryAfterMs`) on `error` or along its
 * `cause` chain (a few levels deep), capped at `MAX_RETRY_AFTER_MS`; null when none.
 */
export function requestedRetryAfterMs(error: unknown): number | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const value = (current as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.min(value, MAX_RETRY_AFTER_MS);
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
