import { PayloadValidationError } from './errors.js';
import { normalizeTimestamp } from './schemas/shared.js';

/** What a Connec! timestamp string looks like, for error messages. */
export const TIMESTAMP_SHAPE = 'an ISO-8601 date-time string (YYYY-MM-DDThh:mm[:ss[.fff]], then Z, ±hh:mm, ±hhmm, or nothing for UTC)';

/**
 * The instant a Connec! timestamp (`created_at`, `updated_at`) denotes. The string must have the
 * ISO-8601 date-time shape the {@link Timestamp} schema accepts; one without an offset is UTC
 * (PROTOCOL §6.7), never the host's local time. Anything else throws `PayloadValidationError`
 * with an issue at `path`.
 */
export function connecInstant(value: unknown, path = ''): Date {
  const date = readConnecInstant(value);
  if (date) return date;
  throw new PayloadValidationError('Invalid Connec! timestamp', { issues: [{ path, message: `expected ${TIMESTAMP_SHAPE}` }] });
}

/** {@link connecInstant} without the throw: `undefined` when `value` is not a Connec! timestamp. */
export function readConnecInstant(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  // The full form (seconds, extended offset) is the one every engine's `Date` reads the same way.
  const full = normalizeTimestamp(value);
  if (full === undefined) return undefined;
  const date = new Date(full.endsWith('Z') || /[+-]\d{2}:\d{2}$/.test(full) ? full : `${full}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Parse a Connec! timestamp (`created_at`, `updated_at`, ISO-8601 UTC) into a `Date`. Records keep
 * the original strings; use this where a `Date` is needed. A timestamp without an offset
 * (`2016-01-01T00:00:00`) is read as UTC whatever the host's time zone. Anything that is not an
 * ISO-8601 date-time (`"May 5"`, `"12/31/2016"`, a bare date) throws `PayloadValidationError`.
 */
export function parseConnecDate(value: string): Date {
  return connecInstant(value);
}
