/**
 * Values at the edges of what a database stores, the same on every adapter:
 *
 * - Any JSON value round-trips exactly, whatever its object keys (`a.b`, `$type`, `~`, the
 *   empty key, `__proto__`, `_bsontype`, nested in arrays): document stores refuse some of them as field
 *   names, so an adapter must encode them. So does any shape: arrays directly inside arrays
 *   (FerretDB refuses them in a document) and values nested 200 levels deep (MongoDB refuses
 *   documents nested deeper than 100).
 * - Text PostgreSQL cannot hold (a NUL character, an unpaired UTF-16 surrogate) inside a
 *   JSON value is refused up front with a `StorageError` naming the argument, and a batch
 *   holding one stores nothing. In free diagnostic text (a job's or an id map's last error)
 *   it is recorded instead: the failure is what the caller wants stored. An adapter may
 *   store it well-formed (each such character replaced by U+FFFD).
 * - So is such text in a text argument an adapter stores or looks up (an id, a key, an
 *   owner, a worker, a type, a hash, …): PostgreSQL would store it changed (an unpaired
 *   surrogate as U+FFFD, so two different ids collide) or fail on a NUL. U+FFFD itself and
 *   paired surrogates (emoji) are ordinary text and round-trip.
 * - Instants are stored within 0001-01-01T00:00:00.000Z..9999-12-31T23:59:59.999Z (PostgreSQL
 *   has no year 0000; SQL adapters keep ISO text, which stops sorting by time past year
 *   9999): an explicit date outside them is refused, one inside (however early) round-trips,
 *   and an expiry computed from a huge TTL (lease, claim, lock) ends at the last instant.
 */
import { expect } from 'vitest';
import type { JobInput, JsonObject, JsonValue, StorageAdapter } from '../../../storage/adapter.js';
import { MIN_STORED_INSTANT_MS } from '../../../storage/validation.js';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, GROUP, needs, SCOPE, TENANT } from './helpers.js';

/** The last storable instant. */
export const MAX_INSTANT = new Date('9999-12-31T23:59:59.999Z');
/** One millisecond later: the first instant an adapter refuses. */
const PAST_MAX = new Date(MAX_INSTANT.getTime() + 1);
const YEAR_10000 = new Date('+010000-01-01T00:00:00.000Z');
/** The first storable instant (PostgreSQL has no year 0000). */
export const MIN_INSTANT = new Date('0001-01-01T00:00:00.000Z');
/** One millisecond earlier: the last instant before it, refused. */
const BEFORE_MIN = new Date(MIN_INSTANT.getTime() - 1);
const YEAR_0 = new Date('0000-06-15T12:34:56.789Z');
/** Early instants every adapter stores exactly. */
const EARLY_INSTANTS = [MIN_INSTANT, '0001-06-15T12:34:56.789Z', '0099-12-31T23:59:59.999Z', '0999-03-04T05:06:07.008Z', '1969-12-31T23:59:59.999Z'].map(
  (at) => new Date(at),
);
/** TTLs reaching past year 9999: ~9,500 years (still a valid Date), and past the Date range. */
const HUGE_TTLS = [300_000_000_000_000, Number.MAX_SAFE_INTEGER];

/** JSON whose keys document stores refuse or restrict as field names (built by JSON.parse: `__proto__` is an own key). */
export const AWKWARD_JSON = (): JsonObject =>
  JSON.parse(
    JSON.stringify({
      'a.b': 1,
      $type: 'x',
      '~': 'tilde',
      '~1': 'tilde-one',
      '': 'empty key',
      $: null,
      '.': ['dot'],
      'vat.number': { $in: [1, { '..': true, $$: [] }] },
      nested: [{ 'x.y': { $gt: 2, 'p.q.r': [{ $: { '': 0 } }] } }, [], {}, [[{ '$a.b': 'c' }]]],
      plain: { n: -1.5, s: 'é 😀 ~ $ .', big: 9_007_199_254_740_991, t: true, f: false, z: null },
    }).replace('"plain"', '"__proto__":{"$where":"x.y"},"plain"'),
  ) as JsonObject;

/**
 * JSON holding arrays directly inside arrays (matrices, coordinate pairs, tuples), at the top
 * and nested in objects, next to plain arrays of scalars and objects.
 */
export const NESTED_ARRAYS_JSON = (): JsonObject => ({
  entity: 'items',
  coords: [
    [1, 2],
    [3, 4],
  ],
  grid: [[[0]], [[]], []],
  mixed: [1, [2, [3, { a: [['x', null, true]] }]], { b: [] }],
  plain: [1, 'two', { three: 3 }],
});

/** A value nested `levels` deep (objects and arrays alternating, no array directly in an array). */
export function deepJson(levels: number): JsonValue {
  let value: JsonValue = 'bottom';
  for (let level = levels - 1; level >= 0; level--) value = level % 2 === 0 ? { level, next: value } : [level, value];
  return value;
}

/** Nested JSON shapes every adapter stores, each with a label. */
const SHAPES: [string, () => JsonValue][] = [
  ['arrays inside arrays', NESTED_ARRAYS_JSON],
  ['a top-level array of arrays', () => [[1], ['a', null], [[{ 'k.v': [[2]] }]]]],
  ['200 levels deep', () => deepJson(200)],
  ['200 levels of arrays inside arrays', () => JSON.parse(`${'['.repeat(200)}1${']'.repeat(200)}`) as JsonValue],
  // Ordinary data, but the BSON serializer reads `_bsontype` as the tag of one of its own types.
  ['a `_bsontype` key', () => ({ entity: 'items', data: { _bsontype: 'ObjectId', id: 'x' }, list: [{ _bsontype: 1 }] })],
];

/**
 * `value` equals `expected` (object key order aside: PostgreSQL jsonb sorts keys), with every
 * `__proto__` key kept as data and no prototype changed, at any depth.
 */
function expectExactJson(value: unknown, expected: JsonValue): void {
  expect(value).toEqual(expected);
  const walk = (got: unknown, want: unknown): void => {
    if (Array.isArray(want)) {
      for (const [i, item] of want.entries()) walk((got as unknown[])[i], item);
      return;
    }
    if (want === null || typeof want !== 'object') return;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got as object).sort()).toEqual(Object.keys(want).sort());
    for (const key of Object.keys(want)) {
      walk(Object.getOwnPropertyDescriptor(got, key)?.value, Object.getOwnPropertyDescriptor(want, key)?.value);
    }
  };
  walk(value, expected);
  expect(({} as Record<string, unknown>)['$where']).toBeUndefined();
}

/** JSON values holding text PostgreSQL refuses, each with what it holds. */
const UNSTORABLE: [string, () => JsonObject][] = [
  ['a NUL in a string', () => ({ note: 'bad \u0000 byte' })],
  ['a NUL in a key', () => ({ nested: [{ 'k\u0000': 1 }] })],
  ['an unpaired surrogate', () => ({ cut: `${'x'.repeat(9)}😀`.slice(0, 10) })],
];

/** Text arguments holding what PostgreSQL cannot store as given, each with what it holds. */
const UNSTORABLE_TEXT: [string, string][] = [
  ['a NUL', 'a\u0000b'],
  ['an unpaired high surrogate', 'x\uD800'],
  ['another unpaired high surrogate', 'x\uDBFF'],
  ['an unpaired low surrogate', 'x\uDC00y'],
];

/** Text that looks close to it but every adapter stores exactly. */
const ODD_BUT_STORABLE = ['x\uFFFD', 'x😀', '\uD83D\uDE00'];

async function expectRefusedNaming(promise: Promise<unknown>, operation: string, field: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  await expectStorageError(Promise.reject(error ?? new Error(`${operation} with an unstorable ${field} was accepted`)), operation);
  expect(String((error as Error).message)).toContain(field);
}

