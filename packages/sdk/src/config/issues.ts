import * as z from 'zod';
import { ConfigError } from '../errors/index.js';
import { closest } from '../internal/suggest.js';

/** Keys whose received values must never appear in an error message. */
const SECRET_KEY = /(^|[._-])(key|secret|password|token|private_?key)$/i;

/**
 * The message every issue gets when its schema sets none. A parse-level error map ranks below a
 * schema's own `error`, so any other message is the schema's (written by us, never a value).
 */
const NO_SCHEMA_MESSAGE = '\u0000no schema message';

/**
 * Options for every config `safeParse`: `reportInput` tells a missing key (`input` undefined)
 * from a wrong type (only the received type is shown, never the value), and the error map marks
 * issues without a schema message (so a schema's own message is kept).
 */
export const CONFIG_PARSE_OPTIONS = { reportInput: true, error: () => NO_SCHEMA_MESSAGE } as const;

/**
 * `unknown key(s) "conector" (did you mean "connector"?), "x"`: each unknown key, with the known
 * key it is likely a misspelling of. Keys are names, never values.
 */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  const named = keys.map((key) => {
    const suggestion = closest(key, known);
    return `${JSON.stringify(key)}${suggestion !== undefined ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ''}`;
  });
  return `unknown key(s) ${named.join(', ')}`;
}

/**
 * `z.strictObject` whose unknown-key issue suggests the key each one likely misspells (the
 * schema knows its keys; zod's issue does not carry them).
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined),
  });
}

/** `prefix` + a zod path, as `a.b[0].c`. */
export function issuePath(prefix: string, path: readonly PropertyKey[]): string {
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
 * built from the issue code, the path, the received type and the schema's own messages only,
 * so a received value (possibly a secret) never appears; the one label the schema's messages
 * quote is a storage adapter's `id`, which its own errors and logs carry too. Parse with
 * `CONFIG_PARSE_OPTIONS`.
 */
export function configErrorFrom(error: z.ZodError, prefix: string, what: string): ConfigError {
  const issues = configIssues(error, prefix);
  const lines = issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n');
  return new ConfigError(`Invalid ${what}:\n${lines}`, { issues });
}

/** The issues of a config parse (`CONFIG_PARSE_OPTIONS`), as `{ path, message }` without any received value. */
export function configIssues(error: z.ZodError, prefix: string): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    const path = issuePath(prefix, issue.path);
    return { path, message: safeIssueMessage(issue, path) };
  });
}

/** The JSON-ish type of a value (`null`, `array`, `string`, …), never the value itself. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** What a string, array or set counts, for a length bound; null for a value bound (number, date). */
function lengthUnit(origin: string): [one: string, many: string] | null {
  if (origin === 'string') return ['character', 'characters'];
  if (origin === 'array' || origin === 'set') return ['item', 'items'];
  if (origin === 'file') return ['byte', 'bytes'];
  return null;
}

/**
 * A `too_small`/`too_big` issue as the rule it broke, honouring `inclusive` (`.positive()` is
 * "greater than 0", `.min(0)` "at least 0") and `exact` (`.length(n)`). The bound comes from the
 * schema, never from the received value.
 */
function boundMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, side: 'min' | 'max'): string {
  const raw = issue.code === 'too_small' ? issue.minimum : issue.maximum;
  const bound = issue.origin === 'date' && typeof raw === 'number' ? new Date(raw).toISOString() : String(raw);
  const unit = lengthUnit(issue.origin);
  if (unit) {
    const units = raw === 1 || raw === 1n ? unit[0] : unit[1];
    // A length bound is inclusive (`.min(n)`, `.max(n)`, `.length(n)`).
    if (issue.exact) return `must have exactly ${bound} ${units}`;
    return `must have at ${side === 'min' ? 'least' : 'most'} ${bound} ${units}`;
  }
  if (issue.exact) return `must be exactly ${bound}`;
  const inclusive = issue.inclusive !== false;
  if (side === 'min') return inclusive ? `must be at least ${bound}` : `must be greater than ${bound}`;
  return inclusive ? `must be at most ${bound}` : `must be less than ${bound}`;
}

function safeIssueMessage(issue: z.core.$ZodIssue, path: string): string {
  const schemaMessage = issue.message !== NO_SCHEMA_MESSAGE && issue.message.length > 0 ? issue.message : null;
  switch (issue.code) {
    case 'unrecognized_keys':
      return schemaMessage ?? unknownKeysMessage(issue.keys, []);
    case 'invalid_type':
      // A missing key (or `undefined`) is "required"; a present one of the wrong type names
      // the type received. Schema messages are not used here: they cannot tell the two apart.
      return issue.input === undefined
        ? `required (expected ${issue.expected})`
        : `expected ${issue.expected}, received ${typeName(issue.input)}`;
    case 'invalid_value':
      return SECRET_KEY.test(path) ? 'invalid value' : `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return schemaMessage ?? boundMessage(issue, 'min');
    case 'too_big':
      return schemaMessage ?? boundMessage(issue, 'max');
    case 'invalid_format':
      if (schemaMessage) return schemaMessage;
      return issue.format === 'regex' && issue.pattern ? `must match ${issue.pattern}` : `invalid ${issue.format}`;
    default:
      return schemaMessage ?? 'invalid value';
  }
}
