/** Largest CRM_WORKER_CONCURRENCY accepted: more parallel jobs than a CRM worker ever needs. */
export const MAX_WORKER_CONCURRENCY = 256;

/**
 * `CRM_WORKER_CONCURRENCY`: jobs run at once by one worker process. Unset or empty: `fallback`.
 * Otherwise a whole number from 1 to 256 (surrounding spaces allowed); anything else (`four`,
 * `2.5`, `0`, `1e3`) throws, so that the worker refuses to start instead of running with NaN
 * (`Number('four')`), which never runs a job.
 */
export function workerConcurrencyFromEnv(value: string | undefined, fallback = 4): number {
  const text = value?.trim() ?? '';
  if (text === '') return fallback;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_WORKER_CONCURRENCY) {
    throw new Error(`CRM_WORKER_CONCURRENCY must be a whole number from 1 to ${MAX_WORKER_CONCURRENCY} (got ${JSON.stringify(value)}).`);
  }
  return n;
}
