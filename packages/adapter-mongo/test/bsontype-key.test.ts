// A JSON object key named `_bsontype` is ordinary data to the storage contract ("any JSON key
// round-trips"), but the BSON serializer reads it as the tag of one of its own types: a plain
// object holding it (with any non-null value) fails to serialize (BSONVersionError), so the
// write is refused. Such a value is stored in the JSON-text form, as other keys a document
// cannot hold as they are.
import type { StorageAdapter } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

describe.skipIf(unavailable !== null)(`${backend}: a \`_bsontype\` key in a JSON value round-trips`, () => {
  let adapter: StorageAdapter;
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('bsontype');
    const opened = mongoAdapter({ url: mongoUrl ?? '', dbName: handle.name });
    await opened.ensureIndexes();
    adapter = opened;
  });
  afterAll(async () => {
    await adapter?.close();
    await handle?.drop();
  });

  const record = () => ({ entity: 'items', data: { _bsontype: 'ObjectId', id: 'abc' }, list: [{ _bsontype: 1 }] });

  it('in a job payload (enqueue, enqueueMany, claim)', async () => {
    const { id } = await adapter.jobs.enqueue({ type: 'bson-tag', payload: record() });
    expect((await adapter.jobs.get(id))?.payload).toEqual(record());
    const [batch] = await adapter.jobs.enqueueMany([{ type: 'bson-tag', payload: { top: { _bsontype: 'Long' } } }]);
    expect((await adapter.jobs.get(batch?.id ?? ''))?.payload).toEqual({ top: { _bsontype: 'Long' } });
    const claimed = await adapter.jobs.claim({ worker: 'w', limit: 10, leaseMs: 60_000, types: ['bson-tag'] });
    expect(claimed.map((job) => job.payload)).toEqual([record(), { top: { _bsontype: 'Long' } }]);
  });

  it('at the top of a cursor, group settings and ledger intent/outcome', async () => {
    const top = { _bsontype: 'Decimal128', n: 1 };
    const key = { tenant: 't', groupId: 'g', entity: 'items', kind: 'import' };
    expect(await adapter.cursors.advance(key, 1, top)).toBe(true);
    expect((await adapter.cursors.get(key))?.data).toEqual(top);
    await adapter.groups.claim('t', 'g', { owner: 'o', ttlMs: 60_000 });
    expect((await adapter.groups.complete('t', 'g', 'o', { companyId: 'c', settings: top })).settings).toEqual(top);
    expect((await adapter.groups.get('t', 'g'))?.settings).toEqual(top);
    expect((await adapter.ledger.claim('k', { owner: 'o', ttlMs: 60_000, intent: top })).state).toBe('claimed');
    expect(await adapter.ledger.complete('k', 'o', { done: top })).toBe(true);
    expect(await adapter.ledger.get('k')).toMatchObject({ intent: top, outcome: { done: top } });
  });
});
