// A MongoDB document holds at most 16 MiB, and the adapter refuses a JSON value over
// MAX_STORED_JSON_BYTES (16 MiB less 64 KiB). A document holding more than one large field
// must stay within 16 MiB too:
// - a ledger entry holds its intent (claim) and its outcome (complete): each under the limit
//   alone, together over 16 MiB, real MongoDB would refuse `complete` with an opaque server
//   error and leave the entry pending; the adapter refuses it first, naming `outcome`;
// - a job holds its payload next to its recorded error (and an id map its `lastError`): the
//   error text is cut to MAX_ERROR_MESSAGE_BYTES / MAX_ERROR_CODE_BYTES, ending with `…`.
// FerretDB, the local test backend, does not enforce the 16 MiB limit, so the stored
// document's size is measured.
import { StorageConflictError, StorageError, type StorageAdapter } from '@org/maestrano-sdk';
import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DOCUMENT_BYTES, MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_STORED_JSON_BYTES } from '../src/documents.js';
import { mongoAdapter } from '../src/index.js';
import { backend, openTestDb, unavailable } from './support.js';

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

describe.skipIf(unavailable !== null)(`${backend}: a document's large fields together stay within 16 MiB`, () => {
  let adapter: StorageAdapter;
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  beforeAll(async () => {
    handle = await openTestDb('doc_fields');
    const opened = mongoAdapter(handle.db);
    await opened.ensureIndexes();
    adapter = opened;
  });
  afterAll(async () => {
    await adapter?.close();
    await handle?.drop();
  });

  async function storedSize(collection: string, id: unknown): Promise<number> {
    const doc = await handle.db.collection(collection).findOne({ _id: id as never });
    return doc ? BSON.calculateObjectSize(doc) : 0;
  }

  it('ledger: an outcome that does not fit next to the recorded intent is refused naming outcome; the entry stays pending', async () => {
    const nine = { body: 'x'.repeat(9 * 1024 * 1024) };
    expect(await adapter.ledger.claim('bill-1', { owner: 'o', ttlMs: 60_000, intent: nine })).toMatchObject({ state: 'claimed' });
    const error = await adapter.ledger.complete('bill-1', 'o', nine).then(
      () => new Error('an outcome over the document limit was accepted'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({ operation: 'ledger.complete', adapterId: 'mongo' });
    expect((error as Error).message).toContain('outcome is too large to store next to the recorded intent');
    expect((error as Error).message).toContain(String(MAX_STORED_JSON_BYTES));
    expect(await adapter.ledger.get('bill-1')).toMatchObject({ status: 'pending', owner: 'o', outcome: null });
    expect(await storedSize('mno_ledger', 'bill-1')).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);

    // An outcome that fits next to the intent completes the entry.
    const six = { body: 'y'.repeat(6 * 1024 * 1024) };
    expect(await adapter.ledger.complete('bill-1', 'o', six)).toBe(true);
    expect(await adapter.ledger.get('bill-1')).toMatchObject({ status: 'done', outcome: six });
    expect(await storedSize('mno_ledger', 'bill-1')).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);
  }, 120_000);

  it('ledger: a non-owner completing a large outcome is answered false, not refused', async () => {
    const nine = { body: 'x'.repeat(9 * 1024 * 1024) };
    await adapter.ledger.claim('bill-2', { owner: 'o', ttlMs: 60_000, intent: nine });
    expect(await adapter.ledger.complete('bill-2', 'someone else', nine)).toBe(false);
  }, 120_000);

  it('jobs: failing a job whose payload is near the limit with a 200 KiB error keeps the document within 16 MiB', async () => {
    const payload = { body: 'y'.repeat(MAX_STORED_JSON_BYTES - 1024) };
    const { id } = await adapter.jobs.enqueue({ type: 'large', payload });
    const [claimed] = await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: ['large'] });
    expect(claimed?.id).toBe(id);
    // e.g. an HTTP error carrying the response body
    const message = `upstream answered 500: ${'e'.repeat(200 * 1024)}`;
    const code = `c${'d'.repeat(4 * 1024)}`;
    expect(await adapter.jobs.fail(id, 'w', { error: { message, code }, retryAt: new Date(), final: true })).toBe('dead');
    expect(await storedSize('mno_jobs', new ObjectId(id))).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);
    const recorded = (await adapter.jobs.get(id))?.lastError;
    expect(recorded?.message.startsWith('upstream answered 500: eee')).toBe(true);
    expect(recorded?.message.endsWith('…')).toBe(true);
    expect(utf8(recorded?.message ?? '')).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(utf8(recorded?.message ?? '')).toBeGreaterThan(MAX_ERROR_MESSAGE_BYTES - 8);
    expect(recorded?.code?.endsWith('…')).toBe(true);
    expect(utf8(recorded?.code ?? '')).toBeLessThanOrEqual(MAX_ERROR_CODE_BYTES);
  }, 120_000);

  it('jobs and id maps: error text within the caps is recorded exactly; longer text is cut with …', async () => {
    const { id } = await adapter.jobs.enqueue({ type: 'small', payload: null });
    await adapter.jobs.claim({ worker: 'w', limit: 1, leaseMs: 60_000, types: ['small'] });
    const exact = 'é'.repeat(MAX_ERROR_MESSAGE_BYTES / 2);
    await adapter.jobs.fail(id, 'w', { error: { message: exact, code: 'http_500' }, retryAt: new Date(0), final: true });
    expect((await adapter.jobs.get(id))?.lastError).toEqual({ message: exact, code: 'http_500' });

    const scope = { tenant: 't', groupId: 'cld-1', entity: 'items' };
    await adapter.idMaps.insert({ ...scope, connecId: 'c-1', localId: 'l-1' });
    const at = new Date('2024-01-02T03:04:05.678Z');
    // Emoji (a surrogate pair each) are never cut in half.
    const long = '😀'.repeat(10_000);
    expect(await adapter.idMaps.update(scope, { connecId: 'c-1' }, { lastError: { code: 'x'.repeat(5_000), message: long, at } })).not.toBeNull();
    const recorded = (await adapter.idMaps.find(scope, { connecId: 'c-1' }))?.lastError;
    expect(recorded?.at).toEqual(at);
    expect(recorded?.message.endsWith('…')).toBe(true);
    expect(utf8(recorded?.message ?? '')).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(recorded?.message.slice(0, -1)).toBe('😀'.repeat((MAX_ERROR_MESSAGE_BYTES - 3) >> 2));
    expect(recorded?.code).toBe(`${'x'.repeat(MAX_ERROR_CODE_BYTES - 3)}…`);
    await adapter.idMaps.update(scope, { connecId: 'c-1' }, { lastError: { code: 'push_failed', message: 'short', at } });
    expect((await adapter.idMaps.find(scope, { connecId: 'c-1' }))?.lastError).toEqual({ code: 'push_failed', message: 'short', at });
  });
});
