// On FerretDB every jobs query but an `_id` lookup scans the whole collection (retained done
// jobs included), so a claim must decide its ordered jobs with a few reads in all, not a
// query per job: a claim of ~120 ordered record jobs used to spend seconds on those scans.
import { type CommandStartedEvent, MongoClient, ObjectId } from 'mongodb';
import { createTestClock } from '@org/maestrano-sdk/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdapter, type MongoStorageAdapter } from '../src/index.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';

describe.skipIf(unavailable !== null)(`${backend}: the reads of a claim`, () => {
  let handle: Awaited<ReturnType<typeof openTestDb>>;
  let client: MongoClient;
  let adapter: MongoStorageAdapter;
  const clock = createTestClock(Date.UTC(2031, 0, 1));
  const scans: unknown[] = [];

  beforeAll(async () => {
    handle = await openTestDb('claim_reads');
    client = new MongoClient(mongoUrl ?? '', { monitorCommands: true });
    client.on('commandStarted', (event: CommandStartedEvent) => {
      const filter = event.command['filter'] as Record<string, unknown> | undefined;
      if (event.commandName !== 'find' || event.command['find'] !== adapter.collections.jobs) return;
      // An `_id` equality is the one lookup FerretDB answers without scanning.
      if (filter && Object.keys(filter).length === 1 && filter['_id'] instanceof ObjectId) return;
      scans.push(filter);
    });
    await client.connect();
    adapter = mongoAdapter(client.db(handle.name), { clock: () => clock.now() });
    await adapter.ensureIndexes();
  });
  afterAll(async () => {
    await client?.close();
    await handle?.drop();
  });

  it('claims of 48 ordered jobs, around unordered ones, reads the jobs collection a few times in all and claims in due order', async () => {
    const due: string[] = [];
    for (let i = 0; i < 50; i++) {
      const ordered = i % 20 !== 10;
      const { id } = await adapter.jobs.enqueue({ type: 'record', payload: { i }, ...(ordered ? { orderingKey: `K${i}` } : {}), runAt: new Date(clock.ms() - 1_000 + i) });
      due.push(id);
    }
    // A key's younger job waits behind its head.
    await adapter.jobs.enqueue({ type: 'record', payload: null, orderingKey: 'K1', runAt: new Date(clock.ms() - 5_000) });

    scans.length = 0;
    const first = await adapter.jobs.claim({ worker: 'w', limit: 30, leaseMs: 60_000 });
    const second = await adapter.jobs.claim({ worker: 'w', limit: 100, leaseMs: 60_000 });

    expect(first.map((job) => job.id)).toEqual(due.slice(0, 30));
    expect(second.map((job) => job.id)).toEqual(due.slice(30));
    expect(await adapter.jobs.counts()).toMatchObject({ pending: 1, running: 50 });
    // Per claim: the due jobs and their keys' unfinished jobs; then, per run of heads between
    // unordered jobs, the heads (one `$in`) and the guarded keys' unfinished jobs. It was one
    // more query per ordered job.
    expect(scans.length).toBeLessThanOrEqual(12);
  });
});
