import type { JsonValue } from '@org/maestrano-sdk';
import { Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { fromStoredJson, JSON_TEXT_SUBTYPE, MAX_BSON_NESTING, MAX_STORED_JSON_BYTES, toStoredJson } from './documents.js';
import { InvalidArgumentError } from './validation.js';

/** A value `levels` objects/arrays deep, with no array directly inside an array. */
function deep(levels: number): JsonValue {
  let value: JsonValue = 'bottom';
  for (let level = levels - 1; level >= 0; level--) value = level % 2 === 0 ? { level, next: value } : [level, value];
  return value;
}

function isJsonText(stored: unknown): boolean {
  return stored instanceof Binary && stored.sub_type === JSON_TEXT_SUBTYPE;
}

describe('the stored form of a JSON value', () => {
  it('is BSON for plain values, JSON text for arrays directly inside arrays (FerretDB refuses them)', () => {
    expect(isJsonText(toStoredJson({ list: [1, { a: [2] }], n: null }, 'payload'))).toBe(false);
    for (const value of [{ coords: [[1, 2]] }, [[1]], [1, [2]], { a: [{ b: [[]] }] }] as JsonValue[]) {
      const stored = toStoredJson(value, 'payload');
      expect(isJsonText(stored)).toBe(true);
      expect(fromStoredJson(stored)).toEqual(value);
    }
  });

  it(`is JSON text past ${MAX_BSON_NESTING} levels of nesting (MongoDB refuses documents nested deeper than 100)`, () => {
    expect(isJsonText(toStoredJson(deep(MAX_BSON_NESTING), 'payload'))).toBe(false);
    for (const levels of [MAX_BSON_NESTING + 1, 200, 500]) {
      const stored = toStoredJson(deep(levels), 'payload');
      expect(isJsonText(stored)).toBe(true);
      expect(fromStoredJson(stored)).toEqual(deep(levels));
    }
  });

  it('is refused, naming the argument and the limit, past the bytes a 16 MiB document leaves for it', () => {
    const over = 'x'.repeat(MAX_STORED_JSON_BYTES + 1);
    for (const value of [over, { body: over }, [[over]]] as JsonValue[]) {
      expect(() => toStoredJson(value, 'intent')).toThrow(InvalidArgumentError);
      expect(() => toStoredJson(value, 'intent')).toThrow(/^intent is too large to store: .*16 MiB/);
    }
    expect(isJsonText(toStoredJson({ body: 'x'.repeat(MAX_STORED_JSON_BYTES - 1024) }, 'payload'))).toBe(false);
  });
});
