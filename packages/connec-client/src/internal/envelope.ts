import type { z } from 'zod';
import { type IssueSummary, ResponseValidationError } from '../errors.js';
import { describeIssues, summarizeIssues } from './issues.js';
import { validateRecord } from './validator.js';

function fail(what: string, issues: IssueSummary[], body: unknown): ResponseValidationError {
  return new ResponseValidationError(`${what}: ${describeIssues(issues)}`, { issues, body });
}

function envelopeOf(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw fail(what, [{ path: '', message: 'expected a JSON object envelope' }], body);
  }
  return body as Record<string, unknown>;
}

/** The record array under `key` of a list answer (checked, not yet validated). */
export function checkRecordList(body: unknown, key: string, what: string): unknown[] {
  const envelope = envelopeOf(body, what);
  const list = envelope[key];
  if (!Array.isArray(list)) {
    throw fail(what, [{ path: key, message: `expected an array under "${key}"` }], body);
  }
  return list;
}

/**
 * Validate the records of a list answer. Every record is checked; all issues are reported at
 * once, with paths such as `people/3/email/address`. With `onInvalid`, each invalid record is
 * handed to it and left out instead.
 */
export function parseRecordList<T>(
  list: readonly unknown[],
  key: string,
  schema: z.ZodType<T>,
  what: string,
  body: unknown,
  onInvalid?: (invalid: { index: number; record: unknown; issues: IssueSummary[]; message: string }) => void,
): T[] {
  const out: T[] = [];
  let issues: IssueSummary[] | undefined;
  for (let i = 0; i < list.length; i += 1) {
    const result = validateRecord(schema, list[i]);
    if (result.success) out.push(result.data);
    else if (onInvalid) {
      const found = summarizeIssues(result.error.issues, [key, i]);
      onInvalid({ index: i, record: list[i], issues: found, message: `${what}: ${describeIssues(found)}` });
    } else (issues ??= []).push(...summarizeIssues(result.error.issues, [key, i]));
  }
  if (issues) throw fail(what, issues, body);
  return out;
}

/** Parse `{"<key>": {record}}` (a one-element array is accepted too). */
export function parseRecordEnvelope<T>(body: unknown, key: string, schema: z.ZodType<T>, what: string): T {
  const envelope = envelopeOf(body, what);
  let value = envelope[key];
  if (Array.isArray(value) && value.length === 1) value = value[0];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(what, [{ path: key, message: `expected a record object under "${key}"` }], body);
  }
  const result = validateRecord(schema, value);
  if (!result.success) throw fail(what, summarizeIssues(result.error.issues, [key]), body);
  return result.data;
}
