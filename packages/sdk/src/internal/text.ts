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
