import { PayloadValidationError } from './errors.js';

/**
 * Parse a Connec! timestamp (`created_at`, `updated_at`, ISO-8601) into a `Date`. Records keep the
 * original strings; use this where a `Date` is needed. Throws `PayloadValidationError` on garbage.
 */
export function parseConnecDate(value: string): Date {
  const date = new Date(value);
  if (typeof value !== 'string' || value.trim() === '' || Number.isNaN(date.getTime())) {
    throw new PayloadValidationError('Invalid Connec! timestamp', {
      issues: [{ path: '', message: 'expected an ISO-8601 date-time string' }],
    });
  }
  return date;
}
