import type * as z from 'zod';
import { ConfigError } from '../errors/index.js';

/** Keys whose received values must never appear in an error message. */
const SECRET_KEY = /(^|[._-])(key|secret|password|token|private_?key)$/i;

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  const parts = path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)));
  let out = prefix;
  for (const part of parts) {
    if (part.startsWith('[')) out += part;
    else out += out ? `.${part}` : part;
  }
  return out || '(root)';
}

/**
 * Turns zod issues into a `ConfigError` whose message names every bad key. Messages are
 * built from the issue code and the path only, so a received value (possibly a secret)
 * never appears.
 */
export function configErrorFrom(error: z.ZodError, prefix: string, what: string): ConfigError {
  const issues = error.issues.map((issue) => {
    const path = joinPath(prefix, issue.path);
    return { path, message: safeIssueMessage(issue, path) };
  });
  const lines = issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
  return new ConfigError(`Invalid ${what}:\n${lines}`, { issues });
}

function safeIssueMessage(issue: z.core.$ZodIssue, path: string): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_type':
      return issue.input === undefined ? `required (expected ${issue.expected})` : `expected ${issue.expected}`;
    case 'invalid_value':
      return SECRET_KEY.test(path) ? 'invalid value' : `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `too small (minimum ${String(issue.minimum)})`;
    case 'too_big':
      return `too big (maximum ${String(issue.maximum)})`;
    case 'invalid_format':
      return `invalid ${issue.format}`;
    case 'custom':
      return issue.message;
    default:
      return SECRET_KEY.test(path) ? 'invalid value' : issue.message;
  }
}
