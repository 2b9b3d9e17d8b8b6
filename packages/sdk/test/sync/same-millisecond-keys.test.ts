// Same-millisecond hazards of the control routes' time-keyed dedupe keys: a catch-up or a
// start enqueued in the millisecond of an earlier one (keyed `...:${clock().getTime()}`)
// deduped to that finished job, so nothing ran. Shown with a clock that does not move.
import { JobTypes, memoryAdapter, type StorageAdapter } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { type Co, imported, setup } from './catch-up-harness.js';
import { GROUP, TENANT } from './harness.js';

describe('time-keyed dedupe keys of the control routes, within one millisecond', () => {
  it("a third switch-on's catch-up is not the second's finished job: the edit made while off reaches Connec!", async () => {
    const frozen = new Date();
    const s = setup({ clock: () => new Date(frozen) });
    await imported(s);
    const offOn = async () => {
      expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: false } });
      expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
      await s.drain();
    };
    // First catch-up: the group's key; second: keyed by the time.
    await offOn();
    await offOn();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 3, dead: 0 });
    // Off, an edit (its push skipped), on: in the same millisecond as the second catch-up.
    expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: false } });
    const row = [...s.rows.values()].find((r) => r.name === 'Acme') as Co;
    const edited = { ...row, name: 'Acme Ltd', updatedAt: new Date(frozen) };
    s.rows.set(row.id, edited);
    expect((await s.mno.sync.push({ tenant: TENANT, groupId: GROUP, entity: 'companies', record: edited })).status).toBe('skipped');
    expect(await s.toggle()).toMatchObject({ status: 200, json: { sync_enabled: true } });
    await s.drain();
    expect(s.connec.all(GROUP, 'organizations').map((o) => o.name).sort()).toEqual(['Acme Ltd', 'Globex']);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncImport })).toMatchObject({ done: 4, dead: 0 });
  });

  it("a second start's poll is not the first start's finished poll: Connec!'s change made since is read", async () => {
    const frozen = new Date();
    const s = setup({ clock: () => new Date(frozen) });
    await imported(s);
    // A start of an imported group polls.
    expect(await s.start()).toMatchObject({ status: 201 });
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 1 });
    // Another app renames Globex (no notification reaches us); the platform starts a sync again.
    // (Connec!'s clock past the poll cursor, which the import seeded at its start.)
    s.connec.setClock(frozen.toISOString());
    s.connec.edit(GROUP, 'organizations', 'o2', { name: 'Globex Corp' });
    expect(await s.start()).toMatchObject({ status: 201 });
    await s.drain();
    expect([...s.rows.values()].map((r) => r.name).sort()).toEqual(['Acme', 'Globex Corp']);
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 2 });
  });

  it("a clock stepped back between a start's key and its tracking: the next start's poll is not that start's finished one", async () => {
    let now = Date.now();
    const clock = () => new Date(now);
    // The clock steps back 5 s right after a start's poll is enqueued (keyed by the clock read
    // before), so the tracking that follows reads an earlier time.
    let stepBack = false;
    const base = memoryAdapter({ clock });
    const storage: StorageAdapter = {
      ...base,
      jobs: {
        ...base.jobs,
        enqueue: async (job) => {
          const result = await base.jobs.enqueue(job);
          if (job.type === JobTypes.syncPoll && job.dedupeKey?.includes(':start:') && stepBack) {
            stepBack = false;
            now -= 5_000;
          }
          return result;
        },
      },
    };
    const s = setup({ clock, storage });
    await imported(s);
    now += 10_000;
    stepBack = true;
    expect(await s.start()).toMatchObject({ status: 201 });
    // The clock is back where it was at that start's key (its poll is due); Globex is renamed.
    now += 5_000;
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 1 });
    s.connec.setClock(new Date(now).toISOString());
    s.connec.edit(GROUP, 'organizations', 'o2', { name: 'Globex Corp' });
    expect(await s.start()).toMatchObject({ status: 201 });
    await s.drain();
    expect(await s.storage.jobs.counts({ type: JobTypes.syncPoll })).toMatchObject({ done: 2 });
    expect([...s.rows.values()].map((r) => r.name).sort()).toEqual(['Acme', 'Globex Corp']);
  });
});
