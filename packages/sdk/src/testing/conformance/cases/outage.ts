import { expect } from 'vitest';
import type { StorageCases } from '../types.js';
import { expectStorageError, GROUP, SCOPE, TENANT } from './helpers.js';

export const outageCases: StorageCases = {
  'with the database unreachable every repository fails with StorageError naming the operation, and works again after': {
    needs: ['outage'],
    timeoutMs: 120_000,
    run: async ({ adapter, outage, clock }) => {
      await adapter.idMaps.insert({ ...SCOPE, connecId: 'c-before', localId: 'l-before' });
      const { id } = await adapter.jobs.enqueue({ type: 'before', payload: { kept: true } });
      await outage.cut();
      try {
        const soon = new Date(clock.ms() + 60_000);
        const attempts: [string, () => Promise<unknown>][] = [
          ['groups.get', () => adapter.groups.get(TENANT, GROUP)],
          ['groups.claim', () => adapter.groups.claim(TENANT, GROUP, { owner: 'o', ttlMs: 1_000 })],
          ['users.get', () => adapter.users.get(TENANT, 'usr-1')],
          ['users.upsertMembership', () => adapter.users.upsertMembership(TENANT, 'usr-1', GROUP, 'Admin')],
          ['users.seats', () => adapter.users.seats(TENANT, GROUP, { exceptUid: 'usr-1' })],
          ['idMaps.find', () => adapter.idMaps.find(SCOPE, { connecId: 'c-before' })],
          ['idMaps.insert', () => adapter.idMaps.insert({ ...SCOPE, connecId: 'c-during', localId: 'l-during' })],
          ['cursors.advance', () => adapter.cursors.advance({ ...SCOPE, kind: 'import' }, 1, {})],
          ['jobs.enqueue', () => adapter.jobs.enqueue({ type: 'during', payload: null })],
          ['jobs.claim', () => adapter.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000 })],
          ['ledger.claim', () => adapter.ledger.claim('charge-1', { owner: 'o', ttlMs: 1_000, intent: null })],
          ['replay.remember', () => adapter.replay.remember(TENANT, 'assertion-1', soon)],
          ['replay.forget', () => adapter.replay.forget(TENANT, 'assertion-1', soon)],
          ['locks.acquire', () => adapter.locks.acquire('lock-1', 'o', 1_000)],
        ];
        await Promise.all(attempts.map(([operation, run]) => expectStorageError(run(), operation)));
      } finally {
        await outage.restore();
      }
      expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-before' })).toMatchObject({ localId: 'l-before' });
      expect(await adapter.idMaps.find(SCOPE, { connecId: 'c-during' })).toBeNull();
      expect(await adapter.jobs.get(id)).toMatchObject({ type: 'before', payload: { kept: true }, status: 'pending' });
      expect(await adapter.locks.acquire('lock-1', 'o', 1_000)).toBe(true);
      expect(await adapter.replay.remember(TENANT, 'assertion-1', new Date(clock.ms() + 60_000))).toBe(true);
      expect((await adapter.jobs.claim({ worker: 'w', limit: 5, leaseMs: 1_000 })).map((j) => j.id)).toEqual([id]);
    },
  },
};
