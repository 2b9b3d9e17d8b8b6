/**
 * A storage adapter whose every repository call goes through `around(operation, call, args)`:
 * the fault-injecting storages of the tests (an outage of some operations, a write whose answer
 * is lost) are each one `around`.
 */
import type { StorageAdapter, StorageOperation } from '@org/maestrano-sdk';

export function proxyStorage(
  inner: StorageAdapter,
  around: (operation: StorageOperation, call: () => Promise<unknown>, args: unknown[]) => Promise<unknown>,
): StorageAdapter {
  const wrap = <T extends object>(repository: T, name: string): T =>
    new Proxy(repository, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        const operation: StorageOperation = `${name}.${String(property)}`;
        return (...args: unknown[]) => around(operation, async () => Reflect.apply(value, target, args), args);
      },
    });
  return {
    id: inner.id,
    capabilities: inner.capabilities,
    groups: wrap(inner.groups, 'groups'),
    users: wrap(inner.users, 'users'),
    idMaps: wrap(inner.idMaps, 'idMaps'),
    cursors: wrap(inner.cursors, 'cursors'),
    jobs: wrap(inner.jobs, 'jobs'),
    ledger: wrap(inner.ledger, 'ledger'),
    replay: wrap(inner.replay, 'replay'),
    locks: wrap(inner.locks, 'locks'),
    close: () => inner.close(),
  };
}
