import type { JsonValue } from '@org/maestrano-sdk';
import { Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  checkStoredJsonTogether,
  fromStoredJson,
  JSON_TEXT_SUBTYPE,
  MAX_BSON_NESTING,
  MAX_STORED_JSON_BYTES,
  recordedText,
  storedJsonBytes,
  toStoredJson,
} from './documents.js';
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

describe('two JSON values of one document', () => {
  it('share the limit: the second is refused naming it when both together take more', () => {
    const intent = toStoredJson({ body: 'x'.repeat(9 * 1024 * 1024) }, 'intent');
    const large = toStoredJson({ body: 'y'.repeat(9 * 1024 * 1024) }, 'outcome');
    expect(() => checkStoredJsonTogether('outcome', large, 'intent', intent)).toThrow(/^outcome is too large to store next to the recorded intent: .*16 MiB/);
    const asText = toStoredJson({ rows: [['y'.repeat(8 * 1024 * 1024)]] }, 'outcome');
    expect(storedJsonBytes(asText)).toBeGreaterThan(8 * 1024 * 1024);
    expect(() => checkStoredJsonTogether('outcome', asText, 'intent', intent)).toThrow(InvalidArgumentError);
    expect(() => checkStoredJsonTogether('outcome', toStoredJson({ ok: true }, 'outcome'), 'intent', intent)).not.toThrow();
    expect(() => checkStoredJsonTogether('outcome', null, 'intent', intent)).not.toThrow();
  });
});

describe('recorded error text', () => {
  it('is kept as it is up to the cap, made well-formed', () => {
    expect(recordedText('boom', 16)).toBe('boom');
    expect(recordedText('a\u0000b', 16)).toBe('a\uFFFDb');
    expect(recordedText('é'.repeat(8), 16)).toBe('é'.repeat(8));
  });

  it('is cut at a character boundary to the cap in UTF-8 bytes, ending with …', () => {
    expect(recordedText('x'.repeat(17), 16)).toBe(`${'x'.repeat(13)}…`);
    expect(recordedText('é'.repeat(9), 16)).toBe(`${'é'.repeat(6)}…`);
    const emoji = recordedText('😀'.repeat(10), 16);
    expect(emoji).toBe(`${'😀'.repeat(3)}…`);
    expect(Buffer.byteLength(emoji, 'utf8')).toBeLessThanOrEqual(16);
    expect(recordedText(`${'x'.repeat(12)}\u0000${'x'.repeat(10)}`, 16)).toBe(`${'x'.repeat(12)}…`);
  });
});
