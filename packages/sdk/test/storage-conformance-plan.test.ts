import { planStorageSuite, storageCases } from '@org/maestrano-sdk/testing/storage';
import { describe, expect, it } from 'vitest';

const total = Object.values(storageCases).reduce((sum, cases) => sum + Object.keys(cases).length, 0);

describe('storage conformance plan', () => {
  it('registers every case of every repository, each test named after the backend', () => {
    const plan = planStorageSuite({ name: 'pg' });
    expect(plan).toHaveLength(total);
    expect(total).toBeGreaterThanOrEqual(100);
    expect(new Set(plan.map((p) => p.repository))).toEqual(
      new Set(['groups', 'users', 'idMaps', 'cursors', 'jobs', 'ledger', 'replay', 'locks', 'outage']),
    );
    for (const planned of plan) {
      expect(planned.testName).toBe(`[pg] ${planned.repository}: ${planned.title}`);
      expect(planned.skipReason).toBeNull();
    }
    expect(new Set(plan.map((p) => p.testName)).size).toBe(plan.length);
  });

  it('skips exactly the cases needing a skipped ability, with the reason in the name', () => {
    const plan = planStorageSuite({ name: 'x', skip: { concurrency: 'single connection only' } });
    const skipped = plan.filter((p) => p.skipReason !== null);
    const needing = plan.filter((p) => p.case.needs.includes('concurrency'));
    expect(needing.length).toBeGreaterThanOrEqual(10);
    expect(skipped.map((p) => p.testName)).toEqual(
      needing.map((p) => `[x] ${p.repository}: ${p.title} (skipped, no concurrency: single connection only)`),
    );
    expect(skipped.every((p) => p.skipReason === 'no concurrency: single connection only')).toBe(true);
  });

  it('marks every case skipped with the reason when the backend is unavailable', () => {
    const plan = planStorageSuite({ name: 'ferretdb', unavailable: 'ferretdb binary not found' });
    expect(plan).toHaveLength(total);
    expect(plan.every((p) => p.skipReason === 'ferretdb binary not found')).toBe(true);
    expect(plan.every((p) => p.testName.startsWith('[ferretdb] ') && p.testName.endsWith('(skipped, ferretdb binary not found)'))).toBe(true);
  });

  it('restricts the plan to the given repositories', () => {
    const plan = planStorageSuite({ name: 'm', repositories: ['locks', 'replay'] });
    expect(new Set(plan.map((p) => p.repository))).toEqual(new Set(['locks', 'replay']));
    expect(plan).toHaveLength(Object.keys(storageCases.locks).length + Object.keys(storageCases.replay).length);
  });

  it('covers the cases issue 3 names', () => {
    const titles = planStorageSuite({ name: 'm' }).map((p) => `${p.repository}: ${p.title}`);
    const has = (pattern: RegExp) => expect(titles.some((t) => pattern.test(t)), String(pattern)).toBe(true);
    for (const repository of ['groups', 'users', 'ledger', 'locks', 'replay']) has(new RegExp(`^${repository}: 20 concurrent`));
    has(/^jobs: N workers claiming concurrently/);
    has(/^jobs: an expired lease is redelivered/);
    has(/^jobs: complete is idempotent/);
    has(/^cursors: advance moves forward only/);
    has(/^idMaps: a second insert with the same connecId throws StorageConflictError/);
    has(/^idMaps: a second insert with the same localId throws StorageConflictError/);
    has(/^idMaps: markApplied moves forward only/);
  });
});
