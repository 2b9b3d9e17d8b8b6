// A MongoDB (and FerretDB) document holds at most 16 MiB: a JSON value too large to fit is
// refused up front with a StorageError naming the argument and the limit, and nothing is
// stored (instead of an unclear `mongo jobs.enqueue failed (RangeError)` from the driver).
import { StorageConflictError, StorageError, type StorageAdapter } from '@org/maestrano-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STORED_JSON_BYTES } from '../src/documents.js';
import { mongoAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

async function refusal(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => new Error('a value over the document limit was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  expect(error).not.toBeInstanceOf(StorageConflictError);
  return error as StorageError;
}

describe.skipIf(unavailable !== null)(`${backend}: JSON values over the 16 MiB document limit are refused clearly`, () => {
  let adapter: StorageAdapter;
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('json_size');
    const opened = mongoAdapter({ url: mongoUrl ?? '', dbName: handle.name });
    await opened.ensureIndexes();
    adapter = opened;
  });
  afterAll(async () => {
    await adapter?.close();
    await handle?.drop();
  });

  const big = () => ({ entity: 'attachments', body: 'x'.repeat(17 * 1024 * 1024) });

  it('the limit leaves room in a 16 MiB document', () => {
    expect(MAX_STORED_JSON_BYTES).toBe(16 * 1024 * 1024 - 64 * 1024);
  });

  it('a 17 MB job payload is refused naming payload and the limit (enqueue, enqueueMany), storing nothing', async () => {
    const single = await refusal(adapter.jobs.enqueue({ type: 'big', payload: big() }));
    expect(single).toMatchObject({ operation: 'jobs.enqueue', adapterId: 'mongo' });
    expect(single.message).toContain('payload is too large');
    expect(single.message).toContain(String(MAX_STORED_JSON_BYTES));
    expect(single.message).toContain('16 MiB');
    const many = await refusal(
      adapter.jobs.enqueueMany([
        { type: 'big', payload: { n: 1 } },
        { type: 'big', payload: big() },
      ]),
    );
    expect(many).toMatchObject({ operation: 'jobs.enqueueMany' });
    expect(many.message).toContain('payload is too large');
    expect(await adapter.jobs.counts({ type: 'big' })).toMatchObject({ pending: 0, running: 0, done: 0, dead: 0 });
  }, 60_000);

  it('a value stored as JSON text (arrays inside arrays) is measured too', async () => {
    const rows = Array.from({ length: 700_000 }, (_, i) => [i, 'abcdefghijklmnopqrst']);
    const error = await refusal(adapter.jobs.enqueue({ type: 'big', payload: { rows } }));
    expect(error.message).toContain('payload is too large');
    expect((await adapter.jobs.counts({ type: 'big' })).pending).toBe(0);
  }, 60_000);

  it('cursor data, ledger intent and group settings over the limit are refused naming them', async () => {
    const key = { tenant: 't', groupId: 'cld-1', entity: 'items', kind: 'import' as const };
    expect((await refusal(adapter.cursors.advance(key, 1, big()))).message).toContain('data is too large');
    expect(await adapter.cursors.get(key)).toBeNull();
    expect((await refusal(adapter.ledger.claim('bill-1', { owner: 'o', ttlMs: 60_000, intent: big() }))).message).toContain('intent is too large');
    expect(await adapter.ledger.get('bill-1')).toBeNull();
    await adapter.groups.claim('t', 'cld-1', { owner: 'o', ttlMs: 60_000 });
    expect((await refusal(adapter.groups.complete('t', 'cld-1', 'o', { companyId: 'c-1', settings: big() }))).message).toContain(
      'settings is too large',
    );
  }, 60_000);

  it('a payload just under the limit is stored', async () => {
    const payload = { body: 'y'.repeat(MAX_STORED_JSON_BYTES - 1024) };
    const { id } = await adapter.jobs.enqueue({ type: 'large', payload });
    const stored = (await adapter.jobs.get(id))?.payload as { body?: string } | undefined;
    expect(stored?.body?.length).toBe(payload.body.length);
  }, 120_000);
});
