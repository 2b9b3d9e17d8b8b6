import type { Logger, LogLevel } from '../core/types.js';

const SENSITIVE = /key|secret|password|passwd|token|authorization|cookie|session|saml|signature|credential/i;
const REDACTED = '[redacted]';

function redactValue(value: unknown, depth: number): unknown {
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE.test(k) ? REDACTED : redactValue(v, depth + 1);
  return out;
}

/** Redacts every field whose key looks secret (`key`, `secret`, `token`, `session`, …), recursively. */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SENSITIVE.test(k) ? REDACTED : redactValue(v, 1);
  return out;
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
