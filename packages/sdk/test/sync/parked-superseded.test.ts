import { JobTypes } from '@org/maestrano-sdk';
import { describe, expect, it } from 'vitest';
import { C, createHarness, GROUP, ORG_UID, provisionGroup } from './harness.js';

const person = (over: Record<string, unknown> = {}) => ({
  id: [C('p5')],
  first_name: 'Jane',
  last_name: 'Doe',
  group_id: GROUP,
  channel_id: ORG_UID,
  resource_type: 'people',
  created_at: '2016-10-04T00:36:23Z',
  updated_at: '2016-10-04T00:36:23Z',
  ...over,
});

describe('a parked record superseded by a newer version of itself', () => {
  it('the newer version, whose references are known, is applied without waiting for the older one', async () => {
    const h = await createHarness({ sync: { fetchMissingReferences: false, parkRetryMs: 600_000 } });
    await provisionGroup(h.storage);
    h.connec.seed(GROUP, 'people', { last_name: 'Doe' }, 'p5');
    h.connec.seed(GROUP, 'organizations', { name: 'Late Org' }, 'o77');
    await h.notify({ people: [person({ organization_id: [C('o77')] })] });
    await h.drain(3);
    expect(h.app.contacts.size).toBe(0);
    // Connec! now holds a newer version that names no organization.
    await h.notify({ people: [person({ first_name: 'Janet', organization_id: null, updated_at: '2016-10-05T00:00:00Z' })] });
    await h.drain(3);
    expect([...h.app.contacts.values()].map((c) => c.firstName)).toEqual(['Janet']);
    // The organization the older version named arrives: that version, woken, is stale.
    await h.notify({ organizations: [{ id: [C('o77')], name: 'Late Org', group_id: GROUP, updated_at: '2016-10-04T00:00:00Z' }] });
    await h.drain();
    expect([...h.app.contacts.values()].map((c) => [c.firstName, c.companyId])).toEqual([['Janet', null]]);
    expect(await h.sync.api.deadLetters()).toEqual([]);
    expect((await h.storage.jobs.counts({ type: JobTypes.connecRecord })).pending).toBe(0);
  });
});
