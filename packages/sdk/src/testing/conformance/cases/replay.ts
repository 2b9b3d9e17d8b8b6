import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectDate, expectStorageError, needs, OTHER_TENANT, race, TENANT } from './helpers.js';

const ASSERTION = '_a1b2c3d4e5f6';

export const replayCases: StorageCases = {
  'the first remember is true, a replay before expiry is false': async ({ adapter, clock }) => {
    const expiresAt = new Date(clock.ms() + 300_000);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(false);
    expect(await adapter.replay.remember(TENANT, ASSERTION, new Date(clock.ms() + 900_000))).toBe(false);
  },

  'assertion ids are scoped per tenant': async ({ adapter, clock }) => {
    const expiresAt = new Date(clock.ms() + 300_000);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.remember(OTHER_TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.remember(TENANT, `${ASSERTION}-2`, expiresAt)).toBe(true);
  },

  'an expired record is replaced and remembered again': needs(['clock', 'inspect'], async ({ adapter, inspect, clock }) => {
    expect(await adapter.replay.remember(TENANT, ASSERTION, new Date(clock.ms() + 60_000))).toBe(true);
    clock.advance(59_999);
    expect(await adapter.replay.remember(TENANT, ASSERTION, new Date(clock.ms() + 60_000))).toBe(false);
    clock.advance(1);
    const renewed = new Date(clock.ms() + 120_000);
    expect(await adapter.replay.remember(TENANT, ASSERTION, renewed)).toBe(true);
    expectDate((await inspect.replay(TENANT, ASSERTION))?.expiresAt, renewed);
    expect(await adapter.replay.remember(TENANT, ASSERTION, renewed)).toBe(false);
  }),

  '20 concurrent remembers of one assertion: exactly one true': needs(['concurrency'], async (context) => {
    const expiresAt = new Date(context.clock.ms() + 300_000);
    const results = await race(context, 20, (adapter) => adapter.replay.remember(TENANT, ASSERTION, expiresAt));
    expect(results.filter(Boolean)).toHaveLength(1);
  }),

  'the stored record holds the expiry as a timestamp': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const expiresAt = new Date(clock.ms() + 300_123);
    await adapter.replay.remember(TENANT, ASSERTION, expiresAt);
    const row = await inspect.replay(TENANT, ASSERTION);
    expect(row).toMatchObject({ tenant: TENANT, assertionId: ASSERTION });
    expectDate(row?.expiresAt, expiresAt);
    expect(await inspect.replay(OTHER_TENANT, ASSERTION)).toBeNull();
  }),

  'purgeExpired deletes only expired records and returns the count': needs(
    ['clock', 'inspect'],
    async ({ adapter, inspect, clock }) => {
      await adapter.replay.remember(TENANT, 'short-1', new Date(clock.ms() + 1_000));
      await adapter.replay.remember(OTHER_TENANT, 'short-2', new Date(clock.ms() + 2_000));
      await adapter.replay.remember(TENANT, 'long', new Date(clock.ms() + 60_000));
      expect(await adapter.replay.purgeExpired()).toBe(0);
      clock.advance(2_000);
      expect(await adapter.replay.purgeExpired()).toBe(2);
      expect(await inspect.replay(TENANT, 'short-1')).toBeNull();
      expect(await inspect.replay(OTHER_TENANT, 'short-2')).toBeNull();
      expect(await inspect.replay(TENANT, 'long')).not.toBeNull();
      expect(await adapter.replay.remember(TENANT, 'long', new Date(clock.ms() + 60_000))).toBe(false);
      expect(await adapter.replay.purgeExpired()).toBe(0);
    },
  ),

  'forget gives a live id back: remembered again once, then a replay again': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const expiresAt = new Date(clock.ms() + 300_000);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.remember(OTHER_TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.forget(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await inspect.replay(TENANT, ASSERTION)).toBeNull();
    // Another tenant's record of the same id stays.
    expect(await inspect.replay(OTHER_TENANT, ASSERTION)).not.toBeNull();
    expect(await adapter.replay.remember(OTHER_TENANT, ASSERTION, expiresAt)).toBe(false);
    expect(await adapter.replay.forget(TENANT, ASSERTION, expiresAt)).toBe(false);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(false);
    expectDate((await inspect.replay(TENANT, ASSERTION))?.expiresAt, expiresAt);
  }),

  'forget deletes only a live record remembered with that exact expiry': needs(['clock', 'inspect'], async ({ adapter, inspect, clock }) => {
    const expiresAt = new Date(clock.ms() + 60_000);
    expect(await adapter.replay.forget(TENANT, ASSERTION, expiresAt)).toBe(false);
    expect(await adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    expect(await adapter.replay.forget(TENANT, ASSERTION, new Date(expiresAt.getTime() + 1))).toBe(false);
    expect(await adapter.replay.forget(TENANT, ASSERTION, new Date(expiresAt.getTime() - 1))).toBe(false);
    expect(await adapter.replay.forget(TENANT, `${ASSERTION}-2`, expiresAt)).toBe(false);
    expectDate((await inspect.replay(TENANT, ASSERTION))?.expiresAt, expiresAt);
    // Expired: a record remembered again now with this expiry would be expired too, so an
    // expired record is never one the caller may still own. Left to `purgeExpired`.
    clock.advance(60_000);
    expect(await adapter.replay.forget(TENANT, ASSERTION, expiresAt)).toBe(false);
    expect(await inspect.replay(TENANT, ASSERTION)).not.toBeNull();
    expect(await adapter.replay.purgeExpired()).toBe(1);
  }),

  '20 concurrent forgets of one record: exactly one true; then 20 remembers: exactly one true': needs(['concurrency'], async (context) => {
    const expiresAt = new Date(context.clock.ms() + 300_000);
    expect(await context.adapter.replay.remember(TENANT, ASSERTION, expiresAt)).toBe(true);
    const forgotten = await race(context, 20, (adapter) => adapter.replay.forget(TENANT, ASSERTION, expiresAt));
    expect(forgotten.filter(Boolean)).toHaveLength(1);
    const remembered = await race(context, 20, (adapter) => adapter.replay.remember(TENANT, ASSERTION, expiresAt));
    expect(remembered.filter(Boolean)).toHaveLength(1);
  }),

  'forget with invalid arguments is rejected with StorageError and deletes nothing': needs(['inspect'], async ({ adapter, inspect, clock }) => {
    const expiresAt = new Date(clock.ms() + 300_000);
    await adapter.replay.remember(TENANT, ASSERTION, expiresAt);
    await expectStorageError(adapter.replay.forget(TENANT, ASSERTION, new Date(Number.NaN)), 'replay.forget');
    await expectStorageError(adapter.replay.forget('', ASSERTION, expiresAt), 'replay.forget');
    await expectStorageError(adapter.replay.forget(TENANT, '', expiresAt), 'replay.forget');
    expectDate((await inspect.replay(TENANT, ASSERTION))?.expiresAt, expiresAt);
  }),

  'an invalid expiry is rejected with StorageError and stores nothing': needs(['inspect'], async ({ adapter, inspect }) => {
    await expectStorageError(adapter.replay.remember(TENANT, ASSERTION, new Date(Number.NaN)), 'replay.remember');
    expect(await inspect.replay(TENANT, ASSERTION)).toBeNull();
  }),
};
