/**
 * The worker down for days while notifications pile up, then restarted (memory storage; the
 * PostgreSQL run is adapter-prisma's test/downtime-backlog.test.ts), and the status route
 * Maestrano reads across that outage.
 */
import { createMaestrano, JobTypes, staticTenants } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { memoryAdapter } from '../../src/storage/memory.js';
import { FakeConnec } from '../sync/fake-connec.js';
import { API_ID, API_KEY, buildConnector, drainer, GROUP, LocalApp, ORG_UID, provisionGroup, silentLogger, TENANT, testTenant } from '../sync/harness.js';
import { DAY, downtimeScenario } from './downtime-scenario.js';

describe('worker – restarted after days down with a backlog', () => {
  it('applies the newest version of every record once, runs the due poll once, takes over a dead worker\'s jobs once', async () => {
    await downtimeScenario(async (clock) => memoryAdapter({ clock }));
  }, 120_000);
});

describe('worker – the status route across a worker outage', () => {
  it('says RUNNING while the dead worker\'s lease lasts, ENQUEUED once it lapsed, and SUCCESS after the restart ran the sync once', async () => {
    // From a fixed instant (not the wall clock's): the two polls run a minute apart below.
    let offset = 0;
    const t0 = Date.now();
    const clock = () => new Date(Date.parse('2030-01-01T00:00:30Z') + offset + (Date.now() - t0));
    const memory = memoryAdapter({ clock });
    /** Every poll job enqueued, to read their run times. */
    const pollIds = new Set<string>();
    const storage = {
      ...memory,
      jobs: {
        ...memory.jobs,
        enqueue: async (job: Parameters<typeof memory.jobs.enqueue>[0]) => {
          const result = await memory.jobs.enqueue(job);
          if (job.type === JobTypes.syncPoll) pollIds.add(result.id);
          return result;
        },
      },
    };
    const app = new LocalApp();
    const connec = new FakeConnec(ORG_UID);
    const mno = createMaestrano({
      tenants: staticTenants([testTenant()]),
      storage,
      provisioning: { createCompany: () => ({ id: 'company' }), createUser: () => ({ id: 'user' }) },
      onLogin: () => new Response('ok'),
      logger: silentLogger,
      clock,
      connector: buildConnector(app),
      sync: { connecPort: () => connec, parkRetryMs: 5, maxAttempts: 4, pollIntervalMs: 15 * 60_000 },
    });
    const drain = drainer(mno.worker, storage);
    await provisionGroup(storage);
    const auth = { authorization: `Basic ${Buffer.from(`${API_ID}:${API_KEY}`).toString('base64')}` };
    const start = async () =>
      (await mno.handler(new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ group_id: GROUP }) }))).json();
    const status = async () => (await mno.handler(new Request(`http://127.0.0.1/maestrano/${TENANT}/synchronizations/${GROUP}`, { headers: auth }))).json();
    await start();
    await drain();
    expect(await status()).toMatchObject({ status: 'SUCCESS' });

    offset += 3_600_000;
    expect(await start()).toMatchObject({ status: 'ENQUEUED' });
    // The chain's poll and the start's, both due: a worker takes them and dies.
    const held = await storage.jobs.claim({ worker: 'died', limit: 5, leaseMs: 30_000, types: [JobTypes.syncPoll] });
    expect(held).toHaveLength(2);
    expect(await status()).toMatchObject({ status: 'RUNNING' });
    offset += 2 * DAY;
    expect(await status()).toMatchObject({ status: 'ENQUEUED' });
    const pollsBefore = (await storage.jobs.counts({ type: JobTypes.syncPoll })).pending;
    expect(await start()).toMatchObject({ status: 'ENQUEUED' });
    expect((await storage.jobs.counts({ type: JobTypes.syncPoll })).pending).toBe(pollsBefore);

    await drain();
    // The two polls ran one after the other (the second waited for the group's lock).
    offset += 60_000;
    await drain();
    const answer = await status();
    expect(answer).toMatchObject({ status: 'SUCCESS' });
    expect(Date.parse(answer.updated_at)).toBeGreaterThan(clock().getTime() - 60_000);
    for (const job of held) expect(await storage.jobs.get(job.id)).toMatchObject({ status: 'done' });
    // The two polls' next runs are at the group's own point of the interval: the same one, or
    // (their runs a lock wait apart, on either side of a point's half-interval mark) two points
    // in a row, merged by the first one's run. One chain goes on.
    const pendingPolls = async () => {
      const jobs = await Promise.all([...pollIds].map((id) => storage.jobs.get(id)));
      return jobs.filter((job) => job?.status === 'pending').map((job) => job!.runAt.getTime()).sort((a, b) => a - b);
    };
    const next = await pendingPolls();
    expect(next.length === 1 || (next.length === 2 && next[1]! - next[0]! === 15 * 60_000)).toBe(true);
    offset += next[0]! + 1_000 - clock().getTime();
    await drain(2);
    expect(await storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ pending: 1, dead: 0 });
  });
});
