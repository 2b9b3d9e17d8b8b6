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
  StorageOutageHooks,
  StorageRepositoryName,
  StorageSetupResult,
} from './types.js';

const REPOSITORIES: StorageRepositoryName[] = [
  'groups',
  'users',
  'idMaps',
  'cursors',
  'jobs',
  'ledger',
  'replay',
  'locks',
  'outage',
];

function normalize(entry: StorageCase | StorageCaseFn): StorageCase {
  return typeof entry === 'function' ? { needs: [], run: entry } : entry;
}

/** One case as the runner registers it. */
export interface PlannedStorageCase {
  repository: StorageRepositoryName;
  title: string;
  /** `[backend] repository: title`, plus the skip reason when skipped. */
  testName: string;
  /** Why the case is skipped (backend unavailable or a missing ability), or null. */
  skipReason: string | null;
  case: StorageCase;
}

/** The cases `describeStorageAdapter(options)` registers, in order, with their skip reasons. */
export function planStorageSuite(options: Pick<DescribeStorageAdapterOptions, 'name' | 'skip' | 'unavailable' | 'repositories'>): PlannedStorageCase[] {
  const skips = options.skip ?? {};
  const planned: PlannedStorageCase[] = [];
  for (const repository of options.repositories ?? REPOSITORIES) {
    for (const [title, entry] of Object.entries(storageCases[repository])) {
      const testCase = normalize(entry);
      const base = `[${options.name}] ${repository}: ${title}`;
      const missing = testCase.needs.find((ability: StorageAbility) => skips[ability] !== undefined);
      const skipReason = options.unavailable
        ? options.unavailable
        : missing !== undefined
          ? `no ${missing}: ${skips[missing]}`
          : null;
      planned.push({
        repository,
        title,
        testName: skipReason === null ? base : `${base} (skipped, ${skipReason})`,
        skipReason,
        case: testCase,
      });
    }
  }
  return planned;
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
        try {
          for (const peer of peers) await peer.close();
          await setup?.adapter.close();
        } finally {
          await setup?.teardown?.();
        }
      });
    }

    const plan = planStorageSuite(options);
    for (const repository of repositories) {
      describe(repository, () => {
        if (!options.unavailable) {
          beforeEach(async () => {
            clock.set(CONFORMANCE_EPOCH);
            if (!setup) throw new Error(`storage conformance [${name}]: setup() did not complete`);
            await options.reset(setup);
          });
        }
        for (const planned of plan.filter((p) => p.repository === repository)) {
          if (planned.skipReason !== null) {
            it.skip(planned.testName, () => {});
            continue;
          }
          const testCase = planned.case;
          it(planned.testName, async (vitestContext) => {
            if (!setup) throw new Error(`storage conformance [${name}]: setup() did not complete`);
            const inspector = setup.inspect;
            if (testCase.needs.includes('inspect') && !inspector) {
              const reason = `[${name}] setup() returned no inspector: raw stored state cannot be checked`;
              console.warn(reason);
              vitestContext.skip(reason);
            }
            const outage = setup.outage;
            if (testCase.needs.includes('outage') && !outage) {
              const reason = `[${name}] setup() returned no outage hooks and skip.outage gives no reason: database-outage behaviour not checked`;
              console.warn(reason);
              vitestContext.skip(reason);
            }
            const context: StorageCaseContext = {
              adapter: setup.adapter,
              inspect: inspector ?? missingInspector(name),
              outage: outage ?? missingOutage(name),
              clock,
              racers: [setup.adapter, ...peers],
              backend: name,
            };
            await testCase.run(context);
          }, testCase.timeoutMs);
        }
      });
    }
  });
}

function missingOutage(name: string): StorageOutageHooks {
  const fail = (): never => {
    throw new Error(`storage conformance [${name}]: this case needs outage hooks but setup() returned none`);
  };
  return { cut: fail, restore: fail };
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
