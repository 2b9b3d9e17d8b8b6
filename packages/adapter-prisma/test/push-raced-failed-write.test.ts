// A push answered between a failed inbound write of the same record and the record of its
// failure, over this adapter (see packages/sdk/test/sync/push-raced-failed-write-window-scenario.ts):
// its echo writes the pushed version in the app, so both sides end equal.
import { describe, it } from 'vitest';
import { raceFailedWrite } from '../../sdk/test/sync/push-raced-failed-write-window-scenario.js';
import { pgUnavailableReason, scenarioAdapters } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const { sqlite, postgres } = scenarioAdapters();

describe('sync: a push answered before a failed inbound write is recorded (SQLite)', () => {
  it('answered before the failure is recorded', async () => raceFailedWrite('failure recorded', await sqlite()), 30_000);
  it('answered while the worker still holds the batch', async () => raceFailedWrite('locks released', await sqlite()), 30_000);
});

describe.skipIf(unavailable !== null)('sync: a push answered before a failed inbound write is recorded (PostgreSQL)', () => {
  it('answered before the failure is recorded', async () => raceFailedWrite('failure recorded', await postgres()), 30_000);
  it('answered while the worker still holds the batch', async () => raceFailedWrite('locks released', await postgres()), 30_000);
});
