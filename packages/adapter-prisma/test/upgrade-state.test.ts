// State an earlier release left in the database, read and run by this one (see the scenarios in
// packages/sdk/test/sync): rolling deploys and upgrades keep jobs, id maps and settings.
import { describe, it } from 'vitest';
import { plainIdLinkBackRetryOfEarlierRelease } from '../../sdk/test/sync/plain-id-link-back-upgrade-scenario.js';
import { pgUnavailableReason, scenarioAdapters } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const { sqlite, postgres } = scenarioAdapters();

describe('state of an earlier release (SQLite)', () => {
  it("a failed plain-id link-back's retry job without linkSubIds still links the record", async () => plainIdLinkBackRetryOfEarlierRelease(await sqlite()), 30_000);
});

describe.skipIf(unavailable !== null)('state of an earlier release (PostgreSQL)', () => {
  it("a failed plain-id link-back's retry job without linkSubIds still links the record", async () => plainIdLinkBackRetryOfEarlierRelease(await postgres()), 30_000);
});
