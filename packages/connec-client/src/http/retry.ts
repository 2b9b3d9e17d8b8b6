import { z } from 'zod';
import type { MaestranoError } from '../errors.js';

/** Emitted before each retry. */
export interface RetryEvent {
  /** 1 for the first retry. */
  attempt: number;
  /** How long the client waits before retrying. */
  delayMs: number;
  method: string;
  /** The request URL, without credentials. */
  url: string;
  /** What went wrong on the previous attempt. */
  error: MaestranoError;
}

/**
 * When and how requests are retried. GET and PUT are retried; POST only when the call is marked
 * `idempotent`, or on a 429 (when listed in `statusCodes`), which Connec! answers without
 * processing the request. Retried failures: the listed statuses, timeouts and connection errors
 * (resets, refused connections, bodies cut short). Never retried: caller aborts, other statuses.
 */
export interface RetryPolicy {
  /** Retries after the first attempt. @default 2 */
  limit?: number;
  /** Statuses that are retried. @default 408, 429 and every 5xx */
  statusCodes?: readonly number[];
  /** First backoff delay; attempt n waits `baseDelayMs * 2^(n-1)`, capped by `maxDelayMs`. @default 500 */
  baseDelayMs?: number;
  /** Cap on a computed backoff delay. @default 30000 */
  maxDelayMs?: number;
  /** Randomise each backoff delay between 50 % and 100 % of its value. @default true */
  jitter?: boolean;
  /**
   * Longest `Retry-After` the client waits for. A longer one is not waited for: the
   * `RateLimitError`/`ServerError` is thrown with `retryAfterMs` so the caller can reschedule. @default 60000
   */
  maxRetryAfterMs?: number;
  onRetry?: (event: RetryEvent) => void;
}

export interface ResolvedRetryPolicy {
  limit: number;
  statusCodes: ReadonlySet<number> | 'default';
  baseDelayMs: number;
  maxDelayMs: number;
  jitter: boolean;
  maxRetryAfterMs: number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

export const defaultRetryPolicy: ResolvedRetryPolicy = {
  limit: 2,
  statusCodes: 'default',
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  jitter: true,
  maxRetryAfterMs: 60_000,
  onRetry: undefined,
};

/** Layer a policy (or a bare retry count) over a resolved one. */
export function resolveRetryPolicy(
  base: ResolvedRetryPolicy,
  override: RetryPolicy | number | undefined,
): ResolvedRetryPolicy {
  if (override === undefined) return base;
  if (typeof override === 'number') return { ...base, limit: override };
  return {
    limit: override.limit ?? base.limit,
    statusCodes: override.statusCodes ? new Set(override.statusCodes) : base.statusCodes,
    baseDelayMs: override.baseDelayMs ?? base.baseDelayMs,
    maxDelayMs: override.maxDelayMs ?? base.maxDelayMs,
    jitter: override.jitter ?? base.jitter,
    maxRetryAfterMs: override.maxRetryAfterMs ?? base.maxRetryAfterMs,
    onRetry: override.onRetry ?? base.onRetry,
  };
}

export function isRetryableStatus(policy: ResolvedRetryPolicy, status: number): boolean {
  if (policy.statusCodes === 'default') return status === 408 || status === 429 || (status >= 500 && status <= 599);
  return policy.statusCodes.has(status);
}

/** Whether the client retries `status` by default (408, 429 and every 5xx): a failure a later attempt may get through. */
export function isRetriedByDefault(status: number): boolean {
  return isRetryableStatus(defaultRetryPolicy, status);
}

/** Exponential backoff for retry `attempt` (1-based), with optional jitter. */
export function backoffDelay(policy: ResolvedRetryPolicy, attempt: number, random: () => number = Math.random): number {
  const raw = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return policy.jitter ? Math.round(raw / 2 + random() * (raw / 2)) : raw;
}

/**
 * The rule for every `retry` option, the client's and each call's: a retry count from 0 to 20,
 * or a policy object (strict: a misspelt key is an error, not a silently ignored setting).
 */
export const RetryOptionSchema = z.union([
  z.int().min(0).max(20),
  z.strictObject({
    limit: z.int().min(0).max(20).optional(),
    statusCodes: z.array(z.int().min(100).max(599)).optional(),
    baseDelayMs: z.number().min(0).optional(),
    maxDelayMs: z.number().min(0).optional(),
    jitter: z.boolean().optional(),
    maxRetryAfterMs: z.number().min(0).optional(),
    onRetry: z.custom<NonNullable<RetryPolicy['onRetry']>>((v) => typeof v === 'function').optional(),
  }),
], { error: 'expected a retry count from 0 to 20 or a retry policy object' });
