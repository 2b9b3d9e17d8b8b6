/**
 * The poll reads what changed in Connec! since the initial import began. An import that stopped
 * part way and was resumed began with its first run: an edit made between that run's pages and
 * the resume, on a page the first run already imported (its notification lost), is read by the
 * first poll. An import cursor written before checkpoints recorded that start (an earlier
 * release) does not say when its pages were read: the first poll reads everything.
 */
import { ImportFailedError } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { createHarness, GROUP, type Harness, provisionGroup, TENANT } from './harness.js';

const T0 = '2026-01-01T00:00:00.000Z';
const importKey = { tenant: TENANT, groupId: GROUP, entity: 'companies', kind: 'import' };
const pollKey = { ...importKey, kind: 'poll' };

/** A group with two organizations whose import (one record a page) stops at T0 after the first page. */
async function importStoppedAfterFirstPage(): Promise<{ h: Harness; setNow: (iso: string) => void }> {
  let now = Date.parse(T0);
  const h = await createHarness({ clock: () => new Date(now), sync: { pageSize: 1, importPagesInFlight: 1 } });
  await provisionGroup(h.storage);
  h.connec.setClock('2025-12-31T23:00:00Z');
  h.connec.seed(GROUP, 'organizations', { name: 'Acme' }, 'o1');
  h.connec.seed(GROUP, 'organizations', { name: 'Globex' }, 'o2');
  const listPage = h.connec.listPage.bind(h.connec);
  let failSecondPage = true;
  h.connec.listPage = async (groupId, collection, options) => {
    if (failSecondPage && collection === 'organizations' && options.skip >= 1) {
      failSecondPage = false;
      throw new Error('Connec! unavailable');
    }
    return listPage(groupId, collection, options);
  };
  await expect(h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP })).rejects.toBeInstanceOf(ImportFailedError);
  expect([...h.app.companies.values()].map((c) => c.name)).toEqual(['Acme']);
  return { h, setNow: (iso) => (now = Date.parse(iso)) };
}

/** Ten minutes after T0 another app renames o1; the import resumes an hour after T0, the poll runs after it. */
async function renameResumeAndPoll(h: Harness, setNow: (iso: string) => void): Promise<void> {
  h.connec.setClock('2026-01-01T00:10:00Z');
  h.connec.edit(GROUP, 'organizations', 'o1', { name: 'Acme Ltd' });
  setNow('2026-01-01T01:00:00Z');
  const report = await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
  // Resumed from its checkpoint: only o2 is read.
  expect(report.entities.companies).toMatchObject({ fetched: 1, created: 1 });
  await h.drain();
  setNow('2026-01-01T01:15:00Z');
  await h.sync.api.pollGroup({ tenant: TENANT, groupId: GROUP });
  await h.drain();
}

describe('the first poll after a resumed initial import', () => {
  it('reads what changed since the import first began, not since it was resumed', async () => {
    const { h, setNow } = await importStoppedAfterFirstPage();
    // The first run's checkpoint records when it began.
    expect((await h.storage.cursors.get(importKey))?.data).toMatchObject({ startedAt: T0 });

    await renameResumeAndPoll(h, setNow);

    expect(await h.storage.cursors.get(importKey)).toMatchObject({ complete: true, data: { startedAt: T0 } });
    expect([...h.app.companies.values()].map((c) => c.name).sort()).toEqual(['Acme Ltd', 'Globex']);
  });

  it('seeds the poll cursor with the first run’s start', async () => {
    const { h, setNow } = await importStoppedAfterFirstPage();
    setNow('2026-01-01T01:00:00Z');
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect((await h.storage.cursors.get(pollKey))?.data).toEqual({ since: T0 });
  });

  it('reads everything once when the import cursor was written without its start (an earlier release)', async () => {
    const { h, setNow } = await importStoppedAfterFirstPage();
    // What the previous release wrote at that checkpoint: no `startedAt`.
    await h.storage.cursors.reset(importKey);
    await h.storage.cursors.advance(importKey, 1, { total: 2 }, false);

    setNow('2026-01-01T01:00:00Z');
    await h.sync.api.importGroup({ tenant: TENANT, groupId: GROUP });
    expect((await h.storage.cursors.get(pollKey))?.data).toEqual({ since: '1970-01-01T00:00:00.000Z' });
    expect((await h.storage.cursors.get(importKey))?.data).toMatchObject({ startedAt: '1970-01-01T00:00:00.000Z' });
  });

  it('catches an edit missed before the resume of an import cursor written without its start', async () => {
    const { h, setNow } = await importStoppedAfterFirstPage();
    await h.storage.cursors.reset(importKey);
    await h.storage.cursors.advance(importKey, 1, { total: 2 }, false);

    await renameResumeAndPoll(h, setNow);

    expect([...h.app.companies.values()].map((c) => c.name).sort()).toEqual(['Acme Ltd', 'Globex']);
    // The poll cursor moved on to the newest version read.
    expect(Date.parse(String((await h.storage.cursors.get(pollKey))?.data.since))).toBeGreaterThan(Date.parse(T0));
  });
});
