// The sub-record ids (invoice lines) a link-back owes are stored with the id map over this
// adapter (see packages/sdk/test/sync/link-sub-ids-durable-scenario.ts): a worker killed right
// after the id-map write, or a failed link-back whose retry job could not be stored, no longer
// loses them, and the next Connec! version re-creates no line in the app.
import { afterEach, describe, it } from 'vitest';
import { killedAfterMapWrite, linkBackRetryNotStored } from '../../sdk/test/sync/link-sub-ids-durable-scenario.js';
import { mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function mongo() {
  const handle = await openTestDb('sync_link_sub_ids');
  const adapter = mongoAdapter({ url: mongoUrl ?? '', dbName: handle.name });
  await adapter.ensureIndexes();
  cleanup = async () => {
    await adapter.close();
    await handle.drop();
  };
  return adapter;
}

describe.skipIf(unavailable !== null)(`${backend}: line ids owed by a link-back survive the worker that held them`, () => {
  it('killed right after the id-map write: the redelivered job links them', async () => killedAfterMapWrite(await mongo()), 30_000);
  it('the link-back and the store of its retry job fail: the retry links them', async () => linkBackRetryNotStored(await mongo()), 30_000);
});
