// The sync engine over this adapter keeps a `__proto__` key of a Connec! record as data, both
// ways (see packages/sdk/test/sync/proto-keys.test.ts): through a notification job stored in a
// JSON column, and in a push's payload.
import { describe, it } from 'vitest';
import { inboundProtoKey, outboundProtoKey } from '../../sdk/test/sync/proto-keys-scenario.js';
import { pgUnavailableReason, scenarioAdapters } from './backends.js';

const unavailable = await pgUnavailableReason();
if (unavailable && process.env.CI) throw new Error(`CI requires PostgreSQL: ${unavailable}`);

const { sqlite, postgres } = scenarioAdapters();

describe('sync: a __proto__ key in a record is data (SQLite)', () => {
  it('inbound, through a stored notification job', async () => inboundProtoKey(await sqlite()), 30_000);
  it('outbound, in the pushed payload', async () => outboundProtoKey(await sqlite()), 30_000);
});

describe.skipIf(unavailable !== null)('sync: a __proto__ key in a record is data (PostgreSQL)', () => {
  it('inbound, through a stored notification job', async () => inboundProtoKey(await postgres()), 30_000);
  it('outbound, in the pushed payload', async () => outboundProtoKey(await postgres()), 30_000);
});
