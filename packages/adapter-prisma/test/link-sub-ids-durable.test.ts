// The sub-record ids (invoice lines) a link-back owes are stored with the id map over this
// adapter (see packages/sdk/test/sync/link-sub-ids-durable-scenario.ts): a worker killed right
// after the id-map write, or a failed link-back whose retry job could not be stored, no longer
// loses them, and the next Connec! version re-creates no line in the app.
import { describe, it } from 'vitest';
import { importKilledAfterMapWrite, killedAfterMapWrite, linkBackRetryNotStored } from '../../sdk/test/sync/link-sub-ids-durable-scenario.js';
import { pgUnavailableReason, scenarioAdapters } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const { sqlite, postgres } = scenarioAdapters();

describe('sync: line ids owed by a link-back survive the worker that held them (SQLite)', () => {
  it('killed right after the id-map write: the redelivered job links them', async () => killedAfterMapWrite(await sqlite()), 30_000);
  it('the link-back and the store of its retry job fail: the retry links them', async () => linkBackRetryNotStored(await sqlite()), 30_000);
});

describe.skipIf(unavailable !== null)('sync: line ids owed by a link-back survive the worker that held them (PostgreSQL)', () => {
  it('killed right after the id-map write: the redelivered job links them', async () => killedAfterMapWrite(await postgres()), 30_000);
  it('an import killed right after the id-map write of a page: the resumed import links them', async () => importKilledAfterMapWrite(await postgres()), 30_000);
  it('the link-back and the store of its retry job fail: the retry links them', async () => linkBackRetryNotStored(await postgres()), 30_000);
});
