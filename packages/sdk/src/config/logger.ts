import type { Logger, LogLevel } from '../core/types.js';
import { redactByKey, scrubString } from './redact.js';
import { callObserver } from '../internal/observer.js';

/** Redacted wherever they appear in a field name (`apiKey`, `x-session-id`, `dbPwd`, `bearerToken`, …). */
const SENSITIVE = /key|secret|password|passwd|passphrase|pwd|token|authorization|bearer|cookie|session|saml|signature|credential/i;
/**
 * Redacted as whole words of a field name only (words split at `_`, `-`, `.`, spaces and
 * camelCase humps): `auth`, `basicAuth`, `proxy-auth`, `pass`, `db_pass`, `passPhrase`, but not
 * `author`, `authority`, `passenger`, `compass` or `bypass`.
 */
const SENSITIVE_WORD = new Set(['auth', 'pass']);
/**
 * Field names with "key" in them that name the SDK's own identifiers, never a secret: the
 * ledger key of a charge, a lock, a job's dedupe/ordering/wait key, an idempotency key. They
 * are what a log line about a charge or a job is for. Anything else with "key" stays redacted.
 */
const IDENTIFIER_KEY = /^(ledger|lock|dedupe|ordering|wait|idempotency)_?keys?$/i;

/** The words of a field name: `basicAuth` -> basic, auth; `X-Auth-Token` -> x, auth, token. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    // One capital at a time (lookahead): `([A-Z]+)([A-Z][a-z])` was quadratic on a long run of capitals.
    .replace(/([A-Z])(?=[A-Z][a-z])/g, '$1 ')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/** Whether a field of this name is redacted by the runtime logger. */
export function isSensitiveField(key: string): boolean {
  if (IDENTIFIER_KEY.test(key)) return false;
  return SENSITIVE.test(key) || words(key).some((word) => SENSITIVE_WORD.has(word));
}

/**
 * Free error text without the credentials it quotes, as the runtime logger writes it (URL user
 * info, `Basic`/`Bearer` tokens, sensitive query parameters). For failure text that is stored or
 * handed out rather than logged: a job's `lastError` (listed by `deadLetters()`, answered by the
 * sync status route), an id map's `lastError`, the `record.failed` event.
 */
export function scrubErrorText(text: string): string {
  return scrubString(text, isSensitiveField);
}

/**
 * Redacts every field whose key looks secret (`key`, `secret`, `token`, `session`, `pwd`,
 * `bearer`, …, and the words `auth` and `pass`), at any depth; values nested deeper than 8
 * levels are replaced by `[truncated]`, never logged as is. The SDK's identifier keys
 * (`ledgerKey`, `lockKey`, `dedupeKey`, …) are logged. Credentials inside string values are
 * scrubbed whatever their key: URL user info (`https://id:key@host` -> `https://[redacted]@host`),
 * the token after `Basic`/`Bearer`, sensitive query parameters (`?session=[redacted]`), and the
 * value after `Authorization`/`Cookie` (or any sensitive name) in a flat header list such as
 * Node's `rawHeaders`.
 */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactByKey(fields, isSensitiveField);
}

/** Wraps a logger so that no secret-looking field reaches it, and a throwing logger never breaks a request. */
export function redactingLogger(inner: Logger): Logger {
  const call = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    // A broken logger (one that throws, or an async one that rejects) must not turn a handled
    // request into a failure, nor end the process with an unhandled rejection.
    try {
      const redacted = fields ? redactFields(fields) : undefined;
      callObserver((m: string, f: Record<string, unknown> | undefined) => inner[level](m, f), [message, redacted]);
    } catch {
      // Redaction itself failed (a hostile getter): the line is dropped, the request goes on.
    }
  };
  return {
    debug: (m, f) => call('debug', m, f),
    info: (m, f) => call('info', m, f),
    warn: (m, f) => call('warn', m, f),
    error: (m, f) => call('error', m, f),
  };
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** The keys every line starts with; a field cannot overwrite them (nor replace the line through `toJSON`). */
const CORE_KEYS = new Set(['time', 'level', 'message', 'toJSON']);

/** BigInts become decimal strings (`JSON.stringify` throws on them). */
const jsonReplacer = (_key: string, value: unknown): unknown => (typeof value === 'bigint' ? value.toString() : value);

/**
 * One log line as JSON. `time`, `level` and `message` always come from the entry: a field of one
 * of those names is kept under `field.<name>` (`{"level":"warn",…,"field.level":"debug"}`). A
 * BigInt is written as a decimal string. Fields that still cannot be serialised (a throwing
 * `toJSON` or getter, a cycle when not behind `redactingLogger`) give a line saying so (with
 * the error's name only, never its message), so that no entry is ever dropped.
 */
export function formatLogLine(time: string, level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  const entry: Record<string, unknown> = { time, level, message };
  for (const [key, value] of Object.entries(fields ?? {})) {
    // defineProperty: a field named `__proto__` stays a field.
    Object.defineProperty(entry, CORE_KEYS.has(key) ? `field.${key}` : key, { value, enumerable: true, writable: true, configurable: true });
  }
  try {
    return JSON.stringify(entry, jsonReplacer);
  } catch (error) {
    const reason = error instanceof Error ? error.name : typeof error;
    return JSON.stringify({ time, level, message, logError: `the fields of this entry could not be serialised (${reason})` }, jsonReplacer);
  }
}

/** One JSON line per entry on stderr, at `level` and above (default `info`); see `formatLogLine`. */
export function consoleLogger(options: { level?: LogLevel } = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    process.stderr.write(`${formatLogLine(new Date().toISOString(), level, message, fields)}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
