import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, needs, race } from './helpers.js';
import { raceTakeAndRelease } from './release-race.js';
import { expectProtoKeyKept, PROTO_JSON } from './proto-json.js';

const TTL = 120_000;
const KEY = 'charge:tenant-a:cld-1001:2031-01';
const INTENT = { amountCents: 4_900, currency: 'AUD', description: 'Pro plan, Jan 2031', lines: [{ qty: 1 }] };

export const ledgerCases: StorageCases = {
  'get returns null for an unknown key': async ({ adapter }) => {
    expect(await adapter.ledger.get(KEY)).toBeNull();
  },

  'the first claim wins and stores a pending entry with its intent': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const claim = await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    expect(claim.state).toBe('claimed');
    if (claim.state === 'claimed') expect(claim.recovered).toBe(false);
    expect(claim.entry).toMatchObject({ key: KEY, status: 'pending', owner: 'w1', intent: INTENT, outcome: null });
    expectDate(claim.entry.claimExpiresAt, clock.ms() + TTL);
    const row = await inspect.ledger(KEY);
    expect(row).toMatchObject({ key: KEY, status: 'pending', owner: 'w1', outcome: null });
    expect(row?.intent).toEqual(INTENT);
    expectDate(row?.claimExpiresAt, clock.ms() + TTL);
    expectDate(row?.createdAt, clock.ms());
    expect(await adapter.ledger.get(KEY)).toEqual(claim.entry);
  }),

  'a live claim makes other callers wait (pending with the entry)': async ({ adapter }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    const second = await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: { other: true } });
    expect(second.state).toBe('pending');
    expect(second.entry).toMatchObject({ owner: 'w1', status: 'pending', intent: INTENT });
  },

  '20 concurrent claims of one key: exactly one claimed, 19 pending': needs(['concurrency'], async (context) => {
    const results = await race(context, 20, (adapter, i) =>
      adapter.ledger.claim(KEY, { owner: `w${i}`, ttlMs: TTL, intent: { i } }),
    );
    const winners = results.filter((r) => r.state === 'claimed');
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.state === 'pending')).toHaveLength(19);
    const entry = await context.adapter.ledger.get(KEY);
    expect(entry?.owner).toBe(winners[0]?.entry.owner);
    expect(entry?.intent).toEqual(winners[0]?.entry.intent);
  }),

  'complete records the outcome once; later claims see done': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    clock.advance(2_000);
    expect(await adapter.ledger.complete(KEY, 'w1', { billId: 'b-123', status: 'submitted' })).toBe(true);
    expect(await adapter.ledger.complete(KEY, 'w1', { billId: 'b-999' })).toBe(false);
    const done = await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT });
    expect(done.state).toBe('done');
    expect(done.entry).toMatchObject({ status: 'done', outcome: { billId: 'b-123', status: 'submitted' } });
    expectDate(done.entry.updatedAt, clock.ms());
    const row = await inspect.ledger(KEY);
    expect(row?.status).toBe('done');
    expect(row?.outcome).toEqual({ billId: 'b-123', status: 'submitted' });
    clock.advance(TTL * 10);
    expect((await adapter.ledger.claim(KEY, { owner: 'w3', ttlMs: TTL, intent: INTENT })).state).toBe('done');
  }),

  'a null outcome is recorded as null and the entry is done': async ({ adapter }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: null });
    expect(await adapter.ledger.complete(KEY, 'w1', null)).toBe(true);
    expect(await adapter.ledger.get(KEY)).toMatchObject({ status: 'done', outcome: null, intent: null });
  },

  'complete by a non-owner returns false and records nothing': async ({ adapter }) => {
    expect(await adapter.ledger.complete(KEY, 'w1', { billId: 'x' })).toBe(false);
    expect(await adapter.ledger.get(KEY)).toBeNull();
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    expect(await adapter.ledger.complete(KEY, 'w2', { billId: 'x' })).toBe(false);
    expect(await adapter.ledger.get(KEY)).toMatchObject({ status: 'pending', owner: 'w1', outcome: null });
  },

  'an expired claim is recovered by the next caller, who must reconcile; the old owner cannot complete': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
      clock.advance(TTL + 1);
      const recovered = await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT });
      expect(recovered.state).toBe('claimed');
      if (recovered.state === 'claimed') expect(recovered.recovered).toBe(true);
      expect(recovered.entry).toMatchObject({ owner: 'w2', status: 'pending', intent: INTENT });
      expectDate(recovered.entry.claimExpiresAt, clock.ms() + TTL);
      expect((await adapter.ledger.claim(KEY, { owner: 'w3', ttlMs: TTL, intent: INTENT })).state).toBe('pending');
      expect(await adapter.ledger.complete(KEY, 'w1', { billId: 'stale' })).toBe(false);
      expect(await adapter.ledger.complete(KEY, 'w2', { billId: 'b-1' })).toBe(true);
      expect((await adapter.ledger.get(KEY))?.outcome).toEqual({ billId: 'b-1' });
    },
  ),

  'a ledger claim has expired once its expiry instant is reached: the next caller recovers it then, not earlier': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
      clock.advance(TTL - 1);
      expect((await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT })).state).toBe('pending');
      clock.advance(1);
      const recovered = await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT });
      expect(recovered).toMatchObject({ state: 'claimed', recovered: true, entry: { owner: 'w2' } });
    },
  ),

  // recovered tells the caller to reconcile a side effect an expired claim may have left; the
  // owner claiming its own live claim again (a retried request) has nothing to reconcile.
  'the owner claiming its own live claim again is claimed without recovery': needs(['clock'], async ({ adapter, clock }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    clock.advance(1_000);
    const again = await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    expect(again).toMatchObject({ state: 'claimed', recovered: false, entry: { owner: 'w1', status: 'pending' } });
    expect((await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT })).state).toBe('pending');
    expect(await adapter.ledger.complete(KEY, 'w1', { billId: 'b-1' })).toBe(true);
  }),

  'release drops the owner unfinished claim and leaves no row': needs(['inspect'], async ({ adapter, inspect }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    await adapter.ledger.release(KEY, 'w1');
    expect(await inspect.ledger(KEY)).toBeNull();
    expect(await adapter.ledger.get(KEY)).toBeNull();
    const next = await adapter.ledger.claim(KEY, { owner: 'w2', ttlMs: TTL, intent: INTENT });
    expect(next.state).toBe('claimed');
    if (next.state === 'claimed') expect(next.recovered).toBe(false);
  }),

  'release by another owner, or of a done entry, changes nothing': async ({ adapter }) => {
    await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: INTENT });
    await adapter.ledger.release(KEY, 'w2');
    expect((await adapter.ledger.get(KEY))?.owner).toBe('w1');
    await adapter.ledger.complete(KEY, 'w1', { billId: 'b-1' });
    await adapter.ledger.release(KEY, 'w1');
    expect(await adapter.ledger.get(KEY)).toMatchObject({ status: 'done', outcome: { billId: 'b-1' } });
  },

  'a claim with a non-positive ttl is rejected with StorageError and stores nothing': async ({ adapter }) => {
    await expectStorageError(adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: 0, intent: INTENT }), 'ledger.claim');
    expect(await adapter.ledger.get(KEY)).toBeNull();
  },

  'claims racing releases of one key from several callers never throw a conflict and never have two owners at once': needs(
    ['concurrency'],
    // A release deletes the entry while other callers are creating it: every claim must
    // still answer with a state (claimed/pending), never a conflict error.
    (context) =>
      raceTakeAndRelease(context, {
        async take(adapter, owner, round) {
          const claim = await adapter.ledger.claim(KEY, { owner, ttlMs: TTL, intent: { round } });
          if (claim.state === 'done') throw new Error(`${owner} saw a done entry`);
          return claim.state === 'claimed';
        },
        async check(adapter, owner) {
          const stored = await adapter.ledger.get(KEY);
          return stored?.owner === owner ? null : `claimed, but the entry is owned by ${String(stored?.owner)}`;
        },
        release: (adapter, owner) => adapter.ledger.release(KEY, owner),
      }),
  ),

  'an intent and outcome holding a "__proto__" key keep it as data': needs(['inspect'], async ({ adapter, inspect }) => {
    const claim = await adapter.ledger.claim(KEY, { owner: 'w1', ttlMs: TTL, intent: PROTO_JSON() });
    expectProtoKeyKept(claim.entry.intent);
    expectProtoKeyKept((await adapter.ledger.get(KEY))?.intent);
    expectProtoKeyKept((await inspect.ledger(KEY))?.intent);
    expect(await adapter.ledger.complete(KEY, 'w1', PROTO_JSON())).toBe(true);
    expectProtoKeyKept((await adapter.ledger.get(KEY))?.outcome);
    expectProtoKeyKept((await inspect.ledger(KEY))?.outcome);
  }),
};
