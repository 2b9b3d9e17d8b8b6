import { afterAll, beforeAll, beforeEach, describe, it } from 'vitest';
import type { StorageAdapter } from '../../storage/adapter.js';
import { CONFORMANCE_EPOCH, createTestClock } from './clock.js';
import { storageCases } from './cases/index.js';
import type {
  DescribeStorageAdapterOptions,
  StorageAbility,
  StorageCase,
  StorageCaseContext,
  StorageCaseFn,
  StorageInspector,
  StorageRepositoryName,
  StorageSetupResult,
} from './types.js';

const REPOSITORIES: StorageRepositoryName[] = ['groups', 'users', 'idMaps', 'cursors', 'jobs', 'ledger', 'replay', 'locks'];

function normalize(entry: StorageCase | StorageCaseFn): StorageCase {
  return typeof entry === 'function' ? { needs: [], run: entry } : entry;
}

/**
 * Registers the storage conformance suite with vitest: one `describe` per backend and
 * repository, one `it` per case, every test name prefixed with `[name]` so the output
 * shows each backend with its pass count.
 *
 * `setup` runs once (beforeAll) and receives the suite's clock, `reset` runs before each
 * case with the clock back at its fixed start, and `adapter.close()`, every peer's
 * `close()` and `teardown` run once at the end.
 */
export function describeStorageAdapter(options: DescribeStorageAdapterOptions): void {
  const { name } = options;
  const repositories = options.repositories ?? REPOSITORIES;
  const clock = createTestClock(CONFORMANCE_EPOCH);
  const skips = options.skip ?? {};
  for (const [ability, reason] of Object.entries(skips)) {
    console.info(`[storage conformance: ${name}] skipping cases that need '${ability}': ${reason}`);
  }
  if (options.unavailable) {
    console.warn(`[storage conformance: ${name}] backend unavailable, every case skipped: ${options.unavailable}`);
  }

  describe(`storage conformance [${name}]`, () => {
    let setup: StorageSetupResult | undefined;
    const peers: StorageAdapter[] = [];

    if (!options.unavailable) {
      beforeAll(async () => {
        clock.set(CONFORMANCE_EPOCH);
        setup = await options.setup({ clock: clock.now });
        if (setup.createPeer) peers.push(await setup.createPeer());
      });
      afterAll(async () => {
        for (const peer of peers) await peer.close();
        if (setup) {
          await setup.adapter.close();
          await setup.teardown?.();
        }
      });
    }

    for (const repository of repositories) {
      describe(repository, () => {
        if (!options.unavailable) {
          beforeEach(async () => {
            clock.set(CONFORMANCE_EPOCH);
            if (!setup) throw new Error(`storage conformance [${name}]: setup() did not complete`);
            await options.reset(setup);
          });
        }
        for (const [title, entry] of Object.entries(storageCases[repository])) {
          const testCase = normalize(entry);
          const testName = `[${name}] ${repository}: ${title}`;
          if (options.unavailable) {
            it.skip(`${testName} (skipped: ${options.unavailable})`, () => {});
            continue;
          }
          const skipped = testCase.needs.find((ability: StorageAbility) => skips[ability] !== undefined);
          if (skipped !== undefined) {
            it.skip(`${testName} (skipped, no ${skipped}: ${skips[skipped]})`, () => {});
            continue;
          }
          it(testName, async (vitestContext) => {
            if (!setup) throw new Error(`storage conformance [${name}]: setup() did not complete`);
            const inspector = setup.inspect;
            if (testCase.needs.includes('inspect') && !inspector) {
              const reason = `[${name}] setup() returned no inspector: raw stored state cannot be checked`;
              console.warn(reason);
              vitestContext.skip(reason);
            }
            const context: StorageCaseContext = {
              adapter: setup.adapter,
              inspect: inspector ?? missingInspector(name),
              clock,
              racers: [setup.adapter, ...peers],
              backend: name,
            };
            await testCase.run(context);
          });
        }
      });
    }
  });
}

function missingInspector(name: string): StorageInspector {
  const fail = (): never => {
    throw new Error(`storage conformance [${name}]: this case reads raw state but setup() returned no inspector`);
  };
  return {
    group: fail,
    user: fail,
    membership: fail,
    idMaps: fail,
    cursor: fail,
    job: fail,
    jobs: fail,
    ledger: fail,
    replay: fail,
    lock: fail,
  };
}
