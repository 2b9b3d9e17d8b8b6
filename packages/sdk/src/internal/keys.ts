/**
 * One free-text part (a group id, user uid, Connec! id or bill id) of a key that has further
 * parts after it, such as `sync.import:<tenant>:<group>:outbound`. `%` and `:` are escaped
 * (`%25`, `%3A`) so that no two different part lists give one key: without it the catch-up
 * of group `cld-1` and the import of a group named `cld-1:outbound` shared a dedupe key, and
 * the second job was never stored. A part with neither character, which covers every id
 * Maestrano and Connec! issue, is returned as is, so keys stored by earlier versions still
 * match.
 */
export function keyPart(value: string): string {
  if (!value.includes(':') && !value.includes('%')) return value;
  return value.replaceAll('%', '%25').replaceAll(':', '%3A');
}
