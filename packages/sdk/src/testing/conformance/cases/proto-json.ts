import { expect } from 'vitest';
import type { JsonValue } from '../../../storage/adapter.js';

/** JSON as `JSON.parse` builds it from untrusted text: `__proto__` is an ordinary own key. */
export const PROTO_JSON = (): JsonValue =>
  JSON.parse('{"plan":"pro","__proto__":{"isAdmin":true},"lines":[{"__proto__":{"polluted":1},"qty":1}]}') as JsonValue;

/** `value` holds `__proto__` as data at both levels and no object's prototype was changed. */
export function expectProtoKeyKept(value: unknown): void {
  expect(value).toEqual(PROTO_JSON());
  const top = value as Record<string, unknown>;
  expect(Object.keys(top)).toContain('__proto__');
  expect(Object.getOwnPropertyDescriptor(top, '__proto__')?.value).toEqual({ isAdmin: true });
  expect(Object.getPrototypeOf(top)).toBe(Object.prototype);
  expect(top['isAdmin']).toBeUndefined();
  const line = (top['lines'] as Record<string, unknown>[])[0] as Record<string, unknown>;
  expect(Object.getOwnPropertyDescriptor(line, '__proto__')?.value).toEqual({ polluted: 1 });
  expect(Object.getPrototypeOf(line)).toBe(Object.prototype);
  expect(({} as Record<string, unknown>)['isAdmin']).toBeUndefined();
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
}
