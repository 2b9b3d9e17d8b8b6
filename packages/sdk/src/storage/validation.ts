import type { ClaimOptions } from './adapter.js';

/**
 * The role of the membership a member removal records where the SDK held none (see
 * `groupUserDeleted`); never a Maestrano role. It is written active, then marked removed: one
 * still active is a removal whose second write failed (Maestrano retries it), so it is no
 * seat (`users.seats` does not count it), and a login reads it as removed (see `removedAt`).
 */
export const UNRECORDED_ROLE = 'mno:unrecorded';

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

/** The last instant an adapter stores (SQL adapters keep ISO text, which stops sorting by time past year 9999). */
export const MAX_STORED_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z');
/** The first instant an adapter stores (PostgreSQL has no year 0000: its dates start at year 1). */
export const MIN_STORED_INSTANT_MS = Date.parse('0001-01-01T00:00:00.000Z');

/** `from + ms`, ending at the last storable instant for a huge TTL. */
export function later(from: Date, ms: number): Date {
  return new Date(Math.min(from.getTime() + ms, MAX_STORED_INSTANT_MS));
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
  const ms = value.getTime();
  if (ms < MIN_STORED_INSTANT_MS || ms > MAX_STORED_INSTANT_MS) {
    throw new RangeError(`${name} must be between 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z`);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Whether every adapter can store this text (the storage contract's rule): false for a NUL
 * character or an unpaired UTF-16 surrogate, which PostgreSQL refuses in `text` and `jsonb`.
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/**
 * Free diagnostic text (error messages and codes) made storable: each NUL character and
 * unpaired UTF-16 surrogate becomes U+FFFD (as `String.prototype.toWellFormed` does for
 * surrogates), so recording an error never fails because of what it says.
 */
export function wellFormedText(text: string): string {
  return text.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\u0000', '\uFFFD');
}

/**
 * Refuses a JSON value holding, in any string or object key, text PostgreSQL cannot store (a
 * NUL character, an unpaired surrogate): every adapter refuses it the same way, up front.
 */
export function checkStorableJson(name: string, value: unknown): void {
  const walk = (v: unknown): boolean => {
    if (typeof v === 'string') return isStorableText(v);
    if (v === null || typeof v !== 'object') return true;
    if (Array.isArray(v)) return v.every(walk);
    return Object.entries(v).every(([key, child]) => isStorableText(key) && walk(child));
  };
  if (!walk(value)) {
    throw new RangeError(`${name} must not hold a NUL character or an unpaired UTF-16 surrogate (in a string or a key)`);
  }
}

export function checkClaimOptions(options: Pick<ClaimOptions, 'owner' | 'ttlMs'>): void {
  checkNonEmpty('owner', options.owner);
  checkPositiveInt('ttlMs', options.ttlMs);
}
