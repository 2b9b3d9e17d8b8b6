import type { ClaimOptions } from './adapter.js';

/** Default `JobInput.maxAttempts`. */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** Deep copy of stored values (`Date` stays `Date`); callers never share objects with a store. */
export function copy<T>(value: T): T {
  return value === undefined || value === null || typeof value !== 'object' ? value : structuredClone(value);
}

/** An expiry instant has passed when it is at or before `now`. */
export function expired(expiresAt: Date, now: Date): boolean {
  return expiresAt.getTime() <= now.getTime();
}

export function later(from: Date, ms: number): Date {
  return new Date(from.getTime() + ms);
}

export function checkNonEmpty(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${name} must be a non-empty string`);
  }
}

export function checkPositiveInt(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer (got ${String(value)})`);
  }
}

export function checkDate(name: string, value: unknown): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new TypeError(`${name} must be a valid Date`);
  }
}

export function checkClaimOptions(options: Pick<ClaimOptions, 'owner' | 'ttlMs'>): void {
  checkNonEmpty('owner', options.owner);
  checkPositiveInt('ttlMs', options.ttlMs);
}
