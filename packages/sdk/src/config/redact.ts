/**
 * The one walker behind every redacting logger: copies log fields, replacing the value of
 * every key `sensitive(key)` matches, at any depth. Past `maxDepth` a value is replaced by
 * `[truncated]` (never passed through unredacted), a cycle by `[circular]`; errors become
 * `{ name, message }` (no stack, no own properties that may hold secrets).
 */
export const REDACTED = '[redacted]';

export function redactByKey(fields: Record<string, unknown>, sensitive: (key: string) => boolean, maxDepth = 8): Record<string, unknown> {
  const seen = new WeakSet<object>();
  const walk = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (value instanceof Date) return value;
    if (value instanceof Error) return { name: value.name, message: value.message };
    if (depth > maxDepth) return '[truncated]';
    if (seen.has(value)) return '[circular]';
    seen.add(value);
    try {
      if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) out[key] = sensitive(key) ? REDACTED : walk(child, depth + 1);
      return out;
    } finally {
      seen.delete(value);
    }
  };
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(fields)) out[key] = sensitive(key) ? REDACTED : walk(child, 1);
  return out;
}
