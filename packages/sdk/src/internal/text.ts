/**
 * `text` without its trailing `/` characters. A loop rather than `/\/+$/`, whose matching is
 * quadratic on a long run of slashes that does not end the text (configuration from the
 * developer platform can carry any string).
 */
export function trimTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 47) end--;
  return end === text.length ? text : text.slice(0, end);
}

/**
 * A thrown value as text, for a value that is not an `Error`: `String()` itself throws for a
 * null-prototype object or a throwing `toString`, and that must not turn one record's failure
 * into the whole batch's.
 */
export function thrownText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return `a thrown ${typeof value} that cannot be converted to text`;
  }
}

/** An error's message, or any other thrown value as text (see {@link thrownText}). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : thrownText(error);
}