const job = (overrides: Partial<JobInput> = {}): JobInput => ({
  type: 'storable',
  payload: { ok: true },
  tenant: TENANT,
  groupId: GROUP,
  ...overrides,
});

async function claimAll(adapter: StorageAdapter, worker: string, leaseMs = 60_000) {
  return adapter.jobs.claim({ worker, limit: 50, leaseMs, types: ['storable'] });
}

/** Messages sliced through an emoji (`slice(0, n)` of error text) or holding a NUL. */
const AWKWARD_MESSAGES: [string, string][] = [
  ['a NUL', 'bad byte \u0000 in local error'],
  ['an unpaired surrogate', `${'x'.repeat(499)}😀 tail`.slice(0, 500)],
];

/** The stored message is the original, or the original with each NUL / unpaired surrogate made U+FFFD. */
function expectRecordedText(stored: unknown, original: string): void {
  const wellFormed = original
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replaceAll('\u0000', '\uFFFD');
  expect([original, wellFormed]).toContain(stored);
}

export const storableJobCases: StorageCases = {
  'type, keys, tenant, group, worker and waitKey holding a NUL or an unpaired surrogate are refused naming them and change nothing': async ({
    adapter,
    clock,
  }) => {
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.jobs.enqueue(job({ type: bad })), 'jobs.enqueue', 'type');
      for (const field of ['dedupeKey', 'orderingKey', 'tenant', 'groupId'] as const) {
        await expectRefusedNaming(adapter.jobs.enqueue(job({ [field]: bad })), 'jobs.enqueue', field);
        await expectRefusedNaming(adapter.jobs.enqueueMany([job(), job({ [field]: bad })]), 'jobs.enqueueMany', field);
      }
    }
    expect(await adapter.jobs.counts()).toEqual({ pending: 0, running: 0, done: 0, dead: 0 });
    const { id } = await adapter.jobs.enqueue(job({ orderingKey: 'x\uFFFD', dedupeKey: 'x😀' }));
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.jobs.claim({ worker: bad, limit: 5, leaseMs: 60_000 }), 'jobs.claim', 'worker');
    }
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'pending', attempts: 0, leaseOwner: null, orderingKey: 'x\uFFFD', dedupeKey: 'x😀' });
    expect((await claimAll(adapter, 'w1')).map((j) => j.id)).toEqual([id]);
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(
        adapter.jobs.fail(id, 'w1', { error: { message: 'x' }, retryAt: new Date(clock.ms()), waitKey: bad }),
        'jobs.fail',
        'waitKey',
      );
    }
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'w1', waitKey: null, lastError: null });
  },

  'payloads holding arrays inside arrays, or nested 200 levels deep, round-trip exactly (enqueue, enqueueMany, claim)': async ({ adapter }) => {
    const single: string[] = [];
    for (const [label, shape] of SHAPES) single.push((await adapter.jobs.enqueue(job({ payload: shape(), dedupeKey: `one ${label}` }))).id);
    const batch = await adapter.jobs.enqueueMany(SHAPES.map(([label, shape]) => job({ payload: shape(), dedupeKey: `many ${label}` })));
    expect(batch.map((r) => r.created)).toEqual(SHAPES.map(() => true));
    for (const [index, [, shape]] of SHAPES.entries()) {
      expectExactJson((await adapter.jobs.get(single[index] ?? ''))?.payload, shape());
      expectExactJson((await adapter.jobs.get(batch[index]?.id ?? ''))?.payload, shape());
    }
    const claimed = await claimAll(adapter, 'w1');
    expect(claimed).toHaveLength(SHAPES.length * 2);
    for (const [index, [, shape]] of SHAPES.entries()) {
      expectExactJson(claimed.find((j) => j.id === single[index])?.payload, shape());
      expectExactJson(claimed.find((j) => j.id === batch[index]?.id)?.payload, shape());
    }
  },

  'a payload of a few MiB round-trips': async ({ adapter }) => {
    const payload = { entity: 'attachments', body: 'x'.repeat(4 * 1024 * 1024), rows: Array.from({ length: 1_000 }, (_, i) => [i, `row ${i}`]) };
    const { id } = await adapter.jobs.enqueue(job({ payload }));
    expect((await adapter.jobs.get(id))?.payload).toEqual(payload);
  },

  'dates before 0001-01-01T00:00:00.000Z are refused (runAt, retryAt); 0001-01-01 and other early dates round-trip': async ({ adapter, clock }) => {
    expect(MIN_STORED_INSTANT_MS).toBe(MIN_INSTANT.getTime());
    for (const runAt of [BEFORE_MIN, YEAR_0]) {
      await expectRefusedNaming(adapter.jobs.enqueue(job({ runAt })), 'jobs.enqueue', 'runAt');
      await expectRefusedNaming(adapter.jobs.enqueueMany([job(), job({ runAt })]), 'jobs.enqueueMany', 'runAt');
    }
    expect((await adapter.jobs.counts({ type: 'storable' })).pending).toBe(0);
    const ids: string[] = [];
    for (const runAt of EARLY_INSTANTS) {
      const { id } = await adapter.jobs.enqueue(job({ runAt, payload: { at: runAt.toISOString() } }));
      expectDate((await adapter.jobs.get(id))?.runAt, runAt);
      ids.push(id);
    }
    // Due, in due order (an early date sorts by time on every backend).
    const claimed = await claimAll(adapter, 'w1');
    expect(claimed.map((j) => j.id)).toEqual(ids);
    const [first] = claimed;
    await expectRefusedNaming(adapter.jobs.fail(first?.id ?? '', 'w1', { error: { message: 'x' }, retryAt: BEFORE_MIN }), 'jobs.fail', 'retryAt');
    expect((await adapter.jobs.get(first?.id ?? ''))?.status).toBe('running');
    expect(await adapter.jobs.fail(first?.id ?? '', 'w1', { error: { message: 'x' }, retryAt: MIN_INSTANT })).toBe('retrying');
    expectDate((await adapter.jobs.get(first?.id ?? ''))?.runAt, MIN_INSTANT);
    expect(clock.ms()).toBeGreaterThan(MIN_INSTANT.getTime());
  },

  'payloads with keys holding ".", starting with "$", "~", "" or "__proto__" round-trip exactly (enqueue, enqueueMany, claim)': async ({
    adapter,
  }) => {
    const awkward = AWKWARD_JSON();
    const array: JsonValue = [{ '$a.b': [1, { '': { 'c.d': null } }] }, 'x', 2];
    const single = await adapter.jobs.enqueue(job({ payload: awkward, dedupeKey: 'single' }));
    const batch = await adapter.jobs.enqueueMany([
      job({ payload: { record: { id: 'ok-1' } }, dedupeKey: 'ok-1' }),
      job({ payload: { record: AWKWARD_JSON() }, dedupeKey: 'awkward' }),
      job({ payload: array, dedupeKey: 'array' }),
      job({ payload: { record: { id: 'ok-2' } }, dedupeKey: 'ok-2' }),
    ]);
    expect(batch.map((r) => r.created)).toEqual([true, true, true, true]);
    expect((await adapter.jobs.counts({ type: 'storable' })).pending).toBe(5);
    expectExactJson((await adapter.jobs.get(single.id))?.payload, awkward);
    expectExactJson((await adapter.jobs.get(batch[1]?.id ?? ''))?.payload, { record: AWKWARD_JSON() });
    expectExactJson((await adapter.jobs.get(batch[2]?.id ?? ''))?.payload, array);
    const claimed = await claimAll(adapter, 'w1');
    expect(claimed).toHaveLength(5);
    expectExactJson(claimed.find((j) => j.id === single.id)?.payload, awkward);
    expectExactJson(claimed.find((j) => j.id === batch[1]?.id)?.payload, { record: AWKWARD_JSON() });
  },

  'a payload holding a NUL or an unpaired surrogate is refused naming it; a batch holding one stores nothing': async ({ adapter }) => {
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.jobs.enqueue(job({ payload: bad() })), 'jobs.enqueue', 'payload');
      await expectRefusedNaming(
        adapter.jobs.enqueueMany([job({ payload: { n: 1 } }), job({ payload: { record: bad() } }), job({ payload: { n: 3 } })]),
        'jobs.enqueueMany',
        'payload',
      );
    }
    expect(await adapter.jobs.counts({ type: 'storable' })).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
  },

  'fail records an error message or code holding a NUL or an unpaired surrogate, and the job backs off': async ({ adapter, clock }) => {
    for (const [label, message] of AWKWARD_MESSAGES) {
      const { id } = await adapter.jobs.enqueue(job({ payload: { label } }));
      const [claimed] = await claimAll(adapter, 'w1');
      expect(claimed?.id).toBe(id);
      const outcome = await adapter.jobs.fail(id, 'w1', {
        error: { message, code: message.slice(-12) },
        retryAt: new Date(clock.ms() + 1_000),
      });
      expect(outcome).toBe('retrying');
      const stored = await adapter.jobs.get(id);
      expect(stored?.status).toBe('pending');
      expectRecordedText(stored?.lastError?.message, message);
      expectRecordedText(stored?.lastError?.code, message.slice(-12));
      clock.advance(2_000);
      const [again] = await claimAll(adapter, 'w1');
      expect(again?.id).toBe(id);
      await adapter.jobs.complete(id, 'w1');
    }
  },

  'dates after 9999-12-31T23:59:59.999Z are refused (runAt, retryAt, purgeCompleted)': async ({ adapter, clock }) => {
    for (const runAt of [PAST_MAX, YEAR_10000]) {
      await expectRefusedNaming(adapter.jobs.enqueue(job({ runAt })), 'jobs.enqueue', 'runAt');
      await expectRefusedNaming(adapter.jobs.enqueueMany([job(), job({ runAt })]), 'jobs.enqueueMany', 'runAt');
    }
    expect((await adapter.jobs.counts({ type: 'storable' })).pending).toBe(0);
    const latest = await adapter.jobs.enqueue(job({ runAt: MAX_INSTANT }));
    expectDate((await adapter.jobs.get(latest.id))?.runAt, MAX_INSTANT);
    expect(await claimAll(adapter, 'w1')).toEqual([]);
    const { id } = await adapter.jobs.enqueue(job());
    expect((await claimAll(adapter, 'w1')).map((j) => j.id)).toEqual([id]);
    await expectRefusedNaming(adapter.jobs.fail(id, 'w1', { error: { message: 'x' }, retryAt: YEAR_10000 }), 'jobs.fail', 'retryAt');
    expect((await adapter.jobs.get(id))?.status).toBe('running');
    await expectRefusedNaming(adapter.jobs.purgeCompleted(YEAR_10000), 'jobs.purgeCompleted', 'before');
    expect(await adapter.jobs.fail(id, 'w1', { error: { message: 'x' }, retryAt: new Date(clock.ms() + 1_000) })).toBe('retrying');
  },

  'a lease reaching past year 9999 ends at 9999-12-31T23:59:59.999Z and keeps the job (claim, heartbeat)': async ({ adapter, clock }) => {
    for (const leaseMs of HUGE_TTLS) {
      const { id } = await adapter.jobs.enqueue(job({ payload: { leaseMs } }));
      const [claimed] = await claimAll(adapter, 'w1', leaseMs);
      expect(claimed?.id).toBe(id);
      expectDate(claimed?.leaseExpiresAt, MAX_INSTANT);
      clock.advance(365 * 24 * 3_600_000);
      expect(await claimAll(adapter, 'w2')).toEqual([]);
      expect(await adapter.jobs.heartbeat(id, 'w1', leaseMs)).toBe(true);
      expectDate((await adapter.jobs.get(id))?.leaseExpiresAt, MAX_INSTANT);
      expect(await claimAll(adapter, 'w2')).toEqual([]);
      expect(await adapter.jobs.complete(id, 'w1')).toBe(true);
    }
  },
};

