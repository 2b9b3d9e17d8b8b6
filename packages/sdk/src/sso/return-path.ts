/**
 * A `RelayState` (or any return-to value a browser can send) as a path of the app's own
 * origin, or null. The value is untrusted: only a path starting with a single `/` and holding
 * no whitespace, control character or backslash is kept (browsers drop tabs and newlines from
 * URLs and read `\` as `/`, so `/\t/evil.example` would lead elsewhere), and it must resolve
 * to `origin` itself, its normalised path too (dot segments can turn `/.//x` into `//x`). The
 * result is the normalised path, query and fragment.
 */
export function safeReturnPath(value: string | null | undefined, origin: string): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return null;
  if (!value.startsWith('/') || value.startsWith('//')) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u0020\u007f-\u009f\\\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]/.test(value)) return null;
  let base: URL;
  let url: URL;
  try {
    base = new URL(origin);
    url = new URL(value, base);
  } catch {
    return null;
  }
  if (url.origin !== base.origin) return null;
  // Dot segments are resolved above: `/.//evil.example` comes out as `//evil.example`, which a
  // browser reads as another host. What is returned must itself start with a single `/`.
  if (url.pathname.startsWith('//')) return null;
  return `${url.pathname}${url.search}${url.hash}`;
}
