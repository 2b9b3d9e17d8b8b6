// The sync engine over this adapter keeps a `__proto__` key of a Connec! record as data, both
// ways (see packages/sdk/test/sync/proto-keys.test.ts): through a notification job stored as a
// document, and in a push's payload.
import { afterEach, describe, it } from 'vitest';
import { inboundProtoKey, outboundProtoKey } from '../../sdk/test/sync/proto-keys-scenario.js';
import { mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function mongo() {
  const handle = await openTestDb('sync_proto');
  const adapter = mongoAdapter({ url: mongoUrl ?? '', dbName: handle.name });
  await adapter.ensureIndexes();
  cleanup = async () => {
    await adapter.close();
    await handle.drop();
  };
  return adapter;
}

describe.skipIf(unavailable !== null)(`${backend}: sync keeps a __proto__ key in a record as data`, () => {
  it('inbound, through a stored notification job', async () => inboundProtoKey(await mongo()), 30_000);
  it('outbound, in the pushed payload', async () => outboundProtoKey(await mongo()), 30_000);
});