export const storableCursorCases: StorageCases = {
  'a cursor key holding a NUL or an unpaired surrogate is refused naming it and stores nothing': async ({ adapter }) => {
    const key = { tenant: TENANT, groupId: GROUP, entity: 'contact', kind: 'import' };
    for (const [, bad] of UNSTORABLE_TEXT) {
      for (const field of ['tenant', 'groupId', 'entity', 'kind'] as const) {
        await expectRefusedNaming(adapter.cursors.advance({ ...key, [field]: bad }, 1, { page: 1 }), 'cursors.advance', field);
      }
    }
    expect(await adapter.cursors.list(TENANT, GROUP)).toEqual([]);
    expect(await adapter.cursors.advance({ ...key, kind: 'x\uFFFD' }, 1, { page: 1 })).toBe(true);
    expect((await adapter.cursors.list(TENANT, GROUP)).map((c) => c.kind)).toEqual(['x\uFFFD']);
  },

  'cursor data with keys holding ".", starting with "$", "~", "" or "__proto__" round-trips exactly': async ({ adapter }) => {
    const key = { tenant: TENANT, groupId: GROUP, entity: 'contact', kind: 'import' as const };
    expect(await adapter.cursors.advance(key, 1, { 'next.url': 'https://x', $skip: 100 })).toBe(true);
    expectExactJson((await adapter.cursors.get(key))?.data, { 'next.url': 'https://x', $skip: 100 });
    expect(await adapter.cursors.advance(key, 2, AWKWARD_JSON())).toBe(true);
    expectExactJson((await adapter.cursors.get(key))?.data, AWKWARD_JSON());
    expectExactJson((await adapter.cursors.list(TENANT, GROUP))[0]?.data, AWKWARD_JSON());
    expect(await adapter.cursors.advance(key, 3, { page: 3 })).toBe(true);
    expectExactJson((await adapter.cursors.get(key))?.data, { page: 3 });
  },

  'cursor data holding arrays inside arrays, or nested 200 levels deep, round-trips exactly': async ({ adapter }) => {
    const key = { tenant: TENANT, groupId: GROUP, entity: 'contact', kind: 'import' as const };
    for (const [index, [, shape]] of SHAPES.entries()) {
      const data = { shape: shape() };
      expect(await adapter.cursors.advance(key, index + 1, data)).toBe(true);
      expectExactJson((await adapter.cursors.get(key))?.data, data);
      expectExactJson((await adapter.cursors.list(TENANT, GROUP))[0]?.data, data);
    }
  },

  'cursor data holding a NUL or an unpaired surrogate is refused naming it and changes nothing': async ({ adapter }) => {
    const key = { tenant: TENANT, groupId: GROUP, entity: 'contact', kind: 'import' as const };
    expect(await adapter.cursors.advance(key, 1, { page: 1 })).toBe(true);
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.cursors.advance(key, 2, bad()), 'cursors.advance', 'data');
    }
    expect(await adapter.cursors.get(key)).toMatchObject({ position: 1, data: { page: 1 } });
  },
};

