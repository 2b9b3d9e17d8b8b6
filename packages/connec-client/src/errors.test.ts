import { describe, expect, it } from 'vitest';
import {
  ApiError,
  AuthenticationError,
  apiErrorFromStatus,
  ConflictError,
  fieldErrorsFromBody,
  isMaestranoError,
  NotFoundError,
  PermissionDeniedError,
  parseRetryAfter,
  RateLimitError,
  redactUrl,
  ServerError,
  ValidationFailedError,
} from './errors.js';

describe('error helpers', () => {
  it('maps statuses onto the taxonomy', () => {
    const make = (status: number) => apiErrorFromStatus({ service: 'account', status, method: 'GET', url: 'https://x/y' });
    expect(make(401)).toBeInstanceOf(AuthenticationError);
    expect(make(403)).toBeInstanceOf(PermissionDeniedError);
    expect(make(404)).toBeInstanceOf(NotFoundError);
    expect(make(409)).toBeInstanceOf(ConflictError);
    expect(make(400)).toBeInstanceOf(ValidationFailedError);
    expect(make(422)).toBeInstanceOf(ValidationFailedError);
    expect(make(429)).toBeInstanceOf(RateLimitError);
    expect(make(503)).toBeInstanceOf(ServerError);
    const other = make(418);
    expect(other).toBeInstanceOf(ApiError);
    expect(other.code).toBe('api_error');
    expect(other.message).toBe('Account API GET https://x/y failed with 418');
    expect(isMaestranoError(other)).toBe(true);
  });

  it('normalises JSON:API lists, Account-API maps and single messages into field errors', () => {
    expect(fieldErrorsFromBody({ errors: [{ title: 'Resource not found', code: 'resource-not-found' }] })).toEqual([
      { field: undefined, message: 'Resource not found', code: 'resource-not-found' },
    ]);
    expect(fieldErrorsFromBody({ errors: { group_id: ['does not exist'], status: 'is invalid' } })).toEqual([
      { field: 'group_id', message: 'does not exist' },
      { field: 'status', message: 'is invalid' },
    ]);
    expect(fieldErrorsFromBody({ error: 'boom' })).toEqual([{ message: 'boom' }]);
    expect(fieldErrorsFromBody('text')).toEqual([]);
  });

  it('parses Retry-After seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    // Malformed numbers are not dates long past ("retry now"): the normal backoff applies.
    expect(parseRetryAfter('-5')).toBeUndefined();
    expect(parseRetryAfter('1e3')).toBeUndefined();
    // Hundreds of digits are a very long wait, not an unparseable header.
    expect(parseRetryAfter('9'.repeat(400))).toBe(Number.MAX_SAFE_INTEGER);
    // asctime has no zone; it is GMT whatever the server's time zone.
    expect(parseRetryAfter('Thu Jan  1 00:00:30 2026', now)).toBe(30_000);
    expect(parseRetryAfter('Thursday, 01-Jan-26 00:00:30 GMT', now)).toBe(30_000);
  });

  it('redacts credentials and secret-looking query parameters from URLs', () => {
    expect(redactUrl('https://id:key@api.example.com/a?sso_session=abc&$top=2')).toBe(
      'https://api.example.com/a?sso_session=REDACTED&%24top=2',
    );
    const error = apiErrorFromStatus({ service: 'idp', status: 500, method: 'GET', url: 'https://idp/x?session=tok' });
    expect(error.url).toBe('https://idp/x?session=REDACTED');
    expect(error.message).not.toContain('tok');
  });
});
