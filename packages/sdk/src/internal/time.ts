/** `2026-11-29T13:54:50`, `2026-11-29 13:54:50.123`: an ISO date-time with no zone. */
const ZONELESS_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/**
 * Milliseconds of a Maestrano timestamp (NaN when unreadable). An ISO date-time without a
 * zone is UTC here, whatever the server's time zone: `Date.parse` alone reads it in local
 * time, which moves trial ends and session re-checks by the server's offset.
 */
export function parseUtcTimestamp(value: string): number {
  const v = value.trim();
  return Date.parse(ZONELESS_DATE_TIME.test(v) ? `${v.replace(' ', 'T')}Z` : v);
}

/**
 * Milliseconds on a clock that wall-clock steps (NTP corrections, a manual change) do not move:
 * for how long a wait has lasted. A deadline on `Date.now()` is stretched by an hour when the
 * clock is stepped back an hour, and a request waiting on it hangs that long. Leases stored as
 * wall times are still judged on the wall clock.
 */
export function monotonicMs(): number {
  return performance.now();
}
