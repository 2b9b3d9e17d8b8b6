/**
 * `promise`, or a rejection with `late()`'s error once `ms` pass without it settling (the timer
 * cleared as soon as it settles). `late` runs when the deadline passes (to abort the work, say).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Waits `ms`; rejects with the signal's reason as soon as `signal` aborts (or at once if it already has).
 * A wait longer than a timer holds (a long `Retry-After`, an uncapped backoff) is armed in slices,
 * counted down rather than measured on the wall clock, which a clock step would stretch or cut.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let left = Number.isNaN(ms) ? 0 : Math.max(ms, 0);
    const arm = (): ReturnType<typeof setTimeout> => {
      const slice = Math.min(left, MAX_TIMER_MS);
      left -= slice;
      return setTimeout(() => {
        if (left > 0) {
          timer = arm();
          return;
        }
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, slice);
    };
    let timer = arm();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
