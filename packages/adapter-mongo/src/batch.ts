/** How many per-key operations one batch call runs at a time. */
export const BATCH_CONCURRENCY = 8;

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and returns the results in
 * input order. Waits for every started call to settle before rejecting with the first
 * error, so no write of the batch is still running once the call has failed.
 */
export async function mapLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, limit = BATCH_CONCURRENCY): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let error: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (err) {
        if (!failed) {
          failed = true;
          error = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw error;
  return results;
}

/**
 * `mapLimited` that keeps what succeeded: the results in input order (undefined for a call
 * that failed or was not started after a failure) and the first error, if any, once every
 * started call has settled.
 */
export async function settleAll<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, limit = BATCH_CONCURRENCY): Promise<{ values: (R | undefined)[]; error?: unknown }> {
  const values: (R | undefined)[] = new Array(items.length).fill(undefined);
  let failure: { error: unknown } | undefined;
  await mapLimited(
    items.map((item, index) => ({ item, index })),
    async ({ item, index }) => {
      if (failure) return;
      try {
        values[index] = await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    },
    limit,
  );
  return failure ? { values, error: failure.error } : { values };
}
