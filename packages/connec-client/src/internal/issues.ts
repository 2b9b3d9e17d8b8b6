import type { z } from 'zod';
import type { IssueSummary } from '../errors.js';

/** Join a path into the slash form used by every error (`people/0/email/address`). */
export function joinPath(parts: readonly PropertyKey[]): string {
  return parts.map((part) => (typeof part === 'symbol' ? part.description ?? '' : String(part))).join('/');
}

/** Flatten zod issues (including union branches) into `{path, message}` with an optional prefix. */
export function summarizeIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): IssueSummary[] {
  const out: IssueSummary[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    out.push({ path: joinPath(path), message: issue.message });
  }
  return out;
}

/** `people/0/email/address: Invalid input; ...` limited to the first few entries. */
export function describeIssues(issues: readonly IssueSummary[], max = 5): string {
  const shown = issues.slice(0, max).map((issue) => `${issue.path || '(root)'}: ${issue.message}`);
  const more = issues.length > max ? `; and ${issues.length - max} more` : '';
  return shown.join('; ') + more;
}
