/**
 * The one walker behind every redacting logger: copies log fields, replacing the value of
 * every key `sensitive(key)` matches, at any depth. Past `maxDepth` a value is replaced by
 * `[truncated]` (never passed through unredacted), a cycle by `[circular]`; errors become
 * `{ name, message }` (no stack, no own properties that may hold secrets).
 *
 * Credentials carried inside values are scrubbed too (`scrubString`), whatever the key: every
 * string (an error's message included) loses the user info of its URLs (also of a scheme-less
 * `user:password@host`), the token after
 * `Basic`/`Bearer` and the value of query parameters whose name is sensitive; in a flat
 * header list (Node's `rawHeaders`: `[name, value, name, value, …]`) the value after a
 * sensitive header name (`Authorization`, `Cookie`, …) is replaced.
 */
export const REDACTED = '[redacted]';

/**
 * `scheme://user:password@`: the user info, up to the last `@` of the authority (as the WHATWG
 * URL parser reads it: a password may hold an `@`). A scheme is only looked for where a run of
 * scheme characters starts, and each part scans forward once, so the cost stays linear in the
 * length of the text (a `\b` start inside `a.a.a…` made it quadratic).
 */
const URL_USER_INFO = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#]*@/g;
/**
 * `user:password@host` without a scheme (a DSN in a driver's message, `app:s3cr3t@db:5432`): a
 * run that starts after whitespace or a quote and is no Windows drive (`C:\`, `C:/`), whose
 * first `:` is not followed by `//` (a URL), and whose last `@` in the run is followed by a host. The password
 * may hold `#`, `?`, `/` and `@`. The whole user info goes. Runs start only after whitespace or
 * quotes, which end the password too, so each character is scanned once or twice. An email
 * (`alice@example.com`) has no `:` before its `@` and stays.
 */
const BARE_USER_INFO = /(?<![^\s"'`])(?![A-Za-z]:[\\/])[^\s"'`:/?#@]+:(?!\/\/)[^\s"'`]*@(?=[A-Za-z0-9[])/g;
/**
 * `Basic <token>` / `Bearer <token>` (the scheme in any case), the token being an RFC 7235
 * token68 of at least 8 characters ("Basic plan" and "bearer of" stay readable; a longer word
 * after "basic" is redacted too: a credential of letters only looks no different).
 */
const AUTH_SCHEME_TOKEN = /\b(basic|bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi;
/** `?name=value` / `&name=value` in a URL or query string (a name holds no `?`: linear on `???…`). */
const QUERY_PARAMETER = /([?&])([^=&#\s?]+)=([^&#\s]*)/g;
/**
 * Longer strings are cut to this many characters once scrubbed (a log line is no place for a
 * document). Scrubbing comes first, so a credential the cut would split is already replaced.
 */
export const MAX_LOGGED_STRING = 8_192;
/** How far past the cut a long string is scrubbed (up to its last whitespace there). */
const SCRUB_MARGIN = 4_096;
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header names that always carry credentials, whatever the walker's `sensitive` rule. */
const CREDENTIAL_HEADER = /^(proxy-)?authorization$|^(set-)?cookie$/i;

/** `value` without the credentials it carries as text (see the module comment); other text is kept. */
export function scrubString(value: string, sensitive: (key: string) => boolean): string {
  // A long value is scrubbed up to a bounded length, so a huge one does not make logging
  // expensive, and it ends at whitespace: every credential pattern is a run without
  // whitespace, so none is split by where scrubbing stops (none is shown half-scrubbed).
  const bounded = value.length > MAX_LOGGED_STRING + SCRUB_MARGIN;
  const head = bounded ? value.slice(0, lastWhitespace(value, MAX_LOGGED_STRING + SCRUB_MARGIN)) : value;
  let out = head.replace(URL_USER_INFO, `$1${REDACTED}@`).replace(AUTH_SCHEME_TOKEN, `$1$2${REDACTED}`);
  if (out.includes('@')) out = out.replace(BARE_USER_INFO, `${REDACTED}@`);
  if (out.includes('=')) {
    out = out.replace(QUERY_PARAMETER, (match, sep: string, name: string) => {
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // Malformed escapes: the name as written.
      }
      return sensitive(decoded) ? `${sep}${name}=${REDACTED}` : match;
    });
  }
  if (!bounded && out.length <= MAX_LOGGED_STRING) return out;
  // Cut text is marked with the value's full length (what is left out of the scrubbed text
  // cannot be counted in the original's characters).
  return `${out.slice(0, MAX_LOGGED_STRING)}… [cut: ${value.length} characters in all]`;
}

/** The index of the last whitespace character before `end` (0 when there is none). */
function lastWhitespace(text: string, end: number): number {
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    const c = text.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x2028 || c === 0x2029 || c === 0xfeff) return i;
  }
  return 0;
}

/** `[name, value, name, value, …]` of strings, as Node's `rawHeaders`. */
function isFlatHeaderList(value: readonly unknown[]): value is string[] {
  return (
    value.length > 0 &&
    value.length % 2 === 0 &&
    value.every((v, i) => typeof v === 'string' && (i % 2 === 1 || HEADER_NAME.test(v)))
  );
}

export function redactByKey(fields: Record<string, unknown>, sensitive: (key: string) => boolean, maxDepth = 8): Record<string, unknown> {
  const seen = new WeakSet<object>();
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return scrubString(value, sensitive);
    if (value === null || typeof value !== 'object') return value;
    if (value instanceof Date) return value;
    if (value instanceof Error) return { name: value.name, message: scrubString(value.message, sensitive) };
    if (depth > maxDepth) return '[truncated]';
    if (seen.has(value)) return '[circular]';
    seen.add(value);
    try {
      if (Array.isArray(value)) {
        if (isFlatHeaderList(value)) {
          return value.map((v, i) =>
            i % 2 === 1 && (CREDENTIAL_HEADER.test(value[i - 1]!) || sensitive(value[i - 1]!)) ? REDACTED : scrubString(v, sensitive),
          );
        }
        return value.map((v) => walk(v, depth + 1));
      }
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
