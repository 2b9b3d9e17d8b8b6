// A push answered between a failed inbound write of the same record and the record of its
// failure (see push-raced-failed-write-window-scenario.ts), on the memory adapter.
import { describe, it } from 'vitest';
import { raceFailedWrite } from './push-raced-failed-write-window-scenario.js';

describe('a push answered between a failed inbound write and the record of its failure', () => {
  it('answered before the failure is recorded: its echo writes the pushed version in the app', async () => {
    await raceFailedWrite('failure recorded');
  });

  it('answered while the worker still holds the batch: its echo writes the pushed version in the app', async () => {
    await raceFailedWrite('locks released');
  });
});