export const storableGroupCases: StorageCases = {
  'tenant, groupId, owner, companyId and orgUid holding a NUL or an unpaired surrogate are refused naming them and store nothing': async ({
    adapter,
  }) => {
    const claim = { owner: 'o', ttlMs: 60_000 };
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.groups.claim(bad, GROUP, claim), 'groups.claim', 'tenant');
      await expectRefusedNaming(adapter.groups.claim(TENANT, bad, claim), 'groups.claim', 'groupId');
      await expectRefusedNaming(adapter.groups.claim(TENANT, GROUP, { owner: bad, ttlMs: 60_000 }), 'groups.claim', 'owner');
    }
    expect((await adapter.groups.claim(TENANT, GROUP, claim)).state).toBe('claimed');
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.groups.complete(TENANT, GROUP, 'o', { companyId: bad }), 'groups.complete', 'companyId');
      await expectRefusedNaming(adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', orgUid: bad }), 'groups.complete', 'orgUid');
    }
    expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
    await adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c\uFFFD' });
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.groups.update(TENANT, GROUP, { orgUid: bad }), 'groups.update', 'orgUid');
    }
    expect(await adapter.groups.get(TENANT, GROUP)).toMatchObject({ companyId: 'c\uFFFD', orgUid: null });
  },

  'group settings with keys holding ".", starting with "$", "~", "" or "__proto__" round-trip exactly (complete, update)': async ({
    adapter,
  }) => {
    expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'o', ttlMs: 60_000 })).state).toBe('claimed');
    const settings = { 'next.url': 'https://x', $skip: 100 };
    const group = await adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', settings });
    expectExactJson(group.settings, settings);
    expectExactJson((await adapter.groups.get(TENANT, GROUP))?.settings, settings);
    expectExactJson((await adapter.groups.update(TENANT, GROUP, { settings: AWKWARD_JSON() }))?.settings, AWKWARD_JSON());
    expectExactJson((await adapter.groups.get(TENANT, GROUP))?.settings, AWKWARD_JSON());
    expectExactJson((await adapter.groups.list(TENANT))[0]?.settings, AWKWARD_JSON());
  },

  'group settings holding arrays inside arrays, or nested 200 levels deep, round-trip exactly (complete, update)': async ({ adapter }) => {
    expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'o', ttlMs: 60_000 })).state).toBe('claimed');
    const group = await adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', settings: NESTED_ARRAYS_JSON() });
    expectExactJson(group.settings, NESTED_ARRAYS_JSON());
    expectExactJson((await adapter.groups.get(TENANT, GROUP))?.settings, NESTED_ARRAYS_JSON());
    for (const [, shape] of SHAPES) {
      const settings = { shape: shape() };
      expectExactJson((await adapter.groups.update(TENANT, GROUP, { settings }))?.settings, settings);
      expectExactJson((await adapter.groups.get(TENANT, GROUP))?.settings, settings);
      expectExactJson((await adapter.groups.list(TENANT))[0]?.settings, settings);
    }
  },

  'group settings holding a NUL or an unpaired surrogate, or a trialEndsAt after 9999, are refused naming them': async ({ adapter }) => {
    expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'o', ttlMs: 60_000 })).state).toBe('claimed');
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', settings: bad() }), 'groups.complete', 'settings');
    }
    await expectRefusedNaming(adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', trialEndsAt: PAST_MAX }), 'groups.complete', 'trialEndsAt');
    expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
    await adapter.groups.complete(TENANT, GROUP, 'o', { companyId: 'c', settings: { plan: 'pro' } });
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.groups.update(TENANT, GROUP, { settings: bad() }), 'groups.update', 'settings');
    }
    await expectRefusedNaming(adapter.groups.update(TENANT, GROUP, { trialEndsAt: YEAR_10000 }), 'groups.update', 'trialEndsAt');
    expect(await adapter.groups.get(TENANT, GROUP)).toMatchObject({ settings: { plan: 'pro' }, trialEndsAt: null });
  },

  'a provisioning claim whose TTL reaches past year 9999 ends at 9999-12-31T23:59:59.999Z and stays exclusive': async ({ adapter, clock }) => {
    for (const [index, ttlMs] of HUGE_TTLS.entries()) {
      const groupId = `${GROUP}-${index}`;
      expect((await adapter.groups.claim(TENANT, groupId, { owner: 'a', ttlMs })).state).toBe('claimed');
      clock.advance(365 * 24 * 3_600_000);
      const other = await adapter.groups.claim(TENANT, groupId, { owner: 'b', ttlMs: 60_000 });
      expect(other.state).toBe('pending');
      if (other.state === 'pending') expectDate(other.claimExpiresAt, MAX_INSTANT);
      const user = await adapter.users.claim(TENANT, `u-${index}`, { owner: 'a', ttlMs });
      expect(user.state).toBe('claimed');
      const otherUser = await adapter.users.claim(TENANT, `u-${index}`, { owner: 'b', ttlMs: 60_000 });
      expect(otherUser.state).toBe('pending');
      if (otherUser.state === 'pending') expectDate(otherUser.claimExpiresAt, MAX_INSTANT);
    }
  },
};

export const storableLedgerCases: StorageCases = {
  'a ledger key or owner holding a NUL or an unpaired surrogate is refused naming it and stores nothing': async ({ adapter }) => {
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.ledger.claim(bad, { owner: 'o', ttlMs: 60_000, intent: null }), 'ledger.claim', 'key');
      await expectRefusedNaming(adapter.ledger.claim('k-1', { owner: bad, ttlMs: 60_000, intent: null }), 'ledger.claim', 'owner');
    }
    expect(await adapter.ledger.get('k-1')).toBeNull();
    expect((await adapter.ledger.claim('k-\uFFFD', { owner: 'o', ttlMs: 60_000, intent: null })).state).toBe('claimed');
    expect((await adapter.ledger.claim('k-\uFFFD', { owner: 'p', ttlMs: 60_000, intent: null })).state).toBe('pending');
  },

  'ledger intent and outcome with keys holding ".", starting with "$", "~", "" or "__proto__" round-trip exactly': async ({ adapter }) => {
    const claim = await adapter.ledger.claim('k-1', { owner: 'o', ttlMs: 60_000, intent: AWKWARD_JSON() });
    expect(claim.state).toBe('claimed');
    expectExactJson(claim.entry.intent, AWKWARD_JSON());
    expectExactJson((await adapter.ledger.get('k-1'))?.intent, AWKWARD_JSON());
    const outcome: JsonValue = [{ 'bill.id': 'b-1', $status: 'submitted' }, AWKWARD_JSON()];
    expect(await adapter.ledger.complete('k-1', 'o', outcome)).toBe(true);
    const done = await adapter.ledger.get('k-1');
    expectExactJson(done?.intent, AWKWARD_JSON());
    expectExactJson(done?.outcome, outcome);
  },

  'ledger intent and outcome holding arrays inside arrays, or nested 200 levels deep, round-trip exactly': async ({ adapter }) => {
    for (const [index, [, shape]] of SHAPES.entries()) {
      const key = `k-${index}`;
      const claim = await adapter.ledger.claim(key, { owner: 'o', ttlMs: 60_000, intent: shape() });
      expect(claim.state).toBe('claimed');
      expectExactJson(claim.entry.intent, shape());
      expectExactJson((await adapter.ledger.get(key))?.intent, shape());
      const outcome: JsonValue = [shape(), { lines: [['setup', 100]] }];
      expect(await adapter.ledger.complete(key, 'o', outcome)).toBe(true);
      const done = await adapter.ledger.get(key);
      expectExactJson(done?.intent, shape());
      expectExactJson(done?.outcome, outcome);
    }
  },

  'ledger intent or outcome holding a NUL or an unpaired surrogate is refused naming it and changes nothing': async ({ adapter }) => {
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.ledger.claim('k-1', { owner: 'o', ttlMs: 60_000, intent: bad() }), 'ledger.claim', 'intent');
    }
    expect(await adapter.ledger.get('k-1')).toBeNull();
    expect((await adapter.ledger.claim('k-1', { owner: 'o', ttlMs: 60_000, intent: { n: 1 } })).state).toBe('claimed');
    for (const [, bad] of UNSTORABLE) {
      await expectRefusedNaming(adapter.ledger.complete('k-1', 'o', bad()), 'ledger.complete', 'outcome');
    }
    expect(await adapter.ledger.get('k-1')).toMatchObject({ status: 'pending', outcome: null });
  },

  'a ledger claim whose TTL reaches past year 9999 ends at 9999-12-31T23:59:59.999Z and stays exclusive': async ({ adapter, clock }) => {
    for (const [index, ttlMs] of HUGE_TTLS.entries()) {
      const key = `k-${index}`;
      const claim = await adapter.ledger.claim(key, { owner: 'a', ttlMs, intent: null });
      expect(claim.state).toBe('claimed');
      expectDate(claim.entry.claimExpiresAt, MAX_INSTANT);
      clock.advance(365 * 24 * 3_600_000);
      expect((await adapter.ledger.claim(key, { owner: 'b', ttlMs: 60_000, intent: null })).state).toBe('pending');
    }
  },
};

