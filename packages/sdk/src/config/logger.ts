import type { Logger, LogLevel } from '../core/types.js';
import { redactByKey } from './redact.js';

const SENSITIVE = /key|secret|password|passwd|token|authorization|cookie|session|saml|signature|credential/i;
/**
 * Field names with "key" in them that name the SDK's own identifiers, never a secret: the
 * ledger key of a charge, a lock, a job's dedupe/ordering/wait key, an idempotency key. They
 * are what a log line about a charge or a job is for. Anything else with "key" stays redacted.
 */
const IDENTIFIER_KEY = /^(ledger|lock|dedupe|ordering|wait|idempotency)_?keys?$/i;

/** Whether a field of this name is redacted by the runtime logger. */
export function isSensitiveField(key: string): boolean {
  return SENSITIVE.test(key) && !IDENTIFIER_KEY.test(key);
}

/**
 * Redacts every field whose key looks secret (`key`, `secret`, `token`, `session`, …), at any
 * depth; values nested deeper than 8 levels are replaced by `[truncated]`, never logged as is.
 * The SDK's identifier keys (`ledgerKey`, `lockKey`, `dedupeKey`, …) are logged.
 */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactByKey(fields, isSensitiveField);
}

/** Wraps a logger so that no secret-looking field reaches it, and a throwing logger never breaks a request. */
export function redactingLogger(inner: Logger): Logger {
  const call = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    try {
      inner[level](message, fields ? redactFields(fields) : undefined);
    } catch {
      // A broken logger must not turn a handled request into a failure.
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

/** One JSON line per entry on stderr, at `level` and above (default `info`). */
export function consoleLogger(options: { level?: LogLevel } = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
