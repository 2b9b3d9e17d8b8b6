import type { StorageAdapter } from '../../storage/adapter.js';
import { memoryState } from '../../storage/memory.js';
import { copy } from '../../storage/validation.js';
import type { StorageInspector } from './types.js';

const strip = <T extends { seq: number }>(row: T): Omit<T, 'seq'> => {
  const { seq: _seq, ...rest } = row;
  return rest;
};

/**
 * The second channel for a `memoryAdapter()`: reads its store directly (deep copies, so
 * nothing a case does to the result reaches the store).
 */
export function memoryInspector(adapter: StorageAdapter): StorageInspector {
  const state = memoryState(adapter);
  const k = (...parts: string[]) => JSON.stringify(parts);
  return {
    group: async (tenant, groupId) => copy(state.groups.get(k(tenant, groupId)) ?? null),
    user: async (tenant, uid) => copy(state.users.get(k(tenant, uid)) ?? null),
    membership: async (tenant, uid, groupId) => copy(state.memberships.get(k(tenant, uid, groupId)) ?? null),
    idMaps: async (scope) =>
      copy(
        state.idMaps
          .filter((row) => row.tenant === scope.tenant && row.groupId === scope.groupId && row.entity === scope.entity)
          .map(strip),
      ),
    cursor: async (key) => copy(state.cursors.get(k(key.tenant, key.groupId, key.entity, key.kind)) ?? null),
    job: async (id) => {
      const row = state.jobs.get(id);
      return row ? copy(strip(row)) : null;
    },
    jobs: async (filter) =>
      copy([...state.jobs.values()].filter((row) => !filter?.type || row.type === filter.type).map(strip)),
    ledger: async (key) => copy(state.ledger.get(key) ?? null),
    replay: async (tenant, assertionId) => copy(state.replay.get(k(tenant, assertionId)) ?? null),
    lock: async (key) => copy(state.locks.get(key) ?? null),
  };
}
