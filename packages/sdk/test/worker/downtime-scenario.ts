/**
 * The worker down for days while the web processes keep accepting Connec! notifications, then
 * restarted (shared by the SDK's memory test and adapter-prisma's PostgreSQL one): nothing
 * accepted is lost, each record ends at its newest version whatever order its versions arrived
 * in, the poll that fell due meanwhile runs once, and the jobs a dead worker held are taken
 * over once each.
 */
import { JobTypes } from '@org/maestrano-sdk';
import { expect } from 'vitest';
import type { StorageAdapter } from '../../src/storage/adapter.js';
import { createWorker, type WorkerEvent } from '../../src/worker/index.js';
import { C, createHarness, GROUP, ORG_UID, provisionGroup, TENANT } from '../sync/harness.js';

export const DAY = 24 * 3_600_000;

const item = (n: number, version: number) => ({
  id: [C(`it${n}`)],
  name: `Item ${n} v${version}`,
  group_id: GROUP,
  channel_id: ORG_UID,
  resource_type: 'items',
  created_at: '2016-10-04T00:00:00Z',
  updated_at: new Date(Date.parse('2016-10-05T00:00:00Z') + version * 3_600_000).toISOString(),
});

export async function downtimeScenario(makeStorage: (clock: () => Date) => Promise<StorageAdapter>): Promise<void> {
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const h = await createHarness({ clock, storage: await makeStorage(clock), sync: { pollIntervalMs: 15 * 60_000, maxAttempts: 8 } });
  await provisionGroup(h.storage);
  await h.sync.api.enqueueImport({ tenant: TENANT, groupId: GROUP });
  await h.drain();
  expect(await h.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ pending: 1 });

  // Records other apps create in Connec! (our link-backs need them there).
  for (let n = 1; n <= 300; n++) h.connec.seed(GROUP, 'items', { name: `Item ${n}` }, `it${n}`);
  // Days of notifications: 300 items, 5 versions each, delivered out of order, some twice.
  const records = [];
  for (let n = 1; n <= 300; n++) for (let v = 1; v <= 5; v++) records.push(item(n, v));
  // Deterministic shuffle.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  for (let i = records.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [records[i], records[j]] = [records[j] as (typeof records)[number], records[i] as (typeof records)[number]];
  }
  let died = 0;
  for (let i = 0; i < records.length; i += 50) {
    offset += 2 * 3_600_000;
    const res = await h.notify({ items: records.slice(i, i + 50) });
    expect(res.status).toBe(200);
    if (i === 500) {
      // A worker claims some jobs and dies with them.
      died = (await h.storage.jobs.claim({ worker: 'died', limit: 40, leaseMs: 30_000, types: [JobTypes.connecRecord] })).length;
    }
    if (i % 200 === 0) await h.notify({ items: records.slice(0, 10) }); // replays
  }
  expect(died).toBeGreaterThan(0);
  offset += 3 * DAY;
  const listsBefore = h.connec.listCalls.length;

  const claims = new Map<string, number>();
  const completions = new Map<string, number>();
  const events = (e: WorkerEvent) => {
    if (e.type === 'claimed') claims.set(e.job.id, (claims.get(e.job.id) ?? 0) + 1);
    if (e.type === 'completed') completions.set(e.job.id, (completions.get(e.job.id) ?? 0) + 1);
  };
  const worker = createWorker(h.runtime, h.sync.jobs ?? {});
  for (let round = 0; round < 50; round++) {
    await worker.drain({ pollIntervalMs: 1, concurrency: 4, backoff: { baseMs: 2, maxMs: 20 }, onEvent: events });
    const counts = await h.storage.jobs.counts();
    if (counts.running === 0 && (await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending === 0) break;
  }

  expect(h.app.items.size).toBe(300);
  for (const row of h.app.items.values()) expect(row.name).toMatch(/ v5$/);
  expect(await h.storage.jobs.counts({ type: JobTypes.connecRecord })).toMatchObject({ pending: 0, running: 0, dead: 0 });
  expect([...completions.values()].every((n) => n === 1)).toBe(true);
  // One poll ran for the missed slots, and one is scheduled.
  expect(await h.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 1, pending: 1, dead: 0 });
  expect(h.connec.listCalls.length - listsBefore).toBeLessThanOrEqual(4);
}