export const storableIdMapCases: StorageCases = {
  'ids, scope and hashes holding a NUL or an unpaired surrogate are refused naming them and store nothing': async ({ adapter, clock }) => {
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: bad, localId: 'l-1' }), 'idMaps.insert', 'connecId');
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: bad }), 'idMaps.insert', 'localId');
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, entity: bad, connecId: 'c-1', localId: null }), 'idMaps.insert', 'entity');
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: null, lastReceivedHash: bad }), 'idMaps.insert', 'lastReceivedHash');
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: null, linkSubIds: bad }), 'idMaps.insert', 'linkSubIds');
      await expectRefusedNaming(
        adapter.idMaps.insertMany([{ ...SCOPE, connecId: 'c-0', localId: null }, { ...SCOPE, connecId: bad, localId: null }]),
        'idMaps.insertMany',
        'connecId',
      );
    }
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toEqual([]);
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: 'l-1' });
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { connecId: bad }), 'idMaps.update', 'connecId');
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { localId: bad }), 'idMaps.update', 'localId');
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { lastPushedHash: bad }), 'idMaps.update', 'lastPushedHash');
      await expectRefusedNaming(adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, new Date(clock.ms()), bad), 'idMaps.markApplied', 'hash');
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { linkSubIds: bad }), 'idMaps.update', 'linkSubIds');
      await expectRefusedNaming(adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, new Date(clock.ms()), 'h', { linkSubIds: bad }), 'idMaps.markApplied', 'linkSubIds');
      await expectRefusedNaming(adapter.idMaps.find(SCOPE, { connecId: bad }), 'idMaps.find', 'connecId');
    }
    const [stored] = await adapter.idMaps.list(SCOPE, { limit: 10 });
    expect(stored).toMatchObject({ connecId: 'c-1', localId: 'l-1', lastPushedHash: null, lastReceivedHash: null, lastAppliedAt: null, linkSubIds: null });
    expect(await adapter.idMaps.list(SCOPE, { limit: 10 })).toHaveLength(1);
    // Close relatives are ordinary text: each is its own id and reads back as given.
    for (const [index, connecId] of ODD_BUT_STORABLE.entries()) {
      expect((await adapter.idMaps.insert({ ...SCOPE, connecId, localId: `odd-${index}`, lastReceivedHash: connecId })).connecId).toBe(connecId);
    }
    for (const [index, connecId] of ODD_BUT_STORABLE.entries()) {
      expect(await adapter.idMaps.find(SCOPE, { localId: `odd-${index}` })).toMatchObject({ connecId, lastReceivedHash: connecId });
      expect((await adapter.idMaps.find(SCOPE, { connecId }))?.localId).toBe(`odd-${index}`);
    }
  },

  'update records a lastError holding a NUL or an unpaired surrogate': async ({ adapter, clock }) => {
    for (const [index, [, message]] of AWKWARD_MESSAGES.entries()) {
      const connecId = `c-${index}`;
      await adapter.idMaps.insert({ ...SCOPE, connecId, localId: `l-${index}` });
      const at = new Date(clock.ms());
      const updated = await adapter.idMaps.update(SCOPE, { connecId }, { lastError: { code: `mapping${message.slice(-1)}`, message, at } });
      expectRecordedText(updated?.lastError?.message, message);
      expectRecordedText(updated?.lastError?.code, `mapping${message.slice(-1)}`);
      const found = await adapter.idMaps.find(SCOPE, { connecId });
      expect(found?.lastError).toEqual(updated?.lastError);
      expectDate(found?.lastError?.at, at);
      // Cleared given the error as read back, or as it was written.
      const written = { code: `mapping${message.slice(-1)}`, message, at };
      expect(await adapter.idMaps.clearError(SCOPE, { connecId }, index % 2 === 0 && found?.lastError ? found.lastError : written)).toBe(true);
      expect((await adapter.idMaps.find(SCOPE, { connecId }))?.lastError).toBeNull();
    }
  },

  'dates before 0001-01-01T00:00:00.000Z are refused (insert, update, markApplied); early dates round-trip': async ({ adapter }) => {
    for (const at of [BEFORE_MIN, YEAR_0]) {
      await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-0', localId: null, lastAppliedAt: at }), 'idMaps.insert', 'lastAppliedAt');
    }
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-0' })).toBeNull();
    for (const [index, at] of EARLY_INSTANTS.entries()) {
      const connecId = `c-${index}`;
      const inserted = await adapter.idMaps.insert({ ...SCOPE, connecId, localId: null, lastAppliedAt: at });
      expectDate(inserted.lastAppliedAt, at);
      expectDate((await adapter.idMaps.find(SCOPE, { connecId }))?.lastAppliedAt, at);
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId }, { tombstonedAt: BEFORE_MIN }), 'idMaps.update', 'tombstonedAt');
      await expectRefusedNaming(adapter.idMaps.markApplied(SCOPE, { connecId }, YEAR_0, 'h'), 'idMaps.markApplied', 'appliedAt');
      expect(await adapter.idMaps.find(SCOPE, { connecId })).toMatchObject({ tombstonedAt: null, lastReceivedHash: null });
      expectDate((await adapter.idMaps.find(SCOPE, { connecId }))?.lastAppliedAt, at);
    }
  },

  'dates after 9999-12-31T23:59:59.999Z are refused (insert, update, markApplied, clearError)': async ({ adapter }) => {
    await expectRefusedNaming(adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: null, lastAppliedAt: PAST_MAX }), 'idMaps.insert', 'lastAppliedAt');
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toBeNull();
    await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-1', localId: null });
    await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: 'c-1' }, { tombstonedAt: YEAR_10000 }), 'idMaps.update', 'tombstonedAt');
    await expectRefusedNaming(adapter.idMaps.markApplied(SCOPE, { connecId: 'c-1' }, YEAR_10000, 'h'), 'idMaps.markApplied', 'appliedAt');
    await expectRefusedNaming(adapter.idMaps.clearError(SCOPE, { connecId: 'c-1' }, { code: 'poisoned', message: '', at: YEAR_10000 }), 'idMaps.clearError', 'error.at');
    expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-1' })).toMatchObject({ tombstonedAt: null, lastAppliedAt: null });
  },
};

