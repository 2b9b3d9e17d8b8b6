/**
 * The canonical JSON and content hash are written in one pass; they must produce exactly the
 * text of the reference definition (prune, sort keys, JSON.stringify), or every stored hash
 * would stop matching after an upgrade and echoes would no longer be recognised.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, parseTimestamp, payloadHash, rawHash } from '../../src/sync/records.js';

// ---- the reference definition (the implementation before the one-pass writer) ----
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown) => isObj(v) && typeof v.id === 'string' && typeof v.provider === 'string' && typeof v.realm === 'string';
function refPrune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : refPrune(v)));
  if (value instanceof Date) return value.toISOString();
  if (!isObj(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const pruned = refPrune(child);
    if (isObj(pruned) && Object.keys(pruned).length === 0) continue;
    out[key] = pruned;
  }
  return out;
}
function refCanonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (!isObj(v)) return v;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) out[key] = sort(v[key]);
    return out;
  };
  return JSON.stringify(sort(refPrune(value))) ?? 'null';
}
const VOLATILE = new Set(['updated_at', 'created_at', 'group_id', 'channel_id', 'resource_type', 'code', 'version']);
function refContent(record: Record<string, unknown>): string {
  const reduce = (value: unknown, top: boolean): unknown => {
    if (Array.isArray(value)) {
      if (value.length > 0 && value.every(isId)) return (value as { id: string; provider: string }[]).find((e) => e.provider === 'connec')?.id ?? null;
      return value.map((v) => reduce(v, false));
    }
    if (!isObj(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      if (top && VOLATILE.has(key)) continue;
      out[key] = reduce(child, false);
    }
    return out;
  };
  return createHash('sha256').update(refCanonical(reduce(record, true)), 'utf8').digest('hex');
}

// ---- random records that reach every branch ----
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 8 : 14));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return r() < 0.5;
    case 3:
      return [0, -0, 1.5, -42, 1e21, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY][Math.floor(r() * 8)];
    case 4:
      return ['', 'a', 'é\u2028"\\', '{}', 'x'.repeat(3), '\u0000'][Math.floor(r() * 6)];
    case 5:
      return new Date(Date.UTC(2026, 0, 1 + Math.floor(r() * 300)));
    case 6:
      return () => 1;
    case 7:
      return 'plain';
    case 8:
    case 9:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    case 10:
      return [
        { id: `c-${Math.floor(r() * 9)}`, provider: 'connec', realm: 'org-1' },
        ...(r() < 0.5 ? [{ id: 'ours', provider: 'app', realm: 'g' }] : []),
      ].sort(() => r() - 0.5);
    case 11:
      return [{ id: 'x', provider: 'app', realm: 'g' }];
    default: {
      const keys = ['b', 'a', '10', '2', '0', 'id', 'updated_at', 'version', 'Z', 'é', '01', '-1', '4294967295', 'lines'];
      const out: Record<string, unknown> = {};
      const n = Math.floor(r() * 6);
      for (let i = 0; i < n; i++) out[keys[Math.floor(r() * keys.length)] as string] = randomValue(r, depth + 1);
      return out;
    }
  }
}

describe('canonical JSON and content hash (one-pass writer)', () => {
  it('writes exactly the reference text for 5,000 random values', () => {
    const r = rng(7);
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(r, 0);
      expect(canonicalJson(v)).toBe(refCanonical(v));
    }
  });

  it('hashes 5,000 random records exactly as the reference definition', () => {
    const r = rng(11);
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(r, 0);
      const record = (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? v : { value: v }) as Record<string, unknown>;
      record.updated_at = '2026-01-01T00:00:00Z';
      expect(contentHash(record)).toBe(refContent(record));
    }
  });

  it('orders array-index keys numerically, as JavaScript objects do', () => {
    expect(canonicalJson({ b: 1, 10: 'x', 2: 'y', a: { z: undefined, y: {} } })).toBe('{"2":"y","10":"x","b":1}');
  });

  it('ignores volatile fields and our own id entries, and sees any real change', () => {
    const base = { id: [{ id: 'c1', provider: 'connec', realm: 'o' }], name: 'Acme', updated_at: '2026-01-01T00:00:00Z' };
    const linked = { ...base, id: [...base.id, { id: '42', provider: 'app', realm: 'g' }], updated_at: '2026-02-01T00:00:00Z', version: 3 };
    expect(contentHash(linked)).toBe(contentHash(base));
    expect(contentHash({ ...base, name: 'Acme Ltd' })).not.toBe(contentHash(base));
  });

  it('keeps payload and raw hashes stable for known inputs', () => {
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    expect(payloadHash({ b: [1, undefined], a: 'x' })).toBe(sha('{"a":"x","b":[1,null]}'));
    expect(rawHash({ z: new Date(Date.UTC(2026, 0, 2)), y: {} })).toBe(sha('{"z":"2026-01-02T00:00:00.000Z"}').slice(0, 32));
  });
});

describe('parseTimestamp', () => {
  it('reads a Connec! timestamp without an offset as UTC, whatever the host time zone', () => {
    const saved = process.env.TZ;
    // Node re-reads TZ when it is assigned: a host west of UTC.
    process.env.TZ = 'America/New_York';
    try {
      expect(new Date(2016, 0, 1).getTimezoneOffset()).toBe(300);
      expect(parseTimestamp('2016-01-01T00:00:00')?.toISOString()).toBe('2016-01-01T00:00:00.000Z');
      expect(parseTimestamp('2016-01-01T00:00')?.toISOString()).toBe('2016-01-01T00:00:00.000Z');
      expect(parseTimestamp('2016-01-01T00:00:00.250')?.toISOString()).toBe('2016-01-01T00:00:00.250Z');
      // A space instead of the `T` (how SQL and Ruby print a time, e.g. an `importSince` pasted in).
      expect(parseTimestamp('2016-01-01 00:00:00')?.toISOString()).toBe('2016-01-01T00:00:00.000Z');
      expect(parseTimestamp('2016-01-01 00:00')?.toISOString()).toBe('2016-01-01T00:00:00.000Z');
      expect(parseTimestamp('2016-01-01 00:00:00+02:00')?.toISOString()).toBe('2015-12-31T22:00:00.000Z');
      expect(parseTimestamp('2016-01-01T00:00:00+02:00')?.toISOString()).toBe('2015-12-31T22:00:00.000Z');
      expect(parseTimestamp('2016-01-01T00:00:00Z')?.toISOString()).toBe('2016-01-01T00:00:00.000Z');
      expect(parseTimestamp('banana')).toBeNull();
      expect(parseTimestamp(42)).toBeNull();
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
