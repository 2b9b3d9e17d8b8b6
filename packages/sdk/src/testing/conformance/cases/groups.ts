import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectConflict, expectDate, expectStorageError, GROUP, needs, OTHER_TENANT, race, TENANT } from './helpers.js';

const TTL = 30_000;

export const groupCases: StorageCases = {
  'get returns null for an unknown group': async ({ adapter }) => {
    expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
  },

  'claim on a new group is claimed without takeover; the claim is stored but get stays null': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      const claim = await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
      expect(claim).toEqual({ state: 'claimed', takeover: false });
      expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
      expect(await adapter.groups.list(TENANT)).toEqual([]);
      const row = await inspect.group(TENANT, GROUP);
      expect(row).not.toBeNull();
      expect(row?.claimOwner).toBe('w1');
      expect(row?.companyId ?? null).toBeNull();
    },
  ),

  'a second owner gets pending with the live claim expiry': async ({ adapter, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const start = clock.ms();
    clock.advance(1_000);
    const second = await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL });
    expect(second.state).toBe('pending');
    if (second.state === 'pending') expectDate(second.claimExpiresAt, start + TTL);
  },

  'complete turns the claim into an active group with exactly the given fields': async ({ adapter, clock }) => {
    const claimedAt = clock.ms();
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    clock.advance(1_234);
    const trialEndsAt = new Date(Date.UTC(2031, 1, 1, 10, 30, 15, 123));
    const settings = { plan: 'pro', connectors: { invoices: true, contacts: false }, tags: ['a', 1, null] };
    const group = await adapter.groups.complete(TENANT, GROUP, 'w1', {
      companyId: 'company-1',
      orgUid: 'org-fbba',
      trialEndsAt,
      settings,
    });
    expect(group).toMatchObject({
      tenant: TENANT,
      groupId: GROUP,
      companyId: 'company-1',
      status: 'active',
      orgUid: 'org-fbba',
      settings,
      cancelledAt: null,
    });
    expectDate(group.trialEndsAt, trialEndsAt);
    expectDate(group.updatedAt, clock.ms());
    // Provisioned now, not when claimed.
    expectDate(group.createdAt, clock.ms());
    expect(group.createdAt.getTime()).toBeGreaterThan(claimedAt);
    expect(await adapter.groups.get(TENANT, GROUP)).toEqual(group);
  },

  'a claim abandoned days ago and taken over: createdAt is when the taker completed it': async ({ adapter, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'crashed', ttlMs: TTL });
    clock.advance(10 * 86_400_000);
    expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: true });
    clock.advance(500);
    const group = await adapter.groups.complete(TENANT, GROUP, 'w2', { companyId: 'company-1' });
    expectDate(group.createdAt, clock.ms());
    expectDate((await adapter.groups.get(TENANT, GROUP))?.createdAt, clock.ms());
  },

  'complete defaults orgUid and trialEndsAt to null and settings to {}': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const group = await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    expect(group).toMatchObject({ orgUid: null, trialEndsAt: null, settings: {}, status: 'active' });
    expect(await adapter.groups.get(TENANT, GROUP)).toMatchObject({ orgUid: null, trialEndsAt: null, settings: {} });
  },

  'claim after completion returns exists with the record': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const group = await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    const again = await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL });
    expect(again).toEqual({ state: 'exists', record: group });
  },

  'complete by a caller that does not own the claim throws StorageConflictError and changes nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
      await expectConflict(adapter.groups.complete(TENANT, GROUP, 'intruder', { companyId: 'c-x' }), 'groups.complete');
      expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
      const row = await inspect.group(TENANT, GROUP);
      expect(row?.claimOwner).toBe('w1');
      expect(row?.companyId ?? null).toBeNull();
    },
  ),

  'complete without any claim throws StorageConflictError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await expectConflict(adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'c-1' }), 'groups.complete');
      expect(await inspect.group(TENANT, GROUP)).toBeNull();
    },
  ),

  'complete of an already provisioned group throws StorageConflictError and keeps the first company': async ({
    adapter,
  }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    await expectConflict(adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-2' }), 'groups.complete');
    expect((await adapter.groups.get(TENANT, GROUP))?.companyId).toBe('company-1');
  },

  'an expired claim is taken over and its old owner can no longer complete': needs(['clock'], async ({ adapter, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    clock.advance(TTL + 1);
    expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).toEqual({
      state: 'claimed',
      takeover: true,
    });
    expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'w3', ttlMs: TTL })).state).toBe('pending');
    await expectConflict(adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'stale' }), 'groups.complete');
    const group = await adapter.groups.complete(TENANT, GROUP, 'w2', { companyId: 'fresh' });
    expect(group.companyId).toBe('fresh');
  }),

  'a claim has expired once its expiry instant is reached: another owner takes it over then, not a millisecond earlier': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
      clock.advance(TTL - 1);
      expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).state).toBe('pending');
      clock.advance(1);
      expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: true });
    },
  ),

  // takeover reports a claim of another owner taken over; an owner claiming again (a retried
  // request) is no takeover, and its claim then blocks others for the new ttl.
  'the owner claiming its own claim again is claimed without takeover and blocks others for the new ttl': needs(
    ['clock'],
    async ({ adapter, clock }) => {
      await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
      clock.advance(TTL / 2);
      expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: false });
      clock.advance(TTL / 2 + 1);
      const second = await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL });
      expect(second.state).toBe('pending');
      if (second.state === 'pending') expectDate(second.claimExpiresAt, clock.ms() - 1 + TTL / 2);
      // Its own claim expired and nobody took it over: claiming again is still no takeover, and blocks again.
      clock.advance(TTL);
      expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL })).toEqual({ state: 'claimed', takeover: false });
      expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).state).toBe('pending');
      expect((await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' })).companyId).toBe('company-1');
    },
  ),

  'release drops the owner claim and leaves no row; the next claim starts over': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
      await adapter.groups.release(TENANT, GROUP, 'w1');
      expect(await inspect.group(TENANT, GROUP)).toBeNull();
      expect(await adapter.groups.claim(TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).toEqual({
        state: 'claimed',
        takeover: false,
      });
    },
  ),

  'release by another owner is a no-op': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    await adapter.groups.release(TENANT, GROUP, 'w2');
    expect((await adapter.groups.claim(TENANT, GROUP, { owner: 'w3', ttlMs: TTL })).state).toBe('pending');
    const group = await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    expect(group.companyId).toBe('company-1');
  },

  'release after completion keeps the provisioned group': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    await adapter.groups.release(TENANT, GROUP, 'w1');
    expect((await adapter.groups.get(TENANT, GROUP))?.companyId).toBe('company-1');
  },

  '20 concurrent claims for a new group: exactly one claimed, 19 pending': needs(['concurrency'], async (context) => {
    const results = await race(context, 20, (adapter, i) =>
      adapter.groups.claim(TENANT, GROUP, { owner: `w${i}`, ttlMs: TTL }),
    );
    expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'pending')).toHaveLength(19);
    const winner = results.findIndex((r) => r.state === 'claimed');
    const group = await context.adapter.groups.complete(TENANT, GROUP, `w${winner}`, { companyId: 'company-1' });
    const after = await race(context, 20, (adapter, i) =>
      adapter.groups.claim(TENANT, GROUP, { owner: `x${i}`, ttlMs: TTL }),
    );
    expect(after.every((r) => r.state === 'exists' && r.record.companyId === group.companyId)).toBe(true);
  }),

  'update patches only the given fields and bumps updatedAt': async ({ adapter, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const created = await adapter.groups.complete(TENANT, GROUP, 'w1', {
      companyId: 'company-1',
      orgUid: 'org-1',
      settings: { a: 1, nested: { keep: true } },
    });
    clock.advance(5_000);
    const trialEndsAt = new Date(Date.UTC(2031, 5, 1, 0, 0, 0, 7));
    const updated = await adapter.groups.update(TENANT, GROUP, { trialEndsAt, settings: { b: [1, 2] } });
    expect(updated).toMatchObject({ companyId: 'company-1', orgUid: 'org-1', settings: { b: [1, 2] } });
    expectDate(updated?.trialEndsAt, trialEndsAt);
    expectDate(updated?.updatedAt, clock.ms());
    expectDate(updated?.createdAt, created.createdAt);
    const cleared = await adapter.groups.update(TENANT, GROUP, { orgUid: null, trialEndsAt: null });
    expect(cleared).toMatchObject({ orgUid: null, trialEndsAt: null, settings: { b: [1, 2] } });
    expect(await adapter.groups.get(TENANT, GROUP)).toEqual(cleared);
  },

  'update of an unknown or unfinished group returns null and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      expect(await adapter.groups.update(TENANT, GROUP, { orgUid: 'org-1' })).toBeNull();
      expect(await inspect.group(TENANT, GROUP)).toBeNull();
      await adapter.groups.claim(TENANT, 'cld-claimed', { owner: 'w1', ttlMs: TTL });
      expect(await adapter.groups.update(TENANT, 'cld-claimed', { orgUid: 'org-1', settings: { leaked: true } })).toBeNull();
      expect(await adapter.groups.get(TENANT, 'cld-claimed')).toBeNull();
      // The unfinished claim's stored state (where the adapter keeps claims with groups) is not patched either.
      const claimRow = await inspect.group(TENANT, 'cld-claimed');
      expect(claimRow?.orgUid ?? null).toBeNull();
      expect(claimRow?.settings ?? {}).not.toEqual({ leaked: true });
    },
  ),

  'cancel is a compare-and-set: changed once, then false on replay': async ({ adapter, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    clock.advance(60_000);
    const cancelledAt = clock.ms();
    const first = await adapter.groups.cancel(TENANT, GROUP);
    expect(first.changed).toBe(true);
    expect(first.group?.status).toBe('cancelled');
    expectDate(first.group?.cancelledAt, cancelledAt);
    clock.advance(60_000);
    const replay = await adapter.groups.cancel(TENANT, GROUP);
    expect(replay.changed).toBe(false);
    expect(replay.group?.status).toBe('cancelled');
    expectDate(replay.group?.cancelledAt, cancelledAt);
  },

  '10 concurrent cancels: exactly one changed': needs(['concurrency'], async (context) => {
    await context.adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    await context.adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1' });
    const results = await race(context, 10, (adapter) => adapter.groups.cancel(TENANT, GROUP));
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    expect(results.every((r) => r.group?.status === 'cancelled')).toBe(true);
  }),

  'cancel of an unknown group returns changed false and null': async ({ adapter }) => {
    expect(await adapter.groups.cancel(TENANT, GROUP)).toEqual({ changed: false, group: null });
  },

  'list returns the provisioned groups of one tenant ordered by groupId, filtered by status': async ({ adapter }) => {
    for (const [tenant, groupId] of [
      [TENANT, 'cld-c3'],
      [TENANT, 'cld-a1'],
      [TENANT, 'cld-b2'],
      [OTHER_TENANT, 'cld-a0'],
    ] as const) {
      await adapter.groups.claim(tenant, groupId, { owner: 'w', ttlMs: TTL });
      await adapter.groups.complete(tenant, groupId, 'w', { companyId: `co-${groupId}` });
    }
    await adapter.groups.claim(TENANT, 'cld-a9', { owner: 'w', ttlMs: TTL });
    await adapter.groups.cancel(TENANT, 'cld-b2');
    expect((await adapter.groups.list(TENANT)).map((g) => g.groupId)).toEqual(['cld-a1', 'cld-b2', 'cld-c3']);
    expect((await adapter.groups.list(TENANT, { status: 'active' })).map((g) => g.groupId)).toEqual([
      'cld-a1',
      'cld-c3',
    ]);
    expect((await adapter.groups.list(TENANT, { status: 'cancelled' })).map((g) => g.groupId)).toEqual(['cld-b2']);
    expect((await adapter.groups.list(OTHER_TENANT)).map((g) => g.groupId)).toEqual(['cld-a0']);
  },

  'list pages through a tenant\'s groups with limit and after (the last groupId seen), status filter included': async ({ adapter }) => {
    const ids = ['cld-05', 'cld-01', 'cld-04', 'cld-02', 'cld-03', 'cld-06', 'cld-07'];
    for (const groupId of ids) {
      await adapter.groups.claim(TENANT, groupId, { owner: 'w', ttlMs: TTL });
      await adapter.groups.complete(TENANT, groupId, 'w', { companyId: `co-${groupId}` });
    }
    await adapter.groups.claim(OTHER_TENANT, 'cld-035', { owner: 'w', ttlMs: TTL });
    await adapter.groups.complete(OTHER_TENANT, 'cld-035', 'w', { companyId: 'co-other' });
    // Pending (not listed) and cancelled (filtered out) groups inside the pages.
    await adapter.groups.claim(TENANT, 'cld-025', { owner: 'w', ttlMs: TTL });
    await adapter.groups.cancel(TENANT, 'cld-04');
    const pages: string[][] = [];
    for (let after: string | undefined; ; ) {
      const page = await adapter.groups.list(TENANT, { status: 'active', limit: 2, ...(after !== undefined ? { after } : {}) });
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(2);
      pages.push(page.map((g) => g.groupId));
      after = page[page.length - 1]?.groupId;
    }
    expect(pages).toEqual([['cld-01', 'cld-02'], ['cld-03', 'cld-05'], ['cld-06', 'cld-07']]);
    expect((await adapter.groups.list(TENANT, { limit: 3 })).map((g) => g.groupId)).toEqual(['cld-01', 'cld-02', 'cld-03']);
    // `after` need not be a stored group; the last one leaves nothing.
    expect((await adapter.groups.list(TENANT, { after: 'cld-035' })).map((g) => g.groupId)).toEqual(['cld-04', 'cld-05', 'cld-06', 'cld-07']);
    expect(await adapter.groups.list(TENANT, { after: 'cld-07' })).toEqual([]);
    for (const limit of [0, -1, 1.5]) await expect(adapter.groups.list(TENANT, { limit })).rejects.toThrow(/limit/);
  },

  'the same group id in two tenants is two independent groups': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    expect((await adapter.groups.claim(OTHER_TENANT, GROUP, { owner: 'w2', ttlMs: TTL })).state).toBe('claimed');
    await adapter.groups.complete(OTHER_TENANT, GROUP, 'w2', { companyId: 'other-company' });
    expect(await adapter.groups.get(TENANT, GROUP)).toBeNull();
    expect((await adapter.groups.get(OTHER_TENANT, GROUP))?.companyId).toBe('other-company');
  },

  'stored timestamps are timestamps and settings are JSON': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const trialEndsAt = new Date(Date.UTC(2031, 2, 3, 4, 5, 6, 789));
    const settings = { plan: 'pro', limits: { users: 5 }, flags: [true, false], none: null };
    await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'company-1', trialEndsAt, settings });
    const row = await inspect.group(TENANT, GROUP);
    expect(row).toMatchObject({ tenant: TENANT, groupId: GROUP, companyId: 'company-1', status: 'active' });
    expectDate(row?.trialEndsAt, trialEndsAt);
    expectDate(row?.updatedAt, clock.ms());
    expectDate(row?.createdAt);
    expect(row?.settings).toEqual(settings);
    expect(row?.cancelledAt ?? null).toBeNull();
    expect(row?.claimOwner ?? null).toBeNull();
  }),

  'returned records are copies: mutating them or the input changes nothing stored': async ({ adapter }) => {
    await adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: TTL });
    const settings = { plan: 'pro', nested: { n: 1 } };
    const trialEndsAt = new Date(Date.UTC(2031, 0, 1));
    const group = await adapter.groups.complete(TENANT, GROUP, 'w1', { companyId: 'c', settings, trialEndsAt });
    settings.nested.n = 2;
    trialEndsAt.setUTCFullYear(2040);
    group.settings['plan'] = 'hacked';
    group.trialEndsAt?.setUTCFullYear(2050);
    const stored = await adapter.groups.get(TENANT, GROUP);
    expect(stored?.settings).toEqual({ plan: 'pro', nested: { n: 1 } });
    expectDate(stored?.trialEndsAt, Date.UTC(2031, 0, 1));
  },

  'a claim with a non-positive ttl is rejected with StorageError and stores nothing': needs(
    ['inspect'],
    async ({ adapter, inspect }) => {
      await expectStorageError(adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: 0 }), 'groups.claim');
      await expectStorageError(adapter.groups.claim(TENANT, GROUP, { owner: 'w1', ttlMs: -5 }), 'groups.claim');
      expect(await inspect.group(TENANT, GROUP)).toBeNull();
    },
  ),
};