export const storableReplayCases: StorageCases = {
  'a tenant or assertion id holding a NUL or an unpaired surrogate is refused naming it': async ({ adapter }) => {
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.replay.remember(TENANT, bad, MAX_INSTANT), 'replay.remember', 'assertionId');
      await expectRefusedNaming(adapter.replay.remember(bad, 'a-1', MAX_INSTANT), 'replay.remember', 'tenant');
      await expectRefusedNaming(adapter.replay.forget(TENANT, bad, MAX_INSTANT), 'replay.forget', 'assertionId');
      await expectRefusedNaming(adapter.replay.forget(bad, 'a-1', MAX_INSTANT), 'replay.forget', 'tenant');
    }
    // Two different ids close to one another are two assertions.
    expect(await adapter.replay.remember(TENANT, 'a-\uFFFD', MAX_INSTANT)).toBe(true);
    expect(await adapter.replay.remember(TENANT, 'a-😀', MAX_INSTANT)).toBe(true);
    expect(await adapter.replay.remember(TENANT, 'a-\uFFFD', MAX_INSTANT)).toBe(false);
    // Forgetting one of them leaves the other.
    expect(await adapter.replay.forget(TENANT, 'a-😀', MAX_INSTANT)).toBe(true);
    expect(await adapter.replay.remember(TENANT, 'a-\uFFFD', MAX_INSTANT)).toBe(false);
  },

  'an expiry after 9999-12-31T23:59:59.999Z is refused; one at it is kept': async ({ adapter, clock }) => {
    await expectRefusedNaming(adapter.replay.remember(TENANT, 'a-1', YEAR_10000), 'replay.remember', 'expiresAt');
    expect(await adapter.replay.remember(TENANT, 'a-1', MAX_INSTANT)).toBe(true);
    clock.advance(365 * 24 * 3_600_000);
    expect(await adapter.replay.remember(TENANT, 'a-1', MAX_INSTANT)).toBe(false);
    await expectRefusedNaming(adapter.replay.forget(TENANT, 'a-1', YEAR_10000), 'replay.forget', 'expiresAt');
    expect(await adapter.replay.forget(TENANT, 'a-1', MAX_INSTANT)).toBe(true);
  },
};

export const storableLockCases: StorageCases = {
  'a lock key or owner holding a NUL or an unpaired surrogate is refused naming it and takes nothing (acquire, acquireMany)': async ({
    adapter,
  }) => {
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.locks.acquire(bad, 'a', 60_000), 'locks.acquire', 'key');
      await expectRefusedNaming(adapter.locks.acquire('lock-1', bad, 60_000), 'locks.acquire', 'owner');
      await expectRefusedNaming(adapter.locks.acquireMany(['lock-1', bad], 'a', 60_000), 'locks.acquireMany', 'key');
      await expectRefusedNaming(adapter.locks.acquireMany(['lock-1'], bad, 60_000), 'locks.acquireMany', 'owner');
    }
    // Nothing was taken: another owner gets the lock at once.
    expect(await adapter.locks.acquire('lock-1', 'b', 60_000)).toBe(true);
    expect(await adapter.locks.acquire('lock-\uFFFD', 'a', 60_000)).toBe(true);
    expect(await adapter.locks.acquire('lock-\uFFFD', 'b', 60_000)).toBe(false);
  },

  'a lock whose TTL reaches past year 9999 ends at 9999-12-31T23:59:59.999Z and stays exclusive (acquire, refresh, acquireMany)': needs(
    ['inspect'],
    async ({ adapter, clock, inspect }) => {
      for (const [index, ttlMs] of HUGE_TTLS.entries()) {
        const key = `lock-${index}`;
        expect(await adapter.locks.acquire(key, 'a', ttlMs)).toBe(true);
        expectDate((await inspect.lock(key))?.expiresAt, MAX_INSTANT);
        clock.advance(365 * 24 * 3_600_000);
        expect(await adapter.locks.acquire(key, 'b', 60_000)).toBe(false);
        expect(await adapter.locks.refresh(key, 'a', ttlMs)).toBe(true);
        expectDate((await inspect.lock(key))?.expiresAt, MAX_INSTANT);
        expect(await adapter.locks.acquire(key, 'b', 60_000)).toBe(false);
        expect(await adapter.locks.acquireMany([`many-${index}`], 'a', ttlMs)).toEqual([`many-${index}`]);
        expectDate((await inspect.lock(`many-${index}`))?.expiresAt, MAX_INSTANT);
        expect(await adapter.locks.acquireMany([`many-${index}`], 'b', 60_000)).toEqual([]);
      }
    },
  ),
};

export const storableUserCases: StorageCases = {
  'tenant, uid, owner, userId and membership fields holding a NUL or an unpaired surrogate are refused naming them and store nothing': async ({
    adapter,
  }) => {
    const claim = { owner: 'o', ttlMs: 60_000 };
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.users.claim(bad, 'usr-1', claim), 'users.claim', 'tenant');
      await expectRefusedNaming(adapter.users.claim(TENANT, bad, claim), 'users.claim', 'uid');
      await expectRefusedNaming(adapter.users.claim(TENANT, 'usr-1', { owner: bad, ttlMs: 60_000 }), 'users.claim', 'owner');
    }
    expect((await adapter.users.claim(TENANT, 'usr-1', claim)).state).toBe('claimed');
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.users.complete(TENANT, 'usr-1', 'o', { userId: bad }), 'users.complete', 'userId');
    }
    expect(await adapter.users.get(TENANT, 'usr-1')).toBeNull();
    await adapter.users.complete(TENANT, 'usr-1', 'o', { userId: 'u-\uFFFD' });
    expect((await adapter.users.findByUserId(TENANT, 'u-\uFFFD')).map((u) => u.uid)).toEqual(['usr-1']);
    for (const [, bad] of UNSTORABLE_TEXT) {
      await expectRefusedNaming(adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, bad), 'users.upsertMembership', 'role');
      await expectRefusedNaming(adapter.users.upsertMembership(TENANT, 'usr-1', bad, 'Member'), 'users.upsertMembership', 'groupId');
      await expectRefusedNaming(adapter.users.upsertMembership(TENANT, bad, GROUP, 'Member'), 'users.upsertMembership', 'uid');
    }
    expect(await adapter.users.listMemberships(TENANT, {})).toEqual([]);
  },
};

// Lookups and key-addressed operations refuse unstorable text arguments as writes do: on
// PostgreSQL a lookup by 'cld-\uD800' would otherwise find the row stored as 'cld-\uFFFD' (an
// unpaired surrogate is read as U+FFFD) and a NUL fails inside the database. Each case stores
// a row under the U+FFFD twin of the bad text, so a lookup that reached the database would
// find it.

/** Text arguments of a lookup, each an unstorable text whose U+FFFD twin is stored. */
const UNSTORABLE_LOOKUPS: [bad: string, stored: string][] = [
  ['cld-\uD800', 'cld-\uFFFD'],
  ['cld-\uDC00', 'cld-\uFFFD'],
  ['a\u0000b', 'a\uFFFDb'],
];
/** The stored twins of `UNSTORABLE_LOOKUPS`, once each. */
const STORED_TWINS = [...new Set(UNSTORABLE_LOOKUPS.map(([, stored]) => stored))];

export const storableLookupGroupCases: StorageCases = {
  'lookups by a tenant, groupId or owner holding a NUL or an unpaired surrogate are refused naming them and never reach a stored twin (get, update, cancel, list, complete, release)': async ({
    adapter,
  }) => {
    const claim = { owner: 'o', ttlMs: 60_000 };
    for (const stored of STORED_TWINS) {
      expect((await adapter.groups.claim(stored, stored, claim)).state).toBe('claimed');
      await adapter.groups.complete(stored, stored, 'o', { companyId: 'c' });
    }
    // A claim left pending under the twin of the bad owner, to be sure `complete` and `release` see it.
    expect((await adapter.groups.claim(TENANT, 'cld-\uFFFD', { owner: 'o-\uFFFD', ttlMs: 60_000 })).state).toBe('claimed');
    const before = await adapter.groups.list('cld-\uFFFD');
    for (const [bad, stored] of UNSTORABLE_LOOKUPS) {
      await expectRefusedNaming(adapter.groups.get(stored, bad), 'groups.get', 'groupId');
      await expectRefusedNaming(adapter.groups.get(bad, stored), 'groups.get', 'tenant');
      await expectRefusedNaming(adapter.groups.update(stored, bad, { orgUid: 'org-1' }), 'groups.update', 'groupId');
      await expectRefusedNaming(adapter.groups.update(bad, stored, { orgUid: 'org-1' }), 'groups.update', 'tenant');
      await expectRefusedNaming(adapter.groups.cancel(stored, bad), 'groups.cancel', 'groupId');
      await expectRefusedNaming(adapter.groups.cancel(bad, stored), 'groups.cancel', 'tenant');
      await expectRefusedNaming(adapter.groups.list(bad), 'groups.list', 'tenant');
      await expectRefusedNaming(adapter.groups.list(stored, { after: bad }), 'groups.list', 'after');
      await expectRefusedNaming(adapter.groups.complete(TENANT, bad, 'o-\uFFFD', { companyId: 'c' }), 'groups.complete', 'groupId');
      await expectRefusedNaming(adapter.groups.complete(TENANT, 'cld-\uFFFD', 'o-\uD800', { companyId: 'c' }), 'groups.complete', 'owner');
      await expectRefusedNaming(adapter.groups.release(TENANT, bad, 'o-\uFFFD'), 'groups.release', 'groupId');
      await expectRefusedNaming(adapter.groups.release(TENANT, 'cld-\uFFFD', 'o-\uD800'), 'groups.release', 'owner');
    }
    expect(await adapter.groups.list('cld-\uFFFD')).toEqual(before);
    expect(await adapter.groups.get('cld-\uFFFD', 'cld-\uFFFD')).toMatchObject({ status: 'active', orgUid: null, cancelledAt: null });
    expect(await adapter.groups.get(TENANT, 'cld-\uFFFD')).toBeNull();
    expect((await adapter.groups.claim(TENANT, 'cld-\uFFFD', { owner: 'other', ttlMs: 60_000 })).state).toBe('pending');
  },
};

export const storableLookupUserCases: StorageCases = {
  'lookups by a tenant, uid, userId, owner, groupId or exceptUid holding a NUL or an unpaired surrogate are refused naming them and change nothing': async ({
    adapter,
  }) => {
    const claim = { owner: 'o', ttlMs: 60_000 };
    for (const stored of STORED_TWINS) {
      expect((await adapter.users.claim(TENANT, stored, claim)).state).toBe('claimed');
      await adapter.users.complete(TENANT, stored, 'o', { userId: stored });
      await adapter.users.upsertMembership(TENANT, stored, stored, 'Member');
    }
    expect((await adapter.users.claim(TENANT, 'usr-\uFFFD', { owner: 'o-\uFFFD', ttlMs: 60_000 })).state).toBe('claimed');
    for (const [bad, stored] of UNSTORABLE_LOOKUPS) {
      await expectRefusedNaming(adapter.users.get(TENANT, bad), 'users.get', 'uid');
      await expectRefusedNaming(adapter.users.get(bad, stored), 'users.get', 'tenant');
      await expectRefusedNaming(adapter.users.findByUserId(TENANT, bad), 'users.findByUserId', 'userId');
      await expectRefusedNaming(adapter.users.findByUserId(bad, stored), 'users.findByUserId', 'tenant');
      await expectRefusedNaming(adapter.users.setStatus(TENANT, bad, 'blocked'), 'users.setStatus', 'uid');
      await expectRefusedNaming(adapter.users.setMembershipStatus(TENANT, bad, stored, 'removed'), 'users.setMembershipStatus', 'uid');
      await expectRefusedNaming(adapter.users.setMembershipStatus(TENANT, stored, bad, 'removed'), 'users.setMembershipStatus', 'groupId');
      await expectRefusedNaming(adapter.users.listMemberships(TENANT, { uid: bad }), 'users.listMemberships', 'uid');
      await expectRefusedNaming(adapter.users.listMemberships(TENANT, { groupId: bad }), 'users.listMemberships', 'groupId');
      await expectRefusedNaming(adapter.users.listMemberships(bad, {}), 'users.listMemberships', 'tenant');
      await expectRefusedNaming(adapter.users.seats(TENANT, bad), 'users.seats', 'groupId');
      await expectRefusedNaming(adapter.users.seats(bad, stored), 'users.seats', 'tenant');
      await expectRefusedNaming(adapter.users.seats(TENANT, stored, { exceptUid: bad }), 'users.seats', 'exceptUid');
      await expectRefusedNaming(adapter.users.complete(TENANT, 'usr-\uFFFD', 'o-\uD800', { userId: 'u' }), 'users.complete', 'owner');
      await expectRefusedNaming(adapter.users.complete(TENANT, bad, 'o-\uFFFD', { userId: 'u' }), 'users.complete', 'uid');
      await expectRefusedNaming(adapter.users.release(TENANT, 'usr-\uFFFD', 'o-\uD800'), 'users.release', 'owner');
    }
    for (const stored of STORED_TWINS) {
      expect(await adapter.users.get(TENANT, stored)).toMatchObject({ userId: stored, status: 'active' });
      expect(await adapter.users.listMemberships(TENANT, { uid: stored })).toMatchObject([{ groupId: stored, status: 'active' }]);
      expect((await adapter.users.seats(TENANT, stored, { exceptUid: 'usr-\uFFFD' })).active).toBe(1);
    }
    expect(await adapter.users.get(TENANT, 'usr-\uFFFD')).toBeNull();
    expect((await adapter.users.claim(TENANT, 'usr-\uFFFD', { owner: 'other', ttlMs: 60_000 })).state).toBe('pending');
  },
};

export const storableLookupIdMapCases: StorageCases = {
  'lookups by a scope, id or list position holding a NUL or an unpaired surrogate are refused naming them and change nothing': async ({
    adapter,
    clock,
  }) => {
    const twin: typeof SCOPE = { tenant: 'cld-\uFFFD', groupId: 'cld-\uFFFD', entity: 'cld-\uFFFD' };
    for (const stored of STORED_TWINS) {
      await adapter.idMaps.insert({ ...SCOPE, connecId: stored, localId: `l-${stored}` });
      await adapter.idMaps.insert({ ...twin, connecId: stored, localId: `l-${stored}` });
    }
    const before = [await adapter.idMaps.list(SCOPE, { limit: 10 }), await adapter.idMaps.list(twin, { limit: 10 })];
    for (const [bad] of UNSTORABLE_LOOKUPS) {
      for (const field of ['tenant', 'groupId', 'entity'] as const) {
        const scope = { ...twin, [field]: bad };
        await expectRefusedNaming(adapter.idMaps.find(scope, { connecId: 'cld-\uFFFD' }), 'idMaps.find', field);
        await expectRefusedNaming(adapter.idMaps.findManyByConnecIds(scope, ['cld-\uFFFD']), 'idMaps.findManyByConnecIds', field);
        await expectRefusedNaming(adapter.idMaps.update(scope, { connecId: 'cld-\uFFFD' }, { lastPushedHash: 'h' }), 'idMaps.update', field);
        await expectRefusedNaming(adapter.idMaps.markApplied(scope, { connecId: 'cld-\uFFFD' }, new Date(clock.ms()), 'h'), 'idMaps.markApplied', field);
        await expectRefusedNaming(adapter.idMaps.list(scope, { limit: 10 }), 'idMaps.list', field);
      }
      await expectRefusedNaming(adapter.idMaps.find(SCOPE, { connecId: bad }), 'idMaps.find', 'connecId');
      await expectRefusedNaming(adapter.idMaps.find(SCOPE, { localId: bad }), 'idMaps.find', 'localId');
      await expectRefusedNaming(adapter.idMaps.findManyByConnecIds(SCOPE, ['c-1', bad]), 'idMaps.findManyByConnecIds', 'connecId');
      await expectRefusedNaming(adapter.idMaps.update(SCOPE, { connecId: bad }, { lastPushedHash: 'h' }), 'idMaps.update', 'connecId');
      await expectRefusedNaming(adapter.idMaps.markApplied(SCOPE, { connecId: bad }, new Date(clock.ms()), 'h'), 'idMaps.markApplied', 'connecId');
      await expectRefusedNaming(adapter.idMaps.list(SCOPE, { limit: 10, after: bad }), 'idMaps.list', 'after');
      await expectRefusedNaming(adapter.idMaps.purgeGroup('cld-\uFFFD', bad), 'idMaps.purgeGroup', 'groupId');
      await expectRefusedNaming(adapter.idMaps.purgeGroup(bad, 'cld-\uFFFD'), 'idMaps.purgeGroup', 'tenant');
    }
    expect([await adapter.idMaps.list(SCOPE, { limit: 10 }), await adapter.idMaps.list(twin, { limit: 10 })]).toEqual(before);
  },
};

export const storableLookupCursorCases: StorageCases = {
  'lookups by a cursor key holding a NUL or an unpaired surrogate are refused naming it and change nothing (get, reset, list)': async ({ adapter }) => {
    const twin = { tenant: 'cld-\uFFFD', groupId: 'cld-\uFFFD', entity: 'cld-\uFFFD', kind: 'cld-\uFFFD' };
    expect(await adapter.cursors.advance(twin, 1, { page: 1 })).toBe(true);
    for (const [bad] of UNSTORABLE_LOOKUPS) {
      for (const field of ['tenant', 'groupId', 'entity', 'kind'] as const) {
        await expectRefusedNaming(adapter.cursors.get({ ...twin, [field]: bad }), 'cursors.get', field);
        await expectRefusedNaming(adapter.cursors.reset({ ...twin, [field]: bad }), 'cursors.reset', field);
      }
      await expectRefusedNaming(adapter.cursors.list(bad, twin.groupId), 'cursors.list', 'tenant');
      await expectRefusedNaming(adapter.cursors.list(twin.tenant, bad), 'cursors.list', 'groupId');
    }
    expect(await adapter.cursors.get(twin)).toMatchObject({ position: 1, data: { page: 1 } });
  },
};

export const storableLookupJobCases: StorageCases = {
  'lookups by a type, tenant, group or worker holding a NUL or an unpaired surrogate are refused naming them and change nothing': async ({
    adapter,
    clock,
  }) => {
    const { id } = await adapter.jobs.enqueue(job({ type: 'cld-\uFFFD', tenant: 'cld-\uFFFD', groupId: 'cld-\uFFFD' }));
    const [claimed] = await adapter.jobs.claim({ worker: 'cld-\uFFFD', limit: 1, leaseMs: 60_000 });
    expect(claimed?.id).toBe(id);
    const dead = await adapter.jobs.enqueue(job({ type: 'cld-\uFFFD', tenant: 'cld-\uFFFD', groupId: 'cld-\uFFFD', maxAttempts: 1 }));
    expect((await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000 }))[0]?.id).toBe(dead.id);
    expect(await adapter.jobs.fail(dead.id, 'w', { error: { message: 'x' }, retryAt: new Date(clock.ms()) })).toBe('dead');
    await adapter.jobs.enqueue(job({ type: 'cld-\uFFFD', payload: 'pending' }));
    const counts = await adapter.jobs.counts();
    for (const [bad] of UNSTORABLE_LOOKUPS) {
      await expectRefusedNaming(adapter.jobs.claim({ worker: 'w2', limit: 5, leaseMs: 60_000, types: ['storable', bad] }), 'jobs.claim', 'type');
      for (const field of ['tenant', 'type', 'groupId'] as const) {
        await expectRefusedNaming(adapter.jobs.listDead({ [field]: bad }), 'jobs.listDead', field);
      }
      await expectRefusedNaming(adapter.jobs.counts({ tenant: bad }), 'jobs.counts', 'tenant');
      await expectRefusedNaming(adapter.jobs.counts({ type: bad }), 'jobs.counts', 'type');
      await expectRefusedNaming(adapter.jobs.heartbeat(id, bad, 60_000), 'jobs.heartbeat', 'worker');
      await expectRefusedNaming(adapter.jobs.heartbeatMany([id], bad, 60_000), 'jobs.heartbeatMany', 'worker');
      await expectRefusedNaming(adapter.jobs.complete(id, bad), 'jobs.complete', 'worker');
      await expectRefusedNaming(adapter.jobs.completeMany([id], bad), 'jobs.completeMany', 'worker');
      await expectRefusedNaming(adapter.jobs.fail(id, bad, { error: { message: 'x' }, retryAt: new Date(clock.ms()) }), 'jobs.fail', 'worker');
      await expectRefusedNaming(adapter.jobs.release(id, bad), 'jobs.release', 'worker');
    }
    expect(await adapter.jobs.counts()).toEqual(counts);
    expect(await adapter.jobs.get(id)).toMatchObject({ status: 'running', leaseOwner: 'cld-\uFFFD', attempts: 1, lastError: null });
    expect((await adapter.jobs.listDead({ type: 'cld-\uFFFD', tenant: 'cld-\uFFFD', groupId: 'cld-\uFFFD' })).map((j) => j.id)).toEqual([dead.id]);
    expect(await adapter.jobs.complete(id, 'cld-\uFFFD')).toBe(true);
  },
};

export const storableLookupLedgerCases: StorageCases = {
  'lookups by a ledger key or owner holding a NUL or an unpaired surrogate are refused naming them and change nothing (get, complete, release)': async ({
    adapter,
  }) => {
    for (const stored of STORED_TWINS) {
      expect((await adapter.ledger.claim(stored, { owner: stored, ttlMs: 60_000, intent: null })).state).toBe('claimed');
    }
    for (const [bad, stored] of UNSTORABLE_LOOKUPS) {
      await expectRefusedNaming(adapter.ledger.get(bad), 'ledger.get', 'key');
      await expectRefusedNaming(adapter.ledger.complete(bad, stored, null), 'ledger.complete', 'key');
      await expectRefusedNaming(adapter.ledger.complete(stored, bad, null), 'ledger.complete', 'owner');
      await expectRefusedNaming(adapter.ledger.release(bad, stored), 'ledger.release', 'key');
      await expectRefusedNaming(adapter.ledger.release(stored, bad), 'ledger.release', 'owner');
    }
    for (const stored of STORED_TWINS) {
      expect(await adapter.ledger.get(stored)).toMatchObject({ status: 'pending', owner: stored });
    }
  },
};

export const storableLookupLockCases: StorageCases = {
  'a lock key or owner holding a NUL or an unpaired surrogate is refused naming it and changes nothing (refresh, release, releaseMany)': async ({
    adapter,
  }) => {
    for (const stored of STORED_TWINS) expect(await adapter.locks.acquire(stored, stored, 60_000)).toBe(true);
    for (const [bad, stored] of UNSTORABLE_LOOKUPS) {
      await expectRefusedNaming(adapter.locks.refresh(bad, stored, 60_000), 'locks.refresh', 'key');
      await expectRefusedNaming(adapter.locks.refresh(stored, bad, 60_000), 'locks.refresh', 'owner');
      await expectRefusedNaming(adapter.locks.release(bad, stored), 'locks.release', 'key');
      await expectRefusedNaming(adapter.locks.release(stored, bad), 'locks.release', 'owner');
      await expectRefusedNaming(adapter.locks.releaseMany([stored, bad], stored), 'locks.releaseMany', 'key');
      await expectRefusedNaming(adapter.locks.releaseMany([stored], bad), 'locks.releaseMany', 'owner');
    }
    for (const stored of STORED_TWINS) expect(await adapter.locks.acquire(stored, 'other', 60_000)).toBe(false);
  },
};
